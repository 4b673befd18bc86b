"""Pixel-shuffle down-sampling (PD) and random-replacing refinement for blind-spot denoisers (AP-BSN, TBSN).

Real camera noise is spatially correlated, but a blind-spot network assumes pixel-independent noise.
PD with factor ``f`` splits an image into ``f*f`` sub-images (pixel ``(i, j)`` of sub-image
``(a, b)`` is ``x[a + f*i, b + f*j]``); neighbouring pixels of a sub-image are ``f`` pixels apart in
the original, far enough for the noise to be nearly independent.

* Training (factor 5 for SIDD): the network maps a PD sub-image to itself (blind spot ⇒ no identity
  shortcut); only noisy images are used.
* Inference (factor 2): denoise the 4 sub-images, reassemble, then *random-replacing refinement*:
  ``passes`` times replace a random ``prob`` fraction of the values of the denoised image by the
  noisy input and run the network on the full-resolution result; average the passes.

Every function works in the network's value range (TBSN: [0, 255]); tensors are ``(B, C, H, W)``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from restoration.inference import crop_to, pad_to_multiple

__all__ = [
    "pixel_shuffle_down_sampling",
    "pixel_shuffle_up_sampling",
    "pd_training_input",
    "random_replacing_refinement",
    "pd_denoise",
]


def _check_divisible(x: Tensor, factor: int) -> None:
    h, w = x.shape[-2:]
    if factor < 1:
        raise ValueError(f"pixel-shuffle factor must be >= 1, got {factor}")
    if h % factor or w % factor:
        raise ValueError(f"image {h}x{w} is not divisible by the pixel-shuffle factor {factor}")


def pixel_shuffle_down_sampling(x: Tensor, factor: int) -> Tensor:
    """All ``factor**2`` PD sub-images, stacked along the batch.

    Args:
        x: ``(B, C, H, W)``, H and W divisible by ``factor``.
        factor: PD factor ``f``.

    Returns:
        ``(B * f * f, C, H / f, W / f)``; entry ``b * f*f + a * f + c`` is ``x[b, :, a::f, c::f]``
        (the order of the official AP-BSN/TBSN code).
    """
    _check_divisible(x, factor)
    b, c, h, w = x.shape
    f = factor
    out = x.reshape(b, c, h // f, f, w // f, f).permute(0, 3, 5, 1, 2, 4)  # (b, a, c', ch, i, j)
    return out.reshape(b * f * f, c, h // f, w // f)


def pixel_shuffle_up_sampling(x: Tensor, factor: int) -> Tensor:
    """Inverse of :func:`pixel_shuffle_down_sampling`: ``(B*f*f, C, h, w) -> (B, C, h*f, w*f)``."""
    f = factor
    bff, c, h, w = x.shape
    if bff % (f * f):
        raise ValueError(f"batch {bff} is not a multiple of factor**2 = {f * f}")
    b = bff // (f * f)
    out = x.reshape(b, f, f, c, h, w).permute(0, 3, 4, 1, 5, 2)  # (b, c, i, a, j, c')
    return out.reshape(b, c, h * f, w * f)


def pd_training_input(noisy: Tensor, factor: int, all_subimages: bool = False) -> Tensor:
    """The training input (= target) of a PD blind-spot network.

    Args:
        noisy: ``(B, C, H, W)`` noisy crops, H and W divisible by ``factor``.
        factor: PD factor (5 for TBSN on SIDD).
        all_subimages: ``False``: only the first sub-image ``x[..., ::f, ::f]`` per crop (the official
            recipe, ``(B, C, H/f, W/f)``); ``True``: all ``f*f`` of them (``(B*f*f, C, H/f, W/f)``).
    """
    _check_divisible(noisy, factor)
    if all_subimages:
        return pixel_shuffle_down_sampling(noisy, factor)
    return noisy[..., ::factor, ::factor].contiguous()


def random_replacing_refinement(
    net: Callable[[Tensor], Tensor],
    noisy: Tensor,
    denoised: Tensor,
    passes: int = 8,
    prob: float = 0.16,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Average of ``passes`` runs of ``net`` on ``denoised`` with a random ``prob`` of values replaced by ``noisy``.

    The mask is drawn per value (pixel *and* channel), as upstream. The full-resolution network
    input carries mostly denoised (clean-ish) values, so the blind spot's neighbours are no longer
    noisy-correlated and detail lost by PD comes back.

    Args:
        net: The network, applied at full resolution (``noisy``'s size must suit it).
        noisy: ``(B, C, H, W)`` noisy input.
        denoised: ``(B, C, H, W)`` first estimate (e.g. the PD result).
        passes: Number of random masks (8 upstream).
        prob: Fraction of values replaced (0.16 upstream).
        generator: Random source of the masks (on ``noisy``'s device); ``None`` uses the global one.
    """
    if passes < 1:
        raise ValueError(f"refinement needs passes >= 1, got {passes}")
    total = torch.zeros_like(denoised)
    for _ in range(passes):
        mask = torch.rand(noisy.shape, generator=generator, device=noisy.device) < prob
        total += net(torch.where(mask, noisy, denoised))
    return total / passes


def pd_denoise(
    net: Callable[[Tensor], Tensor],
    noisy: Tensor,
    factor: int = 2,
    size_multiple: int = 1,
    refine: bool = True,
    passes: int = 8,
    prob: float = 0.16,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Denoise with PD inference (+ optional random-replacing refinement), any input size.

    The input is reflect-padded (bottom/right) to a multiple of ``factor * size_multiple`` so that
    every PD sub-image is a valid network input, and the result is cropped back. SIDD blocks
    (256x256) need no padding.

    Args:
        net: Blind-spot network in the value range of ``noisy``.
        noisy: ``(B, C, H, W)``.
        factor: Inference PD factor (2 upstream; 1 = no PD).
        size_multiple: The network's input multiple (TBSN: 32).
        refine: Apply :func:`random_replacing_refinement` after PD.
        passes, prob, generator: See :func:`random_replacing_refinement`.

    Returns:
        ``(B, C, H, W)`` denoised.
    """
    h, w = noisy.shape[-2:]
    padded, _ = pad_to_multiple(noisy, factor * size_multiple)
    out = pixel_shuffle_up_sampling(net(pixel_shuffle_down_sampling(padded, factor)), factor)
    if refine:
        out = random_replacing_refinement(net, padded, out, passes, prob, generator)
    return crop_to(out, (h, w))
