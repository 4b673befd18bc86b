"""SPAN: Swift Parameter-free Attention Network (Wan et al., CVPR-W 2024; NTIRE 2024 efficient-SR winner).

Constructor arguments, defaults and module names are the official ones (hongyuanyu/SPAN
``basicsr/archs/span_arch.py``), so the released files load with ``strict=True``: ``conv_1``, ``block_{1..6}``
(``c1_r``, ``c2_r``, ``c3_r``), ``conv_2`` (each a :class:`Conv3XC`: ``sk``, ``conv.{0,1,2}``, ``eval_conv``),
``conv_cat`` and ``upsampler.0`` (3×3 conv before the pixel shuffle).

Train form and inference form of :class:`Conv3XC`: the weights are the branch ``1×1 -> 3×3 (valid) -> 1×1`` plus
a ``1×1`` skip; ``eval_conv`` is the same linear map fused into one 3×3 conv. The official forward uses the branch
in train mode and, in eval mode, re-fuses ``eval_conv`` from the branch on EVERY call; so the stored
``eval_conv`` tensors are never read (BasicSR-trained files carry stale ones) and we do the same: both modes are
supported and equal the official ones. ``eval_conv`` is kept as persistent *buffers*, so ``state_dict()`` has the
official keys while ``parameters()`` counts only the trainable weights (the official class marks it
``requires_grad=False``).

Training form (``train_form``, ours; not an official keyword): ``'fused'`` (the default) trains through the same
fused conv, its weight and bias recomputed from the branch weights on every forward *with* autograd, so the
gradients reach the same branch parameters; ``'branch'`` is the official arithmetic (four convs, the middle one
at twice the channels on both sides). Both compute the same function and gradients, to float rounding
(``tests/test_span_train_form.py``); the fused form does about a fifth of the multiply-adds
(docs/benchmarks.md). Under autocast the fusion itself runs in the parameters' precision; only the one conv
is cast.

Value range quirk kept as is: the input is ``(x - rgb_mean) * img_range`` but the output is neither divided by
``img_range`` nor shifted back; the network learns to emit [0, 1] directly.
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec

__all__ = ["SPAN", "SPAB", "Conv3XC", "fuse_conv3xc", "TRAIN_FORMS"]

_GAIN = 2  # channel expansion inside every Conv3XC branch (official gain1=2)
_ATTENTION_SHIFT = 0.5  # sim_att = sigmoid(out3) - 0.5: symmetric around zero ("parameter-free attention")
_NUM_BLOCKS = 6
#: How a Conv3XC computes in train mode: one conv of the fused weights (with autograd), or the official branch.
TRAIN_FORMS: tuple[str, ...] = ("fused", "branch")


def fuse_conv3xc(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor, w3: torch.Tensor,
                 b3: torch.Tensor, sk_w: torch.Tensor, sk_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The one 3×3 conv equal to ``conv3(conv2(conv1(pad(x)))) + sk(x)`` with zero padding 1.

    Args:
        w1, b1: ``(M, I, 1, 1)``, ``(M,)``.  w2, b2: ``(N, M, 3, 3)``, ``(N,)``.  w3, b3: ``(O, N, 1, 1)``, ``(O,)``.
        sk_w, sk_b: ``(O, I, 1, 1)``, ``(O,)``.

    Returns:
        ``(O, I, 3, 3)`` weight and ``(O,)`` bias. The first 1×1 conv turns padded zeros into ``b1``, which every
        tap of the 3×3 sees; that is why ``b1`` enters the bias through the sum of ``w2`` over its taps.
    """
    w = torch.einsum("nmhw,mi->nihw", w2, w1[:, :, 0, 0])
    b = torch.einsum("nmhw,m->n", w2, b1) + b2
    weight = torch.einsum("on,nihw->oihw", w3[:, :, 0, 0], w)
    bias = w3[:, :, 0, 0] @ b + b3
    weight = weight + F.pad(sk_w, (1, 1, 1, 1))
    return weight, bias + sk_b


def _autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """Leave autocast for the block when it is on for ``device_type`` (a device without autocast: nothing)."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except RuntimeError:  # e.g. 'meta'
        enabled = False
    return torch.autocast(device_type, enabled=False) if enabled else contextlib.nullcontext()


class _FusedConv(nn.Module):
    """Holds ``eval_conv.weight`` / ``eval_conv.bias`` as persistent buffers (official keys, not trainable)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(c_out, c_in, 3, 3))
        self.register_buffer("bias", torch.zeros(c_out))


class Conv3XC(nn.Module):
    """Re-parameterisable 3×3 conv: ``1×1 (I -> 2I) -> 3×3 valid (2I -> 2O) -> 1×1 (2O -> O)`` + ``1×1`` skip.

    Args:
        c_in: Input channels I.
        c_out: Output channels O.
        train_form: ``'fused'``: in train mode, one 3×3 conv of the fused weights, computed with autograd from
            the branch weights on every call; ``'branch'``: the official four convs (the reference).

    Shapes: (B, I, H, W) -> (B, O, H, W) (zero padding 1: the branch pads the input, the fused form the conv).
    """

    def __init__(self, c_in: int, c_out: int, train_form: str = "fused") -> None:
        super().__init__()
        if train_form not in TRAIN_FORMS:
            raise ValueError(f"train_form must be one of {', '.join(TRAIN_FORMS)}, got {train_form!r}")
        self.train_form = train_form
        self.sk = nn.Conv2d(c_in, c_out, 1)
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c_in * _GAIN, 1),
            nn.Conv2d(c_in * _GAIN, c_out * _GAIN, 3),
            nn.Conv2d(c_out * _GAIN, c_out, 1),
        )
        self.eval_conv = _FusedConv(c_in, c_out)
        self.update_params()

    def fused(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(O, I, 3, 3)`` weight and ``(O,)`` bias of the one conv equal to the branch plus the skip, in the
        parameters' dtype (autocast off: the fusion is not rounded to the autocast dtype), differentiable."""
        first, middle, last = self.conv
        with _autocast_off(self.sk.weight.device.type):
            return fuse_conv3xc(first.weight, first.bias, middle.weight, middle.bias, last.weight, last.bias,
                                self.sk.weight, self.sk.bias)

    @torch.no_grad()
    def update_params(self) -> None:
        """Refresh ``eval_conv`` from the branch weights (what the official eval forward does every call)."""
        weight, bias = self.fused()
        self.eval_conv.weight = weight.detach().clone()
        self.eval_conv.bias = bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, I, H, W) -> (B, O, H, W)."""
        if self.training and self.train_form == "branch":
            return self.conv(F.pad(x, (1, 1, 1, 1))) + self.sk(x)
        if self.training:
            weight, bias = self.fused()
            return F.conv2d(x, weight, bias, padding=1)
        self.update_params()  # the stored eval_conv may be stale: never use it as loaded
        return F.conv2d(x, self.eval_conv.weight, self.eval_conv.bias, padding=1)


class SPAB(nn.Module):
    """Swift parameter-free attention block: three Conv3XC (SiLU between), ``(out3 + x) * (sigmoid(out3) - 0.5)``.

    Shapes: (B, C, H, W) -> ((B, C, H, W) block output, (B, C, H, W) ``silu(c1_r(x))``).

    The second output is AFTER the SiLU: the official block returns ``out1`` but applies ``SiLU(inplace=True)``
    to it first, so what reaches SPAN's ``conv_cat`` (``out_b5_2``) is the activated map.
    """

    def __init__(self, channels: int, train_form: str = "fused") -> None:
        super().__init__()
        self.c1_r = Conv3XC(channels, channels, train_form)
        self.c2_r = Conv3XC(channels, channels, train_form)
        self.c3_r = Conv3XC(channels, channels, train_form)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out1 = F.silu(self.c1_r(x))
        out3 = self.c3_r(F.silu(self.c2_r(out1)))
        return (out3 + x) * (torch.sigmoid(out3) - _ATTENTION_SHIFT), out1


class SPAN(nn.Module):
    """Six SPABs between two Conv3XC; ``conv_cat`` fuses ``[conv_1 out, conv_2(block_6), block_1, block_6's c1_r]``
    (1×1, 4F -> F); a 3×3 conv to ``num_out_ch * upscale²`` and a pixel shuffle.

    Args:
        num_in_ch: Input channels; 3 (the mean is an RGB triple, as in the official code).
        num_out_ch: Output channels.
        feature_channels: Feature width F (releases: 48).
        upscale: Output scale (releases: 2 and 4; any integer >= 1 works).
        bias: Accepted for the official signature; unused there too.
        img_range: Input multiplier after the mean shift (official 255).
        rgb_mean: Subtracted from the input.
        train_form: Ours, not official: how every Conv3XC computes in train mode, ``'fused'`` (default, faster)
            or ``'branch'`` (the official arithmetic); the same function and gradients to float rounding.

    Shapes: (B, 3, H, W) in [0, 1] -> (B, num_out_ch, H·upscale, W·upscale) in about [0, 1]; any H, W >= 1.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, feature_channels: int = 48, upscale: int = 4,
                 bias: bool = True, img_range: float = 255.0,
                 rgb_mean: Sequence[float] = (0.4488, 0.4371, 0.4040), train_form: str = "fused") -> None:
        super().__init__()
        opt = dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, feature_channels=feature_channels, upscale=upscale,
                   bias=bias, img_range=img_range, rgb_mean=rgb_mean, train_form=train_form)
        self.spec = checked_spec(type(self), opt)
        self.img_range = float(img_range)
        # a plain attribute in the official class: not in its state_dict, hence not persistent here
        self.register_buffer("mean", torch.tensor(list(rgb_mean), dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        feat = feature_channels
        self.conv_1 = Conv3XC(num_in_ch, feat, train_form)
        for i in range(1, _NUM_BLOCKS + 1):
            setattr(self, f"block_{i}", SPAB(feat, train_form))
        self.conv_cat = nn.Conv2d(feat * 4, feat, 1)
        self.conv_2 = Conv3XC(feat, feat, train_form)
        self.upsampler = nn.Sequential(nn.Conv2d(feat, num_out_ch * upscale * upscale, 3, 1, 1),
                                       nn.PixelShuffle(upscale))

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        problems = [f"{key} must be >= 1, got {opt[key]!r}" for key in ("num_out_ch", "feature_channels", "upscale")
                    if not isinstance(opt[key], int) or opt[key] < 1]
        if opt["num_in_ch"] != 3:
            problems.append(f"num_in_ch must be 3 (rgb_mean is subtracted per RGB channel), got {opt['num_in_ch']!r}")
        if len(list(opt["rgb_mean"])) != 3:
            problems.append(f"rgb_mean must hold 3 values, got {opt['rgb_mean']!r}")
        if not opt["img_range"] > 0:
            problems.append(f"img_range must be positive, got {opt['img_range']!r}")
        if opt.get("train_form", "fused") not in TRAIN_FORMS:
            problems.append(f"train_form must be one of {', '.join(TRAIN_FORMS)}, got {opt['train_form']!r}")
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Any input size; [0, 1] in and out (the internal ``img_range`` is learned away, not undone)."""
        return ArchSpec(scale=int(opt["upscale"]), in_channels=3, out_channels=int(opt["num_out_ch"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, num_out_ch, H·upscale, W·upscale)."""
        x = (x - self.mean.to(x.dtype)) * self.img_range
        out_feature = self.conv_1(x)
        out_b1, _ = self.block_1(out_feature)
        out = out_b1
        for i in range(2, _NUM_BLOCKS):
            out, _ = getattr(self, f"block_{i}")(out)
        out_b6, out_b5_2 = getattr(self, f"block_{_NUM_BLOCKS}")(out)
        out = self.conv_cat(torch.cat([out_feature, self.conv_2(out_b6), out_b1, out_b5_2], 1))
        return self.upsampler(out)
