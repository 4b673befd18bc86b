"""The community families' fast paths against the official arithmetic, whole networks, one training step.

* SPAN: ``train_form='fused'`` (one conv of the fused weights, with autograd) vs ``'branch'`` (the official four
  convs);
* NAFNet and Restormer: the channel norms' hand-written backwards (``'function'``) vs autograd through their
  plain forwards (``'reference'``).

On CUDA (``pytest -m cuda``, part of the GPU proof) in fp32 and under bf16 autocast; the same comparison runs on
the CPU in the default suite (fp32, and bf16 under CUDA's autocast rules emulated by ``tests/cuda_autocast.py``),
so the check itself is exercised without a GPU. Output and all parameter gradients are compared as one vector
(relative norm): in bf16 a gradient that nearly cancels (a bias) has a large relative error on its own under
either path.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import pytest
import torch

from restoration import build_network
from restoration.archs import register_archs
from restoration.layers import channel_norm_functions as cnf
from tests.cuda_autocast import cuda_autocast

register_archs()

NETWORKS: dict[str, dict[str, Any]] = {
    "SPAN": {"type": "SPAN", "feature_channels": 8, "upscale": 2},
    "NAFNet": {"type": "NAFNet", "width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]},
    "Restormer": {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                  "heads": [1, 2, 2, 4], "ffn_expansion_factor": 2.0, "LayerNorm_type": "WithBias"},
    "Restormer BiasFree": {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                           "heads": [1, 2, 2, 4], "ffn_expansion_factor": 2.0, "LayerNorm_type": "BiasFree"},
}
#: the two sides of each network's switch: (reference, fast)
SWITCH = {"SPAN": ("branch", "fused"), "NAFNet": ("reference", "function"), "Restormer": ("reference", "function"),
          "Restormer BiasFree": ("reference", "function")}
#: relative error of the output and gradients: fp32 differs only in summation order; bf16 has 8-bit mantissas.
#: Measured on the CPU (torch 2.14.1; bf16 under the emulated CUDA rules): fp32 3e-7 (SPAN), 2-3e-9 (norms);
#: bf16 7.0e-3 (SPAN: each form rounds its own convs; against the fp32 step the branch is 6.5e-3 off, the
#: fused form 5.4e-3), 2.5-4.3e-5 (norms).
TOLERANCE = {"fp32": 1e-4, "bf16": 3e-2}


@contextlib.contextmanager
def _side(name: str, side: str) -> Iterator[dict[str, Any]]:
    """Network options for ``side`` of ``name``'s switch (and the process-wide channel norm backend set)."""
    if name == "SPAN":
        yield {**NETWORKS[name], "train_form": side}
        return
    with cnf.CHANNEL_NORM_SWITCH.using(side):
        yield NETWORKS[name]


def _step(name: str, side: str, device: torch.device, autocast: Callable[[], Any]) -> torch.Tensor:
    """Output and every parameter gradient of one step, flattened into one float32 vector."""
    with _side(name, side) as options:
        torch.manual_seed(0)
        net = build_network(options).to(device).train()
        with torch.no_grad():  # away from the zero-initialised scales (NAFNet's beta/gamma), so every path counts
            for p in net.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())).to(device) * 0.05)
        x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(1)).to(device)
        with autocast():
            out = net(x)
            loss = (out.float() - x.mean()).abs().mean()
        loss.backward()
    grads = [p.grad.float().flatten() for p in net.parameters() if p.grad is not None]
    assert len(grads) == len([p for p in net.parameters() if p.requires_grad]), "a parameter got no gradient"
    return torch.cat([out.detach().float().flatten(), *grads])


def _relative_error(got: torch.Tensor, ref: torch.Tensor) -> float:
    return float((got - ref).norm() / ref.norm().clamp_min(1e-12))


def _compare(name: str, device: torch.device, precision: str, autocast: Callable[[], Any]) -> float:
    reference, fast = SWITCH[name]
    ref = _step(name, reference, device, autocast)
    got = _step(name, fast, device, autocast)
    error = _relative_error(got, ref)
    assert error <= TOLERANCE[precision], f"{name} {fast} vs {reference} ({precision}): relative error {error:.1e}"
    return error


@pytest.mark.parametrize("precision", list(TOLERANCE))
@pytest.mark.parametrize("name", list(NETWORKS))
def test_fast_path_matches_the_official_arithmetic_on_the_cpu(name: str, precision: str) -> None:
    autocast = (lambda: cuda_autocast(torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    _compare(name, torch.device("cpu"), precision, autocast)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (GPU proof: pytest -m cuda, docs/gpu.md)")
@pytest.mark.parametrize("precision", list(TOLERANCE))
@pytest.mark.parametrize("name", list(NETWORKS))
def test_fast_path_matches_the_official_arithmetic_on_cuda(name: str, precision: str) -> None:
    dtype = torch.bfloat16 if precision == "bf16" else None
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype else contextlib.nullcontext
    _compare(name, torch.device("cuda", 0), precision, autocast)
