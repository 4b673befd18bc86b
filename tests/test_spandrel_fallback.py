"""restoration-infer with checkpoints only spandrel recognises (the optional extra [zoo]).

The checkpoints are state dicts of spandrel's own architecture classes, built here at tiny sizes (no downloads):
SAFMN (×2, input sides multiples of 8, no fp16), OmniSR (×2, sides at least 16) and RetinexFormer (×1, tiling
discouraged, its own call function). The expected images are spandrel's own: its loader reads the same file and
its descriptor restores the same input. Tests that need spandrel skip without it; the hint for users without it is
tested either way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import cv2
import numpy as np
import pytest
import torch

from restoration.archs.build import build_network
from restoration.cli.infer import main as infer_main
from restoration.inference import restore, tile_budget
from restoration.inference.spandrel_fallback import ZOO_HINT, spandrel_spec
from restoration.utils.image_io import img2tensor, imread, imwrite, tensor2img


@pytest.fixture
def sp() -> ModuleType:
    return pytest.importorskip("spandrel")


def _safmn(sp: ModuleType) -> torch.nn.Module:
    return sp.architectures.SAFMN.SAFMN(dim=8, n_blocks=1, ffn_scale=2.0, upscaling_factor=2)


def _omnisr(sp: ModuleType) -> torch.nn.Module:
    return sp.architectures.OmniSR.OmniSR(num_in_ch=3, num_out_ch=3, num_feat=16, block_num=1, pe=True,
                                          window_size=8, res_num=1, up_scale=2, bias=True)


def _retinexformer(sp: ModuleType) -> torch.nn.Module:
    return sp.architectures.RetinexFormer.RetinexFormer(n_feat=8, stage=1, num_blocks=[1, 1, 1])


def _weights(net: torch.nn.Module, path: Path) -> Path:
    """``net``'s random weights in a BasicSR-style file (``params_ema``), as a released model is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": net.state_dict()}, path)
    return path


def _rgb(h: int, w: int, seed: int, dtype: Any = np.uint8) -> np.ndarray:
    top = 65535 if dtype == np.uint16 else 255
    return np.random.default_rng(seed).integers(0, top + 1, size=(h, w, 3)).astype(dtype)


def _spandrel_fn(sp: ModuleType, weights: Path) -> Any:
    """spandrel's own descriptor for the file (its loader, not ours)."""
    return sp.ModelLoader().load_from_file(str(weights)).eval()


def _by_spandrel(descriptor: Any, img: np.ndarray) -> np.ndarray:
    """spandrel's whole-image output for ``img``, quantised as our images are."""
    out = descriptor(img2tensor(img)[None])
    return tensor2img(out[0], out_type=img.dtype.type)


def _infer(tmp_path: Path, weights: Path, *extra: str) -> int:
    return infer_main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(weights),
                       "--no-progress", "--overwrite", *extra])


@pytest.mark.parametrize("make, name", [(_safmn, "SAFMN"), (_omnisr, "OmniSR")], ids=["safmn", "omnisr"])
def test_a_checkpoint_only_spandrel_knows_restores_as_spandrel_does(sp, make: Callable, name: str, tmp_path: Path,
                                                                      capsys) -> None:
    """8-bit (a size spandrel pads), 16-bit and RGBA inputs: the colour equals spandrel's own output, bit for
    bit; 16-bit stays 16-bit; the alpha channel is resized as for our networks; the log names spandrel's
    architecture and says it is not parity-proven."""
    torch.manual_seed(0)
    weights = _weights(make(sp).eval(), tmp_path / "model.pth")
    rgb, rgb16, rgba = _rgb(13, 10, 1), _rgb(16, 17, 2, np.uint16), _rgb(11, 12, 3)
    alpha = np.random.default_rng(4).integers(0, 256, size=(11, 12)).astype(np.uint8)
    imwrite(tmp_path / "in" / "a.png", rgb)
    imwrite(tmp_path / "in" / "b16.png", rgb16)
    cv2.imwrite(str(tmp_path / "in" / "c_rgba.png"), np.dstack([rgba[:, :, ::-1], alpha]))

    assert _infer(tmp_path, weights, "--tile", "0") == 0
    err = capsys.readouterr().err
    assert f"spandrel: {name} ×2 (SR, 3→3 channels" in err and "not parity-proven here" in err
    assert "3 image(s) restored" in err

    descriptor = _spandrel_fn(sp, weights)
    assert descriptor.architecture.name == name
    np.testing.assert_array_equal(imread(tmp_path / "out" / "a.png"), _by_spandrel(descriptor, rgb))
    got16 = imread(tmp_path / "out" / "b16.png")
    assert got16.dtype == np.uint16
    np.testing.assert_array_equal(got16, _by_spandrel(descriptor, rgb16))
    out_rgba = cv2.imread(str(tmp_path / "out" / "c_rgba.png"), cv2.IMREAD_UNCHANGED)
    assert out_rgba.shape == (22, 24, 4)
    np.testing.assert_array_equal(out_rgba[:, :, 2::-1], _by_spandrel(descriptor, rgba))
    bicubic = torch.nn.functional.interpolate(img2tensor(alpha[:, :, None])[None], size=(22, 24), mode="bicubic")
    np.testing.assert_array_equal(out_rgba[:, :, 3], tensor2img(bicubic[0])[:, :, 0])


def test_tiles_and_ensemble_are_ours_around_spandrels_model(sp, tmp_path: Path, capsys) -> None:
    """OmniSR (sides at least 16): --tile 16 gives our tiling of spandrel's model, --ensemble our x8 ensemble of
    it; the tiled image stays close to the whole one."""
    torch.manual_seed(0)
    weights = _weights(_omnisr(sp).eval(), tmp_path / "omnisr.pth")
    img = _rgb(28, 24, 5)
    imwrite(tmp_path / "in" / "a.png", img)
    descriptor = _spandrel_fn(sp, weights)
    spec = spandrel_spec(descriptor)
    assert (spec.scale, spec.size_multiple, spec.min_size, spec.value_range) == (2, 1, 16, 1.0)

    def net(x: torch.Tensor) -> torch.Tensor:
        return descriptor(x).clone()

    assert _infer(tmp_path, weights, "--tile", "16", "--tile-overlap", "4") == 0
    tiled = imread(tmp_path / "out" / "a.png")
    np.testing.assert_array_equal(tiled, tensor2img(restore(net, img2tensor(img)[None], spec=spec, tile=16,
                                                            overlap=4)[0]))
    whole = _by_spandrel(descriptor, img)
    mse = np.mean((tiled.astype(np.float64) - whole) ** 2)
    assert mse == 0 or 10 * np.log10(255 ** 2 / mse) > 30, mse

    small = _rgb(12, 10, 6)  # padded to the minimum 16 by our predictor, in each of the 8 orientations
    imwrite(tmp_path / "in" / "a.png", small)
    assert _infer(tmp_path, weights, "--tile", "0", "--ensemble") == 0
    np.testing.assert_array_equal(imread(tmp_path / "out" / "a.png"),
                                  tensor2img(restore(net, img2tensor(small)[None], spec=spec, self_ensemble=True)[0]))
    assert "x8 ensemble" in capsys.readouterr().err


def test_discouraged_tiling_means_whole_images_unless_a_tile_is_given(sp, tmp_path: Path, capsys,
                                                                       monkeypatch) -> None:
    """RetinexFormer: spandrel discourages tiling, so --tile auto restores whole images even when the memory
    budget would tile (logged); an explicit --tile still tiles, with a warning."""
    torch.manual_seed(0)
    weights = _weights(_retinexformer(sp).eval(), tmp_path / "retinexformer.pth")
    img = _rgb(32, 24, 6)
    imwrite(tmp_path / "in" / "a.png", img)
    monkeypatch.setattr(tile_budget, "available_memory", lambda device: 1)  # room for no whole image at all
    descriptor = _spandrel_fn(sp, weights)

    assert _infer(tmp_path, weights) == 0
    err = capsys.readouterr().err
    assert "spandrel: RetinexFormer ×1 (Restoration, 3→3 channels, input sides multiples of 8, tiling discouraged" in err
    assert "spandrel: tiling is discouraged for RetinexFormer: whole images (--tile N forces tiles)" in err
    assert ", whole images" in err and "a.png: tile" not in err
    np.testing.assert_array_equal(imread(tmp_path / "out" / "a.png"), _by_spandrel(descriptor, img))

    assert _infer(tmp_path, weights, "--tile", "16", "--tile-overlap", "4") == 0
    assert "spandrel: tiling is discouraged for RetinexFormer; tiles of 16 as --tile says" in capsys.readouterr().err
    spec = spandrel_spec(descriptor)
    expected = restore(lambda x: descriptor(x).clone(), img2tensor(img)[None], spec=spec, tile=16, overlap=4)
    np.testing.assert_array_equal(imread(tmp_path / "out" / "a.png"), tensor2img(expected[0]))


def test_a_precision_spandrel_does_not_support_is_refused(sp, tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    weights = _weights(_safmn(sp).eval(), tmp_path / "safmn.pth")
    imwrite(tmp_path / "in" / "a.png", _rgb(8, 8, 7))
    assert _infer(tmp_path, weights, "--precision", "fp16") == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "Error" in line]
    assert len(lines) == 1
    assert lines[0].endswith("InferArgumentError: --precision fp16: spandrel says SAFMN does not support it; "
                             "use fp32 or bf16")
    assert not (tmp_path / "out" / "a.png").exists()


def test_our_family_wins_over_spandrel(sp, tmp_path: Path, capsys) -> None:
    """A tiny RRDBNet ×2 that spandrel also loads (as ESRGAN) is ours: our detection names it, spandrel is not
    asked, and the output is our network's."""
    torch.manual_seed(0)
    opt = dict(type="RRDBNet", num_in_ch=3, num_out_ch=3, scale=2, num_feat=8, num_block=1, num_grow_ch=32)
    net = build_network(opt).eval()
    weights = _weights(net, tmp_path / "esrgan.pth")
    assert sp.ModelLoader().load_from_file(str(weights)).architecture.name == "ESRGAN"  # spandrel would take it
    img = _rgb(8, 6, 8)
    imwrite(tmp_path / "in" / "a.png", img)
    assert _infer(tmp_path, weights, "--tile", "0") == 0
    err = capsys.readouterr().err
    assert "): RRDBNet (checkpoint keys); not a released RRDBNet configuration" in err
    assert "spandrel" not in err
    with torch.no_grad():
        expected = net(img2tensor(img)[None])
    np.testing.assert_array_equal(imread(tmp_path / "out" / "a.png"), tensor2img(expected[0]))


def test_a_checkpoint_nobody_recognises_is_one_line(sp, tmp_path: Path, capsys) -> None:
    """Neither our families nor spandrel: one line naming the closest family, the keys that did not match and
    that spandrel was asked too; exit code 1, as for other unusable weights."""
    torch.manual_seed(0)
    sd = {"conv_first.weight": torch.randn(8, 3, 3, 3), "conv_first.bias": torch.randn(8),
          "mixer.0.proj.weight": torch.randn(8, 8), "head.weight": torch.randn(3, 8, 3, 3)}
    weights = tmp_path / "mystery.pth"
    torch.save(sd, weights)
    imwrite(tmp_path / "in" / "a.png", _rgb(8, 8, 9))
    assert _infer(tmp_path, weights) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    line = lines[0]
    assert "UnrecognisedCheckpointError: " in line and "the keys match no supported architecture; closest: " in line
    assert "checkpoint keys it does not have (2): mixer.0.proj.weight, head.weight" in line
    assert line.endswith(f"-opt options.yml; spandrel {sp.__version__} does not recognise it either")
    assert ZOO_HINT not in line


def test_a_file_spandrel_takes_for_its_own_but_cannot_load_is_one_line(sp, tmp_path: Path, capsys) -> None:
    """SAFMN's keys with a 5x5 first convolution: spandrel's detector matches, its loader fails; one line with
    torch's reason (which spans lines), exit code 1."""
    sd = dict(_safmn(sp).state_dict())
    sd["to_feat.weight"] = torch.zeros(8, 3, 5, 5)
    torch.save(sd, tmp_path / "edited.pth")
    imwrite(tmp_path / "in" / "a.png", _rgb(8, 8, 11))
    assert _infer(tmp_path, tmp_path / "edited.pth") == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert (f"DetectionError: {tmp_path / 'edited.pth'}: none of our architectures claims it and spandrel "
            f"{sp.__version__} cannot load it: RuntimeError: Error(s) in loading state_dict for SAFMN: size mismatch "
            "for to_feat.weight") in lines[0]


def test_without_spandrel_the_error_says_how_to_get_it(tmp_path: Path, capsys, monkeypatch) -> None:
    """spandrel not installed: a checkpoint none of our families claims ends with the install hint; one a family
    claims whose layout then differs does not (spandrel would not be asked)."""
    monkeypatch.setitem(sys.modules, "spandrel", None)  # import spandrel raises ImportError
    torch.save({"stem.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "mystery.pth")
    imwrite(tmp_path / "in" / "a.png", _rgb(8, 8, 10))
    assert _infer(tmp_path, tmp_path / "mystery.pth") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith(
        f"; {ZOO_HINT} restores the ~50 architectures spandrel recognises")

    sd = dict(build_network(dict(type="RRDBNet", num_in_ch=3, num_out_ch=3, scale=4, num_feat=4, num_block=1,
                                 num_grow_ch=2)).state_dict())
    del sd["conv_last.bias"]
    torch.save(sd, tmp_path / "truncated.pth")
    assert _infer(tmp_path, tmp_path / "truncated.pth") == 1
    err = capsys.readouterr().err
    assert "layout differs from the checkpoint" in err and ZOO_HINT not in err
