"""Evaluate a model on one dataset: restore, score, save images — on every rank, results merged.

Each rank restores its own shard of the images (``ShardSampler``); per-image scores are gathered on
all ranks, so every rank returns the same averages. Rank rules: every rank reaches every collective,
whether its images succeed, fail or run out first, so no rank waits on another into a timeout.
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from restoration.errors import DataError, EvaluationError, RestorationError, user_error_message
from restoration.registry import METRIC_REGISTRY
from restoration.utils.dist import all_gather_objects, get_dist_info, max_across_ranks
from restoration.utils.image_grid import comparison_row, to_rgb
from restoration.utils.image_io import imwrite, tensor2img

__all__ = ["evaluate", "image_name", "image_path", "format_table"]

_LOGGER = logging.getLogger("restoration")


def image_path(batch: Mapping[str, Any]) -> str:
    """The full path (or LMDB key) of the batch's (first) ground-truth image, else its LQ image."""
    path = batch.get("gt_path") or batch.get("lq_path") or ["image"]
    return str(path[0] if isinstance(path, (list, tuple)) else path)


def image_name(batch: Mapping[str, Any]) -> str:
    """The file stem of the batch's (first) ground-truth image, else its LQ image."""
    path = batch.get("gt_path") or batch.get("lq_path") or ["image"]
    path = path[0] if isinstance(path, (list, tuple)) else path
    return os.path.splitext(os.path.basename(str(path)))[0]


def evaluate(
    restore: Callable[[torch.Tensor], torch.Tensor],
    loader: DataLoader,
    metrics: Mapping[str, Mapping[str, Any]],
    device: torch.device,
    save_dir: str | None = None,
    suffix: str | None = None,
    max_images: int | None = None,
    progress: bool = False,
    per_image_dirs: bool = False,
    should_stop: Callable[[], bool] | None = None,
    images: Callable[[Mapping[str, Any]], tuple[torch.Tensor, torch.Tensor | None]] | None = None,
    save_grid: bool = False,
    on_grid: Callable[[str, np.ndarray], None] | None = None,
) -> dict[str, Any]:
    """Restore every image of ``loader`` and compute ``metrics`` on uint8-rounded RGB outputs.

    Args:
        restore: ``(1,C,h,w) [0,1] → (1,C,H,W)``, e.g. :meth:`SRModel.inference`.
        loader: Batch-1 evaluation loader (see ``build_eval_loader``).
        metrics: ``{name: {type: calculate_psnr, crop_border: 2, test_y_channel: true}}``.
        save_dir: Where to write ``<image>[_<suffix>].png`` (None: do not save); with
            ``per_image_dirs`` in ``<save_dir>/<image>/`` (BasicSR's validation layout).
        max_images: At most this many images per rank.
        should_stop: Asked before each image (e.g. "has a SIGTERM arrived?"); when it is true on any rank,
            every rank stops before its next image and the result says ``"stopped": True``.
        images: ``batch → (output, target or None)``, how a batch is restored and what it is scored against
            (:meth:`~restoration.models.base_model.Trainer.evaluation_images`); default:
            ``restore(batch['lq'])`` against ``batch.get('gt')``.
        save_grid: Also write ``<stem>[_<suffix>]_grid.png`` beside each saved output (with ``save_dir``):
            ``LQ | SR | GT`` (:func:`~restoration.utils.image_grid.comparison_row`, the LQ upsampled nearest;
            ``LQ | SR`` without a ground truth), and hand each grid to ``on_grid``.
        on_grid: With ``save_grid``: called as ``on_grid(stem, grid)`` for every image this rank restores
            (uint8 RGB ``(H, W, 3)``), e.g. to send it to tensorboard.

    An output ``(1, T, C, H, W)`` (a clip, against a target of the same shape) is scored frame by frame: the
    clip's score is the mean over its frames, and each frame is saved as ``<clip>_<t>[_<suffix>].png``.

    Metrics marked ``no_reference = True`` (e.g. ``calculate_noise_sigma``) score every output, with or
    without ground truth; the others score the images that have one, and a dataset without any ground
    truth skips them with one notice (``"skipped"`` in the result lists them).

    Every rank takes the same steps: before each image the ranks agree, in one small all-reduce, whether
    any of them still has an image, was asked to stop or failed. A failure or a stop on one rank thus ends
    the loop on every rank at the same step, and no rank waits in a collective another never reaches.

    Returns:
        ``{metric: average, ..., "per_image": {image: {metric: value}}}``, identical on every rank.
        Averages are over the images each metric scored; ``"num_images"`` counts all restored images.
        ``"_preview"`` holds this rank's first ``(name, uint8 RGB image)`` for tensorboard.
        An output with a non-finite value (a diverged network) scores NaN on every metric, with a
        warning naming the image, so the average is NaN too: never a finite score from a cast.

    Raises:
        DataError: A metric cannot be computed on an image (e.g. smaller than SSIM's window); names the file.
            An image that cannot be read raises ``ImageReadError``. With several ranks, every rank raises
            :class:`EvaluationError` instead, naming the failing ranks' images.
    """
    fns = {name: METRIC_REGISTRY.get(m["type"]) for name, m in metrics.items()}
    kwargs = {name: {k: v for k, v in m.items() if k not in ("type", "better")} for name, m in metrics.items()}
    per_image: dict[str, dict[str, float]] = {}
    preview: tuple[str, np.ndarray] | None = None
    iterator: Any = loader
    if progress:
        iterator = tqdm(loader, unit="img", leave=False)
    batches = iter(iterator)
    failure: RestorationError | None = None
    stopped = False
    for i in itertools.count():
        batch = None
        if failure is None and (max_images is None or i < max_images):
            try:
                batch = next(batches, None)
            except RestorationError as exc:  # an image that cannot be read, from the dataset
                failure = exc
        has_image, stop, failed = max_across_ranks(
            [batch is not None, bool(should_stop is not None and should_stop()), failure is not None])
        if failed or stop or not has_image:
            stopped = bool(stop) and not failed
            break
        if batch is None:
            continue  # this rank's share is done; it keeps agreeing until every rank's is
        try:
            name, scores, out_imgs = _restore_and_score(images or _default_images(restore, device), batch, fns,
                                                        kwargs)
        except RestorationError as exc:
            failure = exc  # every rank learns of it at the next step
            continue
        per_image[name] = scores
        if preview is None:
            preview = (name, out_imgs[0][1])
        try:
            folder = None if save_dir is None else os.path.join(save_dir, name) if per_image_dirs else save_dir
            _save_images(batch, out_imgs, folder, suffix, save_grid, on_grid)
        except RestorationError as exc:  # a full disk, a read-only folder: every rank learns of it at the next step
            failure = exc
    world = get_dist_info()[1]
    own_failure = None if failure is None else f"{type(failure).__name__}: {user_error_message(failure)}"
    parts = all_gather_objects((per_image, own_failure))
    failures = [f"{text} (rank {r})" for r, (_, text) in enumerate(parts) if text is not None]
    if failure is not None and world == 1:
        raise failure
    if failures:
        raise EvaluationError("; ".join(failures)) from failure
    merged: dict[str, dict[str, float]] = {}
    for part, _ in parts:
        merged.update(part)
    result: dict[str, Any] = {}
    skipped = []
    for metric in metrics:
        values = [s[metric] for s in merged.values() if metric in s]
        if values:
            result[metric] = float(np.mean(values))
        else:
            skipped.append(metric)
    if skipped and merged:
        _LOGGER.info(f"no ground truth in this dataset: {', '.join(skipped)} skipped (they compare with one)")
        result["skipped"] = skipped
    result["num_images"] = len(merged)
    result["per_image"] = dict(sorted(merged.items()))
    result["_preview"] = preview
    if stopped:
        result["stopped"] = True
    return result


def _save_images(batch: Mapping[str, Any], out_imgs: list[tuple[str, np.ndarray]], folder: str | None,
                 suffix: str | None, save_grid: bool, on_grid: Callable[[str, np.ndarray], Any] | None) -> None:
    """Write the restored images of one batch into ``folder`` (None: none), and their comparison grids (into
    ``folder`` and/or ``on_grid``) with ``save_grid``."""
    if folder is not None:
        for stem, out_img in out_imgs:
            imwrite(os.path.join(folder, f"{stem}_{suffix}.png" if suffix else f"{stem}.png"), out_img)
    if save_grid and (folder is not None or on_grid is not None):
        for stem, grid in _grids(batch, out_imgs):
            if folder is not None:
                imwrite(os.path.join(folder, f"{stem}_{suffix}_grid.png" if suffix else f"{stem}_grid.png"), grid)
            if on_grid is not None:
                on_grid(stem, grid)


def _default_images(restore: Callable[[torch.Tensor], torch.Tensor],
                    device: torch.device) -> Callable[[Mapping[str, Any]], tuple[torch.Tensor, torch.Tensor | None]]:
    """``batch → (restore(batch['lq']), batch.get('gt'))``: an image restorer's evaluation pair."""
    return lambda batch: (restore(batch["lq"].to(device)), batch.get("gt"))


def _grids(batch: Mapping[str, Any], out_imgs: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """``[(stem, LQ | SR | GT grid)]`` for the restored frames of ``batch`` (``LQ | SR`` without ``gt``;
    ``SR`` alone without ``lq``, or when the frame counts differ)."""
    lqs = [tensor2img(f) for f in _frames(batch["lq"])] if "lq" in batch else []
    gts = [tensor2img(f) for f in _frames(batch["gt"])] if "gt" in batch else []
    out = []
    for t, (stem, sr) in enumerate(out_imgs):
        gt = gts[t] if len(gts) == len(out_imgs) else None
        out.append((stem, comparison_row(lqs[t], sr, gt) if len(lqs) == len(out_imgs) else to_rgb(sr)))
    return out


def _frames(tensor: torch.Tensor) -> list[torch.Tensor]:
    """The ``(C, H, W)`` frames of the batch's first item: one for ``(1, C, H, W)``, T for ``(1, T, C, H, W)``."""
    first = tensor[0].detach().cpu()
    return list(first) if first.dim() == 4 else [first]


def _restore_and_score(
    images: Callable[[Mapping[str, Any]], tuple[torch.Tensor, torch.Tensor | None]],
    batch: Mapping[str, Any],
    fns: Mapping[str, Callable[..., float]],
    kwargs: Mapping[str, Mapping[str, Any]],
) -> tuple[str, dict[str, float], list[tuple[str, np.ndarray]]]:
    """One image or clip: ``(name, {metric: value}, [(file stem, uint8 RGB output)])``, a clip's scores the
    means over its frames; a metric's ValueError becomes a DataError."""
    name = image_name(batch)
    output, target = images(batch)
    outputs = _frames(output)
    finite = all(bool(torch.isfinite(o).all()) for o in outputs)
    if not finite:
        _LOGGER.warning(f"the restored {image_path(batch)} has non-finite values: its metrics are NaN")
        outputs = [torch.nan_to_num(o) for o in outputs]  # the saved image shows the rest; the scores say NaN
    out_imgs = [tensor2img(o) for o in outputs]
    gt_imgs = [tensor2img(t) for t in _frames(target)] if target is not None else None
    if gt_imgs is not None and len(gt_imgs) != len(out_imgs):
        raise DataError(f"{image_path(batch)}: {len(out_imgs)} restored frame(s) against {len(gt_imgs)} target frame(s)")
    scores: dict[str, float] = {}
    for metric, fn in fns.items():
        if gt_imgs is None and not getattr(fn, "no_reference", False):
            continue  # needs a ground truth this image does not have
        try:
            values = [float(fn(out_img, gt_imgs[t] if gt_imgs is not None else None, **kwargs[metric]))
                      for t, out_img in enumerate(out_imgs)]
        except ValueError as exc:  # metrics refuse shapes they cannot score with ValueError
            raise DataError(f"{metric} of {image_path(batch)}: {exc}") from exc
        scores[metric] = float(np.mean(values)) if finite else float("nan")
    stems = [name] if output.dim() != 5 else [f"{name}_{t}" for t in range(len(out_imgs))]
    return name, scores, list(zip(stems, out_imgs))


def format_table(rows: Mapping[str, Mapping[str, Any]], metrics: list[str], title: str) -> str:
    """A plain-text table: one row per network/dataset, one column per metric."""
    width = max([len(r) for r in rows] + [8])
    head = f"{title}\n{'':<{width}}  " + "  ".join(f"{m:>10}" for m in metrics)
    lines = [head]
    for row, values in rows.items():
        cells = "  ".join(f"{values[m]:>10.4f}" if m in values else f"{'-':>10}" for m in metrics)
        lines.append(f"{row:<{width}}  {cells}")
    return "\n".join(lines)


