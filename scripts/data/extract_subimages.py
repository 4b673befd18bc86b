"""Crop large training images into overlapping sub-images, so training reads small files (BasicSR recipe).

DIV2K images are about 2K×1.4K; decoding a whole PNG to cut one 128² patch makes data loading the
bottleneck. Cutting them once into 480² sub-images with step 240 (overlapping) keeps every pixel
while making each read ~20× cheaper. The LR folders are cut with the same grid scaled by ``1/s``
(``--scale s``: crop 480/s, step 240/s), so sub-image ``k`` of an LR image matches sub-image ``k``
of its HR image.

Usage (DIV2K ×2; repeat the LR command for X3/X4 with --scale 3/4)::

    python scripts/data/extract_subimages.py --input datasets/DIV2K/DIV2K_train_HR \\
        --output datasets/DIV2K/DIV2K_train_HR_sub
    python scripts/data/extract_subimages.py --input datasets/DIV2K/DIV2K_train_LR_bicubic/X2 \\
        --output datasets/DIV2K/DIV2K_train_LR_bicubic_X2_sub --scale 2 --strip-suffix x2

Crop positions per axis: ``0, step, 2*step, ...`` while the crop fits, plus a last crop flush with the
border when more than ``--thresh-size`` pixels would otherwise be left out. Sub-images are numbered
row by row from 1 and written as ``{name}_s{idx:03d}.png`` (``0001_s001.png``); ``--strip-suffix x2``
turns ``0001x2`` into ``0001`` first, so HR and LR sub-images share names (``filename_tmpl: '{}'``).
Images smaller than the crop are skipped with a warning.
"""

from __future__ import annotations

import argparse
import os
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Examples:\n" + __doc__.split("Usage (DIV2K", 1)[1].split("::", 1)[1].split("Crop positions", 1)[0])
    p.add_argument("--input", required=True, type=Path, help="folder of full-size images")
    p.add_argument("--output", required=True, type=Path, help="folder for the sub-images")
    p.add_argument("--crop-size", type=int, default=480, help="HR sub-image size (default 480); divided by --scale")
    p.add_argument("--step", type=int, default=240, help="HR distance between crops (default 240); divided by --scale")
    p.add_argument("--thresh-size", type=int, default=0,
                   help="add a border-flush crop when more than this many pixels are left (default 0); divided by --scale")
    p.add_argument("--scale", type=int, default=1, help="the folder holds LR images of this factor (default 1 = HR)")
    p.add_argument("--strip-suffix", default="", help="remove this suffix from file stems, e.g. x2 (0001x2 -> 0001)")
    p.add_argument("--compression", type=int, default=3, help="PNG compression level 0-9 (default 3)")
    p.add_argument("--n-thread", type=int, default=4, help="worker processes (default 4)")
    p.add_argument("--overwrite", action="store_true", help="write into an existing non-empty output folder")
    return p.parse_args(argv)


def crop_starts(length: int, crop: int, step: int, thresh: int) -> list[int]:
    """Start offsets along one axis (empty when ``length < crop``)."""
    if length < crop:
        return []
    starts = list(range(0, length - crop + 1, step))
    if length - (starts[-1] + crop) > thresh:
        starts.append(length - crop)
    return starts


def _worker(job: tuple[str, str, str, int, int, int, int]) -> tuple[str, int, str]:
    """Cut one image; returns (input path, number written, warning or '')."""
    import cv2

    from restoration.utils.image_io import imread, imwrite

    path, out_dir, suffix, crop, step, thresh, level = job
    img = imread(path)
    h, w = img.shape[:2]
    hs, ws = crop_starts(h, crop, step, thresh), crop_starts(w, crop, step, thresh)
    if not hs or not ws:
        return path, 0, f"skipped {path}: {h}x{w} is smaller than the crop {crop}x{crop}"
    stem = Path(path).stem
    if suffix and stem.endswith(suffix):
        stem = stem[: -len(suffix)]
    idx = 0
    for y in hs:
        for x in ws:
            idx += 1
            patch = np.ascontiguousarray(img[y: y + crop, x: x + crop])
            imwrite(os.path.join(out_dir, f"{stem}_s{idx:03d}.png"), patch, [cv2.IMWRITE_PNG_COMPRESSION, level])
    return path, idx, ""


def _validate(args: argparse.Namespace) -> str | None:
    if not args.input.is_dir():
        return f"input folder {args.input} does not exist"
    if args.output.resolve() == args.input.resolve():
        return "--output must differ from --input"
    if args.output.is_dir() and any(args.output.iterdir()) and not args.overwrite:
        return f"output folder {args.output} exists and is not empty; remove it or pass --overwrite"
    if args.scale < 1:
        return f"--scale must be >= 1, got {args.scale}"
    for name in ("crop_size", "step", "thresh_size"):
        value = getattr(args, name)
        if value % args.scale:
            return f"--{name.replace('_', '-')} {value} is not divisible by --scale {args.scale}"
    if args.crop_size <= 0 or args.step <= 0 or args.thresh_size < 0:
        return "--crop-size and --step must be > 0 and --thresh-size >= 0"
    if not 0 <= args.compression <= 9:
        return f"--compression must be in [0, 9], got {args.compression}"
    if args.n_thread < 1:
        return "--n-thread must be >= 1"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    error = _validate(args)
    if error:
        print(f"extract_subimages.py: error: {error}", file=sys.stderr)
        return 2
    from restoration.data.file_lists import scan_images

    try:
        names = scan_images(args.input)
    except FileNotFoundError as exc:
        print(f"extract_subimages.py: error: {exc}", file=sys.stderr)
        return 2
    s = args.scale
    args.output.mkdir(parents=True, exist_ok=True)
    jobs = [(str(args.input / n), str(args.output), args.strip_suffix, args.crop_size // s, args.step // s,
             args.thresh_size // s, args.compression) for n in names]
    total = 0
    try:
        if args.n_thread == 1:
            results = [_worker(job) for job in jobs]
        else:
            with Pool(args.n_thread) as pool:
                results = list(pool.imap_unordered(_worker, jobs))
    except OSError as exc:
        print(f"extract_subimages.py: error: {exc}", file=sys.stderr)
        return 1
    for _, count, warning in sorted(results):
        total += count
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {total} sub-images from {len(names)} images to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
