"""The framework's own option sections (``train``, ``val``, ``logger``, ``dist_params``): their keys, and the
frozen, typed objects the loop and the trainers read once the whole file is valid.

Each key (type, default, doc) is declared exactly once, in the mappings below (:mod:`restoration.options.schema`
composes them into the whole file's schema); the classes only name the fields and their Python types, and
:func:`settings_from` fills them from a validated section with the declared defaults. So the training loop
and the trainers read ``settings.train.total_iter`` (an ``int``, never absent), never a re-defaulted
``opt.get(...)``. This module is a leaf above :mod:`restoration.schema`: trainers may import it.

Sections that a registered component checks against its own declaration (``network_g``, datasets,
``optim_g``, ``scheduler``, ``losses``, metrics) stay mappings here: each component binds them itself.
A field set always equals its schema section's keys (``tests/test_settings.py`` holds them together).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

from restoration.schema import ANY_MAPPING, COMPONENT, Key, bind_options

__all__ = ["TRAIN", "VAL", "TILE", "LOGGER", "WANDB", "DIST", "TrainSettings", "ValSettings", "TileSettings",
           "LoggerSettings", "WandbSettings", "DistSettings", "RunSettings", "settings_from", "run_settings",
           "SECTION_SPECS"]


_NUM = (int, float)

TRAIN = {
    "ema_decay": Key(_NUM, default=0, doc="EMA decay of net_g (0 = no EMA)"),
    "accum_iter": Key((int,), default=1, doc="micro-batches per optimizer step (gradient accumulation): an "
                      "iteration is one step over accum_iter x batch_size_per_gpu samples per GPU"),
    "ema_warmup": Key((bool,), default=True, doc="the EMA decay grows as 1 - iter^(-2/3) up to ema_decay "
                      "(0.99 at iteration 1,000), so a short run's EMA is not mostly its initialisation; false: "
                      "ema_decay from the start (BasicSR)"),
    "optim_g": Key((dict,), required=True, doc="{type, lr, ...}: an optimizer of 'Optimizers' below and its arguments"),
    "scheduler": Key((dict,), doc="{type, ...}: a schedule of 'Learning-rate schedules' below (default constant)"),
    "total_iter": Key((int,), required=True, doc="number of training iterations"),
    "warmup_iter": Key((int,), default=-1, doc="linear learning-rate warm-up iterations (-1 = none)"),
    "batch_augment": Key((list,), default=[], doc="augmentations of each training batch on the device, in order: "
                         "[{type: cutblur, mixup or cutmix, prob, alpha}, ...] (docs/training_toolbox.md)"),
    "losses": Key((list,), doc="losses summed for the step: [{type: <registered loss>, label?, ...kwargs}, ...]"),
    "pixel_opt": Key((dict,), kind=COMPONENT, doc="BasicSR's pixel-loss slot (an entry of losses, label l_pix)"),
    "perceptual_opt": Key((dict,), kind=COMPONENT, doc="BasicSR's perceptual-loss slot (an entry of losses, label l_percep)"),
    "mixed_precision": Key((str, bool), default=False, choices=(False, "bf16", "fp16"),
                           doc="autocast dtype: bf16 (preferred) or fp16 (with a GradScaler)"),
    "grad_clip": Key(_NUM, default=0, doc="clip the gradient norm to this value (0 = off)"),
    "compile": Key((bool,), default=False, doc="torch.compile the network"),
    "channels_last": Key((bool,), default=False, doc="channels_last memory format"),
    "skip_nonfinite": Key((bool,), default=True, doc="skip (and log) steps with a non-finite loss or gradient"),
    "max_skipped_in_a_row": Key((int,), default=100, doc="stop with an error after this many skipped steps in a "
                                "row (0 = never); a run whose every step was skipped always stops with an error"),
    "deterministic": Key((bool,), default=False, doc="deterministic kernels (bit-exact GPU resume; slower): "
                         "torch.use_deterministic_algorithms, cuBLAS workspace, cuDNN deterministic, math SDPA "
                         "and reference neighbourhood attention; off = cudnn.benchmark on"),
    "tf32": Key((bool,), doc="TF32 tensor cores for fp32 matmuls and convolutions (Ampere and newer GPUs); "
                "unset = torch's defaults (convolutions TF32, matmuls full fp32)"),
}

TILE = {
    "tile_size": Key((int,), required=True, doc="LQ tile size (rounded to the network's multiple)"),
    "tile_overlap": Key((int,), default=32, doc="overlap between tiles, LQ pixels"),
    "tile_batch": Key((int,), default=1, doc="tiles processed at once"),
}

VAL = {
    "val_freq": Key(_NUM, default=5000, doc="validate every N iterations"),
    "save_img": Key((bool,), default=False, doc="save restored validation/test images"),
    "save_grid": Key((bool,), default=True, doc="grid of LQ (upsampled), SR and GT of every validation image: "
                     "<image>_<iter>_grid.png beside the saved image (with save_img) and in tensorboard "
                     "(docs/visualisation.md)"),
    "metrics": Key((dict,), default={}, kind=ANY_MAPPING, doc="{name: {type: calculate_psnr, crop_border, test_y_channel}}"),
    "pbar": Key((bool,), default=False, doc="progress bar during validation"),
    "suffix": Key((str,), doc="suffix of saved image names"),
    "tile": Key((dict,), children=TILE, doc="tiled inference for large images"),
    "self_ensemble": Key((bool,), default=False, doc="x8 self-ensemble (flips/transposes)"),
    "max_images": Key((int,), doc="validate on the first N images only"),
}

WANDB = {
    "project": Key((str,), doc="wandb project; unset or null (BasicSR's files carry project: ~): no wandb"),
    "entity": Key((str,), doc="wandb user or team (default: your default entity)"),
    "resume_id": Key((str,), doc="the wandb run to continue (default: the experiment folder's run id, so a "
                     "resumed experiment continues its run)"),
    "mode": Key((str,), choices=("online", "offline", "disabled"), doc="wandb's mode (unset: wandb's default "
                "and WANDB_MODE)"),
}

LOGGER = {
    "print_freq": Key((int,), default=100, doc="log every N iterations"),
    "save_checkpoint_freq": Key(_NUM, default=5000, doc="save weights and training state every N iterations"),
    "use_tb_logger": Key((bool,), default=True, doc="write tensorboard scalars/images"),
    "keep_last": Key((int,), default=5,
                     doc="keep only the last N training states and net_<name>_<iter>.pth of each network (0 = all)"),
    "wandb": Key((dict,), children=WANDB, doc="log the tensorboard scalars and images, and the option file, to Weights & Biases (rank 0; needs "
           "pip install -e \".[wandb]\"; docs/training_toolbox.md)"),
}

DIST = {
    "backend": Key((str,), default="auto", doc="auto: nccl on GPUs (with gloo for CPU tensors), gloo on the CPU; "
                   "or nccl, gloo, or a device map such as 'cpu:gloo,cuda:nccl'"),
    "port": Key((int,), default=29500, doc="master port for --launcher slurm"),
    "timeout": Key(_NUM, doc="seconds a collective may wait before the run fails (torch's default when unset)"),
}


@dataclass(frozen=True)
class TileSettings:
    """``val.tile``: tiled inference of large images (LQ pixels)."""

    tile_size: int
    tile_overlap: int
    tile_batch: int


@dataclass(frozen=True)
class TrainSettings:
    """``train:`` keys every trainer shares; a trainer's own keys are its ``options``."""

    ema_decay: float
    accum_iter: int
    ema_warmup: bool
    optim_g: Mapping[str, Any]
    scheduler: Mapping[str, Any] | None
    total_iter: int
    warmup_iter: int
    batch_augment: list[Any]
    losses: list[Any] | None
    pixel_opt: Mapping[str, Any] | None
    perceptual_opt: Mapping[str, Any] | None
    mixed_precision: str | bool
    grad_clip: float
    compile: bool
    channels_last: bool
    skip_nonfinite: bool
    max_skipped_in_a_row: int
    deterministic: bool
    tf32: bool | None


@dataclass(frozen=True)
class ValSettings:
    """``val:``: validation during training and the evaluation of ``test.py``."""

    val_freq: float
    save_img: bool
    save_grid: bool
    metrics: Mapping[str, Any]
    pbar: bool
    suffix: str | None
    tile: TileSettings | None
    self_ensemble: bool
    max_images: int | None


@dataclass(frozen=True)
class WandbSettings:
    """``logger.wandb``: Weights & Biases logging (rank 0)."""

    project: str | None
    entity: str | None
    resume_id: str | None
    mode: str | None


@dataclass(frozen=True)
class LoggerSettings:
    """``logger:``: console, checkpoint, tensorboard and wandb cadence."""

    print_freq: int
    save_checkpoint_freq: float
    use_tb_logger: bool
    keep_last: int
    wandb: WandbSettings | None


@dataclass(frozen=True)
class DistSettings:
    """``dist_params:``: the process group (read before the options are checked, see ``read_dist_params``)."""

    backend: str
    port: int
    timeout: float | None


#: Each settings class and the schema section it is built from.
SECTION_SPECS: dict[type, dict[str, Key]] = {
    TrainSettings: TRAIN, ValSettings: VAL, TileSettings: TILE, LoggerSettings: LOGGER, WandbSettings: WANDB,
    DistSettings: DIST,
}

_NESTED: dict[tuple[type, str], type] = {(ValSettings, "tile"): TileSettings, (LoggerSettings, "wandb"): WandbSettings}

T = TypeVar("T")


def settings_from(cls: type[T], section: Mapping[str, Any] | None) -> T:
    """``cls`` filled from a validated ``section``: each key the user set, else the schema's default (None when
    the schema has none). Keys outside the schema section (a trainer's own ``train:`` keys) are not fields."""
    bound = bind_options(section or {}, SECTION_SPECS[cls])
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        nested = _NESTED.get((cls, field.name))
        if nested is not None and bound[field.name] is not None:
            bound[field.name] = settings_from(nested, bound[field.name])
    return cls(**bound)


@dataclass(frozen=True)
class RunSettings:
    """The typed framework sections of one option file (``val`` is None when the file has none)."""

    train: TrainSettings | None
    val: ValSettings | None
    logger: LoggerSettings

    @property
    def val_freq(self) -> int:
        """Validate every this many iterations (0: never)."""
        return int(self.val.val_freq) if self.val is not None else 0


def run_settings(opt: Mapping[str, Any]) -> RunSettings:
    """The typed sections of a validated option dict."""
    return RunSettings(
        train=settings_from(TrainSettings, opt["train"]) if opt.get("train") is not None else None,
        val=settings_from(ValSettings, opt["val"]) if opt.get("val") is not None else None,
        logger=settings_from(LoggerSettings, opt.get("logger")),
    )
