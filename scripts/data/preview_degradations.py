"""Write a grid of (GT, degraded LQ) training samples of an option file, to check the degradation before training.

Usage::

    python scripts/data/preview_degradations.py -opt options/train/demo/train_RealESRNet_SwinIR_tiny_x4_demo.yml \\
        -n 16 -o preview.png [--force_yml train.noise_range=[1,10]]

The same as ``python train.py -opt X.yml --preview_degradations 16`` (which writes
``experiments/<name>/degradation_preview.png``), with the output file of your choice. Layout and sizes:
:mod:`restoration.data.degradation_preview`; docs/visualisation.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from restoration.data.degradation_preview import write_preview
from restoration.data.demo import prepare_demo_dataset
from restoration.options.parse import OptionsError, parse_options
from restoration.utils.cli import run_reporting_errors
from restoration.utils.logger import get_logger


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Write a grid of (GT | LQ) training samples of a training option file.")
    p.add_argument("-opt", "--opt", required=True, help="path to the training option YAML file")
    p.add_argument("-n", "--num", type=int, default=16, help="number of samples (default 16)")
    p.add_argument("-o", "--output", default="degradation_preview.png", help="PNG file to write")
    p.add_argument("--force_yml", "--set", nargs="+", default=[], metavar="KEY=VALUE", help="override options")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 written, 2 bad options, 1 a problem with the data)."""
    args = build_arg_parser().parse_args(argv)
    try:
        # a demo file's dataset (demo_data) is built as train.py builds it
        opt = parse_options(args.opt, is_train=True, overrides=args.force_yml, prepare_data=prepare_demo_dataset)
    except OptionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def run() -> int:
        height, width = write_preview(opt, args.num, args.output)
        get_logger().info(f"wrote {args.num} training samples (GT | LQ) to {args.output} ({width}x{height})")
        return 0

    return run_reporting_errors(run)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
