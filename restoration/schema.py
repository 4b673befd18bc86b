"""The ground floor of every option check: how a component declares a key and how a value is checked.

Every component kind (architecture, dataset, degradation, loss, metric, trainer, optimizer, schedule)
declares its options either by its signature (checked with :func:`check_kwargs`, completed with
:func:`bind_arguments`) or by a mapping of :class:`Key` (checked with :func:`check_spec` or
:func:`check_declared`, completed with :func:`bind_options`). This module imports nothing of the package
but :mod:`restoration.errors`, so data, models, losses and metrics may all use it; :mod:`restoration.options`
sits above them and only orchestrates.

Nothing here raises on a bad value: each check appends readable sentences to a list, so a start-up check
can report every problem at once.
"""

from __future__ import annotations

import copy
import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from restoration.errors import value_repr

__all__ = [
    "Key", "COMPONENT", "ANY_MAPPING", "type_ok", "type_name", "did_you_mean", "check_spec", "check_declared",
    "bind_options", "keyword_parameters", "check_kwargs", "check_unknown_keys", "bind_arguments", "all_defaults",
]

COMPONENT = "component"  # a dict with ``type`` resolved through a registry
ANY_MAPPING = "any_mapping"  # a dict whose keys are free (datasets, metrics)

_NoneType = type(None)


@dataclass(frozen=True)
class Key:
    """One option key.

    Attributes:
        types: Accepted Python types (``bool`` is never accepted for ``int``/``float``).
        default: Value filled in when the key is absent (``None``: stays absent/None).
        required: The file must set it.
        children: Spec of a nested mapping; unknown nested keys are reported.
        choices: Allowed values.
        doc: One line for the options reference.
        kind: ``COMPONENT`` or ``ANY_MAPPING`` for sections checked by a registered component.
    """

    types: tuple[type, ...]
    default: Any = None
    required: bool = False
    children: dict[str, "Key"] | None = None
    choices: tuple[Any, ...] | None = None
    doc: str = ""
    kind: str = ""


def all_defaults(spec: Mapping[str, Key]) -> dict[str, Any]:
    """Defaults of a spec (used by the options reference)."""
    return {k: v.default for k, v in spec.items() if v.default is not None}


# ----------------------------------------------------------------------------------------------- types
def _as_tuple(types: Any) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def type_ok(value: Any, types: type | tuple[type, ...]) -> bool:
    """Whether ``value`` is one of ``types``. YAML-aware: ``true`` is never a number (bool is an int
    subclass in Python, but ``gt_size: true`` is a mistake), and an int is accepted where a float is;
    ``object`` accepts anything."""
    types = _as_tuple(types)
    if object in types:  # declared without a type (e.g. an optimizer keyword whose default is None)
        return True
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def type_name(types: type | tuple[type, ...]) -> str:
    """``int or float``; ``null`` for ``NoneType``."""
    return " or ".join("null" if t is _NoneType else t.__name__ for t in _as_tuple(types))


# ----------------------------------------------------------------------------------------- did you mean
def _edit_distance(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of neighbours turning ``a`` into ``b`` (optimal string
    alignment distance): one typo is 1, ``pixel_otp`` -> ``pixel_opt`` included."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def did_you_mean(key: str, candidates: list[str] | set[str]) -> str:
    """`` (did you mean 'x'?)`` when a candidate is a plausible typo of ``key``, else ``""``.

    Plausible: the same up to case, or within a few typos (one per five characters, at least one; keys of four
    characters or fewer only a swap of neighbours), and still similar as a whole (difflib ratio >= 0.75), so
    ``tile`` never suggests ``time`` nor ``noise_range`` ``is_train``; ``gt_sise``, ``pixel_otp`` and
    ``lr_sheduler`` still get theirs.
    """
    low = key.lower()
    best: tuple[int, float, str] | None = None
    for name in sorted(candidates):
        other = name.lower()
        distance = _edit_distance(low, other)
        if distance == 0:
            return f" (did you mean '{name}'?)"
        swap = distance == 1 and len(low) == len(other) and sorted(low) == sorted(other)
        budget = max(1, len(low) // 5) if len(low) > 4 else 0
        ratio = difflib.SequenceMatcher(None, low, other).ratio()
        if (distance <= budget or swap) and ratio >= 0.75:
            if best is None or (distance, -ratio) < best[:2]:
                best = (distance, -ratio, name)
    return f" (did you mean '{best[2]}'?)" if best else ""


# ------------------------------------------------------------------------------- declared keys (mappings)
def value_problem(value: Any, rule: Key) -> str | None:
    """Why ``value`` breaks ``rule`` (type first, then choices), without the key's name; None when it is fine."""
    if not type_ok(value, rule.types):
        return f"must be {type_name(rule.types)}, got {type(value).__name__} {value_repr(value)}"
    if rule.choices is not None and value not in rule.choices:
        return f"must be one of {list(rule.choices)}, got {value_repr(value)}"
    return None


def check_spec(opt: Mapping[str, Any], spec: Mapping[str, Key], where: str, problems: list[str]) -> None:
    """Unknown keys, required keys, types and choices of an option-file section against ``spec``, nested
    sections included; each problem names the full key (``where`` is its dotted prefix, ``"train."``)."""
    for key, value in opt.items():
        if key not in spec:
            problems.append(f"unknown option '{where}{key}'{did_you_mean(key, set(spec))}")
            continue
        rule = spec[key]
        if value is None:
            continue
        problem = value_problem(value, rule)
        if problem is not None:
            problems.append(f"'{where}{key}' {problem}")
            continue
        if rule.children is not None and isinstance(value, Mapping):
            check_spec(value, rule.children, f"{where}{key}.", problems)
    for key, rule in spec.items():
        if rule.required and opt.get(key) is None:
            problems.append(f"missing required option '{where}{key}'")


def check_declared(opt: Mapping[str, Any], declaration: Mapping[str, Key], where: str = "") -> list[str]:
    """Problems of a component's options against its declaration: each unknown key with a did-you-mean, then
    the accepted keys once; missing required keys; wrong types; values outside ``choices``. ``where``
    prefixes each line (``"sources.derain: "``). ``None`` (YAML ``null``) counts as unset."""
    problems: list[str] = []
    unknown = [key for key in opt if key not in declaration]
    problems += [f"{where}unknown key {key!r}{did_you_mean(str(key), set(declaration))}" for key in unknown]
    if unknown:
        problems.append(f"{where}accepted keys: {', '.join(sorted(declaration))}")
    for key, rule in declaration.items():
        value = opt.get(key)
        if value is None:
            if rule.required:
                problems.append(f"{where}missing required key {key!r}")
        elif not type_ok(value, rule.types):
            problems.append(f"{where}{key!r} must be {type_name(rule.types)}, got {type(value).__name__} {value_repr(value)}")
        elif rule.choices is not None and value not in rule.choices:
            problems.append(f"{where}{key} {value_repr(value)} is not one of {rule.choices}")
    return problems


def bind_options(opt: Mapping[str, Any], declaration: Mapping[str, Key]) -> dict[str, Any]:
    """Every declared key of ``declaration`` with the user's value from ``opt`` or else its default.

    ``None`` (YAML ``null``) counts as unset. Undeclared keys are left out (:func:`check_declared` reports
    them). Defaults are copied: a component may change its bound options without changing the declaration.
    """
    return {key: copy.deepcopy(rule.default) if opt.get(key) is None else opt[key] for key, rule in declaration.items()}


# ------------------------------------------------------------------------------ declared by signature
def keyword_parameters(func: Callable[..., Any]) -> dict[str, inspect.Parameter] | None:
    """The parameters of ``func`` a keyword can fill; None when anything goes (``**kwargs``, no signature)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {n: p for n, p in sig.parameters.items()
            if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_unknown_keys(label: str, params: Mapping[str, Any], kwargs: Mapping[str, Any], where: str,
                       problems: list[str]) -> None:
    """One problem per unknown key (with did-you-mean), then the accepted keys once for the component."""
    unknown = [key for key in kwargs if key not in params]
    for key in unknown:
        problems.append(f"'{where}' ({label}) has no argument '{key}'{did_you_mean(key, set(params))}")
    if unknown:
        problems.append(f"'{where}' ({label}) accepts: {', '.join(params)}")


def check_kwargs(func: Callable[..., Any], kwargs: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """Unknown and missing keyword arguments of ``func`` (a class or function) for ``kwargs``."""
    params = keyword_parameters(func)
    if params is None:
        return
    label = str(getattr(func, "__name__", func))
    check_unknown_keys(label, params, kwargs, where, problems)
    for name, p in params.items():
        if p.default is p.empty and name not in kwargs:
            problems.append(f"'{where}' ({label}) needs argument '{name}'")


def bind_arguments(func: Callable[..., Any], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The complete arguments of ``func(**kwargs)``: the known keys of ``kwargs`` bound to the signature
    (``inspect.Signature.bind_partial``) with every default applied, so checks read one source of defaults.

    Unknown keys are left out (:func:`check_kwargs` reports them). Returns None when a required argument
    is missing: there is nothing complete to check then.
    """
    params = keyword_parameters(func)
    known = dict(kwargs) if params is None else {k: v for k, v in kwargs.items() if k in params}
    sig = inspect.signature(func)
    bound = sig.bind_partial(**known)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for name, p in sig.parameters.items():
        if p.kind == p.VAR_KEYWORD:  # flatten **kwargs into the mapping
            arguments.update(arguments.pop(name, {}))
        elif p.kind == p.VAR_POSITIONAL:
            arguments.pop(name, None)
        elif name != "self" and p.kind != p.POSITIONAL_ONLY and name not in arguments:
            return None
    return arguments
