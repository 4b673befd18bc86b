"""FID (Heusel et al. 2017) between two folders of images; lower is better.

    python -m restoration.metrics.fid --real DIR --fake DIR --inception-weights pt_inception-2015-12-05-6726825d.pth

Each folder's images (``*.png``, ``*.jpg``, ... directly inside it, sorted; read as RGB) give pool3 features
``(N, 2048)`` of :class:`restoration.metrics.fid_inception.FIDInceptionV3`; their mean ``μ`` and covariance ``Σ``
(unbiased, float64) give::

    FID = |μ_r - μ_f|² + tr(Σ_r) + tr(Σ_f) - 2 tr(sqrtm(Σ_r Σ_f))

``sqrtm`` is ``scipy.linalg.sqrtm`` in float64. When it is not finite (a singular product: fewer images than
dimensions), ``1e-6`` is added to both diagonals and it is taken again; an imaginary part of rounding size
(every diagonal entry within ``1e-3`` of real) is dropped, a larger one is an error. These are pytorch-fid's
steps, so the numbers are comparable with its.

FID is a statistic of a whole set, not a mean of per-image scores, so it is no ``val.metrics`` entry (those are
``fn(img, img2)`` averaged over images): run this on ``test.py``'s saved images (``val.save_img``) and the ground
truth folder. Its variance is large below a few thousand images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from scipy import linalg

from restoration.errors import RestorationError
from restoration.errors import FIDError
from restoration.metrics.fid_inception import FIDInceptionV3

__all__ = ["FIDError", "IMAGE_SUFFIXES", "activation_statistics", "calculate_fid_folders", "folder_features",
           "frechet_distance", "main"]

IMAGE_SUFFIXES = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2): ``(D,)`` means, ``(D, D)`` covariances, float64."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise FIDError(f"statistics of different sizes: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / "
                       f"{sigma2.shape}")
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(mu1.size) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise FIDError(f"sqrtm(sigma1 sigma2) has an imaginary part of {np.abs(covmean.imag).max():.3g}: "
                           "too few images for a covariance of this size")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def activation_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of ``(N, D)`` features, float64."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _image_files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise FIDError(f"--{what} folder not found: {str(folder)!r}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < 2:
        raise FIDError(f"--{what} folder {str(folder)!r} holds {len(files)} image(s); a covariance needs at least 2 "
                       f"({', '.join(IMAGE_SUFFIXES)})")
    return files


@torch.no_grad()
def folder_features(files: Sequence[Path], network: FIDInceptionV3, batch_size: int = 50,
                    device: str | torch.device = "cpu") -> np.ndarray:
    """Pool3 features ``(N, 2048)`` of image files; consecutive images of one size share a batch."""
    out: list[np.ndarray] = []
    batch: list[torch.Tensor] = []

    def flush() -> None:
        if batch:
            out.append(network(torch.stack(batch).to(device)).cpu().double().numpy())
            batch.clear()

    for path in files:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        tensor = torch.from_numpy(pixels).permute(2, 0, 1)
        if batch and (tensor.shape != batch[0].shape or len(batch) == batch_size):
            flush()
        batch.append(tensor)
    flush()
    return np.concatenate(out)


def calculate_fid_folders(real: str | Path, fake: str | Path, inception_weights: str | Path,
                          batch_size: int = 50, device: str | None = None) -> float:
    """FID of the images in two folders (see the module docstring).

    Raises:
        FIDError: A folder is missing or holds fewer than 2 images.
        FIDWeightsError: The Inception weights file is missing or does not fit.
    """
    real_files = _image_files(Path(real).expanduser(), "real")
    fake_files = _image_files(Path(fake).expanduser(), "fake")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    network = FIDInceptionV3(inception_weights).to(device)
    stats = [activation_statistics(folder_features(files, network, batch_size, device))
             for files in (real_files, fake_files)]
    return frechet_distance(*stats[0], *stats[1])


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; prints ``FID: <value>``. A user error is one line on stderr and exit status 2."""
    parser = argparse.ArgumentParser(prog="python -m restoration.metrics.fid", description=__doc__.split("\n")[0])
    parser.add_argument("--real", required=True, help="folder of reference images")
    parser.add_argument("--fake", required=True, help="folder of generated / restored images")
    parser.add_argument("--inception-weights", required=True,
                        help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (local; nothing is downloaded)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    args = parser.parse_args(argv)
    try:
        value = calculate_fid_folders(args.real, args.fake, args.inception_weights, args.batch_size, args.device)
    except RestorationError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(f"FID: {value:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
