"""Reading and writing the user's image files around a restoration: the alpha channel kept, writes atomic, and a
folder or file the machine refuses reported as one :class:`~restoration.errors.DiskWriteError` line.

:func:`restoration.utils.image_io.imread` returns RGB or gray without alpha; here the alpha of a PNG/TIFF/WebP is
read beside it and written back beside the restored colours (8 or 16 bits, as the input).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from restoration.errors import DiskWriteError, InferError
from restoration.utils.image_io import imencode, write_encoded

__all__ = ["ALPHA_FORMATS", "read_alpha", "make_folder", "write_image"]

#: Extensions whose files may carry an alpha channel that is kept.
ALPHA_FORMATS = (".png", ".tif", ".tiff", ".webp")


def read_alpha(path: Path) -> np.ndarray | None:
    """The alpha channel ``(H, W)`` (uint8 or uint16) of a PNG/TIFF/WebP with one, else None."""
    if path.suffix.lower() not in ALPHA_FORMATS:
        return None
    raw = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 3 or raw.shape[2] != 4:
        return None
    return raw[:, :, 3]


def make_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) unless it exists.

    Raises:
        DiskWriteError: It cannot be created (a file in its place or in a parent's, no permission, a read-only
            or full file system); names the folder and the reason.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # FileExistsError included: a file where the folder should be
        raise DiskWriteError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from exc


def _encode_with_alpha(path: Path, img: np.ndarray, alpha: np.ndarray) -> bytes:
    color = img if img.shape[2] == 3 else np.repeat(img, 3, axis=2)
    bgra = np.dstack([color[:, :, ::-1], alpha])
    ok, buf = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(bgra))
    if not ok:
        raise InferError(f"OpenCV cannot write {path} with an alpha channel")
    return buf.tobytes()


def write_image(path: Path, img: np.ndarray, alpha: np.ndarray | None = None) -> None:
    """Write the RGB/gray ``(H, W, C)`` uint8/uint16 ``img``, with ``alpha`` ``(H, W)`` of the same dtype when
    given; the format follows ``path``'s extension. The folder is created; the file appears whole or not at all.

    Raises:
        DiskWriteError: The folder or the file cannot be written; names the path and the reason. Nothing is
            left behind.
        InferError: OpenCV cannot encode the format with an alpha channel.
    """
    make_folder(path.parent)
    data = imencode(img, path.suffix.lower()) if alpha is None else _encode_with_alpha(path, img, alpha)
    write_encoded(path, data)
