"""Benchmark a network (and optional baselines) on every test dataset of validated test options.

What ``test.py`` (:mod:`restoration.cli.test`) runs once the options are read. Results:
``results/<name>/metrics.json`` (``{dataset: {metric: average, ..., "per_image": {...}}}``),
``results/<name>/visualization/<dataset>/<image>.png`` and ``results/<name>/test_<name>_<time>.log``, whose
top names the package versions, the device, the options and the weights file. An existing ``results/<name>`` is
archived to ``results/<name>_archived_<time>``, never overwritten. ``results/<name>/index.md`` shows the tables,
per-image scores and thumbnails (:mod:`restoration.utils.results_page`). A run that stops on a problem with the
user's files (missing weights, an unreadable image) leaves no results folder: :func:`undo_results_folder`
removes the new one and puts an archived one back.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import sys
from typing import Any, Callable, Mapping

import torch
from torch import Tensor

from restoration.archs.build import build_network
from restoration.cli.run_header import run_header
from restoration.data.loader import build_dataset, build_eval_loader
from restoration.evaluation import evaluate, format_table
from restoration.inference import InferenceSettings, predictor_for
from restoration.options.yaml_io import dump_yaml
from restoration.published_scores import differences_from_published, published_scores
from restoration.registry import METRIC_REGISTRY, MODEL_REGISTRY
from restoration.run_context import RunContext
from restoration.utils.logger import close_file_handlers, get_logger
from restoration.utils.results_page import PAGE_FILE, write_results_page
from restoration.utils.weights import entry_note

__all__ = ["prepare_results_folder", "undo_results_folder", "run_benchmark", "protocol_line"]


def prepare_results_folder(opt: Mapping[str, Any], options_file: str, start_time: str) -> str | None:
    """(Rank 0) Make ``path.results_root`` afresh, an earlier run's folder archived to
    ``<results_root>_archived_<start_time>[_n]``, and save the options in it as ``basename(options_file)``.

    Returns:
        The archived folder, or None when there was none.
    """
    results_root = opt["path"]["results_root"]
    archived = None
    if os.path.isdir(results_root):  # an earlier run's results are kept, as experiments/ are
        archived = f"{results_root}_archived_{start_time}"
        for n in range(1, 100):  # two runs in the same second
            if not os.path.exists(archived):
                break
            archived = f"{results_root}_archived_{start_time}_{n}"
        os.rename(results_root, archived)
    os.makedirs(results_root, exist_ok=True)
    dump_yaml(opt, os.path.join(results_root, os.path.basename(options_file)))
    return archived


def undo_results_folder(results_root: str, archived: str | None) -> None:
    """(Rank 0) Remove the results folder of a run that failed on the user's files and put the archived one
    back: no folder of half a benchmark is left to be mistaken for a result. Says so on stderr (the error
    itself is the caller's to report)."""
    close_file_handlers()
    shutil.rmtree(results_root, ignore_errors=True)
    if archived is not None:
        os.rename(archived, results_root)
    print(f"removed the results folder {results_root} of this failed run"
          + (f"; {archived} restored" if archived else ""), file=sys.stderr)


def _write_json(path: str, data: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def _describe_weights(path: str, param_key: str | None) -> str:
    """``loaded weights <path> (sha256 1a2b3c4d5e6f, entry 'params_ema')``: which file and which of its entries
    the numbers below come from."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"loaded weights {os.path.abspath(path)} (sha256 {digest.hexdigest()[:12]}, {entry_note(path, param_key)})"


def protocol_line(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """The line under a table saying how each metric was measured and which way is better, e.g.
    ``protocol: psnr Y channel, crop 4, higher is better; niqe crop 0, lower is better``.

    Channel and crop come from the metric's options, else its own defaults (its signature); ``better`` is the
    framework's key (default higher).
    """
    parts = []
    for name, m in metrics.items():
        params = inspect.signature(METRIC_REGISTRY.get(m["type"])).parameters
        opts = {**{k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}, **m}
        how = []
        if "test_y_channel" in params:
            how.append("Y channel" if opts.get("test_y_channel") else "RGB")
        if "crop_border" in params and "crop_border" in opts:
            how.append(f"crop {opts['crop_border']}")
        parts.append(f"{name} " + ", ".join([*how, f"{m.get('better', 'higher')} is better"]))
    return "protocol: " + "; ".join(parts)


def _baseline(net_opt: Mapping[str, Any], device: torch.device,
              val_opt: Mapping[str, Any]) -> Callable[[Tensor], Tensor]:
    """A ``baselines:`` entry (a network without weights: Bicubic, Identity, ...) as a restorer: the network run
    through its own predictor with the ``val:`` settings (tiles, ensemble), float32 ``(B, C', h*s, w*s)``."""
    predictor = predictor_for(build_network(net_opt).to(device).eval(), InferenceSettings.from_val_options(val_opt))
    return lambda lq: predictor(lq).float()


def run_benchmark(opt: dict[str, Any], context: RunContext, notices: list[str], archived: str | None) -> None:
    """Everything after the results folder exists (:func:`prepare_results_folder`), on every rank: the log, the
    model of ``model_type`` with ``path.pretrain_network_g`` and each ``baselines:`` network evaluated on every
    ``test*``/``val*`` dataset, the tables in the log, then (rank 0) metrics.json, baselines.json and index.md.
    ``context`` is this process (its device, rank, the option file and start time the log and page name).

    Raises:
        RestorationError: A problem with the user's files (weights, images); the caller undoes the folder.
    """
    paths, rank, world_size, device = opt["path"], context.rank, context.world_size, context.device
    log_file = os.path.join(paths["log"], f"test_{opt['name']}_{context.start_time}.log")
    logger = get_logger(log_file if rank == 0 else None, rank)
    logger.info(run_header(opt, device, notices))
    if archived:
        logger.info(f"existing results folder archived to {archived}")
    val_opt = opt.get("val") or {}
    metrics = val_opt.get("metrics") or {}
    tile = val_opt.get("tile")
    notes = []
    if tile:
        notes.append(f"tiled inference: tile {tile['tile_size']}, overlap {tile.get('tile_overlap', 32)}")
    if val_opt.get("self_ensemble"):
        notes.append("x8 self-ensemble")
    networks = [opt["network_g"], *opt.get("baselines", [])]  # the first is the model under test
    loaders = [(dopt.get("name", key), build_eval_loader(build_dataset(dopt), dopt, rank, world_size))
               for key, dopt in opt["datasets"].items() if key.split("_")[0] in ("test", "val")]
    per_network: list[dict[str, Any]] = []
    weights_line = None
    for index, net_opt in enumerate(networks):
        is_main_net = index == 0
        if is_main_net:  # the trainer of model_type, with the weights of path.pretrain_network_g
            model = MODEL_REGISTRY.get(opt["model_type"])(opt, device, world_size, is_train=False)
            restore = model.inference
            if not paths.get("pretrain_network_g") and any(True for _ in model.networks["g"].parameters()):
                logger.warning("path.pretrain_network_g is not set: testing randomly initialised weights")
            elif paths.get("pretrain_network_g"):
                weights_line = _describe_weights(paths["pretrain_network_g"], paths.get("param_key_g"))
                logger.info(weights_line)
        else:
            restore = _baseline(net_opt, device, val_opt)
        results: dict[str, Any] = {}
        for name, loader in loaders:
            save_dir = os.path.join(paths["visualization"], name) if is_main_net and val_opt.get("save_img", True) else None
            res = evaluate(restore, loader, metrics, device, save_dir=save_dir,
                           suffix=val_opt.get("suffix"), progress=rank == 0 and val_opt.get("pbar", True))
            res.pop("_preview")
            if notes:
                res["notes"] = notes
            results[name] = res
            for image, scores in res["per_image"].items():
                logger.info(f"{net_opt['type']} {name} {image}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        per_network.append(results)
    main_results = per_network[0]
    baselines = {net_opt["type"]: r for net_opt, r in zip(networks[1:], per_network[1:])}
    metric_names = list(metrics)
    tables = {}
    for name, _ in loaders:
        rows = {networks[0]["type"]: main_results[name], **{label: r[name] for label, r in baselines.items()}}
        published = published_scores(paths.get("pretrain_network_g"), name, metrics, opt["scale"])
        if published:
            rows["published (paper)"] = published
            main_results[name]["published"] = published
            differ = differences_from_published(main_results[name], published)
            if differ:
                main_results[name]["differs_from_published"] = differ
        title = f"{name} ({main_results[name]['num_images']} images)" + (f" [{'; '.join(notes)}]" if notes else "")
        scored = [m for m in metric_names if any(m in row for row in rows.values())]  # no columns of "-"
        tables[name] = format_table(rows, scored, title) + "\n" + protocol_line({m: metrics[m] for m in scored})
        logger.info("\n" + tables[name])
        for line in main_results[name].get("differs_from_published", []):
            logger.warning(f"{name}: {line}")
    if rank == 0:
        _write_json(os.path.join(paths["results_root"], "metrics.json"), main_results)
        if baselines:
            _write_json(os.path.join(paths["results_root"], "baselines.json"), baselines)
        header = [weights_line or "weights: randomly initialised (path.pretrain_network_g not set)",
                  f"options: {context.opt_path}", f"time: {context.start_time}"]
        write_results_page(paths["results_root"], opt["name"], header, tables, main_results, metric_names,
                           val_opt.get("suffix"))
        logger.info(f"results written to {paths['results_root']} (overview: {PAGE_FILE})")
