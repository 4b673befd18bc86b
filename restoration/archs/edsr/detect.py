"""Which EDSR network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

from typing import Any

from restoration.archs.layout import LayoutMismatch, StateDict, count, shape, upscale_pixelshuffle


def mean_shift_sr(sd: StateDict, first_block: str) -> dict[str, Any]:
    """What EDSR and RCAN share: ``conv_first``, a ``body.{i}`` trunk, ``conv_after_body``, ``upsample``,
    ``conv_last``; ``first_block`` is the key that tells the two bodies apart."""
    shape(sd, first_block)
    if any(k.startswith(("layers.", "patch_embed.")) for k in sd):
        raise LayoutMismatch("Swin layers ('layers.*') in the keys")
    num_feat, num_in_ch = shape(sd, "conv_first.weight")[:2]
    shape(sd, "conv_after_body.weight")
    return dict(num_in_ch=num_in_ch, num_out_ch=shape(sd, "conv_last.weight")[0], num_feat=num_feat,
                upscale=upscale_pixelshuffle(sd, num_feat))


def detect_edsr(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """EDSR kwargs (BasicSR layout): residual blocks at ``body.{i}.conv{1,2}``.

    ``res_scale`` (EDSR-L: 0.1), ``img_range`` and ``rgb_mean`` leave no trace: they come from the release.
    """
    kw = mean_shift_sr(sd, "body.0.conv1.weight")
    return "EDSR", dict(kw, num_block=count(sd, "body."))
