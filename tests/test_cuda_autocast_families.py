"""Mixed-precision training steps of the community families under CUDA's autocast rules, on the CPU.

CUDA autocast casts other ops than the CPU's (``tests/cuda_autocast.py``): a step that works under
``torch.autocast("cpu")`` could still fail or lose accuracy on a GPU. Here each tiny configuration
(``Family.tiny``) of RRDBNet, SRVGGNetCompact, SPAN, NAFNet, EDSR, RCAN, Restormer, DAT and TBSN, and the two
GAN discriminators (``UNetDiscriminatorSN``, ``VGGStyleDiscriminator``), runs forward + loss under the emulated
CUDA rules in bf16 and fp16 and backward outside autocast, as training does, and is compared with float64.
Input and target are in ``[0, arch_spec(net).value_range]``, the range the framework feeds the network
(TBSN: [0, 255]; the others: [0, 1]):

* the emulation is CUDA's: for every network that fake CUDA tensors can trace, the sequence of aten ops
  and the dtype each returns equals the one the real ``AutocastCUDA`` kernels of this torch produce;
* the output and every parameter's gradient are within a few unit roundoffs of float64 (relative norms).

No network needed a fix: no step crashed and every error is within the bounds (numbers in the tests).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx
from torch.func import functional_call

from restoration import build_network
from restoration.archs import families
from restoration.archs.spec import arch_spec
from tests.cuda_autocast import cuda_autocast, unlisted_ops

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: see tests/conftest.py

TINY = {name: tiny for family in families() for name, tiny in family.tiny.items()}
GENERATORS = ["RRDBNet", "SRVGGNetCompact", "SPAN", "NAFNet", "NAFNetLocal", "EDSR", "RCAN", "Restormer", "DAT",
              "TBSN"]
DISCRIMINATORS = ["UNetDiscriminatorSN", "VGGStyleDiscriminator"]
#: Not traceable on fake CUDA tensors without a driver: DAT's ``mean.to(x)``, TBSN's ``torch.arange(...,
#: device=q.device)`` (M-WSA's relative-position index) and VGGStyleDiscriminator's batch norm initialise CUDA.
#: Their steps are still compared with float64 below.
NOT_TRACEABLE = {"DAT", "TBSN", "VGGStyleDiscriminator"}

#: Unit roundoff of each autocast dtype.
UNIT_ROUNDOFF = {torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -11}
#: A power of two applied to the loss and removed from the gradients (exact), as a GradScaler would:
#: float16 gradients of a mean over a batch would otherwise underflow.
LOSS_SCALE = 2.0 ** 10
#: Bounds in unit roundoffs: (output, largest parameter gradient). Measured on this CPU (torch 2.14.1), in
#: bf16 / fp16: outputs 0.1-2.1u, gradients 0.2-2.1u, except DAT's gradients (4.4u / 15.7u: softmax attention
#: over three blocks) and VGGStyleDiscriminator (output 1.7u / 8.5u, gradients 17u / 75u: batch norms over a
#: batch of 2 down to 4x4 maps, and one logit per image). CPU autocast's own rules give the same errors.
#: TBSN at [0, 255]: output 1.4u / 1.5u, gradients 0.5u / 0.4u. Fed [0, 1] instead, its tiny config is off by
#: 130u / 155u (fp16 gradients NaN): one pixel whose 4 channels are nearly equal, where the bias-free LayerNorm
#: divides by a std 1/27 of the values (docs/tbsn.md, "Mixed precision"); the official class does the same.
BOUNDS = {"default": (4.0, 8.0), "DAT": (4.0, 32.0), "VGGStyleDiscriminator": (16.0, 128.0)}


def _tiny(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """The tiny network (seed 0, train mode) and a batch of 2 inputs uniform in [0, its value range]."""
    tiny = TINY[name]
    torch.manual_seed(0)
    net = build_network({"type": name, **tiny.kwargs}).train()
    return net, torch.rand(2, *tiny.chw, generator=torch.Generator().manual_seed(1)) * arch_spec(net).value_range


def test_the_lists_cover_every_cuda_autocast_op_of_this_torch() -> None:
    registered_not_listed, _ = unlisted_ops()
    assert registered_not_listed == [], f"torch {torch.__version__} autocasts these on CUDA: add their policy"


def _aten_dtypes(graph: torch.fx.GraphModule) -> list[tuple[str, Any]]:
    return [(str(n.target), getattr(n.meta.get("val"), "dtype", None))
            for n in graph.graph.nodes if n.op == "call_function"]


@pytest.mark.parametrize("name", [n for n in GENERATORS + DISCRIMINATORS if n not in NOT_TRACEABLE])
def test_the_emulation_casts_as_the_cuda_dispatcher(name: str) -> None:
    net, x = _tiny(name)
    state = {**dict(net.named_parameters()), **dict(net.named_buffers())}
    keys = list(state)
    dtype = torch.bfloat16

    def on_cuda(inp: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        # the real AutocastCUDA kernels: torch.autocast("cuda") refuses to start without a GPU, the switch does not
        torch.set_autocast_enabled("cuda", True)
        torch.set_autocast_dtype("cuda", dtype)
        try:
            return functional_call(net, dict(zip(keys, tensors)), (inp,))
        finally:
            torch.set_autocast_enabled("cuda", False)

    def emulated(inp: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        with cuda_autocast(dtype):
            return functional_call(net, dict(zip(keys, tensors)), (inp,))

    with FakeTensorMode():
        fake = [torch.empty(x.shape, device="cuda")]
        fake += [torch.empty(state[k].shape, dtype=state[k].dtype, device="cuda") for k in keys]
    cuda_ops = _aten_dtypes(make_fx(on_cuda)(*fake))
    cpu_ops = _aten_dtypes(make_fx(emulated)(x, *(state[k].detach() for k in keys)))
    assert len(cuda_ops) == len(cpu_ops)
    mismatch = [(i, a, b) for i, (a, b) in enumerate(zip(cuda_ops, cpu_ops)) if a != b]
    assert mismatch == [], f"(index, CUDA's op and dtype, the emulation's): {mismatch[:5]}"


def _step(net: torch.nn.Module, x: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor],
          dtype: torch.dtype | None) -> list[torch.Tensor]:
    """Forward + loss under the emulated CUDA autocast (``dtype``; None: none), backward outside it."""
    net.zero_grad()
    if dtype is None:
        out = net(x)
        loss = loss_fn(out)
    else:
        with cuda_autocast(dtype):
            out = net(x)
            loss = loss_fn(out)
    (loss * LOSS_SCALE).backward()
    trained = [p for p in net.parameters() if p.requires_grad]  # not TBSN's fixed attention masks
    assert all(p.grad is not None for p in trained), "a parameter got no gradient"
    return [out.detach().double()] + [p.grad.double() / LOSS_SCALE for p in trained]


def _errors(name: str, dtype: torch.dtype, loss: str) -> tuple[float, float]:
    """(output error, largest parameter-gradient error), both relative norms against float64.

    A parameter's gradient error is taken relative to the norm of the whole gradient: some parameters'
    float64 gradients cancel to ~0 (a bias ahead of a softmax-normalised product), where their own norm
    would measure nothing but that cancellation.
    """
    net, x = _tiny(name)
    with torch.no_grad():
        shape = net(x).shape
    value_range = arch_spec(net).value_range
    target = torch.rand(shape, generator=torch.Generator().manual_seed(2)) * value_range

    def loss_fn(out: torch.Tensor) -> torch.Tensor:
        if loss == "gan":  # a discriminator's step on "real" labels: BCE with logits, as the GAN loss
            return F.binary_cross_entropy_with_logits(out, torch.ones_like(out, dtype=out.dtype))
        # smooth: an L1 sign flip would not be roundoff. Divided by the value range, its gradient is of the
        # order of an L1 loss's, as TBSN's L1 at [0, 255] is (a plain MSE at 255 overflows fp16 at LOSS_SCALE)
        return F.mse_loss(out, target.to(out.dtype)) / value_range

    reference = _step(copy.deepcopy(net).double(), x.double(), lambda o: loss_fn(o.double()), None)
    got = _step(net, x, loss_fn, dtype)
    assert got[0].dtype == torch.float64 and torch.isfinite(torch.cat([g.flatten() for g in got])).all()
    out_err = float((got[0] - reference[0]).norm() / reference[0].norm())
    total = torch.cat([g.flatten() for g in reference[1:]]).norm()
    grad_err = max(float((g - r).norm() / total) for g, r in zip(got[1:], reference[1:]))
    return out_err, grad_err


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("name", GENERATORS + DISCRIMINATORS)
def test_training_step_under_cuda_autocast_matches_float64(name: str, dtype: torch.dtype) -> None:
    out_err, grad_err = _errors(name, dtype, "gan" if name in DISCRIMINATORS else "mse")
    u = UNIT_ROUNDOFF[dtype]
    out_bound, grad_bound = BOUNDS.get(name, BOUNDS["default"])
    assert out_err < out_bound * u, f"output error {out_err:.2e} ({out_err / u:.1f} unit roundoffs)"
    assert grad_err < grad_bound * u, (f"largest parameter-gradient error {grad_err:.2e} of the gradient's norm "
                                       f"({grad_err / u:.1f} unit roundoffs)")
