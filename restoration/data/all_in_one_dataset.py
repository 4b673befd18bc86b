"""All-in-one restoration data: several degradation sources mixed with per-task sampling weights.

The setting of AirNet / PromptIR / DSwinIR: one network is trained on Gaussian denoising
(σ ∈ {15, 25, 50}, synthesised on the fly from clean images), deraining and dehazing pairs
(3-task), plus deblurring and low-light pairs (5-task). Every sample records its ``task``.

Option example (``options/train/DSwinIR/train_DSwinIR_allinone_3task.yml``)::

    type: AllInOneDataset
    gt_size: 128
    sources:
      denoise: {kind: noise, dataroot_gt: datasets/allinone/denoise, sigmas: [15, 25, 50], weight: 3}
      derain:  {kind: paired, dataroot_gt: datasets/allinone/Rain100L/gt, gt_prefix: norain-,
                dataroot_lq: datasets/allinone/Rain100L/rainy, lq_prefix: rain-, weight: 1}
      dehaze:  {kind: haze, dataroot_gt: datasets/allinone/RESIDE/clear,
                dataroot_lq: datasets/allinone/RESIDE/hazy, weight: 1}

Source kinds:

* ``noise``: clean images in ``dataroot_gt``; ``lq = clip(gt + N(0, σ/255))`` with σ drawn uniformly
  from ``sigmas`` per training sample (every σ of every image at val/test); task ``<name>_<σ>``.
* ``paired``: ``dataroot_lq`` / ``dataroot_gt`` matched by file stem after removing ``lq_prefix`` /
  ``gt_prefix`` (Rain100L ``rain-12.png`` ↔ ``norain-12.png``; GoPro/LOL: equal names).
* ``haze``: RESIDE/SOTS naming, hazy ``0001_0.8_0.2.jpg`` ↔ clear ``0001.png`` (the stem up to the
  first ``_``); several hazy images share one clear image.

Training: a sample's source is drawn with probability ``weight / sum(weights)`` and an image of it
uniformly, both from :meth:`BaseDataset.sample_rng`; an epoch has ``sum(len(source))`` samples.
Validation/test: every (image[, σ]) of every source once, in order, with deterministic noise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from restoration.data.base_dataset import COMMON_OPTIONS, SEED_OPTION, BaseDataset
from restoration.data.file_lists import scan_images
from restoration.data.transforms import augment, hwc_to_chw, paired_random_crop, random_crop, to_float
from restoration.declare import Declared, component_problems
from restoration.errors import DataError, MissingDataError
from restoration.schema import Key, bind_options, type_ok

__all__ = ["AllInOneDataset", "SOURCE", "SOURCE_KINDS", "SOURCE_OPTIONS", "haze_clear_stem"]

SOURCE_KINDS: tuple[str, ...] = ("noise", "paired", "haze")
#: The keys of one entry of ``sources`` (checked and bound like a dataset's own declaration).
SOURCE_OPTIONS: dict[str, Key] = {
    "kind": Key((str,), required=True, doc=f"one of {SOURCE_KINDS}"),
    "dataroot_gt": Key((str,), required=True, doc="clean images (folder)"),
    "dataroot_lq": Key((str,), doc="degraded images (folder; paired and haze sources)"),
    "gt_prefix": Key((str,), default="", doc="removed from GT stems before matching (Rain100L: norain-)"),
    "lq_prefix": Key((str,), default="", doc="removed from LQ stems before matching (Rain100L: rain-)"),
    "sigmas": Key((list,), default=[], doc="noise source: Gaussian noise levels on the 0-255 scale, e.g. [15, 25, 50]"),
    "weight": Key((int, float), default=1.0, doc="training: relative probability of drawing this source"),
    "task": Key((str,), doc="task name recorded with each sample (unset: the source's name)"),
}


def _check_source(src: dict) -> list[str]:
    """A source's own check (bound :data:`SOURCE_OPTIONS`): its kind, its folders, a noise source's levels,
    a positive weight."""
    problems: list[str] = []
    kind = src["kind"]
    if kind not in SOURCE_KINDS:
        return [f"kind {kind!r} is not one of {SOURCE_KINDS}"] if kind is not None else []
    folders = ["dataroot_gt"] + ([] if kind == "noise" else ["dataroot_lq"])
    for key in folders:
        path = src[key]
        if path is None and key == "dataroot_lq":  # dataroot_gt is required for every kind: reported before
            problems.append(f"a {kind} source needs 'dataroot_lq'")
        elif isinstance(path, (str, os.PathLike)) and not Path(path).is_dir():
            problems.append(f"{key}: folder {path} does not exist")
    if kind == "noise":
        sig = src["sigmas"]
        if not isinstance(sig, list) or not sig or not all(type_ok(s, (int, float)) and s > 0 for s in sig):
            problems.append(f"sigmas must be a non-empty list of positive noise levels (0-255 scale), "
                            f"e.g. [15, 25, 50]; got {sig!r}")
    weight = src["weight"]
    if type_ok(weight, (int, float)) and weight <= 0:
        problems.append(f"weight must be a positive number, got {weight!r}")
    return problems


#: One entry of ``sources``: a nested section declared like a component (its keys and its own check).
SOURCE = Declared("source", SOURCE_OPTIONS, _check_source)


def haze_clear_stem(hazy_stem: str) -> str:
    """RESIDE name of the clear image of a hazy one: ``'0001_0.8_0.2'`` -> ``'0001'``."""
    return hazy_stem.split("_")[0]


def _strip(stem: str, prefix: str) -> str:
    return stem[len(prefix):] if prefix and stem.startswith(prefix) else stem


def _match_pairs(name: str, src: dict) -> list[tuple[str, str]]:
    """``(lq_path, gt_path)`` for every LQ image of a ``paired``/``haze`` source (``src``: bound :data:`SOURCE_OPTIONS`).

    Raises:
        FileNotFoundError: an LQ image without a GT partner (the first few are named).
    """
    gt_root, lq_root = Path(src["dataroot_gt"]), Path(src["dataroot_lq"])
    gt_prefix, lq_prefix = src["gt_prefix"], src["lq_prefix"]
    gt_by_key = {_strip(Path(n).stem, gt_prefix): n for n in scan_images(gt_root)}
    pairs, missing = [], []
    for lq_name in scan_images(lq_root):
        key = _strip(Path(lq_name).stem, lq_prefix)
        if src["kind"] == "haze":
            key = haze_clear_stem(key)
        if key in gt_by_key:
            pairs.append((str(lq_root / lq_name), str(gt_root / gt_by_key[key])))
        else:
            missing.append(lq_name)
    if missing:
        raise MissingDataError(
            f"source {name!r}: {len(missing)} LQ image(s) in {lq_root} have no GT in {gt_root} "
            f"(e.g. {', '.join(missing[:3])}); check gt_prefix/lq_prefix" +
            (" (haze: the clear image is the hazy stem up to the first '_')" if src["kind"] == "haze" else ""))
    return pairs


class AllInOneDataset(BaseDataset):
    """Mixture of degradation sources (see the module docstring for the options).

    Returns from ``__getitem__``: ``{'lq': (3, H, W), 'gt': (3, H, W), 'lq_path', 'gt_path', 'task'}``,
    float32 RGB in [0, 1] (``lq_path`` of a synthetic-noise sample is its GT path).
    """

    options: ClassVar[dict[str, Key]] = {
        **COMMON_OPTIONS,
        "sources": Key((dict,), required=True, doc="task name -> {kind, dataroot_gt, dataroot_lq, gt_prefix, "
                       "lq_prefix, sigmas, weight, task}: the sources.<task>. rows"),
        "gt_size": Key((int,), doc="training patch size (required for phase train)"),
        "use_hflip": Key((bool,), default=True, doc="training: random horizontal flips"),
        "use_rot": Key((bool,), default=True, doc="training: random vertical flips and transposes"),
        "seed": SEED_OPTION,
        "clip_noise": Key((bool,), default=True, doc="clip synthetic noisy images to [0, 1]"),
    }

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self._make_backend({})
        self.gt_size = self.opt["gt_size"]
        self.clip_noise = self.opt["clip_noise"]
        # per source: name, task, kind, weight, sigmas, list of (lq_path | None, gt_path)
        self.sources: list[dict[str, Any]] = []
        for name, user_src in self.opt["sources"].items():
            src = bind_options(user_src, SOURCE_OPTIONS)
            kind = src["kind"]
            if kind == "noise":
                items = [(None, str(Path(src["dataroot_gt"]) / n)) for n in scan_images(src["dataroot_gt"])]
            else:
                items = _match_pairs(name, src)
            self.sources.append({
                "name": name, "task": src["task"] or name, "kind": kind,
                "weight": float(src["weight"]), "sigmas": [float(s) for s in src["sigmas"]],
                "items": items,
            })
        weights = np.array([s["weight"] for s in self.sources])
        self.probabilities = weights / weights.sum()
        # val/test enumeration: (source index, item index, sigma or None)
        self._eval_index: list[tuple[int, int, float | None]] = []
        for si, s in enumerate(self.sources):
            for sigma in (s["sigmas"] if s["kind"] == "noise" else [None]):
                self._eval_index += [(si, ii, sigma) for ii in range(len(s["items"]))]

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        """The io backend, ``gt_size`` for training, and each source, a nested declared section
        (:data:`SOURCE`: :func:`~restoration.declare.component_problems` with its own check)."""
        problems: list[str] = []
        if isinstance(opt["io_backend"], dict) and opt["io_backend"].get("type", "disk") != "disk":
            problems.append("AllInOneDataset reads from disk only (io_backend: {type: disk})")
        sources = opt["sources"]
        if not isinstance(sources, dict) or not sources:
            return problems + ["'sources' must map task names to source options (at least one)"]
        for name, user_src in sources.items():
            problems += component_problems(SOURCE, user_src, f"sources.{name}")
        if cls.normalize_phase(opt["phase"]) == "train" and opt["gt_size"] is None:
            problems.append("phase 'train' needs 'gt_size' (the training patch size, e.g. 128)")
        return problems

    def __len__(self) -> int:
        if self.phase == "train":
            return sum(len(s["items"]) for s in self.sources)
        return len(self._eval_index)

    @property
    def task_names(self) -> list[str]:
        """Every task this dataset can emit (noise sources give one task per σ)."""
        out = []
        for s in self.sources:
            out += [f"{s['task']}_{sigma:g}" for sigma in s["sigmas"]] if s["kind"] == "noise" else [s["task"]]
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self.sample_rng(index)
        if self.phase == "train":
            si = int(rng.choice(len(self.sources), p=self.probabilities))
            src = self.sources[si]
            ii = int(rng.integers(len(src["items"])))
            sigma = float(rng.choice(src["sigmas"])) if src["kind"] == "noise" else None
        else:
            si, ii, sigma = self._eval_index[index]
            src = self.sources[si]
        lq_path, gt_path = src["items"][ii]
        gt = self.read_image(gt_path, "gt", "rgb")
        if lq_path is None:  # synthetic Gaussian noise
            if self.phase == "train":
                gt = augment([random_crop(gt, int(self.gt_size), rng, gt_path)], rng,
                             self.opt["use_hflip"], self.opt["use_rot"])[0]
            gt_f = to_float(gt)
            lq_f = gt_f + rng.standard_normal(gt_f.shape).astype(np.float32) * np.float32(sigma / 255.0)
            if self.clip_noise:
                lq_f = np.clip(lq_f, 0.0, 1.0)
            task = f"{src['task']}_{sigma:g}"
            lq_path = gt_path
        else:
            lq = self.read_image(lq_path, "lq", "rgb")
            if lq.shape[:2] != gt.shape[:2]:
                raise DataError(f"source {src['name']!r}: {lq_path} is {lq.shape[0]}x{lq.shape[1]} but its GT "
                                 f"{gt_path} is {gt.shape[0]}x{gt.shape[1]}; pairs must have equal sizes")
            if self.phase == "train":
                gt, lq = paired_random_crop(gt, lq, int(self.gt_size), 1, rng, gt_path, lq_path)
                gt, lq = augment([gt, lq], rng, self.opt["use_hflip"], self.opt["use_rot"])
            gt_f, lq_f = to_float(gt), to_float(lq)
            task = src["task"]
        return {"lq": hwc_to_chw(lq_f), "gt": hwc_to_chw(gt_f), "lq_path": lq_path, "gt_path": gt_path,
                "task": task}

    def __repr__(self) -> str:
        parts = ", ".join(f"{s['name']}:{len(s['items'])}" for s in self.sources)
        return f"{type(self).__name__}(name={self.opt['name']!r}, phase={self.phase!r}, sources=[{parts}])"
