"""Pad an image batch to a size multiple (a window size) and crop the network output back.

Window-attention networks (HAT, TBSN, DSwinIR, ...) need ``H`` and ``W`` to be multiples of their window,
and U-Nets a minimum size (``size_multiple`` and ``min_size`` of :func:`restoration.archs.spec.arch_spec`).
The framework pads the *bottom and right* edges only,
so pixel ``(0, 0)`` stays at ``(0, 0)`` and cropping the output back is a plain slice.

A frequent bug elsewhere computes the pad as ``multiple - H % multiple``, which adds a whole window to an
already aligned image (and changes the result near the border). Here the pad is ``(-H) % multiple``: zero
when aligned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["pad_amount", "pad_to_multiple", "crop_to", "PAD_MODES"]

# 'symmetric' mirrors *including* the edge pixel (what SwinIR's test script does with torch.flip);
# 'reflect' mirrors excluding it (F.pad's 'reflect', what HAT uses).
PAD_MODES = ("reflect", "symmetric", "replicate", "constant", "circular")


def pad_amount(size: int, multiple: int) -> int:
    """Pixels to add so that ``size`` becomes a multiple of ``multiple`` (0 when already aligned)."""
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    return (-size) % multiple


def _symmetric_pad_dim(x: Tensor, pad: int, dim: int) -> Tensor:
    """Append ``pad`` mirrored rows/columns (edge pixel included) along ``dim``; repeats the mirror if needed."""
    out = x
    while pad > 0:
        # Mirror of what we have so far; for pads longer than the image this tiles x, flip(x), x, ...
        chunk = torch.flip(out, [dim]).narrow(dim, 0, min(pad, out.shape[dim]))
        out = torch.cat([out, chunk], dim)
        pad -= chunk.shape[dim]
    return out


def pad_to_multiple(
    x: Tensor, multiple: int, mode: str = "reflect", value: float = 0.0, min_size: int = 1
) -> tuple[Tensor, tuple[int, int]]:
    """Pad the bottom/right of ``x`` so that H and W are multiples of ``multiple`` and at least ``min_size``.

    Args:
        x: ``(B, C, H, W)`` (or ``(C, H, W)``) image batch, any value range.
        multiple: Required size multiple (e.g. the window size); ``1`` or an aligned size leaves ``x`` as is.
        mode: One of :data:`PAD_MODES`. ``'reflect'`` needs ``pad < size``; when the image is too small
            for that (e.g. a 5-pixel-high image padded to 8) the dimension falls back to ``'symmetric'``,
            which repeats the mirror and so keeps the padded content image-like. ``'constant'`` fills
            with ``value``.
        value: Fill value for ``mode='constant'``.
        min_size: Smallest side the network accepts (``ArchSpec.min_size``); smaller sides are padded up to
            the first multiple of ``multiple`` that reaches it.

    Returns:
        ``(padded, (H, W))``: the padded tensor (the input object itself when no pad is needed) and the
        original spatial size, to pass to :func:`crop_to` (multiplied by the scale for SR outputs).
    """
    if mode not in PAD_MODES:
        raise ValueError(f"unknown pad mode {mode!r}; choose one of {PAD_MODES}")
    h, w = x.shape[-2:]
    pad_h, pad_w = (pad_amount(max(size, min_size), multiple) + max(min_size - size, 0) for size in (h, w))
    if pad_h == 0 and pad_w == 0:
        return x, (h, w)
    if mode in ("constant", "replicate", "circular") or (mode == "reflect" and pad_h < h and pad_w < w):
        if mode == "circular" and (pad_h > h or pad_w > w):
            raise ValueError(f"circular padding of {(pad_h, pad_w)} is larger than the image {(h, w)}")
        squeeze = x.dim() == 3  # F.pad's non-constant modes want a batch dimension
        xb = x.unsqueeze(0) if squeeze else x
        kw = {"value": value} if mode == "constant" else {}
        out = F.pad(xb, (0, pad_w, 0, pad_h), mode=mode, **kw)
        return (out.squeeze(0) if squeeze else out), (h, w)
    # 'symmetric', or 'reflect' on an image smaller than its pad: pad each dimension separately.
    out = x
    for dim, pad in ((-2, pad_h), (-1, pad_w)):
        if pad == 0:
            continue
        size = out.shape[dim]
        if mode == "reflect" and pad < size:
            pads = (0, 0, 0, pad) if dim == -2 else (0, pad, 0, 0)
            squeeze = out.dim() == 3
            ob = out.unsqueeze(0) if squeeze else out
            ob = F.pad(ob, pads, mode="reflect")
            out = ob.squeeze(0) if squeeze else ob
        else:
            out = _symmetric_pad_dim(out, pad, out.dim() + dim)
    return out, (h, w)


def crop_to(y: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop the bottom/right of ``y`` back to ``size``.

    Args:
        y: ``(..., H', W')`` network output with ``H' >= H``, ``W' >= W``.
        size: ``(H, W)`` to keep, e.g. ``(h * scale, w * scale)`` from :func:`pad_to_multiple`'s size.

    Returns:
        ``y[..., :H, :W]`` (a view).
    """
    h, w = size
    if y.shape[-2] < h or y.shape[-1] < w:
        raise ValueError(f"cannot crop a {tuple(y.shape[-2:])} output to {(h, w)}: it is smaller")
    return y[..., :h, :w]
