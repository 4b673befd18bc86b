"""Restore one image file with a network: its predictor, the user's tile/precision/outscale settings, and the
automatic tile that follows the device's free memory.

Each image goes through the predictor the network's architecture declares (:func:`restoration.inference.predictor_for`),
as ``test.py`` does, so the outputs are the same for the same weights and tiles. A tiled image (without the
ensemble) is written into the integer output a band of rows at a time, so the float output is never whole.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restoration.archs.spec import arch_spec
from restoration.errors import InferArgumentError, InferError
from restoration.inference.image_files import read_alpha, write_image
from restoration.inference.outscale import DEFAULT_OUTSCALE_FILTER, resize_to_outscale
from restoration.inference.output_plan import OutputJob
from restoration.inference.predictor import InferenceSettings, predictor_for
from restoration.inference.tile_budget import TileChoice, bytes_per_pixel, choose_tile, round_tile
from restoration.utils.image_io import check_image_pixels, img2tensor, imread, tensor2img
from restoration.utils.logger import get_logger

__all__ = ["PRECISIONS", "RestoreSettings", "ImageRestorer", "to_channels", "is_out_of_memory"]

#: ``--precision`` names and their autocast dtype (None: float32, no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_LUMA = (0.299, 0.587, 0.114)  # BT.601, as image_io's gray conversion (cv2.COLOR_RGB2GRAY)


@dataclass(frozen=True)
class RestoreSettings:
    """How each image is restored.

    Attributes:
        tile: Tile side in input pixels; None: no fixed tile (whole images, or automatic with ``auto_tile``).
        auto_tile: Choose the tile per image from the device's free memory (whole when it fits).
        overlap: Tile overlap in input pixels (an automatic tile uses at most half its side).
        precision: A :data:`PRECISIONS` name.
        outscale: Output size / input size (any positive number); None: the network's scale.
        outscale_filter: OpenCV filter of the outscale resize (:mod:`restoration.inference.outscale`).
        ensemble: The x8 flip/transpose self-ensemble.
    """

    tile: int | None = None
    auto_tile: bool = True
    overlap: int = 32
    precision: str = "fp32"
    outscale: float | None = None
    outscale_filter: str = DEFAULT_OUTSCALE_FILTER
    ensemble: bool = False


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is the device (or numpy) running out of memory."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):  # MemoryError: numpy's allocations
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def to_channels(x: Tensor, channels: int | None) -> Tensor:
    """``(B, C, H, W)`` to ``channels``: gray replicated to RGB, RGB to BT.601 luma; unchanged when ``channels``
    is None or already ``C``.

    Raises:
        InferError: Any other pair of channel counts.
    """
    if channels is None or x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] == 3 and channels == 1:
        w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    raise InferError(f"the network takes {channels} channels; the image has {x.shape[1]}")


class ImageRestorer:
    """One network (eval mode, on ``device``), its predictor (its contract and test-time protocol) and the
    :class:`RestoreSettings`; calling it with an :class:`OutputJob` restores one image file.

    Raises (constructor):
        InferArgumentError: A setting the network cannot take (a tile below its minimum side, a tile for a
            network that is not tiled, an overlap not below the tile, a non-positive outscale).
    """

    def __init__(self, net: nn.Module, device: torch.device, settings: RestoreSettings) -> None:
        self.net, self.device, self.spec = net, device, arch_spec(net)
        self.tile: int | None = None
        self.auto = settings.auto_tile
        self.overlap = settings.overlap
        self.outscale: float | None = settings.outscale
        self.outscale_filter: str = settings.outscale_filter
        self._logged_tile: object = ()  # the last auto tile logged (a folder logs each change, not each image)
        self.ensemble = settings.ensemble
        self.dtype = PRECISIONS[settings.precision]
        # the architecture's protocol at its defaults; the tile is set per image (auto tiles)
        self.predictor = predictor_for(net, InferenceSettings(overlap=self.overlap, self_ensemble=self.ensemble),
                                       spec=self.spec)
        self.bpp = bytes_per_pixel(net, self.spec, 4 if self.dtype is None else 2)
        if self.outscale is not None and not (self.outscale > 0 and np.isfinite(self.outscale)):
            raise InferArgumentError(f"--outscale must be a positive number, got {self.outscale:g}")
        if settings.tile is not None:
            self.tile = self._checked_tile(settings.tile)
        if self.tile is not None and not self.predictor.supports_tiling:
            raise InferArgumentError(f"{self.predictor.tiling_problem()}: drop --tile")

    def _checked_tile(self, tile: int) -> int:
        rounded = tile // self.spec.size_multiple * self.spec.size_multiple
        if tile < 1 or rounded < self.spec.min_size:
            raise InferArgumentError(f"--tile {tile} is smaller than the network's minimum input side {self.spec.min_size}"
                             + (f" (tiles are multiples of {self.spec.size_multiple})" if self.spec.size_multiple > 1 else ""))
        if self.overlap < 0 or self.overlap >= tile:
            raise InferArgumentError(f"--tile-overlap {self.overlap} must be >= 0 and smaller than --tile {tile}")
        return tile

    def _autocast(self) -> contextlib.AbstractContextManager:
        return (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None
                else contextlib.nullcontext())

    def _forward(self, lq: Tensor, tile: int | None, overlap: int | None = None) -> Tensor:
        predictor = self.predictor.with_settings(tile=tile, overlap=self.overlap if overlap is None else overlap)
        with torch.no_grad(), self._autocast():
            out = predictor(lq)
        return out.float()

    def _image(self, lq: Tensor, tile: int | None, to_image: Callable[[Tensor], np.ndarray],
               overlap: int | None = None) -> np.ndarray:
        """The restored ``(H*s, W*s, C)`` image. Tiled (without the ensemble), each band of finished rows goes
        straight into the preallocated integer image: the float output is never whole, so memory is bounded
        by the tile (the values are those of the whole float output quantised once, bit for bit)."""
        if tile is None or self.ensemble:
            return to_image(self._forward(lq, tile, overlap))
        result: np.ndarray | None = None
        predictor = self.predictor.with_settings(tile=tile, overlap=self.overlap if overlap is None else overlap)
        with torch.no_grad(), self._autocast():
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
                if not is_out_of_memory(exc):
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
                if not is_out_of_memory(exc):
                    raise
                smaller = round_tile((tile or max(h, w)) // 2, self.spec)
                if tile is not None and smaller >= tile:
                    raise InferError(f"out of memory even with the smallest tile {tile}") from exc
                get_logger().warning(f"out of memory with tile {tile or 'none'}: retrying with tile {smaller}")
                tile = self.tile = smaller
            if self.device.type == "cuda":  # here, not in the except: its traceback still holds the tensors
                torch.cuda.empty_cache()

    def __call__(self, job: OutputJob) -> None:
        """Read ``job.src``, restore it, write ``job.dst`` (8 or 16 bits as the input, alpha kept, a gray input
        staying gray).

        Raises:
            RestorationError: The image cannot be read or is too large (``ImageReadError``), the device ran out
                of memory (``InferError``), the output cannot be written (``DiskWriteError``).
        """
        check_image_pixels(job.src)  # a decompression bomb is refused by its header, before decoding
        img = imread(job.src)
        alpha = read_alpha(job.src)
        out_type = np.uint16 if img.dtype == np.uint16 else np.uint8
        lq = img2tensor(img).unsqueeze(0).to(self.device)

        def to_image(out: Tensor) -> np.ndarray:
            """``(1, C', rows, W)`` float output -> ``(rows, W, C)`` integer image, a gray input staying gray."""
            if img.shape[2] == 1 and out.shape[1] == 3:
                out = to_channels(out, 1)
            return tensor2img(out[0], out_type=out_type)

        result = self._restore(to_channels(lq, self.spec.in_channels), to_image, job.src.name)
        if self.outscale is not None:
            result = resize_to_outscale(result, img.shape[:2], self.outscale, self.spec.scale, self.outscale_filter)
        if alpha is not None and result.shape[:2] != alpha.shape:
            # resized: bicubic alpha; at the input's size it passes through unchanged
            a = img2tensor(alpha[:, :, None])[None]
            a = F.interpolate(a, size=tuple(result.shape[:2]), mode="bicubic", align_corners=False)
            alpha = tensor2img(a[0], out_type=alpha.dtype.type)[:, :, 0]
        write_image(job.dst, result, alpha)
