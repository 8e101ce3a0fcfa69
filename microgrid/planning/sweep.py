"""Sizing sweeps: designs × scenarios → one row of KPIs each, on Dask.

**Designs** (``battery.bess2.capacity_kwh: 600``…) are applied by :mod:`microgrid.planning.designs` (re-exported).

A **sweep file** (YAML, see ``models/sweeps/hospital-sizing.yaml``)::

    controller: rules            # rules | mpc | perfect_foresight, or survival
    designs:                     # a grid {key: [values…]} (every combination) or a list of mappings
      battery.bess2.capacity_kwh: [400, 800]
      fuel.diesel.stock: [800, 1500]
    scenarios:                   # profiles are relative to the sweep file
      - {name: winter, profiles: ../../data/hospital-winter-day.csv, days: 1, forecast_error: 0, seed: 0}
    metrics: {cost: cost_total, risk: unserved_kwh.critical}
    survival: {durations_h: [24, 72], samples: 200}   # only for controller: survival

:func:`run_sweep` evaluates every design × scenario (one task each) with
:func:`microgrid.planning.simulate` (or :func:`~microgrid.planning.survival.survival`) on a
Dask cluster: a local one (``workers`` processes of one thread) by default, the scheduler at
``scheduler`` when given, in-process when ``workers=0``. Tasks are pure functions of their
inputs and seeds, so the result does not depend on where they ran.
"""

from __future__ import annotations

import importlib
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microgrid.errors import ConfigError, InputError
from microgrid.planning.designs import apply_design, design_site, design_state
from microgrid.profiles import Profiles, read_profiles
from microgrid.site import Site
from microgrid.state import SiteState
from microgrid.yamlio import load_yaml

__all__ = [
    "Scenario",
    "SweepSpec",
    "apply_design",
    "check_designs",
    "design_site",
    "design_state",
    "evaluate",
    "read_sweep",
    "run_sweep",
    "sweep_from_dict",
]

CONTROLLERS = ("rules", "mpc", "perfect_foresight", "survival")


# -- sweep files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """Profiles to evaluate every design on, with the simulation's settings."""

    name: str
    profiles: Path
    days: float | None = None
    forecast_error: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file: designs, scenarios, how to evaluate them, what to plot.

    ``designs`` are (name, overrides) pairs; ``grid_keys`` the keys of a grid sweep (the
    heatmap's axes), empty for a list.
    """

    designs: tuple[tuple[str, dict[str, Any]], ...]
    scenarios: tuple[Scenario, ...]
    controller: str = "rules"
    metrics: dict[str, str] = field(default_factory=lambda: {"cost": "cost_total", "risk": "unserved_kwh.critical"})
    survival: dict[str, Any] = field(default_factory=dict)
    grid_keys: tuple[str, ...] = ()
    source: str = "<sweep>"

    @property
    def tasks(self) -> int:
        """Number of design × scenario evaluations."""
        return len(self.designs) * len(self.scenarios)


_TOP_KEYS = {"designs", "scenarios", "controller", "metrics", "survival", "mip_gap", "time_limit_s"}
_SCENARIO_KEYS = {"name", "profiles", "days", "forecast_error", "seed"}
_SURVIVAL_KEYS = {"durations_h", "samples", "forecast_error", "method", "seed"}


def _designs(raw: Any, problems: list[str]) -> tuple[tuple[tuple[str, dict[str, Any]], ...], tuple[str, ...]]:
    if isinstance(raw, dict):
        keys = list(raw)
        for key in keys:
            values = raw[key]
            if not isinstance(values, list) or not values:
                problems.append(f"designs.{key}: a grid key needs a non-empty list of values, got {values!r}")
        if problems:
            return (), ()
        combos = itertools.product(*(raw[k] for k in keys))
        return tuple((f"d{i:03d}", dict(zip(keys, c, strict=True))) for i, c in enumerate(combos)), tuple(keys)
    if isinstance(raw, list) and raw:
        designs = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                problems.append(f"designs[{i}]: must be a mapping of overrides, got {item!r}")
                continue
            designs.append((str(item.get("name", f"d{i:03d}")), {k: v for k, v in item.items() if k != "name"}))
        return tuple(designs), ()
    problems.append("designs: must be a grid {key: [values]} or a non-empty list of mappings")
    return (), ()


def _scenario(i: int, raw: Any, base: Path, problems: list[str]) -> Scenario | None:
    where = f"scenarios[{i}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping with at least 'profiles', got {raw!r}")
        return None
    problems += [
        f"{where}.{k}: unknown key (known: {', '.join(sorted(_SCENARIO_KEYS))})" for k in raw if k not in _SCENARIO_KEYS
    ]
    if not isinstance(raw.get("profiles"), str):
        problems.append(f"{where}.profiles: required, a profiles CSV path relative to the sweep file")
        return None
    numbers = {"days": raw.get("days"), "forecast_error": raw.get("forecast_error", 0.0), "seed": raw.get("seed", 0)}
    for key, value in numbers.items():
        bad = value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0)
        if bad or (key == "seed" and not isinstance(value, int)):
            problems.append(
                f"{where}.{key}: must be a non-negative {'integer' if key == 'seed' else 'number'}, got {value!r}"
            )
    path = base / raw["profiles"]
    return Scenario(
        name=str(raw.get("name", Path(raw["profiles"]).stem)),
        profiles=path,
        days=None if raw.get("days") is None else float(raw["days"]),
        forecast_error=float(raw.get("forecast_error", 0.0))
        if isinstance(raw.get("forecast_error", 0.0), int | float)
        else 0.0,
        seed=raw.get("seed", 0) if isinstance(raw.get("seed", 0), int) else 0,
    )


def sweep_from_dict(raw: Any, source: str = "<sweep>", base_dir: Path | None = None) -> SweepSpec:
    """Parse a sweep mapping; raise :class:`ConfigError` naming ``source`` and every bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"(top level): must be a mapping, got {type(raw).__name__}"])
    problems = [f"{k}: unknown key (known: {', '.join(sorted(_TOP_KEYS))})" for k in raw if k not in _TOP_KEYS]
    designs, grid_keys = _designs(raw.get("designs"), problems)
    scenarios_raw = raw.get("scenarios")
    if not isinstance(scenarios_raw, list) or not scenarios_raw:
        problems.append("scenarios: required, a non-empty list of {name, profiles, days, forecast_error, seed}")
        scenarios_raw = []
    base = base_dir or Path.cwd()
    scenarios = tuple(s for i, r in enumerate(scenarios_raw) if (s := _scenario(i, r, base, problems)) is not None)
    names = [s.name for s in scenarios]
    problems += [f"scenarios: name {n!r} used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    controller = raw.get("controller", "rules")
    if controller not in CONTROLLERS:
        problems.append(f"controller: must be one of {', '.join(CONTROLLERS)}, got {controller!r}")
    metrics = raw.get("metrics", {})
    if not isinstance(metrics, dict) or not all(isinstance(v, str) for v in metrics.values()):
        problems.append(f"metrics: must map names (cost, risk) to KPI names, got {metrics!r}")
        metrics = {}
    survival_raw = raw.get("survival", {})
    if not isinstance(survival_raw, dict):
        problems.append(f"survival: must be a mapping ({', '.join(sorted(_SURVIVAL_KEYS))}), got {survival_raw!r}")
        survival_raw = {}
    problems += [
        f"survival.{k}: unknown key (known: {', '.join(sorted(_SURVIVAL_KEYS))})"
        for k in survival_raw
        if k not in _SURVIVAL_KEYS
    ]
    if problems:
        raise ConfigError(source, problems)
    default_metrics = {"cost": "cost_total", "risk": "unserved_kwh.critical"}
    solver = {k: raw[k] for k in ("mip_gap", "time_limit_s") if k in raw}
    return SweepSpec(
        designs=designs,
        scenarios=scenarios,
        controller=str(controller),
        metrics=default_metrics | dict(metrics),
        survival=dict(survival_raw) | ({"solver": solver} if solver else {}),
        grid_keys=grid_keys,
        source=source,
    )


def read_sweep(path: str | Path) -> SweepSpec:
    """Read a sweep YAML file; scenario profile paths are relative to it."""
    path = Path(path)
    return sweep_from_dict(load_yaml(path), str(path), path.resolve().parent)


# -- evaluation ------------------------------------------------------------------------------------


def _survival_kpis(
    site: Site, profiles: Profiles, state: SiteState | None, options: Mapping[str, Any]
) -> dict[str, float]:
    from microgrid.planning.survival import survival  # noqa: PLC0415 - keeps task imports light

    kwargs = {k: v for k, v in options.items() if k != "solver"}
    result = survival(site, profiles, state=state, **kwargs)
    hours = result.hours_survived["hours"]
    kpis = {f"p_survive.{d:g}h": float(p) for d, p in result.probability.items()}
    return kpis | {"hours_survived_median": float(hours.median()), "hours_survived_p10": float(hours.quantile(0.1))}


def evaluate(
    site: Site,
    profiles: Profiles,
    design: tuple[str, Mapping[str, Any]],
    scenario: Scenario,
    controller: str = "rules",
    *,
    state: SiteState | None = None,
    survival: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One sweep row: the design applied, then simulated (or its survival analysed) on the scenario.

    Never raises for a bad design or a failed simulation: the row's ``error`` says why.
    """
    name, overrides = design
    row: dict[str, Any] = {"design": name, "scenario": scenario.name, **overrides, "error": None}
    began = time.perf_counter()
    try:
        designed, scaled = apply_design(site, profiles, overrides)
        state = design_state(state, designed, overrides)
        if controller == "survival":
            options = dict(survival or {})
            options.setdefault("seed", scenario.seed)
            options.setdefault("forecast_error", scenario.forecast_error)
            row |= _survival_kpis(designed, scaled, state, options)
        else:
            row |= _simulated_kpis(designed, scaled, state, scenario, controller=controller, options=survival or {})
    except Exception as exc:  # one bad design must not sink the sweep; the row says why
        row["error"] = f"{type(exc).__name__}: {exc}"
    row["task_s"] = time.perf_counter() - began
    return row


def _simulated_kpis(
    site: Site,
    profiles: Profiles,
    state: SiteState | None,
    scenario: Scenario,
    *,
    controller: str,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    from microgrid.planning.baselines import run_controller  # noqa: PLC0415 - keeps task imports light

    result = run_controller(
        controller,
        site,
        profiles,
        state=state,
        days=scenario.days,
        forecast_error=scenario.forecast_error,
        seed=scenario.seed,
        **dict(options.get("solver", {})),
    )
    return {str(k): v.item() if isinstance(v, np.generic) else v for k, v in result.kpis.items()}


# -- running ---------------------------------------------------------------------------------------


def _load_scenarios(site: Site, spec: SweepSpec) -> dict[str, Profiles]:
    loaded = {}
    for scenario in spec.scenarios:
        try:
            loaded[scenario.name] = read_profiles(scenario.profiles, site)
        except InputError as exc:
            raise type(exc)(f"{spec.source}: scenario {scenario.name!r}: {exc.source}", exc.problems) from None
    return loaded


def run_sweep(
    site: Site,
    spec: SweepSpec,
    *,
    state: SiteState | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    progress: bool = True,
    parquet: str | Path | None = None,
    on_result: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Evaluate every design × scenario of ``spec``; one row each, in the spec's order.

    Parameters
    ----------
    scheduler
        A Dask scheduler address (``tcp://host:8786``): run there. The workers must have
        microgrid installed and be able to read nothing (profiles are sent from here).
    workers
        Without ``scheduler``: processes of a local cluster (one thread each); 0 runs the
        tasks here, one after the other.
    progress
        Show a progress bar (rich) while the tasks run.
    parquet
        Also write the result to this Parquet file.
    on_result
        Called as ``on_result(done, total)`` after every task.

    Returns
    -------
    pandas.DataFrame
        Columns ``design``, ``scenario``, the design keys, ``error`` (None when the task
        succeeded), ``task_s`` and the KPIs (``SimulationResult.kpis`` or the survival figures).
    """
    scenarios = _load_scenarios(site, spec)
    tasks = [(design, scenario) for design in spec.designs for scenario in spec.scenarios]
    options = spec.survival
    args = [(site, scenarios[sc.name], design, sc, spec.controller) for design, sc in tasks]
    with _Progress(len(tasks), progress, on_result) as bar:
        if scheduler is None and workers == 0:
            rows = []
            for arg in args:
                rows.append(evaluate(*arg, state=state, survival=options))
                bar.advance()
        else:
            rows = _run_dask(args, state, options, bar, scheduler=scheduler, workers=workers)
    frame = pd.DataFrame(rows)
    if parquet is not None:
        frame.to_parquet(parquet, index=False)
    return frame


def _run_dask(
    args: Sequence[tuple[Any, ...]],
    state: SiteState | None,
    options: Mapping[str, Any],
    bar: _Progress,
    *,
    scheduler: str | None,
    workers: int,
) -> list[dict[str, Any]]:
    distributed: Any = importlib.import_module("distributed")  # dask starts only for sweeps (and is untyped)

    cluster: Any = None
    if scheduler is not None:
        client = distributed.Client(scheduler)
    else:
        cluster = distributed.LocalCluster(
            n_workers=max(workers, 1), threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)
    try:
        futures = [client.submit(evaluate, *arg, state=state, survival=options, pure=False) for arg in args]
        position = {future.key: i for i, future in enumerate(futures)}
        rows: list[dict[str, Any] | None] = [None] * len(futures)
        for future in distributed.as_completed(futures):
            rows[position[future.key]] = future.result()
            bar.advance()
        return [r for r in rows if r is not None]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


class _Progress:
    """A rich progress bar over the tasks (or nothing), plus the ``on_result`` callback."""

    def __init__(self, total: int, show: bool, on_result: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.on_result = total, 0, on_result
        self._bar: Any = None
        if show:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn  # noqa: PLC0415

            self._bar = Progress("sweep", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False)
            self._task = self._bar.add_task("sweep", total=total)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.advance(self._task)
        if self.on_result is not None:
            self.on_result(self.done, self.total)


def check_designs(site: Site, spec: SweepSpec) -> None:
    """Raise :class:`ConfigError` naming the sweep file and the design when one does not apply to ``site``."""
    problems = []
    for name, design in spec.designs:
        try:
            design_site(site, design)
        except ConfigError as exc:
            problems += [f"designs: {name} ({exc.source}): {p}" for p in exc.problems]
    if problems:
        raise ConfigError(spec.source, problems)
