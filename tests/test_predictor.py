"""Predictors: the test-time protocol an architecture declares (restoration/inference/predictor.py, TBSN's in
restoration/archs/tbsn/tbsn_predictor.py), and that every caller (validation, test.py, infer, export) goes through it."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from restoration.archs.build import build_network
from restoration.archs.spec import ArchSpec, arch_spec
from restoration.archs.tbsn.tbsn_predictor import TBSNPredictor
from restoration.inference import InferenceSettings, Predictor, predictor_class, predictor_for, restore, restore_rows
from restoration.inference.self_ensemble import dihedral_transform, inverse_dihedral_transform
from restoration.utils.image_io import img2tensor, imread, imwrite, tensor2img

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: see tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]
#: window 4: size_multiple 16, so a 30 x 41 image is padded (to 32 x 48 with PD 2)
TBSN = dict(type="TBSN", dim=8, num_blocks=[1, 1, 1], num_refinement_blocks=1, channel_heads=[1, 1, 2],
            spatial_heads=[1, 1, 1], spatial_dim_head=4, window_size=4)
SWIN = dict(type="SwinIR", img_size=8, in_chans=3, embed_dim=8, depths=[2], num_heads=[2], window_size=4,
            mlp_ratio=2, upscale=2, upsampler="pixelshuffle", resi_connection="1conv")


def _tbsn(dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return build_network(TBSN).to(dtype).eval()


def _direct_pd_refine(net: nn.Module, lq: torch.Tensor, generator: torch.Generator, factor: int = 2,
                      passes: int = 8, prob: float = 0.16) -> torch.Tensor:
    """TBSN's protocol written out: [0, 255], reflect pad to factor * 16, each PD sub-image through the network
    on its own, then ``passes`` runs on the estimate with a ``prob`` of the values replaced by the noisy input."""
    h, w = lq.shape[-2:]
    step = factor * 16
    x = F.pad(lq * 255, (0, math.ceil(w / step) * step - w, 0, math.ceil(h / step) * step - h), mode="reflect")
    estimate = torch.empty_like(x)
    for a in range(factor):
        for b in range(factor):
            estimate[..., a::factor, b::factor] = net(x[..., a::factor, b::factor].contiguous())
    total = torch.zeros_like(x)
    for _ in range(passes):
        mask = torch.rand(x.shape, generator=generator) < prob
        total += net(torch.where(mask, x, estimate))
    return (total / passes)[..., :h, :w] / 255


def test_tbsn_predictor_equals_a_direct_float64_computation() -> None:
    net = _tbsn(torch.float64)
    lq = torch.rand(2, 3, 30, 41, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    predictor = predictor_for(net, options={"refine_passes": 3, "refine_seed": 7})
    assert isinstance(predictor, TBSNPredictor)
    out = predictor(lq)
    expected = _direct_pd_refine(net, lq, torch.Generator().manual_seed(7), passes=3)
    assert out.dtype == torch.float64 and out.shape == lq.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    assert torch.equal(predictor(lq), out), "the seed is set on every call"
    other_seed = predictor_for(net, options={"refine_passes": 3, "refine_seed": 8})(lq)
    assert (other_seed - out).abs().max() > 1e-6
    # PD 1 without refinement: one plain pass in [0, 255]
    plain = predictor_for(net, options={"pd_test": 1, "refine": False})(lq)
    torch.testing.assert_close(plain, restore(net, lq, spec=arch_spec(net)), rtol=0, atol=1e-12)


def test_tbsn_ensemble_draws_every_pass_from_one_generator() -> None:
    """×8: each transform's masks continue the one generator seeded per call (what test.py has always done)."""
    net = _tbsn(torch.float64)
    lq = torch.rand(1, 3, 20, 18, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    settings = InferenceSettings(self_ensemble=True)
    out = predictor_for(net, settings, options={"refine_passes": 2})(lq)
    generator = torch.Generator().manual_seed(0)
    expected = sum(inverse_dihedral_transform(_direct_pd_refine(net, dihedral_transform(lq, k), generator, passes=2), k)
                   for k in range(8)) / 8
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_tbsn_options_are_declared_once_and_checked() -> None:
    from restoration.models.tbsn_model import TBSNModel

    for key, rule in TBSNPredictor.options.items():
        assert TBSNModel.options[key] is rule
    assert set(TBSNModel.options) - set(TBSNPredictor.options) == {"pd_train", "pd_train_all"}
    net = _tbsn()
    with pytest.raises(ValueError, match=r"unknown key 'refine_pases' \(did you mean 'refine_passes'\?\)"):
        predictor_for(net, options={"refine_pases": 2})
    with pytest.raises(ValueError, match=r"refine_prob must be in \[0, 1\], got 2"):
        predictor_for(net, options={"refine_prob": 2})
    with pytest.raises(ValueError, match="'pd_test' must be int, got float 1.5"):
        predictor_for(net, options={"pd_test": 1.5})
    with pytest.raises(ValueError, match="needs the whole image: it is not tiled"):
        predictor_for(net, InferenceSettings(tile=32))
    assert not predictor_for(net).supports_tiling and predictor_for(net).supports_ensemble


def test_plain_predictor_tiled_and_ensembled_equals_restore() -> None:
    torch.manual_seed(0)
    net = build_network(SWIN).eval()
    lq = torch.rand(2, 3, 27, 22, generator=torch.Generator().manual_seed(3))
    settings = InferenceSettings(tile=12, overlap=4, tile_batch_size=3, self_ensemble=True, blend="linear")
    predictor = predictor_for(net, settings)
    assert type(predictor) is Predictor and predictor.supports_tiling
    expected = restore(net, lq, spec=arch_spec(net), tile=12, overlap=4, tile_batch_size=3, self_ensemble=True,
                       blend="linear")
    assert torch.equal(predictor(lq), expected)
    # the band-by-band form gives the rows of the tiled output (tile_batch_size 1)
    tiled = predictor.with_settings(self_ensemble=False, tile_batch_size=1)
    assert tiled.settings.tile == 12 and tiled.settings.blend == "linear"
    bands = list(tiled.rows(lq))
    assert torch.equal(torch.cat([band for _, band in bands], dim=-2), tiled(lq))
    assert [y for y, _ in bands] == [y for y, _ in restore_rows(net, lq, 12, 4, spec=arch_spec(net), blend="linear")]
    with pytest.raises(ValueError, match="needs settings.tile and no self-ensemble"):
        next(predictor.rows(lq))


def test_predictor_refuses_tiles_of_an_untileable_network_and_needs_a_spec() -> None:
    net = nn.Conv2d(3, 3, 1)
    with pytest.raises(ValueError, match="cannot be tiled"):
        Predictor(net, ArchSpec(tileable=False), InferenceSettings(tile=8))
    with pytest.raises(ValueError, match="needs its spec"):
        Predictor(lambda x: x)
    assert Predictor(lambda x: x * 2, ArchSpec())(torch.ones(1, 3, 2, 2)).sum() == 24


def test_the_architecture_class_declares_its_predictor() -> None:
    tbsn = _tbsn()
    assert predictor_class(tbsn) is TBSNPredictor
    assert predictor_class(build_network({"type": "Identity"})) is Predictor

    class Wrapper(nn.Module):  # DistributedDataParallel's .module, torch.compile's ._orig_mod
        def __init__(self, inner: nn.Module, attr: str) -> None:
            super().__init__()
            setattr(self, attr, inner)

    assert predictor_class(Wrapper(Wrapper(tbsn, "_orig_mod"), "module")) is TBSNPredictor

    class Confused(nn.Module):
        predictor = staticmethod(lambda x: x)

    with pytest.raises(TypeError, match="Confused.predictor must be a Predictor subclass"):
        predictor_class(Confused())


def test_export_module_is_one_pass_of_the_plain_protocol() -> None:
    """The exported graph: padding, value range and crop around one pass (TBSN's too: no random masks)."""
    net = _tbsn()
    x = torch.rand(1, 3, 37, 20, generator=torch.Generator().manual_seed(4))
    graph = predictor_for(net).export_module()
    with torch.no_grad():
        torch.testing.assert_close(graph(x), Predictor(net)(x), rtol=0, atol=1e-6)


def _imports_and_names(path: Path) -> tuple[list[str], list[str]]:
    tree = ast.parse(path.read_text())
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
    compared = [c.value for node in ast.walk(tree) if isinstance(node, (ast.Compare, ast.Match))
                for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return modules, compared


#: Each command's module and the library modules that do its work.
COMMAND_MODULES = {
    "infer": ["cli/infer.py", "deploy/network.py", "inference/image_restorer.py", "inference/folder.py",
              "inference/output_plan.py", "inference/image_files.py"],
    "export": ["cli/export.py", "deploy/network.py", "deploy/onnx_export.py", "deploy/onnx_check.py",
               "deploy/safetensors_export.py"],
}


@pytest.mark.parametrize("command", sorted(COMMAND_MODULES))
def test_the_commands_import_no_trainer_and_branch_on_no_architecture(command: str) -> None:
    from restoration.archs import register_archs
    from restoration.registry import ARCH_REGISTRY

    register_archs()
    modules, compared = [], []
    for file in COMMAND_MODULES[command]:
        imported, names = _imports_and_names(ROOT / "restoration" / file)
        modules += imported
        compared += names
    assert modules and not [m for m in modules if m == "restoration.models" or m.startswith("restoration.models.")]
    assert [m for m in modules if m == "restoration.inference" or m.startswith("restoration.inference.")]
    names = set(ARCH_REGISTRY.names())
    assert "TBSN" in names and not names & set(compared), "a branch on an architecture's name"


def test_infer_and_test_py_run_tbsn_alike_with_the_ensemble(tmp_path: Path) -> None:
    """restoration-infer --ensemble on TBSN gives test.py's output (TBSNModel validation with val.self_ensemble)."""
    from restoration.cli import infer
    from restoration.models.tbsn_model import TBSNModel

    net = _tbsn()
    torch.save({"params": net.state_dict()}, tmp_path / "tbsn.pth")
    (tmp_path / "tbsn.yml").write_text(yaml.safe_dump({"network_g": TBSN}))
    img = np.random.default_rng(5).integers(0, 256, size=(20, 24, 3)).astype(np.uint8)
    imwrite(tmp_path / "in" / "img.png", img)
    assert infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(tmp_path / "tbsn.pth"),
                       "-opt", str(tmp_path / "tbsn.yml"), "--ensemble", "--no-progress"]) == 0
    model = TBSNModel({"name": "t", "model_type": "TBSNModel", "scale": 1, "network_g": TBSN,
                       "path": {"pretrain_network_g": str(tmp_path / "tbsn.pth")}, "val": {"self_ensemble": True}},
                      torch.device("cpu"), is_train=False)
    expected = tensor2img(model.inference(img2tensor(img)[None])[0])
    np.testing.assert_array_equal(imread(tmp_path / "out" / "img.png"), expected)


def test_test_py_builds_one_trainer_and_runs_baselines_through_their_predictors(tmp_path: Path, monkeypatch) -> None:
    from restoration.models.sr_model import SRModel
    from restoration.cli.test import main as run_test_script
    from tests.helpers import make_sr_pairs

    hr, lr = make_sr_pairs(tmp_path / "data", n=1, size=24, scale=2)
    built = []
    init = SRModel.__init__

    def counting_init(self, opt, device, world_size=1, *, is_train=True):
        built.append((opt["network_g"]["type"], is_train))
        init(self, opt, device, world_size, is_train=is_train)

    monkeypatch.setattr(SRModel, "__init__", counting_init)
    opt = {"name": "base", "model_type": "SRModel", "scale": 2, "num_gpu": 0,
           "network_g": {"type": "Bicubic", "upscale": 2},
           "baselines": [{"type": "Bicubic", "upscale": 2}, dict(SWIN)],
           "datasets": {"test_1": {"name": "pairs", "type": "PairedImageDataset", "dataroot_gt": str(hr),
                                   "dataroot_lq": str(lr), "io_backend": {"type": "disk"}}},
           "val": {"save_img": False, "tile": {"tile_size": 8, "tile_overlap": 2}, "self_ensemble": True,
                   "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2}}}}
    (tmp_path / "base.yml").write_text(yaml.safe_dump(opt))
    assert run_test_script(["-opt", str(tmp_path / "base.yml"), "--root", str(tmp_path)]) == 0
    assert built == [("Bicubic", False)], "a baseline was evaluated by building a trainer (or it was built to train)"
    results = tmp_path / "results" / "base"
    main, baselines = (json.loads((results / f).read_text()) for f in ("metrics.json", "baselines.json"))
    assert baselines["Bicubic"]["pairs"]["psnr"] == main["pairs"]["psnr"]  # the same network, the same protocol
    assert baselines["SwinIR"]["pairs"]["notes"] == ["tiled inference: tile 8, overlap 2", "x8 self-ensemble"]
