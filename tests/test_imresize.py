"""MATLAB-compatible bicubic imresize (numpy and torch), the Bicubic baseline network and generate_lr.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from restoration import build_network
from restoration.archs.baselines.bicubic_arch import Bicubic
from restoration.archs.spec import ArchSpec
from restoration.utils.matlab_imresize import contributions, cubic, imresize, imresize_np, imresize_pt

ROOT = Path(__file__).resolve().parents[1]
SET5 = ("baby", "bird", "butterfly", "head", "woman")


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return np.ascontiguousarray(img[:, :, ::-1])


def _mod_crop(img: np.ndarray, s: int) -> np.ndarray:
    return img[: img.shape[0] - img.shape[0] % s, : img.shape[1] - img.shape[1] % s]


# ------------------------------------------------------------------------------------------ kernel


def test_cubic_kernel_values() -> None:
    # Keys' kernel with a = -0.5, evaluated by hand.
    x = np.array([0.0, 0.25, 0.75, 1.0, 1.25, 1.75, 2.0, 2.5])
    expected = np.array([1.0, 0.8671875, 0.2265625, 0.0, -0.0703125, -0.0234375, 0.0, 0.0])
    np.testing.assert_allclose(cubic(x), expected, atol=1e-15)
    np.testing.assert_allclose(cubic(-x), expected, atol=1e-15)


def test_contributions_upscale_x2_weights_and_symmetric_border() -> None:
    indices, weights = contributions(6, 12, 2.0, True)
    assert indices.shape == weights.shape == (12, 4)
    # First output pixel: u = 0.75 (1-based); taps at input -1, 0, 1, 2 (1-based) with the a=-0.5 weights.
    np.testing.assert_allclose(weights[0], [-0.0234375, 0.2265625, 0.8671875, -0.0703125], atol=1e-15)
    # Symmetric padding mirrors -1 -> 2 and 0 -> 1 (1-based), i.e. 0-based [1, 0, 0, 1].
    np.testing.assert_array_equal(indices[0], [1, 0, 0, 1])
    np.testing.assert_array_equal(indices[-1], [4, 5, 5, 4])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-14)


def test_contributions_downscale_are_antialiased() -> None:
    idx_aa, w_aa = contributions(16, 4, 0.25, True)
    idx_plain, w_plain = contributions(16, 4, 0.25, False)
    # The kernel is stretched from 4 to 4 / scale = 16 input pixels (the two all-zero end taps are dropped).
    assert w_aa.shape[1] == 16 and w_plain.shape[1] == 4
    np.testing.assert_allclose(w_aa.sum(axis=1), 1.0, atol=1e-14)
    assert idx_aa.min() >= 0 and idx_aa.max() <= 15


@pytest.mark.parametrize(
    ("in_size", "scale", "out_size"), [(288, 1 / 3, 96), (5, 0.5, 3), (7, 2, 14), (255, 1 / 3, 85)]
)
def test_output_size_is_ceil_of_scaled_size(in_size: int, scale: float, out_size: int) -> None:
    img = np.zeros((in_size, 4), np.float64)
    assert imresize(img, scale=(scale, 1.0)).shape == (out_size, 4)


def test_constant_image_stays_constant_and_dtype_kept() -> None:
    img = np.full((9, 7, 3), 0.3, np.float32)
    for scale in (2, 3, 0.5, 1 / 3):
        out = imresize(img, scale=scale)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, 0.3, atol=1e-6)
    out_u8 = imresize(np.full((9, 7), 77, np.uint8), size=(5, 11))
    assert out_u8.dtype == np.uint8 and out_u8.shape == (5, 11) and (out_u8 == 77).all()


def test_argument_errors() -> None:
    img = np.zeros((8, 8), np.float64)
    with pytest.raises(ValueError, match="exactly one of `scale` or `size`"):
        imresize(img)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img, scale=2, size=(16, 16))
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        imresize([[0.0]], scale=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        imresize_pt(torch.zeros(8, 8), scale=2)


# ------------------------------------------------------------------------------------------ numpy vs torch


@pytest.mark.parametrize(
    "kw", [{"scale": 2}, {"scale": 3}, {"scale": 0.5}, {"scale": 1 / 3}, {"scale": 0.7}, {"size": (17, 9)}]
)
def test_numpy_and_torch_agree(kw: dict) -> None:
    rng = np.random.default_rng(0)
    img = rng.random((23, 19, 3))
    ref = imresize_np(img, **kw)
    t64 = imresize_pt(torch.from_numpy(img.transpose(2, 0, 1).copy())[None], **kw)[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(t64, ref, rtol=0, atol=1e-12)
    t32 = imresize_pt(torch.from_numpy(img.transpose(2, 0, 1).copy()).float(), **kw).numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(t32, ref, rtol=0, atol=1e-5)
    u8 = (img * 255).round().astype(np.uint8)
    u8_np = imresize_np(u8, **kw)
    u8_pt = imresize_pt(torch.from_numpy(u8.transpose(2, 0, 1).copy()), **kw).numpy().transpose(1, 2, 0)
    np.testing.assert_array_equal(u8_pt, u8_np)


def test_torch_path_is_differentiable() -> None:
    x = torch.rand(1, 1, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize_pt(t, scale=0.5), (x,))
    assert torch.autograd.gradcheck(lambda t: imresize_pt(t, scale=2), (x,))


# ------------------------------------------------------------------------------------------ MATLAB's stored Set5 LR


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_reproduces_matlab_set5_lr_bit_exact(benchmarks: Path, scale: int) -> None:
    """uint8 HR -> our imresize(1/s) equals the stored MATLAB LR PNG in every pixel (MATLAB rounds between passes)."""
    set5 = benchmarks / "Set5"
    for name in SET5:
        hr = _mod_crop(_read_rgb(set5 / "HR" / f"{name}.png"), scale)
        stored = _read_rgb(set5 / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
        ours = imresize(hr, scale=1 / scale)
        assert ours.shape == stored.shape, name
        diff = np.abs(ours.astype(np.int16) - stored.astype(np.int16))
        assert diff.max() == 0, f"{name} x{scale}: max |diff| {diff.max()}, {np.count_nonzero(diff)} pixels differ"
        # Float64 throughout (one rounding at the end) is within 2 grey levels but not bit exact.
        once = np.floor(np.clip(imresize(hr.astype(np.float64), scale=1 / scale), 0, 255) + 0.5)
        assert np.abs(once - stored).max() <= 2


def test_reproduces_matlab_set5_x8_from_double(benchmarks: Path) -> None:
    """The stored x8 set was made from double images: float64 resize + one rounding matches it exactly."""
    set5 = benchmarks / "Set5"
    for name in SET5:
        hr = _mod_crop(_read_rgb(set5 / "HR" / f"{name}.png"), 8)
        stored = _read_rgb(set5 / "LR_bicubic" / "X8" / f"{name}x8.png")
        once = np.floor(np.clip(imresize(hr.astype(np.float64) / 255, scale=1 / 8) * 255, 0, 255) + 0.5)
        assert np.abs(once - stored).max() == 0, name


# ------------------------------------------------------------------------------------------ Bicubic network


def test_bicubic_arch_shape_and_equality_with_imresize() -> None:
    net = build_network({"type": "Bicubic", "upscale": 3, "in_chans": 3})
    assert net.spec == ArchSpec(scale=3, in_channels=3, out_channels=3, size_multiple=1, min_size=1)
    assert sum(p.numel() for p in net.parameters()) == 0
    x = torch.rand(2, 3, 7, 10)
    y = net(x)
    assert y.shape == (2, 3, 21, 30)
    assert torch.equal(y, imresize_pt(x, scale=3))
    ref = imresize_np(x[1].double().numpy().transpose(1, 2, 0), scale=3)
    np.testing.assert_allclose(y[1].numpy().transpose(1, 2, 0), ref, atol=1e-5)
    with pytest.raises(ValueError, match=r"expects \(B, 3, h, w\)"):
        net(torch.rand(1, 1, 7, 10))
    assert Bicubic.check_options({"upscale": 0, "in_chans": 3}) == ["Bicubic: upscale must be a positive integer, got 0"]
    assert Bicubic.check_options({"upscale": 4, "in_chans": 3}) == []


# ------------------------------------------------------------------------------------------ generate_lr.py


def _load_generate_lr():
    spec = importlib.util.spec_from_file_location("generate_lr", ROOT / "scripts" / "data" / "generate_lr.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_generate_lr_rgb_gray_and_mod_crop(tmp_path: Path) -> None:
    gen = _load_generate_lr()
    rng = np.random.default_rng(1)
    hr_dir, out_dir = tmp_path / "HR", tmp_path / "LR"
    hr_dir.mkdir()
    rgb = rng.integers(0, 256, (26, 31, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (20, 17), dtype=np.uint8)
    cv2.imwrite(str(hr_dir / "color.png"), rgb[:, :, ::-1])  # stored as BGR on disk
    cv2.imwrite(str(hr_dir / "gray.png"), gray)
    assert gen.main(["--input", str(hr_dir), "--output", str(out_dir), "--scale", "4", "--mod-crop"]) == 2
    lr = cv2.imread(str(out_dir / "colorx4.png"), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    np.testing.assert_array_equal(lr, imresize(rgb[:24, :28], scale=1 / 4))  # RGB order preserved
    hr_crop = cv2.imread(str(out_dir / "HR_mod4" / "color.png"), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    np.testing.assert_array_equal(hr_crop, rgb[:24, :28])
    lr_gray = cv2.imread(str(out_dir / "grayx4.png"), cv2.IMREAD_UNCHANGED)
    assert lr_gray.shape == (5, 4)
    np.testing.assert_array_equal(lr_gray, imresize(gray[:20, :16], scale=1 / 4))


def test_generate_lr_rejects_16bit_and_unreadable(tmp_path: Path) -> None:
    gen = _load_generate_lr()
    (tmp_path / "a").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "deep.png"), np.zeros((8, 8, 3), np.uint16))
    with pytest.raises(ValueError, match=r"deep\.png.*8-bit"):
        gen.main(["--input", str(tmp_path / "a"), "--output", str(tmp_path / "o"), "--scale", "2"])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.png"):
        gen.main(["--input", str(tmp_path / "b"), "--output", str(tmp_path / "o"), "--scale", "2"])


def test_generate_lr_reproduces_stored_set5_x3(benchmarks: Path, tmp_path: Path) -> None:
    """End to end through cv2 read/write: the script's LR PNGs equal MATLAB's stored ones."""
    gen = _load_generate_lr()
    hr_dir = tmp_path / "HR"
    hr_dir.mkdir()
    for name in ("bird", "woman"):  # woman is 344x228: not a multiple of 3, so mod-crop matters
        (hr_dir / f"{name}.png").write_bytes((benchmarks / "Set5" / "HR" / f"{name}.png").read_bytes())
    gen.main(["--input", str(hr_dir), "--output", str(tmp_path / "X3"), "--scale", "3"])
    for name in ("bird", "woman"):
        ours = cv2.imread(str(tmp_path / "X3" / f"{name}x3.png"), cv2.IMREAD_UNCHANGED)
        stored = cv2.imread(str(benchmarks / "Set5" / "LR_bicubic" / "X3" / f"{name}x3.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(ours, stored)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    x = torch.rand(2, 3, 20, 17, dtype=torch.float64)
    for scale in (0.25, 3):
        torch.testing.assert_close(imresize_pt(x.cuda(), scale=scale).cpu(), imresize_pt(x, scale=scale))
