"""YAML reading/writing for option files.

PyYAML implements YAML 1.1, where ``2e-4`` (no dot) is a *string*. Option files are full of such
learning rates, so the loader adds a resolver that reads every scientific-notation literal as a float.

Aliases (``*name``) are bounded: a document whose values, with every alias expanded, number more than
:data:`MAX_EXPANDED_NODES` (or that contains itself) is refused before anything is built, so a 1 KB "billion
laughs" file is one error line instead of minutes of work and gigabytes of memory in the first message
that prints a value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from restoration.errors import YAMLLimitError

__all__ = ["load_yaml", "parse_yaml_value", "dump_yaml", "yaml_problem", "YAMLLimitError", "MAX_EXPANDED_NODES"]

#: The most values (scalars, lists, mappings) a document may hold once its aliases are expanded. The largest
#: option file here has under 500; the bound only stops alias bombs.
MAX_EXPANDED_NODES = 100_000

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


def _expanded_size(root: yaml.Node, source: str, limit: int) -> int:
    """How many nodes ``root`` holds with every alias expanded (a shared node counts at each use).

    Each distinct node is visited once (sizes are memoised), so this is linear in the file, not in the expansion.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            children = _children(node)
            sizes[key] = min(limit + 1, 1 + sum(sizes[id(c)] for c in children))
            open_nodes.discard(key)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YAMLLimitError(f"{source}: an alias refers to a value that contains it (a recursive document); "
                                 "option files cannot be recursive")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _load(stream: Any, source: str) -> Any:
    """One document from ``stream``: composed, its expanded size checked, then built with :class:`_Loader`."""
    loader = _Loader(stream)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, source, MAX_EXPANDED_NODES)
        if size > MAX_EXPANDED_NODES:
            raise YAMLLimitError(f"{source}: its aliases (*name) expand to more than {MAX_EXPANDED_NODES:,} values; "
                                 "option files hold a few hundred, so it is refused (an alias bomb?)")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: what is wrong and where (PyYAML's own text spans several lines)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        what = "; ".join(p for p in (exc.context, exc.problem) if p)
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return " ".join(f"{what}{where}".split())
    return " ".join(str(exc).split())


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file safely (no object construction), with scientific floats.

    Raises:
        yaml.YAMLError: Not valid YAML, or a tag that builds Python objects (``!!python/...``).
        YAMLLimitError: Aliases expanding past :data:`MAX_EXPANDED_NODES` values (one line naming ``path``).
    """
    with open(path, encoding="utf-8") as f:
        return _load(f, str(path))


def parse_yaml_value(text: str, source: str = "a command-line value") -> Any:
    """Parse one command-line value as YAML (``100`` → int, ``[1,2]`` → list, ``2e-4`` → float). No eval.

    Raises:
        yaml.YAMLError: As :func:`load_yaml`.
    """
    return _load(text, source)


def dump_yaml(data: Any, path: str | Path) -> None:
    """Write ``data`` as block-style YAML, keys in insertion order."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False, default_flow_style=False)
