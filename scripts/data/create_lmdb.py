"""Pack image folders into LMDB databases (BasicSR layout), or write a meta-info listing.

Usage::

    # one database per folder; the LMDB key is the file stem, the value the image as PNG bytes
    python scripts/data/create_lmdb.py --input datasets/DIV2K/DIV2K_train_HR_sub \\
        --output datasets/DIV2K/DIV2K_train_HR_sub.lmdb [--compress-level 1] [--n-thread 4] [--overwrite]

    # several folders at once: repeat --input/--output in the same order
    python scripts/data/create_lmdb.py \\
        --input datasets/DIV2K/DIV2K_train_HR_sub --output datasets/DIV2K/DIV2K_train_HR_sub.lmdb \\
        --input datasets/DIV2K/DIV2K_train_LR_bicubic_X4_sub --output datasets/DIV2K/DIV2K_train_LR_bicubic_X4_sub.lmdb

    # only a listing "name.png (h,w,c)" per image, for the `meta_info_file` option of the disk backend
    python scripts/data/create_lmdb.py --input datasets/DIV2K/DIV2K_train_HR_sub --meta-info meta_info_DIV2K_sub.txt

Each database gets ``meta_info.txt`` (``name.png (h,w,c) compress_level`` per image), which the datasets
read to list keys. The map size grows with the bytes actually written, so ``MDB_MAP_FULL`` cannot
happen; the database is written under a temporary name and renamed when complete.

From Python: ``restoration.data.lmdb_writer.make_lmdb_from_folder(folder, lmdb_path, ...)``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Examples:\n" + __doc__.split("Usage::", 1)[1].split("Each database", 1)[0])
    p.add_argument("--input", action="append", required=True, type=Path, help="image folder (repeatable)")
    p.add_argument("--output", action="append", type=Path, default=[],
                   help="output .lmdb folder, one per --input, in the same order")
    p.add_argument("--meta-info", action="append", type=Path, default=[],
                   help="instead of an LMDB, write a meta-info listing to this file (one per --input)")
    p.add_argument("--compress-level", type=int, default=1, help="PNG compression of stored images, 0-9 (default 1)")
    p.add_argument("--n-thread", type=int, default=4, help="worker processes that encode images (default 4)")
    p.add_argument("--batch-size", type=int, default=500, help="images per LMDB write transaction (default 500)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output databases")
    return p.parse_args(argv)


def _validate(args: argparse.Namespace) -> str | None:
    if args.output and args.meta_info:
        return "give either --output (make LMDBs) or --meta-info (write listings), not both"
    targets = args.output or args.meta_info
    if not targets:
        return "give --output x.lmdb (or --meta-info file.txt) for every --input"
    if len(targets) != len(args.input):
        return f"got {len(args.input)} --input but {len(targets)} --output/--meta-info; give one per --input"
    for folder in args.input:
        if not folder.is_dir():
            return f"input folder {folder} does not exist"
    for out in args.output:
        if out.suffix != ".lmdb":
            return f"output {out} must end with '.lmdb'"
        if out.exists() and not args.overwrite:
            return f"output {out} already exists; delete it or pass --overwrite"
    if not 0 <= args.compress_level <= 9:
        return f"--compress-level must be in [0, 9], got {args.compress_level}"
    if args.n_thread < 1 or args.batch_size < 1:
        return "--n-thread and --batch-size must be >= 1"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    error = _validate(args)
    if error:
        print(f"create_lmdb.py: error: {error}", file=sys.stderr)
        return 2
    from restoration.data.lmdb_writer import make_lmdb_from_folder, write_meta_info

    try:
        if args.meta_info:
            for folder, meta in zip(args.input, args.meta_info):
                write_meta_info(folder, meta)
                print(f"wrote {meta}")
            return 0
        for folder, out in zip(args.input, args.output):
            start = time.time()

            def progress(done: int, total: int, _out: Path = out) -> None:
                print(f"\r{_out.name}: {done}/{total} images", end="", flush=True)

            make_lmdb_from_folder(folder, out, compress_level=args.compress_level, n_thread=args.n_thread,
                                  batch_size=args.batch_size, overwrite=args.overwrite, progress=progress)
            print(f"\nwrote {out} ({time.time() - start:.1f} s)")
    except (OSError, ValueError) as exc:
        print(f"\ncreate_lmdb.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
