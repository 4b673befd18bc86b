"""``restoration.infer``: one-command restoration of an image or a folder, the network detected from the weights.

End-to-end runs use tiny networks (a 2-block SwinIR, a real SwinIR-S lightweight x2 on 16x16 images) so the
whole file runs in seconds on a busy CPU.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from restoration.cli import infer
from restoration.archs.build import build_network
from restoration.archs.spec import arch_spec
from restoration.inference import restore
from restoration.inference.image_restorer import ImageRestorer
from restoration.inference.output_plan import OutputJob
from restoration.utils.image_io import img2tensor, imread, imwrite, tensor2img

TINY = dict(type="SwinIR", img_size=8, in_chans=3, embed_dim=8, depths=[2], num_heads=[2], window_size=4,
            mlp_ratio=2, upscale=2, upsampler="pixelshuffle", resi_connection="1conv")


def _rgb(h: int, w: int, seed: int, dtype=np.uint8) -> np.ndarray:
    top = 65535 if dtype == np.uint16 else 255
    return np.random.default_rng(seed).integers(0, top + 1, size=(h, w, 3)).astype(dtype)


def _save_weights(net: torch.nn.Module, path: Path, key: str = "params") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({key: net.state_dict()}, path)
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    """A training run's layout: ``experiments/tiny/{models/net_g_latest.pth, options/train.yml}``."""
    torch.manual_seed(0)
    net = build_network(TINY).eval()
    exp = tmp_path / "experiments" / "tiny"
    weights = _save_weights(net, exp / "models" / "net_g_latest.pth", "params_ema")
    (exp / "options").mkdir()
    (exp / "options" / "train_tiny.yml").write_text(yaml.safe_dump({"name": "tiny", "network_g": TINY}))
    return weights, net


def _expected(net: torch.nn.Module, img: np.ndarray, **kw) -> np.ndarray:
    """What test.py computes for this image: restore() with the network's spec, then tensor2img."""
    out = restore(net, img2tensor(img)[None], spec=arch_spec(net), **kw)
    return tensor2img(out[0], out_type=np.uint16 if img.dtype == np.uint16 else np.uint8)


def test_folder_outputs_equal_test_py_path_and_keep_gray_16bit_alpha(run_dir, tmp_path: Path, capsys) -> None:
    weights, net = run_dir
    src = tmp_path / "photos"
    rgb, rgb2, img16 = _rgb(13, 10, 1), _rgb(9, 12, 2), _rgb(8, 8, 3, np.uint16)
    gray = _rgb(10, 10, 4)[:, :, :1]
    imwrite(src / "a.png", rgb)
    imwrite(src / "b.jpg", rgb2)
    imwrite(src / "c16.png", img16)
    imwrite(src / "d_gray.png", gray)
    alpha = np.random.default_rng(5).integers(0, 256, size=(6, 7)).astype(np.uint8)
    cv2.imwrite(str(src / "e_rgba.png"), np.dstack([_rgb(6, 7, 6), alpha]))
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"

    code = infer.main(["-i", str(src), "-o", str(out), "--weights", str(weights), "--tile", "8",
                       "--tile-overlap", "2", "--suffix", "x2", "--no-progress"])
    assert code == 0
    err = capsys.readouterr().err
    assert "options/train_tiny.yml" in err  # the options saved beside models/ decided the network
    assert "5 image(s) restored in" in err and "peak memory" in err

    assert sorted(p.name for p in out.iterdir()) == ["a_x2.png", "b_x2.jpg", "c16_x2.png", "d_gray_x2.png",
                                                     "e_rgba_x2.png"]
    np.testing.assert_array_equal(imread(out / "a_x2.png"), _expected(net, rgb, tile=8, overlap=2))
    got16 = imread(out / "c16_x2.png")
    assert got16.dtype == np.uint16
    np.testing.assert_array_equal(got16, _expected(net, img16, tile=8, overlap=2))
    got_gray = imread(out / "d_gray_x2.png")
    assert got_gray.shape == (20, 20, 1)  # gray in, gray out
    assert imread(out / "b_x2.jpg").shape == (18, 24, 3)
    rgba = cv2.imread(str(out / "e_rgba_x2.png"), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (12, 14, 4)
    bicubic = torch.nn.functional.interpolate(img2tensor(alpha[:, :, None])[None], size=(12, 14), mode="bicubic")
    np.testing.assert_array_equal(rgba[:, :, 3], tensor2img(bicubic[0])[:, :, 0])


def test_existing_outputs_are_skipped_unless_overwrite(run_dir, tmp_path: Path, capsys) -> None:
    weights, _ = run_dir
    imwrite(tmp_path / "in" / "a.png", _rgb(8, 8, 1))
    args = ["-i", str(tmp_path / "in" / "a.png"), "-o", str(tmp_path / "out"), "--weights", str(weights),
            "--ext", "png", "--no-progress"]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"old")
    assert infer.main(args) == 0
    assert (tmp_path / "out" / "a.png").read_bytes() == b"old"
    assert "1 skipped (output exists; --overwrite)" in capsys.readouterr().err
    assert infer.main([*args, "--overwrite"]) == 0
    assert imread(tmp_path / "out" / "a.png").shape == (16, 16, 3)


def test_a_corrupt_image_is_named_and_the_rest_continue(run_dir, tmp_path: Path, capsys) -> None:
    weights, _ = run_dir
    imwrite(tmp_path / "in" / "good.png", _rgb(8, 8, 1))
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG garbage")
    code = infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                       "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.png: ImageReadError: cannot decode image" in err
    assert "1 image(s) restored" in err and "1 failed: broken.png" in err
    assert (tmp_path / "out" / "good.png").is_file()


def test_official_layout_is_detected_without_options(tmp_path: Path, capsys) -> None:
    """A real SwinIR-S lightweight x2 checkpoint, named as released: nothing but the weights is given."""
    torch.manual_seed(0)
    net = build_network(dict(type="SwinIR", img_size=64, embed_dim=60, depths=[6] * 4, num_heads=[6] * 4,
                             window_size=8, mlp_ratio=2, upscale=2, upsampler="pixelshuffledirect")).eval()
    weights = _save_weights(net, tmp_path / "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth")
    img = _rgb(12, 16, 7)
    imwrite(tmp_path / "img.png", img)
    code = infer.main(["-i", str(tmp_path / "img.png"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                       "--no-progress"])
    assert code == 0
    assert "SwinIR-S lightweight SR x2 (checkpoint keys)" in capsys.readouterr().err
    np.testing.assert_array_equal(imread(tmp_path / "out" / "img.png"), _expected(net, img))


def test_unreleased_config_restores_with_a_notice_naming_the_assumed_settings(tmp_path: Path, capsys) -> None:
    """A configuration no release has (your own training) restores from its shapes; the settings no state dict
    shows are taken from the closest release and named in the log; --arch gives the same pixels."""
    torch.manual_seed(0)
    net = build_network(TINY).eval()
    weights = _save_weights(net, tmp_path / "tiny.pth")
    img = _rgb(8, 8, 1)
    imwrite(tmp_path / "img.png", img)
    args = ["-i", str(tmp_path / "img.png"), "-o", str(tmp_path / "out"), "--weights", str(weights), "--no-progress"]
    assert infer.main([*args, "--ensemble"]) == 0
    err = capsys.readouterr().err
    assert "not a released SwinIR configuration (embed_dim 8; closest:" in err
    assert "not shown by the weights, assumed as in it: img_range=1.0" in err
    expected = _expected(net, img, self_ensemble=True)
    np.testing.assert_array_equal(imread(tmp_path / "out" / "img.png"), expected)
    assert infer.main([*args, "--arch", "SwinIR", "--ensemble", "--overwrite"]) == 0
    np.testing.assert_array_equal(imread(tmp_path / "out" / "img.png"), expected)


def test_opt_file_and_arch_opt(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_network({**TINY, "img_range": 255.0}).eval()
    weights = _save_weights(net, tmp_path / "tiny.pth")
    img = _rgb(8, 8, 1)
    imwrite(tmp_path / "img.png", img)
    (tmp_path / "net.yml").write_text(yaml.safe_dump({"network_g": TINY}))
    base = ["-i", str(tmp_path / "img.png"), "--weights", str(weights), "--no-progress"]
    assert infer.main([*base, "-o", str(tmp_path / "o1"), "-opt", str(tmp_path / "net.yml"),
                       "--arch-opt", '{"img_range": 255.0}']) == 0
    assert infer.main([*base, "-o", str(tmp_path / "o2"), "--arch", "SwinIR", "--arch-opt", '{"img_range": 255}']) == 0
    for out in ("o1", "o2"):
        np.testing.assert_array_equal(imread(tmp_path / out / "img.png"), _expected(net, img))


def test_bf16_is_close_to_fp32(run_dir, tmp_path: Path) -> None:
    weights, net = run_dir
    img = _rgb(8, 8, 2)
    imwrite(tmp_path / "img.png", img)
    assert infer.main(["-i", str(tmp_path / "img.png"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                       "--precision", "bf16", "--no-progress"]) == 0
    diff = imread(tmp_path / "out" / "img.png").astype(int) - _expected(net, img).astype(int)
    assert np.abs(diff).max() <= 12 and np.abs(diff).mean() < 3


@pytest.mark.parametrize("case,message,exit_code", [
    ("empty", "holds no image", 1),
    ("out_is_file", "is a file, not a folder", 2),  # bad argument values exit 2, as argparse's own errors
    ("tile_too_small", "--tile 3 is smaller than the network's minimum input side 4", 2),
    ("bad_json", "--arch-opt is not valid JSON", 2),
    ("overwrite_input", "would overwrite it", 2),
])
def test_bad_input_is_one_line(case: str, message: str, exit_code: int, tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    hat = dict(type="HAT", img_size=8, embed_dim=6, depths=[1], num_heads=[2], window_size=4, compress_ratio=2,
               squeeze_factor=3, mlp_ratio=2, upscale=2)
    (tmp_path / "run" / "options").mkdir(parents=True)
    (tmp_path / "run" / "options" / "o.yml").write_text(yaml.safe_dump({"network_g": hat}))
    weights = _save_weights(build_network(hat), tmp_path / "run" / "models" / "net_g_1.pth")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    if case != "empty":
        imwrite(src / "a.png", _rgb(8, 8, 1))
    extra: list[str] = []
    if case == "out_is_file":
        out.write_text("x")
    elif case == "tile_too_small":
        extra = ["--tile", "3"]
    elif case == "bad_json":
        extra = ["--arch-opt", "{img_range: 255"]
    elif case == "overwrite_input":
        out = src
    code = infer.main(["-i", str(src), "-o", str(out), "--weights", str(weights), "--no-progress", *extra])
    assert code == exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def _budget(monkeypatch, available: int) -> None:
    """The device reports ``available`` bytes free (the CPU's MemAvailable, CUDA's mem_get_info)."""
    from restoration.inference import tile_budget

    monkeypatch.setattr(tile_budget, "available_memory", lambda device: available)


def test_auto_tile_from_free_memory_and_retry_after_out_of_memory(run_dir, tmp_path: Path, monkeypatch) -> None:
    from restoration.inference.tile_budget import bytes_per_pixel, choose_tile

    _, net = run_dir
    spec = arch_spec(net)
    cpu = torch.device("cpu")
    _budget(monkeypatch, 2 * 1000 * 100 * 200)  # half of it is planned for: 100x200 pixels at 1000 B
    assert choose_tile(spec, 100, 200, cpu, 1000).tile is None
    assert choose_tile(spec, 300, 1000, cpu, 1000).tile == 136  # isqrt(20,000) = 141, a multiple of 8
    args = infer.build_arg_parser().parse_args(["-i", "x", "-o", "y", "--weights", "w"])
    restorer = ImageRestorer(net, cpu, infer.restore_settings(args))
    _budget(monkeypatch, 2 * 32 * 32 * bytes_per_pixel(net, spec, 4))
    tiles = []
    real = restorer._image

    def image(lq, tile, to_image, overlap=None):
        tiles.append(tile)
        if tile is None or tile > 8:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 GB")
        assert overlap is not None and overlap <= tile // 2  # an automatic tile's overlap is at most half its side
        return real(lq, tile, to_image, overlap)

    monkeypatch.setattr(restorer, "_image", image)
    lq = img2tensor(_rgb(40, 40, 3))[None]
    out = restorer._restore(lq, lambda t: tensor2img(t[0]))
    assert tiles == [32, 16, 8]
    # overlap capped at 8 // 2
    np.testing.assert_array_equal(out, tensor2img(restore(net, lq, spec=spec, tile=8, overlap=4)[0]))


def test_a_large_image_is_tiled_by_default_and_the_tile_is_logged(run_dir, tmp_path: Path, monkeypatch,
                                                                  capsys) -> None:
    """Without --tile, an image whose whole-image forward exceeds the memory budget runs in tiles."""
    from restoration.inference.tile_budget import bytes_per_pixel

    weights, net = run_dir
    per_pixel = bytes_per_pixel(net, arch_spec(net), 4)
    _budget(monkeypatch, 2 * 64 * 64 * per_pixel)  # room for a 64x64 tile, not for the 96x80 image
    img = _rgb(96, 80, 7)
    imwrite(tmp_path / "in" / "big.png", img)
    base = ["-i", str(tmp_path / "in"), "--weights", str(weights), "--no-progress"]

    assert infer.main([*base, "-o", str(tmp_path / "auto")]) == 0
    err = capsys.readouterr().err
    assert "tile auto (chosen per image from the free memory)" in err
    line = next(x for x in err.splitlines() if "big.png: " in x)
    assert "big.png: tile 64 (whole image needs ~0.23 GiB, budget " in line and "GiB of cpu memory)" in line
    got = imread(tmp_path / "auto" / "big.png")
    np.testing.assert_array_equal(got, _expected(net, img, tile=64, overlap=32))  # what test.py's tiles give
    whole = _expected(net, img)
    assert np.abs(got.astype(int) - whole.astype(int)).max() <= 1  # within 1/255 of the whole-image output
    mse = np.mean((got.astype(float) - whole.astype(float)) ** 2)
    assert mse == 0 or 10 * np.log10(255 ** 2 / mse) > 60  # the tiled tolerance of tests/test_inference.py

    for flag in (["--tile", "0"], ["--no-tile"]):  # forced whole, whatever the budget says
        assert infer.main([*base, "-o", str(tmp_path / "whole"), "--overwrite", *flag]) == 0
        err = capsys.readouterr().err
        assert ", whole images" in err and "big.png: tile" not in err
        np.testing.assert_array_equal(imread(tmp_path / "whole" / "big.png"), whole)


def test_outscale_resizes_like_real_esrgan_and_alpha_follows(run_dir, tmp_path: Path, capsys) -> None:
    weights, net = run_dir
    img = _rgb(10, 13, 8)
    imwrite(tmp_path / "in" / "a.png", img)
    alpha = np.full((10, 13), 200, np.uint8)
    cv2.imwrite(str(tmp_path / "in" / "b.png"), np.dstack([img[:, :, ::-1], alpha]))
    base = ["-i", str(tmp_path / "in"), "--weights", str(weights), "--no-progress", "--tile", "0"]
    x2 = _expected(net, img)

    assert infer.main([*base, "-o", str(tmp_path / "o3"), "--outscale", "3.5"]) == 0
    assert "outscale 3.5 (lanczos4)" in capsys.readouterr().err
    got = imread(tmp_path / "o3" / "a.png")
    assert got.shape == (35, 45, 3)  # int(10 * 3.5), int(13 * 3.5)
    np.testing.assert_array_equal(got, cv2.resize(x2, (45, 35), interpolation=cv2.INTER_LANCZOS4))
    rgba = cv2.imread(str(tmp_path / "o3" / "b.png"), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (35, 45, 4) and (rgba[:, :, 3] == 200).all()

    assert infer.main([*base, "-o", str(tmp_path / "o1"), "--outscale", "1", "--outscale-filter", "area"]) == 0
    np.testing.assert_array_equal(imread(tmp_path / "o1" / "a.png"),
                                  cv2.resize(x2, (13, 10), interpolation=cv2.INTER_AREA))
    assert infer.main([*base, "-o", str(tmp_path / "o2"), "--outscale", "2"]) == 0  # the network's own scale
    np.testing.assert_array_equal(imread(tmp_path / "o2" / "a.png"), x2)

    capsys.readouterr()
    assert infer.main([*base, "-o", str(tmp_path / "bad"), "--outscale", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--outscale must be a positive number, got 0" in err[0], err


def test_a_folder_is_read_recursively_and_its_tree_kept(run_dir, tmp_path: Path, capsys) -> None:
    """photos/a/b.png -> out/a/b_x2.png; hidden folders and an output folder inside the input are skipped."""
    weights, net = run_dir
    photos = tmp_path / "photos"
    imgs = {"a/b.png": _rgb(8, 9, 1), "a/deeper/c.jpg": _rgb(9, 8, 2), "top.png": _rgb(8, 8, 3)}
    for rel, img in imgs.items():
        imwrite(photos / rel, img)
    imwrite(photos / ".thumbs" / "t.png", _rgb(8, 8, 4))
    imwrite(photos / "out" / "old_x2.png", _rgb(8, 8, 5))  # an earlier run's output, inside the input
    out = photos / "out"

    assert infer.main(["-i", str(photos), "-o", str(out), "--weights", str(weights), "--suffix", "x2",
                       "--no-progress"]) == 0
    assert "3 image(s) restored" in capsys.readouterr().err
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a/b_x2.png", "a/deeper/c_x2.jpg", "old_x2.png", "top_x2.png"]
    np.testing.assert_array_equal(imread(out / "a" / "b_x2.png"), _expected(net, imgs["a/b.png"]))


def test_module_entry_point_and_console_script(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "restoration.infer", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--tile-overlap" in proc.stdout
    setup = (Path(__file__).resolve().parents[1] / "setup.py").read_text()
    assert '"restoration-infer=restoration.cli.infer:main"' in setup


def test_tbsn_runs_its_test_protocol(tmp_path: Path) -> None:
    """TBSN: PD x2 + seeded refinement in [0, 255], what its predictor computes for test.py; tiles refused."""
    from restoration.archs.tbsn.pixel_shuffle_downsampling import pd_denoise

    tbsn = dict(type="TBSN", dim=8, num_blocks=[1, 1, 1], num_refinement_blocks=1, channel_heads=[1, 1, 2],
                spatial_heads=[1, 1, 1], spatial_dim_head=4, window_size=4)
    torch.manual_seed(0)
    net = build_network(tbsn).eval()
    weights = _save_weights(net, tmp_path / "tbsn.pth")
    img = _rgb(20, 24, 3)
    imwrite(tmp_path / "img.png", img)
    args = ["-i", str(tmp_path / "img.png"), "-o", str(tmp_path / "out"), "--weights", str(weights),
            "--arch", "TBSN", "--no-progress"]
    assert infer.main(args) == 0
    gen = torch.Generator().manual_seed(0)
    expected = pd_denoise(net, img2tensor(img)[None] * 255, factor=2, size_multiple=arch_spec(net).size_multiple,
                          refine=True, passes=8, prob=0.16, generator=gen) / 255
    np.testing.assert_array_equal(imread(tmp_path / "out" / "img.png"), tensor2img(expected[0]))
    assert infer.main([*args, "--tile", "32", "--overwrite"]) == 2  # an argument TBSN cannot take


def test_an_output_never_replaces_an_input_even_with_overwrite(run_dir, tmp_path: Path, capsys) -> None:
    """-i src -o src --suffix x2 beside an input named a_x2.png: a.png's output would be that input."""
    weights, _ = run_dir
    src = tmp_path / "in"
    imwrite(src / "a.png", _rgb(8, 8, 1))
    imwrite(src / "a_x2.png", _rgb(8, 8, 2))
    original = (src / "a_x2.png").read_bytes()
    for extra in ([], ["--overwrite"]):
        code = infer.main(["-i", str(src), "-o", str(src), "--weights", str(weights), "--suffix", "x2",
                           "--no-progress", *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert f"the output for {src / 'a.png'} would overwrite input {src / 'a_x2.png'}" in err[0]
        assert (src / "a_x2.png").read_bytes() == original
        assert sorted(p.name for p in src.iterdir()) == ["a.png", "a_x2.png"]  # nothing written at all


def _png_header(path: Path, width: int, height: int) -> None:
    """A gray PNG declaring ``width`` x ``height`` with almost no data: a decompression bomb's header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_named_with_how_to_raise_the_limit(run_dir, tmp_path: Path, capsys,
                                                                    monkeypatch) -> None:
    from restoration.utils.image_io import ImageReadError, read_image_size

    weights, _ = run_dir
    imwrite(tmp_path / "in" / "good.png", _rgb(8, 8, 1))
    _png_header(tmp_path / "in" / "huge.png", 20000, 20000)
    code = infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                       "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert (f"huge.png: ImageReadError: image {tmp_path / 'in' / 'huge.png'} is 20000x20000 = 400,000,000 pixels, "
            "more than the limit of 178,956,970") in err
    assert "RESTORATION_MAX_IMAGE_PIXELS=400000000" in err and "1 failed: huge.png" in err
    assert (tmp_path / "out" / "good.png").is_file()
    # the header check of training/test data says the same (it was Pillow's DecompressionBombError traceback)
    with pytest.raises(ImageReadError, match="RESTORATION_MAX_IMAGE_PIXELS"):
        read_image_size(tmp_path / "in" / "huge.png")
    monkeypatch.setenv("RESTORATION_MAX_IMAGE_PIXELS", "400000000")
    assert read_image_size(tmp_path / "in" / "huge.png") == (20000, 20000)


def test_tiled_outputs_are_streamed_and_equal_the_whole_float_path_bit_for_bit(run_dir, tmp_path: Path,
                                                                                 monkeypatch) -> None:
    """With a tile, the output is assembled a band of rows at a time straight into the 8/16-bit image: never
    as one whole float tensor (restore() with a tile is not called), and with the values of that whole float
    output quantised once, for 8 and 16 bits, gray and alpha."""
    weights, net = run_dir
    src = tmp_path / "in"
    rgb, img16, gray = _rgb(37, 29, 11), _rgb(26, 33, 12, np.uint16), _rgb(30, 21, 13)[:, :, :1]
    alpha = np.random.default_rng(14).integers(0, 256, size=(25, 31)).astype(np.uint8)
    imwrite(src / "a.png", rgb)
    imwrite(src / "b16.png", img16)
    imwrite(src / "c_gray.png", gray)
    rgba = _rgb(25, 31, 15)
    cv2.imwrite(str(src / "d_rgba.png"), np.dstack([rgba[:, :, ::-1], alpha]))
    whole_float_tiled = []

    def spy(*a, **kw):
        if kw.get("tile") is not None:
            whole_float_tiled.append(kw["tile"])
        return restore(*a, **kw)

    from restoration.inference import predictor as infer_predictor  # infer runs restore() through the predictor

    monkeypatch.setattr(infer_predictor, "restore", spy)
    out = tmp_path / "out"
    assert infer.main(["-i", str(src), "-o", str(out), "--weights", str(weights), "--tile", "8",
                       "--tile-overlap", "3", "--no-progress"]) == 0
    assert whole_float_tiled == []
    np.testing.assert_array_equal(imread(out / "a.png"), _expected(net, rgb, tile=8, overlap=3))
    got16 = imread(out / "b16.png")
    assert got16.dtype == np.uint16
    np.testing.assert_array_equal(got16, _expected(net, img16, tile=8, overlap=3))
    gray_out = restore(net, img2tensor(np.repeat(gray, 3, axis=2))[None], spec=arch_spec(net), tile=8, overlap=3)
    gray_out = (gray_out * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    np.testing.assert_array_equal(imread(out / "c_gray.png"), tensor2img(gray_out[0]))
    got = cv2.imread(str(out / "d_rgba.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(got[:, :, 2::-1], _expected(net, rgba, tile=8, overlap=3))
    bicubic = torch.nn.functional.interpolate(img2tensor(alpha[:, :, None])[None], size=(50, 62), mode="bicubic")
    np.testing.assert_array_equal(got[:, :, 3], tensor2img(bicubic[0])[:, :, 0])


def _tiled_peak_growth(folder: str) -> float:
    """MB the peak RSS of restoring one image with ``--tile 48`` grows by from 192² to 384² (x2), in this process."""
    from scripts.benchmark.memory import measure_peak_memory

    tmp = Path(folder)
    torch.manual_seed(0)
    torch.set_num_threads(1)  # per-thread malloc arenas add noise to the RSS
    net = build_network(dict(type="SimpleSRNet", num_feat=4, num_block=1, upscale=2)).eval()
    args = infer.build_arg_parser().parse_args(["-i", "x", "-o", "y", "--weights", "w", "--tile", "48",
                                                "--tile-overlap", "8"])
    restorer = ImageRestorer(net, torch.device("cpu"), infer.restore_settings(args))
    peaks = {}
    for size in (96, 192, 384):
        imwrite(tmp / f"{size}.png", _rgb(size, size, size))
        job = OutputJob(tmp / f"{size}.png", tmp / "out" / f"{size}.png")
        restorer(job)  # warm-up: one-time set-up of this image size is not what is measured
        peaks[size] = min(measure_peak_memory(lambda: restorer(job), "cpu")[1] for _ in range(2))
    return (peaks[384] - peaks[192]) / 2 ** 20


def test_tiled_memory_does_not_grow_with_the_float_output(tmp_path: Path) -> None:
    """The peak of one tiled image grows with the 8-bit output, not with a float copy of it: from 192² to 384²
    (x2) the float output alone adds 5.1 MB, its weights 1.7 MB and tensor2img's copies as much again.

    Measured in a fresh process: earlier tests' heap and threads add noise of several MB to the RSS."""
    from scripts.benchmark.memory import cpu_peak_supported

    if not cpu_peak_supported():
        pytest.skip("RSS high-water mark not available on this platform")
    code = f"from tests.test_infer import _tiled_peak_growth; print(_tiled_peak_growth({str(tmp_path)!r}))"
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    growth = float(run.stdout.split()[-1])
    out_float = 3 * (2 * 384) ** 2 * 4 / 2 ** 20 - 3 * (2 * 192) ** 2 * 4 / 2 ** 20  # 5.1 MB
    print(f"peak growth 192 -> 384: {growth:.1f} MB (float output growth {out_float:.1f} MB)")
    # measured 5.5-6.0 MB streamed (the input, the 8-bit output, PNG buffers); 21.8 MB with the whole float output
    assert growth < 2 * out_float


def test_whole_image_out_of_memory_says_to_use_tile(run_dir, tmp_path: Path, monkeypatch, capsys) -> None:
    weights, _ = run_dir
    imwrite(tmp_path / "in" / "big.png", _rgb(12, 12, 16))

    def out_of_memory(*a, **kw):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 30 GB")

    from restoration.inference import predictor as infer_predictor  # infer runs restore() through the predictor

    monkeypatch.setattr(infer_predictor, "restore", out_of_memory)
    code = infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                       "--tile", "0", "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if "big.png: " in x]
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].endswith("InferError: out of memory restoring the whole 12 x 12 image: use --tile 512 (or "
                             "--tile auto, which picks the tile from the free memory)")
