"""BSRGAN degradation: kernels, output sizes, determinism, and ``degradation: {type: bsrgan}`` in DegradationDataset."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from restoration.data.base_dataset import DatasetOptionError
from restoration.data.degradations.bsrgan import anisotropic_gaussian, bsrgan_degrade, shift_kernel
from restoration.utils.matlab_fspecial import matlab_gaussian
from restoration.data.degradation_dataset import DegradationDataset
from restoration.declare import component_problems


def _image(h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.random((h // 8, w // 8, 3)).astype(np.float32)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)  # smooth, with edges


def test_kernels():
    iso = matlab_gaussian(15, 2.0)
    r = np.arange(15) - 7
    expected = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / 8.0)
    np.testing.assert_allclose(iso, expected / expected.sum(), rtol=1e-12)
    # equal eigenvalues: isotropic with variance l, whatever the angle
    np.testing.assert_allclose(anisotropic_gaussian(15, 0.7, 4.0, 4.0), iso, atol=1e-15)
    line = anisotropic_gaussian(15, 0.0, 9.0, 0.25)  # long along x (columns) at angle 0
    assert line[7, 10] > line[10, 7] and abs(line.sum() - 1) < 1e-12
    assert np.isfinite(matlab_gaussian(7, 0.0)).all() and matlab_gaussian(7, 0.0)[3, 3] == 1.0
    k = matlab_gaussian(25, 1.5)
    np.testing.assert_allclose(shift_kernel(k, 1), k)
    shifted = shift_kernel(k, 3)  # by exactly one pixel up-left
    np.testing.assert_allclose(shifted[:-1, :-1], k[1:, 1:], atol=1e-15)
    half = shift_kernel(k, 2)  # by half a pixel: the average of neighbours
    np.testing.assert_allclose(half[5, 5], (k[5, 5] + k[5, 6] + k[6, 5] + k[6, 6]) / 4, rtol=1e-12)


@pytest.mark.parametrize("scale", [2, 4])
def test_output_size_grid_and_determinism(scale):
    img = _image()
    outputs = [bsrgan_degrade(img, scale, np.random.default_rng(seed)) for seed in range(8)]
    for lq in outputs:
        assert lq.shape == (64 // scale, 96 // scale, 3) and lq.dtype == np.float32
        assert lq.min() >= 0 and lq.max() <= 1
        np.testing.assert_array_equal(lq, np.round(lq * 255) / 255)  # the last step is a JPEG
    again = bsrgan_degrade(img, scale, np.random.default_rng(3))
    np.testing.assert_array_equal(again, outputs[3])
    assert len({lq.tobytes() for lq in outputs}) == 8
    with pytest.raises(ValueError, match="not a multiple of the scale"):
        bsrgan_degrade(img[:63], scale, np.random.default_rng(0))


def _folder(tmp_path, n=2):
    folder = tmp_path / "gt"
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), (_image(80, 72, seed=i) * 255).round().astype(np.uint8))
    return str(folder)


def test_degradation_dataset_bsrgan(tmp_path):
    root = _folder(tmp_path)
    opt = {"dataroot_gt": root, "degradation": {"type": "bsrgan", "scale": 4}, "scale": 4}
    train = DegradationDataset({**opt, "phase": "train", "gt_size": 64})
    sample = train[0]
    assert sample["lq"].shape == (3, 16, 16) and sample["gt"].shape == (3, 64, 64)
    val = DegradationDataset({**opt, "phase": "val"})
    first, second = val[1], val[1]
    assert first["lq"].shape == (3, 20, 18) and first["gt"].shape == (3, 80, 72)
    assert torch.equal(first["lq"], second["lq"])  # seeded by (seed, index)
    assert not torch.equal(DegradationDataset({**opt, "phase": "val", "seed": 1})[1]["lq"], first["lq"])


def test_degradation_dataset_bsrgan_option_errors(tmp_path):
    root = _folder(tmp_path, n=1)
    problems = component_problems(DegradationDataset, {"dataroot_gt": root, "degradation": {"type": "bsrgan", "scale": 2},
                                                       "scale": 4, "phase": "val"}, "datasets.val")
    assert problems == ["'datasets.val': the bicubic/bsrgan factors of 'degradation' multiply to 2 but scale is 4"]
    with pytest.raises(DatasetOptionError, match="the bsrgan degradation needs color: rgb, got 'gray'"):
        DegradationDataset({"dataroot_gt": root, "degradation": {"type": "bsrgan"}, "scale": 2, "phase": "val",
                            "color": "gray"})
    problems = component_problems(DegradationDataset, {"dataroot_gt": root, "degradation": {"type": "bsrgan", "sf": 4},
                                                       "scale": 4, "phase": "val"}, "datasets.val")
    assert "'degradation': unknown key 'sf'" in problems[0]
