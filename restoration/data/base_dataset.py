"""Base class of the framework's datasets: the option declaration, image reading, per-sample randomness.

A dataset is built as ``cls(opt)`` where ``opt`` is its option dict from the YAML file plus the
framework-added ``phase``, ``scale`` and ``name``. It follows the declaration protocol of
:mod:`restoration.declare`: each dataset class declares every key it accepts **once**, in
:attr:`BaseDataset.options` (``key ->`` :class:`~restoration.schema.Key`: types, default, required, choices,
doc), the common framework keys (:data:`COMMON_OPTIONS`) included, and checks its values in the classmethod
:meth:`BaseDataset.check_options`, which receives the complete bound options (defaults applied) and lists
*every* problem without raising. The start-up check runs both through
:func:`~restoration.declare.component_problems`; ``__init__`` refuses options that did not pass it
(:func:`~restoration.declare.construction_problems`: a dataset built by Python code with a typo raises
:class:`DatasetOptionError`, one built by ``train.py`` is not checked twice) and sets ``self.opt`` to the
bound values, so a dataset reads ``self.opt["gt_size"]`` and never writes a default a second time.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch.utils.data

from restoration.data.io_backend import IO_BACKENDS, make_io_backend
from restoration.data.progressive_patches import PROGRESSIVE_OPTIONS, progressive_problems
from restoration.errors import DatasetOptionError
from restoration.declare import construction_problems
from restoration.schema import Key, bind_options, type_ok
from restoration.utils.color import rgb2ycbcr
from restoration.utils.image_io import ImageReadError, imfrombytes

__all__ = ["BaseDataset", "DatasetOptionError", "COMMON_OPTIONS", "PHASES", "COLOR_MODES", "COLOR_OPTION",
           "META_INFO_OPTION", "SEED_OPTION"]

PHASES = ("train", "val", "test")
#: ``rgb``: 3 channels; ``gray``: 1 channel, OpenCV luma (like ``cv2.imread(p, 0)``, used by the
#: denoising literature); ``y``: 1 channel, MATLAB ``rgb2ycbcr`` Y in [16, 235]/255 (BasicSR ``color: y``).
COLOR_MODES = ("rgb", "gray", "y")
COLOR_OPTION = Key((str,), default="rgb", choices=COLOR_MODES,
                   doc="gray: OpenCV luma, as cv2.imread(p, 0); y: MATLAB Y in [16, 235]/255.")
META_INFO_OPTION = Key((str,), doc="use only the images named in this file, first token per line (disk only)")
#: Declared by the datasets that draw random numbers at validation/test time (read by :meth:`BaseDataset.sample_rng`).
SEED_OPTION = Key((int,), default=0, doc="base seed of the validation/test randomness (sample i always gets the same)")

#: Keys the framework itself reads (data loader, sampler, phase/scale injection); part of every declaration.
COMMON_OPTIONS: dict[str, Key] = {
    "type": Key((str,), doc="the registered dataset"),
    "name": Key((str,), doc="shown in logs and result folders"),
    "phase": Key((str,), default="train", doc="set by the framework from the datasets: key (train, val_1, test_2, ...)"),
    "scale": Key((int,), default=1, doc="set by the framework from the top-level scale"),
    "num_worker_per_gpu": Key((int,), default=0, doc="data-loader worker processes per rank"),
    "batch_size_per_gpu": Key((int,), default=1, doc="training batch per rank (evaluation always uses 1)"),
    "dataset_enlarge_ratio": Key((int,), default=1, doc="repeat the training set this many times per epoch"),
    "prefetch_mode": Key((str,), doc="accepted for BasicSR compatibility; batches are prefetched to CUDA anyway"),
    "prefetch_factor": Key((int,), default=2, doc="batches each worker loads ahead"),
    "pin_memory": Key((bool,), doc="page-locked batches (unset: on when training on CUDA)"),
    "persistent_workers": Key((bool,), doc="keep workers between epochs (unset: on when num_worker_per_gpu > 0)"),
    "use_shuffle": Key((bool,), default=True, doc="shuffle the training set every epoch"),
    "io_backend": Key((dict,), default={"type": "disk"}, doc=f"{{type: disk}} or {{type: lmdb}}; one of {IO_BACKENDS}"),
    **PROGRESSIVE_OPTIONS,  # mini_batch_sizes, gt_sizes, iters: restoration.data.progressive_patches
}


class BaseDataset(torch.utils.data.Dataset):
    """Shared machinery of the image datasets.

    Subclass attributes:
        options: The declaration of every accepted key, :data:`COMMON_OPTIONS` included
            (``{**COMMON_OPTIONS, "gt_size": Key((int,), doc=...), ...}``).
        folder_keys: Keys naming a folder (or, with ``io_backend: {type: lmdb}``, an ``.lmdb``) that must exist.
        file_keys: Keys naming a file that must exist.
    """

    options: ClassVar[dict[str, Key]] = COMMON_OPTIONS
    folder_keys: ClassVar[tuple[str, ...]] = ()
    file_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, opt: dict) -> None:
        super().__init__()
        name = opt.get("name", type(self).__name__) if isinstance(opt, dict) else type(self).__name__
        where = f"datasets.{name}"
        problems = construction_problems(type(self), opt, where)
        if problems:
            raise DatasetOptionError(f"dataset {name!r} ({type(self).__name__}) options have problems:\n  - "
                                     + "\n  - ".join(p.removeprefix(f"'{where}': ") for p in problems))
        #: The user's values bound to :attr:`options`: every declared key is present, defaults filled in.
        self.opt: dict[str, Any] = bind_options(opt, self.options)
        self.phase = self.normalize_phase(self.opt["phase"])
        self.scale = int(self.opt["scale"])
        self.io_opt = dict(self.opt["io_backend"])
        self.io_type = self.io_opt.get("type", "disk")
        self.backend = None  # built by subclasses (they know their client keys)

    # ----------------------------------------------------------------- options
    @staticmethod
    def normalize_phase(phase: str) -> str:
        """``'val_1'`` → ``'val'``: a phase is the option key up to its first ``_``."""
        return str(phase).split("_")[0]

    @classmethod
    def check_options(cls, bound: dict) -> list[str]:
        """The dataset's own check of its complete bound options (the protocol's ``check_options``; the
        declaration, :attr:`options`, is checked before by :func:`~restoration.declare.component_problems`):
        the phase, scale, io backend, that folders/files/LMDBs exist, then :meth:`check_extra`. Never raises.
        """
        problems: list[str] = []
        phase = bound["phase"]
        if isinstance(phase, str) and cls.normalize_phase(phase) not in PHASES:
            problems.append(f"phase {phase!r} is not one of {PHASES} (optionally with a suffix such as 'val_1')")
        scale = bound["scale"]
        if type_ok(scale, int) and scale < 1:
            problems.append(f"scale must be >= 1, got {scale}")
        problems += cls._check_paths(bound)
        problems += progressive_problems(bound)
        try:
            problems += cls.check_extra(bound)
        except Exception as exc:  # a check must never crash the start-up report
            problems.append(f"could not check options: {type(exc).__name__}: {exc}")
        return problems

    @classmethod
    def _check_paths(cls, opt: dict) -> list[str]:
        problems: list[str] = []
        io_opt = opt["io_backend"]
        io_type = io_opt.get("type", "disk") if isinstance(io_opt, dict) else None
        if isinstance(io_opt, dict) and io_type not in IO_BACKENDS:
            problems.append(f"io_backend type {io_type!r} is not one of {IO_BACKENDS}")
        for key in cls.folder_keys:
            path = opt.get(key)
            if not isinstance(path, (str, os.PathLike)):
                continue
            p = Path(path)
            if io_type == "lmdb":
                if not str(p).endswith(".lmdb"):
                    problems.append(f"{key} {path} must end with '.lmdb' when io_backend is lmdb")
                if not p.is_dir():
                    problems.append(f"{key}: LMDB {path} does not exist")
                elif not (p / "data.mdb").is_file():
                    problems.append(f"{key}: {path} is not an LMDB (no data.mdb)")
                elif not (p / "meta_info.txt").is_file():
                    problems.append(f"{key}: LMDB {path} has no meta_info.txt (create it with "
                                    "scripts/data/create_lmdb.py, which writes one)")
            elif not p.is_dir():
                problems.append(f"{key}: folder {path} does not exist")
        for key in cls.file_keys:
            path = opt.get(key)
            if isinstance(path, (str, os.PathLike)) and not Path(path).is_file():
                problems.append(f"{key}: file {path} does not exist")
        return problems

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        """Subclass hook: dataset-specific checks (value ranges, combinations). Must not raise."""
        return []

    # ----------------------------------------------------------------- reading
    def _make_backend(self, db_paths: dict[str, str]) -> None:
        self.backend = make_io_backend(self.io_opt, db_paths if self.io_type == "lmdb" else None)

    def read_image(self, path: str, client_key: str, mode: str = "unchanged") -> np.ndarray:
        """Read one image (disk path or LMDB key) as an RGB ``(H, W, C)`` integer array.

        Raises:
            ImageReadError: naming the file (or ``db.lmdb[key]``) that could not be read.
        """
        where = self.backend.describe(path, client_key)
        try:
            buf = self.backend.get(path, client_key)
        except KeyError as exc:
            raise ImageReadError(f"cannot read image {where}: {exc.args[0] if exc.args else exc}") from exc
        except OSError as exc:
            raise ImageReadError(f"cannot read image {where}: {exc.strerror or exc}") from exc
        return imfrombytes(buf, where, mode=mode)

    @staticmethod
    def read_mode(color: str) -> str:
        """The :func:`imfrombytes` mode for a ``color`` option: gray is decoded by OpenCV, exactly
        like ``cv2.imread(path, 0)`` (used by the denoising literature); ``rgb``/``y`` read RGB."""
        return "gray" if color == "gray" else "rgb"

    @staticmethod
    def to_color(img: np.ndarray, color: str) -> np.ndarray:
        """Float ``(H, W, 3)`` RGB image in [0, 1] read with :meth:`read_mode` → the ``color`` mode.

        Only ``y`` changes anything: MATLAB ``rgb2ycbcr`` Y, in [16, 235] / 255, shape ``(H, W, 1)``.
        """
        if color == "y" and img.shape[2] == 3:
            return rgb2ycbcr(img, y_only=True)[:, :, None].astype(np.float32)
        return img

    # ----------------------------------------------------------------- randomness
    def sample_rng(self, index: int) -> np.random.Generator:
        """The random generator for sample ``index``; every random choice of a sample draws from it.

        Training: seeded from Python's ``random`` (which the data loader seeds per worker with
        ``seed + rank * num_workers + worker_id``), so patches differ every epoch yet a run is
        reproducible. Validation/test: seeded from ``(opt['seed'], index)`` only, so a synthetic
        degradation is the same in every evaluation and every run; a dataset that draws at
        validation/test time therefore declares ``"seed": SEED_OPTION``.
        """
        if self.phase == "train":
            return np.random.default_rng([random.getrandbits(63), index])
        return np.random.default_rng([int(self.opt["seed"]), index])
