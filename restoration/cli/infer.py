"""``restoration-infer``: restore an image or a folder in one command, without an option file.

    restoration-infer -i photos/ -o out/ --weights 001_classicalSR_DIV2K_s48w8_SwinIR-M_x2.pth
    python -m restoration.infer -i img.png -o out/ --weights experiments/my_run/models/net_g_latest.pth --tile auto

The network comes from ``-opt``, ``--arch``/``--arch-opt``, the options saved beside a training run's weights, or
the checkpoint's own keys (:mod:`restoration.deploy.network`); one none of our families recognises, from spandrel
with the ``[zoo]`` extra (:mod:`restoration.inference.spandrel_fallback`). Each image goes through the predictor the network's
architecture declares, exactly as ``test.py`` does (:mod:`restoration.inference.image_restorer`). A large image is
tiled by default: the tile is chosen from the memory the device has free (:mod:`restoration.inference.tile_budget`)
and logged with the numbers that decided it; ``--tile 0`` / ``--no-tile`` runs every image whole. ``--outscale``
resizes the output to any scale as Real-ESRGAN does (:mod:`restoration.inference.outscale`). A folder is read
recursively and its tree kept in the output folder (``photos/a/b.png -> out/a/b_<suffix>.png``); an output folder
inside the input folder is skipped; an output never replaces an input
(:mod:`restoration.inference.output_plan`). Images larger than ``$RESTORATION_MAX_IMAGE_PIXELS`` (default
Pillow's decompression-bomb threshold) are refused by name, as in training.

Exit codes: 0 all done; 1 a problem with the inputs/weights, a failed image, or an output folder that cannot be
written (one line naming the path and the reason; the run stops); 2 bad arguments (as argparse: also a value it
cannot check, such as ``--tile 3`` below the network's minimum, a missing ``-i``/``-opt`` path or an output that
would replace an input).
"""

from __future__ import annotations

import argparse
import resource
from pathlib import Path
from typing import Sequence

import torch

from restoration.deploy.network import build_detected, parse_arch_opt, resolve_network
from restoration.errors import (InferArgumentError, RestorationError, UnrecognisedCheckpointError,
                                user_error_message, value_repr)
from restoration.inference.folder import restore_jobs
from restoration.inference.image_restorer import PRECISIONS, ImageRestorer, RestoreSettings
from restoration.inference.outscale import DEFAULT_OUTSCALE_FILTER, OUTSCALE_FILTERS
from restoration.inference.output_plan import list_inputs, plan_outputs
from restoration.inference.spandrel_fallback import load_spandrel
from restoration.utils.logger import get_logger
from restoration.utils.weights import entry_note, load_weights

__all__ = ["main", "build_arg_parser", "restore_settings"]


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="restoration-infer",
        description="Restore an image or a folder of images; the architecture is detected from the weights.")
    p.add_argument("-i", "--input", required=True,
                   help="an image file or a folder of images (recursive: the sub-folders are kept in -o)")
    p.add_argument("-o", "--output", required=True, help="output folder (created)")
    p.add_argument("--weights", required=True, help="checkpoint (.pth/.pt/.ckpt/.safetensors)")
    p.add_argument("--param-key", default=None, help="entry of the checkpoint: params_ema (default if present), params")
    p.add_argument("--arch", default=None, help="architecture name (skips detection of the family)")
    p.add_argument("--arch-opt", default=None, metavar="JSON", help="constructor kwargs overriding the detected ones")
    p.add_argument("-opt", "--opt", default=None, help="option YAML with network_g (or a bare network dict)")
    p.add_argument("--tile", default="auto",
                   help="tile side in input pixels; 'auto' (default): tiles only when the image is large for the "
                        "device's free memory; 0: whole image")
    p.add_argument("--no-tile", dest="tile", action="store_const", const="0", help="whole images (as --tile 0)")
    p.add_argument("--tile-overlap", type=int, default=32, help="tile overlap in input pixels (default 32)")
    p.add_argument("--precision", choices=sorted(PRECISIONS), default="fp32", help="autocast precision")
    p.add_argument("--outscale", type=float, default=None,
                   help="output size / input size, any positive number (default: the network's scale); the "
                        "output is resized as Real-ESRGAN does")
    p.add_argument("--outscale-filter", choices=sorted(OUTSCALE_FILTERS), default=DEFAULT_OUTSCALE_FILTER,
                   help=f"OpenCV filter of --outscale (default {DEFAULT_OUTSCALE_FILTER}, Real-ESRGAN's)")
    p.add_argument("--ensemble", action="store_true", help="x8 flip/transpose self-ensemble (8x slower)")
    p.add_argument("--suffix", default="", help="appended to output names: photo_<suffix>.png")
    p.add_argument("--ext", choices=("keep", "png"), default="keep", help="output format: the input's, or png")
    p.add_argument("--overwrite", action="store_true", help="restore images whose output exists already")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def restore_settings(args: argparse.Namespace) -> RestoreSettings:
    """The :class:`RestoreSettings` of the parsed arguments (``--tile``: ``auto``, ``0`` or a side).

    Raises:
        InferArgumentError: ``--tile`` is none of these.
    """
    tile = None
    if args.tile not in (None, "auto", "0"):
        try:
            tile = int(args.tile)
        except ValueError:
            raise InferArgumentError(f"--tile must be a positive integer, 0 (whole image) or 'auto', got "
                                     f"{value_repr(args.tile)}") from None
    return RestoreSettings(tile=tile, auto_tile=args.tile == "auto", overlap=args.tile_overlap,
                           precision=args.precision, outscale=args.outscale, outscale_filter=args.outscale_filter,
                           ensemble=args.ensemble)


def _select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InferArgumentError(f"--device {name!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InferArgumentError(f"--device {name}: CUDA is not available on this machine")
    return device


def _peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2 ** 30:.2f} GiB GPU"
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return f"{rss_kib / 2 ** 20:.2f} GiB RSS"


def _run(args: argparse.Namespace) -> int:
    """Restore every input of ``args``; returns the exit code."""
    logger = get_logger()
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise InferArgumentError(f"output {out_dir} is a file, not a folder")
    src = Path(args.input)
    jobs = plan_outputs(list_inputs(src, out_dir), out_dir, args.suffix, args.ext, root=src if src.is_dir() else None)
    net: torch.nn.Module | None = None
    try:
        detection = resolve_network(args.weights, args.arch, parse_arch_opt(args.arch_opt), args.opt, args.param_key)
    except UnrecognisedCheckpointError as exc:  # none of our families claims it: spandrel's, if installed
        if args.arch is not None:  # the user named one of ours
            raise
        choice = load_spandrel(args.weights, args.param_key, exc, tile=args.tile, precision=args.precision)
        net, detection, args.tile = choice.net, choice.detection, choice.tile
    device = _select_device(args.device)
    if net is None:
        net = build_detected(detection)
        load_weights(net, args.weights, args.param_key)
    net.eval().to(device)
    restorer = ImageRestorer(net, device, restore_settings(args))
    logger.info(f"{args.weights} ({entry_note(args.weights, args.param_key)}): {detection.describe()}; {device}, "
                f"{args.precision}"
                + {"auto": ", tile auto (chosen per image from the free memory)", "0": ", whole images"}.get(
                    args.tile, f", tile {restorer.tile}, overlap {args.tile_overlap}")
                + (f", outscale {args.outscale:g} ({args.outscale_filter})" if args.outscale is not None else "")
                + (", x8 ensemble" if args.ensemble else ""))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    report = restore_jobs(jobs, restorer, out_dir, overwrite=args.overwrite, progress=not args.no_progress)
    summary = f"{report.summary()}; peak memory {_peak_memory(device)}; outputs in {out_dir}"
    (logger.error if report.failed else logger.info)(summary)
    return 1 if report.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``restoration-infer`` command; returns the exit code (argparse exits with 2 on bad arguments).

    A :class:`~restoration.errors.RestorationError` (bad arguments: 2; the inputs, the weights, an output folder
    that cannot be written: 1) is one line on stderr.
    """
    args = build_arg_parser().parse_args(argv)
    try:
        return _run(args)
    except RestorationError as exc:
        get_logger().error(f"{type(exc).__name__}: {user_error_message(exc)}")
        return 2 if isinstance(exc, InferArgumentError) else 1


if __name__ == "__main__":
    raise SystemExit(main())
