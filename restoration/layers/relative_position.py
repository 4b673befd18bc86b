"""Relative-position indices into learned bias tables, for square (and overlapping) windows.

The index layouts reproduce the official SwinIR/HAT buffers value for value, so official
checkpoints (which store them) can be checked against ours.
"""

from __future__ import annotations

import torch

__all__ = [
    "relative_position_index",
    "overlap_relative_position_index",
    "relative_position_bias",
    "check_index_buffer",
]


def _grid(size: int) -> torch.Tensor:
    """(2, size*size) row/column coordinates in row-major order."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return torch.stack((rows.flatten(), cols.flatten()))


def relative_position_index(window_size: int) -> torch.Tensor:
    """Index of the (query - key) offset in a ``(2ws-1)^2``-row bias table.

    Args:
        window_size: Side of the square window.

    Returns:
        (ws*ws, ws*ws) int64; entry [i, j] = (dy + ws - 1) * (2ws - 1) + (dx + ws - 1) where
        (dy, dx) = position(i) - position(j).
    """
    coords = _grid(window_size)
    rel = coords[:, :, None] - coords[:, None, :] + (window_size - 1)
    return rel[0] * (2 * window_size - 1) + rel[1]


def overlap_relative_position_index(window_size: int, overlap_window_size: int) -> torch.Tensor:
    """Index of the (key - query) offset for ``ws`` query windows and ``ows`` key windows (HAT's OCA).

    The table has ``(ws + ows - 1)^2`` rows. The official code offsets by ``ws - ows + 1``, which
    leaves some indices negative; PyTorch indexing wraps them modulo the table size, which is a
    bijection onto the table. We reproduce those exact values so official buffers compare equal.

    Args:
        window_size: Side of a query window (ws).
        overlap_window_size: Side of a key/value window (ows >= ws).

    Returns:
        (ws*ws, ows*ows) int64.
    """
    q = _grid(window_size)
    k = _grid(overlap_window_size)
    rel = k[:, None, :] - q[:, :, None] + (window_size - overlap_window_size + 1)
    return rel[0] * (window_size + overlap_window_size - 1) + rel[1]


def relative_position_bias(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Gather a per-head bias matrix from a learned table.

    Args:
        table: (T, nH) learned biases.
        index: (N, M) int64 indices into ``table`` (negative values wrap, see above).

    Returns:
        (nH, N, M), contiguous.
    """
    n, m = index.shape
    return table[index.reshape(-1)].view(n, m, -1).permute(2, 0, 1).contiguous()


def check_index_buffer(key: str, found: torch.Tensor, expected: torch.Tensor) -> None:
    """Raise unless a checkpoint's index buffer equals the one this network generates.

    A different index would silently permute the learned biases, so it is an error, never ignored.

    Raises:
        ValueError: Naming ``key`` and the difference.
    """
    if tuple(found.shape) != tuple(expected.shape):
        raise ValueError(
            f"checkpoint buffer '{key}' has shape {tuple(found.shape)}, this network generates "
            f"{tuple(expected.shape)} (different window size?)"
        )
    if not torch.equal(found.to(expected.device, expected.dtype), expected):
        wrong = int((found.to(expected.device, expected.dtype) != expected).sum())
        raise ValueError(
            f"checkpoint buffer '{key}' differs from the regenerated relative-position index in {wrong} "
            f"entries; the checkpoint was made by a different implementation and its biases would be misplaced"
        )
