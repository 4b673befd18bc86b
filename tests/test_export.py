"""restoration.export: ONNX models that take any size (padding, value range and crop inside the graph) match PyTorch
in onnxruntime; weights round-trip through .safetensors. Tiny configs; skipped without onnx/onnxruntime."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from restoration.archs.build import build_network
from restoration.archs.spec import arch_spec
from restoration.cli.export import main
from restoration.deploy.onnx_check import check_graph_dtype, check_onnx
from restoration.deploy.onnx_export import export_onnx, written_opset
from restoration.errors import ExportError
from restoration.inference import restore
from restoration.utils.weights import load_weights

TINY: dict[str, dict[str, Any]] = {
    # head dim 16: where the CPU's 'auto' attention would pick the chunked sdpa kernel (export uses 'reference')
    "SwinIR": dict(type="SwinIR", upscale=2, in_chans=3, img_size=16, window_size=4, img_range=1.0, depths=[2],
                   embed_dim=32, num_heads=[2], mlp_ratio=2, upsampler="pixelshuffle", resi_connection="1conv"),
    "HAT": dict(type="HAT", upscale=2, in_chans=3, img_size=16, window_size=4, depths=[2], embed_dim=32,
                num_heads=[2], compress_ratio=3, squeeze_factor=3, mlp_ratio=2, upsampler="pixelshuffle",
                resi_connection="1conv"),
    # size_multiple 16 and value range [0, 255]: both handled inside the exported graph
    "TBSN": dict(type="TBSN", dim=8, num_blocks=[1, 1, 1], num_refinement_blocks=1, channel_heads=[1, 1, 1],
                 spatial_heads=[1, 1, 1], window_size=4, spatial_dim_head=4),
}
#: One size a multiple of no window (nor of TBSN's 16), one a multiple of all: both must match PyTorch.
SIZES = [(23, 29), (32, 48)]
RTOL = 1e-4


def _checkpoint(tmp_path: Path, arch: str, key: str = "params") -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    net = build_network(TINY[arch]).eval()
    path = tmp_path / f"{arch}.pth"
    torch.save({key: net.state_dict()}, path)
    return net, path


def _network_arguments(arch: str, weights: Path, tmp_path: Path) -> list[str]:
    """SwinIR through -opt, the others through --arch/--arch-opt (both ways a user names a network)."""
    opt = {k: v for k, v in TINY[arch].items() if k != "type"}
    if arch == "SwinIR":
        yml = tmp_path / "net.yml"
        yml.write_text(json.dumps({"network_g": TINY[arch]}))  # JSON is YAML
        return ["--weights", str(weights), "-opt", str(yml)]
    return ["--weights", str(weights), "--arch", arch, "--arch-opt", json.dumps(opt)]


#: torch.export.Dim.DYNAMIC arrived in torch 2.6; below it the dynamo exporter refuses with advice (tested below).
needs_dynamic_dims = pytest.mark.skipif(not hasattr(torch.export.Dim, "DYNAMIC"),
                                        reason=f"the dynamo exporter needs torch >= 2.6 (this is {torch.__version__})")


@needs_dynamic_dims
@pytest.mark.parametrize("arch", list(TINY))
def test_onnx_export_matches_pytorch_at_two_sizes(arch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    net, weights = _checkpoint(tmp_path, arch)
    out = tmp_path / f"{arch}.onnx"
    assert main(_network_arguments(arch, weights, tmp_path) + ["-o", str(out), "--no-check"]) == 0
    assert f"network: {arch}" in capsys.readouterr().out

    checks = check_onnx(str(out), net, sizes=SIZES, batch=2, rtol=RTOL)
    assert [c.shape[-2:] for c in checks] == SIZES
    assert max(c.rel_error for c in checks) <= RTOL

    # the model speaks [0, 1] whatever the network's own range, and says so
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["restoration.value_range"].startswith("[0, 1]")
    assert json.loads(meta["restoration.network_g"])["type"] == arch
    spec = arch_spec(net)
    x = torch.rand(1, 3, *SIZES[0])
    y = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(["output"], {"input": x.numpy()})[0]
    assert y.shape == (1, 3, SIZES[0][0] * spec.scale, SIZES[0][1] * spec.scale)
    assert torch.allclose(torch.from_numpy(y), restore(net, x, spec=spec), rtol=0, atol=RTOL * 2)


@pytest.mark.parametrize("arch", ["SwinIR", "HAT"])
def test_torchscript_exporter_also_works_for_swin_networks(arch: str, tmp_path: Path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    net, _ = _checkpoint(tmp_path, arch)
    out = export_onnx(net, str(tmp_path / "ts.onnx"), exporter="torchscript")
    assert max(c.rel_error for c in check_onnx(out, net, sizes=SIZES, rtol=RTOL)) <= RTOL


def test_torchscript_exporter_refuses_tbsn_with_the_fix(tmp_path: Path):
    pytest.importorskip("onnx")
    net, _ = _checkpoint(tmp_path, "TBSN")
    with pytest.raises(ExportError, match="use --exporter dynamo"):
        export_onnx(net, str(tmp_path / "tbsn.onnx"), exporter="torchscript")


@pytest.mark.parametrize("key", ["params", "params_ema"])
def test_safetensors_export_round_trips_strictly(key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from safetensors import safe_open

    net, weights = _checkpoint(tmp_path, "HAT", key)
    out = tmp_path / "hat.safetensors"
    args = _network_arguments("HAT", weights, tmp_path) + ["--param-key", key, "-o", str(out)]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    torch.manual_seed(1)
    fresh = build_network(TINY["HAT"])
    load_weights(fresh, str(out), strict=True)
    for (name, a), b in zip(net.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["restoration.param_key"] == key and json.loads(meta["restoration.network_g"])["type"] == "HAT"


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    _, weights = _checkpoint(tmp_path, "SwinIR")
    # keys no family has: detection asks for --arch / -opt (an unreleased configuration of a family is built from
    # its shapes, with a notice)
    mystery = tmp_path / "mystery.pth"
    torch.save({"params": {"body.0.weight": torch.zeros(4, 3, 3, 3)}}, mystery)
    assert main(["--weights", str(mystery), "-o", str(tmp_path / "x.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--arch" in err
    assert main(["--weights", str(weights), "--arch", "SwinIR", "--arch-opt", "[1]", "-o", str(tmp_path / "x.onnx")]) == 1
    assert "--arch-opt must be a JSON object" in capsys.readouterr().err
    assert main(["--weights", str(tmp_path / "none.pth"), "-opt", str(tmp_path / "none.yml"),
                 "-o", str(tmp_path / "x.safetensors")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_dynamo_exporter_on_torch_without_dynamic_dims_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("onnx")
    _, weights = _checkpoint(tmp_path, "SwinIR")

    def dim(name: str, *, min: int | None = None, max: int | None = None) -> None:  # torch 2.5: a function
        raise AssertionError("not reached")

    monkeypatch.setattr(torch.export, "Dim", dim)
    out = tmp_path / "x.onnx"
    assert main(_network_arguments("SwinIR", weights, tmp_path) + ["-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch >= 2.6" in err and "--exporter torchscript" in err
    assert not out.exists()
    with pytest.raises(ExportError, match="torch >= 2.6"):
        export_onnx(build_network(TINY["SwinIR"]), str(out))


# ------------------------------------------------------------------ dtypes, opsets, onnxslim, refused networks
def _export_args(arch: str, tmp_path: Path, out: Path, *extra: str) -> list[str]:
    _, weights = _checkpoint(tmp_path, arch)
    return _network_arguments(arch, weights, tmp_path) + ["-o", str(out), *extra]


def test_fp16_model_takes_float16_and_matches_pytorch_in_float16(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "swinir_fp16.onnx"
    assert main(_export_args("SwinIR", tmp_path, out, "--dtype", "fp16", "--exporter", "torchscript")) == 0
    printed = capsys.readouterr().out
    assert "(opset 17, fp16)" in printed and printed.count("in fp16") == 2  # the check ran at two sizes
    assert check_graph_dtype(str(out), "fp16") > 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float16)"
    net, _ = _checkpoint(tmp_path, "SwinIR")
    checks = check_onnx(str(out), net, sizes=SIZES, batch=2, dtype="fp16")
    # measured 4.9e-4 (one float16 step below 1) against float16 PyTorch, 5.6e-4 against float32
    assert max(c.abs_error for c in checks) <= 2e-3 and max(c.abs_error_fp32 for c in checks) <= 2e-3
    assert min(c.abs_error_fp32 for c in checks) > 1e-5  # really computed in float16
    meta = {p.key: p.value for p in __import__("onnx").load(str(out)).metadata_props}
    assert meta["restoration.dtype"] == "float16" and "float16 in [0, 1]" in meta["restoration.input"]


@needs_dynamic_dims
def test_bf16_model_is_a_valid_bfloat16_graph_that_onnxruntime_cpu_cannot_run(tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture[str]):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "swinir_bf16.onnx"
    assert main(_export_args("SwinIR", tmp_path, out, "--dtype", "bf16")) == 0
    printed = capsys.readouterr().out
    assert "(opset 22, bf16)" in printed and "weight tensors are bfloat16" in printed and "not run" in printed
    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.BFLOAT16
    weights = [i for i in model.graph.initializer if len(i.dims) and i.data_type == onnx.TensorProto.BFLOAT16]
    assert check_graph_dtype(str(out), "bf16") == len(weights) and "net.conv_first.weight" in {i.name for i in weights}
    net, _ = _checkpoint(tmp_path, "SwinIR")
    with pytest.raises(ExportError, match="no bfloat16 kernels"):
        check_onnx(str(out), net, dtype="bf16")
    # what docs/export.md states: onnxruntime's CPU provider has no bfloat16 kernels (if this fails, it has some)
    with pytest.raises(Exception, match="NOT_IMPLEMENTED"):
        ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])


def test_torchscript_opset_is_the_one_asked_for(tmp_path: Path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    net, _ = _checkpoint(tmp_path, "HAT")
    out = export_onnx(net, str(tmp_path / "hat13.onnx"), exporter="torchscript", opset=13)
    assert written_opset(out) == 13
    assert max(c.rel_error for c in check_onnx(out, net, sizes=SIZES, rtol=RTOL)) <= RTOL


@needs_dynamic_dims
def test_an_opset_the_dynamo_exporter_cannot_make_is_an_error_not_a_silent_18(tmp_path: Path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    net, _ = _checkpoint(tmp_path, "SwinIR")
    out = tmp_path / "swinir17.onnx"
    with pytest.raises(ExportError, match=r"could not write SwinIR at opset 17 \(ONNX's version converter left it "
                                          r"at 18\): use --opset 18 or higher, or --exporter torchscript"):
        export_onnx(net, str(out), opset=17)
    assert not out.exists()


@pytest.mark.parametrize("extra, message", [
    (["--opset", "99"], "--opset 99: the installed onnx "),
    (["--exporter", "torchscript", "--opset", "21"], "--opset 21: the TorchScript exporter writes opsets 7 to 20"),
    (["--dtype", "bf16", "--opset", "20"], "--dtype bf16 needs --opset 22 or higher"),
    (["--dtype", "bf16", "--exporter", "torchscript"], "the TorchScript exporter writes opsets 7 to 20; --dtype bf16 "
                                                       "needs --exporter dynamo"),
])
def test_bad_opset_and_dtype_combinations_are_one_line_before_the_build(
        extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("onnx")
    from restoration.cli import export

    def no_build(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the network was built before the arguments were checked")

    monkeypatch.setattr(export, "load_network", no_build)
    out = tmp_path / "x.onnx"
    assert main(_export_args("SwinIR", tmp_path, out, *extra)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not out.exists()


def test_slim_keeps_the_contract_and_a_missing_onnxslim_names_the_pip_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxslim")
    plain, slim = tmp_path / "plain.onnx", tmp_path / "slim.onnx"
    assert main(_export_args("HAT", tmp_path, plain, "--exporter", "torchscript", "--no-check")) == 0
    assert main(_export_args("HAT", tmp_path, slim, "--exporter", "torchscript", "--slim")) == 0
    assert "slimmed" in capsys.readouterr().out
    nodes = [len(onnx.load(str(p)).graph.node) for p in (plain, slim)]
    assert nodes[1] < nodes[0], nodes
    net, _ = _checkpoint(tmp_path, "HAT")
    assert max(c.rel_error for c in check_onnx(str(slim), net, sizes=SIZES, batch=2, rtol=RTOL)) <= RTOL
    meta = {p.key: p.value for p in onnx.load(str(slim)).metadata_props}
    assert meta["restoration.min_side"] == "4" and json.loads(meta["restoration.network_g"])["type"] == "HAT"

    monkeypatch.setitem(sys.modules, "onnxslim", None)  # import onnxslim now raises ImportError
    assert main(_export_args("HAT", tmp_path, tmp_path / "y.onnx", "--slim")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--slim needs the optional package onnxslim: pip install onnxslim" in err


DSWINIR = dict(type="DSwinIR", dim=6, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[3, 3, 3, 3],
               kernel_size=[3, 3, 1, 1], ffn_expansion_factor=1)


def test_dswinir_is_refused_up_front_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    net = build_network(DSWINIR).eval()
    weights = tmp_path / "dswinir.pth"
    torch.save({"params": net.state_dict()}, weights)
    opt = json.dumps({k: v for k, v in DSWINIR.items() if k != "type"})
    out = tmp_path / "dswinir.onnx"
    assert main(["--weights", str(weights), "--arch", "DSwinIR", "--arch-opt", opt, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DSwinIR cannot be exported to ONNX: its deformable sampling" in err
    assert not out.exists()
    with pytest.raises(ExportError, match="frozen at the example size"):
        export_onnx(net, str(out), exporter="torchscript")


def test_graph_check_rejects_bfloat16_where_onnx_has_none(tmp_path: Path):
    """TBSN's bf16 export has an Einsum, which no opset types for bfloat16: the check says so in one line."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.BFLOAT16, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("output", TensorProto.BFLOAT16, [1, 3, 4, 4])
    graph = helper.make_graph([helper.make_node("Einsum", ["input"], ["output"], equation="bchw->bchw")], "g", [x], [y])
    path = tmp_path / "einsum.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)]), str(path))
    with pytest.raises(ExportError, match=r"onnx.checker rejects the model: .*Einsum.*tensor\(bfloat16\)"):
        check_graph_dtype(str(path), "bf16")
