"""Split (B, H, W, C) feature maps into square windows and back; shifted-window masks; overlapping windows.

Window order is row-major over the window grid, batch-major overall, i.e. window ``b * nW + i``
belongs to image ``b``. Every function here keeps that order, so masks of shape ``(nW, N, N)`` line
up with ``(B * nW, ...)`` window batches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "window_partition",
    "window_reverse",
    "shifted_window_mask",
    "match_shifted_window_mask",
    "overlapping_windows",
    "overlap_window_size",
    "fit_window",
    "MASKED_LOGIT",
]

#: Logit added to pairs of tokens that come from different regions of a cyclically shifted window.
#: The official SwinIR/HAT code uses -100 (not -inf); we keep it so outputs match theirs exactly.
MASKED_LOGIT: float = -100.0


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Cut ``x`` into non-overlapping ``window_size`` squares.

    Args:
        x: (B, H, W, C); H and W multiples of ``window_size``.
        window_size: Side of a window.

    Returns:
        (B * nW, window_size, window_size, C) with nW = (H / ws) * (W / ws).
    """
    b, h, w, c = x.shape
    if h % window_size or w % window_size:
        raise ValueError(f"feature size {h}x{w} is not a multiple of the window size {window_size}")
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, c)


def window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`.

    Args:
        windows: (B * nW, window_size, window_size, C) (any trailing layout that views to it).
        window_size: Side of a window.
        h: Height of the feature map.
        w: Width of the feature map.

    Returns:
        (B, H, W, C).
    """
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // window_size) * (w // window_size))
    x = windows.reshape(b, h // window_size, w // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, c)


def fit_window(input_resolution: tuple[int, int], window_size: int, shift_size: int) -> tuple[int, int]:
    """The (window_size, shift_size) a Swin block uses at its training resolution.

    Official SwinIR/HAT rule: a map no larger than one window is a single unshifted window. This
    decides the bias-table size, so it must be followed for checkpoints to load.

    Raises:
        ValueError: The resulting shift is not in ``[0, window_size)``.
    """
    if min(input_resolution) <= window_size:
        window_size, shift_size = min(input_resolution), 0
    if not 0 <= shift_size < window_size:
        raise ValueError(f"shift_size {shift_size} must be in [0, window_size {window_size})")
    return window_size, shift_size


def shifted_window_mask(
    h: int, w: int, window_size: int, shift_size: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Additive mask for shifted-window attention on an ``h x w`` map (cyclic shift by ``-shift_size``).

    After the cyclic roll, a window at the bottom/right border holds tokens from up to four regions
    that were not neighbours in the image; pairs from different regions get :data:`MASKED_LOGIT`.

    Args:
        h: Height (multiple of ``window_size``).
        w: Width (multiple of ``window_size``).
        window_size: Side of a window.
        shift_size: Cyclic shift, ``0 < shift_size < window_size``.
        device: Where to build the mask.

    Returns:
        (nW, ws*ws, ws*ws) float32 with values 0 and -100.
    """
    # regions 0..8: band of the row (0: [0, h - ws), 1: [h - ws, h - shift), 2: [h - shift, h)) times 3 plus
    # band of the column; by comparisons, not slice assignment, so torch.export sees no data-dependent slice
    def band(n: int) -> torch.Tensor:
        i = torch.arange(n, device=device)
        return (i >= n - window_size).to(torch.float32) + (i >= n - shift_size).to(torch.float32)

    region = (band(h)[:, None] * 3 + band(w)[None, :]).view(1, h, w, 1)
    labels = window_partition(region, window_size).view(-1, window_size * window_size)
    diff = labels.unsqueeze(1) - labels.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill(diff != 0, MASKED_LOGIT)


def match_shifted_window_mask(mask: torch.Tensor, window_size: int, shift_size: int) -> tuple[int, int] | None:
    """Find the feature size (h, w) for which ``mask`` is the shifted-window mask, or None.

    Official SwinIR checkpoints store the mask of their training patch size; this checks such a
    stored mask is a genuine shifted-window mask before it is replaced by a regenerated one.

    Args:
        mask: (nW, N, N) stored mask.
        window_size: Window side; N must be ``window_size ** 2``.
        shift_size: The cyclic shift the block uses.
    """
    if mask.dim() != 3 or mask.shape[1] != window_size**2 or mask.shape[2] != window_size**2:
        return None
    n_win = mask.shape[0]
    # try square grids first: training patches are square
    rows_options = sorted((r for r in range(1, n_win + 1) if n_win % r == 0), key=lambda r: abs(r * r - n_win))
    for rows in rows_options:
        h, w = rows * window_size, (n_win // rows) * window_size
        if torch.equal(shifted_window_mask(h, w, window_size, shift_size), mask.float().cpu()):
            return h, w
    return None


def overlap_window_size(window_size: int, overlap_ratio: float) -> int:
    """Side of the enlarged key/value window of overlapping-window attention (HAT's OCAB, TBSN's
    M-WSA): ``window_size + int(window_size * overlap_ratio)``."""
    return int(window_size * overlap_ratio) + window_size


def overlapping_windows(x: torch.Tensor, window_size: int, overlap_window_size: int) -> torch.Tensor:
    """Overlapping ``overlap_window_size`` squares centred on each ``window_size`` window (HAT's OCAB keys).

    The map is zero-padded by ``(ows - ws) / 2`` on every side, so border windows see zeros; the
    padded keys are *not* masked (as in the official HAT).

    Args:
        x: (B, C, H, W); H and W multiples of ``window_size``.
        window_size: Stride and size of the query windows.
        overlap_window_size: Side of a key/value window (``ows - ws`` must be even).

    Returns:
        (B * nW, ows * ows, C), windows in the same order as :func:`window_partition`.
    """
    b, c = x.shape[:2]
    pad = (overlap_window_size - window_size) // 2
    cols = F.unfold(x, kernel_size=overlap_window_size, stride=window_size, padding=pad)  # B, C*ows*ows, nW
    n_win = cols.shape[-1]
    cols = cols.view(b, c, overlap_window_size * overlap_window_size, n_win)
    return cols.permute(0, 3, 2, 1).reshape(b * n_win, overlap_window_size * overlap_window_size, c)
