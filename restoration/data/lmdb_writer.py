"""Packing an image folder into an LMDB (BasicSR layout) and writing meta-info listings.

Why LMDB: training on DIV2K sub-images reads ~32k small PNGs in random order; one memory-mapped
file avoids the per-file open/seek cost on network file systems. Layout::

    out.lmdb/data.mdb, lock.mdb     # key = file stem (utf-8), value = PNG bytes
    out.lmdb/meta_info.txt          # "0001_s001.png (480,480,3) 1" per image, in key order

Two classic failures are designed out here:

* ``MDB_MAP_FULL``: the map size is not guessed from one image; it is grown from the bytes actually
  encoded, before every write transaction, with headroom (and doubled on a ``MapFullError`` should
  the page overhead ever exceed that headroom).
* half-written databases: the LMDB is built under a temporary name and renamed into place at the
  end, so an interrupted run leaves no ``out.lmdb`` that looks complete.
"""

from __future__ import annotations

import os
import shutil
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2

from restoration.data.file_lists import scan_images
from restoration.utils.image_io import imencode, imread

__all__ = ["make_lmdb_from_folder", "write_meta_info", "lmdb_map_size_for"]

_PAGE = 4096
_MIN_HEADROOM = 64 << 20  # bytes: B-tree pages, the meta pages, and slack for small databases


def lmdb_map_size_for(data_bytes: int, n_entries: int) -> int:
    """A map size comfortably above what ``n_entries`` values totalling ``data_bytes`` need.

    Large values live on overflow pages (rounded up to whole 4 KiB pages), keys in B-tree pages;
    we allow a page of overhead per entry, then 50% and a fixed 64 MiB on top.
    """
    need = data_bytes + n_entries * 2 * _PAGE
    return int(need * 1.5) + _MIN_HEADROOM


def _encode(job: tuple[str, str, int]) -> tuple[str, bytes, tuple[int, int, int]]:
    path, key, level = job
    img = imread(path)  # RGB; re-encoded as PNG so every value has one format
    return key, imencode(img, ".png", [cv2.IMWRITE_PNG_COMPRESSION, level]), img.shape  # type: ignore[return-value]


def _encoded(jobs: list[tuple[str, str, int]], n_thread: int) -> Iterator[tuple[str, bytes, tuple[int, int, int]]]:
    if n_thread <= 1:
        yield from map(_encode, jobs)
        return
    with Pool(n_thread) as pool:
        yield from pool.imap(_encode, jobs, chunksize=8)


def _batches(it: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for x in it:
        batch.append(x)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def make_lmdb_from_folder(folder: str | os.PathLike, lmdb_path: str | os.PathLike, compress_level: int = 1,
                          n_thread: int = 4, batch_size: int = 500, overwrite: bool = False,
                          progress: Callable[[int, int], None] | None = None) -> Path:
    """Pack every image of ``folder`` into ``lmdb_path`` (which must end with ``.lmdb``).

    Args:
        folder: Folder of images (not recursive).
        lmdb_path: Output database folder, e.g. ``datasets/DIV2K/DIV2K_train_HR_sub.lmdb``.
        compress_level: PNG compression of the stored values, 0 (fast, large) to 9.
        n_thread: Processes that decode/encode images.
        batch_size: Images per write transaction.
        overwrite: Replace an existing ``lmdb_path`` instead of refusing.
        progress: Called as ``progress(done, total)`` after each transaction.

    Returns:
        ``Path(lmdb_path)``.

    Raises:
        FileNotFoundError: The folder is missing or has no images.
        FileExistsError: ``lmdb_path`` exists and ``overwrite`` is false.
        ValueError: Bad arguments, or two images share a stem (their LMDB keys would collide).
    """
    import lmdb  # optional dependency

    folder, out = Path(folder), Path(lmdb_path)
    if out.suffix != ".lmdb":
        raise ValueError(f"the LMDB path must end with '.lmdb', got {out}")
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be in [0, 9], got {compress_level}")
    names = scan_images(folder)
    keys = [os.path.splitext(n)[0] for n in names]
    dups = sorted({k for k in keys if keys.count(k) > 1}) if len(set(keys)) != len(keys) else []
    if dups:
        raise ValueError(f"images in {folder} share a file stem, so their LMDB keys collide: {dups[:5]}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; delete it or pass overwrite=True (--overwrite)")

    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    src_bytes = sum((folder / n).stat().st_size for n in names)
    env = lmdb.open(str(tmp), map_size=lmdb_map_size_for(src_bytes, len(names)))
    meta_lines: list[str] = []
    written = 0
    jobs = [(str(folder / n), k, compress_level) for n, k in zip(names, keys)]
    try:
        for batch in _batches(_encoded(jobs, n_thread), batch_size):
            _ensure_room(env, sum(len(v) for _, v, _ in batch), len(batch))
            _write_batch(env, batch)
            for key, _, (h, w, c) in batch:
                meta_lines.append(f"{key}.png ({h},{w},{c}) {compress_level}\n")
            written += len(batch)
            if progress:
                progress(written, len(jobs))
        env.sync()
    finally:
        env.close()
    with open(tmp / "meta_info.txt", "w", encoding="utf-8") as f:
        f.writelines(meta_lines)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def _ensure_room(env, batch_bytes: int, n: int) -> None:
    """Grow the map so the next transaction fits: used pages + this batch with headroom."""
    info, stat = env.info(), env.stat()
    used = (info["last_pgno"] + 1) * stat["psize"]
    want = used + lmdb_map_size_for(batch_bytes, n)
    if info["map_size"] < want:
        env.set_mapsize(want)


def _write_batch(env, batch: list[tuple[str, bytes, tuple[int, int, int]]]) -> None:
    import lmdb  # optional dependency

    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value, _ in batch:
                    txn.put(key.encode("utf-8"), value)
            return
        except lmdb.MapFullError:  # the transaction was aborted by the context manager
            env.set_mapsize(env.info()["map_size"] * 2)


def write_meta_info(folder: str | os.PathLike, meta_file: str | os.PathLike) -> Path:
    """Write a meta-info listing ``name.png (h,w,c)`` for every image of ``folder`` (for ``meta_info_file``)."""
    folder, meta_file = Path(folder), Path(meta_file)
    lines = []
    for name in scan_images(folder):
        h, w, c = imread(folder / name).shape
        lines.append(f"{name} ({h},{w},{c})\n")
    meta_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = meta_file.with_name(f".{meta_file.name}.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, meta_file)
    return meta_file
