"""The situation screen's page: HTML, CSS and a little JavaScript, all served by the centre (no CDN, no tiles).

The plan of the city is an SVG drawn by the centre (``/plan.svg``, :mod:`~microgrid.centre.plan`), fetched
again with the filters (kind, district, queue) at every update; the filters' districts and queues are the ones
the islands report."""

__all__ = ["ISLAND_PAGE", "PAGE"]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Situation Centre</title>
<style>
body{font-family:system-ui,sans-serif;margin:1em;background:#111;color:#eee}
table{border-collapse:collapse;width:100%}th,td{padding:.3em .6em;border-bottom:1px solid #333;text-align:left}
tr.offline td{color:#888}tr.critical td.autonomy{color:#f55;font-weight:bold}td.alarms{color:#fc5}
#city{display:flex;gap:1em;align-items:flex-start;margin:.5em 0}#legend span{display:inline-block;margin-right:.8em}
#legend i{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.3em}
</style></head>
<body><h1>Situation Centre</h1><p id="summary">waiting for the islands…</p>
<p><label>kind <select id="kind" onchange="render(last)"><option value="">all</option><option>hospital</option>
<option>water-pumping</option><option>boiler-house</option><option>shelter</option><option>other</option></select></label>
<label>district <select id="district" onchange="render(last)"><option value="">all</option></select></label>
<label>queue <select id="queue" onchange="render(last)"><option value="">all</option></select></label></p>
<div id="city"><div id="map"></div><p id="legend"><span><i style="background:#3a3"></i>grid</span>
<span><i style="background:#39f"></i>battery</span><span><i style="background:#f90"></i>diesel</span>
<span><i style="background:#dd3"></i>PV</span><span><i style="background:#a0a"></i>nothing</span>
<span><i style="background:#666"></i>offline</span><span><i style="background:#f33"></i>alarm</span>
<br>dashed white ring: emergency mode; the larger the dot, the fewer hours of critical autonomy
(&lt; 6 h, &lt; 24 h)</p></div>
<table><thead><tr><th>island</th><th>kind</th><th>district</th><th>queue</th><th>online</th><th>grid</th><th>source</th>
<th>mode</th><th>emergency</th><th>critical autonomy [h]</th><th>SOC [%]</th><th>fuel to dry [h]</th><th>alarms</th>
<th>last cycle</th></tr></thead><tbody id="islands"></tbody></table>
<script>
function cell(text, cls){const td=document.createElement('td');td.textContent=text;if(cls)td.className=cls;return td;}
function hours(x){return x===null||x===undefined?'–':Number(x).toFixed(1);}
let last=[];
const FILTERS=['kind','district','queue'];
function wanted(){const q={};for(const f of FILTERS)q[f]=document.getElementById(f).value;return q;}
function options(id, values){
  const sel=document.getElementById(id);const keep=sel.value;const want=['',...values];
  if([...sel.options].map(o=>o.value).join('|')===want.join('|'))return;
  sel.replaceChildren(...want.map(v=>{const o=document.createElement('option');o.value=v;o.textContent=v||'all';
    return o;}));
  sel.value=want.includes(keep)?keep:'';
}
function plan(q){
  fetch('plan.svg?'+new URLSearchParams(q)).then(r=>r.text()).then(t=>{document.getElementById('map').innerHTML=t;});
}
function render(rows){
  last=rows;
  for(const f of ['district','queue'])options(f,[...new Set(rows.map(r=>(r.status||{})[f]).filter(v=>v))].sort());
  const q=wanted();const body=document.getElementById('islands');body.replaceChildren();
  for(const r of rows.filter(r=>FILTERS.every(f=>!q[f]||(r.status||{})[f]===q[f]))){
    const s=r.status||{};const a=s.autonomy||{};const tr=document.createElement('tr');
    tr.id='island-'+r.island;
    if(r.online===false)tr.classList.add('offline');
    if(a.critical_h!==undefined&&a.critical_h<6)tr.classList.add('critical');
    const fuel=Object.values(s.fuel||{}).map(f=>f.hours_to_dry).filter(h=>h!==null);
    const link=document.createElement('td');const anchor=document.createElement('a');
    anchor.href='island/'+encodeURIComponent(r.island);anchor.textContent=r.island;link.append(anchor);
    tr.append(link,cell(s.kind||''),cell(s.district||''),cell(s.queue||''),
      cell(r.online===false?'OFFLINE':r.online?'online':'?'),
      cell(s.grid||''),cell(s.source||''),cell(s.mode||''),cell(s.emergency&&s.emergency.active?'EMERGENCY':''),
      cell(hours(a.critical_h),'autonomy'),cell(Object.values(s.soc_pct||{}).map(v=>v.toFixed(0)).join(' / ')),
      cell(fuel.length?hours(Math.min(...fuel)):'–'),cell((s.alarms||r.alarms||[]).join('; '),'alarms'),
      cell(s.ts||r.seen_ts));
    body.append(tr);
  }
  document.getElementById('summary').textContent=rows.length+' islands, '+
    rows.filter(r=>r.online===false).length+' offline, updated '+new Date().toISOString();
  plan(q);
}
fetch('api/islands').then(r=>r.json()).then(render);
new EventSource('events').addEventListener('fleet',e=>render(JSON.parse(e.data)));
</script></body></html>
"""

ISLAND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Island</title>
<style>body{font-family:system-ui,sans-serif;margin:1em;background:#111;color:#eee}
table{border-collapse:collapse}th,td{padding:.2em .6em;border-bottom:1px solid #333;text-align:left}</style></head>
<body><p><a href="../">← the city</a></p><h1 id="title">island</h1><p id="now"></p>
<table><thead><tr><th>cycle [UTC]</th><th>grid</th><th>source</th><th>mode</th><th>emergency</th>
<th>critical autonomy [h]</th><th>SOC [%]</th><th>fuel stock</th><th>alarms</th></tr></thead>
<tbody id="history"></tbody></table>
<script>
const id=decodeURIComponent(location.pathname.split('/').pop());
function cell(t){const td=document.createElement('td');td.textContent=t;return td;}
function show(r){
  document.getElementById('title').textContent=r.island+(r.online===false?' (OFFLINE)':'');
  const body=document.getElementById('history');body.replaceChildren();
  for(const s of r.history.slice().reverse()){
    const tr=document.createElement('tr');const a=s.autonomy||{};
    tr.append(cell(s.ts),cell(s.grid),cell(s.source),cell(s.mode),cell(s.emergency.active?'EMERGENCY':''),
      cell(a.critical_h===undefined?'–':a.critical_h.toFixed(1)),
      cell(Object.values(s.soc_pct).map(v=>v.toFixed(0)).join(' / ')),
      cell(Object.entries(s.fuel).map(([k,f])=>k+' '+f.stock+' '+f.unit).join(', ')),cell(s.alarms.join('; ')));
    body.append(tr);
  }
  document.getElementById('now').textContent=r.history.length+' statuses in the last 24 h';
}
function load(){fetch('../api/islands/'+encodeURIComponent(id)).then(r=>r.json()).then(show);}
load();new EventSource('../events').addEventListener('fleet',load);
</script></body></html>
"""
