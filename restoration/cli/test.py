"""``test.py``: benchmark trained weights (and optional baselines) on every test dataset of an option file.

``python test.py -opt options/test/SwinIR/test_SwinIR_SRx2_DIV2K.yml`` (``restoration-test`` is the same).
Several GPUs: ``torchrun --nproc_per_node=4 test.py -opt ... --launcher pytorch``. What is run and written:
:mod:`restoration.benchmarking` (``results/<name>/metrics.json``, ``index.md``, the images and the log).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from restoration.benchmarking import prepare_results_folder, run_benchmark, undo_results_folder
from restoration.data.demo import prepare_demo_dataset
from restoration.errors import OptionsError, RestorationError
from restoration.options.parse import parse_options_all_ranks, read_dist_params
from restoration.run_context import RunContext
from restoration.utils.cli import run_reporting_errors
from restoration.utils.device import select_device
from restoration.utils.dist import DistError, barrier, cleanup_dist, finish_dist, get_dist_info, init_dist
from restoration.utils.logger import close_file_handlers

__all__ = ["main", "build_arg_parser"]


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Test/benchmark an image-restoration network from a YAML option file.")
    p.add_argument("-opt", "--opt", required=True, help="path to the test option YAML file")
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none")
    p.add_argument("--force_yml", "--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override options, e.g. path.pretrain_network_g=weights.pth val.tile.tile_size=256")
    p.add_argument("--root", default=".", help="folder holding results/ (default: cwd)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``test.py``; returns the exit code (0 done, 2 bad options, 1 another problem with the user's files).

    A :class:`~restoration.errors.RestorationError` is one line; any other exception is a bug and keeps its
    traceback (in the log file too).
    """
    args = build_arg_parser().parse_args(argv)
    return run_reporting_errors(lambda: _test(args))


def _test(args: argparse.Namespace) -> int:
    if args.launcher != "none":
        dist_params = read_dist_params(args.opt, args.force_yml)
        try:
            init_dist(args.launcher, dist_params["backend"], dist_params["port"], dist_params.get("timeout"))
        except DistError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    rank, world_size = get_dist_info()
    notices: list[str] = []
    try:
        opt = parse_options_all_ranks(args.opt, is_train=False, overrides=args.force_yml, root=args.root,
                                      notices=notices, prepare_data=prepare_demo_dataset)  # demo_data: built on rank 0
    except OptionsError as exc:
        if rank == 0:
            print(f"error: {exc}", file=sys.stderr)
        cleanup_dist()
        return 2
    context = RunContext(rank=rank, world_size=world_size, device=select_device(opt["num_gpu"]), is_train=False,
                         opt_path=os.path.abspath(args.opt))
    archived = prepare_results_folder(opt, args.opt, context.start_time) if rank == 0 else None
    barrier()
    try:
        run_benchmark(opt, context, notices, archived)
    except RestorationError:
        if rank == 0:
            undo_results_folder(opt["path"]["results_root"], archived)
        raise
    close_file_handlers()
    finish_dist()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
