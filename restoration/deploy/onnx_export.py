"""Write a network as an ONNX model that takes any image size, with the framework's contract inside the graph.

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
Optional dependencies: ``pip install restoration[export]`` (onnx, onnxscript, onnxruntime), ``onnxslim``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import warnings
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from restoration.archs.spec import ArchSpec, arch_spec
from restoration.errors import ExportError
from restoration.inference import predictor_for
from restoration.layers import config

__all__ = ["EXPORTERS", "DTYPES", "TORCHSCRIPT_OPSET", "TORCHSCRIPT_OPSETS", "DYNAMO_OPSET", "BF16_MIN_OPSET",
           "ONNX_REFUSED", "min_side", "next_prime", "example_input", "reference_attention", "require_optional",
           "require_dynamo_exporter", "require_onnxslim", "resolve_opset", "default_dtype", "refuse_unexportable",
           "written_opset", "export_onnx"]

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


def next_prime(n: int) -> int:
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
    h = next_prime(2 * side + 1)
    w = next_prime(h + 1)
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


def require_optional(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the optional package {module!r}: pip install 'restoration[export]' "
                          f"(onnx, onnxscript, onnxruntime)") from exc


def require_dynamo_exporter() -> None:
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
    onnx = require_optional("onnx")
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
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
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
        require_dynamo_exporter()
    if slim:
        require_onnxslim()
    spec = arch_spec(net)
    torch_dtype = DTYPES[dtype]
    if torch_dtype != torch.float32:
        net = copy.deepcopy(net).to(torch_dtype)
    wrapper = predictor_for(net.eval(), spec=spec).export_module().eval()
    x = example_input(net, spec).to(torch_dtype)
    names = dict(input_names=["input"], output_names=["output"])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with _quiet_export(), reference_attention(), torch.no_grad(), default_dtype(torch_dtype):
        if exporter == "dynamo":
            require_optional("onnxscript")
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


def require_onnxslim() -> None:
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
