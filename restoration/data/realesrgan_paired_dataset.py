"""GT/LQ pairs from disk for the Real-ESRGAN trainers (BasicSR's ``RealESRGANPairedDataset``).

The fine-tuning recipe of Real-ESRGAN on real pairs: the LQ images are read, not synthesised. The
trainers use such batches as they are (``train.high_order_degradation: false``), or mix them with the
degradation by probability (``train.paired_prob``, with ``with_kernels: true`` here so that every batch
can also be degraded); see :mod:`restoration.models.realesrgan_model`.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from restoration.data.base_dataset import SEED_OPTION, BaseDataset
from restoration.data.file_lists import paired_paths
from restoration.data.paired_image_dataset import PairedImageDataset
from restoration.data.realesrgan_dataset import KERNEL_OPTIONS, check_kernel_options, sample_kernels
from restoration.errors import DataError, MissingDataError
from restoration.schema import Key

__all__ = ["RealESRGANPairedDataset", "read_pair_list"]


def read_pair_list(meta_info: str, gt_root: str, lq_root: str) -> list[dict[str, str]]:
    """BasicSR's paired ``meta_info``: one ``gt_relpath, lq_relpath`` per line, relative to ``dataroot_gt``
    and ``dataroot_lq``; blank lines are skipped.

    Raises:
        DataError: A line that is not two paths separated by ``', '`` (names the file and line).
        MissingDataError: Listed files that do not exist (all of them, in one message).
    """
    pairs, absent = [], []
    with open(meta_info, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.strip().split(",")]
            if len(parts) != 2 or not all(parts):
                raise DataError(f"{meta_info} line {number}: expected 'gt_path, lq_path' (BasicSR's paired "
                                f"meta_info), got {line.strip()!r}")
            pair = {"gt_path": os.path.join(gt_root, parts[0]), "lq_path": os.path.join(lq_root, parts[1])}
            absent += [p for p in pair.values() if not os.path.isfile(p)]
            pairs.append(pair)
    if absent:
        shown = ", ".join(absent[:5]) + (f" ... and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise MissingDataError(f"{len(absent)} image(s) listed in {meta_info} are missing: {shown}")
    if not pairs:
        raise MissingDataError(f"{meta_info} lists no pairs")
    return pairs


class RealESRGANPairedDataset(PairedImageDataset):
    """:class:`~restoration.data.paired_image_dataset.PairedImageDataset` with BasicSR's
    ``RealESRGANPairedDataset`` keys, and optionally the Real-ESRGAN blur kernels of each sample.

    Pairs come from ``meta_info`` (lines ``gt_relpath, lq_relpath``), from LMDB, or from ``dataroot_gt``
    with the LQ partner named by ``filename_tmpl``. Training: aligned random crops (``gt_size`` on GT) and
    flips (``use_hflip``) / vertical flips and transposes (``use_rot``, off by default as in Real-ESRGAN's
    ``finetune_realesrgan_x4plus_pairdata.yml``).

    ``with_kernels: true`` adds ``kernel1``, ``kernel2`` and ``sinc_kernel`` drawn with
    :class:`~restoration.data.realesrgan_dataset.RealESRGANDataset`'s kernel options (same names and
    defaults), so that a trainer with ``train.paired_prob`` between 0 and 1 can degrade the GT of a batch
    instead of using its LQ.

    Returns from ``__getitem__``: ``{'lq': (C, h, w), 'gt': (C, h*scale, w*scale), 'lq_path', 'gt_path'}``
    (+ ``'kernel1': (k1, k1)``, ``'kernel2': (k2, k2)``, ``'sinc_kernel': (k, k)``), float32 in [0, 1],
    RGB or one channel (``color: gray|y``).
    """

    options: ClassVar[dict[str, Key]] = {
        **{k: v for k, v in PairedImageDataset.options.items() if k not in ("use_rot",)},
        "meta_info": Key((str,), doc="pairs to use: lines 'gt_relpath, lq_relpath' (BasicSR's paired format)"),
        "use_rot": Key((bool,), default=False, doc="training: random vertical flips and transposes"),
        "with_kernels": Key((bool,), default=False, doc="also give each sample the Real-ESRGAN blur kernels, so "
                            "that the trainer can degrade its GT (train.paired_prob)"),
        **KERNEL_OPTIONS,
        "seed": SEED_OPTION,
    }
    file_keys: ClassVar[tuple[str, ...]] = ("meta_info_file", "meta_info")

    def __init__(self, opt: dict) -> None:
        # PairedImageDataset's state, with the pairs listed by meta_info when given (its pairing by name would
        # look for LQ partners that the list names differently)
        BaseDataset.__init__(self, opt)
        self.gt_root = str(self.opt["dataroot_gt"])
        self.lq_root = str(self.opt["dataroot_lq"])
        self.filename_tmpl = self.opt["filename_tmpl"]
        self.color = self.opt["color"]
        self.mod_crop = self.opt["mod_crop"]
        self.gt_size = self.opt["gt_size"]
        self._make_backend({"gt": self.gt_root, "lq": self.lq_root})
        if self.opt["meta_info"] and self.io_type != "lmdb":
            self.paths = read_pair_list(str(self.opt["meta_info"]), self.gt_root, self.lq_root)
        else:
            meta = None if self.io_type == "lmdb" else self.opt["meta_info_file"]
            self.paths = paired_paths(self.gt_root, self.lq_root, self.io_type, meta, self.filename_tmpl)

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        problems = super().check_extra(opt)
        if opt["meta_info"] and opt["meta_info_file"]:
            problems.append("give only one of meta_info ('gt, lq' pairs) and meta_info_file (GT names)")
        if opt["with_kernels"]:
            problems += check_kernel_options(opt)
        return problems

    def __getitem__(self, index: int) -> dict[str, Any]:
        out = super().__getitem__(index)
        if self.opt["with_kernels"]:
            name = self.backend.describe(self.paths[index]["gt_path"], "gt")
            out.update(sample_kernels(self.sample_rng(index), self.opt, index, name))
        return out
