"""CUDA autocast's casting rules, applied to CPU tensors: a GPU-free check of mixed-precision training.

``torch.autocast("cpu", dtype)`` and ``torch.autocast("cuda", dtype)`` cast different ops. CUDA runs
softmax, layer_norm, group_norm, pow, exp, sum, the losses and the upsampling ops in float32 and casts
einsum, mv, addmv to the low dtype; the CPU keeps all of those in the input's dtype, and instead runs
reflection/replication padding, grid_sample, max_pool3d, the FFTs and linear algebra in float32 and
promotes ``cat``/``stack``. A network whose mixed-precision step works on the CPU can therefore meet other
dtypes on a GPU (a float32 softmax saved for a bf16 matmul's backward; a float32 norm feeding a custom
autograd Function that assumed one dtype).

:func:`cuda_autocast` enters ``torch.autocast("cpu", dtype)`` and, for its duration, replaces the kernels
registered for the ``AutocastCPU`` dispatch key with CUDA's policies:

* every op of CUDA's lists (:data:`LOWER_PRECISION_FP`, :data:`FP32`, :data:`FP32_SET_OPT_DTYPE`,
  :data:`FP32_APPEND_DTYPE`, :data:`PROMOTE`) gets a kernel that casts its arguments the way CUDA's
  ``WrapFunction`` does (``aten/src/ATen/autocast_mode.h``, ``CastPolicy``) and calls the op again with
  the autocast key excluded;
* every op that only the CPU's list names gets a fall-through kernel: no cast, as on CUDA.

The lists are those of PyTorch's ``aten/src/ATen/autocast_mode.h`` (``AT_FORALL_LOWER_PRECISION_FP``,
``AT_FORALL_FP32``, ``AT_FORALL_FP32_SET_OPT_DTYPE``, ``AT_FORALL_DIFFERENT_REDISPATCH_SIGNATURE``,
``AT_FORALL_PROMOTE``) plus ``cudnn_convolution``, ``cudnn_convolution_transpose`` and the banned
``binary_cross_entropy`` registered in ``autocast_mode.cpp``, read from PyTorch's main branch (the version
that lists the upsampling ops as float32), plus ``rms_norm``, which the 2.14.1 binary this project tests
with registers and casts to float32 (observed on a fake CUDA tensor). The GPU machine has torch 2.11: its
lists were not read; :func:`unlisted_ops` run there says how they differ. :func:`unlisted_ops` compares them with the
``AutocastCUDA`` registrations of the torch that runs, so a torch whose lists moved fails
``tests/test_cuda_autocast_families.py`` by name rather than emulating stale rules.

Because the override sits in the dispatcher, it also applies to ops that composite ops call from C++
(``layer_norm`` -> ``native_layer_norm``, ``F.interpolate`` -> ``upsample_nearest2d``, ``Tensor.norm``),
exactly where CUDA's kernels apply. What it cannot emulate:

* numerics of CUDA's kernels: a CPU bf16 convolution accumulates differently from cuDNN's (TF32, split-K);
  only the dtypes each op sees and returns are CUDA's;
* ops that exist only as CUDA kernels (fused SDPA backends, cuDNN RNN): the CPU runs its own kernel;
* autocast's weight-cast cache (a speed detail, numerically the same cast);
* a backward run inside the context: on the CPU it would run under autocast too, while CUDA's backward
  ops follow the forward's dtypes. Run backward after leaving the context, as training does.

Only the thread that enters the context sees CUDA's rules (the override is process-wide but acts only
while CPU autocast is enabled, which is thread-local). Not reentrant.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

__all__ = ["BANNED", "FP32", "FP32_APPEND_DTYPE", "FP32_SET_OPT_DTYPE", "LOWER_PRECISION_FP", "NOT_EMULATED",
           "PROMOTE", "cpu_only_ops", "cuda_autocast", "unlisted_ops"]

#: CUDA casts these to the autocast dtype (``AT_FORALL_LOWER_PRECISION_FP`` and the two cuDNN convolutions).
LOWER_PRECISION_FP: tuple[str, ...] = (
    "_convolution.deprecated", "_convolution", "conv1d", "conv2d", "conv3d", "conv_tbc", "conv_transpose1d",
    "conv_transpose2d.input", "conv_transpose3d.input", "convolution", "prelu", "addmm", "addmv", "addr",
    "matmul", "einsum", "mm", "mv", "linalg_vecdot", "linear", "addbmm", "baddbmm", "bmm", "chain_matmul",
    "linalg_multi_dot", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "lstm_cell", "gru_cell",
    "rnn_tanh_cell", "rnn_relu_cell", "_scaled_dot_product_flash_attention", "scaled_dot_product_attention",
    "cudnn_convolution", "cudnn_convolution_transpose")

#: CUDA casts these to float32 (``AT_FORALL_FP32``).
FP32: tuple[str, ...] = (
    "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p", "reciprocal", "rsqrt",
    "sinh", "tan", "pow.Tensor_Scalar", "pow.Tensor_Tensor", "pow.Scalar", "softplus", "layer_norm",
    "native_layer_norm", "group_norm", "frobenius_norm.dim", "nuclear_norm", "nuclear_norm.dim",
    "cosine_similarity", "poisson_nll_loss", "cosine_embedding_loss", "nll_loss", "nll_loss2d",
    "hinge_embedding_loss", "kl_div", "l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss",
    "margin_ranking_loss", "multilabel_margin_loss", "soft_margin_loss", "triplet_margin_loss",
    "multi_margin_loss", "binary_cross_entropy_with_logits", "dist", "pdist", "cdist", "renorm", "logsumexp",
    "upsample_nearest1d", "_upsample_nearest_exact1d", "upsample_nearest2d", "_upsample_nearest_exact2d",
    "upsample_nearest3d", "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d",
    "_upsample_bilinear2d_aa", "upsample_trilinear3d", "upsample_bicubic2d", "_upsample_bicubic2d_aa",
    "rms_norm")

#: Registered for AutocastCUDA by torch 2.14.1 but not emulated: a cuDNN-only kernel, and a linear-algebra op
#: whose policy was not read from a source (none of the project's networks calls either).
NOT_EMULATED: tuple[str, ...] = ("_cudnn_rnn", "linalg_matrix_sqrth")

#: CUDA passes ``dtype=float32`` when the caller gave none and the first argument is a low-precision
#: floating tensor; the tensors themselves are not cast (``AT_FORALL_FP32_SET_OPT_DTYPE``).
FP32_SET_OPT_DTYPE: tuple[str, ...] = (
    "prod", "prod.dim_int", "prod.dim_Dimname", "softmax.int", "softmax.Dimname", "log_softmax.int",
    "log_softmax.Dimname", "cumprod", "cumprod.dimname", "cumsum", "cumsum.dimname", "linalg_vector_norm",
    "linalg_matrix_norm", "linalg_matrix_norm.str_ord", "sum", "sum.dim_IntList", "sum.dim_DimnameList")

#: CUDA redispatches these to the overload with a ``dtype`` argument, float32
#: (``AT_FORALL_DIFFERENT_REDISPATCH_SIGNATURE``): registered name -> the overload it calls.
FP32_APPEND_DTYPE: dict[str, str] = {
    "norm.Scalar": "norm.ScalarOpt_dtype", "norm.ScalarOpt_dim": "norm.ScalarOpt_dim_dtype",
    "norm.names_ScalarOpt_dim": "norm.names_ScalarOpt_dim_dtype"}

#: CUDA casts these to the widest floating dtype among their arguments (``AT_FORALL_PROMOTE``).
PROMOTE: tuple[str, ...] = ("addcdiv", "addcmul", "atan2", "bilinear", "cross", "dot", "vdot", "grid_sampler",
                            "index_put", "tensordot", "scatter_add")

#: CUDA refuses these under autocast (``binary_cross_entropy_banned`` in ``autocast_mode.cpp``).
BANNED: tuple[str, ...] = ("binary_cross_entropy",)


def cpu_only_ops() -> list[str]:
    """Ops with an ``AutocastCPU`` kernel and no CUDA policy: under the emulation they are not cast."""
    cuda = set(_all_cuda_ops())
    return sorted(name for name in _registered("AutocastCPU") if name not in cuda)


def unlisted_ops() -> tuple[list[str], list[str]]:
    """``(registered by this torch for AutocastCUDA but not in these lists, listed but not registered)``."""
    registered, listed = set(_registered("AutocastCUDA")), set(_all_cuda_ops())
    return sorted(registered - listed - set(NOT_EMULATED)), sorted(listed - registered)


def _registered(key: str) -> list[str]:
    names = torch._C._dispatch_get_registrations_for_dispatch_key(key)
    return [n.removeprefix("aten::") for n in names if n.startswith("aten::")]


def _all_cuda_ops() -> list[str]:
    return [*LOWER_PRECISION_FP, *FP32, *FP32_SET_OPT_DTYPE, *FP32_APPEND_DTYPE, *PROMOTE, *BANNED]


def _overload(name: str) -> torch._ops.OpOverload | None:
    """``"softmax.int"`` -> ``torch.ops.aten.softmax.int`` (None: this build has no such op)."""
    base, _, overload = name.partition(".")
    packet = getattr(torch.ops.aten, base, None)
    if packet is None:
        return None
    return getattr(packet, overload or "default", None)


def _eligible(value: Any) -> bool:
    """A tensor autocast casts: floating, not float64 (``is_eligible`` in autocast_mode.h)."""
    return isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != torch.float64


def _cast(value: Any, dtype: torch.dtype) -> Any:
    if _eligible(value):
        return value.to(dtype)
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, dtype) for v in value)
    return value


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


_NO_AUTOCAST = torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCPU)


def _without_autocast(op: torch._ops.OpOverload, args: tuple, kwargs: dict) -> Any:
    with torch._C._ExcludeDispatchKeyGuard(_NO_AUTOCAST):
        return op(*args, **kwargs)


def _first_arg_eligible(args: tuple) -> bool:
    return bool(args) and _eligible(args[0])


def _lower_precision_kernel(op: torch._ops.OpOverload):  # noqa: ANN202
    def kernel(*args: Any, **kwargs: Any) -> Any:
        dtype = torch.get_autocast_dtype("cpu")
        return _without_autocast(op, _cast(args, dtype), _cast(kwargs, dtype))
    return kernel


def _fp32_kernel(op: torch._ops.OpOverload):  # noqa: ANN202
    def kernel(*args: Any, **kwargs: Any) -> Any:
        return _without_autocast(op, _cast(args, torch.float32), _cast(kwargs, torch.float32))
    return kernel


def _promote_kernel(op: torch._ops.OpOverload):  # noqa: ANN202
    def kernel(*args: Any, **kwargs: Any) -> Any:
        # promote_type: the autocast dtype, widened to float32 when an eligible argument is float32
        widest = torch.get_autocast_dtype("cpu")
        for t in _tensors((args, kwargs)):
            if _eligible(t) and t.dtype == torch.float32:
                widest = torch.float32
        return _without_autocast(op, _cast(args, widest), _cast(kwargs, widest))
    return kernel


def _set_opt_dtype_kernel(op: torch._ops.OpOverload):  # noqa: ANN202
    names = [a.name for a in op._schema.arguments]
    position = names.index("dtype")
    kwarg_only = op._schema.arguments[position].kwarg_only

    def kernel(*args: Any, **kwargs: Any) -> Any:
        if _first_arg_eligible(args):
            if kwarg_only or len(args) <= position:
                if kwargs.get("dtype") is None:
                    kwargs = {**kwargs, "dtype": torch.float32}
            elif args[position] is None:
                args = (*args[:position], torch.float32, *args[position + 1:])
        return _without_autocast(op, args, kwargs)
    return kernel


def _append_dtype_kernel(op: torch._ops.OpOverload, target: torch._ops.OpOverload):  # noqa: ANN202
    def kernel(*args: Any, **kwargs: Any) -> Any:
        if _first_arg_eligible(args):
            return _without_autocast(target, args, {**kwargs, "dtype": torch.float32})
        return _without_autocast(op, args, kwargs)
    return kernel


def _banned_kernel(op: torch._ops.OpOverload):  # noqa: ANN202
    def kernel(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{op} is unsafe to autocast on CUDA (use binary_cross_entropy_with_logits)")
    return kernel


def _library() -> torch.library.Library:
    lib = torch.library.Library("aten", "IMPL")
    kernels = ([(n, _lower_precision_kernel) for n in LOWER_PRECISION_FP] + [(n, _fp32_kernel) for n in FP32]
               + [(n, _set_opt_dtype_kernel) for n in FP32_SET_OPT_DTYPE] + [(n, _promote_kernel) for n in PROMOTE]
               + [(n, _banned_kernel) for n in BANNED])
    for name, make in kernels:
        op = _overload(name)
        if op is not None:
            lib.impl(name, make(op), "AutocastCPU")
    for name, target_name in FP32_APPEND_DTYPE.items():
        op, target = _overload(name), _overload(target_name)
        if op is not None and target is not None:
            lib.impl(name, _append_dtype_kernel(op, target), "AutocastCPU")
    for name in cpu_only_ops():
        lib.impl(name, torch.library.fallthrough_kernel, "AutocastCPU")
    return lib


@contextlib.contextmanager
def cuda_autocast(dtype: torch.dtype) -> Iterator[None]:
    """``torch.autocast("cpu", dtype)`` with CUDA's casting rules for every op (see the module docstring).

    Args:
        dtype: ``torch.bfloat16`` or ``torch.float16``.
    """
    lib = _library()
    try:
        with torch.autocast("cpu", dtype=dtype):
            yield
    finally:
        lib._destroy()  # the CPU's own autocast kernels are registered again
