"""Strict YAML loading for every YAML file the project reads (site, device maps, sweeps, drills): duplicate keys
refused, syntax errors with line and column, alias bombs refused before they expand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from microgrid.errors import ConfigError

__all__ = ["MAX_EXPANDED_VALUES", "expanded_size", "load_yaml"]


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings refuse a key given twice."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # a merge key (<<): keys given here override the merged ones
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # unhashable key: construct_mapping below refuses it with its line
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice (first on line {first})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


MAX_EXPANDED_VALUES = 100_000
"""A document whose aliases expand to more values than this is refused (a site file has a few hundred;
a "billion laughs" of 340 bytes expands to 10⁹, and every error message would print them all)."""


def expanded_size(value: Any) -> int:
    """How many values ``value`` holds once every alias is expanded (counted with memo: fast on a bomb)."""
    memo: dict[int, int] = {}

    def size(v: Any, depth: int) -> int:
        if not isinstance(v, dict | list) or depth > 200:
            return 1
        if id(v) not in memo:
            children = [*v.keys(), *v.values()] if isinstance(v, dict) else v
            memo[id(v)] = 1 + sum(size(c, depth + 1) for c in children)
        return memo[id(v)]

    return size(value, 0)


def load_yaml(path: Path) -> Any:
    """Parse the YAML file at ``path``; raise :class:`ConfigError` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read file: {exc}"]) from exc
    try:
        document = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(str(path), [f"{where}{exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from exc
    except (ValueError, RecursionError) as exc:  # e.g. an int of 5000 digits, a date like 2026-02-30, deep nesting
        raise ConfigError(str(path), [f"not valid YAML: {type(exc).__name__}: {exc}"]) from exc
    if (n := expanded_size(document)) > MAX_EXPANDED_VALUES:
        raise ConfigError(
            str(path), [f"its aliases (*name) expand to {n:,} values, more than {MAX_EXPANDED_VALUES:,}: refused"]
        )
    return document
