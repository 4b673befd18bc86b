"""Build the small demo SR dataset from the photographs bundled with scikit-image (no download).

Usage::

    python scripts/data/make_demo_dataset.py [--root datasets/demo] [--scale 2] [--scale 4]

Writes ``<root>/{train,val}/HR/*.png`` and ``<root>/{train,val}/LR_bicubic/X<s>/*x<s>.png``; does
nothing when the dataset is already complete. See :mod:`restoration.data.demo`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=Path("datasets/demo"), help="output folder (default datasets/demo)")
    p.add_argument("--scale", type=int, action="append", help="SR factor, repeatable (default 2)")
    args = p.parse_args(argv)
    from restoration.data.demo import prepare_demo_dataset

    for scale in args.scale or [2]:
        start = time.time()
        try:
            root = prepare_demo_dataset(args.root, scale)
        except (ValueError, OSError) as exc:
            print(f"make_demo_dataset.py: error: {exc}", file=sys.stderr)
            return 2
        n_train = len(list((root / "train" / "HR").glob("*.png")))
        n_val = len(list((root / "val" / "HR").glob("*.png")))
        print(f"demo x{scale} ready at {root}: {n_train} train / {n_val} val images ({time.time() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
