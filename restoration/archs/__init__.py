"""Network architectures. Each entry is registered lazily: its module is imported on first use."""

from __future__ import annotations

from restoration.registry import ARCH_REGISTRY

__all__ = ["register_archs"]

# name -> "module:attribute". Add one line per architecture; keep the list sorted by family.
_ARCHS: dict[str, str] = {
    "SimpleSRNet": "restoration.archs.simple_sr_arch:SimpleSRNet",
    "SwinIR": "restoration.archs.swinir_arch:SwinIR",
    "HAT": "restoration.archs.hat_arch:HAT",
    "Bicubic": "restoration.archs.bicubic_arch:Bicubic",
    "Identity": "restoration.archs.identity_arch:Identity",
    "TBSN": "restoration.archs.tbsn_arch:TBSN",
    "DSwinIR": "restoration.archs.dswinir_arch:DSwinIR",
    "MSDeformableNAIR": "restoration.archs.msdeformable_nair_arch:MSDeformableNAIR",
    "RRDBNet": "restoration.archs.rrdbnet_arch:RRDBNet",
    "SRVGGNetCompact": "restoration.archs.srvgg_arch:SRVGGNetCompact",
    "SPAN": "restoration.archs.span_arch:SPAN",
    "NAFNet": "restoration.archs.nafnet_arch:NAFNet",
    "NAFNetLocal": "restoration.archs.nafnet_arch:NAFNetLocal",
    "EDSR": "restoration.archs.edsr_arch:EDSR",
    "RCAN": "restoration.archs.rcan_arch:RCAN",
    "Restormer": "restoration.archs.restormer_arch:Restormer",
    "DAT": "restoration.archs.dat_arch:DAT",
    "UNetDiscriminatorSN": "restoration.archs.discriminator_arch:UNetDiscriminatorSN",
    "VGGStyleDiscriminator": "restoration.archs.discriminator_arch:VGGStyleDiscriminator",
}


def register_archs() -> None:
    """Fill :data:`ARCH_REGISTRY` (idempotent)."""
    ARCH_REGISTRY.register_table(_ARCHS)
