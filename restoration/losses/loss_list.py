"""``train.losses``: the list of losses a trainer sums, each ``{type: <registered loss>, label?, ...kwargs}``.

BasicSR's per-loss slots (``pixel_opt``, ``perceptual_opt``) are accepted and translated into entries of
the same list, so old option files keep working and a new loss is one file plus one registry line::

    train:
      losses:
        - {type: L1Loss, loss_weight: 1.0}                       # logged as l_pix
        - {type: PerceptualLoss, layers: [conv5_4], ..., label: l_vgg}

A loss's log label is the entry's ``label``, else the class attribute ``label`` (``L1Loss``: ``l_pix``),
else ``l_<type>``; a loss that returns a pair (perceptual, style) logs the second as ``<label>_style``.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn

from restoration.losses import register_losses
from restoration.registry import LOSS_REGISTRY, build_from_registry

__all__ = ["LEGACY_LOSS_SLOTS", "loss_entries", "build_losses", "evaluate_losses"]

#: BasicSR's loss slots in ``train:`` and the label each one logs under.
LEGACY_LOSS_SLOTS: dict[str, str] = {"pixel_opt": "l_pix", "perceptual_opt": "l_percep"}


def _default_label(entry: Mapping[str, Any]) -> str:
    register_losses()
    name = str(entry.get("type"))
    try:
        cls = LOSS_REGISTRY.get(name)
    except KeyError:
        cls = None
    return getattr(cls, "label", None) or f"l_{name.lower()}"


def loss_entries(train_opt: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The losses of a ``train:`` section: the legacy slots first, then ``losses``, each with a unique ``label``."""
    entries: list[dict[str, Any]] = []
    for key, label in LEGACY_LOSS_SLOTS.items():
        if isinstance(train_opt.get(key), Mapping):
            entries.append({"label": label, **train_opt[key]})
    for entry in train_opt.get("losses") or []:
        if isinstance(entry, Mapping):
            entries.append({"label": entry.get("label") or _default_label(entry), **{k: v for k, v in entry.items() if k != "label"}})
    seen: dict[str, int] = {}
    for entry in entries:  # the same loss twice (e.g. two pixel losses) logs as l_pix, l_pix_2
        base = entry["label"]
        seen[base] = seen.get(base, 0) + 1
        if seen[base] > 1:
            entry["label"] = f"{base}_{seen[base]}"
    return entries


def build_losses(train_opt: Mapping[str, Any]) -> dict[str, nn.Module]:
    """``{label: loss module}`` for every entry of :func:`loss_entries`, built through the loss registry."""
    register_losses()
    out: dict[str, nn.Module] = {}
    for entry in loss_entries(train_opt):
        label = entry.pop("label")
        out[label] = build_from_registry(LOSS_REGISTRY, entry)
    return out


def needs_ema_output(losses: Mapping[str, nn.Module]) -> bool:
    """Whether a loss compares with the EMA generator's output (``needs_ema_output = True``, e.g. LDL)."""
    return any(getattr(loss_fn, "needs_ema_output", False) for loss_fn in losses.values())


def evaluate_losses(losses: Mapping[str, nn.Module], output: Tensor, target: Tensor,
                    ema_output: Tensor | None = None) -> dict[str, Tensor]:
    """``{label: value}`` of every loss on ``(output, target)``; a (perceptual, style) pair gives two entries.

    ``ema_output`` (the EMA generator's output for the same input, no gradient) goes to the losses that
    declare ``needs_ema_output`` (:func:`needs_ema_output`).
    """
    values: dict[str, Tensor] = {}
    for label, loss_fn in losses.items():
        if getattr(loss_fn, "needs_ema_output", False):
            value = loss_fn(output, target, ema_output=ema_output)
        else:
            value = loss_fn(output, target)
        if isinstance(value, tuple):
            for suffix, part in zip(("", "_style"), value):
                if part is not None:
                    values[label + suffix] = part
        else:
            values[label] = value
    return values
