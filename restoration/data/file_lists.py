"""Building the list of samples of a dataset: from a folder, a meta-info file, or an LMDB.

Every function returns plain strings (paths for disk, keys for LMDB) so a dataset pickles cheaply.
Errors name the folder/file and the offending images.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from restoration.data.io_backend import read_lmdb_meta_info
from restoration.errors import DataError, MissingDataError
from restoration.utils.image_io import is_image_file

__all__ = ["scan_images", "read_meta_info_file", "lr_filename_tmpl", "lq_stem", "find_lq_file", "paired_paths",
           "single_paths"]

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


def lr_filename_tmpl(scale: int) -> str:
    """The ``filename_tmpl`` of LR images named like DIV2K's (``0001x4.png``): ``'{}x4'`` at scale 4.

    ``scripts/data/generate_lr.py`` names its output with it, so its folders pair with that template.
    """
    return "{}x" + str(int(scale))


def lq_stem(gt_stem: str, filename_tmpl: str = "{}") -> str:
    """The LQ file stem of a GT stem: ``'0001'`` with ``'{}x2'`` gives ``'0001x2'``.

    The one naming rule of a GT/LQ pair: ``scripts/data/generate_lr.py`` writes ``lq_stem(stem, tmpl) + '.png'``
    and :func:`paired_paths` looks for ``lq_stem(stem, filename_tmpl)`` with any image extension, so a TIFF GT
    folder pairs with the PNGs the script made from it.
    """
    return filename_tmpl.format(gt_stem)


class _FolderIndex:
    """The image files of a folder by (sub-folder, stem); each sub-folder is listed once, when first asked."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._dirs: dict[str, dict[str, list[str]]] = {}

    def _stems(self, rel_dir: str) -> dict[str, list[str]]:
        if rel_dir not in self._dirs:
            folder = os.path.join(self.root, rel_dir)
            by_stem: dict[str, list[str]] = {}
            for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
                if is_image_file(name) and not name.startswith(".") and os.path.isfile(os.path.join(folder, name)):
                    by_stem.setdefault(os.path.splitext(name)[0], []).append(name)
            self._dirs[rel_dir] = by_stem
        return self._dirs[rel_dir]

    def files(self, rel_dir: str, stem: str) -> list[str]:
        """Names (with extension) of the images ``<stem>.<ext>`` in sub-folder ``rel_dir``."""
        return self._stems(rel_dir).get(stem, [])

    def stems(self, rel_dir: str) -> dict[str, list[str]]:
        return self._stems(rel_dir)


def _split(gt_name: str) -> tuple[str, str]:
    """``'sub/0001.tif'`` -> ``('sub', '0001')``."""
    head, base = os.path.split(gt_name)
    return head, os.path.splitext(base)[0]


def _check_gt_stems(names: list[str], gt_root: str) -> None:
    """Two GT images with one stem (``a.png``, ``a.tif``) would share one LQ partner: refuse, naming both."""
    seen: dict[tuple[str, str], str] = {}
    for name in names:
        key = _split(name)
        if key in seen and seen[key] != name:
            raise DataError(f"GT folder {gt_root} holds two images with the stem '{key[1]}': {seen[key]} and {name} "
                            "(they would share one LQ image); keep one of them")
        seen[key] = name


def _tmpl_hint(index: _FolderIndex, gt_name: str, filename_tmpl: str) -> str:
    """What the LQ folder holds for ``gt_name`` under another template (``0001x2.png`` while the template is
    ``'{}'``), as advice; "" when nothing close is there."""
    head, stem = _split(gt_name)
    for other, names in index.stems(head).items():
        match = re.fullmatch(re.escape(stem) + r"x(\d+)", other)
        tmpl = lr_filename_tmpl(int(match.group(1))) if match else "{}" if other == stem else None
        if tmpl is not None and tmpl != filename_tmpl:
            return f"; the LQ folder holds '{os.path.join(head, names[0])}': set filename_tmpl: '{tmpl}'"
    return ""


def find_lq_file(lq_root: str, gt_name: str, filename_tmpl: str = "{}", index: _FolderIndex | None = None) -> str:
    """Path of the LQ partner of GT image ``gt_name`` (relative to the GT folder; sub-folders kept).

    The partner is ``lq_stem(<GT stem>, filename_tmpl)`` with any image extension, in the same sub-folder of
    ``lq_root`` (GT ``a.tif`` pairs with ``ax2.png`` under ``'{}x2'``).

    Raises:
        MissingDataError: No such image; the message names the folder, the expected name and how to fix it.
        DataError: Two images with that stem (``ax2.png`` and ``ax2.tif``); both are named.
    """
    index = index or _FolderIndex(lq_root)
    head, stem = _split(gt_name)
    wanted = lq_stem(stem, filename_tmpl)
    found = index.files(head, wanted)
    if len(found) > 1:
        raise DataError(f"two LQ images for GT '{gt_name}' in {lq_root}: "
                        + " and ".join(os.path.join(head, n) for n in found) + "; keep one of them")
    if not found:
        raise MissingDataError(_no_lq_message([gt_name], 1, lq_root, filename_tmpl, index))
    return os.path.join(lq_root, head, found[0])


def _no_lq_message(missing: list[str], total: int, lq_root: str, filename_tmpl: str, index: _FolderIndex) -> str:
    expected = [f"'{os.path.join(_split(n)[0], lq_stem(_split(n)[1], filename_tmpl))}.*'" for n in missing]
    if len(missing) == 1:
        what = f"no LQ image for GT '{missing[0]}': expected {expected[0]}"
    else:
        what = (f"no LQ image for {len(missing)} of {total} GT images: expected "
                + _listing([f"{e} (GT '{n}')" for e, n in zip(expected, missing)]))
    return (f"{what} in {lq_root} (filename_tmpl '{filename_tmpl}'){_tmpl_hint(index, missing[0], filename_tmpl)}"
            "; scripts/data/generate_lr.py --scale N writes '<GT stem>xN.png', read with filename_tmpl '{}xN'")


def paired_paths(gt_root: str, lq_root: str, backend: str = "disk", meta_info_file: str | None = None,
                 filename_tmpl: str = "{}") -> list[dict[str, str]]:
    """Pair GT and LQ images, returning ``[{'gt_path': ..., 'lq_path': ...}, ...]``.

    * ``backend='lmdb'``: keys from both databases' ``meta_info.txt``; the key sets must match.
    * ``meta_info_file`` given: GT names from it; each LQ partner found by :func:`find_lq_file`.
    * otherwise: every image in ``gt_root``, each LQ partner found by :func:`find_lq_file` (any extension).

    Raises:
        MissingDataError: Listing the GT images (or keys) that have no partner, and what was expected where.
        DataError: A GT or LQ stem shared by two images (``a.png`` and ``a.tif``), naming both.
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
    if meta_info_file:
        absent = [os.path.join(gt_root, n) for n in names if not os.path.isfile(os.path.join(gt_root, n))]
        if absent:
            raise MissingDataError(f"{len(absent)} GT image(s) listed in {meta_info_file} are not in {gt_root}: "
                                   f"{_listing(absent)}")
    _check_gt_stems(names, gt_root)
    if not os.path.isdir(lq_root):
        raise MissingDataError(f"LQ folder {lq_root} does not exist (dataroot_lq)")
    index = _FolderIndex(lq_root)
    pairs, missing = [], []
    for name in names:
        try:
            lq_path = find_lq_file(lq_root, name, filename_tmpl, index)
        except MissingDataError:
            missing.append(name)
            continue
        pairs.append({"gt_path": os.path.join(gt_root, name), "lq_path": lq_path})
    if missing:
        raise MissingDataError(_no_lq_message(missing, len(names), lq_root, filename_tmpl, index))
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
