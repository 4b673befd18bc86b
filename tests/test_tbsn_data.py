"""Noisy-only datasets, SIDD readers (folder layout and .mat blocks), synthetic noise, SIDD metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from restoration.data.base_dataset import DatasetOptionError
from restoration.data.noisy_image_dataset import NoisyImageDataset, SyntheticNoiseDataset, add_noise, check_noise
from restoration.data.sidd_dataset import SIDDBlocksDataset, SIDDMediumDataset, load_sidd_blocks
from restoration.declare import component_problems
from restoration.utils.image_io import imwrite


def _images(folder: Path, n: int = 2, size: tuple[int, int] = (40, 48), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 256, size=(*size, 3), dtype=np.uint8) for _ in range(n)]
    for i, img in enumerate(imgs):
        imwrite(folder / f"img{i}.png", img)
    return imgs


def test_noisy_folder_train_crops_and_val_full(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "noisy")
    ds = NoisyImageDataset({"type": "NoisyImageDataset", "dataroot_lq": str(tmp_path / "noisy"), "gt_size": 32,
                            "phase": "train", "scale": 1})
    item = ds[1]
    assert set(item) == {"lq", "lq_path"} and item["lq"].shape == (3, 32, 32)
    val = NoisyImageDataset({"dataroot_lq": str(tmp_path / "noisy"), "phase": "val", "scale": 1})
    assert np.array_equal((val[0]["lq"].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8), imgs[0])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=f"no image files in {tmp_path / 'empty'}"):
        NoisyImageDataset({"dataroot_lq": str(tmp_path / "empty"), "phase": "val", "scale": 1})
    problems = component_problems(NoisyImageDataset, {"dataroot_lq": str(tmp_path / "nope"), "phase": "train"}, "d")
    assert any("does not exist" in p for p in problems) and any("needs 'gt_size'" in p for p in problems)


def test_sidd_medium_reads_noisy_only(tmp_path: Path) -> None:
    scene = tmp_path / "SIDD_Medium_Srgb" / "Data" / "0001_001_S6_00100_00060_3200_L"
    scene.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in ("010", "011"):
        imwrite(scene / f"0001_NOISY_SRGB_{k}.PNG", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
        imwrite(scene / f"0001_GT_SRGB_{k}.PNG", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    ds = SIDDMediumDataset({"dataroot_lq": str(tmp_path / "SIDD_Medium_Srgb"), "gt_size": 32, "phase": "train"})
    assert len(ds) == 2 and all("NOISY" in p for p in ds.paths)
    assert set(ds[0]) == {"lq", "lq_path"} and ds[0]["lq"].shape == (3, 32, 32)
    with pytest.raises(FileNotFoundError, match=r"expected .*/Data/<scene>/<id>_NOISY_SRGB_<k>\.PNG"):
        SIDDMediumDataset({"dataroot_lq": str(tmp_path), "gt_size": 32, "phase": "train"})


def test_sidd_blocks_mat(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    gt = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    scipy.io.savemat(tmp_path / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    scipy.io.savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": gt})
    ds = SIDDBlocksDataset({"noisy_mat": str(tmp_path / "ValidationNoisyBlocksSrgb.mat"),
                            "gt_mat": str(tmp_path / "ValidationGtBlocksSrgb.mat"), "phase": "val"})
    assert len(ds) == 6
    item = ds[4]  # image 1, block 1
    assert np.array_equal((item["lq"].numpy().transpose(1, 2, 0) * 255).round(), noisy[1, 1])
    assert np.array_equal((item["gt"].numpy().transpose(1, 2, 0) * 255).round(), gt[1, 1])
    assert Path(item["lq_path"]).name == "01_01"
    bench = SIDDBlocksDataset({"noisy_mat": str(tmp_path / "ValidationNoisyBlocksSrgb.mat"), "phase": "test"})
    assert "gt" not in bench[0]
    # Wrong layout: the error names the file and the expected layout.
    bad = tmp_path / "ValidationGtBlocksSrgb_bad.mat"
    scipy.io.savemat(bad, {"blocks": rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)})
    with pytest.raises(ValueError, match=r"ValidationGtBlocksSrgb_bad\.mat: variable 'blocks' has shape \(3, 16, 16, 3\)"
                                         r".*expected one variable of shape \(N, K, H, W, 3\), dtype uint8"):
        load_sidd_blocks(bad)
    (tmp_path / "junk.mat").write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match=r"cannot read .*junk\.mat as a MATLAB file"):
        load_sidd_blocks(tmp_path / "junk.mat")
    with pytest.raises(DatasetOptionError, match="noisy_mat: file .* does not exist"):
        SIDDBlocksDataset({"noisy_mat": str(tmp_path / "missing.mat"), "phase": "val"})


def _matlab_v73(path: Path, name: str, array: np.ndarray) -> None:
    """Write ``array`` as MATLAB's ``save -v7.3`` does: HDF5 after a 512-byte MATLAB header, dims reversed."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset(name, data=np.ascontiguousarray(array.transpose()))  # column-major, as MATLAB stores it
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Nov 26 00:00:00 2026 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:  # 116 bytes of text, 8 of subsystem offset, version 0x0200, endian 'IM'
        f.write(text.ljust(116) + b"\0" * 8 + b"\x00\x02" + b"IM")


def test_sidd_blocks_mat_v73_hdf5(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 256, (2, 3, 8, 10, 3), dtype=np.uint8)
    path = tmp_path / "ValidationNoisyBlocksSrgb.mat"
    _matlab_v73(path, "ValidationNoisyBlocksSrgb", noisy)
    with pytest.raises(NotImplementedError):  # scipy refuses v7.3: the h5py branch is what reads it
        scipy.io.loadmat(path)
    blocks = load_sidd_blocks(path)
    assert blocks.shape == (2, 3, 8, 10, 3) and blocks.dtype == np.uint8 and np.array_equal(blocks, noisy)
    ds = SIDDBlocksDataset({"noisy_mat": str(path), "phase": "test"})
    assert np.array_equal((ds[5]["lq"].numpy().transpose(1, 2, 0) * 255).round(), noisy[1, 2])


def test_synthetic_noise_levels_and_gt(tmp_path: Path) -> None:
    clean = np.full((200, 200, 3), 0.5, dtype=np.float32)
    rng = np.random.default_rng(0)
    g = add_noise(clean, {"type": "gaussian", "sigma": 25}, rng) - clean
    assert abs(g.std() * 255 - 25) < 0.5
    # Poisson-Gaussian: variance = x / peak + (sigma/255)^2, signal dependent.
    spec = {"type": "poisson_gaussian", "peak": 30, "sigma": 5}
    for level in (0.2, 0.8):
        noise = add_noise(np.full((200, 200, 3), level, dtype=np.float32), spec, rng) - level
        assert abs(noise.var() / (level / 30 + (5 / 255) ** 2) - 1) < 0.05
    assert check_noise({"type": "poisson_gaussian", "sigma": 5}) == [
        "'noise' (poisson_gaussian): needs exactly one of 'peak' and 'peak_range'"]
    assert check_noise({"type": "speckle"})[0].startswith("noise type 'speckle' is not one of")
    assert check_noise({"type": "gaussian", "sigma": 5, "sigmaa": 1, "peak": 3}) == [
        "'noise': unknown key 'sigmaa' (did you mean 'sigma'?)",
        "'noise': unknown key 'peak'",
        "'noise': accepted keys: clip, sigma, sigma_range",
    ]

    _images(tmp_path / "clean", n=2, size=(40, 40))
    opt = {"dataroot_gt": str(tmp_path / "clean"), "noise": spec, "phase": "val", "seed": 3}
    a, b = SyntheticNoiseDataset(opt)[0], SyntheticNoiseDataset(opt)[0]
    assert np.array_equal(a["lq"].numpy(), b["lq"].numpy()), "validation noise must be reproducible"
    assert set(a) == {"lq", "gt", "lq_path", "gt_path"} and (a["lq"] - a["gt"]).abs().mean() > 0.01
    c = SyntheticNoiseDataset({**opt, "seed": None})  # null is unset: the declared default seed 0
    assert c.opt["seed"] == 0 and not np.array_equal(c[0]["lq"].numpy(), a["lq"].numpy())
    train = SyntheticNoiseDataset({**opt, "phase": "train", "gt_size": 32, "with_gt": False})
    assert set(train[0]) == {"lq", "lq_path"} and train[0]["lq"].shape == (3, 32, 32)


def test_sidd_metrics_quantise_and_match_skimage() -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from restoration.metrics.sidd_metrics import calculate_psnr_skimage, calculate_ssim_skimage

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    out = np.clip(gt + rng.normal(0, 5, gt.shape), -3, 260)  # float, out of range
    q = np.clip(np.floor(out + 0.5), 0, 255)
    # The official evaluation: [0, 1] floats, data_range=1.
    ref_psnr = peak_signal_noise_ratio(gt / 255.0, q / 255.0, data_range=1)
    ref_ssim = structural_similarity(q / 255.0, gt / 255.0, data_range=1, channel_axis=2, gaussian_weights=True,
                                     sigma=1.5, win_size=11)
    assert calculate_psnr_skimage(out, gt) == pytest.approx(ref_psnr, abs=1e-9)
    assert calculate_ssim_skimage(out, gt) == pytest.approx(ref_ssim, abs=1e-9)
    assert calculate_psnr_skimage(q.astype(np.uint8), gt) == pytest.approx(ref_psnr, abs=1e-9)
    assert calculate_psnr_skimage(gt, gt) == float("inf")
