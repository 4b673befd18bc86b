"""Blur kernels of the Real-ESRGAN degradation (Wang et al. 2021), drawn per sample in the data workers.

Every kernel is a float64 ``(k, k)`` numpy array that sums to 1, ``k`` odd. Coordinates are offsets
from the centre, ``x`` along columns and ``y`` along rows, ``p = (x, y)``; with the covariance
``Σ = R(θ) diag(σx², σy²) R(θ)ᵀ`` and ``q = pᵀ Σ⁻¹ p`` the families are (BasicSR ``degradations.py``):

* ``iso`` / ``aniso``: Gaussian, ``exp(-q / 2)`` (``iso``: ``σy = σx``, ``θ = 0``);
* ``generalized_iso`` / ``generalized_aniso``: ``exp(-q^β / 2)``, heavier or lighter tails than a Gaussian;
* ``plateau_iso`` / ``plateau_aniso``: ``1 / (q^β + 1)``, a flat top;
* sinc (``circular_lowpass_kernel``): the ideal circular low-pass filter ``ω J₁(ω r) / (2π r)``, which
  produces the ringing and overshoot artefacts of real images.

All randomness comes from the ``numpy.random.Generator`` passed in (a dataset's :meth:`sample_rng`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["KERNEL_TYPES", "BLUR_KEYS", "mesh_grid", "sigma_matrix", "bivariate_kernel", "circular_lowpass_kernel",
           "pad_kernel", "pulse_kernel", "kernel_sizes", "random_mixed_kernel", "draw_blur_kernel",
           "draw_sample_kernels", "draw_batch_kernels", "draw_final_sinc_kernel", "check_probabilities",
           "check_range", "check_blur_options"]

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
#: The option keys of one blur stage (the second stage appends ``2`` to each name).
BLUR_KEYS = ("blur_kernel_size", "kernel_list", "kernel_prob", "blur_sigma", "betag_range", "betap_range", "sinc_prob")
MIN_KERNEL_SIZE = 7  # Real-ESRGAN draws sizes from 7, 9, ..., 21


def mesh_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` offsets from the centre of a ``size × size`` grid (``size`` odd): ``x`` varies along columns."""
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    return np.meshgrid(ax, ax)  # xx[row, col] = ax[col], yy[row, col] = ax[row]


def sigma_matrix(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Covariance ``R(θ) diag(σx², σy²) R(θ)ᵀ`` with ``R = [[cos θ, -sin θ], [sin θ, cos θ]]``."""
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return rot @ np.diag([sigma_x ** 2, sigma_y ** 2]) @ rot.T


def bivariate_kernel(kind: str, size: int, sigma_x: float, sigma_y: float, theta: float,
                     beta: float = 1.0) -> np.ndarray:
    """One kernel of family ``kind`` (``gaussian``, ``generalized`` or ``plateau``), normalised to sum 1.

    A covariance too small to invert (σ below ~1e-154: σ² underflows) gives an all-NaN kernel, which the
    dataset reports with the sample's seed and the drawn parameters.
    """
    xx, yy = mesh_grid(size)
    try:
        inv = np.linalg.inv(sigma_matrix(sigma_x, sigma_y, theta))
    except np.linalg.LinAlgError:
        return np.full((size, size), np.nan)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # degenerate draws end as NaN, reported
        q = inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy
        if kind == "gaussian":
            kernel = np.exp(-0.5 * q)
        elif kind == "generalized":
            kernel = np.exp(-0.5 * np.power(q, beta))
        elif kind == "plateau":
            kernel = 1.0 / (np.power(q, beta) + 1.0)
        else:
            raise ValueError(f"unknown kernel family {kind!r}")
        return kernel / kernel.sum()


def circular_lowpass_kernel(omega_c: float, size: int) -> np.ndarray:
    """2-D sinc: ``ω J₁(ω r) / (2π r)``, ``r`` the distance from the centre; the centre (``r = 0``) takes the
    limit ``ω² / (4π)``. Normalised to sum 1. ``omega_c`` in radians per pixel, ``(0, π]``."""
    from scipy.special import j1  # heavy dependency

    xx, yy = mesh_grid(size)
    r = np.hypot(xx, yy)
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = omega_c * j1(omega_c * r) / (2 * math.pi * r)
    c = (size - 1) // 2
    kernel[c, c] = omega_c ** 2 / (4 * math.pi)
    return kernel / kernel.sum()


def pad_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad an odd ``(k, k)`` kernel to ``(size, size)``, keeping it centred."""
    pad = (size - kernel.shape[0]) // 2
    return np.pad(kernel, ((pad, pad), (pad, pad))) if pad > 0 else kernel


def pulse_kernel(size: int) -> np.ndarray:
    """The identity filter: 1 at the centre of a ``size × size`` grid."""
    kernel = np.zeros((size, size))
    kernel[size // 2, size // 2] = 1.0
    return kernel


def kernel_sizes(max_size: int) -> list[int]:
    """The odd sizes a kernel is drawn from: 7, 9, ..., ``max_size`` (Real-ESRGAN: 7 ... 21)."""
    return list(range(MIN_KERNEL_SIZE, max_size + 1, 2))


def _draw_beta(rng: np.random.Generator, beta_range: Sequence[float]) -> float:
    # Half the time below 1, half above, as BasicSR does: a uniform draw over the whole range would
    # almost never give the lighter-tailed (beta < 1) shapes with ranges such as [0.5, 4].
    if rng.random() < 0.5:
        return float(rng.uniform(beta_range[0], 1.0))
    return float(rng.uniform(1.0, beta_range[1]))


def random_mixed_kernel(rng: np.random.Generator, kernel_list: Sequence[str], kernel_prob: Sequence[float],
                        size: int, sigma_range: Sequence[float], betag_range: Sequence[float],
                        betap_range: Sequence[float]) -> tuple[np.ndarray, dict[str, Any]]:
    """A kernel of a type drawn from ``kernel_list`` with ``kernel_prob``: σx, σy ~ U(``sigma_range``),
    θ ~ U(-π, π) (``iso``: σy = σx, θ = 0), β drawn from ``betag_range``/``betap_range``.

    Returns:
        The ``(size, size)`` kernel and its parameters (``type``, ``sigma_x``, ``sigma_y``, ``theta``, ``beta``).
    """
    kind = kernel_list[int(rng.choice(len(kernel_list), p=np.asarray(kernel_prob, dtype=np.float64)))]
    isotropic = kind.endswith("iso") and not kind.endswith("aniso")
    sigma_x = float(rng.uniform(*sigma_range))
    sigma_y, theta = (sigma_x, 0.0) if isotropic else (float(rng.uniform(*sigma_range)),
                                                       float(rng.uniform(-math.pi, math.pi)))
    family, beta = "gaussian", 1.0
    if kind.startswith("generalized"):
        family, beta = "generalized", _draw_beta(rng, betag_range)
    elif kind.startswith("plateau"):
        family, beta = "plateau", _draw_beta(rng, betap_range)
    params = {"type": kind, "size": size, "sigma_x": sigma_x, "sigma_y": sigma_y, "theta": theta, "beta": beta}
    return bivariate_kernel(family, size, sigma_x, sigma_y, theta, beta), params


def draw_blur_kernel(rng: np.random.Generator, opt: Mapping[str, Any], suffix: str = "",
                     pad_to: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """One blur kernel of a Real-ESRGAN stage, read from ``opt`` with BasicSR's key names.

    ``suffix`` is ``""`` for the first stage and ``"2"`` for the second (``kernel_list2``, ...). The size is
    drawn from 7, 9, ..., ``blur_kernel_size``; with probability ``sinc_prob`` the kernel is a sinc with
    ``ω ~ U(π/3, π)`` (sizes below 13) or ``U(π/5, π)``, else a :func:`random_mixed_kernel`. Zero-padded
    to ``pad_to`` (default ``blur_kernel_size``) so a batch stacks.
    """
    max_size = int(opt["blur_kernel_size" + suffix])
    size = int(rng.choice(kernel_sizes(max_size)))
    if rng.random() < opt["sinc_prob" + suffix]:
        omega_c = float(rng.uniform(math.pi / 3, math.pi) if size < 13 else rng.uniform(math.pi / 5, math.pi))
        kernel, params = circular_lowpass_kernel(omega_c, size), {"type": "sinc", "size": size, "omega_c": omega_c}
    else:
        kernel, params = random_mixed_kernel(rng, opt["kernel_list" + suffix], opt["kernel_prob" + suffix], size,
                                             opt["blur_sigma" + suffix], opt["betag_range" + suffix],
                                             opt["betap_range" + suffix])
    return pad_kernel(kernel, pad_to or max_size), params


def draw_sample_kernels(rng: np.random.Generator, opt: Mapping[str, Any]
                        ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """The three kernels of one Real-ESRGAN sample, in the data worker's order: ``kernel1``, ``kernel2``
    (:func:`draw_blur_kernel`, first and second stage) and ``sinc_kernel`` (:func:`draw_final_sinc_kernel`,
    as large as the larger blur). Returns ``({name: kernel}, {name: drawn parameters})``."""
    kernel1, params1 = draw_blur_kernel(rng, opt, "")
    kernel2, params2 = draw_blur_kernel(rng, opt, "2")
    sinc_size = max(int(opt["blur_kernel_size"]), int(opt["blur_kernel_size2"]))
    sinc, params3 = draw_final_sinc_kernel(rng, opt["final_sinc_prob"], sinc_size)
    return ({"kernel1": kernel1, "kernel2": kernel2, "sinc_kernel": sinc},
            {"kernel1": params1, "kernel2": params2, "sinc_kernel": params3})


def draw_batch_kernels(rng: np.random.Generator, opt: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    """:func:`draw_sample_kernels` for ``n`` samples in turn, stacked per name: ``{name: (n, k, k) float32}``,
    what the training loader collates from the dataset (benchmarks and tests build batches with it)."""
    drawn = [draw_sample_kernels(rng, opt)[0] for _ in range(n)]
    return {key: np.stack([d[key] for d in drawn]).astype(np.float32) for key in drawn[0]}


def draw_final_sinc_kernel(rng: np.random.Generator, final_sinc_prob: float,
                           size: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The last filter: with probability ``final_sinc_prob`` a sinc (odd size from 7 to ``size``,
    ``ω ~ U(π/3, π)``), else the identity pulse; ``(size, size)``."""
    if rng.random() < final_sinc_prob:
        k = int(rng.choice(kernel_sizes(size)))
        omega_c = float(rng.uniform(math.pi / 3, math.pi))
        return pad_kernel(circular_lowpass_kernel(omega_c, k), size), {"type": "sinc", "size": k, "omega_c": omega_c}
    return pulse_kernel(size), {"type": "pulse"}


# ----------------------------------------------------------------------------------------------- checks
def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_probabilities(name: str, probs: Any, length: int | None = None) -> list[str]:
    """Problems of a probability list: numbers in [0, 1] that sum to 1 (and ``length`` of them)."""
    if not (isinstance(probs, (list, tuple)) and probs and all(_is_num(p) for p in probs)):
        return [f"{name} must be a list of probabilities, got {probs!r}"]
    if length is not None and len(probs) != length:
        return [f"{name} has {len(probs)} entries but needs {length}"]
    if any(p < 0 or p > 1 for p in probs) or abs(sum(probs) - 1.0) > 1e-6:
        return [f"{name} {list(probs)} must be probabilities in [0, 1] that sum to 1 (they sum to {sum(probs):g})"]
    return []


def check_range(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf, positive: bool = False) -> list[str]:
    """Problems of a ``[low, high]`` pair within ``[lo, hi]`` (``positive``: low > 0)."""
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_num(v) for v in value)):
        return [f"{name} must be a pair [low, high], got {value!r}"]
    if not (lo <= value[0] <= value[1] <= hi) or (positive and value[0] <= 0):
        bound = f"0 < low <= high <= {hi:g}" if positive else f"{lo:g} <= low <= high <= {hi:g}"
        return [f"{name} {list(value)} must satisfy {bound}"]
    return []


def check_blur_options(opt: Mapping[str, Any], suffix: str = "") -> list[str]:
    """Problems of one stage's blur options (``suffix`` ``""`` or ``"2"``); never raises."""
    problems: list[str] = []
    size = opt.get("blur_kernel_size" + suffix)
    if not (isinstance(size, int) and not isinstance(size, bool) and size >= MIN_KERNEL_SIZE and size % 2 == 1):
        problems.append(f"blur_kernel_size{suffix} must be an odd integer >= {MIN_KERNEL_SIZE} (kernels are "
                        f"centred on a pixel), got {size!r}")
    kinds = opt.get("kernel_list" + suffix)
    if not (isinstance(kinds, (list, tuple)) and kinds):
        problems.append(f"kernel_list{suffix} must be a non-empty list of {KERNEL_TYPES}, got {kinds!r}")
        kinds = None
    else:
        problems += [f"kernel_list{suffix}: unknown kernel type {k!r}; choose from {KERNEL_TYPES}"
                     for k in kinds if k not in KERNEL_TYPES]
    problems += check_probabilities("kernel_prob" + suffix, opt.get("kernel_prob" + suffix),
                                    len(kinds) if kinds else None)
    problems += check_range("blur_sigma" + suffix, opt.get("blur_sigma" + suffix), positive=True)
    for key in ("betag_range", "betap_range"):
        value = opt.get(key + suffix)
        range_problems = check_range(key + suffix, value, positive=True)
        problems += range_problems
        if not range_problems and not value[0] <= 1 <= value[1]:
            problems.append(f"{key}{suffix} {list(value)} must contain 1 (beta is drawn below and above 1)")
    prob = opt.get("sinc_prob" + suffix)
    if not (_is_num(prob) and 0 <= prob <= 1):
        problems.append(f"sinc_prob{suffix} must be a probability in [0, 1], got {prob!r}")
    return problems
