"""Weights & Biases logging (``logger.wandb``), an optional extra: ``pip install -e ".[wandb]"``.

:class:`WandbWriter` takes the tensorboard writer's calls (``add_scalar``, ``add_image``, ``close``), so the
progress lines and validation feed it exactly what tensorboard gets (losses, lr, iteration time, metrics,
validation previews); :class:`FanOutWriter` hands each call to both. Only rank 0 logs (the loop builds it
there only). The run's id is ``logger.wandb.resume_id`` when set, else the experiment folder's run id
(:mod:`restoration.utils.experiment_folder`, also saved in every training state), so a resumed experiment
continues the same wandb run; its files lie under ``<experiment>/wandb/``.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Mapping

__all__ = ["WANDB_PIP_LINE", "wandb_enabled", "wandb_installed", "wandb_problem", "WandbWriter", "FanOutWriter", "add_wandb"]

#: What a user runs to get the extra.
WANDB_PIP_LINE = 'pip install -e ".[wandb]"'


def wandb_installed() -> bool:
    """Whether the ``wandb`` package can be imported (looked up, not imported: it is slow to import)."""
    return importlib.util.find_spec("wandb") is not None


def wandb_enabled(opt: Mapping[str, Any]) -> bool:
    """Whether ``logger.wandb`` asks for wandb: a ``project`` is set (BasicSR's files carry ``project: ~``, off)."""
    logger = opt.get("logger") if isinstance(opt.get("logger"), Mapping) else {}
    wandb_opt = logger.get("wandb")
    return isinstance(wandb_opt, Mapping) and bool(wandb_opt.get("project"))


def wandb_problem(opt: Mapping[str, Any]) -> str | None:
    """The option problem of ``logger.wandb`` on this machine: set while the package is missing."""
    if wandb_enabled(opt) and not wandb_installed():
        return f"'logger.wandb' is set but the wandb package is not installed: {WANDB_PIP_LINE} (or pip install wandb)"
    return None


class WandbWriter:
    """A wandb run that takes tensorboard ``SummaryWriter`` calls.

    Args:
        wandb_opt: ``logger.wandb``: ``project``, optional ``entity``, ``resume_id``, ``mode``
            (``online`` / ``offline`` / ``disabled``; unset: wandb's default, ``WANDB_MODE`` included).
        run_id: The id to create or continue (``resume_id`` wins when set).
        folder: The experiment folder (wandb writes ``<folder>/wandb/``).
        name: The run's display name (the experiment name).
        config: The resolved options, shown as the run's config.
        option_file: The option file, uploaded with the run.
    """

    def __init__(self, wandb_opt: Mapping[str, Any], run_id: str, folder: str, name: str, config: Mapping[str, Any],
                 option_file: str | None = None) -> None:
        import wandb  # optional dependency

        kwargs: dict[str, Any] = {"project": wandb_opt["project"], "id": wandb_opt.get("resume_id") or run_id,
                                  "resume": "allow", "dir": folder, "name": name, "config": dict(config)}
        if wandb_opt.get("entity"):
            kwargs["entity"] = wandb_opt["entity"]
        if wandb_opt.get("mode"):
            kwargs["mode"] = wandb_opt["mode"]
        self._wandb = wandb
        self.run = wandb.init(**kwargs)
        if option_file and os.path.isfile(option_file):
            self.run.save(option_file, base_path=os.path.dirname(option_file), policy="now")

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """One scalar at iteration ``step`` (wandb drops steps below the last one logged, with a warning)."""
        self.run.log({tag: float(value)}, step=int(step))

    def add_image(self, tag: str, image: Any, step: int, dataformats: str = "HWC") -> None:
        """One image, ``(H, W, C)`` uint8 (tensorboard's ``dataformats='HWC'``, the only one the loop uses)."""
        if dataformats != "HWC":
            raise ValueError(f"WandbWriter.add_image takes HWC images, got {dataformats}")
        self.run.log({tag: self._wandb.Image(image)}, step=int(step))

    def close(self) -> None:
        self.run.finish()


class FanOutWriter:
    """Hands each ``add_scalar`` / ``add_image`` / ``close`` to every writer (tensorboard and wandb)."""

    def __init__(self, *writers: Any) -> None:
        self.writers = [w for w in writers if w is not None]

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        for w in self.writers:
            w.add_scalar(*args, **kwargs)

    def add_image(self, *args: Any, **kwargs: Any) -> None:
        for w in self.writers:
            w.add_image(*args, **kwargs)

    def close(self) -> None:
        for w in self.writers:
            w.close()


def add_wandb(tb: Any, opt: Mapping[str, Any], option_file: str | None, run_id: str) -> Any:
    """``tb`` unchanged without ``logger.wandb``; else a writer feeding both (wandb alone without tensorboard).
    Call on rank 0 only, with the experiment folder's run id (the wandb run continued by a resume)."""
    if not wandb_enabled(opt):
        return tb
    wandb_opt = opt["logger"]["wandb"]
    writer = WandbWriter(wandb_opt, str(run_id), opt["path"]["experiments_root"], str(opt["name"]), opt,
                         option_file)
    return FanOutWriter(tb, writer) if tb is not None else writer
