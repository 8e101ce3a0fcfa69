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
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from microgrid.errors import ConfigError, InputError
from microgrid.planning.designs import apply_design, design_site, design_state
from microgrid.profiles import Profiles, read_profiles
from microgrid.site import Site, describe_error
from microgrid.site.values import Frozen, NonNegative, Positive, problem
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


class _ScenarioFile(Frozen):
    """One scenario of a sweep file."""

    name: str | None = None
    profiles: str
    days: NonNegative | None = None
    forecast_error: NonNegative = 0.0
    seed: Annotated[int, Field(ge=0, strict=True)] = 0


class _SurvivalFile(Frozen):
    """The ``survival`` section (only for ``controller: survival``; checked by the survival study)."""

    durations_h: tuple[Positive, ...] | None = None
    samples: Annotated[int, Field(gt=0, strict=True)] | None = None
    forecast_error: NonNegative | None = None
    method: str | None = None
    seed: Annotated[int, Field(ge=0, strict=True)] | None = None


class _SweepFile(Frozen):
    """A sweep file, validated like the site file: unknown keys refused, every problem named by its key path."""

    designs: Any
    scenarios: Annotated[tuple[_ScenarioFile, ...], Field(min_length=1)]
    controller: str = "rules"
    metrics: dict[str, str] = Field(default_factory=dict)
    survival: _SurvivalFile = _SurvivalFile()
    mip_gap: NonNegative | None = None
    time_limit_s: Positive | None = None

    @field_validator("controller")
    @classmethod
    def _known_controller(cls, value: str) -> str:
        if value not in CONTROLLERS:
            raise ValueError(f"must be one of {', '.join(CONTROLLERS)}, got {value!r}")
        return value

    @field_validator("designs")
    @classmethod
    def _designs_shape(cls, value: Any) -> Any:
        if isinstance(value, dict) and value:
            for key, values in value.items():
                if not isinstance(values, list) or not values:
                    raise problem(str(key), f"a grid key needs a non-empty list of values, got {values!r}")
        elif isinstance(value, list) and value:
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    raise ValueError(f"item {i} must be a mapping of overrides, got {item!r}")
        else:
            raise ValueError("must be a grid {key: [values]} or a non-empty list of mappings")
        return value

    @model_validator(mode="after")
    def _unique_scenarios(self) -> _SweepFile:
        names = [s.name or Path(s.profiles).stem for s in self.scenarios]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise problem("scenarios", f"name {twice[0]!r} used twice")
        return self


def _designs(raw: Any) -> tuple[tuple[tuple[str, dict[str, Any]], ...], tuple[str, ...]]:
    """(name, overrides) of every design, and the grid's keys (empty for a list)."""
    if isinstance(raw, dict):
        keys = list(raw)
        combos = itertools.product(*(raw[k] for k in keys))
        return tuple((f"d{i:03d}", dict(zip(keys, c, strict=True))) for i, c in enumerate(combos)), tuple(keys)
    designs = [
        (str(item.get("name", f"d{i:03d}")), {k: v for k, v in item.items() if k != "name"})
        for i, item in enumerate(raw)
    ]
    return tuple(designs), ()


def sweep_from_dict(raw: Any, source: str = "<sweep>", base_dir: Path | None = None) -> SweepSpec:
    """Parse a sweep mapping; raise :class:`ConfigError` naming ``source`` and every bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"(top level): must be a mapping, got {type(raw).__name__}"])
    try:
        parsed = _SweepFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, [describe_error(e) for e in exc.errors()]) from None
    base = base_dir or Path.cwd()
    designs, grid_keys = _designs(parsed.designs)
    scenarios = tuple(
        Scenario(s.name or Path(s.profiles).stem, base / s.profiles, s.days, s.forecast_error, s.seed)
        for s in parsed.scenarios
    )
    solver = {k: v for k, v in (("mip_gap", parsed.mip_gap), ("time_limit_s", parsed.time_limit_s)) if v is not None}
    survival = parsed.survival.model_dump(exclude_none=True)
    if "durations_h" in survival:
        survival["durations_h"] = list(survival["durations_h"])
    return SweepSpec(
        designs=designs,
        scenarios=scenarios,
        controller=parsed.controller,
        metrics={"cost": "cost_total", "risk": "unserved_kwh.critical"} | parsed.metrics,
        survival=survival | ({"solver": solver} if solver else {}),
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
