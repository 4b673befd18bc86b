"""Check a whole option dict before any work starts and collect *every* problem.

Nothing here raises on a bad option or touches the disk beyond existence checks: each check appends
a readable sentence naming the key (``train.optim_g.lr``) to a list, which :mod:`restoration.options.parse`
turns into one error message.

Every component section (network, dataset, ``train:`` section of the trainer, optimizer, schedule, loss,
metric, batch augmentation) is checked by the one function of the declaration protocol,
:func:`restoration.declare.component_problems`, exactly once; this module resolves the ``type`` of each
section, says which keys are the framework's, and adds the checks that span sections (a schedule against
``total_iter``, a network's size contract against the crops, a plateau's metric against the validation).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from typing import Any, Mapping

import torch

from restoration.data.batch_augment import BATCH_AUGMENTS, CALL_ARGS
from restoration.declare import Declared, component_problems, declared_mapping, declared_parameters, remember_clean_run
from restoration.errors import value_repr
from restoration.losses.loss_list import loss_entries
from restoration.models import register_models
from restoration.models.sr_model import SRModel
from restoration.optim.optimizers import optimizer_declaration, optimizer_problem, schedule_problem
from restoration.optim.plateau import plateau_problems
from restoration.optim.schedulers import SCHEDULERS, scheduler_problems
from restoration.options.schema import TOP_LEVEL
from restoration.schema import (
    COMPONENT,
    Key,
    bind_arguments,
    check_declared,
    check_kwargs,
    check_spec,
    check_unknown_keys,
    did_you_mean,
)
from restoration.registry import (
    ARCH_REGISTRY,
    DATASET_REGISTRY,
    LOSS_REGISTRY,
    METRIC_REGISTRY,
    MODEL_REGISTRY,
    Registry,
    RegistryError,
)
from restoration.utils.dist import backend_problem, get_dist_info
from restoration.utils.wandb_writer import wandb_problem

__all__ = [
    "validate_options", "remember_valid_run", "check_kwargs", "check_component", "bind_arguments", "check_size_requirements",
    "did_you_mean", "top_level_spec", "METRIC_FRAMEWORK_KEYS", "LOSS_FRAMEWORK_KEYS", "METRIC_CALL_ARGS",
]


def _resolve(registry: Registry, name: Any, where: str, problems: list[str], user_named: bool = False) -> Any:
    if not isinstance(name, str):
        problems.append(f"'{where}.type' must be a string naming a registered {registry.name}")
        return None
    try:
        return registry.get(name, user_named=user_named)
    except RegistryError as exc:
        problems.append(f"'{where}.type': {exc}")
        return None


def _closest_registered(registry: Registry, name: Any) -> tuple[str, Any] | None:
    """``(name, object)`` of the one registered name closest to an unknown ``name``, if there is one."""
    if not isinstance(name, str):
        return None
    close = difflib.get_close_matches(name, registry.names(), n=1, cutoff=0.6)
    close = close or [n for n in registry.names() if n.lower() == name.lower()]
    if not close:
        return None
    try:
        return close[0], registry.get(close[0])
    except RegistryError:  # its module is broken: that is reported when someone names it
        return None


def _keys_under_unknown_type(registry: Registry, opt: Mapping[str, Any], where: str, call_args: tuple[str, ...],
                             problems: list[str]) -> None:
    """A ``type`` that is not registered: the keys are checked against the declaration of the closest registered
    type, so that a typo in the type does not hide the typos beneath it. Only the declaration is checked (an
    ``options`` mapping: keys, types, required keys; a signature: unknown keys); values wait for the right type."""
    closest = _closest_registered(registry, opt.get("type"))
    if closest is None:
        return
    name, cls = closest
    mapping = declared_mapping(cls)
    if mapping is not None:
        problems.extend(f"'{where}' (assuming {name}): {p}" for p in check_declared(opt, mapping))
        return
    params = declared_parameters(cls, call_args)
    if params is not None:
        check_unknown_keys(f"checked against {name}, the closest type", params,
                           {k: v for k, v in opt.items() if k != "type"}, where, problems)


def check_component(
    registry: Registry,
    opt: Any,
    where: str,
    problems: list[str],
    framework: Mapping[str, Key] | None = None,
    call_args: tuple[str, ...] = (),
    user_named: bool = False,
) -> Any:
    """Resolve ``opt['type']`` through ``registry`` and check the section with
    :func:`~restoration.declare.component_problems` (the one protocol: the component's declaration, then its
    ``check_options`` once on the complete bound options). When ``type`` is unknown, the keys are still
    checked against the closest registered type, so a typo in the type does not hide the typos beneath it.

    A component declared by an ``options`` mapping that declares ``type`` (a dataset: it takes its whole
    section, BasicSR style) receives the section with ``type``; any other receives the remaining keys.

    Args:
        framework: Keys the framework reads from the section beside the component's own (a metric's
            ``better``, a loss entry's ``label``, a dataset's ``phase``/``scale``/``name``).
        call_args: Arguments supplied at call time, not by the file (metrics: ``img``, ``img2``).
        user_named: ``opt`` comes from a file the user named with ``-opt``: a ``module:attr`` type may be
            imported (:meth:`restoration.registry.Registry.get`).

    Returns:
        The resolved class or function, or None when ``type`` is missing or unknown.
    """
    if not isinstance(opt, Mapping):
        problems.append(f"'{where}' must be a mapping with a 'type' key, got {type(opt).__name__}")
        return None
    if "type" not in opt:
        problems.append(f"'{where}' needs a 'type' key naming a registered {registry.name}")
        return None
    cls = _resolve(registry, opt["type"], where, problems, user_named)
    if cls is None:
        _keys_under_unknown_type(registry, opt, where, call_args, problems)
        return None
    mapping = declared_mapping(cls)
    section = dict(opt) if mapping is not None and "type" in mapping else {k: v for k, v in opt.items() if k != "type"}
    problems.extend(component_problems(cls, section, where, framework=framework, call_args=call_args))
    return cls


def check_size_requirements(opt: Mapping[str, Any], problems: list[str], network_clean: bool | None = None,
                            trainer: Any = None) -> None:
    """``network_g``'s contract (:class:`~restoration.archs.spec.ArchSpec`) against the sizes the options ask for.

    The spec comes from the bound option values (``spec_from_options``), nothing is built. Checked: the
    top-level ``scale`` equals the network's, ``val.tile.tile_size`` (rounded down to the size multiple,
    as tiled inference does) reaches ``min_size`` and the network is tileable, and every training crop
    (``gt_size // scale`` and each progressive stage's ``gt_sizes[j] // scale``) reaches ``min_size`` and, when
    the trainer feeds the crops as cut (``feeds_training_crops``), is a multiple of ``size_multiple``. Silent when ``network_g`` is itself invalid (reported elsewhere).

    Args:
        network_clean: Whether ``network_g``'s own check found nothing (:func:`validate_options` knows, so
            the network is not checked twice); None: check it here.
        trainer: The trainer class ``model_type`` names, when the caller has resolved it; None: resolve it here.
    """
    net = opt.get("network_g")
    if not isinstance(net, Mapping) or not isinstance(net.get("type"), str):
        return
    try:
        cls = ARCH_REGISTRY.get(net["type"])
    except RegistryError:
        return
    if network_clean is None:
        network_clean = not component_problems(cls, {k: v for k, v in net.items() if k != "type"}, "network_g")
    bound = bind_arguments(cls, {k: v for k, v in net.items() if k != "type"})
    if not network_clean or bound is None or not hasattr(cls, "spec_from_options"):
        return
    try:
        spec = cls.spec_from_options(bound)
    except Exception as exc:  # a value check_options let through; say so rather than crash at start-up
        problems.append(f"'network_g': cannot derive the input contract ({type(exc).__name__}: {exc})")
        return
    name = net["type"]
    scale = opt.get("scale")
    if isinstance(scale, int) and not isinstance(scale, bool) and scale != spec.scale:
        problems.append(f"'scale' is {scale} but network_g ({name}) upscales by {spec.scale}")
    tile = (opt.get("val") or {}).get("tile") if isinstance(opt.get("val"), Mapping) else None
    if isinstance(tile, Mapping) and isinstance(tile.get("tile_size"), int):
        size = tile["tile_size"]
        rounded = max(spec.size_multiple, size // spec.size_multiple * spec.size_multiple)
        if not spec.tileable:
            problems.append(f"'val.tile': network_g ({name}) cannot be tiled with this configuration")
        elif rounded < spec.min_size:
            problems.append(f"'val.tile.tile_size' {size} is smaller than network_g ({name})'s minimum input "
                            f"side {spec.min_size}; use at least {spec.min_size}")
    datasets = opt.get("datasets") if isinstance(opt.get("datasets"), Mapping) else {}
    trainer = trainer if trainer is not None else _trainer(opt)
    as_cut = trainer is None or getattr(trainer, "feeds_training_crops", True)
    for key, dopt in datasets.items():
        if not str(key).startswith("train") or not isinstance(dopt, Mapping):
            continue
        crops = [(f"'datasets.{key}.gt_size'", dopt.get("gt_size"))]
        stages = dopt.get("gt_sizes") if isinstance(dopt.get("gt_sizes"), list) else []
        crops += [(f"'datasets.{key}.gt_sizes' stage {j + 1}", size) for j, size in enumerate(stages)]
        for what, gt_size in crops:
            if not isinstance(gt_size, int) or isinstance(gt_size, bool) or gt_size < 1:
                continue  # a type or range problem, reported by the dataset's own check
            side = gt_size // spec.scale
            if side < spec.min_size:
                problems.append(f"{what} {gt_size} gives LQ crops of {side} pixels, smaller than network_g ({name})'s "
                                f"minimum input side {spec.min_size}")
            elif as_cut and side % spec.size_multiple:
                problems.append(f"{what} {gt_size} gives LQ crops of {side} pixels, not a multiple of "
                                f"{spec.size_multiple}, which network_g ({name}) needs (training crops are not padded)")


#: The largest ``manual_seed``: numpy's seeds stay below 2**32 with one added per rank.
_MAX_SEED = 2**31 - 1


def _check_optim(train: Mapping[str, Any], key: str, problems: list[str]) -> None:
    """``train.<key>`` (``optim_g``): a type from the optimizer table, then its declaration
    (:func:`~restoration.optim.optimizers.optimizer_declaration`: its named arguments and a numeric ``lr``)."""
    optim = train.get(key) or {}
    if not isinstance(optim, Mapping):
        return
    kind = optim.get("type")
    problem = optimizer_problem(kind)
    if problem:
        problems.append(f"'train.{key}.type': {problem}")
        return
    problems.extend(component_problems(optimizer_declaration(kind), {k: v for k, v in optim.items() if k != "type"},
                                       f"train.{key}", label=kind))
    conflict = schedule_problem(kind, train)
    if conflict:
        problems.append(f"'train.{key}': {conflict}")


def _check_scheduler(train: Mapping[str, Any], problems: list[str]) -> None:
    """``train.scheduler``: a type from the schedule table, its declaration, then its values against ``total_iter``."""
    sched = train.get("scheduler")
    if not isinstance(sched, Mapping):
        return
    kind = sched.get("type")
    if kind not in SCHEDULERS:
        problems.append(
            f"'train.scheduler.type' must be one of {list(SCHEDULERS)}, got {value_repr(kind)}"
            f"{did_you_mean(kind, set(SCHEDULERS)) if isinstance(kind, str) else ''}"
        )
        return
    problems.extend(component_problems(Declared(kind, SCHEDULERS[kind]), {k: v for k, v in sched.items() if k != "type"},
                                       "train.scheduler", label=kind))
    total = train.get("total_iter")
    if kind == "CosineAnnealingRestartLR":
        periods = sched.get("periods")
        if not isinstance(periods, list) or not periods:
            problems.append("'train.scheduler.periods' must be a non-empty list of iteration counts")
        elif isinstance(total, int) and sum(periods) < total:
            problems.append(f"'train.scheduler.periods' sum to {sum(periods)} < total_iter {total}")
        weights = sched.get("restart_weights")
        if isinstance(weights, list) and isinstance(periods, list) and len(weights) != len(periods):
            problems.append("'train.scheduler.restart_weights' must have as many entries as 'periods'")
    problems.extend(f"'train.scheduler': {p}" for p in scheduler_problems(sched, total))


def _check_batch_augment(entries: Any, applies: bool, trainer: str, problems: list[str]) -> None:
    """``train.batch_augment``: each entry a type of the augmentation table, checked against its signature
    (its keyword-only arguments; ``lq``, ``gt``, ``scale``, ``rng`` are the call's) and ``check_options``."""
    if not entries or not isinstance(entries, list):  # a wrong type is the schema's problem
        return
    if not applies:
        problems.append(f"'train.batch_augment': {trainer} does not apply batch augmentations (SRModel does)")
        return
    for i, entry in enumerate(entries):
        where = f"train.batch_augment[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("type"), str):
            problems.append(f"'{where}' must be a mapping with a 'type' of {sorted(BATCH_AUGMENTS)}")
            continue
        kind = entry["type"]
        if kind not in BATCH_AUGMENTS:
            problems.append(f"'{where}.type': unknown batch augmentation {kind!r}"
                            f"{did_you_mean(kind, set(BATCH_AUGMENTS))}; one of {sorted(BATCH_AUGMENTS)}")
            continue
        problems.extend(component_problems(BATCH_AUGMENTS[kind], {k: v for k, v in entry.items() if k != "type"},
                                           where, call_args=CALL_ARGS))


def _check_training_toolbox(opt: Mapping[str, Any], trainer: Any, problems: list[str]) -> None:
    """``ReduceLROnPlateau``'s metric against the validation, ``train.batch_augment``, ``logger.wandb``'s package."""
    train = opt["train"]
    sched = train.get("scheduler")
    if isinstance(sched, Mapping) and sched.get("type") == "ReduceLROnPlateau":
        problems.extend(f"'train.scheduler': {p}" for p in plateau_problems(sched, opt))
    applies = trainer is not None and getattr(trainer, "optimize_parameters", None) is SRModel.optimize_parameters
    _check_batch_augment(train.get("batch_augment"), applies, str(opt.get("model_type")), problems)
    problem = wandb_problem(opt)
    if problem:
        problems.append(problem)


def _check_paths(opt: Mapping[str, Any], problems: list[str]) -> None:
    path = opt.get("path") or {}
    for key in ("pretrain_network_g", "resume_state"):
        value = path.get(key)
        if isinstance(value, str) and value and not os.path.isfile(value):
            problems.append(f"'path.{key}': file not found: {value}")


def _check_datasets(opt: Mapping[str, Any], is_train: bool, problems: list[str], user_named: bool) -> None:
    """Each ``datasets.<phase>`` entry against its dataset's declaration and ``check_options`` (which also checks
    that ``gt_size`` suits ``scale``); under an unknown ``type``, against the closest dataset's declaration.

    The dataset sees its section as it will be built: with the ``phase``, ``scale`` and ``name`` the framework
    adds (:func:`restoration.options.parse.parse_options`), so a dataset built from it is not checked again."""
    datasets = opt.get("datasets") or {}
    scale = opt.get("scale", TOP_LEVEL["scale"].default)
    for phase_key, dopt in datasets.items():
        phase = str(phase_key).split("_")[0]
        where = f"datasets.{phase_key}"
        if phase not in ("train", "val", "test"):
            problems.append(f"'{where}': a dataset key must start with train, val or test")
            continue
        if isinstance(dopt, Mapping):
            dopt = {**dopt, "phase": phase, "scale": scale, "name": dopt.get("name", phase_key)}
        check_component(DATASET_REGISTRY, dopt, where, problems, user_named=user_named)
    if is_train and not any(str(k).startswith("train") for k in datasets):
        problems.append("'datasets' has no 'train' entry")
    if not is_train and not any(str(k).split("_")[0] in ("test", "val") for k in datasets):
        problems.append("'datasets' has no 'test_*' (or 'val_*') entry to evaluate")


def _trainer(opt: Mapping[str, Any], problems: list[str] | None = None, user_named: bool = False) -> Any:
    """The trainer class named by ``model_type`` (None when unknown; the problem is recorded)."""
    register_models()
    name = opt.get("model_type", TOP_LEVEL["model_type"].default)
    if not isinstance(name, str):
        return None
    return _resolve(MODEL_REGISTRY, name, "model_type", problems if problems is not None else [], user_named)


def top_level_spec(opt: Mapping[str, Any], user_named: bool = False) -> dict[str, Key]:
    """:data:`TOP_LEVEL` with the ``train:`` section of the trainer that ``opt`` names: the common keys plus
    the ones it declares (:attr:`restoration.models.base_model.Trainer.options`). ``user_named``: as
    :func:`check_component`'s."""
    trainer = _trainer(opt, user_named=user_named)
    declared = getattr(trainer, "options", None) or {}
    if not declared:
        return TOP_LEVEL
    train = dataclasses.replace(TOP_LEVEL["train"], children={**TOP_LEVEL["train"].children, **declared})
    return {**TOP_LEVEL, "train": train}


def _train_section(trainer: Any, name: str, required: bool) -> Declared:
    """The ``train:`` section as one declared component: the framework's keys (:data:`TOP_LEVEL`'s ``train``)
    and the trainer's own (its ``options``), with its ``check_options`` as the section's check.
    ``required``: whether required keys stay required (not without a ``train:`` section, as in test.py)."""
    declared = {**(TOP_LEVEL["train"].children or {}), **(getattr(trainer, "options", None) or {})}
    if not required:
        declared = {k: dataclasses.replace(rule, required=False) for k, rule in declared.items()}
    return Declared(name, declared, getattr(trainer, "check_options", None))


def _check_train_section(opt: Mapping[str, Any], trainer: Any, problems: list[str], user_named: bool) -> None:
    """The ``train:`` section against the framework's keys and the trainer's (one component, see
    :func:`_train_section`), and each loss slot (a key of kind ``COMPONENT``: ``pixel_opt``, a GAN's ``gan_opt``) as a loss."""
    declared = getattr(trainer, "options", None) or {}
    train = opt.get("train")
    if not isinstance(train, Mapping) and not declared:
        return
    section = dict(train) if isinstance(train, Mapping) else {}
    name = str(opt.get("model_type", TOP_LEVEL["model_type"].default)) if trainer is not None else "train"
    row = _train_section(trainer, name, required=isinstance(train, Mapping))
    problems.extend(component_problems(row, section, "train", label=name if trainer is not None else None))
    for key, rule in row.options.items():
        if rule.kind == COMPONENT and section.get(key) is not None:
            check_component(LOSS_REGISTRY, section[key], f"train.{key}", problems, user_named=user_named)


def remember_valid_run(opt: Mapping[str, Any], is_train: bool, user_named: bool = False) -> None:
    """Record that :func:`validate_options` found the parsed ``opt`` clean, so the constructor of the trainer
    it names skips its whole-file check (``check_run``, :func:`restoration.declare.run_problems`) for exactly
    this dict. ``opt`` is the final dict (defaults and paths resolved), the one the command hands the trainer."""
    trainer = _trainer(opt, user_named=user_named)
    if trainer is not None and hasattr(trainer, "check_run"):
        remember_clean_run(trainer, opt, is_train)


def validate_options(opt: Mapping[str, Any], is_train: bool, user_named: bool = False) -> list[str]:
    """Every problem with ``opt`` (empty list: good to go).

    Every component section goes through :func:`~restoration.declare.component_problems` once: the networks,
    the datasets, the ``train:`` section (the trainer's), its optimizers, schedule, losses and batch
    augmentations, and the metrics.

    ``user_named``: ``opt`` was read from the file the user named with ``-opt`` (train.py, test.py), so its
    ``type``s may be ``module:attr`` import paths (classes of the expected kind); otherwise registered names only.
    """
    problems: list[str] = []
    trainer = _trainer(opt, problems, user_named)
    top = {**TOP_LEVEL, "train": dataclasses.replace(TOP_LEVEL["train"], children=None)}  # train: checked below
    check_spec(opt, top, "", problems)
    _check_train_section(opt, trainer, problems, user_named)
    if trainer is not None and hasattr(trainer, "check_run"):  # the file as a whole: networks, optimizers, ...
        problems.extend(trainer.check_run(opt, is_train))
    network_clean = True
    for key in ("network_g", "network_d"):
        if isinstance(opt.get(key), Mapping):
            before = len(problems)
            check_component(ARCH_REGISTRY, opt[key], key, problems, user_named=user_named)
            network_clean = network_clean if key != "network_g" else len(problems) == before
    check_size_requirements(opt, problems, network_clean, trainer)  # network_g vs scale, tiles, training crops
    for i, base in enumerate(opt.get("baselines") or []):
        check_component(ARCH_REGISTRY, base, f"baselines[{i}]", problems, user_named=user_named)
    _check_datasets(opt, is_train, problems, user_named)
    _check_metrics_and_losses(opt, problems, user_named)
    _check_paths(opt, problems)
    _check_devices(opt, problems)
    _check_numbers(opt, problems)
    train = opt.get("train")
    if is_train:
        if not isinstance(train, Mapping):
            problems.append("missing required option 'train' (optimizer, total_iter, losses)")
        else:
            for key in train:
                if key.startswith("optim_"):  # optim_g, and each further network's (optim_d, ...)
                    _check_optim(train, key, problems)
            _check_scheduler(train, problems)
            _check_training_toolbox(opt, trainer, problems)
            # only a trainer that reads train.losses needs one (an unresolved model_type: checked as before)
            if getattr(trainer, "uses_loss_list", True) and not loss_entries(train):
                problems.append("'train' needs a loss: set 'losses' (or BasicSR's 'pixel_opt' / 'perceptual_opt')")
            total, warm = train.get("total_iter"), train.get("warmup_iter")
            if isinstance(total, int) and total > 0 and isinstance(warm, int) and warm >= total:
                problems.append(f"'train.warmup_iter' {warm} must be smaller than total_iter {total}")
    return problems


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_numbers(opt: Mapping[str, Any], problems: list[str]) -> None:
    """Values whose type is right but whose size is not: zero frequencies, empty batches, lr <= 0, ...

    Without these, a ``print_freq: 0`` dies of ZeroDivisionError and a ``batch_size_per_gpu: 0`` in
    torch, after the experiment folder exists; a fractional ``val_freq`` would be truncated silently.
    (Types are checked by the schema; a value of the wrong type is skipped here.)
    """
    def at_least(where: str, value: Any, low: int, whole: bool = True) -> None:
        if not _number(value):
            return
        if whole and value != int(value):
            problems.append(f"'{where}' must be a whole number, got {value}")
        elif value < low:
            problems.append(f"'{where}' must be >= {low}, got {value}")

    logger = opt.get("logger") if isinstance(opt.get("logger"), Mapping) else {}
    at_least("logger.print_freq", logger.get("print_freq"), 1)
    at_least("logger.save_checkpoint_freq", logger.get("save_checkpoint_freq"), 1)
    at_least("logger.keep_last", logger.get("keep_last"), 0)
    val = opt.get("val") if isinstance(opt.get("val"), Mapping) else {}
    at_least("val.val_freq", val.get("val_freq"), 1)
    at_least("val.max_images", val.get("max_images"), 1)
    train = opt.get("train") if isinstance(opt.get("train"), Mapping) else {}
    at_least("train.total_iter", train.get("total_iter"), 1)
    at_least("train.max_skipped_in_a_row", train.get("max_skipped_in_a_row"), 0)
    at_least("train.accum_iter", train.get("accum_iter"), 1)
    seed = opt.get("manual_seed")
    if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed <= _MAX_SEED:
        # numpy takes seeds below 2**32 and every rank seeds with manual_seed + rank
        problems.append(f"'manual_seed' must be an integer from 0 to {_MAX_SEED}, got {seed}")
    at_least("train.grad_clip", train.get("grad_clip"), 0, whole=False)
    decay = train.get("ema_decay")
    if _number(decay) and not 0 <= decay < 1:
        problems.append(f"'train.ema_decay' must be in [0, 1) (0 = no EMA), got {decay}")
    for key, optim in train.items():
        lr = optim.get("lr") if key.startswith("optim_") and isinstance(optim, Mapping) else None
        if _number(lr) and not lr > 0:  # 'not >' also catches NaN
            problems.append(f"'train.{key}.lr' must be positive, got {lr}")
    datasets = opt.get("datasets") if isinstance(opt.get("datasets"), Mapping) else {}
    for phase, dopt in datasets.items():
        if not isinstance(dopt, Mapping):
            continue
        at_least(f"datasets.{phase}.batch_size_per_gpu", dopt.get("batch_size_per_gpu"), 1)
        at_least(f"datasets.{phase}.num_worker_per_gpu", dopt.get("num_worker_per_gpu"), 0)
        at_least(f"datasets.{phase}.dataset_enlarge_ratio", dopt.get("dataset_enlarge_ratio"), 1)
        at_least(f"datasets.{phase}.prefetch_factor", dopt.get("prefetch_factor"), 1)


def _check_devices(opt: Mapping[str, Any], problems: list[str]) -> None:
    """GPUs asked for vs present and the process-group backend. (Attention backends are each network's
    ``attn_backend`` argument, checked against this machine by the architecture's ``check_options``.)"""
    num_gpu = opt.get("num_gpu")
    if isinstance(num_gpu, str) and num_gpu != "auto":
        problems.append(f"'num_gpu' must be 'auto' or a count, got {value_repr(num_gpu)}")
    elif isinstance(num_gpu, int) and not isinstance(num_gpu, bool):
        present = torch.cuda.device_count()
        # under torchrun/srun each rank drives one GPU and num_gpu counts the job's (upstream files say 8):
        # a rank may see only its own (srun --gpus-per-task=1), so it needs one, not num_gpu
        distributed = get_dist_info()[1] > 1
        if num_gpu < 0:
            problems.append(f"'num_gpu' must be >= 0 (0 = CPU), got {num_gpu}")
        elif distributed and num_gpu > 0 and present == 0:
            problems.append(f"'num_gpu' is {num_gpu} but this rank sees no CUDA GPU; use num_gpu: auto or 0 (the CPU)")
        elif not distributed and num_gpu > present:
            problems.append(f"'num_gpu' is {num_gpu} but this machine has {present} CUDA GPU(s) visible; "
                            f"use num_gpu: auto, 0 (the CPU){f' or at most {present}' if present else ''}")
    dist_params = opt.get("dist_params")
    if isinstance(dist_params, Mapping):
        backend = dist_params.get("backend")
        problem = backend_problem(backend) if isinstance(backend, str) else None
        if problem:
            problems.append(f"'dist_params.backend': {problem}")
        timeout = dist_params.get("timeout")
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout <= 0:
            problems.append(f"'dist_params.timeout' must be a positive number of seconds, got {timeout}")


#: The keys the framework reads from a ``val.metrics.<name>`` section beside the metric's own arguments.
METRIC_FRAMEWORK_KEYS: dict[str, Key] = {
    "better": Key((str,), default="higher", choices=("higher", "lower"),
                  doc="which direction of the score is best (ReduceLROnPlateau and the best-checkpoint log read it)"),
}
#: The keys the framework reads from a ``train.losses`` entry beside the loss's own arguments.
LOSS_FRAMEWORK_KEYS: dict[str, Key] = {
    "label": Key((str,), doc="the name its value is logged under (default: derived from the type)"),
}
#: A metric function's arguments that the evaluation passes (the two images), never the file.
METRIC_CALL_ARGS: tuple[str, ...] = ("img", "img2")


def _check_metrics_and_losses(opt: Mapping[str, Any], problems: list[str], user_named: bool) -> None:
    metrics = (opt.get("val") or {}).get("metrics") or {}
    if isinstance(metrics, Mapping):
        for name, mopt in metrics.items():
            if isinstance(mopt, Mapping):
                check_component(METRIC_REGISTRY, mopt, f"val.metrics.{name}", problems,
                                framework=METRIC_FRAMEWORK_KEYS, call_args=METRIC_CALL_ARGS)
            else:
                problems.append(f"'val.metrics.{name}' must be a mapping with a 'type' key")
    train = opt.get("train") if isinstance(opt.get("train"), Mapping) else {}
    losses = train.get("losses")
    if isinstance(losses, list):
        for i, entry in enumerate(losses):
            if isinstance(entry, Mapping):
                cls = check_component(LOSS_REGISTRY, entry, f"train.losses[{i}]", problems,
                                      framework=LOSS_FRAMEWORK_KEYS, user_named=user_named)
                if getattr(cls, "needs_ema_output", False) and not train.get("ema_decay"):
                    problems.append(f"'train.losses[{i}]' ({entry['type']}) compares with the EMA generator's output: "
                                    "set 'train.ema_decay' (e.g. 0.999)")
            else:
                problems.append(f"'train.losses[{i}]' must be a mapping with a 'type' key, got {value_repr(entry)}")
