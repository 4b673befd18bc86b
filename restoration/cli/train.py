"""``train.py``: read the options, start the process group, hold the experiment's lock, run the training.

``python train.py -opt options/train/SwinIR/train_SwinIR_SRx2_DIV2K.yml`` (``restoration-train`` is the same).
Several GPUs: ``torchrun --nproc_per_node=4 train.py -opt ... --launcher pytorch``; after a crash or a
pre-emption, add ``--auto_resume``. The training itself is :class:`restoration.training.run.TrainingRun`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from restoration.data.degradation_preview import PREVIEW_FILE, write_preview
from restoration.data.demo import prepare_demo_dataset
from restoration.errors import OptionsError
from restoration.options.parse import parse_options_all_ranks, read_dist_params
from restoration.settings import run_settings
from restoration.run_context import RunContext
from restoration.training.ranks import on_main_rank
from restoration.training.run import TrainingRun
from restoration.utils.cli import run_reporting_errors
from restoration.utils.device import select_device
from restoration.utils.dist import cleanup_dist, finish_dist, get_dist_info, init_dist
from restoration.utils.logger import get_logger
from restoration.utils.run_lock import RunLock
from restoration.utils.torch_setup import torch_settings

__all__ = ["main", "build_arg_parser"]


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train an image-restoration network from a YAML option file.")
    p.add_argument("-opt", "--opt", required=True, help="path to the option YAML file")
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none",
                   help="pytorch: started by torchrun; slurm: started by srun")
    p.add_argument("--auto_resume", action="store_true", help="resume from the newest complete training state")
    p.add_argument("--restart_if_unreadable", action="store_true",
                   help="with --auto_resume: start from scratch (archiving the experiment folder) when training "
                        "states exist but none can be read; without it that is an error")
    p.add_argument("--resume_foreign", action="store_true",
                   help="resume from a training state that another run wrote (another run id than the experiment "
                        "folder's: a copied state, or one of an earlier run with the same name); without it that "
                        "is an error")
    p.add_argument("--debug", action="store_true", help="smoke run: tiny print/val/save frequencies")
    p.add_argument("--force_yml", "--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override options, e.g. train.total_iter=1000 datasets.train.batch_size_per_gpu=4")
    p.add_argument("--root", default=".", help="folder holding experiments/, tb_logger/ (default: cwd)")
    p.add_argument("--preview_degradations", type=int, default=0, metavar="N",
                   help="write N (GT, LQ) training samples to experiments/<name>/degradation_preview.png and exit "
                        "without training (docs/visualisation.md)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``train.py``; returns the exit code (0 done or stopped by a signal, 2 bad options, 1 bad data).

    A :class:`~restoration.errors.RestorationError` (something in the user's files) is one line; any
    other exception is a bug: its traceback goes to the log file as well, and it propagates.
    """
    args = build_arg_parser().parse_args(argv)
    return run_reporting_errors(lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    if args.launcher != "none":
        # the process group exists before the options are checked (every rank must reach the same
        # verdict), so its own settings are read from the file first
        dist_params = read_dist_params(args.opt, args.force_yml)
        init_dist(args.launcher, dist_params["backend"], dist_params["port"], dist_params.get("timeout"))
    rank, world_size = get_dist_info()
    args.option_notices = []  # translated upstream spellings, printed once at the top of the log
    try:
        # a file naming the demo dataset (demo_data) has it built here, on rank 0 while the others wait
        opt = parse_options_all_ranks(args.opt, is_train=True, overrides=args.force_yml, debug=args.debug, root=args.root,
                                      notices=args.option_notices, prepare_data=prepare_demo_dataset)
    except OptionsError as exc:
        if rank == 0:
            print(f"error: {exc}", file=sys.stderr)
        cleanup_dist()
        return 2
    if args.preview_degradations:  # look at the training pairs before spending GPU time on them
        if rank == 0:
            path = os.path.join(opt["path"]["experiments_root"], PREVIEW_FILE)
            height, width = write_preview(opt, args.preview_degradations, path)
            get_logger().info(f"wrote {args.preview_degradations} training samples (GT | LQ) to {path} "
                              f"({width}x{height}); nothing was trained")
        finish_dist()
        return 0
    settings = run_settings(opt)
    context = RunContext(rank=rank, world_size=world_size, device=select_device(opt["num_gpu"]),
                         opt_path=os.path.abspath(args.opt))
    with torch_settings(settings.train.deterministic, settings.train.tf32):
        # one run per experiment folder: rank 0 holds the lock for the whole run; a second run with the same
        # name stops here, before it reads a state or archives the folder of the run that holds it
        lock = RunLock(opt["path"]["experiments_root"])
        on_main_rank(rank, lock.acquire)
        try:
            code = TrainingRun(opt, settings, context, args).train()
        finally:
            lock.release()  # after a failed start's clean-up: a lock that made experiments/ removes it when empty
    finish_dist()  # the trainer and its DDP wrappers are out of scope here
    return code


if __name__ == "__main__":
    raise SystemExit(main())
