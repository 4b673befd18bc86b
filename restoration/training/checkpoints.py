"""Saving a training run and finding, checking and re-entering the state it continues from."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import yaml

from restoration.errors import CheckpointError
from restoration.utils.best_metrics import forget_best_record
from restoration.utils.checkpoint import TMP_PREFIX, atomic_save, find_latest_state, prune_checkpoints
from restoration.utils.dist import all_gather_objects, any_across_ranks, gather_objects_on_main
from restoration.utils.experiment_folder import new_run_id, read_run_id, write_run_id
from restoration.utils.logger import get_logger
from restoration.utils.resume_checks import check_run_id, option_diff, options_text
from restoration.utils.rng import get_rng_state

__all__ = ["Position", "save_checkpoint", "claim_run_id", "log_option_changes", "position_for_batch_size", "find_resumable_state"]


@dataclass
class Position:
    """Where a run stands: optimizer steps done, the epoch, and the batches of that epoch already used."""

    iteration: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


def save_checkpoint(model: Any, opt: Mapping[str, Any], position: Position, best: dict, *, rank: int,
                    run_id: str | None, batch_size: int, keep_last: int) -> None:
    """Write ``training_states/<iter>.state`` and, for every network the trainer holds (``g``, a GAN's ``d``),
    ``models/net_<name>_<iter>.pth`` and ``net_<name>_latest.pth`` (``{'params'}`` + ``'params_ema'`` where the
    network has an EMA, BasicSR's layout), atomically and all or nothing (rank 0 writes; every rank takes part,
    its random streams and rank state are gathered).

    ``best`` is the best-metric record; ``opt`` is recorded as text (the options a resume compares with);
    ``keep_last`` training states and numbered weights of each network are kept (0: all).

    Raises:
        CheckpointError: A file could not be written; this iteration's state and numbered weights are
            removed again and every ``*_latest.pth`` is the previous one.
    """
    it, epoch, batch_in_epoch = position.iteration, position.epoch, position.batch_in_epoch
    rng = all_gather_objects(get_rng_state())  # every rank's streams, so every rank resumes exactly
    own = model.rank_state()
    rank_states = gather_objects_on_main(own) if any_across_ranks(bool(own)) else None
    if rank != 0:
        return
    paths = opt["path"]
    state = {"iter": it, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "rng": rng, "best": best,
             "world_size": len(rng), "torch_threads": torch.get_num_threads(),
             "batch_size": batch_size, "run_id": run_id, "options": options_text(opt), **model.training_state()}
    if rank_states is not None:
        state["rank_states"] = rank_states
    state_file = os.path.join(paths["training_states"], f"{it}.state")
    forget_best_record(paths["training_states"], it)  # of an earlier pass through this iteration
    # The state first and the latest files last: a save that fails half-way never leaves a *_latest.pth
    # ahead of the newest state (--auto_resume would continue from an older point than it shows). The
    # latest files are staged under temporary names and renamed only once every file is written, so they
    # change together (net_g_latest last) or not at all.
    atomic_save(state, state_file)
    weights = model.network_states()
    written = [state_file]
    staged: list[tuple[str, str]] = []
    try:
        for name, files in weights.items():
            numbered = os.path.join(paths["models"], f"net_{name}_{it}.pth")
            written.append(numbered)
            atomic_save(files, numbered)
        for name in sorted(weights, key=lambda n: n == "g"):  # g's latest file is renamed last
            latest = os.path.join(paths["models"], f"net_{name}_latest.pth")
            stage = os.path.join(paths["models"], f"{TMP_PREFIX}net_{name}_latest.pth")
            staged.append((stage, latest))
            atomic_save(weights[name], stage)
        for stage, latest in staged:
            try:
                os.replace(stage, latest)
            except OSError as exc:  # a rename in the folder just written: not expected to fail
                raise CheckpointError(f"cannot write {latest}: {exc.strerror or exc}") from exc
    except CheckpointError:
        # nothing half-made: this iteration's state and weights go together, or none stays
        for path in written + [stage for stage, _ in staged]:
            if os.path.exists(path):
                os.remove(path)
        raise
    prune_checkpoints(paths["training_states"], r"^(\d+)\.state$", keep_last)
    for name in weights:
        prune_checkpoints(paths["models"], rf"^net_{re.escape(name)}_(\d+)\.pth$", keep_last)


def claim_run_id(opt: dict[str, Any], state_path: str | None, state: dict[str, Any] | None,
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


def log_option_changes(opt: dict[str, Any], state: dict[str, Any], state_path: str, logger: logging.Logger) -> None:
    """Log every option that differs from the ones saved in the state (all of them apply from here on)."""
    if "options" not in state:
        logger.info(f"{state_path} records no options (written by an older version): changes are not listed")
        return
    changes = option_diff(yaml.safe_load(state["options"]), opt)
    if changes:
        logger.warning(f"options changed since {state_path} was saved (saved -> now; applied from iteration "
                       f"{state['iter']} on):\n  " + "\n  ".join(changes))
    else:
        logger.info(f"options unchanged since {state_path} was saved")


def position_for_batch_size(state: dict[str, Any], batch_in_epoch: int, batch_size: int, epoch: int,
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


def find_resumable_state(states_dir: str, restart_if_unreadable: bool, rank: int) -> str | None:
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
