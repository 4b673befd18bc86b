"""Which architecture, with which hyper-parameters, a state dict belongs to: read from its key names and shapes.

Each family (:mod:`restoration.archs.family`) has one detector in its folder's ``detect.py``,
``state_dict -> (arch name, kwargs)``, that derives every constructor argument the weights *show* (SwinIR:
``layers.{i}.residual_group.blocks.{j}`` counts give ``depths``; ``conv_first.weight`` gives ``embed_dim`` and
``in_chans``; ``attn.relative_position_bias_table`` ``((2ws-1)^2, heads)`` gives ``window_size`` and
``num_heads``; the stored ``attn_mask`` ``((img/ws)^2, ws^2, ws^2)`` gives ``img_size``; the reconstruction keys
give ``upsampler`` and ``upscale``; ...). A detector raises :class:`LayoutMismatch` when the keys are not its
family's, naming what is missing.

Some arguments leave no trace in the weights (SwinIR's ``img_range`` -- 255 for the JPEG models --, DSwinIR's
``dilation``, TBSN's input ``scale``). They are taken from the published configuration the detected one matches
(the family's ``configs``, :func:`published_configs`). A configuration no release has (your own training, a
SwinIR with ``depths [2, 2]``) takes them from the closest published configurations of its class when those agree,
with a notice naming what was assumed, as spandrel does; when they disagree (EDSR-M's ``res_scale`` 1 against
EDSR-L's 0.1) it is refused with the closest releases and what differs: the user then confirms the family with
``--arch`` (the detected shapes are used, invisible arguments at their defaults or from ``--arch-opt``) or gives
the options (``-opt``).

Every detection is verified: the network is built on the meta device from the detected kwargs and its key/shape
set must equal the checkpoint's (:func:`layout_differences`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

from restoration.archs import families, family_of
from restoration.archs.build import build_network
from restoration.archs.closest import closest_family
from restoration.archs.family import Config, Family
from restoration.archs.layout import LayoutMismatch, StateDict
from restoration.errors import DetectionError, UnrecognisedCheckpointError

__all__ = ["Detection", "DetectionError", "LayoutMismatch", "published_configs", "detectable_archs",
           "detect_architecture", "layout_differences"]


@dataclasses.dataclass(frozen=True)
class Detection:
    """The outcome: build ``{"type": arch, **kwargs}``.

    Attributes:
        arch: Registry name (``"SwinIR"``, ``"HAT"``, ``"DSwinIR"``, ``"MSDeformableNAIR"``, ``"TBSN"``, ...).
        kwargs: Constructor arguments.
        release: The matched release's name, or None (options given or confirmed by ``--arch``).
        source: Where the configuration came from, for the log (``"checkpoint keys"``, an options file).
        notice: For a configuration no release has, which settings were assumed (shown once in the log).
    """

    arch: str
    kwargs: dict[str, Any]
    release: str | None = None
    source: str = "checkpoint keys"
    notice: str | None = None

    def network_opt(self) -> dict[str, Any]:
        """The ``network_g``-style option dict for :func:`restoration.archs.build.build_network`."""
        return {"type": self.arch, **self.kwargs}

    def describe(self) -> str:
        what = self.release or self.arch
        return f"{what} ({self.source})" + (f"; {self.notice}" if self.notice else "")


def published_configs() -> list[Config]:
    """Every official configuration detection recognises (one entry per distinct network layout)."""
    return [config for family in families() for config in family.configs]


def detectable_archs() -> list[str]:
    """Registry names :func:`detect_architecture` can read from a checkpoint (``--arch`` accepts them without kwargs)."""
    return [arch for family in families() if family.detect for arch in family.archs]


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def _config_differences(config: Config, family: Family, arch: str, detected: Mapping[str, Any]) -> list[str]:
    """``"embed_dim 96 (release: 180)"`` for every shown kwarg that differs from the published configuration."""
    if config.arch != arch and family.test_time_forms.get(config.arch) != arch:
        return [f"class {arch} (release: {config.arch})"]
    return [f"{key} {detected[key]!r} (release: {config.kwargs[key]!r})"
            for key in detected if key in config.kwargs and key not in config.free
            and _norm(detected[key]) != _norm(config.kwargs[key])]


# --------------------------------------------------------------------------------------------- verification
def layout_differences(network_opt: Mapping[str, Any], sd: StateDict, limit: int = 6) -> list[str]:
    """How the key/shape set of ``build_network(network_opt)`` differs from ``sd`` (empty: identical).

    The network is built on the meta device, so this costs no memory or time even for HAT-L.
    """
    try:
        with torch.device("meta"):
            net = build_network(network_opt)
    except (ValueError, TypeError) as exc:  # the constructor's own option check
        return [f"cannot build {network_opt.get('type')}: {exc}"]
    own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {own[k]}" for k in own if k in sd and tuple(sd[k].shape) != own[k]]
    out = []
    for label, items in (("missing in checkpoint", missing), ("not in network", unexpected), ("shape", shapes)):
        if items:
            out.append(f"{label} ({len(items)}): " + ", ".join(items[:limit]) + (" ..." if len(items) > limit else ""))
    return out


# --------------------------------------------------------------------------------------------- entry point
def detect_architecture(sd: StateDict, arch: str | None = None, overrides: Mapping[str, Any] | None = None,
                        where: str = "checkpoint") -> Detection:
    """Determine the network of state dict ``sd``.

    Args:
        sd: The state dict (prefixes already stripped, see :func:`restoration.utils.weights.read_state_dict`).
        arch: The user's ``--arch``: only this family is tried and a configuration that matches no release is
            accepted (its invisible arguments at the constructor defaults).
        overrides: The user's ``--arch-opt``: replace detected/released kwargs.
        where: Names the checkpoint in messages.

    Raises:
        UnrecognisedCheckpointError: No family recognises the keys (the message names the closest family and
            the keys that differ).
        DetectionError: The configuration matches no release and the closest
            releases disagree on a setting the weights do not show (they are listed with what differs); or the
            detected network's keys/shapes still differ from ``sd``. A configuration no release has, whose closest
            releases agree on what the weights do not show, is accepted with a :attr:`Detection.notice`.
    """
    overrides = dict(overrides or {})
    own = family_of(arch) if arch is not None else None
    if arch is not None and (own is None or own.detect is None):
        raise DetectionError(f"--arch {arch!r} cannot be detected from a checkpoint; detectable: "
                             f"{sorted(detectable_archs())} (or give all options with -opt)")
    tried = [own] if own is not None else [f for f in families() if f.detect]
    found: list[tuple[str, dict[str, Any]]] = []
    not_it: list[str] = []
    for candidate in tried:
        try:
            found.append(candidate.detector()(sd))
        except LayoutMismatch as exc:
            not_it.append(f"not {candidate.name}: {exc}")
    if not found:
        closest = closest_family(sd, tried)
        why = next((reason for reason in not_it if closest and reason.startswith(f"not {closest.family}:")), "")
        raise UnrecognisedCheckpointError(
            f"{where}: the keys match no supported architecture"
            + (f"; {closest.describe()}" + (f" ({why})" if why else "") if closest else
               f" and share no key pattern with any of them (first keys: {', '.join(list(sd)[:4])})")
            + ". Pass --arch NAME --arch-opt '{...}' or -opt options.yml")
    name, kwargs = found[0]
    family = family_of(name)
    assert family is not None, f"a detector returned {name!r}, which no family registers"
    if arch is not None and arch != name:  # e.g. --arch DSwinIR for a GDFN layout: the user's class decides
        adapt = family.adapter()
        name, kwargs = adapt(kwargs, arch) if adapt is not None else (arch, kwargs)
    release, notice = None, None
    if arch is None:
        ranked = sorted(((_config_differences(c, family, name, kwargs), c) for c in family.configs),
                        key=lambda item: len(item[0]))
        best_diff, release = ranked[0]
        if best_diff:
            kwargs, notice = _assume_unshown(ranked, family, name, kwargs, where)
            release = None
        else:
            kwargs = {**release.kwargs, **kwargs}
            name = release.arch  # the release's test-time form (NAFNetLocal) when it names one
    kwargs.update(overrides)
    detection = Detection(name, kwargs, release.name if release and not overrides else None,
                          "checkpoint keys" + (" + --arch-opt" if overrides else ""), notice)
    problems = layout_differences(detection.network_opt(), sd)
    if problems:
        raise DetectionError(f"{where}: detected {name} {_brief(kwargs)}, but its layout differs from the "
                             f"checkpoint: " + "; ".join(problems) + ". Pass -opt options.yml")
    return detection


def _assume_unshown(ranked: list[tuple[list[str], Config]], family: Family, name: str, kwargs: dict[str, Any],
                    where: str) -> tuple[dict[str, Any], str]:
    """A configuration no release has: the shapes read from the weights, and what the weights do not show (e.g.
    ``img_range``) taken from the closest published configurations of the same class, when they agree on it.

    Returns the complete kwargs and a notice naming the assumed settings.

    Raises:
        DetectionError: The closest configurations disagree on a setting the weights do not show (EDSR-M's
            ``res_scale`` 1 against EDSR-L's 0.1): truly ambiguous, so the user says which.
    """
    same_class = [(d, c) for d, c in ranked if not d or not d[0].startswith("class ")]
    fewest = len(same_class[0][0]) if same_class else None
    closest = [c for d, c in same_class if len(d) == fewest]
    first = ranked[0][0][0].split(" (release")[0]
    listing = "; ".join(f"{c.name}: " + ", ".join(d[:3]) + (" ..." if len(d) > 3 else "") for d, c in ranked[:3])
    unshown = {key: [c.kwargs[key] for c in closest] for key in (closest[0].kwargs if closest else {})
               if key not in kwargs}
    disagree = {key: values for key, values in unshown.items() if any(_norm(v) != _norm(values[0]) for v in values)}
    if not closest or disagree:
        why = ("; the closest ones disagree on what the weights do not show (" + ", ".join(
            f"{key}: " + " / ".join(f"{v!r} in {c.name}" for v, c in zip(values, closest))
            for key, values in disagree.items()) + ")") if disagree else ""
        raise DetectionError(
            f"{where}: {family.name}-like, but {first} is not a released config{why} (closest: {listing}). "
            f"Pass --arch {name} to use the shapes read from the checkpoint ({_brief(kwargs)}), "
            f"--arch-opt '{{json}}' for what the weights do not show, or -opt options.yml")
    assumed = {key: values[0] for key, values in unshown.items()}
    notice = (f"not a released {family.name} configuration ({first}; closest: {closest[0].name})"
              + (f"; not shown by the weights, assumed as in it: {_brief(assumed)}" if assumed else "")
              + "; --arch-opt '{json}' sets them otherwise")
    return {**assumed, **kwargs}, notice


def _brief(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
