"""Datasets for self-supervised denoising: real noisy images without ground truth, and synthetic noise.

* :class:`NoisyImageDataset`: every image of a folder (any camera), noisy only; random crops for
  training. What a blind-spot network (TBSN, AP-BSN) trains on.
* :class:`SyntheticNoiseDataset`: clean images plus Gaussian or Poisson–Gaussian noise made on the
  fly; ``gt`` is returned for metrics (``with_gt: false`` drops it, e.g. for self-supervised
  training, so the loss provably cannot use it).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from restoration.data.base_dataset import COMMON_OPTIONS, META_INFO_OPTION, SEED_OPTION, BaseDataset
from restoration.data.single_image_dataset import ImageFolderDataset
from restoration.data.transforms import augment, hwc_to_chw, random_crop, to_float
from restoration.declare import Declared, component_problems
from restoration.schema import Key, did_you_mean, type_ok

__all__ = ["NoisyImageDataset", "SyntheticNoiseDataset", "NOISES", "NOISE_TYPES", "add_noise", "check_noise", "check_train_crop",
           "train_crop", "TRAIN_CROP_OPTIONS"]

#: The options read by :func:`train_crop` (checked by :func:`check_train_crop`). Augmentation is off by
#: default, as in the official TBSN recipe.
TRAIN_CROP_OPTIONS: dict[str, Key] = {
    "gt_size": Key((int,), doc="training crop size (required for phase train; BasicSR's name, it crops the input)"),
    "use_hflip": Key((bool,), default=False, doc="training: random horizontal flips"),
    "use_rot": Key((bool,), default=False, doc="training: random vertical flips and transposes"),
}


def check_train_crop(opt: dict) -> list[str]:
    """Training needs a positive ``gt_size`` (``opt``: bound values)."""
    size = opt["gt_size"]
    if BaseDataset.normalize_phase(opt["phase"]) == "train" and size is None:
        return ["phase 'train' needs 'gt_size' (the training crop size; for TBSN a multiple of pd_train * 32)"]
    if type_ok(size, int) and size <= 0:
        return [f"gt_size must be positive, got {size}"]
    return []


def train_crop(img: np.ndarray, opt: dict, rng: np.random.Generator, name: str) -> np.ndarray:
    """Random ``opt['gt_size']`` crop plus the flips/rotation ``opt`` asks for (bound :data:`TRAIN_CROP_OPTIONS`)."""
    img = random_crop(img, int(opt["gt_size"]), rng, name)
    (img,) = augment([img], rng, hflip=opt["use_hflip"], rotation=opt["use_rot"])
    return img


class NoisyImageDataset(ImageFolderDataset):
    """Noisy images from ``dataroot_lq`` (a folder, ``meta_info_file`` names, or an ``.lmdb``); no GT.

    Options besides the common ones:
        dataroot_lq: The noisy images.
        gt_size: Training crop size (named as in BasicSR; it crops the noisy image).
        use_hflip, use_rot: Training augmentation (default off, like the official TBSN recipe).

    Returns from ``__getitem__``: ``{'lq': (3, H, W) float32 in [0, 1], 'lq_path': str}``.

    Raises:
        FileNotFoundError: The folder holds no image (the message names the folder).
    """

    options: ClassVar[dict[str, Key]] = {
        **ImageFolderDataset.options,
        "dataroot_lq": Key((str,), required=True, doc="the noisy images: a folder (or .lmdb)"),
        **TRAIN_CROP_OPTIONS,
    }

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        return check_train_crop(opt)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        img = self.read_image(path, "lq", "rgb")
        if self.phase == "train":
            img = train_crop(img, self.opt, self.sample_rng(index), self.backend.describe(path, self.client_key))
        return {"lq": hwc_to_chw(to_float(img)), "lq_path": path}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.opt['name']!r}, phase={self.phase!r}, {len(self)} images)"


def _check_noise_values(bound: dict) -> list[str]:
    """A noise model's own check (bound options): exactly one of each level and its range, ranges ordered,
    levels non-negative, a positive peak."""
    problems: list[str] = []
    groups = [("sigma", "sigma_range")] + ([("peak", "peak_range")] if "peak" in bound else [])
    for single, ranged in groups:
        if (bound[single] is None) == (bound[ranged] is None):
            problems.append(f"needs exactly one of {single!r} and {ranged!r}")
        rng = bound[ranged]
        if isinstance(rng, list) and not (len(rng) == 2 and all(type_ok(v, (int, float)) for v in rng)
                                          and 0 <= rng[0] <= rng[1]):
            problems.append(f"{ranged} must be [low, high] with 0 <= low <= high, got {rng!r}")
        value = bound[single]
        if type_ok(value, (int, float)) and value < 0:
            problems.append(f"{single} must be a non-negative number, got {value!r}")
    peak_range = bound.get("peak_range")
    if "peak" in bound and (bound["peak"] == 0 or (isinstance(peak_range, list) and peak_range[:1] == [0])):
        problems.append("peak must be > 0 (photons at white)")
    return problems


_GAUSSIAN_OPTIONS: dict[str, Key] = {
    "sigma": Key((int, float), doc="noise standard deviation on the 0-255 scale"),
    "sigma_range": Key((list,), doc="[low, high]: sigma drawn uniformly per image"),
    "clip": Key((bool,), default=False, doc="clip the noisy image to [0, 1]"),
}
#: The noise models ``noise: {type: ...}`` may name, each a nested section declared like a component.
NOISES: dict[str, Declared] = {
    "gaussian": Declared("gaussian", _GAUSSIAN_OPTIONS, _check_noise_values),
    "poisson_gaussian": Declared("poisson_gaussian", {
        **_GAUSSIAN_OPTIONS,
        "peak": Key((int, float), doc="photons at white (smaller = noisier)"),
        "peak_range": Key((list,), doc="[low, high]: peak drawn uniformly per image"),
    }, _check_noise_values),
}
NOISE_TYPES = tuple(NOISES)


def check_noise(spec: Any) -> list[str]:
    """Problems with a ``noise`` option (see :func:`add_noise`): its type, then its model's declaration and
    check (:func:`~restoration.declare.component_problems`)."""
    if not isinstance(spec, dict):
        return [f"noise must be a mapping like {{type: poisson_gaussian, peak: 30, sigma: 5}}, got {spec!r}"]
    kind = spec.get("type")
    if kind not in NOISES:
        return [f"noise type {kind!r} is not one of {NOISE_TYPES}{did_you_mean(str(kind), set(NOISES))}"]
    return component_problems(NOISES[kind], {k: v for k, v in spec.items() if k != "type"}, "noise", label=kind)


def _draw(spec: dict, key: str, rng: np.random.Generator) -> float:
    if key in spec:
        return float(spec[key])
    low, high = spec[f"{key}_range"]
    return float(rng.uniform(low, high))


def add_noise(clean: np.ndarray, spec: dict, rng: np.random.Generator) -> np.ndarray:
    """Noisy version of a float ``(H, W, C)`` image in [0, 1].

    * ``{type: gaussian, sigma: 25}``: ``clean + N(0, (sigma/255)^2)``.
    * ``{type: poisson_gaussian, peak: 30, sigma: 5}``: ``Poisson(clean * peak) / peak + N(0, (sigma/255)^2)``
      — shot noise with ``peak`` photons at white (smaller = noisier) plus read noise; the noise
      variance grows with the signal, as on a real sensor.

    ``sigma_range`` / ``peak_range: [low, high]`` draw the level uniformly per image. The result is
    clipped to [0, 1] only with ``clip: true`` (the denoising protocol keeps unclipped values).
    """
    clean = clean.astype(np.float32, copy=False)
    sigma = _draw(spec, "sigma", rng) / 255.0
    if spec["type"] == "poisson_gaussian":
        peak = _draw(spec, "peak", rng)
        noisy = rng.poisson(np.clip(clean, 0, None) * peak).astype(np.float32) / np.float32(peak)
    else:
        noisy = clean.copy()
    noisy = noisy + rng.normal(0.0, sigma, clean.shape).astype(np.float32)
    if spec.get("clip", False):
        noisy = np.clip(noisy, 0.0, 1.0)
    return noisy.astype(np.float32)


class SyntheticNoiseDataset(ImageFolderDataset):
    """Clean images (``dataroot_gt``) with synthetic Gaussian or Poisson–Gaussian noise.

    Options besides the common ones:
        dataroot_gt: Clean images (folder, ``meta_info_file`` names, or ``.lmdb``).
        noise: See :func:`add_noise`, e.g. ``{type: poisson_gaussian, peak: 30, sigma: 5}``.
        gt_size: Training crop size (cropped before adding noise).
        use_hflip, use_rot: Training augmentation (default off).
        with_gt: Return the clean image as ``'gt'`` (default true). Set false for self-supervised
            training so that nothing downstream can see it.
        seed: Base seed of the validation/test noise (sample ``i`` always gets the same noise).

    Returns from ``__getitem__``: ``{'lq': (3, H, W) float32, 'gt': (3, H, W) float32 in [0, 1],
    'lq_path', 'gt_path'}`` (no ``'gt'``/``'gt_path'`` with ``with_gt: false``).
    """

    options: ClassVar[dict[str, Key]] = {
        **COMMON_OPTIONS,
        "dataroot_gt": Key((str,), required=True, doc="the clean images: a folder (or .lmdb)"),
        "meta_info_file": META_INFO_OPTION,
        "noise": Key((dict,), required=True, doc="{type: gaussian, sigma} or {type: poisson_gaussian, peak, sigma}; "
                     "sigma_range/peak_range: [low, high] draw per image; clip: true clips to [0, 1]"),
        **TRAIN_CROP_OPTIONS,
        "with_gt": Key((bool,), default=True, doc="return the clean image as 'gt' (false for self-supervised training)"),
        "seed": SEED_OPTION,
    }
    root_key: ClassVar[str] = "dataroot_gt"
    client_key: ClassVar[str] = "gt"
    folder_keys: ClassVar[tuple[str, ...]] = ("dataroot_gt",)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.noise = dict(self.opt["noise"])
        self.with_gt = self.opt["with_gt"]

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        problems = check_train_crop(opt)
        if opt["noise"] is not None:
            problems += check_noise(opt["noise"])
        return problems

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        img = self.read_image(path, "gt", "rgb")
        rng = self.sample_rng(index)
        if self.phase == "train":
            img = train_crop(img, self.opt, rng, self.backend.describe(path, "gt"))
        clean = to_float(img)
        out: dict[str, Any] = {"lq": hwc_to_chw(add_noise(clean, self.noise, rng)), "lq_path": path}
        if self.with_gt:
            out.update(gt=hwc_to_chw(clean), gt_path=path)
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.opt['name']!r}, phase={self.phase!r}, {len(self)} images, "
                f"noise={self.noise}, with_gt={self.with_gt})")
