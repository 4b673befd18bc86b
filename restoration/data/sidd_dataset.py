"""SIDD (Smartphone Image Denoising Dataset) readers for self-supervised training and evaluation.

* :class:`SIDDMediumDataset`: the noisy sRGB images of SIDD-Medium, random crops, **no GT**::

      SIDD_Medium_Srgb/Data/0001_001_S6_00100_00060_3200_L/0001_NOISY_SRGB_010.PNG
                                                          /0001_GT_SRGB_010.PNG   (never read)

* :class:`SIDDBlocksDataset`: the validation (or benchmark) blocks stored in MATLAB files,
  ``ValidationNoisyBlocksSrgb.mat`` / ``ValidationGtBlocksSrgb.mat``, each one variable of shape
  ``(40, 32, 256, 256, 3)`` uint8 (image, block, H, W, RGB). Read with ``scipy.io.loadmat``;
  MATLAB v7.3 (HDF5) files need ``h5py`` (optional).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from restoration.data.base_dataset import COMMON_OPTIONS, BaseDataset
from restoration.data.noisy_image_dataset import TRAIN_CROP_OPTIONS, NoisyImageDataset
from restoration.data.transforms import hwc_to_chw, to_float
from restoration.errors import DataError, MissingDataError
from restoration.schema import Key

__all__ = ["SIDDMediumDataset", "SIDDBlocksDataset", "load_sidd_blocks", "SIDD_MEDIUM_PATTERNS"]

#: Where SIDD-Medium keeps its noisy sRGB images, relative to ``dataroot_lq``.
SIDD_MEDIUM_PATTERNS = ("Data/*/*_NOISY_SRGB_*.PNG", "Data/*/*_NOISY_SRGB_*.png")
_BLOCK_LAYOUT = "one variable of shape (N, K, H, W, 3), dtype uint8 — e.g. (40, 32, 256, 256, 3) for SIDD validation"


class SIDDMediumDataset(NoisyImageDataset):
    """Noisy sRGB images of SIDD-Medium (only ``*_NOISY_SRGB_*.PNG``), cropped for training.

    A :class:`NoisyImageDataset` that finds its images by the SIDD folder layout (disk only, no
    ``meta_info_file``).

    Options besides the common ones:
        dataroot_lq: The ``SIDD_Medium_Srgb`` folder (containing ``Data/<scene>/``).
        gt_size: Training crop size (640 for TBSN, i.e. 128 after PD 5).
        use_hflip, use_rot: Augmentation (default off, as upstream).

    Returns from ``__getitem__``: ``{'lq': (3, H, W) float32 in [0, 1], 'lq_path': str}``.

    Raises:
        FileNotFoundError: No noisy image found; the message names the folder and the layout.
    """

    options: ClassVar[dict[str, Key]] = {
        **COMMON_OPTIONS,
        "dataroot_lq": Key((str,), required=True, doc="the SIDD_Medium_Srgb folder (containing Data/<scene>/)"),
        **TRAIN_CROP_OPTIONS,
    }
    file_keys: ClassVar[tuple[str, ...]] = ()

    def list_paths(self) -> list[str]:
        if self.io_type != "disk":
            raise DataError("SIDDMediumDataset reads the SIDD folder layout from disk; use io_backend: {type: disk}")
        return self.find_noisy_images(self.root)

    @staticmethod
    def find_noisy_images(root: str) -> list[str]:
        """Sorted noisy image paths under ``root``; raises naming the expected layout if none."""
        paths = sorted({p for pattern in SIDD_MEDIUM_PATTERNS for p in glob.glob(os.path.join(root, pattern))})
        if not paths:
            raise MissingDataError(
                f"no SIDD-Medium noisy image in {root}: expected {root}/Data/<scene>/<id>_NOISY_SRGB_<k>.PNG "
                f"(dataroot_lq must be the SIDD_Medium_Srgb folder)"
            )
        return paths


def _read_mat(path: str) -> dict[str, Any]:
    import scipy.io  # heavy dependency

    try:
        return scipy.io.loadmat(path)
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        try:
            import h5py  # optional dependency
        except ImportError as exc:
            raise DataError(f"{path} is a MATLAB v7.3 (HDF5) file; install h5py to read it") from exc
        with h5py.File(path, "r") as f:
            # h5py sees MATLAB's column-major array with its dimensions reversed.
            return {k: np.asarray(f[k]).transpose() for k in f.keys() if not k.startswith("#")}
    except Exception as exc:  # truncated or not a MAT file at all
        raise DataError(f"cannot read {path} as a MATLAB file ({type(exc).__name__}: {exc}); expected {_BLOCK_LAYOUT}") from exc


def load_sidd_blocks(path: str | os.PathLike) -> np.ndarray:
    """The ``(N, K, H, W, 3)`` uint8 block array of a SIDD ``.mat`` file.

    The variable is the one named like the file (``ValidationNoisyBlocksSrgb``), else the only one.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Unreadable file, no/ambiguous variable, or a layout other than (N, K, H, W, 3) uint8;
            the message names the file and the expected layout.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise MissingDataError(f"SIDD block file {path} does not exist")
    mat = _read_mat(path)
    names = [k for k in mat if not k.startswith("__")]
    stem = Path(path).stem
    if stem in names:
        name = stem
    elif len(names) == 1:
        name = names[0]
    else:
        raise DataError(f"{path}: cannot tell which variable holds the blocks (found {names}); expected {_BLOCK_LAYOUT}, "
                         f"named like the file ({stem!r})")
    arr = mat[name]
    if not isinstance(arr, np.ndarray) or arr.ndim != 5 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        shape = getattr(arr, "shape", None)
        raise DataError(f"{path}: variable {name!r} has shape {shape} and dtype {getattr(arr, 'dtype', type(arr))}; "
                         f"expected {_BLOCK_LAYOUT}")
    return arr


class SIDDBlocksDataset(BaseDataset):
    """SIDD validation/benchmark blocks from ``.mat`` files; every block is one sample.

    Options besides the common ones:
        noisy_mat: e.g. ``SIDD_Validation/ValidationNoisyBlocksSrgb.mat`` (or ``BenchmarkNoisyBlocksSrgb.mat``).
        gt_mat: e.g. ``SIDD_Validation/ValidationGtBlocksSrgb.mat``; omit for the benchmark (no GT).

    Returns from ``__getitem__``: ``{'lq': (3, H, W) float32 in [0, 1], 'gt': (3, H, W) (with
    ``gt_mat``), 'lq_path', 'gt_path'}``. The paths are virtual, ``<mat without .mat>/<n>_<k>``
    (image ``n``, block ``k``, two digits each), so results are saved as ``<n>_<k>.png``.
    """

    options: ClassVar[dict[str, Key]] = {
        **COMMON_OPTIONS,
        "noisy_mat": Key((str,), required=True, doc="e.g. SIDD_Validation/ValidationNoisyBlocksSrgb.mat"),
        "gt_mat": Key((str,), doc="e.g. SIDD_Validation/ValidationGtBlocksSrgb.mat; unset for the benchmark (no GT)"),
    }
    file_keys: ClassVar[tuple[str, ...]] = ("noisy_mat", "gt_mat")

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.noisy_mat = str(self.opt["noisy_mat"])
        self.noisy = load_sidd_blocks(self.noisy_mat)
        self.gt_mat = self.opt["gt_mat"]
        self.gt = None
        if self.gt_mat:
            self.gt = load_sidd_blocks(self.gt_mat)
            if self.gt.shape != self.noisy.shape:
                raise DataError(f"{self.gt_mat} holds blocks of shape {self.gt.shape} but {self.noisy_mat} "
                                 f"holds {self.noisy.shape}; they must match")

    def __len__(self) -> int:
        return self.noisy.shape[0] * self.noisy.shape[1]

    def _virtual_path(self, mat: str, n: int, k: int) -> str:
        return os.path.join(os.path.splitext(mat)[0], f"{n:02d}_{k:02d}")

    def __getitem__(self, index: int) -> dict[str, Any]:
        n, k = divmod(index, self.noisy.shape[1])
        out: dict[str, Any] = {
            "lq": hwc_to_chw(to_float(self.noisy[n, k])),
            "lq_path": self._virtual_path(self.noisy_mat, n, k),
        }
        if self.gt is not None:
            out["gt"] = hwc_to_chw(to_float(self.gt[n, k]))
            out["gt_path"] = self._virtual_path(str(self.gt_mat), n, k)
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.opt['name']!r}, blocks={tuple(self.noisy.shape[:2])}, "
                f"gt={'yes' if self.gt is not None else 'no'})")
