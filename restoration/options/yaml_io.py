"""YAML reading/writing for option files.

PyYAML implements YAML 1.1, where ``2e-4`` (no dot) is a *string*. Option files are full of such
learning rates, so the loader adds a resolver that reads every scientific-notation literal as a float.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["load_yaml", "parse_yaml_value", "dump_yaml"]

_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a float and refuses a key given twice in one mapping.

    PyYAML keeps the last of duplicate keys without a word; in an option file that means one of two
    learning rates (or datasets) is silently ignored.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor' merges; SafeLoader flattens it
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {first}, again on line {line})",
                    key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file safely (no object construction), with scientific floats."""
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)


def parse_yaml_value(text: str) -> Any:
    """Parse one command-line value as YAML (``100`` → int, ``[1,2]`` → list, ``2e-4`` → float). No eval."""
    return yaml.load(text, Loader=_Loader)


def dump_yaml(data: Any, path: str | Path) -> None:
    """Write ``data`` as block-style YAML, keys in insertion order."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False, default_flow_style=False)
