"""The one declaration protocol of every component kind, and the one function that checks a section against it.

Every component an option file names (architecture, dataset, degradation, loss, metric, trainer, optimizer,
schedule, batch augmentation, and a dataset's nested sections such as all-in-one sources) follows it:

1. **It declares its options once**, in one of two ways:

   * by its signature: explicit keyword parameters with their defaults (``def __init__(self, upscale: int,
     num_feat: int = 64)``); a parameter without a default is a required key. A ``**kwargs`` that swallows
     unknown keys is not a declaration: :func:`component_problems` reports such a component instead of
     accepting anything;
   * or by an ``options`` attribute: a mapping ``key ->`` :class:`~restoration.schema.Key` (types, default,
     required, choices, doc). Datasets do this, because they take one option dict (BasicSR style).

   Table rows that are not classes (schedules, degradations, noise models, all-in-one sources) are declared
   the same way through a :class:`Declared` row. A trainer declares its own ``train:`` keys in ``options``;
   the option check joins them with the common ``train:`` keys into one :class:`Declared` row.

2. **Optionally it checks its values**: a classmethod (or function attribute) ``check_options(bound)`` that
   receives the *complete* bound options (the user's values, every default applied: :func:`bound_options`)
   and returns a list of readable problems. It never raises and never repeats a default. (A trainer's
   ``check_options`` receives its bound ``train:`` section. What only the whole file shows, such as its
   networks or a discriminator's input size against the training crop, is a trainer's second classmethod,
   ``check_run(opt, is_train)``, which receives the option file.)

3. **Framework keys are declared, not special-cased**: keys the framework reads beside the component's own
   (a metric's ``better``, a loss entry's ``label``) are passed as a ``framework`` mapping of ``Key``; they are
   accepted, type-checked and offered by the did-you-mean like the component's own keys.

:func:`component_problems` implements the check: unknown keys each with a did-you-mean and the accepted keys
once, missing required keys, wrong types and choices, then the component's own ``check_options`` exactly once.
:mod:`restoration.options.validate` runs it for every section of an option file at start-up.

**Each check runs once per run.** A section the start-up check found clean is remembered by its component and
its bound values; a constructor that refuses bad options (a dataset built by Python code with a typo raises
its ``DatasetOptionError``) asks :func:`construction_problems`, which skips a section remembered with exactly
these values and otherwise checks it. So ``train.py`` checks every section once, and a component built from
options that never went through the start-up check still refuses them. A trainer's whole-file check
(``check_run``) is remembered the same way for the parsed option dict (:func:`remember_clean_run`) and looked
up by the trainer's constructor (:func:`run_problems`).

This module is a leaf beside :mod:`restoration.schema`: it imports nothing of the package but that module and
:mod:`restoration.errors`, so components (data, models, losses, metrics, archs, optim) may all use it.
"""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping

from restoration.schema import (
    Key,
    bind_arguments,
    bind_options,
    check_declared,
    check_unknown_keys,
    keyword_parameters,
    value_problem,
)

__all__ = ["Declared", "declared_mapping", "declared_parameters", "component_label", "bound_options",
           "component_problems", "construction_problems", "refuse_bad_arguments", "remember_clean_run", "run_problems"]


@dataclass(frozen=True)
class Declared:
    """A component that is a row of a table rather than a class (a schedule, a degradation, a noise model).

    Attributes:
        name: How messages name it (``WSD``, ``jpeg``).
        options: Its declaration, ``key ->`` :class:`Key`.
        check: Its own ``check_options(bound)`` (complete bound options -> problems), if any.
    """

    name: str
    options: Mapping[str, Key]
    check: Callable[[dict[str, Any]], list[str]] | None = None

    @property
    def __name__(self) -> str:  # noqa: A003 - read by component_label like a class's name
        return self.name

    def check_options(self, bound: dict[str, Any]) -> list[str]:
        """The row's own check (see the module docstring); ``[]`` without one."""
        return self.check(bound) if self.check is not None else []


def declared_mapping(component: Any) -> Mapping[str, Key] | None:
    """The ``options`` mapping a component declares, or None when it declares by its signature."""
    options = getattr(component, "options", None)
    if isinstance(options, Mapping) and all(isinstance(rule, Key) for rule in options.values()):
        return options
    return None


def declared_parameters(component: Any, call_args: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The keyword parameters a signature declares, less ``call_args`` (arguments supplied when it is called,
    not by the file: a metric's ``img``/``img2``); None when the signature takes ``**kwargs`` or has none."""
    params = keyword_parameters(component)
    if params is None:
        return None
    return {name: p for name, p in params.items() if name not in call_args}


def component_label(component: Any) -> str:
    """The name messages give a component: its ``__name__`` (a class, a function, a :class:`Declared` row)."""
    return str(getattr(component, "__name__", None) or type(component).__name__)


def bound_options(component: Any, options: Mapping[str, Any], call_args: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The complete options ``check_options`` receives: the declared keys of ``options`` with every default
    applied (:func:`~restoration.schema.bind_options` for an ``options`` mapping,
    :func:`~restoration.schema.bind_arguments` for a signature, less ``call_args``). Undeclared keys are left
    out. None when a signature's required argument is missing (there is nothing complete to check)."""
    mapping = declared_mapping(component)
    if mapping is not None:
        return bind_options(options, mapping)
    if declared_parameters(component, call_args) is None:
        return None
    bound = bind_arguments(component, {**dict.fromkeys(call_args), **options})
    return None if bound is None else {k: v for k, v in bound.items() if k not in call_args}


def _own_check(component: Any, bound: dict[str, Any]) -> list[str]:
    check = getattr(component, "check_options", None)
    if check is None:
        return []
    try:
        return list(check(bound))
    except Exception as exc:  # a buggy check must not hide the user's real problems
        return [f"check_options failed: {type(exc).__name__}: {exc}"]


def component_problems(
    component: Any,
    options: Any,
    where: str,
    *,
    label: str | None = None,
    framework: Mapping[str, Key] | None = None,
    call_args: tuple[str, ...] = (),
) -> list[str]:
    """Every problem of one option-file section for ``component`` (empty list: it is fine). Never raises.

    In order: the framework keys' types and choices; unknown keys, each with a did-you-mean, and the accepted
    keys once; missing required keys; for an ``options`` mapping the declared types and choices; then the
    component's own ``check_options`` once, on the complete bound options (for a signature only when no
    required argument is missing). A component whose signature swallows ``**kwargs`` is itself a problem.

    Messages (each names the section ``where``, e.g. ``train.losses[0]``):

    * a signature: ``'where' (Name) has no argument 'x' (did you mean 'y'?)``, ``'where' (Name) accepts: ...``,
      ``'where' (Name) needs argument 'x'``;
    * an ``options`` mapping: ``'where': unknown key 'x' (did you mean 'y'?)``, ``'where': accepted keys: ...``,
      ``'where': missing required key 'x'``, ``'where': 'x' must be int, got str '2'`` (the ``'where': 'x'``
      form lets ``--force_yml where.x=...`` be named beside the problem);
    * its own check: ``'where': <problem>`` (an ``options`` mapping with ``label``: ``'where' (label): ...``);
    * a framework key: ``'where.key' must be one of [...], got ...``.

    Args:
        component: A class or function declaring by signature, or anything with an ``options`` mapping
            (a dataset class, a :class:`Declared` row).
        options: The user's section without its ``type`` key.
        label: Names the component in its own check's messages for an ``options`` mapping (signatures always
            name it).
        framework: Keys the framework reads from the section beside the component's own.
        call_args: Signature arguments supplied at call time, never by the file.
    """
    if not isinstance(options, Mapping):
        return [f"'{where}' must be a mapping, got {type(options).__name__}"]
    framework = framework or {}
    problems: list[str] = []
    for key, rule in framework.items():
        if options.get(key) is not None:
            problem = value_problem(options[key], rule)
            if problem is not None:
                problems.append(f"'{where}.{key}' {problem}")
    own = {k: v for k, v in options.items() if k not in framework}
    mapping = declared_mapping(component)
    if mapping is not None:
        problems += [f"'{where}': {p}" for p in check_declared(own, {**mapping, **framework})]
        prefix = f"'{where}' ({label}): " if label else f"'{where}': "
        bound: dict[str, Any] | None = bind_options(own, mapping)
    else:
        name = component_label(component)
        params = declared_parameters(component, call_args)
        if params is None:
            return problems + [f"'{where}' ({name}) declares no options: its signature takes **kwargs, which "
                               "would accept any misspelt key; name every option as a keyword parameter"]
        prefix = f"'{where}': "
        check_unknown_keys(name, {**params, **framework}, own, where, problems)
        problems += [f"'{where}' ({name}) needs argument '{n}'" for n, p in params.items()
                     if p.default is p.empty and n not in own]
        bound = bound_options(component, own, call_args)
    if bound is not None:
        problems += [prefix + p for p in _own_check(component, bound)]
        if not problems:
            _remember_clean(component, bound)
    return problems


# ------------------------------------------------------------------------------------- checked once per run
#: Sections found clean in this process: (component, frozen bound options). Bounded: the oldest go first.
_CLEAN: collections.OrderedDict[tuple[Hashable, Hashable], None] = collections.OrderedDict()
_CLEAN_LIMIT = 256


def _frozen(value: Any) -> Hashable:
    """A hashable image of an option value that tells apart everything YAML can write (``1`` and ``True``,
    ``1`` and ``1.0``, a list and a mapping)."""
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), _frozen(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_frozen(v) for v in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ("dataclass", type(value).__qualname__, _frozen(dataclasses.asdict(value)))
    return (type(value).__qualname__, repr(value))


def _component_key(component: Any) -> Hashable:
    if isinstance(component, Declared):
        return ("declared", component.name, _frozen(dict(component.options)), id(component.check))
    return component


def _remember_clean(component: Any, bound: Mapping[str, Any]) -> None:
    _remember((_component_key(component), _frozen(bound)))


def _remember(key: tuple[Hashable, Hashable]) -> None:
    _CLEAN[key] = None
    _CLEAN.move_to_end(key)
    while len(_CLEAN) > _CLEAN_LIMIT:
        _CLEAN.popitem(last=False)


def construction_problems(component: Any, options: Mapping[str, Any], where: str,
                          call_args: tuple[str, ...] = ()) -> list[str]:
    """The problems a constructor refuses ``options`` for (it raises its own error when there are any).

    Empty without checking anything when the start-up check (:func:`component_problems`) found exactly
    these bound values clean for ``component`` in this process, so ``train.py`` checks each section once;
    otherwise (a component built directly by Python code) the full :func:`component_problems`.
    """
    bound = bound_options(component, options, call_args) if isinstance(options, Mapping) else None
    if bound is not None and set(options) <= set(bound):  # an undeclared key is never remembered as clean
        if (_component_key(component), _frozen(bound)) in _CLEAN:
            return []
    return component_problems(component, options, where, call_args=call_args)


def refuse_bad_arguments(component: Any, arguments: Mapping[str, Any],
                         error: Callable[[str], Exception] = ValueError) -> None:
    """Raise ``error`` naming every problem of a component's constructor ``arguments`` (all of them, by
    name), unless the start-up check found exactly these clean (:func:`construction_problems`).

    For components declared by their signature (losses, networks): ``__init__`` passes its own arguments,
    ``refuse_bad_arguments(FFLoss, {"loss_weight": loss_weight, "alpha": alpha, ...}, LossOptionError)``.
    """
    label = component_label(component)
    problems = construction_problems(component, arguments, label)
    if problems:
        raise error(f"{label}: " + "; ".join(p.removeprefix(f"'{label}': ") for p in problems))


# ------------------------------------------------------------------------- a trainer's whole-file check
def _run_key(trainer: type, opt: Mapping[str, Any], is_train: bool) -> tuple[Hashable, Hashable]:
    return (("run", trainer, bool(is_train)), _frozen(opt))


def remember_clean_run(trainer: type, opt: Mapping[str, Any], is_train: bool) -> None:
    """Record that the start-up check passed the option file ``opt`` for ``trainer`` (its ``check_run``
    among every other check), so that the trainer's constructor does not repeat that check.

    Called by :func:`restoration.options.parse_options` once the dict is final (defaults filled, paths
    resolved), so the record names exactly the dict the command hands to the trainer.
    """
    _remember(_run_key(trainer, opt, is_train))


def run_problems(trainer: type, opt: Mapping[str, Any], is_train: bool) -> list[str]:
    """The problems ``trainer.check_run(opt, is_train)`` finds; empty without checking when the start-up
    check passed exactly this option dict for this trainer in this process (:func:`remember_clean_run`).
    A trainer built by Python code from a dict that never went through the start-up check is checked."""
    if _run_key(trainer, opt, is_train) in _CLEAN:
        return []
    return list(trainer.check_run(opt, is_train))
