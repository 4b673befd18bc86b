"""Logging: one named logger (file + console on rank 0), training-progress lines, tensorboard."""

from __future__ import annotations

import datetime
import logging
import sys
import time
from typing import Any, Mapping

__all__ = ["get_logger", "ProgressLogger", "make_tb_writer"]

LOGGER_NAME = "restoration"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is *now* (it may be redirected after the logger is set up)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; ignore
        pass


def get_logger(log_file: str | None = None, rank: int = 0, level: int = logging.INFO) -> logging.Logger:
    """The ``restoration`` logger. Rank 0 logs to stderr and ``log_file``; other ranks only log errors."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.propagate = False
    if rank != 0:
        logger.setLevel(logging.ERROR)
        return logger
    logger.setLevel(level)
    fmt = logging.Formatter("%(asctime)s %(levelname)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        stream = _StderrHandler()
        stream.setFormatter(fmt)
        logger.addHandler(stream)
    if log_file and not any(getattr(h, "baseFilename", None) == log_file for h in logger.handlers):
        handler = logging.FileHandler(log_file, mode="a")
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return logger


def close_file_handlers() -> None:
    """Detach file handlers (tests and repeated runs in one process open new log files).

    Closing flushes: on a full disk that fails. It is called on the way out of a run, often while an
    error is being reported, so a failing close is one line on stderr, never an exception that would
    replace the error being reported (or turn a finished run into a traceback).
    """
    logger = logging.getLogger(LOGGER_NAME)
    for h in list(logger.handlers):
        if isinstance(h, logging.FileHandler):
            logger.removeHandler(h)
            try:
                h.close()
            except OSError as exc:
                print(f"warning: could not finish the log file {h.baseFilename}: {exc.strerror or exc}",
                      file=sys.stderr)


class ProgressLogger:
    """Formats one progress line: epoch, iteration, lr, iteration rate, ETA, losses; feeds tensorboard.

    Args:
        total_iter: Last iteration. ``start_iter``: first iteration of this process (after a resume), so
            the rate and ETA only count work done here.
    """

    def __init__(self, total_iter: int, start_iter: int, tb_writer: Any = None) -> None:
        self.total_iter = total_iter
        self.start_iter = start_iter
        self.start_time = time.time()
        self.tb_writer = tb_writer

    def __call__(self, logger: logging.Logger, log: Mapping[str, Any]) -> str:
        it, epoch = log["iter"], log["epoch"]
        elapsed = time.time() - self.start_time
        done = max(it - self.start_iter, 1)
        rate = done / max(elapsed, 1e-9)
        eta = datetime.timedelta(seconds=int((self.total_iter - it) / max(rate, 1e-9)))
        msg = f"[epoch {epoch:3d}, iter {it:8,d}/{self.total_iter:,d}, lr {log['lr']:.3e}] "
        msg += f"{rate:.2f} it/s, iter_time {log.get('iter_time', 0):.3f}s, data_time {log.get('data_time', 0):.3f}s, eta {eta} "
        for key, value in log.items():
            if key in ("iter", "epoch", "lr", "iter_time", "data_time"):
                continue
            msg += f"| {key}: {value:.4e} "
            if self.tb_writer is not None:
                self.tb_writer.add_scalar(f"losses/{key}", value, it)
        if self.tb_writer is not None:
            self.tb_writer.add_scalar("train/lr", log["lr"], it)
            self.tb_writer.add_scalar("train/iter_time", log.get("iter_time", 0), it)
            self.tb_writer.add_scalar("train/iters_per_second", rate, it)
        logger.info(msg)
        return msg


def make_tb_writer(log_dir: str) -> Any:
    """A tensorboard ``SummaryWriter`` (imported here so tensorboard stays off the import path)."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=log_dir)
