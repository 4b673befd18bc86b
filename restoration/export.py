"""Export a trained network: an ONNX model that takes any image size, or the weights as ``.safetensors``.

    python -m restoration.export --weights 001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth -o swinir_x2.onnx
    python -m restoration.export --weights net_g_latest.pth \\
        -opt options/train/HAT/train_HAT_SRx4_finetune_from_SRx2.yml -o hat.onnx
    python -m restoration.export --weights HAT_SRx4.pth --format safetensors --param-key params_ema -o hat.safetensors
    python -m restoration.export --weights net_g_latest.pth -opt train.yml --dtype fp16 --opset 20 --slim -o net_fp16.onnx

User guide: ``docs/export.md`` (every flag, which networks export, the measured parity).

The network comes from ``-opt`` (its ``network_g``), ``--arch NAME --arch-opt JSON``, the options saved beside a
training run's weights, or the checkpoint's own keys (:mod:`restoration.archs.detect`), exactly as in
:mod:`restoration.infer`; the weights are loaded strictly (:func:`restoration.utils.weights.load_weights`).

The ONNX model is the graph of the network's predictor (:meth:`restoration.inference.Predictor.export_module`:
the network with the framework's contract built in), so a caller needs nothing but the image:

* input ``"input"``: ``(B, C, H, W)`` in [0, 1], batch, height and width dynamic; output ``"output"``:
  ``(B, C', H * scale, W * scale)`` in [0, 1] (not clamped, as :func:`restoration.inference.restore`); both
  in the ``--dtype`` (float32, float16 or bfloat16: weights, inputs and arithmetic alike);
* the padding to the network's ``size_multiple`` (reflect, bottom/right) and the crop back are in the graph, so
  HAT (a multiple of its window) and TBSN (of 32) take any size; SwinIR pads internally anyway;
* a network that works on [0, 255] (TBSN) gets ``x * 255`` and its output is divided by 255 inside the graph;
* H and W must be at least ``min_side`` (the model's ``restoration.min_side`` metadata): reflect padding needs
  a side longer than the pad;
* attention is computed by the ``reference`` backend of every op (explicit matmul-softmax: portable ONNX ops;
  the CPU ``sdpa`` path chunks windows by a count computed from the example size, which would be frozen in);
* TBSN: the graph is one pass of the blind-spot network, not its test protocol (PD x2 + random-replacing
  refinement, :mod:`restoration.archs.tbsn.tbsn_predictor`), whose random masks do not belong in a deployed model.

Exporters (``--exporter``), measured with torch 2.14 / onnxruntime 1.32 on tiny configs (tests pass with torch
2.11 too):

* ``dynamo`` (default): ``torch.export`` with dynamic batch/height/width; exports SwinIR, HAT and TBSN (TBSN's
  M-WSA ``Tensor.unfold`` on a dynamic size is beyond the TorchScript exporter). Slower: seconds to minutes.
  Needs torch >= 2.6 (below it: an error that says to use ``torchscript``).
* ``torchscript``: the tracing exporter; SwinIR and HAT only, in under a second. The example input has prime
  sides, so every pad-when-needed branch is traced in its padding form and also serves aligned sizes.

Dtypes (``--dtype``): ``fp16`` and ``bf16`` export the network converted to that dtype, traced with it as
torch's default dtype (so the masks and grids a network makes at run time follow). ``bf16`` needs opset >= 22
(ONNX ``Conv`` takes bfloat16 from opset 22), so only the dynamo exporter makes it; onnxruntime's CPU
provider has no bfloat16 kernels, so a bf16 model is checked as a graph (:func:`check_graph_dtype`), not run.

Opsets (``--opset``): the dynamo exporter writes opset 18 and converts to the one asked for with ONNX's version
converter, which has no adapter from 18 down to 17 for ``Pad``, and which otherwise leaves the model at 18
without failing: the written opset is read back, and one that is not the one asked for is an error. The
TorchScript exporter writes opsets 7 to 20 itself.

``--slim`` runs ``onnxslim`` (constant folding, fusing, dead nodes) on the written model.

Refused up front (:data:`ONNX_REFUSED`): DSwinIR, whose deformable sampling is frozen at the example size.

After exporting, the model is run in onnxruntime (when installed) at two sizes -- one a multiple of nothing,
one a multiple of the window -- and compared with the PyTorch network under the same contract (the plain
:class:`restoration.inference.Predictor`, what the graph computes), in the export dtype and in float32;
``--no-check`` skips this.
Optional dependencies: ``pip install restoration[export]`` (onnx, onnxscript, onnxruntime), ``onnxslim``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from restoration.archs.build import build_network
from restoration.archs.spec import ArchSpec, arch_spec
from restoration.errors import RestorationError, user_error_message
from restoration.errors import ExportError
from restoration.deploy.network import parse_arch_opt, resolve_network
from restoration.inference import Predictor, predictor_for
from restoration.layers import config
from restoration.registry import ARCH_REGISTRY
from restoration.schema import keyword_parameters
from restoration.utils.weights import entry_note, load_weights

__all__ = ["ExportError", "ExportCheck", "export_onnx", "reference_attention", "export_safetensors",
           "check_onnx", "check_graph_dtype", "load_network", "example_input", "min_side", "main", "DTYPES",
           "ONNX_REFUSED"]

EXPORTERS = ("dynamo", "torchscript")
#: Default opset of the TorchScript exporter.
TORCHSCRIPT_OPSET = 17
#: Opsets the TorchScript exporter writes (torch.onnx's own limits).
TORCHSCRIPT_OPSETS = (7, 20)
#: Default opset of the dynamo exporter (what it writes before any conversion on torch 2.6-2.14).
DYNAMO_OPSET = 18
#: ``--dtype`` names.
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: ONNX ``Conv`` (and the other arithmetic ops) take bfloat16 from opset 22.
BF16_MIN_OPSET = 22
#: Default tolerance of the onnxruntime check: max |onnx - torch| / max |torch| in float32.
CHECK_RTOL = 1e-4
#: Default tolerance of the float16 check: max |onnx - torch| with both in float16, [0, 1] units (2.5 8-bit
#: levels; measured: 4.9e-4, one float16 step below 1, on the tiny test networks; docs/export.md).
CHECK_ATOL_FP16 = 1e-2
#: Networks refused before exporting, with the reason (measured with torch 2.14 / onnxruntime 1.32).
ONNX_REFUSED: dict[str, str] = {
    "DSwinIR": "its deformable sampling (grid_sample at offsets of an input-sized grid) is frozen at the example "
               "size by both exporters: the dynamo graph fails in onnxruntime at any other size (a broadcast "
               "of 64 by 72), the TorchScript one differs from PyTorch by 6.8e-3 (relative) at 48x72",
}


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
    """Silence the exporters' tracer warnings (Python ints from shapes; expected and checked afterwards) and
    onnxscript's log of a failed version conversion (a traceback; the written opset is checked instead)."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "torch.onnx", "onnxslim")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


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


def resolve_opset(exporter: str, dtype: str = "fp32", opset: int | None = None) -> int:
    """The opset to write: ``opset`` if the exporter can make it in ``dtype``, else a one-line :class:`ExportError`.

    Defaults: TorchScript 17; dynamo 18 (22 for bf16). Checked here, before anything is built: the installed
    onnx's newest opset, TorchScript's 7-20, bf16's 22 and up; what only the export can tell (the dynamo
    exporter's conversion) is checked on the written model.
    """
    if exporter not in EXPORTERS:
        raise ExportError(f"--exporter {exporter!r}: choose one of {EXPORTERS}")
    if dtype not in DTYPES:
        raise ExportError(f"--dtype {dtype!r}: choose one of {tuple(DTYPES)}")
    if opset is None:
        opset = TORCHSCRIPT_OPSET if exporter == "torchscript" else DYNAMO_OPSET
        if dtype == "bf16":
            opset = max(opset, BF16_MIN_OPSET)
    onnx = _require("onnx")
    newest = int(onnx.defs.onnx_opset_version())
    if not isinstance(opset, int) or isinstance(opset, bool) or not 1 <= opset <= newest:
        raise ExportError(f"--opset {opset!r}: the installed onnx {onnx.__version__} knows opsets 1 to {newest}")
    if dtype == "bf16" and opset < BF16_MIN_OPSET:
        raise ExportError(f"--dtype bf16 needs --opset {BF16_MIN_OPSET} or higher (ONNX Conv takes bfloat16 from "
                          f"opset {BF16_MIN_OPSET}), got {opset}")
    low, high = TORCHSCRIPT_OPSETS
    if exporter == "torchscript" and not low <= opset <= high:
        hint = "; --dtype bf16 needs --exporter dynamo" if dtype == "bf16" else "; use --exporter dynamo"
        raise ExportError(f"--opset {opset}: the TorchScript exporter writes opsets {low} to {high}{hint}")
    return opset


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Make ``dtype`` torch's default for the duration: tensors a network creates at run time (masks, grids)
    then match its weights."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def refuse_unexportable(net: nn.Module) -> None:
    """One :class:`ExportError` line for a network in :data:`ONNX_REFUSED`."""
    name = type(net).__name__
    if name in ONNX_REFUSED:
        raise ExportError(f"{name} cannot be exported to ONNX: {ONNX_REFUSED[name]}; use PyTorch "
                          "(python -m restoration.infer) or --format safetensors")


def written_opset(path: str) -> int:
    """The default-domain opset of the ONNX file at ``path``."""
    import onnx  # optional dependency

    model = onnx.load(path, load_external_data=False)
    return next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def export_onnx(net: nn.Module, path: str, exporter: str = "dynamo", metadata: dict[str, str] | None = None,
                dtype: str = "fp32", opset: int | None = None, slim: bool = False) -> str:
    """Write ``net`` (eval mode, CPU) with its contract as an ONNX model with dynamic B, H, W.

    Args:
        net: The network (float32; converted in a copy for another ``dtype``).
        path: Output ``.onnx`` file.
        exporter: ``"dynamo"`` (torch.export; every network) or ``"torchscript"`` (tracing; not TBSN).
        metadata: Extra ``metadata_props`` (the architecture, the weights file, ...).
        dtype: ``"fp32"``, ``"fp16"`` or ``"bf16"``: weights, input, output and arithmetic of the model.
        opset: ONNX opset to write (:func:`resolve_opset`; default: the exporter's for the dtype).
        slim: Run ``onnxslim`` on the written model.

    Returns:
        ``path``.

    Raises:
        ExportError: A network in :data:`ONNX_REFUSED`, bad arguments, a missing optional package, or an
            opset the exporter did not produce (the file is then removed).
    """
    opset = resolve_opset(exporter, dtype, opset)
    refuse_unexportable(net)
    if exporter == "dynamo":
        _require_dynamo_exporter()
    if slim:
        _require_onnxslim()
    spec = arch_spec(net)
    torch_dtype = DTYPES[dtype]
    if torch_dtype != torch.float32:
        net = copy.deepcopy(net).to(torch_dtype)
    wrapper = predictor_for(net.eval(), spec=spec).export_module().eval()
    x = example_input(net, spec).to(torch_dtype)
    names = dict(input_names=["input"], output_names=["output"])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with _quiet_export(), reference_attention(), torch.no_grad(), _default_dtype(torch_dtype):
        if exporter == "dynamo":
            _require("onnxscript")
            dim = torch.export.Dim.DYNAMIC
            program = torch.onnx.export(wrapper, (x,), dynamo=True, dynamic_shapes=({0: dim, 2: dim, 3: dim},),
                                        opset_version=opset, verbose=False, **names)
            program.save(path)
        else:
            axes = {"input": {0: "batch", 2: "height", 3: "width"},
                    "output": {0: "batch", 2: "out_height", 3: "out_width"}}
            try:
                torch.onnx.export(wrapper, (x,), path, dynamo=False, opset_version=opset, dynamic_axes=axes, **names)
            except torch.onnx.errors.OnnxExporterError as exc:  # SymbolicValueError and friends
                raise ExportError(f"the TorchScript exporter cannot export {type(net).__name__} with dynamic "
                                  f"sizes ({str(exc).splitlines()[0]}); use --exporter dynamo") from exc
    made = written_opset(path)
    if made != opset:  # the dynamo exporter's version conversion failed and kept its own opset
        os.remove(path)
        raise ExportError(f"the {exporter} exporter could not write {type(net).__name__} at opset {opset} (ONNX's "
                          f"version converter left it at {made}): use --opset {made} or higher, or --exporter "
                          f"torchscript for opsets {TORCHSCRIPT_OPSETS[0]} to {TORCHSCRIPT_OPSETS[1]}")
    if slim:
        import onnxslim  # optional dependency

        with _quiet_export():
            onnxslim.slim(path, output_model=path)
    _write_metadata(path, {**_contract_metadata(net, spec, dtype), **(metadata or {})})
    return path


def _require_onnxslim() -> None:
    try:
        __import__("onnxslim")
    except ImportError as exc:
        raise ExportError("--slim needs the optional package onnxslim: pip install onnxslim") from exc


def _contract_metadata(net: nn.Module, spec: ArchSpec, dtype: str = "fp32") -> dict[str, str]:
    name = str(DTYPES[dtype]).replace("torch.", "")
    return {
        "restoration.input": f"input (B, C, H, W) {name} in [0, 1]; output (B, C', H*scale, W*scale) {name} in "
                             "[0, 1]",
        "restoration.dtype": name,
        "restoration.scale": str(spec.scale),
        "restoration.min_side": str(min_side(net, spec)),
        "restoration.in_channels": str(spec.in_channels),
        "restoration.out_channels": str(spec.out_channels),
        "restoration.value_range": "[0, 1] (the network's own [0, %g] scaling is inside the graph)" % spec.value_range,
        "restoration.padding": f"reflect to a multiple of {spec.size_multiple} inside the graph, cropped back",
    }


def _write_metadata(path: str, metadata: dict[str, str]) -> None:
    import onnx  # optional dependency

    model = onnx.load(path, load_external_data=False)
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)


@dataclass(frozen=True)
class ExportCheck:
    """One onnxruntime-vs-PyTorch comparison at input ``shape``: ``rel_error`` = ``max|onnx - torch| / max|torch|``
    and ``abs_error`` = ``max|onnx - torch|`` with PyTorch in the export dtype, ``abs_error_fp32`` against the
    float32 network (the error the dtype itself adds); [0, 1] units."""

    shape: tuple[int, ...]
    rel_error: float
    abs_error: float = 0.0
    abs_error_fp32: float = 0.0


def check_sizes(net: nn.Module, spec: ArchSpec) -> list[tuple[int, int]]:
    """Two input sizes for the check: one a multiple of nothing (primes), one of the window and ``size_multiple``."""
    side = min_side(net, spec)
    aligned = math.lcm(side, spec.size_multiple, int(getattr(net, "window_size", 1)))
    odd = _next_prime(2 * side + 1)  # two or more windows per side, so shifted windows meet the border
    return [(odd, _next_prime(odd + 1)), (2 * aligned, 3 * aligned)]


def check_onnx(path: str, net: nn.Module, sizes: Sequence[tuple[int, int]] | None = None, batch: int = 1,
               rtol: float = CHECK_RTOL, dtype: str = "fp32", atol: float = CHECK_ATOL_FP16) -> list[ExportCheck]:
    """Run the exported model in onnxruntime and compare it with ``Predictor(net)(x)``, the plain protocol the
    graph computes (:meth:`~restoration.inference.Predictor.export_module`).

    ``net`` is the float32 network; for ``dtype="fp16"`` the model gets float16 input and is compared with a
    float16 copy of ``net`` (bound: ``atol``) and with ``net`` itself (reported).

    Raises:
        ExportError: onnxruntime is missing, ``dtype`` is bf16 (its CPU provider has no bfloat16 kernels:
            :func:`check_graph_dtype`), or the error exceeds ``rtol`` (fp32, relative) / ``atol`` (fp16).
    """
    if dtype == "bf16":
        raise ExportError("onnxruntime's CPU provider has no bfloat16 kernels (NOT_IMPLEMENTED for Sub, Conv, ...): "
                          "a bf16 model is checked as a graph (check_graph_dtype), not run")
    ort = _require("onnxruntime")
    spec = arch_spec(net)
    torch_dtype = DTYPES[dtype]
    low = copy.deepcopy(net).to(torch_dtype).eval() if torch_dtype != torch.float32 else net.eval()
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    results = []
    generator = torch.Generator().manual_seed(1)
    for h, w in sizes or check_sizes(net, spec):
        x = torch.rand(batch, spec.in_channels or 3, h, w, generator=generator)
        with torch.no_grad():
            reference_fp32 = Predictor(net.eval(), spec)(x)
            with _default_dtype(torch_dtype):
                reference = Predictor(low, spec)(x.to(torch_dtype)).float()
        out = torch.from_numpy(session.run(["output"], {"input": x.to(torch_dtype).numpy()})[0]).float()
        if out.shape != reference.shape:
            raise ExportError(f"{path}: input {tuple(x.shape)} gave {tuple(out.shape)}, PyTorch {tuple(reference.shape)}")
        err = float((out - reference).abs().max())
        rel = err / max(float(reference.abs().max()), 1e-12)
        results.append(ExportCheck(tuple(x.shape), rel, err, float((out - reference_fp32).abs().max())))
        if dtype == "fp32" and not rel <= rtol:
            raise ExportError(f"{path}: onnxruntime differs from PyTorch on input {tuple(x.shape)}: max relative "
                              f"error {rel:.2e} > {rtol:.0e}")
        if dtype != "fp32" and not err <= atol:
            raise ExportError(f"{path}: onnxruntime ({dtype}) differs from PyTorch ({dtype}) on input "
                              f"{tuple(x.shape)}: max abs error {err:.2e} > {atol:.0e}")
    return results


def check_graph_dtype(path: str, dtype: str) -> int:
    """Check the ONNX file's dtype without running it: ``input``/``output`` and every floating-point
    initializer with more than one value (the weights) are ``dtype``, and ``onnx.checker`` (with shape
    inference) accepts the model.

    Returns:
        The number of floating-point initializers with more than one value (all of ``dtype``).

    Raises:
        ExportError: Naming the first tensor of another dtype, or the checker's complaint.
    """
    import onnx  # optional dependency
    from onnx import TensorProto  # optional dependency

    want = {"fp32": TensorProto.FLOAT, "fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}[dtype]
    floating = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:  # TBSN bf16: Einsum
        raise ExportError(f"{path}: onnx.checker rejects the model: {str(exc).splitlines()[0]}") from exc
    name = TensorProto.DataType.Name
    for value in (*model.graph.input, *model.graph.output):
        got = value.type.tensor_type.elem_type
        if got != want:
            raise ExportError(f"{path}: {value.name} is {name(got)}, expected {name(want)}")
    count = 0
    for init in model.graph.initializer:
        # scalars are the exporter's constants of size arithmetic and of masks a network builds in float32
        # (window_partition's shifted-window mask, cast to the dtype where it meets the attention)
        if init.data_type in floating and math.prod(init.dims) > 1:
            if init.data_type != want:
                raise ExportError(f"{path}: initializer {init.name} is {name(init.data_type)}, expected {name(want)}")
            count += 1
    return count


def export_safetensors(net: nn.Module, path: str, metadata: dict[str, str] | None = None) -> str:
    """Write ``net``'s state dict (the official key layout; loads back with ``load_weights``) as ``.safetensors``.

    The metadata records the network options (``network_g``, JSON) and where the weights came from.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # own contiguous copies: safetensors refuses tensors that share storage (tied or viewed buffers)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}
    save_file(state, path, metadata={"format": "pt", **(metadata or {})})
    return path


def load_network(weights: str, arch: str | None = None, arch_opt: dict[str, Any] | None = None,
                 opt_file: str | None = None, param_key: str | None = None,
                 build_overrides: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any], str]:
    """Build the network for ``weights`` and load them strictly.

    ``build_overrides`` change the build only, not the returned options (``{"attn_backend": "reference"}``); a
    key the network's constructor does not take is left out (a family of the user's need not have it).

    Returns:
        ``(net, network_g, source)``: the network in eval mode, its options, and where they came from.
    """
    # the same resolution as inference (-opt, --arch, options beside the weights, detection from the keys)
    detection = resolve_network(weights, arch=arch, arch_opt=arch_opt, opt_file=opt_file, param_key=param_key)
    network_g = detection.network_opt()
    accepted = keyword_parameters(ARCH_REGISTRY.get(network_g["type"]))
    overrides = {k: v for k, v in (build_overrides or {}).items() if accepted is None or k in accepted}
    net = build_network({**network_g, **overrides})
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
    p.add_argument("--dtype", choices=tuple(DTYPES), default="fp32",
                   help="dtype of the ONNX model's weights, input and output (bf16: dynamo, opset >= 22)")
    p.add_argument("--opset", type=int, default=None,
                   help=f"ONNX opset (default: dynamo {DYNAMO_OPSET}, {BF16_MIN_OPSET} for bf16; torchscript "
                        f"{TORCHSCRIPT_OPSET})")
    p.add_argument("--slim", action="store_true", help="simplify the model with onnxslim (pip install onnxslim)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch comparison")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    try:
        return _run(args)
    except RestorationError as exc:
        print(f"{type(exc).__name__}: {user_error_message(exc)}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    fmt = args.format or ("safetensors" if args.output.endswith(".safetensors") else "onnx")
    arch_opt = parse_arch_opt(args.arch_opt) or None  # the user's arguments first
    if fmt == "onnx":  # every argument problem before the (slow) network build
        resolve_opset(args.exporter, args.dtype, args.opset)
        if args.exporter == "dynamo":
            _require_dynamo_exporter()
        if args.slim:
            _require_onnxslim()
    # every network takes attn_backend; all backends compute the same function (tests/test_*attention*.py)
    overrides = {"attn_backend": "reference"} if fmt == "onnx" else None
    net, network_g, source = load_network(args.weights, args.arch, arch_opt, args.opt, args.param_key, overrides)
    metadata = {"restoration.network_g": json.dumps(network_g), "restoration.weights": os.path.basename(args.weights),
                "restoration.param_key": str(args.param_key or "auto")}
    print(f"network: {network_g['type']} from {source}; weights: {entry_note(args.weights, args.param_key)}")
    if fmt == "safetensors":
        export_safetensors(net, args.output, metadata)
        print(f"wrote {args.output} ({sum(v.numel() for v in net.state_dict().values()):,} values)")
        return 0
    refuse_unexportable(net)
    start = time.perf_counter()
    export_onnx(net, args.output, args.exporter, metadata, dtype=args.dtype, opset=args.opset, slim=args.slim)
    spec = arch_spec(net)
    print(f"wrote {args.output} in {time.perf_counter() - start:.1f} s (opset {written_opset(args.output)}, "
          f"{args.dtype}{', slimmed' if args.slim else ''}): input (B, {spec.in_channels}, H, W) in [0, 1], "
          f"H, W >= {min_side(net, spec)}; output x{spec.scale} in [0, 1]")
    if args.no_check:
        return 0
    if args.dtype == "bf16":
        count = check_graph_dtype(args.output, "bf16")
        print(f"check: input, output and {count} weight tensors are bfloat16 and onnx.checker accepts the model; "
              "not run: onnxruntime's CPU provider has no bfloat16 kernels")
        return 0
    try:
        __import__("onnxruntime")
    except ImportError:
        print("onnxruntime not installed: the exported model was not checked (pip install onnxruntime)")
        return 0
    for r in check_onnx(args.output, net, dtype=args.dtype):
        if args.dtype == "fp32":
            print(f"check: input {r.shape}: max relative error vs PyTorch {r.rel_error:.1e}")
        else:
            print(f"check: input {r.shape}: max |onnx - torch| {r.abs_error:.1e} in {args.dtype}, "
                  f"{r.abs_error_fp32:.1e} vs float32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
