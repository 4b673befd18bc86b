"""Logging: one named logger (file + console on rank 0), training-progress lines, tensorboard."""

from __future__ import annotations

import collections
import logging
import sys
import time
from typing import Any, Mapping

__all__ = ["get_logger", "ProgressLogger", "format_eta", "make_tb_writer"]

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


def format_eta(seconds: float) -> str:
    """``1 d 20:38:05``, ``20:38:05`` or ``0:04:10``: whole seconds, days spelt out (``timedelta``'s ``1 day,``
    is longer and reads like a list)."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    clock = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days} d {clock}" if days else clock


class ProgressLogger:
    """Formats one progress line and feeds tensorboard, e.g.::

        [epoch   3, iter    1,200/500,000, lr 2.000e-04] 3.10 it/s (last 100), eta 1 d 20:38:05 | l_pix: 1.2e-02

    The rate is the iterations per second over the last ``window`` iterations (at least; measured between
    logging calls, so a window ends on a logged iteration), and the ETA the remaining iterations at that rate:
    a validation or a slow start long ago no longer weighs on it. Until ``window`` iterations have passed the
    rate counts every iteration of this process. The last iteration's ``iter_time`` and ``data_time`` go to
    tensorboard (``train/iter_time``, ``train/data_time``) beside ``train/iters_per_second``, not into the line.

    Args:
        total_iter: Last iteration. ``start_iter``: first iteration of this process (after a resume), so
            the rate and ETA only count work done here.
        window: Iterations the rate is averaged over.
        clock: Seconds from a fixed point (tests pass their own); default :func:`time.monotonic`.
    """

    def __init__(self, total_iter: int, start_iter: int, tb_writer: Any = None, window: int = 100,
                 clock: Any = time.monotonic) -> None:
        self.total_iter = total_iter
        self.start_iter = start_iter
        self.window = window
        self.clock = clock
        self.tb_writer = tb_writer
        self.marks: collections.deque[tuple[int, float]] = collections.deque([(start_iter, clock())])

    def rate(self, it: int) -> tuple[float, int]:
        """``(iterations per second, iterations it was measured over)`` up to iteration ``it`` (now)."""
        now = self.clock()
        # the newest mark at least `window` iterations back (else the oldest: the start of this process)
        while len(self.marks) > 1 and it - self.marks[1][0] >= self.window:
            self.marks.popleft()
        first_it, first_time = self.marks[0]
        self.marks.append((it, now))
        done = max(it - first_it, 1)
        return done / max(now - first_time, 1e-9), done

    def __call__(self, logger: logging.Logger, log: Mapping[str, Any]) -> str:
        it, epoch = log["iter"], log["epoch"]
        rate, over = self.rate(it)
        eta = format_eta((self.total_iter - it) / max(rate, 1e-9))
        msg = f"[epoch {epoch:3d}, iter {it:8,d}/{self.total_iter:,d}, lr {log['lr']:.3e}] "
        msg += f"{rate:.2f} it/s (last {over:,d}), eta {eta} "
        for key, value in log.items():
            if key in ("iter", "epoch", "lr", "iter_time", "data_time"):
                continue
            msg += f"| {key}: {value:.4e} "
            if self.tb_writer is not None:
                self.tb_writer.add_scalar(f"losses/{key}", value, it)
        if self.tb_writer is not None:
            self.tb_writer.add_scalar("train/lr", log["lr"], it)
            for key in ("iter_time", "data_time"):
                if key in log:
                    self.tb_writer.add_scalar(f"train/{key}", log[key], it)
            self.tb_writer.add_scalar("train/iters_per_second", rate, it)
        logger.info(msg.rstrip())
        return msg.rstrip()


def make_tb_writer(log_dir: str) -> Any:
    """A tensorboard ``SummaryWriter`` (imported here so tensorboard stays off the import path)."""
    from torch.utils.tensorboard import SummaryWriter  # heavy dependency

    return SummaryWriter(log_dir=log_dir)
