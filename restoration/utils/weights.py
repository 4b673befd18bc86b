"""Load network weights from BasicSR-style, raw, DDP/compiled or safetensors checkpoints.

Keys are matched **by name only** (never by position), and the whole checkpoint is checked before
anything is copied, so a mismatch never leaves a half-loaded network behind.

Architectures whose official checkpoints carry derived buffers (e.g. SwinIR's ``attn_mask``, whose
shape depends on the training patch size) implement ``adapt_state_dict(state_dict) -> state_dict``;
it verifies such buffers against the ones the network regenerates and drops or converts them. It
must raise on an inconsistent buffer rather than ignore it.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from restoration.errors import WeightsError
from restoration.utils.checkpoint import archive_problem

__all__ = ["WeightsError", "LoadReport", "read_state_dict", "selected_param_key", "load_weights", "load_weights_report",
           "strip_prefixes"]

_PREFIXES = ("module.", "_orig_mod.")
_LOGGER = logging.getLogger("restoration")


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_weights_report` took from a file.

    Attributes:
        taken: Tensors copied from the file (derived buffers the network regenerates are not counted).
        params_taken, params_total: The network's parameters copied from the file, and how many it has.
    """

    path: str
    param_key: str | None
    network: str
    taken: int
    params_taken: int
    params_total: int
    strict: bool

    def __str__(self) -> str:
        key = f"'{self.param_key}'" if self.param_key else "the raw state dict"
        return (f"{self.path} ({key}) into {self.network}: {self.taken} tensors taken from the file, "
                f"{self.params_taken} of {self.params_total} parameters, {'strict' if self.strict else 'non-strict'}")


def strip_prefixes(state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Remove DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) prefixes, wherever they nest."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        while key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        out[key.replace("._orig_mod.", ".")] = value
    return out


def _read_file(path: str) -> Any:
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    if path.endswith(".safetensors"):
        try:
            return load_file(path, device="cpu")
        except SafetensorError as exc:  # its own message never names the file
            raise WeightsError(f"cannot read weights file {path}: {exc}") from exc
    if zipfile.is_zipfile(path):  # torch.load does not check the records' CRC-32: a flipped bit loads silently
        problem = archive_problem(path)
        if problem is not None:
            raise WeightsError(f"cannot read weights file {path}: {problem}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, non-tensor objects
        raise WeightsError(f"cannot read weights file {path}: {exc}") from exc


def read_state_dict(path: str, param_key: str | None = None) -> "OrderedDict[str, torch.Tensor]":
    """Read the state dict stored in ``path``.

    Args:
        path: ``.pth``/``.pt``/``.ckpt`` (read with ``weights_only=True``) or ``.safetensors``.
        param_key: Which entry of a ``{'params': sd, 'params_ema': sd}`` file to use. ``None`` picks
            ``params_ema``, then ``params``, then ``state_dict``, or the file itself when it is a raw
            state dict.

    Returns:
        The state dict with ``module.``/``_orig_mod.`` prefixes removed.
    """
    return _read_selected(path, param_key)[0]


def _read_selected(path: str, param_key: str | None) -> "tuple[OrderedDict[str, torch.Tensor], str | None]":
    """:func:`read_state_dict` and the entry it read (None: a raw state dict)."""
    ckpt = _read_file(path)
    key = _selected_key(ckpt, path, param_key)
    sd = ckpt if key is None else ckpt[key]
    if not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path}: the selected state dict holds non-tensor values")
    return strip_prefixes(sd), key


def _selected_key(ckpt: Any, path: str, param_key: str | None) -> str | None:
    """The entry of ``ckpt`` that :func:`read_state_dict` reads (None: the file is a raw state dict)."""
    if not isinstance(ckpt, Mapping):
        raise WeightsError(f"{path} holds a {type(ckpt).__name__}, not a state dict")
    if param_key is not None:
        if param_key == "params_ema" and param_key not in ckpt and isinstance(ckpt.get("params"), Mapping):
            # BasicSR's load_network does the same: a file saved without an EMA has only 'params' (the official
            # ESRGAN_SRx4_DF2KOST weights, which Real-ESRNet x4plus starts from with param_key_g params_ema)
            _LOGGER.warning(f"{path} has no 'params_ema' entry: using its 'params' (as BasicSR does)")
            return "params"
        if param_key not in ckpt:
            raise WeightsError(
                f"{path} has no entry '{param_key}'; top-level keys: {sorted(ckpt)[:10]}"
            )
        return param_key
    if all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return None
    for key in ("params_ema", "params", "state_dict", "model"):
        if key in ckpt and isinstance(ckpt[key], Mapping):
            return key
    raise WeightsError(
        f"{path}: no 'params_ema', 'params' or 'state_dict' entry and not a raw state dict; "
        f"top-level keys: {sorted(ckpt)[:10]}"
    )


def selected_param_key(path: str, param_key: str | None = None) -> str | None:
    """Which entry of ``path`` :func:`read_state_dict` (and so :func:`load_weights`) reads: ``param_key`` when
    given, else ``'params_ema'``, ``'params'``, ``'state_dict'`` or ``'model'``; None for a raw state dict."""
    return _selected_key(_read_file(path), path, param_key)


def entry_note(path: str, param_key: str | None = None) -> str:
    """Which weights of ``path`` are used and why, for the log: ``entry 'params_ema' (the EMA weights; chosen
    automatically: params_ema, then params)``, ``entry 'params' (given with --param-key)``, ``a plain state dict``."""
    key = selected_param_key(path, param_key)
    if key is None:
        return "a plain state dict"
    what = {"params_ema": " the EMA weights;", "params": " the trained weights, no EMA;"}.get(key, "")
    return f"entry '{key}' ({what.lstrip()} {'given' if param_key else 'chosen automatically: params_ema, then params'})"


def _describe_mismatch(net_sd: Mapping[str, torch.Tensor], sd: Mapping[str, torch.Tensor], strict: bool) -> list[str]:
    if not strict:  # non-strict: shape mismatches are skipped (and logged) by the caller
        return []
    problems = []
    missing = [k for k in net_sd if k not in sd]
    unexpected = [k for k in sd if k not in net_sd]
    for key in net_sd:
        if key in sd and tuple(sd[key].shape) != tuple(net_sd[key].shape):
            problems.append(
                f"shape mismatch for '{key}': checkpoint {tuple(sd[key].shape)}, network {tuple(net_sd[key].shape)}"
            )
    if strict:
        if missing:
            problems.append(f"missing in checkpoint ({len(missing)}): {', '.join(missing[:20])}" + (" ..." if len(missing) > 20 else ""))
        if unexpected:
            problems.append(f"unexpected in checkpoint ({len(unexpected)}): {', '.join(unexpected[:20])}" + (" ..." if len(unexpected) > 20 else ""))
    return problems


def load_weights(
    net: nn.Module, path: str, param_key: str | None = None, strict: bool = True
) -> nn.Module:
    """Load weights from ``path`` into ``net`` (in place) and return ``net``.

    Args:
        net: The network; a DDP or compiled wrapper is unwrapped.
        path: Weights file (see :func:`read_state_dict`).
        param_key: ``'params'``, ``'params_ema'``, ... or ``None`` to choose automatically.
        strict: Require the same key set and shapes (default; anything else is an error). With
            ``strict=False`` (fine-tuning, e.g. x4 from x2 weights) only keys present in both with equal
            shapes are loaded; the skipped ones are logged as a warning.

    Raises:
        WeightsError: Listing every missing/unexpected key and shape mismatch; or, non-strict, not one
            parameter of the network is in the file. Nothing is loaded then.
    """
    load_weights_report(net, path, param_key, strict)
    return net


def load_weights_report(net: nn.Module, path: str, param_key: str | None = None, strict: bool = True) -> LoadReport:
    """:func:`load_weights`, returning what was taken from the file (for the training log)."""
    target = unwrap(net)
    sd, key = _read_selected(path, param_key)
    in_file = set(sd)  # adapt_state_dict may fill in derived buffers: those were not taken from the file
    if hasattr(target, "adapt_state_dict"):
        try:
            sd = target.adapt_state_dict(sd)
        except ValueError as exc:  # the network's own check of a stored buffer: the file does not fit it
            raise WeightsError(f"{path} does not fit {type(target).__name__}: {exc}") from exc
    net_sd = target.state_dict()
    problems = _describe_mismatch(net_sd, sd, strict)
    if problems:
        raise WeightsError(
            f"cannot load {path} into {type(target).__name__}:\n  " + "\n  ".join(problems)
        )
    params = {name for name, _ in target.named_parameters()}
    if not strict:
        skipped = [k for k in sd if k not in net_sd or tuple(sd[k].shape) != tuple(net_sd[k].shape)]
        missing = [k for k in net_sd if k not in sd or k in skipped]
        sd = OrderedDict((k, v) for k, v in sd.items() if k not in skipped)
        if params and not params & in_file & set(sd):
            raise WeightsError(
                f"non-strict load of {path} into {type(target).__name__}: none of its {len(params)} parameters is in "
                f"the file ('{key}') with the same name and shape, nothing would be loaded; check path.param_key "
                f"and the network options (file keys: {sorted(in_file)[:5]})")
        if skipped or missing:
            _LOGGER.warning(
                f"non-strict load of {path}: {len(in_file & set(sd))} tensors taken from the file; skipped from the "
                f"checkpoint (absent or other shape): {skipped[:20]}; left at initialisation: {missing[:20]}"
            )
    target.load_state_dict(sd, strict=strict)
    taken = in_file & set(sd)
    return LoadReport(path, key, type(target).__name__, len(taken), len(params & taken), len(params), strict)


def unwrap(net: nn.Module) -> nn.Module:
    """Return the plain module inside DDP / DataParallel / ``torch.compile`` wrappers."""
    while True:
        if hasattr(net, "_orig_mod"):
            net = net._orig_mod  # type: ignore[assignment]
        elif isinstance(net, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            net = net.module
        else:
            return net
