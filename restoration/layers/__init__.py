"""Reusable building blocks shared by the architectures (import the submodule you need).

* :mod:`.config` — the global attention-backend switch.
* :mod:`.window_partition` — window partition/merge, shifted-window mask, overlapping windows.
* :mod:`.relative_position` — relative-position indices and bias gathering.
* :mod:`.window_attention` — :func:`window_attention` (backends) and the ``WindowAttention`` module.
* :mod:`.mlp`, :mod:`.upsample`, :mod:`.channel_attention` — FFN, PixelShuffle heads, CAB.
* :mod:`.residual_block` — the residual block without batch norm of EDSR (BasicSR's ``ResidualBlockNoBN``).
* :mod:`.transposed_attention` — Restormer's MDTA (channel attention); with :mod:`.gated_ffn` (GDFN) and
  :mod:`.bias_free_layernorm` the pieces of a Restormer block.
* :mod:`.layer_norm2d`, :mod:`.simple_gate`, :mod:`.simplified_channel_attention` — the pieces of a NAFNet block;
  :mod:`.local_avg_pool` — TLC's local average (``NAFNetLocal``).
* :mod:`.patch_embed`, :mod:`.residual_group`, :mod:`.input_norm`, :mod:`.weight_init` — the shared skeleton of
  SwinIR/HAT: token embedding, residual groups (RSTB/RHAG), mean/img_range normalisation, Swin initialisation.

Stochastic depth is timm's ``timm.layers.DropPath``.
"""
