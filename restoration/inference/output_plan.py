"""Which files a folder restoration reads and where each result goes, checked before anything is restored.

An output never replaces an input: every planned output is compared with every input, by path and by file
identity (a hard link or another spelling of an input), whatever ``--overwrite`` says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from restoration.errors import InferArgumentError, InferError
from restoration.utils.image_io import is_image_file

__all__ = ["OutputJob", "list_inputs", "plan_outputs"]


@dataclass(frozen=True)
class OutputJob:
    """One image to restore: read ``src``, write ``dst``."""

    src: Path
    dst: Path


def list_inputs(path: Path, out_dir: Path | None = None) -> list[Path]:
    """The image files of ``path``: itself, or every image under the folder (recursive, sorted), except hidden
    files and folders and anything under ``out_dir`` (an output folder inside the input folder).

    Raises:
        InferArgumentError: ``path`` does not exist, or is a file that is not an image.
        InferError: The folder holds no image.
    """
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


def plan_outputs(inputs: Sequence[Path], out_dir: Path, suffix: str, ext: str,
                 root: Path | None = None) -> list[OutputJob]:
    """One job per input: ``out_dir/<the input's place under root>/<stem>[_<suffix>]<ext>``.

    Args:
        inputs: The image files (:func:`list_inputs`).
        out_dir: The output folder.
        suffix: Appended to each name after ``_`` ("" for none).
        ext: ``"keep"`` (the input's extension) or ``"png"``.
        root: The input folder whose tree is kept under ``out_dir``; None for a single file.

    Raises:
        InferArgumentError: An output would be one of the inputs (``a.png -> a_x2.png`` beside an input
            ``a_x2.png``), or two inputs would share an output.
    """
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
        jobs.append(OutputJob(src, dst))
    return jobs
