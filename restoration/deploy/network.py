"""The network for a checkpoint, without a training option file; what ``restoration-infer`` and
``restoration-export`` build.

The order: ``-opt file.yml`` (its ``network_g``, or a bare ``{type: ..., ...}``); ``--arch NAME`` (the shapes read
from the checkpoint, for a family :mod:`restoration.archs.detect` knows; all kwargs from ``--arch-opt`` otherwise);
the options saved beside a training run's weights (``experiments/<name>/options/*.yml`` next to ``models/``); the
checkpoint's own keys, matched to the released configurations. ``--arch-opt '{json}'`` overrides single kwargs in
every case.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from restoration.archs import register_archs
from restoration.archs.build import build_network
from restoration.archs.detect import Detection, detect_architecture, detectable_archs
from restoration.errors import InferArgumentError, InferError, RestorationError, value_repr
from restoration.options.yaml_io import load_yaml, yaml_problem
from restoration.registry import ARCH_REGISTRY
from restoration.schema import keyword_parameters
from restoration.utils.weights import load_weights, read_state_dict

__all__ = ["parse_arch_opt", "resolve_network", "build_detected", "load_network"]


def parse_arch_opt(text: str | None) -> dict[str, Any]:
    """``--arch-opt``'s JSON object (``{}`` when not given).

    Raises:
        InferArgumentError: Not JSON, or not a JSON object.
    """
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InferArgumentError(f"--arch-opt is not valid JSON ({exc.msg} at character {exc.pos}): "
                                 f"{value_repr(text)}") from exc
    if not isinstance(value, dict):
        raise InferArgumentError(f"--arch-opt must be a JSON object such as '{{\"img_range\": 255}}', "
                                 f"got {value_repr(text)}")
    return value


def _network_from_yaml(path: str, key: str = "network_g") -> dict[str, Any]:
    if not os.path.isfile(path):
        raise InferArgumentError(f"-opt {path}: no such file")
    try:
        data = load_yaml(path)
    except yaml.YAMLError as exc:
        if isinstance(exc, RestorationError):  # an alias bomb: refused whichever way the file came
            raise
        raise InferError(f"{path} is not valid YAML: {yaml_problem(exc)}") from None
    if isinstance(data, dict) and isinstance(data.get(key), dict):
        if "type" not in data[key]:
            raise InferError(f"{path}: '{key}' has no 'type' (the architecture name)")
        return dict(data[key])
    if isinstance(data, dict) and "type" in data:
        return dict(data)
    raise InferError(f"{path} has no '{key}' section and is not a network dict with 'type'")


def _options_beside(weights: Path) -> tuple[dict[str, Any], str] | None:
    """``network_<n>`` of the newest ``experiments/<name>/options/*.yml`` beside ``models/net_<n>_*.pth``."""
    if weights.parent.name != "models":
        return None
    folder = weights.parent.parent / "options"
    if not folder.is_dir():
        return None
    net = weights.name.split("_")[1] if weights.name.startswith("net_") and weights.name.count("_") >= 2 else "g"
    for yml in sorted(folder.glob("*.yml"), key=lambda f: f.stat().st_mtime, reverse=True):
        try:
            return _network_from_yaml(str(yml), f"network_{net}"), str(yml)
        except InferError:
            continue
    return None


def _checked_type(detection: Detection, user_named: bool) -> Detection:
    """``detection`` once its ``type`` resolves in the arch registry. A ``module:attr`` type imports code, so
    it is accepted only from the command line (``-opt``, ``--arch``, ``--arch-opt``), never from a file found
    beside the weights, and only when it names an ``nn.Module`` subclass (:meth:`Registry.get`)."""
    if not isinstance(detection.arch, str):
        raise InferError(f"{detection.source}: the network 'type' must be an architecture name, "
                         f"got {type(detection.arch).__name__}")
    register_archs()
    ARCH_REGISTRY.get(detection.arch, user_named=user_named, source=detection.source)
    return detection


def resolve_network(weights: str, arch: str | None = None, arch_opt: dict[str, Any] | None = None,
                    opt_file: str | None = None, param_key: str | None = None) -> Detection:
    """Which network to build for ``weights`` (see the module docstring for the order).

    Raises:
        InferArgumentError: ``opt_file`` does not exist.
        InferError: ``opt_file`` (or the options beside the weights) holds no network.
        RegistryError: The ``type`` is unknown, or an import path where one is not allowed (see
            :func:`_checked_type`).
        DetectionError: The checkpoint's keys match no family (or not the named one).
    """
    arch_opt = dict(arch_opt or {})
    if opt_file:
        net_opt = {**_network_from_yaml(opt_file), **arch_opt}
        return _checked_type(Detection(net_opt.pop("type"), net_opt, source=opt_file), user_named=True)
    if arch is not None and arch not in detectable_archs():  # not detectable (e.g. SimpleSRNet): all from --arch-opt
        return _checked_type(Detection(arch, arch_opt, source="--arch/--arch-opt"), user_named=True)
    if arch is None:
        beside = _options_beside(Path(weights))
        if beside is not None:
            net_opt, source = beside
            net_opt = {**net_opt, **arch_opt}
            # found on disk, maybe downloaded with the weights: registered names only (unless --arch-opt names it)
            return _checked_type(Detection(net_opt.pop("type"), net_opt, source=source), user_named="type" in arch_opt)
    return detect_architecture(read_state_dict(weights, param_key), arch=arch, overrides=arch_opt, where=weights)


def build_detected(detection: Detection) -> nn.Module:
    """The network of ``detection`` (random weights).

    Raises:
        InferError: Its constructor refuses the options (a ``TypeError``/``ValueError`` of its own check), naming
            the architecture and where the options came from.
    """
    try:
        return build_network(detection.network_opt())
    except (TypeError, ValueError) as exc:  # the constructor's option check
        if isinstance(exc, RestorationError):
            raise
        raise InferError(f"cannot build {detection.arch} from {detection.source}: {exc}") from exc


def load_network(weights: str, arch: str | None = None, arch_opt: dict[str, Any] | None = None,
                 opt_file: str | None = None, param_key: str | None = None,
                 build_overrides: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any], str]:
    """Build the network for ``weights`` (:func:`resolve_network`) and load them strictly.

    ``build_overrides`` change the build only, not the returned options (``{"attn_backend": "reference"}``); a
    key the network's constructor does not take is left out (a family of the user's need not have it).

    Returns:
        ``(net, network_g, source)``: the network in eval mode, its options, and where they came from.
    """
    detection = resolve_network(weights, arch=arch, arch_opt=arch_opt, opt_file=opt_file, param_key=param_key)
    network_g = detection.network_opt()
    accepted = keyword_parameters(ARCH_REGISTRY.get(network_g["type"]))
    overrides = {k: v for k, v in (build_overrides or {}).items() if accepted is None or k in accepted}
    net = build_network({**network_g, **overrides})
    load_weights(net, weights, param_key=param_key, strict=True)
    return net.eval(), network_g, detection.describe()
