"""Export a trained network: an ONNX model that takes any image size, or the weights as ``.safetensors``.

    python -m restoration.export --weights 001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth -o swinir_x2.onnx
    python -m restoration.export --weights net_g_latest.pth \\
        -opt options/train/HAT/train_HAT_SRx4_finetune_from_SRx2.yml -o hat.onnx
    python -m restoration.export --weights HAT_SRx4.pth --format safetensors --param-key params_ema -o hat.safetensors

The network comes from ``-opt`` (its ``network_g``), ``--arch NAME --arch-opt JSON``, the options saved beside a
training run's weights, or the checkpoint's own keys (:mod:`restoration.archs.detect`), exactly as in
:mod:`restoration.infer`; the weights are loaded strictly (:func:`restoration.utils.weights.load_weights`).

The ONNX model (:class:`ExportWrapper` around the network) has the framework's contract built in, so a caller
needs nothing but the image:

* input ``"input"``: ``(B, C, H, W)`` float32 in [0, 1], batch, height and width dynamic; output ``"output"``:
  ``(B, C', H * scale, W * scale)`` in [0, 1] (not clamped, as :func:`restoration.inference.restore`);
* the padding to the network's ``size_multiple`` (reflect, bottom/right) and the crop back are in the graph, so
  HAT (a multiple of its window) and TBSN (of 32) take any size; SwinIR pads internally anyway;
* a network that works on [0, 255] (TBSN) gets ``x * 255`` and its output is divided by 255 inside the graph;
* H and W must be at least ``min_side`` (the model's ``restoration.min_side`` metadata): reflect padding needs
  a side longer than the pad;
* attention is computed by the ``reference`` backend of every op (explicit matmul-softmax: portable ONNX ops;
  the CPU ``sdpa`` path chunks windows by a count computed from the example size, which would be frozen in);
* TBSN: the graph is one pass of the blind-spot network, not its test protocol (PD x2 + random-replacing
  refinement, :mod:`restoration.infer`), whose random masks do not belong in a deployed model.

Exporters (``--exporter``), measured with torch 2.14 / onnxruntime 1.32 on tiny configs (tests pass with torch
2.11 too):

* ``dynamo`` (default): ``torch.export`` with dynamic batch/height/width; exports SwinIR, HAT and TBSN (TBSN's
  M-WSA ``Tensor.unfold`` on a dynamic size is beyond the TorchScript exporter). Slower: seconds to minutes.
  Needs torch >= 2.6 (below it: an error that says to use ``torchscript``).
* ``torchscript``: the tracing exporter; SwinIR and HAT only, in under a second. The example input has prime
  sides, so every pad-when-needed branch is traced in its padding form and also serves aligned sizes.

After exporting, the model is run in onnxruntime (when installed) at two sizes -- one a multiple of nothing,
one a multiple of the window -- and compared with the PyTorch network under the same contract
(:func:`restoration.inference.restore`); ``--no-check`` skips this. Optional dependencies: ``pip install
restoration[export]`` (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restoration.archs.build import build_network
from restoration.archs.spec import ArchSpec, arch_spec
from restoration.errors import RestorationError
from restoration.utils.weights import load_weights

__all__ = ["ExportError", "ExportWrapper", "ExportCheck", "export_onnx", "reference_attention", "export_safetensors", "check_onnx",
           "load_network", "example_input", "min_side", "main"]

EXPORTERS = ("dynamo", "torchscript")
#: Opset of the TorchScript exporter (the dynamo exporter picks its own, 18 on torch 2.14).
TORCHSCRIPT_OPSET = 17
#: Default tolerance of the onnxruntime check: max |onnx - torch| / max |torch| in float32.
CHECK_RTOL = 1e-4


class ExportError(RestorationError, ValueError):
    """Bad export arguments, a missing optional dependency, or an exported model that differs from PyTorch."""


class ExportWrapper(nn.Module):
    """The network with its contract (padding, value range, crop) inside, for a graph that takes any size.

    Args:
        net: The network (eval mode).
        spec: Its :class:`~restoration.archs.spec.ArchSpec`.

    Shapes:
        ``(B, C, H, W)`` in [0, 1] -> ``(B, C', H * scale, W * scale)`` in [0, 1]; H, W >= :func:`min_side`.
    """

    def __init__(self, net: nn.Module, spec: ArchSpec) -> None:
        super().__init__()
        self.net = net
        self.scale = spec.scale
        self.size_multiple = spec.size_multiple
        self.value_range = float(spec.value_range)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2], x.shape[-1]
        m = self.size_multiple
        if m > 1:
            # ceil(h / m) * m - h (not (-h) % m): the padded side is then visibly m * k to torch.export, which
            # proves every "multiple of the window" check in the network instead of guarding on it
            pad_h = (h + m - 1) // m * m - h
            pad_w = (w + m - 1) // m * m - w
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")  # what restore() does (pad_to_multiple)
        if self.value_range != 1.0:
            return (self.net(x * self.value_range) / self.value_range)[..., : h * self.scale, : w * self.scale]
        return self.net(x)[..., : h * self.scale, : w * self.scale]


def min_side(net: nn.Module, spec: ArchSpec) -> int:
    """Smallest H and W the exported model accepts.

    Reflect padding needs a side longer than the pad: the wrapper pads by less than ``size_multiple``, and a
    network that pads internally (SwinIR) pads by less than its ``window_size``.
    """
    return max(spec.min_size, spec.size_multiple, int(getattr(net, "window_size", 1)))


def _next_prime(n: int) -> int:
    n = max(n, 2)
    while any(n % d == 0 for d in range(2, math.isqrt(n) + 1)):
        n += 1
    return n


def example_input(net: nn.Module, spec: ArchSpec, batch: int = 2) -> Tensor:
    """The tracing example: batch 2 (torch.export specialises a size of 1) and prime sides above ``2 * min_side``.

    A prime is a multiple of no window, so every pad-when-needed branch is traced padding, and above
    ``min_side`` every reflect pad is valid.
    """
    side = min_side(net, spec)
    h = _next_prime(2 * side + 1)
    w = _next_prime(h + 1)
    channels = spec.in_channels or 3
    return torch.rand(batch, channels, h, w, generator=torch.Generator().manual_seed(0))


@contextlib.contextmanager
def reference_attention() -> Iterator[None]:
    """Make ``reference`` the process-wide attention backend of every op for the duration (layers built with an
    explicit ``attn_backend`` keep theirs: build with ``attn_backend="reference"`` as the command line does)."""
    from restoration.layers import config

    saved = {op: config.get_attn_backend(op) for op in config.ATTENTION_OPS}
    try:
        for op in saved:
            config.set_attn_backend("reference", op)
        yield
    finally:
        for op, name in saved.items():
            config.set_attn_backend(name, op)


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the exporters' tracer warnings (Python ints from shapes; expected and checked afterwards)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the optional package {module!r}: pip install 'restoration[export]' "
                          f"(onnx, onnxscript, onnxruntime)") from exc


def _require_dynamo_exporter() -> None:
    """The dynamo exporter needs ``torch.export.Dim.DYNAMIC`` (torch >= 2.6); torch 2.5's named dims with
    bounds fail on these networks (a guard on the batch size), so older torch gets the TorchScript advice."""
    if not hasattr(torch.export.Dim, "DYNAMIC"):
        raise ExportError(f"--exporter dynamo needs torch >= 2.6 (torch.export.Dim.DYNAMIC); this is torch "
                          f"{torch.__version__}: use --exporter torchscript (SwinIR, HAT) or a newer torch")


def export_onnx(net: nn.Module, path: str, exporter: str = "dynamo", metadata: dict[str, str] | None = None) -> str:
    """Write ``net`` (eval mode, float32, CPU) with its contract as an ONNX model with dynamic B, H, W.

    Args:
        net: The network.
        path: Output ``.onnx`` file.
        exporter: ``"dynamo"`` (torch.export; every network) or ``"torchscript"`` (tracing; not TBSN).
        metadata: Extra ``metadata_props`` (the architecture, the weights file, ...).

    Returns:
        ``path``.
    """
    if exporter not in EXPORTERS:
        raise ExportError(f"--exporter {exporter!r}: choose one of {EXPORTERS}")
    _require("onnx")
    if exporter == "dynamo":
        _require_dynamo_exporter()
    spec = arch_spec(net)
    wrapper = ExportWrapper(net.eval(), spec).eval()
    x = example_input(net, spec)
    names = dict(input_names=["input"], output_names=["output"])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with _quiet_export(), reference_attention(), torch.no_grad():
        if exporter == "dynamo":
            _require("onnxscript")
            dim = torch.export.Dim.DYNAMIC
            program = torch.onnx.export(wrapper, (x,), dynamo=True, dynamic_shapes=({0: dim, 2: dim, 3: dim},),
                                        verbose=False, **names)
            program.save(path)
        else:
            axes = {"input": {0: "batch", 2: "height", 3: "width"},
                    "output": {0: "batch", 2: "out_height", 3: "out_width"}}
            try:
                torch.onnx.export(wrapper, (x,), path, dynamo=False, opset_version=TORCHSCRIPT_OPSET,
                                  dynamic_axes=axes, **names)
            except torch.onnx.errors.OnnxExporterError as exc:  # SymbolicValueError and friends
                raise ExportError(f"the TorchScript exporter cannot export {type(net).__name__} with dynamic "
                                  f"sizes ({str(exc).splitlines()[0]}); use --exporter dynamo") from exc
    _write_metadata(path, {**_contract_metadata(net, spec), **(metadata or {})})
    return path


def _contract_metadata(net: nn.Module, spec: ArchSpec) -> dict[str, str]:
    return {
        "restoration.input": "input (B, C, H, W) float32 in [0, 1]; output (B, C', H*scale, W*scale) in [0, 1]",
        "restoration.scale": str(spec.scale),
        "restoration.min_side": str(min_side(net, spec)),
        "restoration.in_channels": str(spec.in_channels),
        "restoration.out_channels": str(spec.out_channels),
        "restoration.value_range": "[0, 1] (the network's own [0, %g] scaling is inside the graph)" % spec.value_range,
        "restoration.padding": f"reflect to a multiple of {spec.size_multiple} inside the graph, cropped back",
    }


def _write_metadata(path: str, metadata: dict[str, str]) -> None:
    import onnx

    model = onnx.load(path, load_external_data=False)
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)


@dataclass(frozen=True)
class ExportCheck:
    """One onnxruntime-vs-PyTorch comparison: input ``shape`` and ``max|onnx - torch| / max|torch|``."""

    shape: tuple[int, ...]
    rel_error: float


def check_sizes(net: nn.Module, spec: ArchSpec) -> list[tuple[int, int]]:
    """Two input sizes for the check: one a multiple of nothing (primes), one of the window and ``size_multiple``."""
    side = min_side(net, spec)
    aligned = math.lcm(side, spec.size_multiple, int(getattr(net, "window_size", 1)))
    odd = _next_prime(2 * side + 1)  # two or more windows per side, so shifted windows meet the border
    return [(odd, _next_prime(odd + 1)), (2 * aligned, 3 * aligned)]


def check_onnx(path: str, net: nn.Module, sizes: Sequence[tuple[int, int]] | None = None, batch: int = 1,
               rtol: float = CHECK_RTOL) -> list[ExportCheck]:
    """Run the exported model in onnxruntime and compare it with ``restore(net, x, spec=arch_spec(net))``.

    Raises:
        ExportError: onnxruntime is missing, or a relative error exceeds ``rtol``.
    """
    ort = _require("onnxruntime")
    from restoration.inference import restore

    spec = arch_spec(net)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    results = []
    generator = torch.Generator().manual_seed(1)
    for h, w in sizes or check_sizes(net, spec):
        x = torch.rand(batch, spec.in_channels or 3, h, w, generator=generator)
        reference = restore(net.eval(), x, spec=spec)
        out = torch.from_numpy(session.run(["output"], {"input": x.numpy()})[0])
        if out.shape != reference.shape:
            raise ExportError(f"{path}: input {tuple(x.shape)} gave {tuple(out.shape)}, PyTorch {tuple(reference.shape)}")
        rel = float((out - reference).abs().max() / reference.abs().max().clamp_min(1e-12))
        results.append(ExportCheck(tuple(x.shape), rel))
        if not rel <= rtol:
            raise ExportError(f"{path}: onnxruntime differs from PyTorch on input {tuple(x.shape)}: max relative "
                              f"error {rel:.2e} > {rtol:.0e}")
    return results


def export_safetensors(net: nn.Module, path: str, metadata: dict[str, str] | None = None) -> str:
    """Write ``net``'s state dict (the official key layout; loads back with ``load_weights``) as ``.safetensors``.

    The metadata records the network options (``network_g``, JSON) and where the weights came from.
    """
    from safetensors.torch import save_file

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # own contiguous copies: safetensors refuses tensors that share storage (tied or viewed buffers)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}
    save_file(state, path, metadata={"format": "pt", **(metadata or {})})
    return path


def load_network(weights: str, arch: str | None = None, arch_opt: dict[str, Any] | None = None,
                 opt_file: str | None = None, param_key: str | None = None,
                 build_overrides: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any], str]:
    """Build the network for ``weights`` and load them strictly.

    ``build_overrides`` change the build only, not the returned options (``{"attn_backend": "reference"}``).

    Returns:
        ``(net, network_g, source)``: the network in eval mode, its options, and where they came from.
    """
    # the same resolution as inference (-opt, --arch, options beside the weights, detection from the keys);
    # imported here so that `--help` and the module import stay light
    from restoration.infer import resolve_network

    detection = resolve_network(weights, arch=arch, arch_opt=arch_opt, opt_file=opt_file, param_key=param_key)
    network_g = detection.network_opt()
    net = build_network({**network_g, **(build_overrides or {})})
    load_weights(net, weights, param_key=param_key, strict=True)
    return net.eval(), network_g, detection.describe()


# --------------------------------------------------------------------------------------------- command line
def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m restoration.export",
                                description="Export a network as ONNX (any input size) or its weights as safetensors.")
    p.add_argument("--weights", required=True, help="checkpoint (.pth/.pt/.ckpt/.safetensors)")
    p.add_argument("-o", "--output", required=True, help="output file (.onnx or .safetensors)")
    p.add_argument("--format", choices=("onnx", "safetensors"), default=None,
                   help="default: from the output's extension")
    p.add_argument("--param-key", default=None, help="entry of the checkpoint: params_ema (default if present), params")
    p.add_argument("--arch", default=None, help="architecture name (skips detection of the family)")
    p.add_argument("--arch-opt", default=None, metavar="JSON", help="constructor kwargs overriding the detected ones")
    p.add_argument("-opt", "--opt", default=None, help="option YAML with network_g (or a bare network dict)")
    p.add_argument("--exporter", choices=EXPORTERS, default="dynamo", help="ONNX exporter (default dynamo)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch comparison")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    try:
        return _run(args)
    except RestorationError as exc:
        from restoration.errors import user_error_message

        print(f"{type(exc).__name__}: {user_error_message(exc)}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    fmt = args.format or ("safetensors" if args.output.endswith(".safetensors") else "onnx")
    from restoration.infer import parse_arch_opt

    arch_opt = parse_arch_opt(args.arch_opt) or None  # the user's arguments first
    if fmt == "onnx":
        _require("onnx")  # before the (slow) network build
        if args.exporter == "dynamo":
            _require_dynamo_exporter()
    # every network takes attn_backend; all backends compute the same function (tests/test_*attention*.py)
    overrides = {"attn_backend": "reference"} if fmt == "onnx" else None
    net, network_g, source = load_network(args.weights, args.arch, arch_opt, args.opt, args.param_key, overrides)
    metadata = {"restoration.network_g": json.dumps(network_g), "restoration.weights": os.path.basename(args.weights),
                "restoration.param_key": str(args.param_key or "auto")}
    print(f"network: {network_g['type']} from {source}")
    if fmt == "safetensors":
        export_safetensors(net, args.output, metadata)
        print(f"wrote {args.output} ({sum(v.numel() for v in net.state_dict().values()):,} values)")
        return 0
    start = time.perf_counter()
    export_onnx(net, args.output, args.exporter, metadata)
    spec = arch_spec(net)
    print(f"wrote {args.output} in {time.perf_counter() - start:.1f} s: input (B, {spec.in_channels}, H, W) in [0, 1], "
          f"H, W >= {min_side(net, spec)}; output x{spec.scale} in [0, 1]")
    if args.no_check:
        return 0
    try:
        __import__("onnxruntime")
    except ImportError:
        print("onnxruntime not installed: the exported model was not checked (pip install onnxruntime)")
        return 0
    for result in check_onnx(args.output, net):
        print(f"check: input {result.shape}: max relative error vs PyTorch {result.rel_error:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
