"""Check an exported ONNX model: run it in onnxruntime against the PyTorch network, or (bfloat16) read its graph.

After exporting, the model is run in onnxruntime (when installed) at two sizes -- one a multiple of nothing,
one a multiple of the window -- and compared with the PyTorch network under the same contract (the plain
:class:`restoration.inference.Predictor`, what the graph computes), in the export dtype and in float32;
``--no-check`` skips this.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from restoration.archs.spec import ArchSpec, arch_spec
from restoration.deploy.onnx_export import DTYPES, default_dtype, min_side, next_prime, require_optional
from restoration.errors import ExportError
from restoration.inference import Predictor

__all__ = ["CHECK_RTOL", "CHECK_ATOL_FP16", "ExportCheck", "check_sizes", "check_onnx", "check_graph_dtype"]

#: Default tolerance of the onnxruntime check: max |onnx - torch| / max |torch| in float32.
CHECK_RTOL = 1e-4
#: Default tolerance of the float16 check: max |onnx - torch| with both in float16, [0, 1] units (2.5 8-bit
#: levels; measured: 4.9e-4, one float16 step below 1, on the tiny test networks; docs/export.md).
CHECK_ATOL_FP16 = 1e-2


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
    odd = next_prime(2 * side + 1)  # two or more windows per side, so shifted windows meet the border
    return [(odd, next_prime(odd + 1)), (2 * aligned, 3 * aligned)]


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
    ort = require_optional("onnxruntime")
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
            with default_dtype(torch_dtype):
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
