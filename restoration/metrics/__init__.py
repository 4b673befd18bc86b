"""Registered metrics. Each entry is registered lazily: its module is imported on first use."""

from __future__ import annotations

from restoration.registry import METRIC_REGISTRY

__all__ = ["register_metrics"]

# name -> "module:attribute". Add one line per component.
_METRICS: dict[str, str] = {
    "calculate_psnr": "restoration.metrics.psnr_ssim:calculate_psnr",
    "calculate_ssim": "restoration.metrics.psnr_ssim:calculate_ssim",
    "calculate_psnr_pt": "restoration.metrics.psnr_ssim:calculate_psnr_pt",
    "calculate_ssim_pt": "restoration.metrics.psnr_ssim:calculate_ssim_pt",
    "calculate_psnr_skimage": "restoration.metrics.sidd_metrics:calculate_psnr_skimage",
    "calculate_ssim_skimage": "restoration.metrics.sidd_metrics:calculate_ssim_skimage",
    "calculate_lpips": "restoration.metrics.lpips_metric:calculate_lpips",
    "calculate_dists": "restoration.metrics.dists_metric:calculate_dists",
    "calculate_ms_ssim": "restoration.metrics.ms_ssim:calculate_ms_ssim",
    "calculate_psnrb": "restoration.metrics.psnrb:calculate_psnrb",
    # no reference: scored on the output alone (attribute no_reference = True)
    "calculate_noise_sigma": "restoration.metrics.no_reference:calculate_noise_sigma",
    "calculate_sharpness": "restoration.metrics.no_reference:calculate_sharpness",
    "calculate_niqe": "restoration.metrics.niqe:calculate_niqe",
}


def register_metrics() -> None:
    """Fill :data:`METRIC_REGISTRY` (idempotent)."""
    METRIC_REGISTRY.register_table(_METRICS)
