"""DSwinIR / MSDeformableNAIR: official-checkpoint fidelity, option checks, MS-DSwin sampling, FFNs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from restoration import build_network
from restoration.archs.dswinir.dswinir_arch import DSwinIR
from restoration.archs.dswinir.msdeformable_nair_arch import MSDeformableNAIR
from restoration.schema import bind_arguments
from restoration.layers.gated_ffn import GDFN, MSGFFN, build_gated_ffn
from restoration.layers.ms_dswin import MSDeformableNeighborhoodAttention
from restoration.layers.neighborhood_attention import neighborhood_attention_2d

FIXTURE = Path(__file__).parent / "data" / "dswinir" / "msdeformable_nair_tiny.pt"
TINY = dict(dim=6, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[3, 3, 3, 3],
            kernel_size=[3, 3, 1, 1], ffn_expansion_factor=1)


def _fixture():
    # Made by running the official Aitical/DSwinIR class (natten<=0.17 calls replaced by a
    # transcription of NATTEN 0.17.5's CPU index rules) on random weights; output in float64.
    return torch.load(FIXTURE, map_location="cpu")


def test_official_checkpoint_loads_strictly_and_reproduces_output():
    f = _fixture()
    net = build_network({"type": "MSDeformableNAIR", **f["config"]}).eval()
    net.load_state_dict(f["state_dict"], strict=True)
    with torch.no_grad():
        out32 = net(f["input"])
        assert (out32.double() - f["output"]).abs().max() <= 1e-5
        out64 = net.double()(f["input"].double())
    # same arithmetic in float64: only summation-order noise remains
    assert (out64 - f["output"]).abs().max() <= 1e-10


def test_official_param_count_dim48():
    net = MSDeformableNAIR(dim=48, heads=[3, 6, 12, 24])
    assert sum(p.numel() for p in net.parameters()) == 22_388_332


def test_heads_not_divisible_by_three_reported():
    problems = MSDeformableNAIR.check_options(bind_arguments(MSDeformableNAIR, {}))  # release defaults [2,4,8,8]
    assert len(problems) == 4 and "heads[0]=2 is not divisible by 3" in problems[0]
    assert DSwinIR.check_options(bind_arguments(DSwinIR, {"heads": [3, 6, 12, 24], "dim": 48})) == []
    problems = DSwinIR.check_options(bind_arguments(DSwinIR, {"dim": 50}))
    assert any("width dim*1=50 is not divisible by heads[0]=3" in p for p in problems)
    with pytest.raises(ValueError, match="heads\\[1\\]=4 is not divisible by 3"):
        DSwinIR(dim=12, heads=[3, 4, 6, 12])


def test_input_size_errors_name_the_minimum():
    net = DSwinIR(**{**TINY, "kernel_size": [3, 3, 3, 3]})
    assert (net.spec.size_multiple, net.spec.min_size) == (8, 48)  # (k + 2) * 8 = 40 and 2k * 8 = 48
    assert MSDeformableNAIR.spec_from_options(bind_arguments(MSDeformableNAIR, {})).min_size == 48
    with pytest.raises(ValueError, match="minimum 48x48"):
        net(torch.rand(1, 3, 40, 48))
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.rand(1, 3, 50, 48))


@pytest.mark.parametrize("ffn_type,attn_type", [("msg", "msdswin"), ("gdfn", "dat")])
def test_dswinir_variants_train(ffn_type, attn_type):
    torch.manual_seed(0)
    net = DSwinIR(**TINY, ffn_type=ffn_type, attn_type=attn_type, dat_strides=[4, 2, 1, 1])
    x = torch.rand(1, 3, 24, 32)
    y = net(x)
    assert y.shape == x.shape
    y.mean().backward()
    offset_conv = net.encoder_level1[0].attn.conv_offset[-1].weight
    assert offset_conv.grad is not None and offset_conv.grad.abs().sum() > 0  # offsets are learned
    ffn = net.encoder_level1[0].ffn
    assert isinstance(ffn, MSGFFN if ffn_type == "msg" else GDFN)


def test_dswinir_differs_from_official_only_by_double_residual():
    torch.manual_seed(0)
    official = MSDeformableNAIR(**{k: v for k, v in TINY.items()}, global_residual=True).eval()
    ours = DSwinIR(**TINY, ffn_type="gdfn").eval()
    ours.load_state_dict(official.state_dict(), strict=True)
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.allclose(official(x), ours(x) + x, atol=1e-6)


def _zero_offsets(attn: MSDeformableNeighborhoodAttention) -> None:
    with torch.no_grad():
        attn.conv_offset[-1].weight.zero_()


def test_ms_dswin_centered_grid_zero_offsets_is_plain_multiscale_na():
    torch.manual_seed(0)
    attn = MSDeformableNeighborhoodAttention(12, 3, kernel_size=3, centered_grid=True).eval()
    _zero_offsets(attn)
    x = torch.randn(2, 12, 9, 10)
    q = attn.proj_q(x)
    q5, k5, v5 = (t.reshape(2, 3, 4, 9, 10).permute(0, 1, 3, 4, 2) for t in (q, attn.proj_k(x), attn.proj_v(x)))
    outs = [neighborhood_attention_2d(q5[:, i:i + 1], k5[:, i:i + 1], v5[:, i:i + 1], ks, dil,
                                      rpb=getattr(attn, f"rpb_h{i + 1}"), backend="reference")
            for i, (ks, dil) in enumerate([(3, 1), (3, 2), (5, 1)])]
    expected = attn.proj_out(torch.cat(outs, 1).permute(0, 1, 4, 2, 3).reshape(2, 12, 9, 10) + attn.rpe_table(q))
    with torch.no_grad():
        assert torch.allclose(attn(x), expected, atol=1e-5)


def test_ms_dswin_released_grid_samples_half_pixel_off():
    """Zero offsets on the released grid read the bilinear mean of the 2x2 block down-right."""
    torch.manual_seed(0)
    attn = MSDeformableNeighborhoodAttention(3, 3, kernel_size=3).eval()
    _zero_offsets(attn)
    captured = {}
    attn.proj_k.register_forward_hook(lambda m, inp, out: captured.setdefault("x", inp[0]))
    x = torch.randn(1, 3, 8, 7)
    with torch.no_grad():
        attn(x)
    sampled = captured["x"]
    block_mean = F.avg_pool2d(x, 2, stride=1)  # (H-1, W-1): mean of x[i:i+2, j:j+2]
    assert torch.allclose(sampled[..., :-1, :-1], block_mean, atol=1e-6)
    assert torch.allclose(sampled[..., -1, -1], x[..., -1, -1] / 4, atol=1e-6)  # zero padding beyond


def test_msg_ffn_branches_and_errors():
    ffn = MSGFFN(8, 2, kernel_sizes=(3, 5, 7))
    assert [c.kernel_size for c in ffn.branches] == [(3, 3), (5, 5), (7, 7)]
    assert ffn.project_out.in_channels == 16 * 3
    x = torch.randn(1, 8, 9, 9)
    assert ffn(x).shape == x.shape
    # the gate makes MSG-FFN nonlinear in x (not one big dw conv): f(2x) != 2 f(x)
    assert not torch.allclose(ffn(2 * x), 2 * ffn(x), atol=1e-3)
    with pytest.raises(ValueError, match="unknown ffn_type 'mlp'"):
        build_gated_ffn("mlp", 8, 2, False)
    with pytest.raises(ValueError, match="odd"):
        MSGFFN(8, 2, kernel_sizes=(3, 4))


# ---------------------------------------------------------------------------------------------- data
def _write(path: Path, value: int, size=(20, 24)) -> None:
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((*size, 3), value, np.uint8)
    img[0, 0] = (value + 7) % 256  # not constant, to see flips
    assert cv2.imwrite(str(path), img)


def _allinone_tree(root: Path) -> dict:
    for i in range(3):
        _write(root / "denoise" / f"img{i}.png", 100 + i)
    for i in (1, 2):
        _write(root / "rain" / "gt" / f"norain-{i}.png", 10 * i)
        _write(root / "rain" / "rainy" / f"rain-{i}.png", 10 * i + 1)
    _write(root / "haze" / "clear" / "0001.png", 50)
    _write(root / "haze" / "clear" / "0002.png", 60)
    for name in ("0001_0.8_0.2.png", "0001_0.9_0.1.png", "0002_1_0.04.png"):
        _write(root / "haze" / "hazy" / name, 55)
    return {
        "denoise": {"kind": "noise", "dataroot_gt": str(root / "denoise"), "sigmas": [15, 50], "weight": 2},
        "derain": {"kind": "paired", "dataroot_gt": str(root / "rain" / "gt"), "gt_prefix": "norain-",
                   "dataroot_lq": str(root / "rain" / "rainy"), "lq_prefix": "rain-", "weight": 1},
        "dehaze": {"kind": "haze", "dataroot_gt": str(root / "haze" / "clear"),
                   "dataroot_lq": str(root / "haze" / "hazy"), "weight": 1},
    }


def _dataset(opt):
    from restoration.data import register_datasets
    from restoration.registry import DATASET_REGISTRY

    register_datasets()
    return DATASET_REGISTRY.get("AllInOneDataset")(opt)


def test_all_in_one_eval_enumerates_every_task_deterministically(tmp_path):
    sources = _allinone_tree(tmp_path)
    ds = _dataset({"type": "AllInOneDataset", "sources": sources, "phase": "val", "scale": 1})
    assert len(ds) == 3 * 2 + 2 + 3
    tasks = [ds[i]["task"] for i in range(len(ds))]
    assert tasks == ["denoise_15"] * 3 + ["denoise_50"] * 3 + ["derain"] * 2 + ["dehaze"] * 3
    assert ds.task_names == ["denoise_15", "denoise_50", "derain", "dehaze"]
    s15, s50 = ds[0], ds[3]  # same image, two noise levels
    assert torch.equal(s15["gt"], s50["gt"]) and s15["gt_path"].endswith("img0.png")
    n15, n50 = (s15["lq"] - s15["gt"]).std().item(), (s50["lq"] - s50["gt"]).std().item()
    assert abs(n15 - 15 / 255) < 0.01 and abs(n50 - 50 / 255) < 0.02
    assert torch.equal(ds[3]["lq"], s50["lq"])  # deterministic at val time
    rain = ds[6]
    assert rain["lq_path"].endswith("rain-1.png") and rain["gt_path"].endswith("norain-1.png")
    assert abs(rain["gt"][0, 5, 5].item() - 10 / 255) < 1e-6 and abs(rain["lq"][0, 5, 5].item() - 11 / 255) < 1e-6
    haze = [ds[i] for i in (8, 9, 10)]
    assert [h["gt_path"].rsplit("/", 1)[1] for h in haze] == ["0001.png", "0001.png", "0002.png"]


def test_all_in_one_train_follows_weights_and_crops(tmp_path):
    import random

    random.seed(0)
    ds = _dataset({"type": "AllInOneDataset", "sources": _allinone_tree(tmp_path), "phase": "train", "scale": 1,
                   "gt_size": 16})
    assert len(ds) == 3 + 2 + 3 and list(ds.probabilities) == [0.5, 0.25, 0.25]
    counts: dict[str, int] = {}
    for i in range(400):
        s = ds[i % len(ds)]
        assert s["lq"].shape == s["gt"].shape == (3, 16, 16)
        key = s["task"].split("_")[0]
        counts[key] = counts.get(key, 0) + 1
    assert 160 < counts["denoise"] < 240 and 60 < counts["derain"] < 140 and 60 < counts["dehaze"] < 140


def test_all_in_one_option_problems(tmp_path):
    from restoration.data.all_in_one_dataset import AllInOneDataset
    from restoration.declare import component_problems

    sources = _allinone_tree(tmp_path)
    sources["denoise"]["sigmas"] = []
    sources["dehaze"]["kind"] = "fog"
    sources["derain"]["wieght"] = 1
    problems = component_problems(AllInOneDataset, {"type": "AllInOneDataset", "sources": sources, "phase": "train"},
                                  "datasets.train")
    text = "\n".join(problems)
    assert "'sources.denoise': sigmas must be a non-empty list" in text
    assert "'sources.dehaze': kind 'fog' is not one of" in text
    assert "'sources.derain': unknown key 'wieght'" in text
    assert "needs 'gt_size'" in text
    # an LQ image without a GT partner is named
    _write(tmp_path / "haze" / "hazy" / "0003_1_0.1.png", 1)
    with pytest.raises(FileNotFoundError, match="0003_1_0.1.png"):
        AllInOneDataset({"type": "AllInOneDataset", "sources": _allinone_tree(tmp_path), "phase": "val"})


OPTION_FILES = sorted((Path(__file__).parents[1] / "options").glob("*/DSwinIR/*.yml"))


def test_option_files_use_the_paper_network():
    """The all-in-one files build the paper network (validity: tests/test_option_files.py)."""
    from restoration.options.yaml_io import load_yaml

    assert len(OPTION_FILES) == 6
    for path in OPTION_FILES:
        opt = load_yaml(path)
        if "allinone" in path.name:  # the paper network
            with torch.device("meta"):
                n = sum(p.numel() for p in build_network(opt["network_g"]).parameters())
            assert n == 26_768_236, path.name
    tasks_5 = [d["name"] for d in load_yaml(OPTION_FILES[[p.name for p in OPTION_FILES].index(
        "test_DSwinIR_allinone_5task.yml")])["datasets"].values()]
    assert tasks_5 == ["CBSD68_sigma25", "Rain100L", "SOTS_outdoor", "GoPro", "LOL"]


def test_attention_vs_conv_benchmark_script_reports_both_variants(capsys):
    import importlib.util

    path = Path(__file__).parents[1] / "scripts" / "benchmark" / "benchmark_neighborhood_attention.py"
    spec = importlib.util.spec_from_file_location("bench_na", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--dim", "6", "--size", "48", "--num-blocks", "1", "1", "1", "1", "--refinement", "0",
                    "--repeats", "1", "--warmup", "0", "--json"])
    att, conv = res["attention"], res["conv"]
    assert att["seconds"] > 0 and conv["seconds"] > 0
    # the conv twin swaps each block's attention (4 C^2 projections + offsets + tables + LePE) for a 3x3 conv
    net = mod.build("conv", "reference", 6, [1, 1, 1, 1], 0)
    assert not any(isinstance(m, MSDeformableNeighborhoodAttention) for m in net.modules())
    assert conv["params"] == sum(p.numel() for p in net.parameters()) != att["params"]
    assert '"memory_ratio"' in capsys.readouterr().out
