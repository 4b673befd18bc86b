"""Restore an image or a folder in one command, without an option file.

    python -m restoration.infer -i photos/ -o out/ --weights 001_classicalSR_DIV2K_s48w8_SwinIR-M_x2.pth
    restoration-infer -i img.png -o out/ --weights experiments/my_run/models/net_g_latest.pth --tile auto

The network comes from, in this order: ``-opt file.yml`` (its ``network_g``, or a bare ``{type: ..., ...}``);
``--arch NAME`` (the shapes read from the checkpoint, for a family :mod:`restoration.archs.detect` knows; all
kwargs from ``--arch-opt`` otherwise); the options saved beside a training run's weights
(``experiments/<name>/options/*.yml`` next to ``models/``); the checkpoint's own keys, matched to the released
configurations. ``--arch-opt '{json}'`` overrides single kwargs in every case.

Each image goes through the predictor the network's architecture declares
(:func:`restoration.inference.predictor_for`: the plain :func:`restoration.inference.restore`, or a family's
own protocol such as TBSN's PD + refinement), exactly as ``test.py`` does, so the outputs are the same for the
same weights and tiles. A large image is tiled by default: the tile is chosen from the memory the
device has free (:mod:`restoration.inference.tile_budget`) and logged with the numbers that decided it;
``--tile 0`` / ``--no-tile`` runs every image whole. ``--outscale`` resizes the output to any scale as
Real-ESRGAN does (:mod:`restoration.inference.outscale`). A folder is read recursively and its tree kept in the
output folder (``photos/a/b.png -> out/a/b_<suffix>.png``); an output folder inside the input folder is skipped. A failing image is reported by name and the rest continue; the exit code
is then 1. Exit codes: 0 all done, 1 a problem with the inputs/weights or a failed image, 2 bad arguments (as
argparse: also a value it cannot check, such as ``--tile 3`` below the network's minimum, a missing ``-i``/``-opt``
path or an output that would replace an input).

An output never replaces an input: every planned output is checked against every input (``--overwrite``
replaces earlier outputs only). Images larger than ``$RESTORATION_MAX_IMAGE_PIXELS`` (default Pillow's
decompression-bomb threshold) are refused by name, as in training.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn
from tqdm import tqdm

from restoration.archs import register_archs
from restoration.archs.build import build_network
from restoration.archs.detect import Detection, detect_architecture, detectable_archs
from restoration.archs.spec import arch_spec
from restoration.errors import RestorationError, user_error_message, value_repr
from restoration.errors import InferArgumentError, InferError
from restoration.inference import InferenceSettings, predictor_for
from restoration.inference.outscale import DEFAULT_OUTSCALE_FILTER, OUTSCALE_FILTERS, resize_to_outscale
from restoration.inference.tile_budget import TileChoice, bytes_per_pixel, choose_tile, round_tile
from restoration.options.yaml_io import load_yaml, yaml_problem
from restoration.registry import ARCH_REGISTRY
from restoration.utils.image_io import (check_image_pixels, img2tensor, imread, imwrite, is_image_file,
                                        tensor2img)
from restoration.utils.logger import get_logger
from restoration.utils.weights import entry_note, load_weights, read_state_dict

__all__ = ["main", "build_arg_parser", "InferError", "InferArgumentError", "parse_arch_opt", "resolve_network"]

_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_ALPHA_FORMATS = (".png", ".tif", ".tiff", ".webp")
_LUMA = (0.299, 0.587, 0.114)  # BT.601, as image_io's gray conversion (cv2.COLOR_RGB2GRAY)


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
    p.add_argument("--precision", choices=sorted(_PRECISIONS), default="fp32", help="autocast precision")
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


# --------------------------------------------------------------------------------------------- the network
def parse_arch_opt(text: str | None) -> dict[str, Any]:
    """``--arch-opt``'s JSON object (``{}`` when not given); shared with ``restoration.export``."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InferArgumentError(f"--arch-opt is not valid JSON ({exc.msg} at character {exc.pos}): "
                                 f"{value_repr(text)}") from exc
    if not isinstance(value, dict):
        raise InferArgumentError(f"--arch-opt must be a JSON object such as '{{\"img_range\": 255}}', "
                                 f"got {value_repr(text)}")
    return value


def _network_from_yaml(path: str, key: str = "network_g") -> dict[str, Any]:
    if not os.path.isfile(path):
        raise InferArgumentError(f"-opt {path}: no such file")
    try:
        data = load_yaml(path)
    except yaml.YAMLError as exc:
        if isinstance(exc, RestorationError):  # an alias bomb: refused whichever way the file came
            raise
        raise InferError(f"{path} is not valid YAML: {yaml_problem(exc)}") from None
    if isinstance(data, dict) and isinstance(data.get(key), dict):
        if "type" not in data[key]:
            raise InferError(f"{path}: '{key}' has no 'type' (the architecture name)")
        return dict(data[key])
    if isinstance(data, dict) and "type" in data:
        return dict(data)
    raise InferError(f"{path} has no '{key}' section and is not a network dict with 'type'")


def _options_beside(weights: Path) -> tuple[dict[str, Any], str] | None:
    """``network_<n>`` of the newest ``experiments/<name>/options/*.yml`` beside ``models/net_<n>_*.pth``."""
    if weights.parent.name != "models":
        return None
    folder = weights.parent.parent / "options"
    if not folder.is_dir():
        return None
    net = weights.name.split("_")[1] if weights.name.startswith("net_") and weights.name.count("_") >= 2 else "g"
    for yml in sorted(folder.glob("*.yml"), key=lambda f: f.stat().st_mtime, reverse=True):
        try:
            return _network_from_yaml(str(yml), f"network_{net}"), str(yml)
        except InferError:
            continue
    return None


def _checked_type(detection: Detection, user_named: bool) -> Detection:
    """``detection`` once its ``type`` resolves in the arch registry. A ``module:attr`` type imports code, so
    it is accepted only from the command line (``-opt``, ``--arch``, ``--arch-opt``), never from a file found
    beside the weights, and only when it names an ``nn.Module`` subclass (:meth:`Registry.get`)."""
    if not isinstance(detection.arch, str):
        raise InferError(f"{detection.source}: the network 'type' must be an architecture name, "
                         f"got {type(detection.arch).__name__}")
    register_archs()
    ARCH_REGISTRY.get(detection.arch, user_named=user_named, source=detection.source)
    return detection


def resolve_network(weights: str, arch: str | None = None, arch_opt: dict[str, Any] | None = None,
                    opt_file: str | None = None, param_key: str | None = None) -> Detection:
    """Which network to build for ``weights`` (see the module docstring for the order).

    Raises:
        RegistryError: The ``type`` is unknown, or an import path where one is not allowed (see
            :func:`_checked_type`).
    """
    arch_opt = dict(arch_opt or {})
    if opt_file:
        net_opt = {**_network_from_yaml(opt_file), **arch_opt}
        return _checked_type(Detection(net_opt.pop("type"), net_opt, source=opt_file), user_named=True)
    if arch is not None and arch not in detectable_archs():  # not detectable (e.g. SimpleSRNet): all from --arch-opt
        return _checked_type(Detection(arch, arch_opt, source="--arch/--arch-opt"), user_named=True)
    if arch is None:
        beside = _options_beside(Path(weights))
        if beside is not None:
            net_opt, source = beside
            net_opt = {**net_opt, **arch_opt}
            # found on disk, maybe downloaded with the weights: registered names only (unless --arch-opt names it)
            return _checked_type(Detection(net_opt.pop("type"), net_opt, source=source), user_named="type" in arch_opt)
    return detect_architecture(read_state_dict(weights, param_key), arch=arch, overrides=arch_opt, where=weights)


# --------------------------------------------------------------------------------------------- tiles
def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):  # MemoryError: numpy's allocations
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


# --------------------------------------------------------------------------------------------- images
@dataclass
class _Job:
    src: Path
    dst: Path


@dataclass
class _Report:
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)


def _list_inputs(path: Path, out_dir: Path | None = None) -> list[Path]:
    """The image files of ``path``: itself, or every image under the folder (recursive, sorted), except hidden
    files and folders and anything under ``out_dir`` (an output folder inside the input folder)."""
    if path.is_file():
        if not is_image_file(path):
            raise InferArgumentError(f"{path} is not an image file (extensions: png, jpg, jpeg, bmp, tif, tiff, "
                                     "webp, ppm, pgm)")
        return [path]
    if not path.is_dir():
        raise InferArgumentError(f"input {path} does not exist")
    skip = out_dir.resolve() if out_dir is not None else None
    files = []
    for folder, dirs, names in os.walk(path):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != skip)
        files += [here / n for n in names if not n.startswith(".") and is_image_file(here / n)]
    files.sort()
    if not files:
        raise InferError(f"input folder {path} holds no image (png, jpg, jpeg, bmp, tif, tiff, webp, ppm, pgm)")
    return files


def _file_id(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of an existing file (a hard link or another spelling of an input), else None."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _plan(inputs: Sequence[Path], out_dir: Path, suffix: str, ext: str, root: Path | None = None) -> list[_Job]:
    """One job per input, in ``out_dir`` at the input's place under the input folder ``root``; refuses (whatever ``--overwrite`` says) an output that is any of the inputs
    (``a.png -> a_x2.png`` beside an input ``a_x2.png``) or two inputs sharing an output."""
    by_path = {src.resolve(): src for src in inputs}
    by_id = {fid: src for src in inputs if (fid := _file_id(src)) is not None}
    jobs, seen = [], {}
    for src in inputs:
        rel = src.parent.relative_to(root) if root is not None else Path()
        dst = out_dir / rel / (src.stem + (f"_{suffix}" if suffix else "") + (src.suffix if ext == "keep" else ".png"))
        fid = _file_id(dst)
        hit = by_path.get(dst.resolve()) or (by_id.get(fid) if fid is not None else None)
        if hit is not None:
            which = "it" if hit == src else f"input {hit}"
            raise InferArgumentError(f"the output for {src} would overwrite {which} (--overwrite replaces earlier "
                                     "outputs, never inputs): use another -o or a --suffix")
        if dst in seen:
            raise InferArgumentError(f"{seen[dst]} and {src} would both be written to {dst}: use --ext keep or "
                                     "rename one")
        seen[dst] = src
        jobs.append(_Job(src, dst))
    return jobs


def _read_alpha(path: Path) -> np.ndarray | None:
    """The alpha channel ``(H, W)`` of a PNG/TIFF/WebP with one (``imread`` drops it), else None."""
    if path.suffix.lower() not in _ALPHA_FORMATS:
        return None
    raw = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 3 or raw.shape[2] != 4:
        return None
    return raw[:, :, 3]


def _to_channels(x: Tensor, channels: int | None) -> Tensor:
    """``(B, C, H, W)`` to ``channels``: gray replicated to RGB, RGB to BT.601 luma."""
    if channels is None or x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] == 3 and channels == 1:
        w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    raise InferError(f"the network takes {channels} channels; the image has {x.shape[1]}")


def _write_with_alpha(path: Path, img: np.ndarray, alpha: np.ndarray) -> None:
    """Write RGB/gray ``img`` plus ``alpha`` (``image_io.imwrite`` writes no alpha): atomic, like ``imwrite``."""
    color = img if img.shape[2] == 3 else np.repeat(img, 3, axis=2)
    bgra = np.dstack([color[:, :, ::-1], alpha])
    ok, buf = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(bgra))
    if not ok:
        raise InferError(f"OpenCV cannot write {path} with an alpha channel")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.tobytes())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# --------------------------------------------------------------------------------------------- the run
class _Restorer:
    """One network, its predictor (its contract and test-time protocol) and the user's inference settings;
    ``__call__`` restores one image file."""

    def __init__(self, net: nn.Module, device: torch.device, args: argparse.Namespace) -> None:
        self.net, self.device, self.spec = net, device, arch_spec(net)
        self.tile: int | None = None
        self.auto = args.tile == "auto"
        self.overlap = args.tile_overlap
        self.outscale: float | None = args.outscale
        self.outscale_filter: str = args.outscale_filter
        self._logged_tile: object = ()  # the last auto tile logged (a folder logs each change, not each image)
        self.ensemble = args.ensemble
        self.dtype = _PRECISIONS[args.precision]
        # the architecture's protocol at its defaults; the tile is set per image (--tile auto)
        self.predictor = predictor_for(net, InferenceSettings(overlap=self.overlap, self_ensemble=self.ensemble),
                                       spec=self.spec)
        self.bpp = bytes_per_pixel(net, self.spec, 4 if self.dtype is None else 2)
        if self.outscale is not None and not (self.outscale > 0 and np.isfinite(self.outscale)):
            raise InferArgumentError(f"--outscale must be a positive number, got {self.outscale:g}")
        if args.tile not in (None, "auto", "0"):
            self.tile = self._explicit_tile(args.tile)
        if self.tile is not None and not self.predictor.supports_tiling:
            raise InferArgumentError(f"{self.predictor.tiling_problem()}: drop --tile")

    def _explicit_tile(self, text: str) -> int:
        try:
            tile = int(text)
        except ValueError:
            raise InferArgumentError(f"--tile must be a positive integer, 0 (whole image) or 'auto', got "
                                     f"{value_repr(text)}") from None
        rounded = tile // self.spec.size_multiple * self.spec.size_multiple
        if tile < 1 or rounded < self.spec.min_size:
            raise InferArgumentError(f"--tile {tile} is smaller than the network's minimum input side {self.spec.min_size}"
                             + (f" (tiles are multiples of {self.spec.size_multiple})" if self.spec.size_multiple > 1 else ""))
        if self.overlap < 0 or self.overlap >= tile:
            raise InferArgumentError(f"--tile-overlap {self.overlap} must be >= 0 and smaller than --tile {tile}")
        return tile

    def _forward(self, lq: Tensor, tile: int | None, overlap: int | None = None) -> Tensor:
        autocast = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None
                    else contextlib.nullcontext())
        predictor = self.predictor.with_settings(tile=tile, overlap=self.overlap if overlap is None else overlap)
        with torch.no_grad(), autocast:
            out = predictor(lq)
        return out.float()

    def _image(self, lq: Tensor, tile: int | None, to_image: Callable[[Tensor], np.ndarray],
               overlap: int | None = None) -> np.ndarray:
        """The restored ``(H*s, W*s, C)`` image. Tiled (without ``--ensemble``), each band of finished rows goes
        straight into the preallocated integer image: the float output is never whole, so memory is bounded
        by the tile (the values are those of the whole float output quantised once, bit for bit)."""
        if tile is None or self.ensemble:
            return to_image(self._forward(lq, tile, overlap))
        autocast = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None
                    else contextlib.nullcontext())
        result: np.ndarray | None = None
        predictor = self.predictor.with_settings(tile=tile, overlap=self.overlap if overlap is None else overlap)
        with torch.no_grad(), autocast:
            for y, band in predictor.rows(lq):
                rows = to_image(band.float())
                if result is None:
                    h, w = lq.shape[-2] * self.spec.scale, lq.shape[-1] * self.spec.scale
                    result = np.empty((h, w, rows.shape[2]), dtype=rows.dtype)
                result[y : y + rows.shape[0]] = rows
        assert result is not None
        return result

    def _log_choice(self, name: str, choice: TileChoice, tile: int | None) -> None:
        """Log the auto tile of the first image and of each image where it changes, with why."""
        if tile == self._logged_tile:
            return
        self._logged_tile = tile
        why = choice.describe()
        if tile != choice.tile:  # an earlier image ran out of memory with a larger tile
            why = f"tile {tile} (the largest that did not run out of memory; the estimate: {why})"
        get_logger().info(f"{name}: {why}")

    def _restore(self, lq: Tensor, to_image: Callable[[Tensor], np.ndarray], name: str = "image") -> np.ndarray:
        h, w = lq.shape[-2:]
        if not self.auto or not self.predictor.supports_tiling:
            try:
                return self._image(lq, self.tile, to_image)
            except (RuntimeError, MemoryError) as exc:
                if not _is_out_of_memory(exc):
                    raise
                if self.tile is not None:
                    raise InferError(f"out of memory with --tile {self.tile}: use a smaller --tile") from exc
                if not self.predictor.supports_tiling:
                    raise InferError(f"out of memory restoring the whole {w} x {h} image (this network is not "
                                     "tiled): use a device with more memory or a smaller image") from exc
                raise InferError(f"out of memory restoring the whole {w} x {h} image: use --tile 512 (or --tile "
                                 "auto, which picks the tile from the free memory)") from exc
        choice = choose_tile(self.spec, h, w, self.device, self.bpp)
        tile = choice.tile
        if self.tile is not None:  # an earlier image ran out of memory at a larger size
            tile = min(tile or self.tile, self.tile)
        self._log_choice(name, choice, tile)
        while True:
            try:
                # an automatic tile keeps its overlap at most half its side (a 16-pixel tile with the
                # default overlap of 32 made 825 tiles of a 48 x 40 image)
                return self._image(lq, tile, to_image, None if tile is None else min(self.overlap, tile // 2))
            except (RuntimeError, MemoryError) as exc:
                if not _is_out_of_memory(exc):
                    raise
                smaller = round_tile((tile or max(h, w)) // 2, self.spec)
                if tile is not None and smaller >= tile:
                    raise InferError(f"out of memory even with the smallest tile {tile}") from exc
                get_logger().warning(f"out of memory with tile {tile or 'none'}: retrying with tile {smaller}")
                tile = self.tile = smaller
            if self.device.type == "cuda":  # here, not in the except: its traceback still holds the tensors
                torch.cuda.empty_cache()

    def __call__(self, job: _Job) -> None:
        check_image_pixels(job.src)  # a decompression bomb is refused by its header, before decoding
        img = imread(job.src)
        alpha = _read_alpha(job.src)
        out_type = np.uint16 if img.dtype == np.uint16 else np.uint8
        lq = img2tensor(img).unsqueeze(0).to(self.device)

        def to_image(out: Tensor) -> np.ndarray:
            """``(1, C', rows, W)`` float output -> ``(rows, W, C)`` integer image, a gray input staying gray."""
            if img.shape[2] == 1 and out.shape[1] == 3:
                out = _to_channels(out, 1)
            return tensor2img(out[0], out_type=out_type)

        result = self._restore(_to_channels(lq, self.spec.in_channels), to_image, job.src.name)
        if self.outscale is not None:
            result = resize_to_outscale(result, img.shape[:2], self.outscale, self.spec.scale, self.outscale_filter)
        if alpha is None:
            imwrite(job.dst, result)
            return
        if result.shape[:2] != alpha.shape:  # resized: bicubic alpha; at the input's size it passes through unchanged
            a = img2tensor(alpha[:, :, None])[None]
            a = F.interpolate(a, size=tuple(result.shape[:2]), mode="bicubic", align_corners=False)
            alpha = tensor2img(a[0], out_type=alpha.dtype.type)[:, :, 0]
        _write_with_alpha(job.dst, result, alpha)


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


def run(args: argparse.Namespace) -> int:
    """Restore every input of ``args``; returns the exit code."""
    logger = get_logger()
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise InferArgumentError(f"output {out_dir} is a file, not a folder")
    src = Path(args.input)
    jobs = _plan(_list_inputs(src, out_dir), out_dir, args.suffix, args.ext, root=src if src.is_dir() else None)
    detection = resolve_network(args.weights, args.arch, parse_arch_opt(args.arch_opt), args.opt, args.param_key)
    device = _select_device(args.device)
    try:
        net = build_network(detection.network_opt())
    except (TypeError, ValueError) as exc:  # the constructor's option check
        if isinstance(exc, RestorationError):
            raise
        raise InferError(f"cannot build {detection.arch} from {detection.source}: {exc}") from exc
    load_weights(net, args.weights, args.param_key)
    net.eval().to(device)
    restorer = _Restorer(net, device, args)
    logger.info(f"{args.weights} ({entry_note(args.weights, args.param_key)}): {detection.describe()}; {device}, "
                f"{args.precision}"
                + {"auto": ", tile auto (chosen per image from the free memory)", "0": ", whole images"}.get(
                    args.tile, f", tile {restorer.tile}, overlap {args.tile_overlap}")
                + (f", outscale {args.outscale:g} ({args.outscale_filter})" if args.outscale is not None else "")
                + (", x8 ensemble" if args.ensemble else ""))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    report = _Report()
    start = time.perf_counter()
    bar = tqdm(jobs, unit="img", disable=True if args.no_progress else None, file=sys.stderr)
    for job in bar:
        bar.set_postfix_str(job.src.name, refresh=False)
        if job.dst.exists() and not args.overwrite:
            report.skipped += 1
            continue
        try:
            restorer(job)
            report.done += 1
        except RestorationError as exc:
            report.failed.append(job.src.name)
            logger.error(f"{job.src}: {type(exc).__name__}: {user_error_message(exc)}")
        except Exception as exc:  # a bug or an unexpected failure: keep its traceback, go on with the rest
            report.failed.append(job.src.name)
            logger.error(f"{job.src}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    bar.close()
    seconds = time.perf_counter() - start
    summary = (f"{report.done} image(s) restored in {seconds:.1f} s"
               + (f" ({seconds / report.done:.2f} s/image)" if report.done else "")
               + (f", {report.skipped} skipped (output exists; --overwrite)" if report.skipped else "")
               + (f", {len(report.failed)} failed: {', '.join(report.failed)}" if report.failed else "")
               + f"; peak memory {_peak_memory(device)}; outputs in {out_dir}")
    (logger.error if report.failed else logger.info)(summary)
    return 1 if report.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``restoration-infer`` command; returns the exit code (argparse exits with 2 on bad arguments)."""
    args = build_arg_parser().parse_args(argv)
    try:
        return run(args)
    except RestorationError as exc:
        get_logger().error(f"{type(exc).__name__}: {user_error_message(exc)}")
        return 2 if isinstance(exc, InferArgumentError) else 1


if __name__ == "__main__":
    raise SystemExit(main())
