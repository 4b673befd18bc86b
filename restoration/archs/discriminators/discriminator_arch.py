"""Discriminators for adversarial training: BasicSR's ``UNetDiscriminatorSN`` and ``VGGStyleDiscriminator``.

Both keep BasicSR's constructor arguments and module names, so its released discriminator weights (e.g.
Real-ESRGAN's ``RealESRGAN_x4plus_netD.pth``, under ``params``) load strictly. Spectral normalisation is
``torch.nn.utils.spectral_norm`` (the hook version), whose state-dict keys are BasicSR's: ``weight_orig``
(the parameter), ``weight_u`` and ``weight_v`` (the power-iteration vectors). The newer
``torch.nn.utils.parametrizations.spectral_norm`` would store ``parametrizations.weight.original`` instead.

The architecture contract (:class:`~restoration.archs.spec.ArchSpec`) of a discriminator: ``scale`` 1 and
``out_channels`` 1 — it maps an image ``(B, C, H, W)`` to logits at the same size ``(B, 1, H, W)``
(``UNetDiscriminatorSN``, a per-pixel realness map). ``VGGStyleDiscriminator`` gives one logit per image
``(B, 1)``; its spec says so the only way the contract can: one input size (``size_multiple`` =
``min_size`` = ``input_size``) and not tileable.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from restoration.archs.spec import ArchSpec, checked_spec

__all__ = ["UNetDiscriminatorSN", "VGGStyleDiscriminator"]

_SLOPE = 0.2  # LeakyReLU negative slope of both discriminators (BasicSR)
_INIT_POWER_ITERATIONS = 10  # see _settle_spectral_norm


@torch.no_grad()
def _settle_spectral_norm(conv: nn.Module, steps: int = _INIT_POWER_ITERATIONS) -> None:
    """Run power iterations on a fresh spectral-normalised layer's ``weight_u``/``weight_v``.

    ``spectral_norm`` starts them as random unit vectors, so until training has run a few forwards,
    ``u·Wv`` underestimates the largest singular value and an eval-mode forward is scaled up by orders of
    magnitude (logits ~1e4 at F=4). Converging them at construction changes only the initial buffers, never
    loaded weights; training's one iteration per forward then continues from there.
    """
    w = conv.weight_orig.flatten(1)
    u, v = conv.weight_u, conv.weight_v
    for _ in range(steps):
        v.copy_(F.normalize(w.t() @ u, dim=0, eps=1e-12))
        u.copy_(F.normalize(w @ v, dim=0, eps=1e-12))


class UNetDiscriminatorSN(nn.Module):
    """U-Net discriminator with spectral normalisation (Real-ESRGAN, Wang et al. 2021).

    Three stride-2 convolutions down, three bilinear ×2 up-samplings with skip connections (added after
    the activation), two refinement convolutions and a 1-channel head. ``conv0`` and ``conv9`` are plain
    convolutions with bias; ``conv1`` ... ``conv8`` are spectral-normalised and bias-free. Unlike BasicSR,
    the power-iteration vectors are converged at construction (:func:`_settle_spectral_norm`).

    Args:
        num_in_ch: Input channels.
        num_feat: Base width F (widths F, 2F, 4F, 8F).
        skip_connection: Add the encoder features to the decoder's (Real-ESRGAN: True).

    Shapes: (B, num_in_ch, H, W) in [0, 1] -> (B, 1, H, W) logits; H and W multiples of 8.
    """

    def __init__(self, num_in_ch: int, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        opt = dict(num_in_ch=num_in_ch, num_feat=num_feat, skip_connection=skip_connection)
        self.spec = checked_spec(type(self), opt)
        self.skip_connection = skip_connection
        f = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        # encoder
        self.conv1 = spectral_norm(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        # decoder
        self.conv4 = spectral_norm(nn.Conv2d(f * 8, f * 4, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(f * 4, f * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(f * 2, f, 3, 1, 1, bias=False))
        # refinement and head
        self.conv7 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)
        for i in range(1, 9):
            _settle_spectral_norm(getattr(self, f"conv{i}"))

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        return [f"{key} must be >= 1, got {opt[key]}" for key in ("num_in_ch", "num_feat") if opt[key] < 1]

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """Same-size logits ``(B, 1, H, W)``; three ×2 down-samplings need sides that are multiples of 8."""
        return ArchSpec(scale=1, in_channels=int(opt["num_in_ch"]), out_channels=1, size_multiple=8, min_size=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1, H, W) realness logits."""
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"UNetDiscriminatorSN needs H and W that are a multiple of 8, got {tuple(x.shape[-2:])}")

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, _SLOPE)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)


class VGGStyleDiscriminator(nn.Module):
    """VGG-style discriminator (SRGAN/ESRGAN): one realness logit per image of a fixed size.

    Five stages (six for ``input_size`` 256) of a 3×3 stride-1 and a 4×4 stride-2 convolution, each but
    the first followed by BatchNorm; widths F, 2F, 4F, 8F, 8F (, 8F). The 4×4 map left is flattened into
    ``linear1`` (100 units) and ``linear2`` (1 logit).

    Args:
        num_in_ch: Input channels.
        num_feat: Base width F.
        input_size: Side of the (square) input: 128 or 256.

    Shapes: (B, num_in_ch, input_size, input_size) in [0, 1] -> (B, 1) logits.
    """

    def __init__(self, num_in_ch: int, num_feat: int, input_size: int = 128) -> None:
        super().__init__()
        opt = dict(num_in_ch=num_in_ch, num_feat=num_feat, input_size=input_size)
        self.spec = checked_spec(type(self), opt)
        self.input_size = input_size
        f = num_feat
        widths = [(num_in_ch, f), (f, f * 2), (f * 2, f * 4), (f * 4, f * 8), (f * 8, f * 8)]
        if input_size == 256:
            widths.append((f * 8, f * 8))
        self.num_stages = len(widths)
        for i, (cin, cout) in enumerate(widths):
            # conv{i}_0 keeps the width change; conv0_0 alone has a bias and no BatchNorm (BasicSR)
            setattr(self, f"conv{i}_0", nn.Conv2d(cin, cout, 3, 1, 1, bias=i == 0))
            if i > 0:
                setattr(self, f"bn{i}_0", nn.BatchNorm2d(cout, affine=True))
            setattr(self, f"conv{i}_1", nn.Conv2d(cout, cout, 4, 2, 1, bias=False))
            setattr(self, f"bn{i}_1", nn.BatchNorm2d(cout, affine=True))
        self.linear1 = nn.Linear(f * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        problems = [f"{key} must be >= 1, got {opt[key]}" for key in ("num_in_ch", "num_feat") if opt[key] < 1]
        if opt["input_size"] not in (128, 256):
            problems.append(f"input_size must be 128 or 256, got {opt['input_size']}")
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """One input size only; output ``(B, 1)`` (not an image: ``scale``/``out_channels`` 1 by convention)."""
        size = int(opt["input_size"])
        return ArchSpec(scale=1, in_channels=int(opt["num_in_ch"]), out_channels=1, size_multiple=size,
                        min_size=size, tileable=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, input_size, input_size) -> (B, 1) realness logits."""
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(f"VGGStyleDiscriminator takes {self.input_size}x{self.input_size} inputs only "
                             f"(its size_multiple and min_size are both {self.input_size}), got {tuple(x.shape[-2:])}")
        feat = F.leaky_relu(self.conv0_0(x), _SLOPE)
        feat = F.leaky_relu(self.bn0_1(self.conv0_1(feat)), _SLOPE)
        for i in range(1, self.num_stages):
            for j in (0, 1):
                conv, bn = getattr(self, f"conv{i}_{j}"), getattr(self, f"bn{i}_{j}")
                feat = F.leaky_relu(bn(conv(feat)), _SLOPE)
        feat = F.leaky_relu(self.linear1(feat.flatten(1)), _SLOPE)
        return self.linear2(feat)
