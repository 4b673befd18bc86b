"""One training run of one process, as a story: prepare → start (or resume) → step … validate … save → finish.

:meth:`TrainingRun.train` is the whole loop; every other method is one chapter of it. The command
(:mod:`restoration.cli.train`) reads the options, starts the process group and holds the experiment's lock;
it hands this object a validated option dict, its typed sections (:class:`~restoration.settings.RunSettings`)
and the process's :class:`~restoration.run_context.RunContext`. A trainer is known only through the calls of
the trainer contract (:mod:`restoration.models.base_model`).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from typing import Any

import torch

from restoration.data.base_dataset import COMMON_OPTIONS
from restoration.data.loader import CUDAPrefetcher, build_dataset, build_eval_loader, build_train_loader, check_image_files
from restoration.data.progressive_patches import PatchStages
from restoration.errors import RestorationError
from restoration.cli.run_header import run_header
from restoration.options.schedule_warnings import schedule_warnings
from restoration.settings import RunSettings, TrainSettings
from restoration.options.yaml_io import dump_yaml
from restoration.registry import MODEL_REGISTRY
from restoration.run_context import RunContext
from restoration.schema import bind_options
from restoration.training.checkpoints import (
    Position,
    claim_run_id,
    find_resumable_state,
    log_option_changes,
    position_for_batch_size,
    save_checkpoint,
)
from restoration.training.folders import prepare_folders, undo_folders
from restoration.training.ranks import StopFlag, on_main_rank
from restoration.training.skip_watch import SkipWatch
from restoration.training.validation import validate
from restoration.utils.best_metrics import read_best_record, write_best_record
from restoration.utils.checkpoint import load_training_state, remove_stale_temporaries
from restoration.utils.dist import any_across_ranks
from restoration.utils.logger import ProgressLogger, close_file_handlers, get_logger, make_tb_writer
from restoration.utils.rng import restore_rank_rng, seed_everything
from restoration.utils.schedule_records import read_schedule_record, write_schedule_record
from restoration.utils.stop_signals import STOP_SIGNALS
from restoration.utils.wandb_writer import add_wandb

__all__ = ["TrainingRun", "read_scalars"]


def read_scalars(log: dict[str, Any], device: torch.device) -> dict[str, float]:
    """The step's logged values (0-d tensors or numbers) as floats, in one transfer: reading a GPU
    value waits for the GPU, so it happens on logging iterations only, and once for all of them."""
    if not log:
        return {}
    stacked = torch.stack([torch.as_tensor(v, dtype=torch.float32).to(device).reshape(()) for v in log.values()])
    return dict(zip(log, stacked.tolist()))


class TrainingRun:
    """The training of one process: its data, folders, logs, trainer, position and best scores.

    Args:
        opt: The validated option dict (defaults and paths resolved).
        settings: Its typed framework sections (``settings.train`` is set: this is training).
        context: This process (rank, world size, device).
        args: The command's flags (``auto_resume``, ``restart_if_unreadable``, ``resume_foreign``, ``opt``,
            ``option_notices``).
    """

    def __init__(self, opt: dict[str, Any], settings: RunSettings, context: RunContext,
                 args: argparse.Namespace) -> None:
        assert settings.train is not None, "a training run needs a train: section (the option check requires it)"
        self.opt, self.settings, self.context, self.args = opt, settings, context, args
        self.train_settings: TrainSettings = settings.train
        self.paths: dict[str, str] = opt["path"]
        self.train_dopt: dict[str, Any] = opt["datasets"]["train"]
        loader_opt = {**self.train_dopt, **bind_options(self.train_dopt, COMMON_OPTIONS)}
        self.batch_size: int = loader_opt["batch_size_per_gpu"]
        # datasets.train.mini_batch_sizes / gt_sizes / iters: each iteration's subset and patch of the loader's batch
        self.patches = PatchStages(loader_opt, int(opt["manual_seed"]), context.rank, int(opt["scale"]))
        self.position = Position()
        self.best: dict[str, Any] = {}
        self.state_path: str | None = None
        self.stop = StopFlag()
        self.tb: Any = None
        self.model: Any = None

    # ------------------------------------------------------------------------------------------ the story
    def train(self) -> int:
        """Prepare, start, loop over the data until ``train.total_iter`` or a stop signal; the exit code."""
        if not self.prepare():
            return 2
        tb_existed = os.path.isdir(self.paths["tb_logger"])
        archived = on_main_rank(self.context.rank, lambda: prepare_folders(self.opt, self.state_path is not None,
                                                                               self.context.start_time))
        try:
            self.start()
            return self.loop()
        except RestorationError:
            if self.context.is_main and self.state_path is None:  # a failed fresh start leaves the disk as it was
                undo_folders(self.opt, archived, tb_existed)
            raise

    def loop(self) -> int:
        """The iterations: step, log, save, validate, stop on a signal; then the end-of-run checks."""
        total, pos = self.train_settings.total_iter, self.position
        skips = SkipWatch(self.model, self.train_settings.max_skipped_in_a_row)
        progress = ProgressLogger(total, pos.iteration, self.tb)
        old_handlers = {s: signal.signal(s, self.stop) for s in STOP_SIGNALS}
        stopped, micro, t_data = False, 0, time.time()
        try:
            while pos.iteration < total and not stopped:
                self.sampler.set_epoch(pos.epoch, pos.batch_in_epoch * self.batch_size)
                for batch in self.batches():
                    data_time = time.time() - t_data
                    pos.batch_in_epoch += 1
                    log, micro = self.step(batch, micro)
                    if micro:  # the step's next micro-batch (gradient accumulation)
                        continue
                    pos.iteration += 1
                    skips.after_step(pos.iteration)
                    if self.due(self.settings.logger.print_freq):
                        progress(self.logger, {"iter": pos.iteration, "epoch": pos.epoch, "lr": self.model.current_lr(),
                                               "iter_time": time.time() - t_data, "data_time": data_time,
                                               **read_scalars(log, self.context.device)})
                    saved = self.due(self.settings.logger.save_checkpoint_freq)
                    if saved:  # before validating: a validation problem can never cost the checkpoint
                        self.save()
                    if self.due(self.settings.val_freq) and self.val_sets:
                        self.validate(saved)
                    if any_across_ranks(self.stop.signal is not None):
                        stopped = self.save_on_stop(saved)
                        break
                    if pos.iteration >= total:
                        break
                    t_data = time.time()
                else:
                    pos.epoch, pos.batch_in_epoch = pos.epoch + 1, 0
        finally:
            for s, h in old_handlers.items():
                signal.signal(s, h)
            if self.tb is not None:
                self.tb.close()
        if not stopped:
            skips.at_end(pos.iteration)
            self.logger.info(f"training finished at iteration {pos.iteration}; best: {self.best}")
        close_file_handlers()
        return 0

    # ------------------------------------------------------------------------------------------ chapters
    def prepare(self) -> bool:
        """The state to resume from, the seed, the device's data: checked before anything is written, so a
        data problem leaves no half-made experiment. False when the training set has no full batch."""
        rank, world_size, scale = self.context.rank, self.context.world_size, int(self.opt["scale"])
        self.state_path = self.paths.get("resume_state")
        if self.state_path is None and self.args.auto_resume:
            self.state_path = find_resumable_state(self.paths["training_states"], self.args.restart_if_unreadable, rank)
        seed = int(self.opt["manual_seed"])
        seed_everything(seed + rank)
        self.train_set = build_dataset(self.train_dopt)
        self.train_loader, self.sampler = build_train_loader(self.train_set, self.train_dopt, seed, rank, world_size,
                                                             self.context.device.type == "cuda")
        if len(self.train_loader) == 0:
            get_logger().error(f"the training set has {len(self.train_set)} images, fewer than one batch per rank")
            return False
        gt_size = self.train_dopt.get("gt_size")
        check_image_files(self.train_set, "datasets.train", int(gt_size) if gt_size else None, scale)
        self.val_sets = []
        for key, dopt in self.opt["datasets"].items():
            if key.startswith("val"):
                val_set = build_dataset(dopt)
                check_image_files(val_set, f"datasets.{key}", None, scale)
                self.val_sets.append((dopt.get("name", key), build_eval_loader(val_set, dopt, rank, world_size)))
        return True

    def start(self) -> None:
        """Logs, the saved options, the trainer and its networks; then the resume, when there is a state."""
        opt, paths, rank = self.opt, self.paths, self.context.rank
        log_file = os.path.join(paths["log"], f"train_{opt['name']}_{self.context.start_time}.log")
        self.logger = get_logger(log_file if rank == 0 else None, rank)
        self.logger.info(run_header(opt, self.context.device, getattr(self.args, "option_notices", ())))
        for note in schedule_warnings(opt):  # a schedule longer than the training: allowed, probably unintended
            self.logger.warning(note)
        options_copy = os.path.join(paths["options"], os.path.basename(self.args.opt))
        if rank == 0:
            dump_yaml(opt, options_copy)
            for folder in (paths["models"], paths["training_states"]):
                for name in remove_stale_temporaries(folder):
                    self.logger.warning(f"removed {os.path.join(folder, name)}, left by a write that was killed")
        self.tb = make_tb_writer(paths["tb_logger"]) if rank == 0 and self.settings.logger.use_tb_logger else None
        self.logger.info(f"training on {len(self.train_set)} images ({len(self.train_loader)} batches/epoch/rank, "
                         f"world {self.context.world_size}), validating on {[n for n, _ in self.val_sets]}, "
                         f"device {self.context.device}")
        self.model = MODEL_REGISTRY.get(opt["model_type"])(opt, self.context.device, self.context.world_size,
                                                            is_train=True)
        for name, net in self.model.networks.items():
            n_params = sum(p.numel() for p in net.parameters())
            self.logger.info(f"network {name} ({opt[f'network_{name}']['type']}): {n_params:,d} parameters")
        state = load_training_state(self.state_path) if self.state_path is not None else None
        run_id = on_main_rank(rank, lambda: claim_run_id(opt, self.state_path, state, self.args.resume_foreign))
        self.context = self.context.with_run_id(run_id)
        if rank == 0:  # logger.wandb: the same scalars and images as tensorboard, into the run of this folder's run id
            self.tb = add_wandb(self.tb, opt, options_copy, run_id)
        if state is not None:
            self.resume(state)

    def resume(self, state: dict[str, Any]) -> None:
        """Continue from ``state``: the trainer's members, the position, the best scores, every random stream."""
        logger, rank, device, path = self.logger, self.context.rank, self.context.device, str(self.state_path)
        log_option_changes(self.opt, state, path, logger)
        if state.get("world_size", self.context.world_size) != self.context.world_size:
            logger.warning(f"resuming a {state['world_size']}-process run on {self.context.world_size} processes: "
                           "the data order and random streams will differ")
        saved_threads = state.get("torch_threads")
        if device.type == "cpu" and saved_threads is not None and saved_threads != torch.get_num_threads():
            logger.warning(f"resuming a run saved with {saved_threads} torch threads on {torch.get_num_threads()}: "
                           "CPU sums split by thread, so it follows the original to float tolerance, not bit for "
                           f"bit (set OMP_NUM_THREADS={saved_threads} for an exact continuation)")
        self.model.load_training_state(state)
        it, epoch = int(state["iter"]), int(state["epoch"])
        batch = position_for_batch_size(state, int(state["batch_in_epoch"]), self.batch_size, epoch, logger)
        self.position = Position(it, epoch, batch)
        # the validation of the saved iteration ran after the save: its record lies beside the state
        self.best = read_best_record(path, it, state.get("run_id")) or state.get("best", {})
        self.model.load_metric_schedule_state(read_schedule_record(path, it, state.get("run_id")) or {})
        restore_rank_rng(state["rng"], rank, int(self.opt["manual_seed"]), it)
        rank_states = state.get("rank_states") or []
        if rank < len(rank_states):
            self.model.load_rank_state(rank_states[rank])
        logger.info(f"resumed from {path} at iteration {it} (epoch {epoch})")

    def batches(self) -> Any:
        """This epoch's batches; on GPUs the next batch is copied on a side stream while the current one trains."""
        return CUDAPrefetcher(self.train_loader, self.context.device) if self.context.device.type == "cuda" \
            else self.train_loader

    def step(self, batch: Any, micro: int) -> tuple[dict[str, Any], int]:
        """One micro-batch of the optimizer step ``iteration + 1``; its log and the next micro-batch index (0: the
        optimizer step is complete)."""
        iteration = self.position.iteration + 1
        note = self.patches.announcement(iteration, self.context.world_size) if micro == 0 else None
        if note:
            self.logger.info(note)
        batch = self.patches(batch, iteration, micro)  # progressive training: this stage's batch and patch
        with self.model.micro_batch(micro):
            log = self.model.optimize_parameters(self.model.feed_data(batch), iteration)
        return log, (micro + 1) % self.model.accum_iter

    def due(self, every: float) -> bool:
        """Whether something done ``every`` iterations (0: never) is due now; always at the last iteration."""
        it, every = self.position.iteration, int(every)
        return every > 0 and (it % every == 0 or it == self.train_settings.total_iter)

    def save(self) -> None:
        """The weights and the training state of this iteration (atomic; every rank takes part)."""
        save_checkpoint(self.model, self.opt, self.position, self.best, rank=self.context.rank,
                        run_id=self.context.run_id, batch_size=self.batch_size, keep_last=self.settings.logger.keep_last)
        self.logger.info(f"saved models and training state at iteration {self.position.iteration}")

    def validate(self, saved: bool) -> None:
        """Score the validation sets with the evaluated weights; when this iteration's state was just saved,
        the best scores and a metric-driven schedule are recorded beside it (the state itself predates them)."""
        assert self.settings.val is not None
        it = self.position.iteration
        with self.model.evaluation_point():  # a schedule-free optimizer's averaged weights
            scores = validate(self.model, self.val_sets, self.settings.val, it, self.best,
                              visualization=self.paths["visualization"], tb=self.tb, logger=self.logger,
                              device=self.context.device, stop=self.stop)
        self.model.after_validation(scores)  # ReduceLROnPlateau: every rank feeds the same gathered scores
        if self.context.is_main and saved:
            write_best_record(self.paths["training_states"], it, self.context.run_id, self.best)
            if self.model.metric_schedule_state():
                write_schedule_record(self.paths["training_states"], it, self.context.run_id,
                                      self.model.metric_schedule_state())

    def save_on_stop(self, saved: bool) -> bool:
        """A stop signal reached a rank: save (unless this iteration just was) so ``--auto_resume`` continues here."""
        if not saved:
            self.save()
        self.logger.warning(f"stopped by signal at iteration {self.position.iteration}; training state saved — "
                            "continue with --auto_resume")
        return True
