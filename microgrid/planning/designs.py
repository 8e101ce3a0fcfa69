"""Designs: overrides applied to a site and its profiles, for sizing sweeps.

A **design** is a mapping of overrides; :func:`apply_design` returns the site and profiles it
describes, :func:`design_site` only the site, :func:`design_state` the operating state moved
over to it. Each key is ``<kind>.<id|*>.<field>``: ``kind`` is ``battery``, ``generator``,
``pv``, ``load`` or ``fuel`` (whose ``id`` is the fuel's name), ``*`` selects every asset of
the kind, and ``grid.<field>`` (no id) edits the grid connection. Values are plain numbers in
the field's own unit (kWh for ``capacity_kwh``, kW for ``max_kw`` / ``peak_kw`` /
``max_import_kw``, the fuel's unit for ``stock``, the site's currency for prices) or, for
``…_scale`` and ``scale``, a dimensionless factor:

========================================  ===============================================
``battery.bess2.capacity_kwh: 600``       any numeric field of a battery / generator / PV array /
``generator.dg1.max_kw: 250``             load tier / fuel / the grid (``grid.max_import_kw``)
``fuel.diesel.stock: 800``
``battery.*.capacity_kwh_scale: 1.5``     ``<field>_scale`` multiplies the field
``battery.bess1.scale: 2``                a whole battery: capacity and both power limits
                                          (a generator: ``max_kw`` and ``min_kw``)
``pv.roof.peak_kw: 300``                  PV: the ``pv.<id>`` profile scales with the peak
``load.critical.scale: 1.2``              a tier's demand profile ×1.2
``generator.dg2.max_kw: 0``               0 capacity (``max_kw``, ``capacity_kwh``, ``peak_kw``)
                                          removes the asset
========================================  ===============================================

Keys are applied in order; ``name`` (the design's label) is ignored. The new site is validated
again (a design with ``min_kw > max_kw`` is refused, naming the key); the device bindings of
removed assets go with them. A bad key raises :class:`~microgrid.errors.ConfigError` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from microgrid.errors import ConfigError
from microgrid.profiles import Profiles
from microgrid.site import Site, describe_error
from microgrid.state import SiteState

__all__ = ["apply_design", "design_site", "design_state"]

_SECTIONS = {"battery": "batteries", "generator": "generators", "pv": "pv", "load": "loads"}
_SIZE_FIELD = {"battery": "capacity_kwh", "generator": "max_kw", "pv": "peak_kw"}
_WHOLE_SCALE = {
    "battery": ("capacity_kwh", "max_charge_kw", "max_discharge_kw"),
    "generator": ("max_kw", "min_kw"),
    "pv": ("peak_kw",),
}


def _targets(raw: dict[str, Any], kind: str, ident: str, key: str) -> list[dict[str, Any]]:
    if kind == "fuel":
        pool = raw.get("fuels", {})
        if ident == "*":
            return list(pool.values())
        if ident not in pool:
            raise ValueError(f"names no fuel of the site ({', '.join(pool) or 'none'})")
        return [pool[ident]]
    assets = raw.get(_SECTIONS[kind], [])
    chosen = [a for a in assets if ident in ("*", a["id"])]
    if not chosen:
        known = ", ".join(a["id"] for a in assets) or "none"
        raise ValueError(f"names no {kind} of the site ({known})")
    return chosen


def _set(target: dict[str, Any], kind: str, name: str, value: float) -> None:
    if name == "scale":
        for field_name in _WHOLE_SCALE.get(kind, ()):
            target[field_name] = float(target[field_name]) * value
        return
    base = name.removesuffix("_scale")
    if base not in target or isinstance(target[base], bool | str) or base == "id":
        numeric = sorted(k for k, v in target.items() if isinstance(v, int | float) and not isinstance(v, bool))
        raise ValueError(f"{kind} has no numeric field {base!r} (known: {', '.join(numeric)})")
    new = float(target[base]) * value if name.endswith("_scale") else value
    target[base] = int(new) if isinstance(target[base], int) and float(new).is_integer() else new


def _profile_factors(site: Site, design: Mapping[str, Any]) -> dict[str, float]:
    """Multipliers of profile columns (``load.<tier>``, ``pv.<id>``) implied by the design."""
    factors: dict[str, float] = {}
    for key, value in design.items():
        kind, ident, name = [*key.split(".", 2), "", ""][:3]
        if kind == "load" and name == "scale":
            for tier in site.loads:
                if ident in ("*", tier.id):
                    factors[f"load.{tier.id}"] = factors.get(f"load.{tier.id}", 1.0) * float(value)
        elif kind == "pv":
            for array in site.pv:
                if ident not in ("*", array.id):
                    continue
                ratio = (
                    float(value) / array.peak_kw
                    if name == "peak_kw"
                    else float(value)
                    if name in ("scale", "peak_kw_scale")
                    else 1.0
                )
                factors[f"pv.{array.id}"] = factors.get(f"pv.{array.id}", 1.0) * ratio
    return factors


def _edit(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if parts[0] == "grid" and len(parts) == 2:
        if raw.get("grid") is None:
            raise ValueError("the site has no grid")
        _set(raw["grid"], "grid", parts[1], value)
        return
    if len(parts) != 3 or parts[0] not in (*_SECTIONS, "fuel"):
        raise ValueError("not a design key like 'battery.<id>.<field>', 'fuel.<name>.stock' or 'grid.<field>'")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    kind, ident, name = parts
    if kind == "load" and name == "scale":
        _targets(raw, kind, ident, key)  # the profile is scaled, not the site
        return
    for target in _targets(raw, kind, ident, key):
        _set(target, kind, name, float(value))


def design_site(site: Site, design: Mapping[str, Any]) -> Site:
    """The site of ``design`` (module docstring); raise :class:`ConfigError` naming the key.

    Keys are applied in order; ``name`` (the design's label) is ignored.
    """
    raw = site.model_dump()
    for key, value in design.items():
        if key == "name":
            continue
        try:
            _edit(raw, key, value)
        except ValueError as exc:
            raise ConfigError("design", [f"{key}: {exc}"]) from None
    removed = {a["id"] for kind, size in _SIZE_FIELD.items() for a in raw[_SECTIONS[kind]] if a[size] <= 0}
    for kind, size in _SIZE_FIELD.items():
        raw[_SECTIONS[kind]] = [a for a in raw[_SECTIONS[kind]] if a[size] > 0]
    raw["devices"] = [d for d in raw.get("devices", []) if d.get("asset") not in removed]
    try:
        new = Site.model_validate(raw)
    except ValidationError as exc:
        keys = ", ".join(k for k in design if k != "name")
        raise ConfigError(f"design ({keys})", [describe_error(e) for e in exc.errors()]) from None
    return new.with_base_dir(site.base_dir)


def apply_design(site: Site, profiles: Profiles, design: Mapping[str, Any]) -> tuple[Site, Profiles]:
    """The site and profiles of ``design`` (module docstring); raise :class:`ConfigError` naming the key."""
    new = design_site(site, design)
    return new, _scaled_profiles(new, profiles, _profile_factors(site, design))


def _scaled_profiles(site: Site, profiles: Profiles, factors: Mapping[str, float]) -> Profiles:
    load = profiles.load_kw[[t.id for t in site.loads]].copy()
    pv = profiles.pv_kw[[a.id for a in site.pv]].copy()
    for column, factor in factors.items():
        kind, ident = column.split(".", 1)
        frame = load if kind == "load" else pv
        if ident in frame.columns:
            frame[ident] = frame[ident] * factor
    return Profiles(
        index=profiles.index,
        step_h=profiles.step_h,
        load_kw=load,
        pv_kw=pv,
        grid_available=profiles.grid_available,
        import_price_per_kwh=profiles.import_price_per_kwh,
        export_price_per_kwh=profiles.export_price_per_kwh,
    )


def design_state(state: SiteState | None, site: Site, design: Mapping[str, Any]) -> SiteState | None:
    """``state`` for the designed ``site``: fuel stocks the design sets win, removed assets dropped."""
    if state is None:
        return None
    fuels = {f for f in site.fuels for key in design if key.startswith((f"fuel.{f}.stock", "fuel.*.stock"))}
    return SiteState(
        soc={b.id: state.soc[b.id] for b in site.batteries if b.id in state.soc},
        generators={g.id: state.generators[g.id] for g in site.generators if g.id in state.generators},
        fuel_stock={
            f: site.fuels[f].stock if f in fuels else state.fuel_stock.get(f, site.fuels[f].stock) for f in site.fuels
        },
    )
