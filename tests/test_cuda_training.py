"""One-GPU training through the real entry points: every architecture family in fp32, bf16 and
fp16 (+ GradScaler), channels_last, ``torch.compile`` with EMA, resume, validation PSNR and the host
synchronisations of a training step.

Part of the GPU proof (``python -m pytest -m cuda``, see docs/gpu.md); without CUDA every test skips.
Each test trains a tiny network for a few iterations (seconds on one GPU); the 2-rank run is in
``tests/test_cuda_distributed.py`` and the attention backends in ``tests/test_cuda_attention.py``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from restoration.archs import families
from restoration.data.loader import build_dataset, build_eval_loader
from restoration.evaluation import evaluate
from restoration.models.sr_model import SRModel
from restoration.options.yaml_io import load_yaml
from restoration.cli.train import main as train_main
from tests.helpers import make_sr_pairs, train_options, write_options

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (GPU proof: pytest -m cuda, docs/gpu.md)"),
]

ROOT = Path(__file__).resolve().parents[1]
DEVICE = torch.device("cuda", 0)

# family -> (scale, tiny network_g, training crop on GT, trainer). Tiny but with every block type of
# the family; DSwinIR's neighbourhood attention on 'reference' here: its CUDA backends (flex, natten)
# compile per shape, which costs a minute for a whole U-Net; they are proven against the reference in
# tests/test_cuda_attention.py and timed in scripts/benchmark/gpu_report.py.
FAMILIES: dict[str, tuple[int, dict[str, Any], int, str]] = {
    "SwinIR": (2, {"type": "SwinIR", "upscale": 2, "in_chans": 3, "img_size": 8, "window_size": 4, "img_range": 1.0,
                   "depths": [2], "embed_dim": 8, "num_heads": [2], "mlp_ratio": 2, "drop_path_rate": 0.2,
                   "upsampler": "pixelshuffledirect", "resi_connection": "1conv"}, 16, "SRModel"),
    "HAT": (2, {"type": "HAT", "upscale": 2, "in_chans": 3, "img_size": 8, "window_size": 4, "compress_ratio": 2,
                "squeeze_factor": 4, "depths": [2], "embed_dim": 8, "num_heads": [2], "mlp_ratio": 2,
                "upsampler": "pixelshuffle", "resi_connection": "1conv"}, 16, "SRModel"),
    "DSwinIR": (1, {"type": "DSwinIR", "dim": 6, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                    "heads": [3, 3, 3, 3], "kernel_size": [3, 3, 1, 1], "ffn_expansion_factor": 1,
                    "attn_backend": "reference"}, 32, "SRModel"),
    "TBSN": (1, {"type": "TBSN", "dim": 4, "num_blocks": [1, 1, 1], "num_refinement_blocks": 0,
                 "channel_heads": [1, 1, 1], "spatial_heads": [1, 1, 1], "spatial_dim_head": 2}, 64, "TBSNModel"),
}


def _community(name: str, scale: int, gt_size: int, **overrides: Any) -> tuple[int, dict[str, Any], int, str]:
    """A community family's entry from its descriptor's tiny configuration (``Family.tiny``), at ``scale``."""
    tiny = next(f.tiny[name] for f in families() if name in f.tiny)
    return scale, {"type": name, **tiny.kwargs, **overrides}, gt_size, "SRModel"


# The community families: the SR networks at x2 (16² GT crops, 8² LR), NAFNet and Restormer as denoisers at x1
# (32² crops: multiples of their 2**levels). Their CUDA autocast casts are checked on the CPU first
# (tests/test_cuda_autocast_families.py).
FAMILIES.update({
    "RRDBNet": _community("RRDBNet", 2, 16),
    "SRVGGNetCompact": _community("SRVGGNetCompact", 2, 16),
    "EDSR": _community("EDSR", 2, 16, upscale=2),
    "RCAN": _community("RCAN", 2, 16),
    "DAT": _community("DAT", 2, 16),
    "SPAN": _community("SPAN", 2, 16),
    "NAFNet": _community("NAFNet", 1, 32),
    "Restormer": _community("Restormer", 1, 32),
})
PRECISIONS = {"fp32": False, "bf16": "bf16", "fp16": "fp16"}
_PSNR = re.compile(r"validation tiny_val @ iter (\d+): psnr (-?[\d.]+|nan|inf)")
_LOSS = re.compile(r"\| l_pix: (\S+)")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Path]]:
    """Paired PNGs per scale: x2 (32² GT) and x1 (64² GT, for the denoisers)."""
    root = tmp_path_factory.mktemp("cuda_data")
    return {2: make_sr_pairs(root / "x2", n=6, size=32, scale=2), 1: make_sr_pairs(root / "x1", n=4, size=64, scale=1)}


def family_options(data: dict[int, tuple[Path, Path]], family: str, name: str, **overrides: Any) -> dict[str, Any]:
    """A 12-iteration one-GPU run of ``family``: checkpoints at 6 and 12, validation (PSNR) at 12.

    12 iterations, because fp16's GradScaler starts at a scale of 2**16 and halves it at every
    overflowing step: TBSN's [0, 255] values overflow the first few steps.
    """
    scale, net, gt_size, trainer = FAMILIES[family]
    opt = train_options(data[scale], name, **{
        "num_gpu": 1, "scale": scale, "model_type": trainer, "network_g": dict(net),
        "datasets.train.gt_size": gt_size, "train.total_iter": 12, "val.val_freq": 12, "val.save_img": False,
        "val.metrics": {"psnr": {"type": "calculate_psnr", "crop_border": scale, "test_y_channel": scale > 1}},
        "logger.save_checkpoint_freq": 6, "logger.use_tb_logger": False,
    })
    if trainer == "TBSNModel":  # PD 2 on 64² crops: the network sees 32² (TBSN needs multiples of 32)
        opt["train"].update(pd_train=2, pd_test=2, refine_passes=2)
    for key, value in overrides.items():
        node = opt
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return opt


def run_training(opt: dict[str, Any], root: Path, *extra: str) -> str:
    """``train.py`` in this process; returns the experiment's log text (asserts a clean exit)."""
    cfg = write_options(opt, root / f"{opt['name']}.yml")
    code = train_main(["-opt", str(cfg), "--root", str(root), *extra])
    exp = Path(opt.get("path", {}).get("experiments_root") or root / "experiments" / opt["name"])
    logs = sorted(exp.glob(f"train_{opt['name']}_*.log"))
    text = "\n".join(p.read_text() for p in logs)
    assert code == 0, f"train.py exited with {code}:\n{text[-3000:]}"
    return text


def weights(exp: Path, it: int) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(exp / "models" / f"net_g_{it}.pth", weights_only=True)


def max_abs_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(torch.where(a[g][k] == b[g][k], 0.0, (a[g][k].float() - b[g][k].float()).abs()).max())
               for g in a for k in a[g])  # equal entries count 0 (TBSN's -inf mask buffers)


# ------------------------------------------------------------------------------ every family, every precision
@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_trains_on_one_gpu(data, tmp_path: Path, family: str, precision: str) -> None:
    opt = family_options(data, family, f"{family}_{precision}", **{"train.mixed_precision": PRECISIONS[precision]})
    log = run_training(opt, tmp_path)
    exp = tmp_path / "experiments" / opt["name"]
    assert "device cuda:0" in log
    losses = [float(v) for v in _LOSS.findall(log)]
    assert len(losses) == 12 and all(math.isfinite(v) for v in losses), f"losses {losses}"
    (it, psnr), = _PSNR.findall(log)
    assert it == "12" and math.isfinite(float(psnr)) and float(psnr) > 5, f"validation PSNR {psnr} dB"
    w6, w12 = weights(exp, 6), weights(exp, 12)
    assert not any(v.isnan().any() for v in w12["params"].values())  # (TBSN's mask buffers hold -inf)
    assert max_abs_diff(w6, w12) > 0, "no step between iterations 6 and 12 changed the weights"
    state = torch.load(exp / "training_states" / "12.state", weights_only=True)
    # fp16 trains under a GradScaler (its scale is saved for resume); fp32/bf16 have none
    assert bool(state["scaler"]) == (precision == "fp16"), state["scaler"]
    if precision == "fp16":
        assert 0 < state["scaler"]["scale"] < math.inf


def test_gpu_validation_psnr_matches_a_cpu_evaluation(data, tmp_path: Path) -> None:
    """The PSNR logged by GPU validation is what the saved EMA weights score on the CPU (±0.05 dB:
    cuDNN's TF32 convolutions change a few rounded output pixels)."""
    opt = family_options(data, "SwinIR", "val_check")
    log = run_training(opt, tmp_path)
    gpu_psnr = float(_PSNR.findall(log)[0][1])
    exp = tmp_path / "experiments" / "val_check"
    cpu_opt = {**opt, "num_gpu": 0,
               "path": {"pretrain_network_g": str(exp / "models" / "net_g_12.pth"), "param_key_g": "params_ema"}}
    model = SRModel(cpu_opt, torch.device("cpu"), is_train=False)
    dopt = load_yaml(exp / "options" / "val_check.yml")["datasets"]["val_1"]  # as resolved by train.py
    loader = build_eval_loader(build_dataset(dopt), dopt, 0, 1)
    cpu = evaluate(model.inference, loader, opt["val"]["metrics"], torch.device("cpu"))
    assert cpu["psnr"] == pytest.approx(gpu_psnr, abs=0.05)


# ------------------------------------------------------------------------------------------- memory format
def test_channels_last_step_matches_contiguous(data, tmp_path: Path) -> None:
    """``train.channels_last: true`` trains through train.py, and one step equals the contiguous one
    (losses within 1e-3 relative, gradients within 1e-3 of their norm: TF32 convolutions)."""
    log = run_training(family_options(data, "HAT", "channels_last", **{"train.channels_last": True,
                                                                        "train.mixed_precision": "bf16"}), tmp_path)
    assert len(_LOSS.findall(log)) == 12
    batch = {"lq": torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)),
             "gt": torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))}
    grads = []
    for channels_last in (False, True):
        opt = family_options(data, "HAT", "cl", **{"train.channels_last": channels_last})
        torch.manual_seed(0)
        model = SRModel(opt, DEVICE)
        b = model.feed_data(batch)
        loss = model.compute_losses(b)["l_pix"]
        loss.backward()
        grads.append((float(loss), torch.cat([p.grad.flatten() for p in model.net_g.parameters()])))
    (la, ga), (lb, gb) = grads
    assert lb == pytest.approx(la, rel=1e-3)
    assert float((ga - gb).norm()) <= 1e-3 * float(ga.norm())


# ------------------------------------------------------------------------------------------- torch.compile
def test_compiled_training_with_ema_matches_eager(data) -> None:
    """``train.compile: true`` with EMA: 3 steps give the eager losses (1e-3 relative) and EMA weights
    (1e-3 relative, 1e-4 absolute). The first compiled step includes the compilation (tens of seconds)."""
    runs = {}
    for compiled in (False, True):
        opt = family_options(data, "SwinIR", "compile", **{"train.compile": compiled,
                                                           "network_g.drop_path_rate": 0.0})
        torch.manual_seed(0)
        model = SRModel(opt, DEVICE)
        g = torch.Generator().manual_seed(0)
        losses = []
        for it in range(1, 4):
            batch = {"lq": torch.rand(2, 3, 8, 8, generator=g), "gt": torch.rand(2, 3, 16, 16, generator=g)}
            losses.append(float(model.optimize_parameters(model.feed_data(batch), it)["l_pix"]))
        runs[compiled] = (losses, {k: v.detach().clone() for k, v in model.ema.module.state_dict().items()})
    (le, ema_e), (lc, ema_c) = runs[False], runs[True]
    assert lc == pytest.approx(le, rel=1e-3)
    for key, value in ema_e.items():
        torch.testing.assert_close(ema_c[key], value, rtol=1e-3, atol=1e-4, msg=f"EMA {key} differs")


# ------------------------------------------------------------------------------------------------- resume
def _interrupted_and_resumed(opt: dict[str, Any], root: Path, run) -> tuple[Path, Path]:
    """Train 6 iterations (states at 2, 4, 6); copy the experiment, drop state 6 and resume from 4."""
    run(opt, root)
    exp = root / "experiments" / opt["name"]
    resumed = root / "resumed"
    shutil.copytree(exp, resumed)
    (resumed / "training_states" / "6.state").unlink()
    for stale in (resumed / "models").glob("net_g_6.pth"):
        stale.unlink()
    run({**opt, "name": opt["name"] + "_resumed", "path": {"experiments_root": str(resumed)}}, root, "--auto_resume")
    return exp, resumed


def _train_subprocess(opt: dict[str, Any], root: Path, *extra: str) -> None:
    """``python train.py`` in a fresh process: deterministic mode sets process-wide switches (cuBLAS
    workspace, ``torch.use_deterministic_algorithms``) that must not leak into the other tests."""
    cfg = write_options(opt, root / f"{opt['name']}.yml")
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}  # the option must set it up
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "-opt", str(cfg), "--root", str(root), *extra],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_deterministic_resume_is_bit_exact(data, tmp_path: Path) -> None:
    """``train.deterministic: true``: interrupted at 4 + resumed to 6 equals the uninterrupted run, bit for bit."""
    opt = family_options(data, "HAT", "determ", **{"train.deterministic": True, "train.total_iter": 6, "val.val_freq": 6,
                                                   "logger.save_checkpoint_freq": 2,
                                                   "datasets.train.num_worker_per_gpu": 2})
    exp, resumed = _interrupted_and_resumed(opt, tmp_path, _train_subprocess)
    a, b = weights(exp, 6), weights(resumed, 6)
    for group in a:
        for key, value in a[group].items():
            assert torch.equal(value, b[group][key]), f"{group}.{key} differs after a deterministic resume"


def test_resume_without_deterministic_mode_is_close(data, tmp_path: Path) -> None:
    """Default (fast, non-deterministic kernels, cuDNN autotuning): the resumed weights agree with the
    uninterrupted run within 1e-4 absolute (atomics change summation order, never the training)."""
    opt = family_options(data, "SwinIR", "nondeterm", **{"train.total_iter": 6, "val.val_freq": 6,
                                                          "logger.save_checkpoint_freq": 2, "train.mixed_precision": "bf16"})
    exp, resumed = _interrupted_and_resumed(opt, tmp_path, run_training)
    diff = max_abs_diff(weights(exp, 6), weights(resumed, 6))
    assert diff <= 1e-4, f"resumed weights differ by {diff:.2e}"
    if diff > 0:
        warnings.warn(f"non-deterministic resume differs by {diff:.2e} (within the 1e-4 tolerance)")


# ------------------------------------------------------------------------------------- host synchronisation
def test_training_step_syncs_the_host_at_most_once(data, tmp_path: Path, monkeypatch) -> None:
    """Outside logging/validation/checkpoint iterations, one iteration of the loop (prefetch, step, EMA,
    bookkeeping) blocks the host on the GPU at most once (CUDA sync debug mode warns at every blocking call)."""
    opt = family_options(data, "SwinIR", "syncs", **{"train.total_iter": 8, "logger.print_freq": 100,
                                                     "logger.save_checkpoint_freq": 100, "val.val_freq": 100,
                                                     "datasets.train.num_worker_per_gpu": 1})
    cfg = write_options(opt, tmp_path / "syncs.yml")
    record: list[warnings.WarningMessage] = []
    starts: list[int] = []  # len(record) when each iteration's step begins
    original = SRModel.optimize_parameters

    def counted(self, batch, current_iter):
        starts.append(len(record))
        return original(self, batch, current_iter)

    monkeypatch.setattr(SRModel, "optimize_parameters", counted)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = caught
        torch.cuda.set_sync_debug_mode("warn")
        try:
            assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [("synchroniz" in str(w.message), f"{Path(w.filename).name}:{w.lineno}") for w in record]
    # iterations 3..7 (1-2 warm up: cuDNN autotuning, lazy optimizer state); none logs, validates or saves
    per_iter = [sum(flag for flag, _ in syncs[starts[i]:starts[i + 1]]) for i in range(2, 7)]
    sites = sorted({site for i in range(2, 7) for flag, site in syncs[starts[i]:starts[i + 1]] if flag})
    assert max(per_iter) <= 1, f"host syncs in iterations 3-7: {per_iter}; at {sites}"
