"""NIQE, the no-reference "Natural Image Quality Evaluator" (Mittal, Soundararajan and Bovik, "Making a
'Completely Blind' Image Quality Analyzer", IEEE SPL 2013), computed as the official MATLAB release
(``computequality.m``) computes it. Lower is better (closer to the statistics of pristine photographs).

NIQE measures how far an image's local statistics are from a multivariate Gaussian fitted once on pristine
natural images. That model is data: ``niqe_params_path`` names a local file holding it, never downloaded:

* BasicSR's ``basicsr/metrics/niqe_pris_params.npz`` (``mu_pris_param`` (1, 36), ``cov_pris_param``
  (36, 36)), inside the ``basicsr`` source release on PyPI (Apache-2.0; docs/realsr.md says how to get it);
* or the MATLAB release's ``modelparameters.mat`` (``mu_prisparam``, ``cov_prisparam``).

The computation, on a gray plane ``I`` in [0, 255] rounded to integers (MATLAB works on uint8), cut to whole
96 x 96 blocks::

    for scale in (1, 2):                                   # scale 2: MATLAB imresize(I, 0.5), bicubic
        mu = w * I;  sigma = sqrt(|w * I^2 - mu^2|)        # w: 7x7 Gaussian, std 7/6, sum 1; borders replicated
        M = (I - mu) / (sigma + 1)                         # MSCN coefficients
        per block of (96/scale)^2 pixels, 18 features:     # AGGD fits (below)
            alpha, (beta_l + beta_r) / 2                   #   of M
            alpha, mean, beta_l, beta_r                    #   of M * shift(M), 4 neighbours: right, down, 2 diagonals
    nu, S = mean, covariance of the 36-vectors over blocks (blocks with NaN features left out of S)
    NIQE = sqrt((nu_p - nu) ((S_p + S) / 2)^+ (nu_p - nu)^T)  # nu_p, S_p: the pristine model; ^+: pseudo-inverse

AGGD fit (``estimateaggdparam.m``): moment matching of ``r = E|x|^2 / E[x^2]``, corrected by the left/right
deviation ratio, against ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` on the grid ``a = 0.2 : 0.001 : 10``;
``beta = std * sqrt(Gamma(1/a) / Gamma(3/a))`` on each side, ``mean = (beta_r - beta_l) Gamma(2/a) / Gamma(1/a)``.

One deliberate difference: in a flat 7 x 7 window ``I - mu`` is exactly 0 in exact arithmetic, but floating-point
summation leaves about 1e-13 of either sign, and the AGGD fit counts signs (left/right deviations). Whether
that residue is positive depends on the filter's summation order (MATLAB's, SciPy's), and it moves NIQE by up
to 0.5 on images with flat areas. Coefficients below ``FLAT`` (1e-8) are therefore set to 0. Measured against
the MATLAB release's published values on five TID2013 images (docs/realsr.md): equal to 6 decimals on the one
without flat areas, within 0.032 on the others (BasicSR's Python NIQE: 0.43 off on the flattest one).

Gray plane: ``convert_to: y`` (default, BasicSR's choice for SR papers: the MATLAB Y of YCbCr) or ``gray``
(MATLAB ``rgb2gray``, what the release's demo feeds it).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from scipy.ndimage import correlate
from scipy.special import gamma

from restoration.errors import NIQEParamsError
from restoration.metrics.psnr_ssim import to_y_channel
from restoration.utils.matlab_fspecial import matlab_gaussian
from restoration.utils.matlab_imresize import imresize_np

__all__ = ["calculate_niqe", "niqe", "niqe_features", "load_niqe_params", "NIQEParamsError"]

BLOCK = 96  # the release's block size (no overlap)
# |MSCN| below this is a flat 7x7 window's exact zero plus summation residue (~1e-13): counted as 0.
FLAT = 1e-8
_RGB2GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])  # MATLAB rgb2gray
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # neighbour products: horizontal, vertical, both diagonals
_ALPHAS = np.arange(0.2, 10.001, 0.001)  # the AGGD shape grid, 9801 values
_R_ALPHA = gamma(2 / _ALPHAS) ** 2 / (gamma(1 / _ALPHAS) * gamma(3 / _ALPHAS))
_CHUNK = 256  # blocks per vectorised grid search (256 x 9801 float64 = 20 MB)
_WHERE = ("expected BasicSR's niqe_pris_params.npz or the MATLAB release's modelparameters.mat; nothing is "
          "downloaded, docs/realsr.md says where to find them")


@functools.lru_cache(maxsize=4)
def load_niqe_params(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``(mu (36,), cov (36, 36))`` of the pristine model from BasicSR's ``.npz`` or the release's ``.mat``.

    Raises:
        NIQEParamsError: Missing or unreadable file, or arrays of other names/shapes.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise NIQEParamsError(f"NIQE niqe_params_path file not found: {path!r} ({_WHERE})")
    try:
        if file.suffix == ".mat":
            import scipy.io  # heavy dependency

            data: Mapping[str, Any] = scipy.io.loadmat(str(file))
        else:
            data = dict(np.load(file, allow_pickle=False))
    except Exception as exc:  # truncated, not an npz/mat, pickled objects
        raise NIQEParamsError(f"cannot read the NIQE model {path!r}: {exc}") from exc
    for mu_key, cov_key in (("mu_pris_param", "cov_pris_param"), ("mu_prisparam", "cov_prisparam")):
        if mu_key in data and cov_key in data:
            mu = np.asarray(data[mu_key], dtype=np.float64).reshape(-1)
            cov = np.asarray(data[cov_key], dtype=np.float64)
            if mu.shape == (36,) and cov.shape == (36, 36) and np.isfinite(cov).all() and np.isfinite(mu).all():
                return mu, cov
            raise NIQEParamsError(f"the NIQE model {path!r} has mu {mu.shape} and cov {cov.shape}; expected (36,) "
                                  "and (36, 36), finite")
    names = sorted(k for k in data if not k.startswith("__"))
    raise NIQEParamsError(f"the NIQE model {path!r} holds {names}; expected mu_pris_param + cov_pris_param "
                          "(BasicSR's niqe_pris_params.npz) or mu_prisparam + cov_prisparam (modelparameters.mat)")


def _aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AGGD ``(alpha, beta_l, beta_r)`` of each row of ``x`` ``(N, P)``; NaN where a side has no sample."""
    sq = x * x
    neg, pos = x < 0, x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt((sq * neg).sum(1) / neg.sum(1))
        right = np.sqrt((sq * pos).sum(1) / pos.sum(1))
        ratio = left / right
        rhat = np.abs(x).mean(1) ** 2 / sq.mean(1)
        rnorm = rhat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1) ** 2
    index = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), _CHUNK):
        diff = (_R_ALPHA[None, :] - rnorm[start : start + _CHUNK, None]) ** 2
        # an all-NaN row gives index 0, as MATLAB's min (and numpy's argmin on a NaN-free row) would
        index[start : start + _CHUNK] = np.argmin(np.nan_to_num(diff, nan=np.inf), axis=1)
    alpha = _ALPHAS[index]
    scale = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * scale, right * scale


def _block_features(mscn: np.ndarray, size: int) -> np.ndarray:
    """``(N, 18)`` features of the ``size x size`` blocks of an MSCN plane (row-major block order)."""
    h, w = mscn.shape
    blocks = mscn.reshape(h // size, size, w // size, size).transpose(0, 2, 1, 3).reshape(-1, size, size)
    n = len(blocks)
    alpha, left, right = _aggd(blocks.reshape(n, -1))
    columns = [alpha, (left + right) / 2]
    for shift in _SHIFTS:
        alpha, left, right = _aggd((blocks * np.roll(blocks, shift, axis=(1, 2))).reshape(n, -1))
        columns += [alpha, (right - left) * gamma(2 / alpha) / gamma(1 / alpha), left, right]
    return np.stack(columns, axis=1)


def niqe_features(plane: np.ndarray) -> np.ndarray:
    """``(N, 36)`` features of the ``N`` whole 96 x 96 blocks of a gray plane (row-major block order):
    18 at full scale, then 18 at half scale."""
    plane = plane.astype(np.float64)
    window = matlab_gaussian(7, 7 / 6)  # the release's fspecial('gaussian', 7, 7/6)
    features = []
    for scale in (1, 2):
        mu = correlate(plane, window, mode="nearest")  # imfilter(..., 'replicate'); the window is symmetric
        sigma = np.sqrt(np.abs(correlate(plane * plane, window, mode="nearest") - mu * mu))
        mscn = (plane - mu) / (sigma + 1)
        mscn[np.abs(mscn) < FLAT] = 0.0  # flat windows: exact zeros, not rounding residue of either sign
        features.append(_block_features(mscn, BLOCK // scale))
        if scale == 1:
            plane = imresize_np(plane, scale=0.5, antialiasing=True)  # float64 in, float64 out, unclipped
    return np.concatenate(features, axis=1)


def niqe(plane: np.ndarray, mu_pris: np.ndarray, cov_pris: np.ndarray) -> float:
    """NIQE of a gray ``(H, W)`` plane in [0, 255] (use integers, as MATLAB's uint8) against a pristine model.

    Raises:
        ValueError: Fewer than two whole 96 x 96 blocks (the covariance needs two), or every block flat.
    """
    if plane.ndim != 2:
        raise ValueError(f"niqe needs a gray (H, W) plane, got shape {plane.shape}")
    rows, cols = plane.shape[0] // BLOCK, plane.shape[1] // BLOCK
    if rows * cols < 2:
        raise ValueError(f"NIQE needs at least two whole {BLOCK}x{BLOCK} blocks (e.g. 96x192 pixels), got "
                         f"{plane.shape[0]}x{plane.shape[1]}")
    feats = niqe_features(plane[: rows * BLOCK, : cols * BLOCK])
    complete = feats[~np.isnan(feats).any(axis=1)]
    if len(complete) < 2:
        raise ValueError("NIQE is undefined for this image: fewer than two blocks have both signs of MSCN "
                         "coefficients (a flat or saturated image)")
    with np.errstate(invalid="ignore"):
        mu_dist = np.nanmean(feats, axis=0)  # MATLAB nanmean: per feature over the blocks that have it
    cov_dist = np.cov(complete, rowvar=False)  # MATLAB nancov: complete rows only
    diff = mu_pris - mu_dist
    return float(np.sqrt(diff @ np.linalg.pinv((cov_pris + cov_dist) / 2) @ diff))


def _gray_plane(img: np.ndarray, crop_border: int, convert_to: str) -> np.ndarray:
    """``(H, W)`` float64 integers in [0, 255]: Y (or MATLAB rgb2gray) of an RGB image, rounded, cropped."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 3:
        if convert_to == "y":
            plane = to_y_channel(img)[..., 0]
        elif convert_to == "gray":
            plane = img.astype(np.float64) @ _RGB2GRAY
        else:
            raise ValueError(f"calculate_niqe: convert_to must be 'y' or 'gray', got {convert_to!r}")
    elif img.ndim == 2 or img.ndim == 3 and img.shape[2] == 1:
        plane = img.reshape(img.shape[:2]).astype(np.float64)
    else:
        raise ValueError(f"calculate_niqe needs (H, W), (H, W, 1) or (H, W, 3) images, got shape {img.shape}")
    plane = np.floor(np.clip(plane, 0, 255) + 0.5)  # MATLAB's uint8 rounding (half away from zero)
    if crop_border:
        plane = plane[crop_border:-crop_border, crop_border:-crop_border]
    return plane


def calculate_niqe(img: np.ndarray, img2: np.ndarray | None = None, niqe_params_path: str | None = None,
                   crop_border: int = 0, convert_to: str = "y") -> float:
    """NIQE of ``img`` (lower: more natural). The metric signature ``fn(img, img2, **options)``; ``img2`` is
    ignored (no reference needed).

    Args:
        img: ``(H, W, 3)`` RGB or ``(H, W)`` on the [0, 255] scale (uint8, or float on that scale).
        niqe_params_path: The pristine model (see the module docstring).
        crop_border: Pixels removed from each side (after the gray conversion, as BasicSR).
        convert_to: ``'y'`` (MATLAB YCbCr Y) or ``'gray'`` (MATLAB rgb2gray) for colour images.
    """
    if not niqe_params_path:
        raise NIQEParamsError(f"calculate_niqe needs 'niqe_params_path' ({_WHERE})")
    mu, cov = load_niqe_params(str(niqe_params_path))
    return niqe(_gray_plane(img, crop_border, convert_to), mu, cov)


def _check_options(opt: Mapping[str, Any]) -> list[str]:
    """The pristine-model file and ``convert_to``, checked before anything starts."""
    problems = []
    path = opt["niqe_params_path"]
    if not path:
        problems.append(f"NIQE needs 'niqe_params_path' ({_WHERE})")
    else:
        try:
            load_niqe_params(str(path))
        except NIQEParamsError as exc:
            problems.append(str(exc))
    if opt["convert_to"] not in ("y", "gray"):
        problems.append(f"convert_to must be 'y' or 'gray', got {opt.get('convert_to')!r}")
    return problems


calculate_niqe.no_reference = True  # type: ignore[attr-defined]  # scored without ground truth
calculate_niqe.check_options = _check_options  # type: ignore[attr-defined]  # read by the option check
