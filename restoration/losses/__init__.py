"""Registered losses. Each entry is registered lazily: its module is imported on first use."""

from __future__ import annotations

from restoration.registry import LOSS_REGISTRY

__all__ = ["register_losses"]

# name -> "module:attribute". Add one line per component.
_LOSSES: dict[str, str] = {
    "L1Loss": "restoration.losses.basic_loss:L1Loss",
    "MSELoss": "restoration.losses.basic_loss:MSELoss",
    "CharbonnierLoss": "restoration.losses.basic_loss:CharbonnierLoss",
    "PerceptualLoss": "restoration.losses.perceptual_loss:PerceptualLoss",
    "GANLoss": "restoration.losses.gan_loss:GANLoss",
    "LPIPSLoss": "restoration.losses.lpips:LPIPSLoss",
    "DISTSLoss": "restoration.losses.dists:DISTSLoss",
    "SSIMLoss": "restoration.losses.ssim_loss:SSIMLoss",
    "MSSSIMLoss": "restoration.losses.ssim_loss:MSSSIMLoss",
    "FFLoss": "restoration.losses.focal_frequency_loss:FFLoss",
    "ColorLoss": "restoration.losses.ycbcr_loss:ColorLoss",
    "LumaLoss": "restoration.losses.ycbcr_loss:LumaLoss",
    "WeightedTVLoss": "restoration.losses.tv_loss:WeightedTVLoss",
    "LDLLoss": "restoration.losses.ldl_loss:LDLLoss",
    "PSNRLoss": "restoration.losses.psnr_loss:PSNRLoss",
}


def register_losses() -> None:
    """Fill :data:`LOSS_REGISTRY` (idempotent)."""
    LOSS_REGISTRY.register_table(_LOSSES)
