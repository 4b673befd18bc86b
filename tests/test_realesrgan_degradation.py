"""Real-ESRGAN degradation: kernel math, the dataset, the batched pipeline, reproducibility and the pool."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from scipy.special import j1

from restoration.data.base_dataset import DatasetOptionError
from restoration.data.degradations.kernels import (KERNEL_TYPES, bivariate_kernel, check_blur_options,
                                                  circular_lowpass_kernel, draw_blur_kernel, draw_final_sinc_kernel,
                                                  pad_kernel, random_mixed_kernel)
from restoration.data.realesrgan_dataset import RealESRGANDataset
from restoration.data.degradations.realesrgan import (TrainingPairPool, _gaussian_blur, check_degradation_options,
                                                     degradation_generator, filter2d, realesrgan_degrade, usm_kernel,
                                                     usm_sharp)
from restoration.errors import DataError

BLUR = {"blur_kernel_size": 21, "kernel_list": list(KERNEL_TYPES), "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
        "blur_sigma": [0.2, 3], "betag_range": [0.5, 4], "betap_range": [1, 2], "sinc_prob": 0.1}


# ------------------------------------------------------------------------------------------------ kernels
@pytest.mark.parametrize("kind", KERNEL_TYPES)
def test_every_kernel_type_sums_to_one_and_is_point_symmetric(kind):
    rng = np.random.default_rng(3)
    for size in (7, 13, 21):
        kernel, params = random_mixed_kernel(rng, [kind], [1.0], size, [0.2, 3], [0.5, 4], [1, 2])
        assert params["type"] == kind and kernel.shape == (size, size)
        assert abs(kernel.sum() - 1.0) < 1e-12 and kernel.min() >= 0
        assert np.allclose(kernel, kernel[::-1, ::-1])  # so correlation equals convolution
        if kind.endswith("_iso") or kind == "iso":
            assert params["sigma_y"] == params["sigma_x"] and params["theta"] == 0.0


def test_isotropic_kernel_is_the_closed_form_gaussian():
    sigma, size = 1.7, 15
    r = np.arange(size) - 7
    expected = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    kernel = bivariate_kernel("gaussian", size, sigma, sigma, 0.0)
    np.testing.assert_allclose(kernel, expected / expected.sum(), rtol=1e-12)


def test_anisotropic_kernel_rotates_with_theta():
    """σx along columns at θ = 0; a quarter turn moves it to the rows: the transpose."""
    flat = bivariate_kernel("gaussian", 21, 4.0, 1.0, 0.0)
    turned = bivariate_kernel("gaussian", 21, 4.0, 1.0, math.pi / 2)
    np.testing.assert_allclose(turned, flat.T, atol=1e-12)
    assert flat[10, 14] > flat[14, 10]  # wider along x (columns)
    plateau = bivariate_kernel("plateau", 21, 2.0, 2.0, 0.0, beta=1.0)
    assert abs(plateau[10, 12] - plateau[10, 10] / (1 + 4 / 4.0)) < 1e-12  # 1 / (q + 1), q = 2² / σ²


def test_sinc_kernel_is_the_circular_lowpass_filter():
    omega, size = math.pi / 2, 21
    kernel = circular_lowpass_kernel(omega, size)
    assert abs(kernel.sum() - 1.0) < 1e-12
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-15)
    np.testing.assert_allclose(kernel, kernel[::-1], atol=1e-15)
    assert kernel.argmax() == 10 * 21 + 10 and kernel.min() < 0  # ringing lobes
    # centre ω²/4π and the neighbour ω J1(ω)/2π keep their ratio after normalisation
    expected_ratio = (omega ** 2 / (4 * math.pi)) / (omega * j1(omega) / (2 * math.pi))
    assert abs(kernel[10, 10] / kernel[10, 11] - expected_ratio) < 1e-12


def test_drawn_kernels_are_padded_centred_and_reproducible():
    a, params = draw_blur_kernel(np.random.default_rng(5), BLUR)
    b, _ = draw_blur_kernel(np.random.default_rng(5), BLUR)
    assert a.shape == (21, 21) and np.array_equal(a, b) and abs(a.sum() - 1) < 1e-12
    start, k = (21 - params["size"]) // 2, params["size"]
    inside = np.zeros((21, 21), dtype=bool)
    inside[start: start + k, start: start + k] = True
    assert np.all(a[~inside] == 0)
    small = pad_kernel(np.ones((7, 7)) / 49, 21)
    assert small[7:14, 7:14].sum() == pytest.approx(1.0) and small.sum() == pytest.approx(1.0)
    pulse, info = draw_final_sinc_kernel(np.random.default_rng(0), 0.0, 21)
    assert info == {"type": "pulse"} and pulse[10, 10] == 1 and pulse.sum() == 1
    sinc, info = draw_final_sinc_kernel(np.random.default_rng(0), 1.0, 21)
    assert info["type"] == "sinc" and math.pi / 3 <= info["omega_c"] <= math.pi and abs(sinc.sum() - 1) < 1e-12


def test_blur_options_errors():
    bad = dict(BLUR, blur_kernel_size=20, kernel_prob=[0.5, 0.25, 0.12, 0.03, 0.12, 0.03], betag_range=[2, 4])
    problems = check_blur_options(bad)
    assert problems == [
        "blur_kernel_size must be an odd integer >= 7 (kernels are centred on a pixel), got 20",
        "kernel_prob [0.5, 0.25, 0.12, 0.03, 0.12, 0.03] must be probabilities in [0, 1] that sum to 1 (they sum to 1.05)",
        "betag_range [2, 4] must contain 1 (beta is drawn below and above 1)",
    ]
    assert check_blur_options(BLUR) == []


# ------------------------------------------------------------------------------------------------ dataset
def _write_images(folder, sizes):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{i:04d}.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return str(folder)


def test_dataset_returns_gt_and_kernels(tmp_path):
    root = _write_images(tmp_path / "gt", [(48, 40), (80, 96)])
    ds = RealESRGANDataset({"dataroot_gt": root, "phase": "val", "scale": 4, "crop_pad_size": 64,
                            "blur_kernel_size2": 15, **BLUR})
    sample = ds[0]
    assert sample["gt"].shape == (3, 64, 64) and sample["gt"].dtype == torch.float32
    assert sample["kernel1"].shape == (21, 21) and sample["kernel2"].shape == (15, 15)
    assert sample["sinc_kernel"].shape == (21, 21)
    assert abs(float(sample["kernel1"].sum()) - 1) < 1e-5 and abs(float(sample["kernel2"].sum()) - 1) < 1e-5
    again = ds[0]  # validation phase: seeded by (seed, index)
    assert all(torch.equal(sample[k], again[k]) for k in ("gt", "kernel1", "kernel2", "sinc_kernel"))
    assert not torch.equal(ds[1]["kernel1"], sample["kernel1"])
    assert ds[1]["gt"].shape == (3, 64, 64)  # larger image: cropped


def test_dataset_option_errors_before_anything_starts(tmp_path):
    root = _write_images(tmp_path / "gt", [(32, 32)])
    opt = {"dataroot_gt": root, "blur_kernel_size": 22, "kernel_prob2": [0.5, 0.5], "final_sinc_prob": 1.5,
           "blur_sigma": [0.2, 3]}
    with pytest.raises(DatasetOptionError) as err:
        RealESRGANDataset(opt)
    message = str(err.value)
    assert "blur_kernel_size must be an odd integer >= 7" in message
    assert "kernel_prob2 has 2 entries but needs 6" in message
    assert "final_sinc_prob must be a probability in [0, 1], got 1.5" in message


@pytest.mark.parametrize("sigma", [1e-155, 1e-200])  # sigma^2 underflows to a tiny / a zero covariance
def test_a_degenerate_kernel_names_the_sample_seed_and_its_draw(tmp_path, sigma):
    root = _write_images(tmp_path / "gt", [(48, 40)])
    blur = {**BLUR, "kernel_list": ["iso"], "kernel_prob": [1.0], "blur_sigma": [sigma, sigma], "sinc_prob": 0.0}
    ds = RealESRGANDataset({"dataroot_gt": root, "phase": "val", "scale": 4, "crop_pad_size": 64, **blur})
    with pytest.raises(DataError, match=r"sample 0 \(.*0000\.png, sample seed .*\): a blur kernel is not finite; "
                                        r"kernel1 \{.*'type': 'iso'.*\}, kernel2 .*Narrow blur_sigma"):
        ds[0]


# ------------------------------------------------------------------------------------------------ device side
def _batch(n=2, size=128, seed=0):
    rng = np.random.default_rng(seed)
    kernels = {key: [] for key in ("kernel1", "kernel2", "sinc_kernel")}
    for _ in range(n):
        kernels["kernel1"].append(draw_blur_kernel(rng, BLUR)[0])
        kernels["kernel2"].append(draw_blur_kernel(rng, BLUR)[0])
        kernels["sinc_kernel"].append(draw_final_sinc_kernel(rng, 0.8, 21)[0])
    gt = torch.from_numpy(rng.random((n, 3, size, size), dtype=np.float32))
    gt = torch.nn.functional.avg_pool2d(gt, 3, 1, 1)  # a little structure
    return {"gt": gt, **{k: torch.from_numpy(np.stack(v).astype(np.float32)) for k, v in kernels.items()}}


def test_filter2d_pulse_and_usm():
    img = torch.rand(2, 3, 40, 40)
    pulse = torch.zeros(2, 21, 21)
    pulse[:, 10, 10] = 1
    assert torch.equal(filter2d(img, pulse), img)
    flat = torch.full((1, 3, 64, 64), 0.3)
    assert torch.allclose(usm_sharp(flat), flat, atol=1e-6)  # constant image: unchanged
    # The separable USM blur equals the 51x51 kernel applied by filter2d.
    residual = img - _gaussian_blur(img)
    direct = img - filter2d(img, usm_kernel().float())
    assert torch.allclose(residual, direct, atol=1e-5)
    edge = torch.zeros(1, 3, 64, 64)
    edge[..., 32:] = 0.8
    sharp = usm_sharp(edge)
    assert float(sharp[..., 31].max()) < 1e-6 and float(sharp[..., 32].max()) <= 1.0  # clipped to [0, 1]
    assert float(sharp[..., 33].mean()) > 0.8  # overshoot on the bright side


def test_degrade_shapes_grid_and_seeds():
    batch = _batch()
    opt = {"scale": 4, "gt_size": 64, "queue_size": 0}
    lq, gt, gt_usm = realesrgan_degrade(batch, opt, degradation_generator(0, 1))
    assert lq.shape == (2, 3, 16, 16) and gt.shape == gt_usm.shape == (2, 3, 64, 64)
    assert torch.equal(lq, torch.round(lq * 255) / 255) and lq.min() >= 0 and lq.max() <= 1
    same = realesrgan_degrade(batch, opt, degradation_generator(0, 1))
    assert all(torch.equal(a, b) for a, b in zip((lq, gt, gt_usm), same))
    other, _, _ = realesrgan_degrade(batch, opt, degradation_generator(0, 2))
    assert not torch.equal(other, lq)
    assert not torch.equal(realesrgan_degrade(batch, opt, degradation_generator(0, 1, rank=1))[0], lq)
    full, full_gt, _ = realesrgan_degrade(batch, {"gt_size": None}, degradation_generator(0, 1))
    assert full.shape == (2, 3, 32, 32) and torch.equal(full_gt, batch["gt"])


def test_degrade_names_the_seed_of_a_non_finite_result():
    batch = _batch()
    batch["kernel1"][1, 10, 10] = float("nan")
    batch["gt_path"] = ["a.png", "b.png"]
    with pytest.raises(DataError, match=r"sample\(s\) \[1\] of the batch \['b.png'\].*generator seed \d+.*jpeg_quality"):
        realesrgan_degrade(batch, {}, degradation_generator(7, 3))


def test_degradation_option_errors():
    problems = check_degradation_options({"resize_prob": [0.2, 0.7, 0.2], "queue_size": 180, "jpeg_range": [30, 101],
                                          "gt_size": 250}, batch_size=16)
    assert problems == [
        "resize_prob [0.2, 0.7, 0.2] must be probabilities in [0, 1] that sum to 1 (they sum to 1.1)",
        "jpeg_range [30, 101] must satisfy 1 <= low <= high <= 100",
        "gt_size must be a positive multiple of scale 4 (or null: no crop), got 250",
        "queue_size 180 must be a multiple of the per-GPU batch size 16 (e.g. 176)",
    ]
    assert check_degradation_options({}, batch_size=12) == []


# ------------------------------------------------------------------------------------------------ the pool
def _pairs(step, b=2):
    lq = torch.full((b, 3, 2, 2), float(step)) + torch.arange(b).view(b, 1, 1, 1) / 10
    return lq, lq.repeat_interleave(4, 2).repeat_interleave(4, 3)


def test_pool_fills_then_mixes_batches():
    pool = TrainingPairPool(6)
    g = torch.Generator().manual_seed(0)
    for step in range(3):  # filling: batches pass unchanged
        lq, gt = _pairs(step)
        out_lq, out_gt = pool(lq, gt, g)
        assert torch.equal(out_lq, lq) and torch.equal(out_gt, gt)
    seen = set()
    for step in range(3, 9):
        out_lq, out_gt = pool(*_pairs(step), g)
        assert torch.equal(out_gt, out_lq.repeat_interleave(4, 2).repeat_interleave(4, 3))  # pairs stay pairs
        seen |= {round(float(v), 1) for v in out_lq[:, 0, 0, 0]}
    assert len({int(v) for v in seen}) > 2  # a batch draws from several iterations
    with pytest.raises(DataError, match="not a multiple of the batch size 4"):
        pool(*_pairs(0, b=4), g)


def test_resumed_run_is_bit_identical_pool_included():
    """Iterations 1-6 in one go equal 1-3, save, restore into a new pool, 4-6."""
    batches = [_batch(seed=i, size=96) for i in range(6)]
    opt = {"gt_size": 48, "queue_size": 4}

    def run(pool, iterations):
        return [realesrgan_degrade(batches[i - 1], opt, degradation_generator(0, i), pool) for i in iterations]

    straight = run(TrainingPairPool(4), range(1, 7))
    first = TrainingPairPool(4)
    run(first, range(1, 4))
    state = first.state_dict()
    resumed_pool = TrainingPairPool(4)
    resumed_pool.load_state_dict(state)
    resumed = run(resumed_pool, range(4, 7))
    for a, b in zip(straight[3:], resumed):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert state["ptr"] == 4 and state["lq"].shape == (4, 3, 12, 12) and state["gt"].shape == (4, 3, 48, 48)
    with pytest.raises(DataError, match="queue_size 4, the options say 8"):
        TrainingPairPool(8).load_state_dict(state)


def test_jpeg_table_layout_option_reaches_the_jpeg_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    # 'basicsr' reproduces BasicSR's DiffJPEG (the released models' training degradation); checked by the option
    import restoration.data.degradations.realesrgan as rd

    seen = []
    real = rd.diff_jpeg
    monkeypatch.setattr(rd, "diff_jpeg", lambda *a, **k: seen.append(k["table_layout"]) or real(*a, **k))
    draws = rd._Draws(torch.Generator().manual_seed(0), torch.device("cpu"))
    out = rd._jpeg(torch.rand(2, 3, 16, 16), draws, [50, 60], "", "basicsr")
    assert out.shape == (2, 3, 16, 16) and seen == ["basicsr"]
    assert rd.check_degradation_options({"jpeg_table_layout": "transposed"}) == [
        "jpeg_table_layout must be one of ['standard', 'basicsr'], got 'transposed'"]
    assert rd.check_degradation_options({"jpeg_table_layout": "basicsr"}) == []
