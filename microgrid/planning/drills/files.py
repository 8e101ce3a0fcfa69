"""Reading drill files and finding the shipped library (``models/drills/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from microgrid.errors import ConfigError, InputError
from microgrid.planning.drills.model import Drill, drill_from_dict, site_problems
from microgrid.profiles import Profiles, read_profiles
from microgrid.resources import shipped
from microgrid.site import Site, read_site
from microgrid.yamlio import load_yaml

__all__ = ["LoadedDrill", "library", "read_drill"]


@dataclass(frozen=True)
class LoadedDrill:
    """A drill with its site and profiles read (paths resolved against the drill file)."""

    path: Path
    drill: Drill
    site: Site
    profiles: Profiles


def read_drill(path: str | Path) -> LoadedDrill:
    """Read and check the drill file at ``path``, its site file and its profiles.

    Raises
    ------
    ConfigError
        The drill file, naming each key path and why (unknown keys, bad values, ids the site does not
        have, a site or profiles file that cannot be read).
    """
    path = Path(path)
    drill, problems = drill_from_dict(load_yaml(path))
    if drill is None:
        raise ConfigError(str(path), problems)
    base = path.resolve().parent
    try:
        site = read_site(base / drill.site)
    except InputError as exc:
        raise ConfigError(str(path), [f"site: {exc}"]) from exc
    try:
        profiles = read_profiles(base / drill.profiles, site)
    except InputError as exc:
        raise ConfigError(str(path), [f"profiles: {exc}"]) from exc
    if problems := site_problems(drill, site):
        raise ConfigError(str(path), problems)
    return LoadedDrill(path, drill, site, profiles)


def library() -> list[Path]:
    """The shipped drill files, by name."""
    folder = shipped("models", "drills")
    return sorted((Path(str(folder)) / p.name for p in folder.iterdir() if p.name.endswith(".yaml")), key=str)
