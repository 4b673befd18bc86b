"""Base class of the framework's datasets: option checking, image reading, per-sample randomness.

A dataset is built as ``cls(opt)`` where ``opt`` is its option dict from the YAML file plus the
framework-added ``phase`` and ``scale``. Subclasses declare which keys they accept
(:attr:`BaseDataset.option_keys`, ``key -> expected type``) and which are required; the
classmethod :meth:`BaseDataset.check_options` lists *every* problem of an option dict without
raising, so the start-up check can report all typos and missing folders at once.
"""

from __future__ import annotations

import difflib
import os
import random
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch.utils.data

from restoration.data.io_backend import IO_BACKENDS, make_io_backend
from restoration.errors import RestorationError
from restoration.options.types import type_name, type_ok
from restoration.utils.color import rgb2ycbcr
from restoration.utils.image_io import ImageReadError, imfrombytes

__all__ = ["BaseDataset", "DatasetOptionError", "COMMON_OPTION_KEYS", "PHASES", "COLOR_MODES"]

PHASES = ("train", "val", "test")
#: ``rgb``: 3 channels; ``gray``: 1 channel, OpenCV luma (like ``cv2.imread(p, 0)``, used by the
#: denoising literature); ``y``: 1 channel, MATLAB ``rgb2ycbcr`` Y in [16, 235]/255 (BasicSR ``color: y``).
COLOR_MODES = ("rgb", "gray", "y")

_NoneType = type(None)
#: Keys the framework itself reads (data loader, sampler, phase/scale injection); accepted everywhere.
COMMON_OPTION_KEYS: dict[str, Any] = {
    "type": str,
    "name": str,
    "phase": str,
    "scale": int,
    "num_worker_per_gpu": int,
    "batch_size_per_gpu": int,
    "dataset_enlarge_ratio": int,
    "prefetch_mode": (str, _NoneType),
    "prefetch_factor": int,
    "pin_memory": bool,
    "persistent_workers": bool,
    "use_shuffle": bool,
    "io_backend": dict,
}


class DatasetOptionError(RestorationError, ValueError):
    """The dataset options have problems; the message lists all of them, one per line."""


class BaseDataset(torch.utils.data.Dataset):
    """Shared machinery of the image datasets.

    Subclass attributes:
        option_keys: ``key -> type`` (or tuple of types) accepted besides :data:`COMMON_OPTION_KEYS`.
        required_keys: Keys that must be present.
        folder_keys: Keys naming a folder (or, with ``io_backend: {type: lmdb}``, an ``.lmdb``).
        file_keys: Keys naming a file.
    """

    option_keys: ClassVar[dict[str, Any]] = {}
    required_keys: ClassVar[tuple[str, ...]] = ()
    folder_keys: ClassVar[tuple[str, ...]] = ()
    file_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, opt: dict) -> None:
        super().__init__()
        problems = self.check_options(opt)
        if problems:
            name = opt.get("name", type(self).__name__) if isinstance(opt, dict) else type(self).__name__
            raise DatasetOptionError(f"dataset {name!r} ({type(self).__name__}) options have problems:\n  - "
                                     + "\n  - ".join(problems))
        self.opt = dict(opt)
        self.phase = self.normalize_phase(opt.get("phase", "train"))
        self.scale = int(opt.get("scale", 1))
        self.io_opt = dict(opt.get("io_backend") or {"type": "disk"})
        self.io_type = self.io_opt.get("type", "disk")
        self.backend = None  # built by subclasses (they know their client keys)

    # ----------------------------------------------------------------- options
    @staticmethod
    def normalize_phase(phase: str) -> str:
        """``'val_1'`` → ``'val'``: a phase is the option key up to its first ``_``."""
        return str(phase).split("_")[0]

    @classmethod
    def accepted_keys(cls) -> dict[str, Any]:
        """All accepted keys with their types: the common framework keys plus :attr:`option_keys`."""
        return {**COMMON_OPTION_KEYS, **cls.option_keys}

    @classmethod
    def check_options(cls, opt: dict) -> list[str]:
        """Every problem with ``opt`` as a human-readable line; an empty list means it is fine.

        Checks unknown keys (with a did-you-mean), missing required keys, value types, the phase,
        the io backend, and that folders/files/LMDBs exist. Never raises.
        """
        if not isinstance(opt, dict):
            return [f"dataset options must be a mapping, got {type(opt).__name__}"]
        accepted = cls.accepted_keys()
        problems: list[str] = []
        for key in opt:
            if key not in accepted:
                close = difflib.get_close_matches(str(key), list(accepted), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(f"unknown key {key!r}{hint} (accepted: {', '.join(sorted(accepted))})")
        for key in cls.required_keys:
            if opt.get(key) is None:
                problems.append(f"missing required key {key!r}")
        for key, value in opt.items():
            if key in accepted and value is not None and not type_ok(value, accepted[key]):
                problems.append(f"{key!r} must be {type_name(accepted[key])}, got {type(value).__name__} {value!r}")
        phase = opt.get("phase")
        if isinstance(phase, str) and cls.normalize_phase(phase) not in PHASES:
            problems.append(f"phase {phase!r} is not one of {PHASES} (optionally with a suffix such as 'val_1')")
        scale = opt.get("scale")
        if isinstance(scale, int) and not isinstance(scale, bool) and scale < 1:
            problems.append(f"scale must be >= 1, got {scale}")
        problems += cls._check_paths(opt)
        try:
            problems += cls.check_extra(opt)
        except Exception as exc:  # a check must never crash the start-up report
            problems.append(f"could not check options: {type(exc).__name__}: {exc}")
        return problems

    @classmethod
    def _check_paths(cls, opt: dict) -> list[str]:
        problems: list[str] = []
        io_opt = opt.get("io_backend") or {"type": "disk"}
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
        degradation is the same in every evaluation and every run.
        """
        if self.phase == "train":
            return np.random.default_rng([random.getrandbits(63), index])
        return np.random.default_rng([int(self.opt.get("seed", 0) or 0), index])
