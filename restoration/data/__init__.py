"""Registered datasets. Each entry is registered lazily: its module is imported on first use."""

from __future__ import annotations

from restoration.registry import DATASET_REGISTRY

__all__ = ["register_datasets"]

# name -> "module:attribute". Add one line per component.
_DATASETS: dict[str, str] = {
    "PairedImageDataset": "restoration.data.paired_image_dataset:PairedImageDataset",
    "SingleImageDataset": "restoration.data.single_image_dataset:SingleImageDataset",
    "DegradationDataset": "restoration.data.degradation_dataset:DegradationDataset",
    "SyntheticDegradationDataset": "restoration.data.degradation_dataset:DegradationDataset",  # alias
    "DenoisingDataset": "restoration.data.degradation_dataset:DegradationDataset",  # alias (degradation: gaussian_noise)
    "JPEGDataset": "restoration.data.degradation_dataset:DegradationDataset",  # alias (degradation: jpeg)
    "NoisyImageDataset": "restoration.data.noisy_image_dataset:NoisyImageDataset",
    "SyntheticNoiseDataset": "restoration.data.noisy_image_dataset:SyntheticNoiseDataset",
    "SIDDMediumDataset": "restoration.data.sidd_dataset:SIDDMediumDataset",
    "SIDDBlocksDataset": "restoration.data.sidd_dataset:SIDDBlocksDataset",
    "SIDDValidationDataset": "restoration.data.sidd_dataset:SIDDBlocksDataset",  # alias (noisy_mat + gt_mat)
    "AllInOneDataset": "restoration.data.all_in_one_dataset:AllInOneDataset",
    "RealESRGANDataset": "restoration.data.realesrgan_dataset:RealESRGANDataset",
    "RealESRGANPairedDataset": "restoration.data.realesrgan_paired_dataset:RealESRGANPairedDataset",
}


def register_datasets() -> None:
    """Fill :data:`DATASET_REGISTRY` (idempotent)."""
    DATASET_REGISTRY.register_table(_DATASETS)
