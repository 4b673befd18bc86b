"""load_weights: BasicSR files, raw/DDP/compiled state dicts, safetensors, strict name matching."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from restoration import build_network, load_weights
from restoration.registry import ARCH_REGISTRY, Registry, RegistryError
from restoration.utils.weights import WeightsError

CFG = {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": 2}


def _pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    src = build_network(CFG)
    torch.manual_seed(1)
    return src, build_network(CFG)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("layout", ["params", "params_ema", "raw", "module", "orig_mod", "safetensors"])
def test_formats(tmp_path: Path, layout: str) -> None:
    src, dst = _pair()
    sd = src.state_dict()
    path = tmp_path / "w.pth"
    if layout == "params":
        torch.save({"params": sd}, path)
    elif layout == "params_ema":
        torch.save({"params": {k: v + 1 for k, v in sd.items()}, "params_ema": sd}, path)  # ema preferred
    elif layout == "raw":
        torch.save(sd, path)
    elif layout == "module":
        torch.save({"params": OrderedDict(("module." + k, v) for k, v in sd.items())}, path)
    elif layout == "orig_mod":
        torch.save(OrderedDict(("_orig_mod.module." + k, v) for k, v in sd.items()), path)
    else:
        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    assert not _same(src, dst)
    load_weights(dst, str(path))
    assert _same(src, dst)


def test_explicit_param_key_and_missing_key(tmp_path: Path) -> None:
    src, dst = _pair()
    torch.save({"params": src.state_dict(), "params_ema": {k: v * 0 for k, v in src.state_dict().items()}},
               tmp_path / "w.pth")
    load_weights(dst, str(tmp_path / "w.pth"), param_key="params")
    assert _same(src, dst)
    with pytest.raises(WeightsError, match="no entry 'ema'"):
        load_weights(dst, str(tmp_path / "w.pth"), param_key="ema")


def test_params_ema_asked_of_a_file_without_an_ema_reads_params_as_basicsr(tmp_path: Path, caplog) -> None:
    """Real-ESRNet x4plus's param_key_g params_ema on ESRGAN_SRx4_DF2KOST_official, which has only 'params'."""
    src, dst = _pair()
    torch.save({"params": src.state_dict()}, tmp_path / "w.pth")
    load_weights(dst, str(tmp_path / "w.pth"), param_key="params_ema")
    assert _same(src, dst)
    assert f"{tmp_path / 'w.pth'} has no 'params_ema' entry: using its 'params' (as BasicSR does)" in caplog.text
    torch.save({"state_dict": src.state_dict()}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="no entry 'params_ema'"):
        load_weights(dst, str(tmp_path / "other.pth"), param_key="params_ema")


def test_mismatch_lists_keys_and_shapes_and_loads_nothing(tmp_path: Path) -> None:
    torch.manual_seed(0)
    other = build_network({**CFG, "upscale": 3})  # wrong scale: the upsampler conv differs
    _, dst = _pair()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    sd = other.state_dict()
    sd["extra.weight"] = torch.zeros(1)
    torch.save({"params": sd}, tmp_path / "x3.pth")
    with pytest.raises(WeightsError) as info:
        load_weights(dst, str(tmp_path / "x3.pth"))
    text = str(info.value)
    assert "shape mismatch for" in text and "checkpoint (" in text and "network (" in text
    assert "unexpected in checkpoint (1): extra.weight" in text
    assert all(torch.equal(before[k], v) for k, v in dst.state_dict().items())  # never a partial load


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    _, dst = _pair()

    import argparse

    torch.save({"params": argparse.Namespace(a=1)}, tmp_path / "evil.pth")  # any non-tensor pickled object
    with pytest.raises(WeightsError, match="cannot read weights file"):
        load_weights(dst, str(tmp_path / "evil.pth"))
    with pytest.raises(WeightsError, match="not found"):
        load_weights(dst, str(tmp_path / "nope.pth"))


def test_registry_errors_suggest_names() -> None:
    with pytest.raises(RegistryError, match=r"Did you mean 'SwinIR'.*Registered: .*SimpleSRNet"):
        build_network({"type": "SwinIr"})
    reg = Registry("thing")
    reg.register(Registry, name="A")
    with pytest.raises(RegistryError, match="already registered"):
        reg.register(Registry, name="A")
    reg.register_lazy("Broken", "restoration.no_such_module:X")
    with pytest.raises(RegistryError, match="cannot be imported"):
        reg.get("Broken")
    assert "SwinIR" in ARCH_REGISTRY and "Bicubic" in ARCH_REGISTRY


def test_non_strict_skips_shape_mismatches_for_fine_tuning(tmp_path: Path, caplog) -> None:
    torch.manual_seed(0)
    x2 = build_network(CFG)
    torch.manual_seed(1)
    x3 = build_network({**CFG, "upscale": 3})
    torch.save({"params": x2.state_dict()}, tmp_path / "x2.pth")
    with caplog.at_level("WARNING", logger="restoration"):
        load_weights(x3, str(tmp_path / "x2.pth"), strict=False)
    shared = [k for k, v in x2.state_dict().items() if v.shape == x3.state_dict()[k].shape]
    differ = [k for k in x2.state_dict() if k not in shared]
    assert differ and shared
    assert all(torch.equal(x2.state_dict()[k], x3.state_dict()[k]) for k in shared)
    assert all(not torch.equal(x2.state_dict()[k], x3.state_dict()[k]) for k in differ if "bias" not in k)
    assert "skipped from the checkpoint" in caplog.text and differ[0] in caplog.text
