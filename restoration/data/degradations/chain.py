"""Synthetic degradations that make an LQ image from a GT image: bicubic downscaling, Gaussian noise, JPEG,
and the BSRGAN real-world degradation.

A degradation is given in the options as a dict, or a list of dicts applied in order::

    degradation: {type: bicubic, scale: 4}              # MATLAB imresize, antialiased
    degradation: {type: gaussian_noise, sigma: 25}      # or sigma_range: [0, 50]; in [0, 255] units
    degradation: {type: jpeg, quality: 10}              # or quality_range: [10, 90]; OpenCV encoder
    degradation: [{type: bicubic, scale: 2}, {type: jpeg, quality: 40}]
    degradation: {type: bsrgan, scale: 4}               # BSRGAN/SwinIR real-world recipe, RGB only

Images move through the chain as integer arrays (``uint8``/``uint16``) for as long as possible, so a
bicubic-only chain on a ``uint8`` image reproduces the stored ``LR_bicubic`` benchmark PNGs bit for bit
(MATLAB rounds to ``uint8``), and become float32 in [0, 1] once noise is added. Noise follows the
denoising papers' protocol: ``lq = gt + N(0, sigma / 255)`` on [0, 1] images, **not clipped** (the
network sees the unclipped noisy image, as in DnCNN/SwinIR/Restormer test code); set ``clip: true``
for clipped noise. JPEG needs integers: a float image is clipped and rounded to ``uint8`` first.

All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from restoration.data.degradations.bsrgan import bsrgan_degrade
from restoration.data.degradations.operations import add_gaussian_noise, bicubic_downscale, jpeg_compress
from restoration.data.transforms import to_float
from restoration.declare import Declared, component_problems
from restoration.errors import DataError
from restoration.schema import Key, did_you_mean

__all__ = ["DEGRADATIONS", "normalize_degradations", "check_degradations", "apply_degradations", "total_scale"]


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_range(name: str, value: Any, lo: float, hi: float) -> list[str]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_num(v) for v in value)):
        return [f"{name} must be a pair [low, high], got {value!r}"]
    if not (lo <= value[0] <= value[1] <= hi):
        return [f"{name} {list(value)} must satisfy {lo} <= low <= high <= {hi}"]
    return []


def _one_of(bound: dict, single: str, ranged: str) -> list[str]:
    return [] if (bound[single] is None) != (bound[ranged] is None) else [f"give exactly one of {single} or {ranged}"]


def _check_scale(bound: dict) -> list[str]:
    s = bound["scale"]
    return [f"scale must be an integer >= 1, got {s!r}"] if _is_num(s) and s < 1 else []


def _check_noise(bound: dict) -> list[str]:
    problems = _one_of(bound, "sigma", "sigma_range")
    if _is_num(bound["sigma"]) and bound["sigma"] < 0:
        problems.append(f"sigma must be a number >= 0 (in [0, 255] units), got {bound['sigma']!r}")
    if bound["sigma_range"] is not None:
        problems += _check_range("sigma_range", bound["sigma_range"], 0, 255)
    return problems


def _check_jpeg(bound: dict) -> list[str]:
    problems = _one_of(bound, "quality", "quality_range")
    if _is_num(bound["quality"]) and not 1 <= bound["quality"] <= 100:
        problems.append(f"quality must be an integer in [1, 100], got {bound['quality']!r}")
    if bound["quality_range"] is not None:
        problems += _check_range("quality_range", bound["quality_range"], 1, 100)
    return problems


_SCALE = {"scale": Key((int,), doc="downscaling factor (default: the top-level scale)")}

#: The degradations a ``degradation`` entry may name (``type``), each declared like a component: its keys
#: (``type`` aside) and its own check of the bound values.
DEGRADATIONS: dict[str, Declared] = {
    "bicubic": Declared("bicubic", _SCALE, _check_scale),
    "gaussian_noise": Declared("gaussian_noise", {
        "sigma": Key((int, float), doc="noise standard deviation in [0, 255] units"),
        "sigma_range": Key((list,), doc="[low, high]: sigma drawn uniformly per image"),
        "clip": Key((bool,), default=False, doc="clip the noisy image to [0, 1]"),
    }, _check_noise),
    "jpeg": Declared("jpeg", {
        "quality": Key((int,), doc="JPEG quality, 1-100"),
        "quality_range": Key((list,), doc="[low, high]: quality drawn uniformly per image"),
    }, _check_jpeg),
    "bsrgan": Declared("bsrgan", _SCALE, _check_scale),  # restoration.data.degradations.bsrgan
}
#: Other names users write for the same degradation.
_ALIASES = {"noise": "gaussian_noise", "gaussian": "gaussian_noise", "awgn": "gaussian_noise",
            "bicubic_down": "bicubic", "downsample": "bicubic", "jpeg_compression": "jpeg", "JPEG": "jpeg"}


def normalize_degradations(spec: Any) -> list[dict]:
    """Turn a ``degradation`` option (a dict or a list of dicts) into a list of dicts with canonical types."""
    items = spec if isinstance(spec, (list, tuple)) else [spec]
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise DataError(f"each degradation must be a mapping with a 'type', got {item!r}")
        item = dict(item)
        item["type"] = _ALIASES.get(item.get("type"), item.get("type"))
        out.append(item)
    return out


def check_degradations(spec: Any) -> list[str]:
    """Problems with a ``degradation`` option, as human-readable lines (never raises): each entry's type,
    then its declaration and check (:func:`~restoration.declare.component_problems`)."""
    try:
        items = normalize_degradations(spec)
    except ValueError as exc:
        return [str(exc)]
    if not items:
        return ["degradation list is empty"]
    problems = []
    for i, item in enumerate(items):
        where = f"degradation[{i}]" if isinstance(spec, (list, tuple)) else "degradation"
        kind = item.get("type")
        if kind not in DEGRADATIONS:
            problems.append(f"{where}: unknown type {kind!r}{did_you_mean(str(kind), set(DEGRADATIONS))}; "
                            f"choose one of {tuple(DEGRADATIONS)}")
            continue
        problems += component_problems(DEGRADATIONS[kind], {k: v for k, v in item.items() if k != "type"}, where,
                                       label=kind)
    return problems


def total_scale(items: list[dict], default_scale: int = 1) -> int:
    """Product of the bicubic/bsrgan factors of a normalised chain (one without ``scale`` uses ``default_scale``)."""
    s = 1
    for item in items:
        if item["type"] in ("bicubic", "bsrgan"):
            s *= int(item.get("scale") or default_scale)
    return s


def _apply_one(img: np.ndarray, item: dict, rng: np.random.Generator, default_scale: int) -> np.ndarray:
    kind = item["type"]
    if kind == "bicubic":
        return bicubic_downscale(img, int(item.get("scale") or default_scale))
    if kind == "gaussian_noise":
        sigma = item["sigma"] if "sigma" in item else rng.uniform(*item["sigma_range"])
        return add_gaussian_noise(img, float(sigma), rng, clip=bool(item.get("clip", False)))
    if kind == "jpeg":
        lo_hi = item.get("quality_range")
        quality = item["quality"] if "quality" in item else int(rng.integers(lo_hi[0], lo_hi[1] + 1))
        return jpeg_compress(img, quality)
    if kind == "bsrgan":
        return bsrgan_degrade(to_float(img), int(item.get("scale") or default_scale), rng)
    raise DataError(f"unknown degradation type {kind!r}; choose one of {tuple(DEGRADATIONS)}")


def apply_degradations(img: np.ndarray, spec: Any, rng: np.random.Generator, default_scale: int = 1) -> np.ndarray:
    """Apply a degradation chain to an ``(H, W, C)`` image.

    Args:
        img: GT image, ``uint8``/``uint16`` (or float32 in [0, 1]).
        spec: A ``degradation`` option (dict or list of dicts), see the module docstring.
        rng: Source of every random number (noise, sampled sigma/quality).
        default_scale: Factor of a ``bicubic`` entry that has no ``scale`` (the dataset's ``scale``).

    Returns:
        The LQ image as float32 ``(h, w, C)``, in [0, 1] except for unclipped noise.
    """
    out = img
    for item in normalize_degradations(spec):
        out = _apply_one(out, item, rng, default_scale)
    return to_float(out)
