"""TBSN: Transformer-based blind-spot network for self-supervised denoising (Li et al., AAAI 2025).

A three-level U-Net (``dim``, ``2*dim``, ``4*dim`` channels) of transformer blocks. Each block
applies channel attention, an FFN, masked window self-attention (M-WSA) and an FFN, each as
``x + f(LayerNorm(x))``. The whole network is a *blind-spot* network: output pixel ``p`` does not
depend on input pixel ``p`` through any spatial operator, because

* the first 3x3 convolution has its centre tap fixed to zero (sees only odd-parity offsets),
* every later spatial operator moves information by even offsets only: dilation-2 convolutions,
  M-WSA's dilated fixed mask, and down/up-sampling that keeps the pixel-parity sub-lattices apart.

Only the channel attention's data-dependent weights (global statistics) leak a little.

Value range: the network works on **[0, 255]** (as trained upstream) and has no global residual;
``spec.value_range = 255`` tells the framework to feed ``x * 255`` and divide the output by 255.
Input size: H and W must be multiples of ``4 * window_size`` (32 by default); ``spec.size_multiple``
tells the framework to reflect-pad and crop back.

Test time: the class declares its protocol, ``predictor = TBSNPredictor`` (pixel-shuffle down-sampling and
random-replacing refinement, :mod:`restoration.archs.tbsn.tbsn_predictor`), which validation, test.py,
``restoration-infer`` and ``restoration.export`` run.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from restoration.archs.spec import ArchSpec, checked_spec
from restoration.archs.tbsn.tbsn_predictor import TBSNPredictor
from restoration.errors import value_repr
from restoration.layers.bias_free_layernorm import RestormerLayerNorm
from restoration.layers.masked_conv import CentralMaskedConv2d
from restoration.layers.config import backend_problem
from restoration.layers.depthwise_conv import depthwise_conv2d
from restoration.layers.masked_window_attention import MaskedWindowAttention
from restoration.layers.window_partition import overlap_window_size

__all__ = ["TBSN", "ParityUnshuffle", "ParityShuffle", "DilatedChannelAttention", "DilatedFeedForward", "TBSNBlock"]


class ParityUnshuffle(nn.Module):
    """Halve the resolution while keeping the four pixel-parity sub-lattices apart.

    ``out[b, c*4 + e*2 + f, 2k + a, 2l + b'] = in[b, c, 4k + 2e + a, 4l + 2f + b']``: a pixel of
    parity ``(a, b')`` stays at parity ``(a, b')``, so even offsets at the coarse level are even
    offsets at the fine level (a plain ``pixel_unshuffle`` would mix parities and break the blind
    spot). Equal to upstream's ``PatchUnshuffle(p=2, s=2)``.

    Shapes:
        ``(B, C, H, W) -> (B, 4C, H/2, W/2)``, H and W multiples of 4.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b, c, h // 4, 2, 2, w // 4, 2, 2)  # (b, c, k, e, a, l, f, b')
        x = x.permute(0, 1, 3, 6, 2, 4, 5, 7)  # (b, c, e, f, k, a, l, b')
        return x.reshape(b, c * 4, h // 2, w // 2)


class ParityShuffle(nn.Module):
    """Inverse of :class:`ParityUnshuffle`: ``(B, 4C, H, W) -> (B, C, 2H, 2W)``, H and W even."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c4, h, w = x.shape
        x = x.reshape(b, c4 // 4, 2, 2, h // 2, 2, w // 2, 2)  # (b, c, e, f, k, a, l, b')
        x = x.permute(0, 1, 4, 2, 5, 6, 3, 7)  # (b, c, k, e, a, l, f, b')
        return x.reshape(b, c4 // 4, h * 2, w * 2)


class DilatedChannelAttention(nn.Module):
    """Restormer's MDTA with a dilation-2 depthwise convolution (upstream ``DilatedMDTA``).

    Attention over channels (``C/heads x C/heads`` per head) with L2-normalised q, k and a learned
    temperature; per pixel it only mixes channels, but its weights depend on the whole image.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(
            dim * 3, dim * 3, kernel_size=3, padding=2, dilation=2, groups=dim * 3, bias=bias
        )
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        dw = self.qkv_dwconv  # (through the depthwise op's switch: a faster backward on the CPU)
        q, k, v = depthwise_conv2d(self.qkv(x), dw.weight, dw.bias, padding=2, dilation=2).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w) for t in (q, k, v))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.temperature, dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class DilatedFeedForward(nn.Module):
    """``conv3x3(dilation 2) -> GELU -> conv3x3(dilation 2)`` (upstream ``FeedForward``)."""

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden, kernel_size=3, padding=2, dilation=2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=3, padding=2, dilation=2, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project_out(F.gelu(self.project_in(x)))


class TBSNBlock(nn.Module):
    """Channel attention, FFN, M-WSA, FFN; each ``x = x + f(norm_i(x))`` (upstream ``TransformerBlock``)."""

    def __init__(
        self,
        dim: int,
        window_size: int,
        overlap_ratio: float,
        num_channel_heads: int,
        num_spatial_heads: int,
        spatial_dim_head: int,
        ffn_expansion_factor: float,
        bias: bool,
        LayerNorm_type: str,  # noqa: N803 - upstream name
        attn_backend: str | None = None,
    ) -> None:
        super().__init__()
        # Registration order follows upstream so state-dict key order matches too.
        self.spatial_attn = MaskedWindowAttention(
            dim, window_size, overlap_ratio, num_spatial_heads, spatial_dim_head, bias, impl=attn_backend
        )
        self.channel_attn = DilatedChannelAttention(dim, num_channel_heads, bias)
        self.norm1 = RestormerLayerNorm(dim, LayerNorm_type)
        self.norm2 = RestormerLayerNorm(dim, LayerNorm_type)
        self.norm3 = RestormerLayerNorm(dim, LayerNorm_type)
        self.norm4 = RestormerLayerNorm(dim, LayerNorm_type)
        self.channel_ffn = DilatedFeedForward(dim, ffn_expansion_factor, bias)
        self.spatial_ffn = DilatedFeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.channel_attn(self.norm1(x))
        x = x + self.channel_ffn(self.norm2(x))
        x = x + self.spatial_attn(self.norm3(x))
        x = x + self.spatial_ffn(self.norm4(x))
        return x


class _PatchEmbed(nn.Module):
    """Upstream ``OverlapPatchEmbed``: the centre-masked 3x3 convolution, kept under ``.proj``."""

    def __init__(self, in_ch: int, dim: int) -> None:
        super().__init__()
        # Never a bias, whatever the network's ``bias`` option says (upstream does not pass it on).
        self.proj = CentralMaskedConv2d(in_ch, dim, kernel_size=3, stride=1, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class _Resample(nn.Module):
    """``1x1 conv -> parity (un)shuffle``, kept in ``body.0`` / ``body.1`` as upstream's Down/Upsample."""

    def __init__(self, n_in: int, n_out: int, shuffle: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_in, n_out, kernel_size=1, bias=False), shuffle)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TBSN(nn.Module):
    """Transformer-based blind-spot network.

    Constructor names and the state-dict layout follow ``nagejacob/TBSN`` ``network/tbsn.py``, so
    its plain state dicts (``model_sidd.pth``) load strictly; the 24 fixed M-WSA masks are
    ``nn.Parameter(requires_grad=False)`` of shape ``(1, ws^2, ow^2)`` and the first convolution
    keeps a ``mask`` buffer, both verified on load by :meth:`adapt_state_dict`.
    The default has 12,967,964 parameters (12,746,780 trainable).

    Args:
        in_ch: Input channels.
        out_ch: Output channels.
        dim: Channels of level 1 (levels 2, 3 use ``2*dim``, ``4*dim``; decoder level 1 and the
            refinement stage ``2*dim``).
        num_blocks: Blocks per level ``[level1, level2, latent]``; the decoder repeats levels 2, 1.
        num_refinement_blocks: Blocks after decoder level 1.
        channel_heads: Channel-attention heads per level.
        spatial_heads: M-WSA heads per level.
        overlap_ratio: M-WSA key-window overlap per level.
        window_size: M-WSA query window side.
        spatial_dim_head: M-WSA channels per head.
        bias: Bias in the convolutions.
        ffn_expansion_factor: FFN hidden width factor.
        LayerNorm_type: ``'BiasFree'`` or ``'WithBias'``.
        scale: Bilinear input upsampling factor applied first (upstream option; 1 = off).
        attn_backend: M-WSA backend (not an upstream option; the one ``attn_backend`` option of every network,
            :mod:`restoration.layers.config`): ``'parity'`` (attends each query parity class to its key class
            only, a quarter of the logits), ``'sdpa'`` (SDPA with the fixed mask folded into the additive
            mask), ``'reference'`` (explicit softmax) or ``'auto'`` (``'parity'`` for an even window); None:
            the process-wide default of the ``masked_window`` op (``'auto'``). All compute the same function
            (tests/test_tbsn_attention.py).
        attn_impl: The first name of ``attn_backend``, still accepted.

    Shapes:
        ``(B, in_ch, H, W) -> (B, out_ch, H * scale, W * scale)`` in [0, 255]; H and W multiples of
        ``spec.size_multiple`` (``4 * window_size`` at ``scale=1``).
    """

    #: The test-time protocol (PD + random-replacing refinement) every caller runs this network through.
    predictor = TBSNPredictor

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        dim: int = 48,
        num_blocks: Sequence[int] = (4, 4, 4),
        num_refinement_blocks: int = 4,
        channel_heads: Sequence[int] = (1, 2, 4),
        spatial_heads: Sequence[int] = (2, 2, 3),
        overlap_ratio: Sequence[float] = (0.5, 0.5, 0.5),
        window_size: int = 8,
        spatial_dim_head: int = 16,
        bias: bool = False,
        ffn_expansion_factor: float = 1,
        LayerNorm_type: str = "BiasFree",  # noqa: N803 - upstream name
        scale: int = 1,
        attn_backend: str | None = None,
        attn_impl: str | None = None,
    ) -> None:
        super().__init__()
        opt = dict(in_ch=in_ch, out_ch=out_ch, num_blocks=num_blocks, channel_heads=channel_heads,
                   spatial_heads=spatial_heads, overlap_ratio=overlap_ratio, window_size=window_size, dim=dim,
                   attn_backend=attn_backend, attn_impl=attn_impl, scale=scale)
        attn_backend = attn_backend if attn_backend is not None else attn_impl
        # Only hard errors raise here; a configuration that merely loses the blind spot (odd key
        # padding, see check_options) still builds so that such checkpoints stay loadable.
        problems = [p for p in self.check_options(opt) if "no longer blind-spot" not in p]
        self.spec = checked_spec(type(self), opt, problems)
        self.scale = scale
        # Two parity-preserving halvings, then ws x ws windows at the coarsest level (after the
        # upsampling by `scale`; spec.size_multiple is the same requirement on the input).
        self.body_multiple = 4 * window_size
        # Alias of spec.size_multiple for trainers that do not read arch_spec(net) yet.
        self.size_multiple = self.spec.size_multiple

        def level(width: int, lvl: int, count: int) -> nn.Sequential:
            return nn.Sequential(*[
                TBSNBlock(width, window_size, overlap_ratio[lvl], channel_heads[lvl], spatial_heads[lvl],
                          spatial_dim_head, ffn_expansion_factor, bias, LayerNorm_type, attn_backend)
                for _ in range(count)
            ])

        d1, d2, d3 = dim, dim * 2, dim * 4
        self.patch_embed = _PatchEmbed(in_ch, d1)
        self.encoder_level1 = level(d1, 0, num_blocks[0])
        self.down1_2 = _Resample(d1, d1 // 2, ParityUnshuffle())
        self.encoder_level2 = level(d2, 1, num_blocks[1])
        self.down2_3 = _Resample(d2, d2 // 2, ParityUnshuffle())
        self.latent = level(d3, 2, num_blocks[2])
        self.up3_2 = _Resample(d3, d3 * 2, ParityShuffle())
        self.reduce_chan_level2 = nn.Conv2d(d3, d2, kernel_size=1, bias=bias)
        self.decoder_level2 = level(d2, 1, num_blocks[1])
        self.up2_1 = _Resample(d2, d2 * 2, ParityShuffle())
        # Decoder level 1 keeps the concatenated 2*dim channels (no reduction), as upstream.
        self.decoder_level1 = level(d2, 0, num_blocks[0])
        self.refinement = level(d2, 0, num_refinement_blocks)
        self.output = nn.Conv2d(d2, out_ch, kernel_size=1, bias=bias)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt`` (empty list when fine)."""
        problems: list[str] = []
        for key in ("num_blocks", "channel_heads", "spatial_heads", "overlap_ratio"):
            if len(opt[key]) != 3:
                problems.append(f"{key} must have 3 entries (one per level), got {value_repr(list(opt[key]))}")
        ws = int(opt["window_size"])
        dim = int(opt["dim"])
        if dim % 2:
            problems.append(f"dim {dim} must be even (the down-sampling halves it before unshuffling)")
        scale = opt["scale"]
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            problems.append(f"scale must be an integer >= 1 (bilinear input upsampling), got {scale!r}")
        for lvl, ratio in enumerate(opt["overlap_ratio"][:3]):
            ow = overlap_window_size(ws, ratio)
            if (ow - ws) % 2:
                problems.append(
                    f"overlap_ratio[{lvl}]={ratio} with window_size {ws} gives key window {ow}: "
                    f"ow - ws must be even"
                )
            elif ((ow - ws) // 2) % 2:
                problems.append(
                    f"overlap_ratio[{lvl}]={ratio} with window_size {ws} pads keys by an odd amount: "
                    f"the fixed mask then admits odd offsets and the network is no longer blind-spot"
                )
        for key, width in (("channel_heads", (dim, 2 * dim, 4 * dim)),):
            for lvl, heads in enumerate(opt[key][:3]):
                if width[lvl] % int(heads):
                    problems.append(f"{key}[{lvl}]={heads} does not divide level width {width[lvl]}")
        impl = opt["attn_backend"] if opt.get("attn_backend") is not None else opt.get("attn_impl")
        if opt.get("attn_backend") is not None and opt.get("attn_impl") is not None:
            problems.append("set attn_backend only (attn_impl is its old name)")
        problem = backend_problem(impl, "masked_window")
        if problem:
            problems.append(problem)
        elif impl == "parity" and ws % 2:
            problems.append(f"attn_backend 'parity' needs an even window_size, got {ws}; use 'sdpa'")
        return problems

    @classmethod
    def spec_from_options(cls, opt: Mapping[str, Any]) -> ArchSpec:
        """[0, 255] values; the upsampled input must be a multiple of ``4 * window_size``.

        The input is first upsampled by ``scale``, so the input itself needs a multiple of
        ``4 * window_size / gcd(4 * window_size, scale)`` (32 for the default, 16 at ``scale=2``).
        """
        body_multiple = 4 * int(opt["window_size"])
        multiple = body_multiple // math.gcd(body_multiple, int(opt["scale"]))
        return ArchSpec(scale=int(opt["scale"]), in_channels=int(opt["in_ch"]), out_channels=int(opt["out_ch"]),
                        size_multiple=multiple, min_size=multiple, value_range=255.0)

    def set_attention_impl(self, impl: str) -> None:
        """Switch every M-WSA layer to ``'reference'``, ``'sdpa'`` or ``'parity'``."""
        for module in self.modules():
            if isinstance(module, MaskedWindowAttention):
                module.impl = impl

    def adapt_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Verify the fixed masks of a checkpoint against the regenerated ones; keep them.

        Raises:
            ValueError: A stored M-WSA ``attention_mask`` or the first conv's ``mask`` differs from
                the one this configuration builds (a checkpoint for another window/overlap).
        """
        own = self.state_dict()
        for key, value in state_dict.items():
            if key.endswith("fixed_pos_emb.attention_mask") or key == "patch_embed.proj.mask":
                if key in own and (value.shape != own[key].shape or not torch.equal(value.to(own[key]), own[key])):
                    raise ValueError(
                        f"checkpoint entry '{key}' {tuple(value.shape)} differs from the fixed mask this TBSN "
                        f"builds {tuple(own[key].shape)}: window_size/overlap_ratio do not match the checkpoint"
                    )
        return dict(state_dict)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, in_ch, H, W)`` in [0, 255] -> ``(B, out_ch, H, W)`` in [0, 255]."""
        if self.scale > 1:
            x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        h, w = x.shape[-2:]
        if h % self.body_multiple or w % self.body_multiple:
            raise ValueError(
                f"TBSN input {h}x{w} (after the x{self.scale} upsampling) is not a multiple of {self.body_multiple}; "
                f"pad it first (the framework does this from arch_spec(net).size_multiple)"
            )
        enc1 = self.encoder_level1(self.patch_embed(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        lat = self.latent(self.down2_3(enc2))
        dec2 = self.reduce_chan_level2(torch.cat([self.up3_2(lat), enc2], dim=1))
        dec2 = self.decoder_level2(dec2)
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=1))
        return self.output(self.refinement(dec1))

