"""Validation during training: every rank scores its shard, the best records are kept, rank 0 logs."""

from __future__ import annotations

import logging
from typing import Any

import torch

from restoration.errors import EvaluationError, RestorationError, user_error_message
from restoration.evaluation import evaluate
from restoration.settings import ValSettings
from restoration.training.ranks import StopFlag
from restoration.utils.image_grid import thumbnail
from restoration.utils.rng import preserve_rng

__all__ = ["validate", "grid_to_board", "TB_GRID_MAX_SIDE"]


def validate(model: Any, val_sets: list[tuple[str, Any]], val: ValSettings, it: int, best: dict, *,
             visualization: str, tb: Any, logger: logging.Logger, device: torch.device,
             stop: StopFlag) -> dict[str, dict[str, float]]:
    """Score every validation set (every rank its shard) and update ``best``; rank 0 logs. Returns the
    scores, ``{set name: {metric: value}}`` (the same on every rank; sets that failed are left out).

    A failing image (on any rank) is logged with its path and training continues; a stop signal ends
    the validation between two images (all ranks at the same one) so the state is saved in time.
    """
    metrics = val.metrics or {}
    scores: dict[str, dict[str, float]] = {}
    with preserve_rng():  # validation must not change the training run's random streams
        for name, loader in val_sets:
            # each rank saves the images of its own shard (distinct files)
            save_dir = visualization if val.save_img else None
            try:
                result = evaluate(model.inference, loader, metrics, device, save_dir=save_dir, suffix=str(it),
                                  max_images=val.max_images, per_image_dirs=True,
                                  should_stop=lambda: stop.signal is not None, images=model.evaluation_images,
                                  save_grid=val.save_grid, on_grid=grid_to_board(tb, name, it))
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
            if tb is not None and preview is not None and not val.save_grid:  # else every grid is there
                tb.add_image(f"{name}/{preview[0]}", preview[1], it, dataformats="HWC")
            logger.info(f"{msg}; weights: {model.evaluated_weights()}")
    return scores


def grid_to_board(tb: Any, dataset: str, it: int) -> Any:
    """``(image, LQ | SR | GT grid) → tensorboard`` under ``<dataset>/<image>`` at step ``it`` (rank 0's images;
    shrunk to at most :data:`TB_GRID_MAX_SIDE` pixels a side, the event file holds every validation's); None
    without tensorboard."""
    if tb is None:
        return None
    return lambda image, grid: tb.add_image(f"{dataset}/{image}", thumbnail(grid, TB_GRID_MAX_SIDE), it,
                                            dataformats="HWC")


#: Longest side of a validation grid in tensorboard (the full-size grid is in the visualization folder).
TB_GRID_MAX_SIDE = 1024
