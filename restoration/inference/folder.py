"""Restore a planned list of images (:func:`restoration.inference.output_plan.plan_outputs`), one at a time.

A failing image is reported by name and the rest continue; an output folder the machine refuses to write
(:class:`~restoration.errors.DiskWriteError`: a file in its place, no permission, a full disk) stops the run,
since every later image would fail the same way.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from restoration.errors import DiskWriteError, RestorationError, user_error_message
from restoration.inference.image_files import make_folder
from restoration.inference.output_plan import OutputJob
from restoration.utils.logger import get_logger

__all__ = ["FolderReport", "restore_jobs"]


@dataclass
class FolderReport:
    """What :func:`restore_jobs` did: images restored, skipped (output exists), failed (their file names), and
    the seconds it took."""

    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """``3 image(s) restored in 1.2 s (0.40 s/image), 1 skipped (...), 1 failed: a.png``."""
        return (f"{self.done} image(s) restored in {self.seconds:.1f} s"
                + (f" ({self.seconds / self.done:.2f} s/image)" if self.done else "")
                + (f", {self.skipped} skipped (output exists; --overwrite)" if self.skipped else "")
                + (f", {len(self.failed)} failed: {', '.join(self.failed)}" if self.failed else ""))


def restore_jobs(jobs: Sequence[OutputJob], restore: Callable[[OutputJob], None], out_dir: Path,
                 overwrite: bool = False, progress: bool = True) -> FolderReport:
    """Create ``out_dir`` and run ``restore`` on every job whose output does not exist yet (every job with
    ``overwrite``); an image that fails is logged as one line (a bug: with its traceback) and counted.

    Raises:
        DiskWriteError: ``out_dir`` or an output cannot be written; nothing half-written is left.
    """
    logger = get_logger()
    make_folder(out_dir)
    report = FolderReport()
    start = time.perf_counter()
    bar = tqdm(jobs, unit="img", disable=None if progress else True, file=sys.stderr)
    try:
        for job in bar:
            bar.set_postfix_str(job.src.name, refresh=False)
            if job.dst.exists() and not overwrite:
                report.skipped += 1
                continue
            try:
                restore(job)
                report.done += 1
            except DiskWriteError:
                raise
            except RestorationError as exc:
                report.failed.append(job.src.name)
                logger.error(f"{job.src}: {type(exc).__name__}: {user_error_message(exc)}")
            except Exception as exc:  # a bug or an unexpected failure: keep its traceback, go on with the rest
                report.failed.append(job.src.name)
                logger.error(f"{job.src}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    finally:
        bar.close()
    report.seconds = time.perf_counter() - start
    return report
