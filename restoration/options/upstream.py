"""Upstream option files (BasicSR, HAT, NAFNet, Restormer, DAT) read as they are: every alias and translation in one table.

:func:`translate_upstream` runs in :func:`~restoration.options.parse.parse_options` after the overrides and before
validation. Each translation leaves a one-line notice (``model_type HATModel is SRModel here``) that the
train/test log prints once at its top; a key that belongs to an upstream feature we do not have is a problem
naming the feature and our equivalent option file. Model-name aliases themselves are registered in
:mod:`restoration.models` (one line each); here they only get their notice.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from restoration.data import register_datasets
from restoration.errors import value_repr
from restoration.options.schema import TOP_LEVEL
from restoration.options.upstream_dat import translate_dat
from restoration.options.upstream_restormer import translate_restormer
from restoration.options.validate import top_level_spec
from restoration.registry import DATASET_REGISTRY, RegistryError

__all__ = ["MODEL_ALIASES", "ARCH_ALIASES", "LEGACY_VAL_KEYS", "UNSUPPORTED_MODELS", "UNSUPPORTED_DATASETS",
           "SCHEDULER_ALIASES", "DATASET_KEY_ALIASES", "UPSTREAM_PACKAGES", "expand_paths", "translate_upstream",
           "json_options_problem"]

# upstream model_type -> (our trainer, why they are the same); registered as aliases in restoration/models
MODEL_ALIASES: dict[str, tuple[str, str]] = {
    "SwinIRModel": ("SRModel", "its window padding at test time is done by SRModel for every network"),
    "HATModel": ("SRModel", "its window padding at test time is done by SRModel for every network"),
    "RealHATMSEModel": ("RealESRNetModel", "the same degradation pipeline and L1 step"),
    "RealHATGANModel": ("RealESRGANModel", "the same degradation pipeline and GAN step"),
    "SRGANModel": ("RealESRGANModel", "the GAN step of Real-ESRGAN"),
    "ImageRestorationModel": ("SRModel", "NAFNet's paired-image step: one pixel loss, the network pads itself"),
    "DATModel": ("SRModel", "DAT's SRModel; its test-time partition val.use_chop is translated by "
                            "restoration/options/upstream_dat.py"),
    "ImageCleanModel": ("SRModel", "Restormer's paired-image step: one pixel loss; its grad clip and mixup "
                                   "are translated by restoration/options/upstream_restormer.py"),
}

# upstream scheduler types -> (ours, why they are the same)
SCHEDULER_ALIASES: dict[str, tuple[str, str]] = {
    "TrueCosineAnnealingLR": ("CosineAnnealingLR",
                              "NAFNet's name for torch's CosineAnnealingLR: the same cosine to eta_min over T_max"),
}

# upstream dataset keys -> (ours, why they are the same)
DATASET_KEY_ALIASES: dict[str, tuple[str, str]] = {
    "use_flip": ("use_hflip", "NAFNet's PairedImageDataset name for the same random horizontal flip"),
}

# upstream network type names of classes registered here under their own name -> (ours, why they are the same)
ARCH_ALIASES: dict[str, tuple[str, str]] = {
    "SRVGGNetCompact_basicsr": ("SRVGGNetCompact",
                                "BasicSR registers Real-ESRGAN's class with a suffix; the code is the same"),
}

# upstream model types of training steps we do not have -> (the step, what to use here); none at present
UNSUPPORTED_MODELS: dict[str, tuple[str, str]] = {}

# dataset types of upstream features we do not have -> (the feature, what to use here)
UNSUPPORTED_DATASETS: dict[str, tuple[str, str]] = {
    "ImageNetPairedDataset": (
        "HAT's ImageNet pre-training (LQ made on the fly from ImageNet)",
        "train on DF2K with PairedImageDataset as options/train/HAT/train_HAT_SRx2_from_scratch.yml does"),
}

# the first folder of meta_info files that ship inside upstream packages (basicsr/data/meta_info/...)
UPSTREAM_PACKAGES = ("basicsr", "hat", "hct", "realesrgan")

_TBSN_OPTIONS = "options/train/TBSN/train_TBSN_SIDD.yml"


def json_options_problem(opt_path: str) -> str | None:
    """The problem with a ``.json`` option file (TBSN's format), None for any other file."""
    if not opt_path.lower().endswith(".json"):
        return None
    return (f"{opt_path} is a JSON option file (TBSN's format); option files here are YAML: start from "
            f"{_TBSN_OPTIONS} (TBSN on SIDD, the same recipe) and copy your data paths into it")


def _expand(value: Any) -> Any:
    return os.path.expanduser(os.path.expandvars(value)) if isinstance(value, str) else value


def expand_paths(opt: dict[str, Any]) -> None:
    """``~`` and ``$VAR`` in every path, as BasicSR does: ``datasets.*.dataroot_*``, ``meta_info_file`` and
    ``path.*`` (in place)."""
    datasets = opt.get("datasets")
    for dopt in (datasets.values() if isinstance(datasets, Mapping) else ()):
        if isinstance(dopt, dict):
            for key in dopt:
                if key.startswith("dataroot") or key == "meta_info_file":
                    dopt[key] = _expand(dopt[key])
    if isinstance(opt.get("path"), dict):
        for key in opt["path"]:
            opt["path"][key] = _expand(opt["path"][key])


def _translate_tile(opt: dict[str, Any], notices: list[str], problems: list[str]) -> None:
    """HAT's top-level ``tile: {tile_size, tile_pad}`` -> ``val.tile``.

    HAT cuts the image into ``tile_size`` cores, runs each with ``tile_pad`` extra pixels on every side and keeps
    the core: input tiles of ``tile_size + 2 * tile_pad`` stepping by ``tile_size``. Our tiles of that size with an
    overlap of ``2 * tile_pad`` step by the same amount and cost the same memory; the overlap is blended.
    """
    tile = opt.get("tile")
    if not isinstance(tile, Mapping):
        return
    unknown = sorted(set(tile) - {"tile_size", "tile_pad"})
    size, pad = tile.get("tile_size"), tile.get("tile_pad", 0)
    if unknown or not isinstance(size, int) or not isinstance(pad, int) or isinstance(size, bool):
        problems.append(f"'tile' (HAT's tile mode) takes integers tile_size and tile_pad, got {value_repr(dict(tile))}; "
                        "here tiles are val.tile: {tile_size, tile_overlap}")
        return
    val = opt["val"] = opt.get("val") if isinstance(opt.get("val"), dict) else {}
    if val.get("tile"):
        problems.append("'tile' (HAT's place) and 'val.tile' are both set; keep only val.tile")
        return
    del opt["tile"]
    val["tile"] = {"tile_size": size + 2 * pad, "tile_overlap": 2 * pad}
    notices.append(f"HAT's tile {{tile_size: {size}, tile_pad: {pad}}} is val.tile {{tile_size: {size + 2 * pad}, "
                   f"tile_overlap: {2 * pad}}} here: the same tiles, blended over the overlap instead of cut")


#: Top-level keys of BasicSR's pre-1.0 test files (its RCAN test file still has them) that now live
#: under ``val``.
LEGACY_VAL_KEYS = ("save_img", "suffix", "crop_border")


def _translate_legacy_val_keys(opt: dict[str, Any], notices: list[str]) -> None:
    """BasicSR's old top-level ``save_img`` / ``suffix`` / ``crop_border`` -> ``val.save_img``, ``val.suffix`` and
    the metrics' ``crop_border`` (``~``: crop ``scale`` pixels, BasicSR's old default)."""
    if not any(key in opt for key in LEGACY_VAL_KEYS):
        return
    val = opt["val"] = opt.get("val") if isinstance(opt.get("val"), dict) else {}
    for key in ("save_img", "suffix"):
        if key not in opt:
            continue
        value = opt.pop(key)
        if value is None:
            notices.append(f"top-level {key}: ~ ignored (BasicSR's old place; unset here is the same)")
        elif key not in val:
            val[key] = value
            notices.append(f"top-level {key} (BasicSR's old place) is val.{key} here")
        else:
            notices.append(f"top-level {key} ignored: val.{key} is set")
    if "crop_border" in opt:
        crop = opt.pop("crop_border")
        metrics = val.get("metrics")
        border = opt.get("scale") if crop is None else crop
        filled = [name for name, m in (metrics.items() if isinstance(metrics, Mapping) else ())
                  if isinstance(m, dict) and "crop_border" not in m]
        for name in filled:
            metrics[name]["crop_border"] = border
        shown = "~" if crop is None else value_repr(crop)
        where = ", ".join(f"val.metrics.{n}" for n in filled) or "no metric (none without its own is configured)"
        notices.append(f"top-level crop_border {shown} (BasicSR's old place) is crop_border {value_repr(border)} of "
                       f"{where}")


def _translate_trainer_keys(opt: dict[str, Any], notices: list[str], problems: list[str], user_named: bool) -> None:
    """The trainer's own options at the top level (BasicSR's place: Real-ESRGAN's and Real-HAT's degradation
    settings, ``gt_size``, ``queue_size``) -> ``train:``, where the trainer declares them."""
    declared = top_level_spec(opt, user_named)["train"].children or {}
    keys = [k for k in opt if k not in TOP_LEVEL and k in declared and k not in TOP_LEVEL["train"].children]
    if not keys:
        return
    train = opt["train"] = opt.get("train") if isinstance(opt.get("train"), dict) else {}
    both = [k for k in keys if k in train]
    if both:
        problems.append(f"{', '.join(both)} set both at the top level (BasicSR's place) and under train:; keep one")
        return
    for key in keys:
        train[key] = opt.pop(key)
    notices.append(f"top-level {', '.join(keys)} (BasicSR's place for {opt.get('model_type')}'s options) "
                   "read as train.<key>")


def _drop_unused_optim_d(opt: dict[str, Any], notices: list[str], user_named: bool) -> None:
    """``train.optim_d`` in a file whose trainer has no discriminator (HAT's train_Real_HAT_SRx4_mse_model.yml
    keeps the GAN file's optim_d): BasicSR never reads it there, so neither do we. With a trainer that has a
    discriminator the key stays, and a missing ``network_d`` remains an error."""
    train = opt.get("train")
    if not isinstance(train, dict) or "optim_d" not in train or opt.get("network_d") is not None:
        return
    if "optim_d" in (top_level_spec(opt, user_named)["train"].children or {}):
        return
    del train["optim_d"]
    notices.append(f"train.optim_d ignored: {opt.get('model_type')} trains no discriminator (BasicSR does not read "
                   "it either)")


def _translate_dataset(phase: str, dopt: dict[str, Any], notices: list[str], problems: list[str],
                       user_named: bool) -> None:
    register_datasets()
    kind = dopt.get("type")
    if kind in UNSUPPORTED_DATASETS:
        feature, instead = UNSUPPORTED_DATASETS[kind]
        problems.append(f"'datasets.{phase}.type' {kind} is {feature}, which this framework does not have; {instead}")
        return
    meta = dopt.get("meta_info_file")
    if (isinstance(meta, str) and not os.path.isabs(meta) and not os.path.exists(meta)
            and meta.replace("\\", "/").split("/")[0] in UPSTREAM_PACKAGES):
        del dopt["meta_info_file"]
        folder = dopt.get("dataroot_gt") or dopt.get("dataroot_lq")
        notices.append(f"datasets.{phase}.meta_info_file {meta} ships with the upstream package and is not here: "
                       f"using every image in {folder} instead (the same images when the folder holds exactly the "
                       "listed sub-images)")
    try:
        cls = DATASET_REGISTRY.get(kind, user_named=user_named) if isinstance(kind, str) else None
        declared = getattr(cls, "options", None)
    except RegistryError:  # reported by the validation
        declared = None
    if declared is None:
        return
    for key in [k for k, v in dopt.items() if v is None and k not in declared]:
        del dopt[key]  # BasicSR reads an empty key as absent: `dataroot_gt: ~` on SingleImageDataset
        notices.append(f"datasets.{phase}.{key}: ~ ignored ({kind} has no {key})")


def _translate_nafnet_keys(opt: dict[str, Any], notices: list[str], problems: list[str]) -> None:
    """NAFNet's spellings: ``train.scheduler.type`` TrueCosineAnnealingLR, ``val.grids``, ``val.use_image`` and
    the datasets' ``use_flip``."""
    scheduler = opt.get("train", {}).get("scheduler") if isinstance(opt.get("train"), dict) else None
    if isinstance(scheduler, dict) and scheduler.get("type") in SCHEDULER_ALIASES:
        ours, why = SCHEDULER_ALIASES[scheduler["type"]]
        notices.append(f"train.scheduler.type {scheduler['type']} is {ours} here ({why})")
        scheduler["type"] = ours
    val = opt.get("val")
    if isinstance(val, dict) and "grids" in val:
        if val["grids"]:
            problems.append("'val.grids' true (NAFNet's test on overlapping train-size crops) is not here; use "
                            "val.tile (tiled inference) or NAFNetLocal (the official GoPro protocol)")
        else:
            del val["grids"]
            notices.append("val.grids: false ignored (whole images, as here)")
    if isinstance(val, dict) and "use_image" in val:
        use_image = val.pop("use_image")
        notices.append(f"val.use_image {value_repr(use_image)} ignored: metrics here are always computed on the "
                       "uint8-rounded output (NAFNet's use_image: true; false scores the float output, "
                       "which can differ slightly)")
    datasets = opt.get("datasets")
    for phase, dopt in (datasets.items() if isinstance(datasets, Mapping) else ()):
        for key, (ours, why) in DATASET_KEY_ALIASES.items():
            if isinstance(dopt, dict) and key in dopt:
                if ours in dopt:
                    problems.append(f"datasets.{phase} sets both {key} (NAFNet's name) and {ours}; keep {ours}")
                    continue
                dopt[ours] = dopt.pop(key)
                notices.append(f"datasets.{phase}.{key} is {ours} here ({why})")


def translate_upstream(opt: dict[str, Any], user_named: bool = False) -> tuple[list[str], list[str]]:
    """Rewrite BasicSR/HAT spellings in ``opt`` (in place) into ours.

    ``user_named``: ``opt`` comes from the file named with ``-opt``, whose ``module:attr`` types may be imported.

    Returns:
        ``(notices, problems)``: one line per translation, for the log; one line per upstream feature
        we do not have, naming it and our equivalent, for the options error.
    """
    notices: list[str] = []
    problems: list[str] = []
    model_type = opt.get("model_type")
    if isinstance(model_type, str) and model_type in MODEL_ALIASES:
        ours, why = MODEL_ALIASES[model_type]
        notices.append(f"model_type {model_type} is {ours} here ({why})")
    if isinstance(model_type, str) and model_type in UNSUPPORTED_MODELS:
        step, instead = UNSUPPORTED_MODELS[model_type]
        problems.append(f"'model_type' {model_type} is {step}, which this framework does not have; {instead}")
    for slot in ("network_g", "network_d"):
        net = opt.get(slot)
        if isinstance(net, dict) and isinstance(net.get("type"), str) and net["type"] in ARCH_ALIASES:
            ours, why = ARCH_ALIASES[net["type"]]
            notices.append(f"{slot}.type {net['type']} is {ours} here ({why})")
            net["type"] = ours
    _translate_tile(opt, notices, problems)
    _translate_nafnet_keys(opt, notices, problems)
    translate_restormer(opt, notices, problems)  # before the datasets: it renames Restormer's dataset types
    translate_dat(opt, notices, problems)
    _translate_legacy_val_keys(opt, notices)
    _translate_trainer_keys(opt, notices, problems, user_named)
    _drop_unused_optim_d(opt, notices, user_named)
    datasets = opt.get("datasets")
    for phase, dopt in (datasets.items() if isinstance(datasets, Mapping) else ()):
        if isinstance(dopt, dict):
            _translate_dataset(str(phase), dopt, notices, problems, user_named)
    return list(dict.fromkeys(notices)), problems
