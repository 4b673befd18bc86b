"""Registered models. Each entry is registered lazily: its module is imported on first use."""

from __future__ import annotations

from restoration.registry import MODEL_REGISTRY

__all__ = ["register_models"]

# name -> "module:attribute". Add one line per component.
_MODELS: dict[str, str] = {
    "SRModel": "restoration.models.sr_model:SRModel",
    "TBSNModel": "restoration.models.tbsn_model:TBSNModel",
    "RealESRNetModel": "restoration.models.realesrgan_model:RealESRNetModel",
    "RealESRGANModel": "restoration.models.realesrgan_model:RealESRGANModel",
    "ESRGANModel": "restoration.models.esrgan_model:ESRGANModel",
    # upstream names of the same trainers (HAT's differ only in a test-time padding restore() already does);
    # the notice each one logs is in restoration/options/upstream.py
    "SwinIRModel": "restoration.models.sr_model:SRModel",
    "HATModel": "restoration.models.sr_model:SRModel",
    "RealHATMSEModel": "restoration.models.realesrgan_model:RealESRNetModel",
    "RealHATGANModel": "restoration.models.realesrgan_model:RealESRGANModel",
    "SRGANModel": "restoration.models.realesrgan_model:RealESRGANModel",
    "ImageRestorationModel": "restoration.models.sr_model:SRModel",
    "ImageCleanModel": "restoration.models.sr_model:SRModel",
    "DATModel": "restoration.models.sr_model:SRModel",
}


def register_models() -> None:
    """Fill :data:`MODEL_REGISTRY` (idempotent)."""
    MODEL_REGISTRY.register_table(_MODELS)
