"""``restoration-zoo`` (``python -m restoration.zoo``): list the released checkpoints, verify downloaded files.

    python -m restoration.zoo list                      # every entry and where to fetch it
    python -m restoration.zoo verify HAT_SRx4.pth       # tensor shapes (and sha256 when recorded) vs the manifest
    python -m restoration.zoo verify my_copy.pth --name 001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth
    python -m restoration.zoo verify --dir experiments/pretrained_models   # every entry found in a folder

``verify`` prints ``OK`` (every key and shape of the entry's network; sha256 match or "no sha256 recorded"),
``MISMATCH`` (which keys/shapes, or the two hashes) or ``MISSING`` per file, and exits 1 when a file differs or
none could be verified; a bad command line or an unknown name is one line, exit 1. The manifest and the checks:
:mod:`restoration.zoo`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from restoration.errors import RestorationError, ZooError
from restoration.zoo import MISMATCH, MISSING, OK, entries, verify

__all__ = ["main", "build_arg_parser"]


def _list(manifest: str | None) -> int:
    for e in entries(manifest):
        scores = ", ".join(f"{ds} " + "/".join(f"{v:g}" for v in m.values()) for ds, m in e.scores.items())
        print(e.name)
        print(f"    {e.description} [{e.network_g['type']}" + (f", {e.num_params:,} params" if e.num_params else "")
              + "]")
        print(f"    fetch: {e.url}")
        print(f"    sha256: {e.sha256 or 'not recorded'}")
        if scores:
            print(f"    published: {scores}")
        if e.notes:
            print(f"    note: {e.notes}")
    return 0


def _verify(files: Sequence[str], name: str | None, folder: str | None, manifest: str | None) -> int:
    """Print one line per file (per entry with ``--dir``); 0 when at least one file was verified and none failed.

    A file named on the command line that is absent fails; with ``--dir``, absent entries are only listed.
    """
    if name is not None and (len(files) != 1 or folder):
        raise ZooError("--name needs exactly one FILE (and no --dir)")
    if folder is not None and not os.path.isdir(folder):
        raise ZooError(f"--dir {folder} is not a folder")
    checks = [(path, name) for path in files]
    checks += [(os.path.join(folder, e.name), e.name) for e in entries(manifest)] if folder else []
    if not checks:
        raise ZooError("nothing to verify: give FILE names or --dir FOLDER")
    results = [verify(path, n, manifest) for path, n in checks]
    for result in results:
        print(result.line())
    ok = sum(r.status == OK for r in results)
    bad = [r for r in results if r.status == MISMATCH or (r.status == MISSING and r.path in files)]
    print(f"{ok} verified, {sum(r.status == MISMATCH for r in results)} mismatched, "
          f"{sum(r.status == MISSING for r in results)} missing")
    return 1 if bad or not ok else 0


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="restoration-zoo",
                                description="The official released checkpoints: where to fetch them and checks.")
    p.add_argument("--manifest", default=None, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print every entry and the URL to fetch it from")
    v = sub.add_parser("verify", help="check downloaded files' tensor shapes (and sha256 when recorded) against "
                                      "the manifest; exit 1 when one differs or none could be verified")
    v.add_argument("files", nargs="*", metavar="FILE")
    v.add_argument("--name", default=None, help="the manifest name, when FILE was renamed")
    v.add_argument("--dir", default=None, metavar="FOLDER", help="check every entry's file in FOLDER")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The ``restoration-zoo`` command; returns the exit code (0 done, 1 a mismatch, nothing verified or a
    one-line error; argparse exits with 2 on bad arguments)."""
    args = build_arg_parser().parse_args(argv)
    try:
        if args.command == "list":
            return _list(args.manifest)
        return _verify(args.files, args.name, args.dir, args.manifest)
    except RestorationError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
