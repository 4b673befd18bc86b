"""Building the list of samples of a dataset: from a folder, a meta-info file, or an LMDB.

Every function returns plain strings (paths for disk, keys for LMDB) so a dataset pickles cheaply.
Errors name the folder/file and the offending images.
"""

from __future__ import annotations

import os
from pathlib import Path

from restoration.data.io_backend import read_lmdb_meta_info
from restoration.errors import DataError, MissingDataError
from restoration.utils.image_io import is_image_file

__all__ = ["scan_images", "read_meta_info_file", "paired_paths", "single_paths"]

_MAX_LISTED = 5  # how many missing files an error message lists before "... and N more"


def _listing(names: list[str]) -> str:
    head = ", ".join(names[:_MAX_LISTED])
    return head + (f" ... and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def scan_images(folder: str | os.PathLike, recursive: bool = False) -> list[str]:
    """Sorted image paths (relative to ``folder``) in ``folder``.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no image.
    """
    root = Path(folder)
    if not root.is_dir():
        raise MissingDataError(f"image folder {folder} does not exist")
    files = root.rglob("*") if recursive else root.iterdir()
    names = sorted(p.relative_to(root).as_posix() for p in files if p.is_file() and is_image_file(p.name)
                   and not p.name.startswith("."))
    if not names:
        raise MissingDataError(f"no image files in {folder}")
    return names


def read_meta_info_file(meta_file: str | os.PathLike) -> list[str]:
    """Image names from a meta-info file: the first token of every non-empty, non-``#`` line."""
    if not Path(meta_file).is_file():
        raise MissingDataError(f"meta_info_file {meta_file} does not exist (remove the key to use every image "
                               "of the folder)")
    with open(meta_file, encoding="utf-8") as f:
        names = [line.split()[0] for line in f if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise DataError(f"meta_info_file {meta_file} lists no image")
    return names


def _lq_name(gt_name: str, filename_tmpl: str) -> str:
    """``0001.png`` with template ``'{}x2'`` → ``0001x2.png`` (sub-folders kept)."""
    stem, ext = os.path.splitext(gt_name)
    head, base = os.path.split(stem)
    return os.path.join(head, filename_tmpl.format(base) + ext) if head else filename_tmpl.format(base) + ext


def paired_paths(gt_root: str, lq_root: str, backend: str = "disk", meta_info_file: str | None = None,
                 filename_tmpl: str = "{}") -> list[dict[str, str]]:
    """Pair GT and LQ images, returning ``[{'gt_path': ..., 'lq_path': ...}, ...]``.

    * ``backend='lmdb'``: keys from both databases' ``meta_info.txt``; the key sets must match.
    * ``meta_info_file`` given: GT names from it; LQ name = ``filename_tmpl.format(stem) + ext``.
    * otherwise: every image in ``gt_root``, its LQ partner by the same template.

    Raises:
        FileNotFoundError: Listing the LQ files (or keys) that have no partner.
    """
    if backend == "lmdb":
        gt_keys = [os.path.splitext(n)[0] for n in read_lmdb_meta_info(gt_root)]
        lq_keys = [os.path.splitext(n)[0] for n in read_lmdb_meta_info(lq_root)]
        missing = sorted(set(gt_keys) - set(lq_keys))
        if missing:
            raise MissingDataError(
                f"{len(missing)} GT keys of {gt_root} are not in {lq_root}: {_listing(missing)} "
                "(both LMDBs must hold the same image names)")
        return [{"gt_path": k, "lq_path": k} for k in gt_keys]

    names = read_meta_info_file(meta_info_file) if meta_info_file else scan_images(gt_root)
    pairs, missing = [], []
    for name in names:
        gt_path = os.path.join(gt_root, name)
        lq_path = os.path.join(lq_root, _lq_name(name, filename_tmpl))
        if meta_info_file and not os.path.isfile(gt_path):
            missing.append(gt_path)
        if not os.path.isfile(lq_path):
            missing.append(lq_path)
        pairs.append({"gt_path": gt_path, "lq_path": lq_path})
    if missing:
        raise MissingDataError(
            f"{len(missing)} image(s) of the GT/LQ pairs are missing: {_listing(missing)} "
            f"(GT folder {gt_root}, LQ folder {lq_root}, filename_tmpl {filename_tmpl!r})")
    return pairs


def single_paths(root: str, backend: str = "disk", meta_info_file: str | None = None) -> list[str]:
    """Paths (disk) or keys (LMDB) of the images of one folder/database."""
    if backend == "lmdb":
        return [os.path.splitext(n)[0] for n in read_lmdb_meta_info(root)]
    if meta_info_file:
        paths = [os.path.join(root, n) for n in read_meta_info_file(meta_info_file)]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise MissingDataError(f"{len(missing)} image(s) listed in {meta_info_file} are missing: {_listing(missing)}")
        return paths
    return [os.path.join(root, n) for n in scan_images(root)]
