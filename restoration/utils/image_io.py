"""Reading and writing images, and converting them to and from tensors.

Conventions used across the framework:

* numpy images are ``(H, W, C)``, **RGB** channel order, ``uint8`` or ``uint16`` as stored on disk
  (gray images are ``(H, W, 1)``);
* tensors are ``(C, H, W)`` or ``(B, C, H, W)``, RGB, ``float32`` in ``[0, 1]``.

OpenCV does the decoding (it is fast and reads PNG/JPEG/TIFF/BMP/WebP), but it works in BGR order;
every BGR/RGB swap happens in this module and nowhere else.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from restoration.errors import DiskWriteError, ImageReadError
from restoration.utils.experiment_folder import unwritable

__all__ = [
    "ImageReadError",
    "imread",
    "read_image_size",
    "imfrombytes",
    "imwrite",
    "imencode",
    "write_encoded",
    "img2tensor",
    "tensor2img",
    "IMG_EXTENSIONS",
    "is_image_file",
    "MAX_PIXELS_ENV",
    "max_image_pixels",
    "check_image_pixels",
]

PathLike = Union[str, os.PathLike]

#: File extensions treated as images when folders are scanned (compared lower-case).
IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

_MODES = ("unchanged", "rgb", "gray")

#: Environment variable raising (or, at 0, removing) the largest image a header check accepts.
MAX_PIXELS_ENV = "RESTORATION_MAX_IMAGE_PIXELS"
#: Pillow's decompression-bomb error threshold (twice ``PIL.Image.MAX_IMAGE_PIXELS``), our default limit.
_DEFAULT_MAX_PIXELS = 2 * 89_478_485


def is_image_file(path: PathLike) -> bool:
    """True if ``path`` has one of :data:`IMG_EXTENSIONS` (case-insensitive)."""
    return str(path).lower().endswith(IMG_EXTENSIONS)


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"image read mode must be one of {_MODES}, got {mode!r}")


def imfrombytes(buf: bytes | bytearray | memoryview, path_for_errors: str = "<bytes>", mode: str = "unchanged") -> np.ndarray:
    """Decode an encoded image (PNG, JPEG, ...) into an RGB ``(H, W, C)`` array.

    Args:
        buf: The encoded file content.
        path_for_errors: Where the bytes came from (a file path or ``db.lmdb[key]``); used in errors.
        mode: ``'unchanged'`` keeps the channel count (gray → ``(H, W, 1)``, colour → RGB ``(H, W, 3)``;
            an alpha channel is dropped); ``'rgb'`` always gives 3 channels (gray is replicated);
            ``'gray'`` always gives ``(H, W, 1)`` (colour is converted with OpenCV's BT.601 luma
            weights ``0.299 R + 0.587 G + 0.114 B``, the same as ``cv2.imread(path, 0)``).

    Returns:
        ``uint8`` or ``uint16`` array (bit depth as stored).

    Raises:
        ImageReadError: If the bytes are empty or cannot be decoded.
    """
    _check_mode(mode)
    if buf is None or len(buf) == 0:
        raise ImageReadError(f"cannot read image {path_for_errors}: the file is empty")
    arr = np.frombuffer(buf, dtype=np.uint8)
    try:
        img = cv2.imdecode(arr, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # some corrupt files make the decoder raise instead of returning None
        raise ImageReadError(f"cannot decode image {path_for_errors}: {exc}") from exc
    if img is None:
        raise ImageReadError(f"cannot decode image {path_for_errors}: not a supported image or the file is corrupt")
    if img.dtype not in (np.uint8, np.uint16):
        # 32-bit float TIFF/EXR are outside the [0, 1]-from-integers convention of the framework.
        raise ImageReadError(f"image {path_for_errors} has unsupported dtype {img.dtype}; expected 8 or 16 bit")
    if img.ndim == 2:
        img = img[:, :, None]
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.shape[2] != 1:
        raise ImageReadError(f"image {path_for_errors} has {img.shape[2]} channels; expected 1, 3 or 4")
    return _to_mode(img, mode)


def _to_mode(img: np.ndarray, mode: str) -> np.ndarray:
    """Convert an RGB/gray ``(H, W, C)`` array to the requested channel mode."""
    if mode == "rgb" and img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if mode == "gray" and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None]
    return img


def imread(path: PathLike, mode: str = "unchanged") -> np.ndarray:
    """Read an image file into an RGB ``(H, W, C)`` array (``uint8`` or ``uint16`` kept).

    The file is read as bytes first (so non-ASCII paths work everywhere) and decoded with
    :func:`imfrombytes`; see there for ``mode``.

    Raises:
        ImageReadError: If the file is missing, unreadable or not a decodable image.
    """
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as exc:
        raise ImageReadError(f"cannot read image {os.fspath(path)}: {exc.strerror or exc}") from exc
    return imfrombytes(buf, os.fspath(path), mode=mode)


def max_image_pixels() -> int | None:
    """The most pixels (height x width) an image may have: ``$RESTORATION_MAX_IMAGE_PIXELS`` (0: no limit), by
    default Pillow's decompression-bomb threshold (178,956,970: a 13,000 x 13,000 image fits)."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not text:
        return _DEFAULT_MAX_PIXELS
    if not text.isdigit():
        raise ImageReadError(f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} must be a whole number of pixels "
                             "(0: no limit)")
    return int(text) or None


def _check_pixels(name: str, height: int, width: int) -> None:
    limit = max_image_pixels()
    if limit is not None and height * width > limit:
        raise ImageReadError(
            f"image {name} is {width}x{height} = {height * width:,} pixels, more than the limit of {limit:,} "
            f"(a decompression bomb?); if you trust it, raise the limit: {MAX_PIXELS_ENV}={height * width} "
            "(0: no limit)")


def _header_size(name: str) -> tuple[int, int] | None:
    """``(height, width)`` from the header as Pillow reads it (None: not a header Pillow knows); no pixel limit."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # ours applies, with its own message
    try:
        with Image.open(name) as im:
            return im.height, im.width
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):  # Pillow's ways of saying "not an image"
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def check_image_pixels(path: PathLike) -> None:
    """Refuse an image whose header declares more than :func:`max_image_pixels` pixels, before decoding it.

    Raises:
        ImageReadError: Too many pixels; the message names the file and how to raise the limit. (A header
            Pillow cannot read is left to the decoder to report.)
    """
    name = os.fspath(path)
    size = _header_size(name) if os.path.isfile(name) else None
    if size is not None:
        _check_pixels(name, *size)


def read_image_size(path: PathLike) -> tuple[int, int] | None:
    """``(height, width)`` of an image file from its header alone (no decoding).

    Returns:
        The size, or None when the header is one OpenCV can decode but Pillow cannot size.

    Raises:
        ImageReadError: The file is missing, neither Pillow nor OpenCV recognises its header, or the image has
            more pixels than :func:`max_image_pixels` (the message says how to raise the limit).
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise ImageReadError(f"cannot read image {name}: no such file")
    size = _header_size(name)
    if size is not None:
        _check_pixels(name, *size)
        return size
    # a file Pillow has no reader for (by its extension) may still be one OpenCV decodes
    known = Image.registered_extensions()
    if os.path.splitext(name)[1].lower() not in known and cv2.haveImageReader(name):
        return None
    raise ImageReadError(f"cannot read image {name}: not a recognised image file (header)")


def imencode(img: np.ndarray, ext: str = ".png", params: Sequence[int] | None = None) -> bytes:
    """Encode an RGB (or gray) ``(H, W, C)``/``(H, W)`` ``uint8``/``uint16`` array to file bytes.

    Args:
        img: The image; float arrays are refused (convert with :func:`tensor2img` or round yourself).
        ext: Target format extension, e.g. ``'.png'``, ``'.jpg'``.
        params: OpenCV ``imwrite`` flags, e.g. ``[cv2.IMWRITE_PNG_COMPRESSION, 3]``.
    """
    if img.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"imencode expects a uint8 or uint16 image, got {img.dtype}; convert it first")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    elif img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim != 2:
        raise ValueError(f"imencode expects (H, W), (H, W, 1) or (H, W, 3), got shape {img.shape}")
    ok, buf = cv2.imencode(ext, img, list(params or []))
    if not ok:
        raise OSError(f"OpenCV could not encode an image of shape {img.shape} as {ext}")
    return buf.tobytes()


def imwrite(path: PathLike, img: np.ndarray, params: Sequence[int] | None = None) -> None:
    """Write an RGB ``(H, W, C)`` image; the format follows the extension of ``path``.

    Parent folders are created. The file is written to a temporary name in the same folder and then
    moved into place with :func:`os.replace`, so a reader (or an interrupted run) never sees a
    half-written image.

    Raises:
        DiskWriteError: The folder or file cannot be written (permission, read-only, full disk, quota, file-size
            limit); names ``path``. No temporary file is left behind.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if not ext:
        raise ValueError(f"cannot infer the image format of {path}: no file extension")
    write_encoded(path, imencode(img, ext, params))


def write_encoded(path: PathLike, data: bytes) -> None:
    """Write already encoded image bytes to ``path`` as :func:`imwrite` does: parent folders created, a
    temporary file moved into place, so no reader sees a half-written file.

    Raises:
        DiskWriteError: The folder or file cannot be written (permission, read-only, full disk, quota, file-size
            limit); names ``path``. No temporary file is left behind.
    """
    path = Path(path)
    try:
        _write_atomically(path, data)
    except OSError as exc:
        if not unwritable(exc):
            raise
        raise DiskWriteError(f"cannot write {path}: {exc.strerror}") from exc


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        mask = os.umask(0)
        os.umask(mask)  # mkstemp makes 0600 files; give the image the mode open() would
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def img2tensor(img: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor | list[torch.Tensor]:
    """``(H, W, C)`` RGB image → ``(C, H, W)`` float32 tensor in ``[0, 1]``.

    ``uint8`` is divided by 255, ``uint16`` by 65535; float input is assumed to be in ``[0, 1]``
    already and is only transposed. ``(H, W)`` input gets a channel axis. A list gives a list.
    """
    if isinstance(img, (list, tuple)):
        return [img2tensor(i) for i in img]  # type: ignore[misc]
    if img.ndim == 2:
        img = img[:, :, None]
    if img.dtype == np.uint8:
        arr = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        arr = img.astype(np.float32) / 65535.0
    else:
        arr = img.astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def tensor2img(tensor: torch.Tensor | Sequence[torch.Tensor], out_type: type = np.uint8,
               min_max: tuple[float, float] = (0.0, 1.0)) -> np.ndarray | list[np.ndarray]:
    """``(C, H, W)`` or ``(1, C, H, W)`` float tensor → ``(H, W, C)`` RGB image.

    Like BasicSR: the tensor is clamped to ``min_max``, rescaled to ``[0, 1]``, and for ``uint8``
    output multiplied by 255 and **rounded** (not truncated). For ``out_type=np.float32`` the
    ``[0, 1]`` values are returned unrounded. Gray tensors give ``(H, W, 1)``.
    A list of tensors, or a batch with ``B > 1``, gives a list of images.
    Non-finite values (a diverged network) would become 0 in the cast; they give a ``RuntimeWarning``
    (callers that score the image should check ``torch.isfinite`` first, as ``evaluate`` does).
    """
    if isinstance(tensor, (list, tuple)):
        return [tensor2img(t, out_type, min_max) for t in tensor]  # type: ignore[misc]
    if not torch.is_tensor(tensor):
        raise TypeError(f"tensor2img expects a tensor or a list of tensors, got {type(tensor).__name__}")
    t = tensor.detach().float().cpu()
    if t.dim() == 4:
        if t.shape[0] != 1:
            return [tensor2img(x, out_type, min_max) for x in t]  # type: ignore[misc]
        t = t[0]
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3:
        raise ValueError(f"tensor2img expects (C, H, W) or (B, C, H, W), got shape {tuple(tensor.shape)}")
    if not bool(torch.isfinite(t).all()):
        warnings.warn(f"tensor2img: {int((~torch.isfinite(t)).sum())} non-finite value(s) in a tensor of shape "
                      f"{tuple(t.shape)}; they become 0 in the image", RuntimeWarning, stacklevel=2)
    lo, hi = min_max
    t = (t.clamp(lo, hi) - lo) / (hi - lo)
    arr = t.numpy().transpose(1, 2, 0)
    if out_type == np.uint8:
        return np.round(arr * 255.0).astype(np.uint8)
    if out_type == np.uint16:
        return np.round(arr * 65535.0).astype(np.uint16)
    return arr.astype(out_type)
