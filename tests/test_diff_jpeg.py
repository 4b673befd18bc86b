"""The batched torch JPEG against OpenCV's encoder, per-sample qualities, shapes and gradients."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from restoration.data.degradations.diff_jpeg import diff_jpeg, quality_to_factor


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def _cv2_jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1] / 255.0


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_torch_jpeg_is_close_to_opencv(name):
    """Measured on these 128x128 crops at qualities 30/60/90: 39.2-46.3 dB PSNR from cv2's JPEG, while cv2's
    is 30.4-40.2 dB from the original; the torch JPEG's own distance to the original is within 0.6 dB of cv2's."""
    img = getattr(data, name)()[:128, :128]
    for quality in (30, 60, 90):
        ref = _cv2_jpeg(img, quality)
        out = diff_jpeg(_to_tensor(img), torch.tensor([quality]))[0].permute(1, 2, 0).numpy()
        assert _psnr(out, ref) > 36.0, (name, quality, _psnr(out, ref))
        # It compresses as much as libjpeg: its distance to the original matches cv2's within 1.5 dB.
        assert abs(_psnr(out, img / 255.0) - _psnr(ref, img / 255.0)) < 1.5, (name, quality)


def test_each_image_has_its_own_quality_and_sizes_are_kept():
    img = torch.from_numpy(np.stack([data.astronaut()[:40, :56], data.coffee()[:40, :56]]).astype(np.float32) / 255)
    img = img.permute(0, 3, 1, 2)
    both = diff_jpeg(img, torch.tensor([20.0, 90.0]))
    assert both.shape == (2, 3, 40, 56)  # padded to 48x64 inside, cropped back
    assert torch.equal(both[0:1], diff_jpeg(img[0:1], 20.0))
    assert torch.equal(both[1:2], diff_jpeg(img[1:2], 90.0))
    assert float((both[0] - img[0]).abs().mean()) > float((both[1] - img[1]).abs().mean())


def test_quality_factor_and_flat_image():
    factors = quality_to_factor(torch.tensor([10.0, 50.0, 75.0, 100.0]))
    assert torch.allclose(factors, torch.tensor([5.0, 1.0, 0.5, 0.0]))
    flat = torch.full((1, 3, 16, 16), 0.5)
    out = diff_jpeg(flat, 100.0)  # step clamped to 1: no division by zero
    assert torch.isfinite(out).all() and (out - flat).abs().max() < 1 / 255


def test_differentiable_rounding_passes_gradients():
    img = torch.rand(2, 3, 16, 16, requires_grad=True)
    diff_jpeg(img, torch.tensor([50.0, 80.0]), differentiable=True).sum().backward()
    assert torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0


def test_rejects_non_rgb():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        diff_jpeg(torch.rand(1, 1, 16, 16), 50.0)


def _fixture_input() -> torch.Tensor:
    """The input of tests/data/basicsr_diffjpeg.npz: a 32 x 44 astronaut crop (padded to 32 x 48 inside), 4 times."""
    img = data.astronaut()[100:132, 180:224].astype(np.float32) / 255.0
    return torch.from_numpy(img).permute(2, 0, 1)[None].repeat(4, 1, 1, 1).contiguous()


def test_basicsr_layout_reproduces_basicsr_diffjpeg() -> None:
    # tests/data/basicsr_diffjpeg.npz holds the output of BasicSR's basicsr/utils/diffjpeg.py (DiffJPEG, commit
    # 8d56e3a) on _fixture_input() at qualities 10, 30.5, 77.2 and 97, with torch.round and with diff_round.
    # Measured: max |ours - BasicSR| 2.4e-7 (float32 rounding); the standard layout is 29-47 dB away.
    ref = np.load("tests/data/basicsr_diffjpeg.npz")
    x, quality = _fixture_input(), torch.from_numpy(ref["quality"])
    out = diff_jpeg(x, quality, table_layout="basicsr")
    assert float((out - torch.from_numpy(ref["out"])).abs().max()) < 1e-6
    soft = diff_jpeg(x[1:], quality[1:], differentiable=True, table_layout="basicsr")
    assert float((soft - torch.from_numpy(ref["out_differentiable"])).abs().max()) < 1e-6
    standard = diff_jpeg(x, quality)
    assert float((standard - torch.from_numpy(ref["out"])).abs().max()) > 0.01  # the layouts really differ


def test_basicsr_layout_is_the_standard_one_on_the_transposed_image() -> None:
    # BasicSR's luma table is libjpeg's transposed, and transposing an image transposes its DCT coefficients
    x = _fixture_input()[:, :, :32, :32]
    quality = torch.tensor([20.0, 50.0, 80.0, 90.0])
    basicsr = diff_jpeg(x, quality, table_layout="basicsr")
    standard_t = diff_jpeg(x.transpose(2, 3), quality).transpose(2, 3)
    assert float((basicsr - standard_t).abs().max()) < 1e-5


def test_quality_100_and_above_95() -> None:
    # BasicSR returns NaN at quality 100 (it divides by a zero step); both layouts use step 1 there. Above 95
    # the standard layout clamps steps to libjpeg's minimum 1, BasicSR's does not (finer than integer steps).
    x = _fixture_input()[:1]
    for layout in ("standard", "basicsr"):
        out = diff_jpeg(x, 100.0, table_layout=layout)
        assert torch.isfinite(out).all()
        assert _psnr(out[0].numpy(), x[0].numpy()) > 30  # only the 4:2:0 chroma subsampling is lost
    # at 99.9 every scaled step is below 1 (121 x 0.002): the standard layout clamps them all to 1, as at 100
    assert torch.equal(diff_jpeg(x, 99.9), diff_jpeg(x, 100.0))
    assert not torch.equal(diff_jpeg(x, 99.9, table_layout="basicsr"), diff_jpeg(x, 100.0, table_layout="basicsr"))
    with pytest.raises(ValueError, match="table_layout must be one of"):
        diff_jpeg(x, 50.0, table_layout="transposed")


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_standard_layout_is_closer_to_opencv_than_basicsr_s(name: str) -> None:
    # measured on these 128 x 128 crops at qualities 30/60/90: the standard layout is 0.76-4.25 dB closer (PSNR)
    img = getattr(data, name)()[:128, :128]
    for quality in (30, 60, 90):
        ref = _cv2_jpeg(img, quality)
        psnr = {layout: _psnr(diff_jpeg(_to_tensor(img), torch.tensor([quality]), table_layout=layout)[0]
                              .permute(1, 2, 0).numpy(), ref) for layout in ("standard", "basicsr")}
        assert psnr["standard"] > psnr["basicsr"] + 0.5, (name, quality, psnr)
