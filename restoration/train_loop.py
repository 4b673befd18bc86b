"""The training story, top to bottom: options → folders/loggers → data → model → resume → loop.

``train.py`` at the repository root is a thin wrapper around :func:`main`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from typing import Any, Sequence

import torch

from restoration.errors import EvaluationError, RestorationError, user_error_message
from restoration.errors import MainRankFailedError, TrainingStalledError
from restoration.data.loader import (
    CUDAPrefetcher,
    build_dataset,
    build_eval_loader,
    build_train_loader,
    check_image_files,
)
from restoration.evaluation import evaluate
from restoration.options.parse import OptionsError, parse_options_all_ranks, read_dist_params, run_header
from restoration.options.schedule_warnings import schedule_warnings
from restoration.options.yaml_io import dump_yaml
from restoration.registry import MODEL_REGISTRY
from restoration.utils.best_metrics import forget_best_record, read_best_record, write_best_record
from restoration.utils.schedule_records import read_schedule_record, write_schedule_record
from restoration.utils.wandb_writer import add_wandb
from restoration.utils.checkpoint import (
    CheckpointError,
    atomic_save,
    find_latest_state,
    load_training_state,
    prune_checkpoints,
    remove_stale_temporaries,
)
from restoration.utils.experiment_folder import (
    ExperimentFolderError,
    archive_folder,
    new_run_id,
    read_run_id,
    unwritable,
    write_run_id,
)
from restoration.utils.resume_checks import check_run_id, option_diff, options_text
from restoration.utils.run_lock import RunLock
from restoration.utils.device import select_device
from restoration.utils.cli import run_reporting_errors
from restoration.utils.dist import (
    all_gather_objects,
    any_across_ranks,
    gather_objects_on_main,
    cleanup_dist,
    finish_dist,
    get_dist_info,
    init_dist,
)
from restoration.utils.logger import ProgressLogger, close_file_handlers, get_logger, make_tb_writer
from restoration.utils.rng import get_rng_state, preserve_rng, restore_rank_rng, seed_everything
from restoration.utils.stop_signals import STOP_SIGNALS
from restoration.utils.torch_setup import torch_settings

__all__ = ["main", "build_arg_parser", "TrainingStalledError"]


def _on_main_rank(rank: int, action: Any) -> Any:
    """``action()`` on rank 0 only; when it raises a user error every rank raises (rank 0 that error), so no
    rank waits in a collective for a rank that has stopped. Returns ``action()``'s value (None elsewhere)."""
    error, value = None, None
    if rank == 0:
        try:
            value = action()
        except RestorationError as exc:
            error = exc
    if any_across_ranks(error is not None):
        if error is not None:
            raise error
        raise MainRankFailedError("rank 0 stopped before training (its error is above)")
    return value


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


class _StopFlag:
    """Set by a stop signal (:data:`~restoration.utils.stop_signals.STOP_SIGNALS`: SIGTERM, SIGINT, SIGHUP,
    SIGUSR1); the loop saves a training state at the next iteration boundary, or stops a validation
    between two images first. Every rank acts on the flag only through an all-reduce (any rank's flag).

    Only a second Ctrl-C stops at once: other signals come twice on their own (slurm's SIGTERM to every
    process of a step reaches a rank directly and again through torchrun), and must not cost the save.
    """

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        if self.signal is None:
            self.signal = signum


def _prepare_folders(opt: dict[str, Any], resuming: bool) -> str | None:
    """Create the experiment folders (rank 0); archive an existing folder unless we resume into it.

    Returns:
        The archive's path, when an existing folder was archived.
    """
    exp = opt["path"]["experiments_root"]
    archived = None
    if os.path.isdir(exp) and not resuming and os.listdir(exp):  # an empty folder is used as it is
        # only ever the experiment's own folder: archive_folder refuses one holding anything else
        archived = archive_folder(exp, opt["time"], opt["name"])
        print(f"existing experiment folder archived to {archived}", file=sys.stderr)
    try:
        for key in ("experiments_root", "models", "training_states", "visualization", "options"):
            os.makedirs(opt["path"][key], exist_ok=True)
        if opt["logger"].get("use_tb_logger", True):
            os.makedirs(opt["path"]["tb_logger"], exist_ok=True)
    except OSError as exc:
        if not unwritable(exc):
            raise
        raise ExperimentFolderError(f"cannot create {exc.filename}: {exc.strerror}") from exc
    return archived


def _undo_folders(opt: dict[str, Any], archived: str | None, tb_existed: bool) -> None:
    """Remove the folders of a fresh run that failed on the user's files before its first checkpoint
    (an image that cannot be decoded, say), and put an archived folder back: a failed start leaves the
    disk as it was, like a bad option file does. The error itself is on stderr."""
    import shutil

    paths = opt["path"]
    if os.listdir(paths["training_states"]):
        return  # something worth keeping was saved
    close_file_handlers()
    shutil.rmtree(paths["experiments_root"], ignore_errors=True)
    if not tb_existed:
        shutil.rmtree(paths["tb_logger"], ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(paths["tb_logger"]))  # tb_logger/ itself, when this run made it
        except OSError:  # not empty: other runs' logs
            pass
    if archived is not None:
        os.rename(archived, paths["experiments_root"])
    else:
        try:
            os.rmdir(os.path.dirname(paths["experiments_root"]))  # experiments/, when this run made it
        except OSError:  # not empty: other experiments
            pass
    print(f"removed the new experiment folder {paths['experiments_root']} (nothing was saved)"
          + (f"; {archived} restored" if archived else ""), file=sys.stderr)


def _save(model: Any, opt: dict[str, Any], it: int, epoch: int, batch_in_epoch: int, best: dict, rank: int) -> None:
    """Write ``models/net_g_<it>.pth`` (+ latest) and ``training_states/<it>.state`` atomically (rank 0)."""
    rng = all_gather_objects(get_rng_state())  # every rank's streams, so every rank resumes exactly
    own = model.rank_state()
    rank_states = gather_objects_on_main(own) if any_across_ranks(bool(own)) else None
    if rank != 0:
        return
    paths = opt["path"]
    # The state first and net_g_latest last: a save that fails half-way never leaves net_g_latest
    # ahead of the newest state (--auto_resume would continue from an older point than it shows).
    state = {"iter": it, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "rng": rng, "best": best,
             "world_size": len(rng), "torch_threads": torch.get_num_threads(),
             "batch_size": int(opt["datasets"]["train"].get("batch_size_per_gpu", 1)),
             "run_id": opt.get("run_id"), "options": options_text(opt), **model.training_state()}
    if rank_states is not None:
        state["rank_states"] = rank_states
    state_file = os.path.join(paths["training_states"], f"{it}.state")
    weights_file = os.path.join(paths["models"], f"net_g_{it}.pth")
    forget_best_record(paths["training_states"], it)  # of an earlier pass through this iteration
    atomic_save(state, state_file)
    weights = model.network_state()
    try:
        atomic_save(weights, weights_file)
        atomic_save(weights, os.path.join(paths["models"], "net_g_latest.pth"))
    except CheckpointError:
        # nothing half-made: this iteration's state and weights go together, or neither stays
        for path in (state_file, weights_file):
            if os.path.exists(path):
                os.remove(path)
        raise
    keep = int(opt["logger"]["keep_last"])
    prune_checkpoints(paths["training_states"], r"^(\d+)\.state$", keep)
    prune_checkpoints(paths["models"], r"^net_g_(\d+)\.pth$", keep)


def _claim_run_id(opt: dict[str, Any], state_path: str | None, state: dict[str, Any] | None,
                  allow_foreign: bool) -> str:
    """(Rank 0) The run id of this experiment folder: new for a fresh run, the folder's (or, in a folder
    without one, the state's) for a resume, which must not be another run's state. Recorded in the folder.

    Raises:
        ForeignStateError: The state was written by another run, and not ``allow_foreign``.
    """
    folder = opt["path"]["experiments_root"]
    recorded = read_run_id(folder)
    if state is None:
        run_id = new_run_id()
    else:
        note = check_run_id(str(state_path), state.get("run_id"), folder, recorded, allow_foreign)
        if note is not None:
            get_logger().warning(note)
        run_id = recorded or state.get("run_id") or new_run_id()
    if run_id != recorded:
        write_run_id(folder, run_id)
    return run_id


def _log_option_changes(opt: dict[str, Any], state: dict[str, Any], state_path: str, logger: logging.Logger) -> None:
    """Log every option that differs from the ones saved in the state (all of them apply from here on)."""
    import yaml

    if "options" not in state:
        logger.info(f"{state_path} records no options (written by an older version): changes are not listed")
        return
    changes = option_diff(yaml.safe_load(state["options"]), opt)
    if changes:
        logger.warning(f"options changed since {state_path} was saved (saved -> now; applied from iteration "
                       f"{state['iter']} on):\n  " + "\n  ".join(changes))
    else:
        logger.info(f"options unchanged since {state_path} was saved")


def _position_for_batch_size(state: dict[str, Any], batch_in_epoch: int, batch_size: int, epoch: int,
                             logger: logging.Logger) -> int:
    """The saved position in the epoch, in batches of the current size (a changed size is logged)."""
    saved = int(state.get("batch_size", batch_size))
    if saved == batch_size:
        return batch_in_epoch
    done = batch_in_epoch * saved
    logger.warning(f"datasets.train.batch_size_per_gpu changed on resume ({saved} -> {batch_size}): the data order "
                   f"from here on differs from an uninterrupted run's; epoch {epoch} continues at sample "
                   f"{done // batch_size * batch_size} of this rank's share ({done} were used)")
    return done // batch_size


def _validate(model: Any, val_sets: list[tuple[str, Any]], opt: dict[str, Any], it: int, best: dict,
              tb: Any, logger: logging.Logger, device: torch.device, stop: _StopFlag) -> dict[str, dict[str, float]]:
    """Score every validation set (every rank its shard) and update ``best``; rank 0 logs. Returns the
    scores, ``{set name: {metric: value}}`` (the same on every rank; sets that failed are left out).

    A failing image (on any rank) is logged with its path and training continues; a stop signal ends
    the validation between two images (all ranks at the same one) so the state is saved in time.
    """
    val_opt = opt["val"]
    metrics = val_opt.get("metrics") or {}
    scores: dict[str, dict[str, float]] = {}
    with preserve_rng():  # validation must not change the training run's random streams
        for name, loader in val_sets:
            # each rank saves the images of its own shard (distinct files)
            save_dir = opt["path"]["visualization"] if val_opt.get("save_img") else None
            try:
                result = evaluate(model.inference, loader, metrics, device, save_dir=save_dir, suffix=str(it),
                                  max_images=val_opt.get("max_images"), per_image_dirs=True,
                                  should_stop=lambda: stop.signal is not None, images=model.evaluation_images,
                                  save_grid=bool(val_opt.get("save_grid")), on_grid=_grid_to_board(tb, name, it))
            except RestorationError as exc:
                # the checkpoint of this iteration is already saved; a bad validation image (its name is
                # in the message, whichever rank had it) must not end hours of training
                what = (str(exc) if isinstance(exc, EvaluationError)  # already "<ErrorName>: ... (rank r)"
                        else f"{type(exc).__name__}: {user_error_message(exc)}")
                logger.error(f"validation {name} @ iter {it} failed, training continues: {what}")
                continue
            preview = result.pop("_preview")
            if result.get("stopped"):  # the same on every rank: evaluate agreed on it
                logger.warning(f"validation {name} @ iter {it} stopped by a signal after {result['num_images']} "
                               "images; not scored")
                return scores
            msg = f"validation {name} @ iter {it}:"
            scores[name] = {metric: result[metric] for metric in metrics if metric in result}
            for metric, mopt in metrics.items():
                if metric not in result:
                    continue
                value = result[metric]
                higher = mopt.get("better", "higher") == "higher"
                record = best.setdefault(name, {}).get(metric)
                if value != value:  # NaN (a non-finite output, warned about by evaluate) is never the best
                    msg += f" {metric} nan"
                    continue
                if record is None or (value > record["value"] if higher else value < record["value"]):
                    best[name][metric] = {"value": value, "iter": it}
                b = best[name][metric]
                msg += f" {metric} {value:.4f} (best {b['value']:.4f} @ {b['iter']})"
                if tb is not None:
                    tb.add_scalar(f"metrics/{name}/{metric}", value, it)
            if tb is not None and preview is not None and not val_opt.get("save_grid"):  # else every grid is there
                tb.add_image(f"{name}/{preview[0]}", preview[1], it, dataformats="HWC")
            logger.info(f"{msg}; weights: {model.evaluated_weights()}")
    return scores


def _grid_to_board(tb: Any, dataset: str, it: int) -> Any:
    """``(image, LQ | SR | GT grid) → tensorboard`` under ``<dataset>/<image>`` at step ``it`` (rank 0's images;
    shrunk to at most :data:`TB_GRID_MAX_SIDE` pixels a side, the event file holds every validation's); None
    without tensorboard."""
    if tb is None:
        return None
    from restoration.utils.image_grid import thumbnail

    return lambda image, grid: tb.add_image(f"{dataset}/{image}", thumbnail(grid, TB_GRID_MAX_SIDE), it,
                                            dataformats="HWC")


#: Longest side of a validation grid in tensorboard (the full-size grid is in the visualization folder).
TB_GRID_MAX_SIDE = 1024


class _SkipWatch:
    """Counts iterations whose step was skipped (non-finite loss or gradient, see ``Trainer._skip``).

    A run that skips ``max_in_a_row`` iterations in a row, or every iteration it ran, is not training:
    it stops with :class:`TrainingStalledError` instead of reporting "training finished" (exit 0).
    """

    def __init__(self, model: Any, max_in_a_row: int) -> None:
        self.model = model
        self.max_in_a_row = max_in_a_row
        self.seen = model.skipped_steps  # a resumed state carries the earlier skips
        self.in_a_row = 0
        self.skipped_iters = 0
        self.steps = 0
        self.first_in_a_row = 0

    def after_step(self, it: int) -> None:
        self.steps += 1
        if self.model.skipped_steps == self.seen:
            self.in_a_row = 0
            return
        self.seen = self.model.skipped_steps  # several networks may skip in one iteration: count it once
        self.skipped_iters += 1
        self.in_a_row += 1
        if self.in_a_row == 1:
            self.first_in_a_row = it
        if self.max_in_a_row and self.in_a_row >= self.max_in_a_row:
            raise TrainingStalledError(
                f"iterations {self.first_in_a_row}-{it}: {self.in_a_row} steps in a row skipped (non-finite loss or "
                "gradient), the weights are not changing; lower the learning rate, set train.grad_clip or check the "
                "data, then resume from the last training state (limit: train.max_skipped_in_a_row)")

    def at_end(self, it: int) -> None:
        if self.steps and self.skipped_iters == self.steps:
            raise TrainingStalledError(
                f"every one of the {self.steps} steps up to iteration {it} was skipped (non-finite loss or gradient): "
                "nothing was trained; lower the learning rate, set train.grad_clip or check the data")


def _find_resumable_state(states_dir: str, restart_if_unreadable: bool, rank: int) -> str | None:
    """``--auto_resume``: the newest readable state; each unreadable one is reported with its reason.

    Raises:
        CheckpointError: States exist but none can be read (starting over silently would throw away the
            run), unless ``restart_if_unreadable``.
    """
    skipped: list[str] = []

    def report(path: str, reason: str) -> None:
        skipped.append(path)
        if rank == 0:
            get_logger().warning(f"--auto_resume: skipping {path}: {reason}")

    path = find_latest_state(states_dir, on_skip=report)
    if path is None and skipped:
        if not restart_if_unreadable:
            raise CheckpointError(
                f"--auto_resume: none of the {len(skipped)} training state(s) in {states_dir} can be read (see above); "
                "pass --restart_if_unreadable to start from scratch (the experiment folder is archived)")
        if rank == 0:
            get_logger().warning(f"--restart_if_unreadable: no readable state in {states_dir}; starting from scratch")
    return path


def _read_scalars(log: dict[str, Any], device: torch.device) -> dict[str, float]:
    """The step's logged values (0-d tensors or numbers) as floats, in one transfer: reading a GPU
    value waits for the GPU, so it happens on logging iterations only, and once for all of them."""
    if not log:
        return {}
    stacked = torch.stack([torch.as_tensor(v, dtype=torch.float32).to(device).reshape(()) for v in log.values()])
    return dict(zip(log, stacked.tolist()))


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
        opt = parse_options_all_ranks(args.opt, is_train=True, overrides=args.force_yml, debug=args.debug, root=args.root,
                                      notices=args.option_notices)
    except OptionsError as exc:
        if rank == 0:
            print(f"error: {exc}", file=sys.stderr)
        cleanup_dist()
        return 2
    opt["dist"], opt["rank"], opt["world_size"] = world_size > 1, rank, world_size
    if args.preview_degradations:  # look at the training pairs before spending GPU time on them
        from restoration.data.degradation_preview import PREVIEW_FILE, write_preview

        if rank == 0:
            path = os.path.join(opt["path"]["experiments_root"], PREVIEW_FILE)
            height, width = write_preview(opt, args.preview_degradations, path)
            get_logger().info(f"wrote {args.preview_degradations} training samples (GT | LQ) to {path} "
                              f"({width}x{height}); nothing was trained")
        finish_dist()
        return 0
    train_opt = opt["train"]
    with torch_settings(bool(train_opt.get("deterministic")), train_opt.get("tf32")):
        code = _run(args, opt, rank, world_size)
    finish_dist()  # the trainer and its DDP wrappers are out of scope here
    return code


def _run(args: argparse.Namespace, opt: dict[str, Any], rank: int, world_size: int) -> int:
    # ---- one run per experiment folder: rank 0 holds the lock for the whole run; a second run with the
    # same name stops here, before it reads a state or archives the folder of the run that holds it
    lock = RunLock(opt["path"]["experiments_root"])
    _on_main_rank(rank, lock.acquire)
    try:
        return _run_locked(args, opt, rank, world_size)
    finally:
        lock.release()  # after _undo_folders: a lock that made experiments/ removes it again when empty


def _run_locked(args: argparse.Namespace, opt: dict[str, Any], rank: int, world_size: int) -> int:
    paths = opt["path"]

    # ---- resume: an explicit state, or the newest complete one of this experiment
    state_path = paths.get("resume_state")
    if state_path is None and args.auto_resume:
        state_path = _find_resumable_state(paths["training_states"], args.restart_if_unreadable, rank)

    # ---- data, checked before anything is written: a data problem leaves no half-made experiment
    seed = int(opt["manual_seed"])
    seed_everything(seed + rank)
    device = select_device(opt["num_gpu"])
    train_dopt = opt["datasets"]["train"]
    train_set = build_dataset(train_dopt)
    train_loader, sampler = build_train_loader(train_set, train_dopt, seed, rank, world_size, device.type == "cuda")
    if len(train_loader) == 0:
        get_logger().error(f"the training set has {len(train_set)} images, fewer than one batch per rank")
        return 2
    gt_size = train_dopt.get("gt_size")
    check_image_files(train_set, "datasets.train", int(gt_size) if gt_size else None, int(opt["scale"]))
    val_sets = []
    for key, dopt in opt["datasets"].items():
        if key.startswith("val"):
            val_set = build_dataset(dopt)
            check_image_files(val_set, f"datasets.{key}", None, int(opt["scale"]))
            val_sets.append((dopt.get("name", key), build_eval_loader(val_set, dopt, rank, world_size)))

    # ---- folders and logs
    tb_existed = os.path.isdir(paths["tb_logger"])
    archived = _on_main_rank(rank, lambda: _prepare_folders(opt, resuming=state_path is not None))
    try:
        return _train_in_folders(args, opt, rank, world_size, state_path, device, train_set, train_loader,
                                 sampler, val_sets)
    except RestorationError:
        if rank == 0 and state_path is None:
            _undo_folders(opt, archived, tb_existed)
        raise


def _train_in_folders(args: argparse.Namespace, opt: dict[str, Any], rank: int, world_size: int,
                      state_path: str | None, device: torch.device, train_set: Any, train_loader: Any,
                      sampler: Any, val_sets: list[tuple[str, Any]]) -> int:
    paths, train_opt, train_dopt = opt["path"], opt["train"], opt["datasets"]["train"]
    seed = int(opt["manual_seed"])
    log_file = os.path.join(paths["log"], f"train_{opt['name']}_{opt['time']}.log")
    logger = get_logger(log_file if rank == 0 else None, rank)
    logger.info(run_header(opt, device, getattr(args, "option_notices", ())))
    for note in schedule_warnings(opt):  # a schedule longer than the training: allowed, probably unintended
        logger.warning(note)
    if rank == 0:
        dump_yaml(opt, os.path.join(paths["options"], os.path.basename(args.opt)))
        for folder in (paths["models"], paths["training_states"]):
            for name in remove_stale_temporaries(folder):
                logger.warning(f"removed {os.path.join(folder, name)}, left by a write that was killed")
    tb = make_tb_writer(paths["tb_logger"]) if rank == 0 and opt["logger"].get("use_tb_logger", True) else None
    logger.info(f"training on {len(train_set)} images ({len(train_loader)} batches/epoch/rank, world {world_size}), "
                f"validating on {[n for n, _ in val_sets]}, device {device}")

    # ---- model
    model = MODEL_REGISTRY.get(opt["model_type"])(opt, device, world_size)
    for name, net in model.networks.items():
        n_params = sum(p.numel() for p in net.parameters())
        logger.info(f"network {name} ({opt[f'network_{name}']['type']}): {n_params:,d} parameters")
    start_iter, epoch, batch_in_epoch, best = 0, 0, 0, {}
    state = load_training_state(state_path) if state_path is not None else None
    opt["run_id"] = _on_main_rank(rank, lambda: _claim_run_id(opt, state_path, state, args.resume_foreign))
    if rank == 0:  # logger.wandb: the same scalars and images as tensorboard, into the run of this folder's run id
        tb = add_wandb(tb, opt, os.path.join(paths["options"], os.path.basename(args.opt)))
    if state is not None:
        _log_option_changes(opt, state, state_path, logger)
        if state.get("world_size", world_size) != world_size:
            logger.warning(f"resuming a {state['world_size']}-process run on {world_size} processes: "
                           "the data order and random streams will differ")
        saved_threads = state.get("torch_threads")
        if device.type == "cpu" and saved_threads is not None and saved_threads != torch.get_num_threads():
            logger.warning(f"resuming a run saved with {saved_threads} torch threads on {torch.get_num_threads()}: "
                           "CPU sums split by thread, so it follows the original to float tolerance, not bit for "
                           f"bit (set OMP_NUM_THREADS={saved_threads} for an exact continuation)")
        model.load_training_state(state)
        start_iter, epoch, batch_in_epoch = int(state["iter"]), int(state["epoch"]), int(state["batch_in_epoch"])
        batch_in_epoch = _position_for_batch_size(state, batch_in_epoch, int(train_dopt.get("batch_size_per_gpu", 1)),
                                                  epoch, logger)
        # the validation of the saved iteration ran after the save: its record lies beside the state
        best = read_best_record(state_path, start_iter, state.get("run_id")) or state.get("best", {})
        model.load_metric_schedule_state(read_schedule_record(state_path, start_iter, state.get("run_id")) or {})
        restore_rank_rng(state["rng"], rank, seed, start_iter)
        rank_states = state.get("rank_states") or []
        if rank < len(rank_states):
            model.load_rank_state(rank_states[rank])
        logger.info(f"resumed from {state_path} at iteration {start_iter} (epoch {epoch})")

    # ---- loop
    stop = _StopFlag()
    old_handlers = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    total_iter = int(train_opt["total_iter"])
    print_freq = int(opt["logger"]["print_freq"])
    save_freq = int(opt["logger"]["save_checkpoint_freq"])
    val_freq = int((opt.get("val") or {}).get("val_freq", 0) or 0) if opt.get("val") else 0
    progress = ProgressLogger(total_iter, start_iter, tb)
    batch_size = int(train_dopt.get("batch_size_per_gpu", 1))
    it = start_iter
    accum_iter, micro = model.accum_iter, 0  # micro-batches per optimizer step; states are saved between steps
    stopped = False
    skips = _SkipWatch(model, int(train_opt.get("max_skipped_in_a_row") or 0))
    t_data = time.time()
    try:
        while it < total_iter and not stopped:
            sampler.set_epoch(epoch, batch_in_epoch * batch_size)
            # On GPUs the next batch is copied on a side stream while the current one trains.
            batches = CUDAPrefetcher(train_loader, device) if device.type == "cuda" else train_loader
            for batch in batches:
                data_time = time.time() - t_data
                batch_in_epoch += 1
                with model.micro_batch(micro):
                    log = model.optimize_parameters(model.feed_data(batch), it + 1)
                micro = (micro + 1) % accum_iter
                if micro:  # the step's next micro-batch (gradient accumulation)
                    continue
                it += 1
                skips.after_step(it)
                if it % print_freq == 0 or it == total_iter:
                    values = _read_scalars(log, device)
                    progress(logger, {"iter": it, "epoch": epoch, "lr": model.current_lr(),
                                      "iter_time": time.time() - t_data, "data_time": data_time, **values})
                # save before validating: a validation problem can never cost the checkpoint
                if it % save_freq == 0 or it == total_iter:
                    _save(model, opt, it, epoch, batch_in_epoch, best, rank)
                    logger.info(f"saved models and training state at iteration {it}")
                if val_freq and (it % val_freq == 0 or it == total_iter) and val_sets:
                    with model.evaluation_point():  # a schedule-free optimizer's averaged weights
                        scores = _validate(model, val_sets, opt, it, best, tb, logger, device, stop)
                    model.after_validation(scores)  # ReduceLROnPlateau: every rank feeds the same gathered scores
                    if rank == 0 and (it % save_freq == 0 or it == total_iter):  # the state saved above lacks it
                        write_best_record(paths["training_states"], it, opt["run_id"], best)
                        if model.metric_schedule_state():
                            write_schedule_record(paths["training_states"], it, opt["run_id"],
                                                  model.metric_schedule_state())
                if any_across_ranks(stop.signal is not None):
                    if it % save_freq != 0 and it != total_iter:
                        _save(model, opt, it, epoch, batch_in_epoch, best, rank)
                    logger.warning(f"stopped by signal at iteration {it}; training state saved — "
                                   "continue with --auto_resume")
                    stopped = True
                    break
                if it >= total_iter:
                    break
                t_data = time.time()
            else:
                epoch, batch_in_epoch = epoch + 1, 0
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if tb is not None:
            tb.close()
    if not stopped:
        skips.at_end(it)
        logger.info(f"training finished at iteration {it}; best: {best}")
    close_file_handlers()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
