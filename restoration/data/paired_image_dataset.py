"""GT/LQ image pairs stored on disk or in LMDB (BasicSR's ``PairedImageDataset``)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from restoration.data.base_dataset import COLOR_OPTION, COMMON_OPTIONS, BaseDataset
from restoration.data.file_lists import paired_paths
from restoration.data.transforms import augment, hwc_to_chw, paired_random_crop, to_float
from restoration.errors import DataError
from restoration.schema import Key
from restoration.schema import type_ok

__all__ = ["PairedImageDataset", "check_train_patch"]


class PairedImageDataset(BaseDataset):
    """Paired GT/LQ images for training and evaluating SR (or any paired restoration task).

    Samples are found in one of three ways:

    * ``io_backend: {type: lmdb}``: ``dataroot_gt``/``dataroot_lq`` are ``.lmdb`` folders; the keys come
      from their ``meta_info.txt`` and must match;
    * ``meta_info_file``: GT names listed in the file (first token per line);
    * otherwise every image of ``dataroot_gt``.

    The LQ partner of GT ``0001.tif`` is the one image ``filename_tmpl.format('0001') + '.<any extension>'`` in
    ``dataroot_lq`` (``filename_tmpl: '{}x2'`` for DIV2K/Set5 names such as ``0001x2.png``, and for what
    ``scripts/data/generate_lr.py --scale 2`` writes); see :func:`restoration.data.file_lists.find_lq_file`.

    GT must be ``scale`` times LQ. With ``mod_crop`` (default) a GT that is up to ``scale - 1`` pixels
    larger (an HR image that was not cropped to a multiple of ``scale`` before downscaling, e.g. Set5
    ``woman`` at ×3) is cropped at the bottom/right; any other mismatch is an error naming both files.

    Training (``phase: train``): aligned random patches (``gt_size`` on GT, ``gt_size // scale`` on LQ)
    and random flips/rotations (``use_hflip``, ``use_rot``). Validation/test: whole images.

    Returns from ``__getitem__``: ``{'lq': (C, h, w), 'gt': (C, h*scale, w*scale), 'lq_path', 'gt_path'}``;
    float32 in [0, 1], RGB (or one channel with ``color: y|gray``).
    """

    options: ClassVar[dict[str, Key]] = {
        **COMMON_OPTIONS,
        "dataroot_gt": Key((str,), required=True, doc="GT folder (or .lmdb)"),
        "dataroot_lq": Key((str,), required=True, doc="LQ folder (or .lmdb)"),
        "meta_info_file": Key((str,), doc="GT names to use, first token per line (disk only)"),
        "filename_tmpl": Key((str,), default="{}", doc="LQ stem from the GT stem, e.g. '{}x2' for DIV2K names"),
        "gt_size": Key((int,), doc="training GT patch size (required for phase train; a multiple of scale)"),
        "use_hflip": Key((bool,), default=True, doc="training: random horizontal flips"),
        "use_rot": Key((bool,), default=True, doc="training: random vertical flips and transposes"),
        "color": COLOR_OPTION,
        "mod_crop": Key((bool,), default=True, doc="crop GT bottom/right when up to scale - 1 pixels too large"),
    }
    folder_keys: ClassVar[tuple[str, ...]] = ("dataroot_gt", "dataroot_lq")
    file_keys: ClassVar[tuple[str, ...]] = ("meta_info_file",)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.gt_root = str(self.opt["dataroot_gt"])
        self.lq_root = str(self.opt["dataroot_lq"])
        self.filename_tmpl = self.opt["filename_tmpl"]
        self.color = self.opt["color"]
        self.mod_crop = self.opt["mod_crop"]
        self.gt_size = self.opt["gt_size"]
        self._make_backend({"gt": self.gt_root, "lq": self.lq_root})
        meta = None if self.io_type == "lmdb" else self.opt["meta_info_file"]
        self.paths = paired_paths(self.gt_root, self.lq_root, self.io_type, meta, self.filename_tmpl)

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        problems = []
        tmpl = opt["filename_tmpl"]
        if isinstance(tmpl, str) and "{}" not in tmpl:
            problems.append(f"filename_tmpl {tmpl!r} must contain '{{}}' (the GT file stem)")
        problems += check_train_patch(opt)
        return problems

    def __len__(self) -> int:
        return len(self.paths)

    def pair_size_problem(self, gt_hw: tuple[int, int], lq_hw: tuple[int, int], gt_name: str,
                          lq_name: str) -> str | None:
        """Why a GT of ``gt_hw`` cannot pair with an LQ of ``lq_hw`` (None: it can): GT must be ``scale`` × LQ,
        or up to ``scale - 1`` pixels larger with ``mod_crop``. Also read by the start-up check of every header."""
        s = self.scale
        (gh, gw), (lh, lw) = gt_hw, lq_hw
        if (gh, gw) == (lh * s, lw * s) or (self.mod_crop and (gh // s, gw // s) == (lh, lw)):
            return None
        return (f"size mismatch at scale {s}: GT {gt_name} is {gh}x{gw} but LQ {lq_name} is {lh}x{lw} "
                f"(HxW); GT must be {lh * s}x{lw * s}" + ("" if self.mod_crop else " (mod_crop is off)")
                + ". Check dataroot_lq / filename_tmpl / scale.")

    def _match_sizes(self, gt: np.ndarray, lq: np.ndarray, gt_name: str, lq_name: str) -> np.ndarray:
        """Check that GT is ``scale`` × LQ (mod-cropping GT if allowed); return the GT to use."""
        problem = self.pair_size_problem(gt.shape[:2], lq.shape[:2], gt_name, lq_name)
        if problem:
            raise DataError(problem)
        lh, lw = lq.shape[:2]
        return gt[: lh * self.scale, : lw * self.scale]

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.paths[index]
        mode = self.read_mode(self.color)
        gt = self.read_image(pair["gt_path"], "gt", mode)
        lq = self.read_image(pair["lq_path"], "lq", mode)
        gt_name = self.backend.describe(pair["gt_path"], "gt")
        lq_name = self.backend.describe(pair["lq_path"], "lq")
        gt = self._match_sizes(gt, lq, gt_name, lq_name)
        if self.phase == "train":
            rng = self.sample_rng(index)
            gt, lq = paired_random_crop(gt, lq, int(self.gt_size), self.scale, rng, gt_name, lq_name)
            gt, lq = augment([gt, lq], rng, hflip=self.opt["use_hflip"], rotation=self.opt["use_rot"])
        gt_f = self.to_color(to_float(gt), self.color)
        lq_f = self.to_color(to_float(lq), self.color)
        return {"lq": hwc_to_chw(lq_f), "gt": hwc_to_chw(gt_f), "lq_path": pair["lq_path"], "gt_path": pair["gt_path"]}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.opt['name']!r}, phase={self.phase!r}, "
                f"{len(self)} pairs, scale={self.scale}, backend={self.io_type})")


def check_train_patch(opt: dict) -> list[str]:
    """Training needs a ``gt_size`` that is a positive multiple of ``scale`` (``opt``: bound values)."""
    gt_size, scale = opt["gt_size"], opt["scale"]
    if BaseDataset.normalize_phase(opt["phase"]) != "train":
        return []
    if gt_size is None:
        return ["phase 'train' needs 'gt_size' (the GT patch size, e.g. 128)"]
    if type_ok(gt_size, int) and type_ok(scale, int) and scale > 0:
        if gt_size <= 0:
            return [f"gt_size must be positive, got {gt_size}"]
        if gt_size % scale:
            return [f"gt_size {gt_size} is not a multiple of scale {scale}"]
    return []
