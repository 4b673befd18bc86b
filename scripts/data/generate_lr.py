"""Make bicubic LR images from a folder of HR images, the way the SR benchmark sets were made (MATLAB ``imresize``).

Usage::

    python scripts/data/generate_lr.py --input datasets/Set14/HR --output datasets/Set14/LR_bicubic/X4 --scale 4 \\
        [--mod-crop [--hr-output datasets/Set14/HR_mod4]]

Each HR image is first cropped (bottom/right) to a multiple of ``scale`` — the LR of an image whose size is not a
multiple of the scale would not upsample back to the HR size — then downscaled by ``1 / scale`` with the
MATLAB-compatible bicubic (antialiased, uint8 kept between the two 1-D passes as MATLAB does), and written as
``<output>/<name>x<scale>.png`` whatever the HR format (TIFF, JPEG, ...): ``PairedImageDataset`` with
``filename_tmpl: '{}x<scale>'`` pairs it with ``<name>.<any extension>`` (both use
``restoration.data.file_lists.lq_stem``). ``--mod-crop`` also writes the cropped HR images (default folder
``<output>/HR_mod<scale>``), so pairs line up exactly.

8-bit RGB and grayscale images are supported; 16-bit images and images with an alpha channel are rejected with a
message (convert them first), so no silent precision or channel loss happens.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from restoration.data.file_lists import lq_stem, lr_filename_tmpl
from restoration.utils.image_io import IMG_EXTENSIONS
from restoration.utils.matlab_imresize import imresize_np

__all__ = ["main", "mod_crop", "read_rgb_uint8", "write_rgb_uint8", "IMAGE_EXTENSIONS"]

#: What counts as an image: the datasets' own list, so every HR image the script reads pairs with its LR.
IMAGE_EXTENSIONS = IMG_EXTENSIONS


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right of an ``(H, W[, C])`` image so that H and W are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale, ...]


def read_rgb_uint8(path: Path) -> np.ndarray:
    """Read an 8-bit image as RGB ``(H, W, 3)`` or grayscale ``(H, W)`` uint8; raise naming the file otherwise."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"cannot read image {path} (missing, corrupt or not an image)")
    if img.dtype != np.uint8:
        raise ValueError(f"{path}: only 8-bit images are supported, got dtype {img.dtype} (convert it to 8-bit first)")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return img
    if img.shape[2] == 4:
        raise ValueError(f"{path}: images with an alpha channel are not supported (remove the alpha channel first)")
    if img.shape[2] != 3:
        raise ValueError(f"{path}: unsupported number of channels {img.shape[2]}")
    return np.ascontiguousarray(img[:, :, ::-1])  # OpenCV reads BGR


def write_rgb_uint8(path: Path, img: np.ndarray) -> None:
    """Write an RGB ``(H, W, 3)`` or grayscale ``(H, W)`` uint8 image as PNG (lossless)."""
    out = img if img.ndim == 2 else img[:, :, ::-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(out)):
        raise OSError(f"could not write {path}")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, type=Path, help="folder of HR images")
    parser.add_argument("--output", required=True, type=Path, help="folder for the LR PNGs <name>x<scale>.png")
    parser.add_argument("--scale", required=True, type=int, help="integer downscaling factor, e.g. 4")
    parser.add_argument(
        "--mod-crop", action="store_true", help="also write the HR images cropped to a multiple of scale"
    )
    parser.add_argument(
        "--hr-output", type=Path, default=None, help="folder for --mod-crop HR (default <output>/HR_mod<scale>)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the number of images written."""
    args = _parse_args(argv)
    if args.scale < 1:
        raise SystemExit(f"--scale must be a positive integer, got {args.scale}")
    if not args.input.is_dir():
        raise SystemExit(f"--input {args.input} is not a folder")
    paths = sorted(p for p in args.input.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise SystemExit(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {args.input}")
    stems: dict[str, Path] = {}
    for path in paths:  # a.png and a.tif would both become ax<scale>.png
        if path.stem in stems:
            raise SystemExit(f"two images with the stem '{path.stem}' in {args.input}: {stems[path.stem].name} and "
                             f"{path.name} (their LR images would share one name); keep one of them")
        stems[path.stem] = path
    tmpl = lr_filename_tmpl(args.scale)
    hr_output = args.hr_output or args.output / f"HR_mod{args.scale}"
    for path in paths:
        hr = mod_crop(read_rgb_uint8(path), args.scale)
        if min(hr.shape[:2]) == 0:
            raise ValueError(f"{path}: smaller than the scale {args.scale}")
        lr = imresize_np(hr, scale=1.0 / args.scale)
        write_rgb_uint8(args.output / f"{lq_stem(path.stem, tmpl)}.png", lr)
        if args.mod_crop:
            write_rgb_uint8(hr_output / f"{path.stem}.png", hr)
        print(f"{path.name}: HR {hr.shape[1]}x{hr.shape[0]} -> LR {lr.shape[1]}x{lr.shape[0]}")
    print(f"wrote {len(paths)} LR images to {args.output}; PairedImageDataset reads them with filename_tmpl: '{tmpl}'")
    return len(paths)


if __name__ == "__main__":
    main(sys.argv[1:])
