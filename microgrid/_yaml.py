"""YAML loading that refuses duplicate keys and reports line/column of syntax errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from microgrid.errors import ConfigError


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


def load_yaml(path: Path) -> Any:
    """Parse the YAML file at ``path``; raise :class:`ConfigError` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read file: {exc}"]) from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(str(path), [f"{where}{exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from exc
    except (ValueError, RecursionError) as exc:  # e.g. an int of 5000 digits, a date like 2026-02-30, deep nesting
        raise ConfigError(str(path), [f"not valid YAML: {type(exc).__name__}: {exc}"]) from exc
