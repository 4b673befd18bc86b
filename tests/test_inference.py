"""Inference utilities: padding to a window multiple, tiled inference with blending, ×8 self-ensemble."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restoration.inference import (
    blend_profile,
    crop_to,
    dihedral_transform,
    inverse_dihedral_transform,
    pad_amount,
    pad_to_multiple,
    restore,
    self_ensemble,
    tile_starts,
    tiled_forward,
)
from scripts.benchmark.memory import cpu_peak_supported, measure_peak_memory


# ----------------------------------------------------------------------------------------------- padding
@pytest.mark.parametrize("size, multiple, expected", [(64, 8, 0), (65, 8, 7), (63, 8, 1), (8, 8, 0), (5, 16, 11), (7, 1, 0)])
def test_pad_amount_never_adds_a_window_when_aligned(size: int, multiple: int, expected: int) -> None:
    assert pad_amount(size, multiple) == expected


@pytest.mark.parametrize("mode", ["reflect", "symmetric", "replicate", "constant", "circular"])
def test_pad_to_multiple_modes(mode: str) -> None:
    x = torch.arange(2 * 3 * 10 * 13, dtype=torch.float32).reshape(2, 3, 10, 13)
    padded, size = pad_to_multiple(x, 8, mode=mode)
    assert size == (10, 13)
    assert padded.shape == (2, 3, 16, 16)
    assert torch.equal(padded[..., :10, :13], x)  # original kept top-left
    assert torch.equal(crop_to(padded, size), x)
    row10 = padded[..., 10, :13]
    expected = {
        "reflect": x[..., 8, :],  # mirror without the edge row
        "symmetric": x[..., 9, :],  # mirror including the edge row (SwinIR's torch.flip)
        "replicate": x[..., 9, :],
        "constant": torch.zeros_like(x[..., 0, :]),
        "circular": x[..., 0, :],
    }[mode]
    assert torch.equal(row10, expected)


def test_pad_to_multiple_aligned_is_identity_object() -> None:
    x = torch.rand(1, 3, 16, 24)
    padded, size = pad_to_multiple(x, 8)
    assert padded is x and size == (16, 24)


def test_reflect_falls_back_when_image_smaller_than_pad() -> None:
    # 3x5 image padded to 16: reflect needs pad < size, impossible here -> repeated mirror.
    x = torch.rand(1, 2, 3, 5)
    padded, size = pad_to_multiple(x, 16, mode="reflect")
    assert padded.shape == (1, 2, 16, 16) and size == (3, 5)
    assert torch.equal(padded[..., :3, :5], x)
    # Every padded value is one of the image's values (no zeros invented), per channel.
    for c in range(2):
        assert set(padded[0, c].flatten().tolist()) <= set(x[0, c].flatten().tolist())
    # 3D input works too.
    p3, _ = pad_to_multiple(x[0], 16, mode="reflect")
    assert torch.equal(p3, padded[0])


def test_crop_to_refuses_a_smaller_output() -> None:
    with pytest.raises(ValueError, match="smaller"):
        crop_to(torch.rand(1, 3, 8, 8), (10, 8))
    with pytest.raises(ValueError, match="unknown pad mode"):
        pad_to_multiple(torch.rand(1, 1, 4, 4), 8, mode="mirror")


# ------------------------------------------------------------------------------------------------ tiling
class TinySR(nn.Module):
    """Residual conv SR net: nearest ×s upsampling + conv stack + PixelShuffle (receptive-field radius ``depth``)."""

    def __init__(self, scale: int = 2, width: int = 24, depth: int = 6) -> None:
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1)]
        for _ in range(depth - 2):
            layers += [nn.LeakyReLU(0.1), nn.Conv2d(width, width, 3, padding=1)]
        layers += [nn.LeakyReLU(0.1), nn.Conv2d(width, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return up + 0.2 * self.body(x)


def _load_lr_hr(benchmarks_root: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Set5 'head' ×2 (LR 140×140, not a multiple of 8) or a skimage image as fallback; RGB [0, 1]."""
    if benchmarks_root is not None:
        import cv2

        hr = cv2.imread(str(benchmarks_root / "Set5" / "HR" / "head.png"))[:, :, ::-1]
        lr = cv2.imread(str(benchmarks_root / "Set5" / "LR_bicubic" / "X2" / "headx2.png"))[:, :, ::-1]
    else:  # pragma: no cover - only without the shared data
        from skimage import data, transform

        hr = data.astronaut()[100:380, 150:430]
        lr = (transform.resize(hr, (140, 140), anti_aliasing=True) * 255).round().astype(np.uint8)
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    return to_t(lr), to_t(hr)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB on uint8-rounded [0, 1] images (the evaluation protocol rounds outputs)."""
    qa = (a.clamp(0, 1) * 255).round().double()
    qb = (b.clamp(0, 1) * 255).round().double()
    mse = ((qa - qb) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


@pytest.fixture
def image_pair(request: pytest.FixtureRequest) -> tuple[torch.Tensor, torch.Tensor]:
    from conftest import benchmarks_dir

    root = benchmarks_dir()
    return _load_lr_hr(root if (root / "Set5").is_dir() else None)


def test_tile_starts_cover_with_overlap() -> None:
    assert tile_starts(144, 64, 16) == [0, 48, 80]
    assert tile_starts(40, 64, 16) == [0]
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 16, 16)


@pytest.mark.parametrize("mode", ["hann", "linear"])
def test_blend_profile_positive_and_partition_of_unity(mode: str) -> None:
    w = blend_profile(64, 16, True, True, mode)
    assert w.min().item() > 0 and w.max().item() == 1.0
    # A falling ramp and the next tile's rising ramp over the same 16 pixels sum to 1.
    torch.testing.assert_close(w[-16:] + w[:16], torch.ones(16), rtol=0, atol=1e-6)
    border = blend_profile(64, 16, False, False, mode)
    assert torch.equal(border, torch.ones(64))  # image-border sides are never down-weighted


def test_tiled_matches_whole_image_on_set5(image_pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(0)
    lr, hr = image_pair
    net = TinySR(scale=2, width=16).eval()
    multiple = 8

    def net_fn(t: torch.Tensor) -> torch.Tensor:
        assert t.shape[-1] % multiple == 0 and t.shape[-2] % multiple == 0
        return net(t)

    with torch.no_grad():
        padded, size = pad_to_multiple(lr, multiple)
        whole = crop_to(net(padded), (size[0] * 2, size[1] * 2))
    tiled = tiled_forward(net_fn, lr, scale=2, tile=64, overlap=16, multiple=multiple)
    assert tiled.shape == whole.shape == hr.shape
    psnr_whole, psnr_tiled = _psnr(whole, hr), _psnr(tiled, hr)
    delta = abs(psnr_whole - psnr_tiled)
    print(f"PSNR whole {psnr_whole:.4f} dB, tiled {psnr_tiled:.4f} dB, |delta| {delta:.5f} dB, "
          f"max|tiled-whole| {(tiled - whole).abs().max().item():.2e}")
    assert delta <= 0.05
    assert _psnr(tiled, whole) > 60  # nearly identical after uint8 rounding

    # Seams: along the tile boundaries (LR starts 48, 80 -> output columns 96, 160) the tiled output must
    # not introduce a jump: its gradient across the boundary equals the whole-image one, while hard tiling
    # (no overlap) does introduce one — so this test can fail.
    hard = tiled_forward(net, lr, scale=2, tile=64, overlap=0, multiple=multiple)
    err_blend, err_hard = (tiled - whole).abs(), (hard - whole).abs()
    hard_cols = [128]  # hard tiles start at 0, 64, 128 (LR) -> the boundary near column 128 (output)
    boundary = torch.zeros(whole.shape[-1], dtype=torch.bool)
    for c in (96, 160):
        boundary[c - 8 : c + 8] = True
    assert err_blend[..., boundary].max().item() < 0.5 / 255  # invisible after uint8 rounding
    assert err_blend[..., boundary].mean().item() <= 1e-3 / 255 + err_blend[..., ~boundary].mean().item() * 10
    grad = lambda t, c: (t[..., c] - t[..., c - 1]).abs().mean().item()  # noqa: E731
    for c in (96, 160):
        assert abs(grad(tiled, c) - grad(whole, c)) < 1e-3 * max(grad(whole, c), 1e-6) + 1e-6
    assert err_hard[..., hard_cols[0] * 2 - 2 : hard_cols[0] * 2 + 2].max().item() > 10 * err_blend.max().item()


def test_tiled_single_tile_when_image_smaller_than_tile() -> None:
    torch.manual_seed(0)
    net = TinySR(scale=3, width=8, depth=3).eval()
    x = torch.rand(2, 3, 21, 13)
    with torch.no_grad():
        padded, size = pad_to_multiple(x, 8)
        expected = crop_to(net(padded), (21 * 3, 13 * 3))
    out = tiled_forward(net, x, scale=3, tile=64, overlap=16, multiple=8)
    assert out.shape == (2, 3, 63, 39)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_tiled_rejects_wrong_scale() -> None:
    with pytest.raises(ValueError, match="scale=2"):
        tiled_forward(lambda t: t, torch.rand(1, 3, 32, 32), scale=2, tile=16, overlap=4)


def test_tiled_peak_memory_bounded_by_tile_size() -> None:
    """Tiles keep the network's activations at tile size.

    Two measurements: (1) forward hooks record the largest intermediate tensor the network creates
    (deterministic, independent of the allocator); (2) the process' peak RSS from
    :func:`measure_peak_memory` (PyTorch keeps no CPU allocator statistics and tracemalloc does not see
    tensor storage, so we use the kernel's high-water mark with malloc configured to return freed blocks).
    """
    torch.manual_seed(0)
    net = TinySR(scale=2, width=16, depth=3).eval()
    largest = {"numel": 0}

    def hook(_m: nn.Module, _inp: object, out: torch.Tensor) -> None:
        largest["numel"] = max(largest["numel"], out.numel())

    handles = [m.register_forward_hook(hook) for m in net.body]
    x = torch.rand(1, 3, 256, 256)
    tile, tbs = 64, 2
    tiled_forward(net, x, scale=2, tile=tile, overlap=8, tile_batch_size=tbs)
    assert largest["numel"] == tbs * 16 * tile * tile  # width-16 features of 2 tiles, nothing larger
    largest["numel"] = 0
    with torch.no_grad():
        net(x)
    assert largest["numel"] == 16 * 256 * 256
    for h in handles:
        h.remove()

    if not cpu_peak_supported():
        pytest.skip("RSS high-water mark not available on this platform")
    mb = 2**20
    # One thread: per-thread malloc arenas of the intra-op pool otherwise add noise of a few MB to the RSS.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _check_peak_rss(net, x, tile, tbs)
    finally:
        torch.set_num_threads(threads)


def _check_peak_rss(net: nn.Module, x: torch.Tensor, tile: int, tbs: int) -> None:
    mb = 2**20
    with torch.no_grad():
        measure_peak_memory(lambda: net(x), "cpu")  # warm up oneDNN once
        whole_peak = measure_peak_memory(lambda: net(x), "cpu")[1]
    run = lambda img: measure_peak_memory(lambda: tiled_forward(net, img, 2, tile, 8, tile_batch_size=tbs), "cpu")[1]  # noqa: E731
    run(x[..., :128, :128])  # first call with this tile shape: one-time oneDNN set-up, not per image
    # Minimum of two runs: RSS picks up stray allocations of other threads; the working set is the floor.
    peaks = {s: min(run(x[..., :s, :s]) for _ in range(2)) for s in (128, 256)}
    # Output + weight accumulators are float32 maps of the *output* size: unavoidable, and not activations.
    activations = {s: peaks[s] - (3 + 1) * (2 * s) ** 2 * 4 for s in peaks}
    print(f"peak RSS whole-256 {whole_peak / mb:.1f} MB; tiled beyond accumulators: "
          + ", ".join(f"{s}px {a / mb:.1f} MB" for s, a in activations.items()))
    assert whole_peak > 2 * 16 * 256 * 256 * 4  # >= 2 whole-image feature maps (4 MB each) live at once
    # Bounded by the tile size: 4x the pixels, about the same working memory (a few 2 x 16 x 64 x 64 maps
    # of 0.5 MB and tile-sized inputs/outputs). Were it proportional to the image like whole-image inference,
    # going from 128 to 256 px would add ~3/4 of the whole-image working memory (~11 MB); the measured
    # growth is 0-2 MB (RSS noise), so the bound is 1/4 of it.
    assert activations[256] - activations[128] < whole_peak / 4
    assert activations[256] < 0.6 * whole_peak  # measured 2.5-6.2 MB vs 15 MB


# ----------------------------------------------------------------------------------------- self-ensemble
def test_each_dihedral_transform_is_inverted_and_all_distinct() -> None:
    x = torch.rand(2, 3, 5, 7)
    seen = []
    for k in range(8):
        t = dihedral_transform(x, k)
        assert t.shape[-2:] == ((7, 5) if k & 4 else (5, 7))
        assert torch.equal(inverse_dihedral_transform(t, k), x)
        seen.append(t.contiguous())
    square = torch.rand(1, 1, 6, 6)
    outs = [dihedral_transform(square, k) for k in range(8)]
    assert all(not torch.equal(outs[i], outs[j]) for i in range(8) for j in range(i + 1, 8))
    with pytest.raises(ValueError):
        dihedral_transform(x, 8)


def test_self_ensemble_equals_equivariant_net() -> None:
    x = torch.rand(2, 3, 9, 14)
    pointwise = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Tanh(), nn.Conv2d(4, 3, 1))
    with torch.no_grad():
        torch.testing.assert_close(self_ensemble(pointwise, x), pointwise(x), rtol=0, atol=1e-6)
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        torch.testing.assert_close(self_ensemble(up, x), up(x), rtol=0, atol=1e-6)


def test_self_ensemble_averages_the_back_transformed_outputs() -> None:
    torch.manual_seed(0)
    net = nn.Conv2d(1, 1, 3, padding=1, bias=False)  # a random 3x3 kernel is not flip-equivariant
    x = torch.rand(1, 1, 8, 11)
    with torch.no_grad():
        got = self_ensemble(net, x)
        # Flipping/transposing the input = convolving with the flipped/transposed kernel.
        k = net.weight
        kernels = [inverse_dihedral_transform(k, i) for i in range(8)]
        expected = F.conv2d(x, torch.stack(kernels).mean(0), padding=1)
        plain = net(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert (got - plain).abs().max().item() > 1e-3


# ------------------------------------------------------------------------------------------------ restore
def test_restore_composes_padding_tiling_and_ensemble() -> None:
    torch.manual_seed(0)
    net = TinySR(scale=2, width=8, depth=3).eval()
    x = torch.rand(1, 3, 30, 21)
    seen: list[tuple[int, int]] = []

    def net_fn(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape[-2:]))
        return net(t)

    with torch.no_grad():
        padded, _ = pad_to_multiple(x, 8)
        plain = crop_to(net(padded), (60, 42))
    torch.testing.assert_close(restore(net_fn, x, scale=2, multiple=8), plain, rtol=0, atol=0)
    assert seen == [(32, 24)]
    tiled = restore(net, x, scale=2, multiple=8, tile=16, overlap=4)
    torch.testing.assert_close(tiled, tiled_forward(net, x, 2, 16, 4, multiple=8), rtol=0, atol=0)
    seen.clear()
    ens = restore(net_fn, x, scale=2, multiple=8, self_ensemble=True)
    assert len(seen) == 8 and (24, 32) in seen  # transposed passes are padded too
    expected = self_ensemble(lambda t: crop_to(net(pad_to_multiple(t, 8)[0]), (t.shape[-2] * 2, t.shape[-1] * 2)), x)
    torch.testing.assert_close(ens, expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------- streamed rows
@pytest.mark.parametrize("h, w, tile, overlap, multiple, scale", [
    (37, 53, 16, 4, 1, 2), (64, 64, 16, 8, 4, 2), (29, 71, 12, 3, 1, 3), (50, 20, 64, 8, 1, 2), (33, 47, 10, 9, 1, 1),
])
def test_streamed_rows_are_the_tiled_output_bit_for_bit(h: int, w: int, tile: int, overlap: int, multiple: int,
                                                        scale: int) -> None:
    """tiled_rows hands out, top to bottom and without gaps, exactly the rows of tiled_forward (the same
    float values, not just close), holding at most one tile-high band of the output at a time."""
    from restoration.inference import tiled_rows

    torch.manual_seed(0)
    net = TinySR(scale=scale, width=8, depth=2).eval()
    x = torch.rand(2, 3, h, w)
    whole = tiled_forward(net, x, scale, tile, overlap, multiple=multiple)
    bands = list(tiled_rows(net, x, scale, tile, overlap, multiple=multiple))
    assert [y for y, _ in bands] == list(np.cumsum([0] + [b.shape[2] for _, b in bands[:-1]]))
    assert all(b.shape[2] <= tile * scale for _, b in bands)
    assert torch.equal(torch.cat([b for _, b in bands], dim=2), whole)
