"""The weights manifest (restoration/archs/<family>/zoo.yaml): every entry builds, has the official parameter count, sane scores;
lookup, published scores, sha256 verification and the command line. No network access."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from restoration import zoo
from restoration.cli.zoo import main as zoo_main
from restoration.archs.build import build_network

ENTRIES = zoo.entries()
#: Plausible published ranges: PSNR in dB for 8-bit images, SSIM in (0, 1].
RANGES = {"psnr": (15.0, 60.0), "ssim": (0.3, 1.0)}


def test_manifest_names_are_unique_and_cover_every_family():
    names = [e.name for e in ENTRIES]
    assert len(names) == len(set(names))
    families = {e.network_g["type"] for e in ENTRIES}
    assert {"SwinIR", "HAT", "TBSN"} <= families
    assert "001_classicalSR_DIV2K_s48w8_SwinIR-M_x2.pth" in names and "HAT_SRx4.pth" in names


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_entry_builds_with_the_official_parameter_count(entry: zoo.ZooEntry):
    with torch.device("meta"):
        net = build_network(entry.network_g)
    if entry.num_params is not None:
        assert sum(p.numel() for p in net.parameters()) == entry.num_params
    assert entry.url.startswith("http")
    assert entry.sha256 is None or len(entry.sha256) == 64
    assert entry.param_key in (None, "params", "params_ema")


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.scores], ids=[e.name for e in ENTRIES if e.scores])
def test_published_scores_are_floats_in_sane_ranges(entry: zoo.ZooEntry):
    for dataset, metrics in entry.scores.items():
        assert metrics, f"{entry.name}: {dataset} has no metric"
        for metric, value in metrics.items():
            lo, hi = RANGES[metric]
            assert isinstance(value, float) and math.isfinite(value) and lo <= value <= hi, (dataset, metric, value)


def test_published_score_lookup():
    name = "001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth"
    assert zoo.published_score(name, "Set5", "psnr") == 38.42
    assert zoo.published_score(name, "set5", "SSIM") == 0.9623
    assert zoo.published_score(name, "BSDS100", "psnr_y") == 32.53  # test.py-style names are accepted
    assert zoo.published_score("/models/" + name, "Urban100", "psnr") == 33.81  # a path to the file works too
    assert zoo.published_score(name, "DIV2K", "psnr") is None
    assert zoo.published_score("HAT_SRx4.pth", "Urban100", "ssim") is None  # HAT's SSIM not recorded
    assert zoo.published_score("not_a_release.pth", "Set5", "psnr") is None


def test_get_unknown_name_suggests_the_closest():
    with pytest.raises(zoo.ZooError, match="did you mean HAT_SRx4.pth"):
        zoo.get("HAT_SRX4.pth")
    assert zoo.get("HAT_SRx4").name == "HAT_SRx4.pth"  # suffix optional


#: A tiny SwinIR (a few thousand parameters) standing in for a released network: built on the CPU in milliseconds.
TINY = {"type": "SwinIR", "upscale": 2, "in_chans": 3, "img_size": 8, "window_size": 4, "img_range": 1.0,
        "depths": [1], "embed_dim": 8, "num_heads": [2], "mlp_ratio": 2, "upsampler": "pixelshuffledirect",
        "resi_connection": "1conv"}


def _save(path: Path, network_g: dict, key: str | None = "params", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    sd = build_network(network_g).state_dict()
    torch.save({key: sd} if key else sd, path)
    return path


def _tiny_manifest(tmp_path: Path) -> tuple[Path, Path]:
    """A manifest of two tiny entries (one with the sha256 of a saved file, one without) and that file."""
    weights = _save(tmp_path / "tiny.pth", TINY)
    net = json.dumps(TINY)
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(
        "entries:\n"
        f"  - {{name: tiny.pth, url: 'https://example.org/tiny.pth', sha256: {zoo.sha256_of(weights)}, "
        f"param_key: params, network_g: {net}, scores: {{Set5: {{psnr: 30.5}}}}}}\n"
        f"  - {{name: nohash.pth, url: 'https://example.org/nohash.pth', sha256: null, param_key: params, "
        f"network_g: {net}}}\n")
    return weights, manifest


def test_verify_checks_shapes_then_hash(tmp_path: Path):
    weights, manifest = _tiny_manifest(tmp_path)
    result = zoo.verify(weights, manifest=manifest)
    assert result.status == zoo.OK and result.details[1] == "sha256 match"
    assert result.details[0].startswith("shapes match (") and "tensors of SwinIR)" in result.details[0]

    other = _save(tmp_path / "retrained.pth", TINY, seed=1)  # same shapes, other values: the hash tells
    result = zoo.verify(other, "tiny.pth", manifest=manifest)
    assert result.status == zoo.MISMATCH and result.details == (
        f"sha256 {zoo.sha256_of(other)}, manifest {zoo.sha256_of(weights)} (a truncated download or another file; "
        "fetch it again from https://example.org/tiny.pth)",)
    result = zoo.verify(other, "nohash.pth", manifest=manifest)  # no hash recorded: the shapes verify it
    assert result.status == zoo.OK and result.details[1] == f"no sha256 recorded (this file's: {zoo.sha256_of(other)})"

    wider = _save(tmp_path / "wider.pth", {**TINY, "embed_dim": 12})  # the 41k-parameter "SwinIR-S" of the issue
    result = zoo.verify(wider, "nohash.pth", manifest=manifest)
    assert result.status == zoo.MISMATCH
    assert "SwinIR shape (" in result.line() and "conv_first.weight (12, 3, 3, 3) vs (8, 3, 3, 3)" in result.line()
    deeper = _save(tmp_path / "deeper.pth", {**TINY, "depths": [1, 1], "num_heads": [2, 2]})
    assert "SwinIR not in network (" in zoo.verify(deeper, "nohash.pth", manifest=manifest).line()
    raw = _save(tmp_path / "raw.pth", TINY, key=None)  # the entry says 'params': a raw state dict is not the file
    assert "has no entry 'params'" in zoo.verify(raw, "nohash.pth", manifest=manifest).line()

    missing = zoo.verify(tmp_path / "absent.pth", "tiny.pth", manifest=manifest)
    assert missing.status == zoo.MISSING
    assert missing.line().endswith("no such file; fetch it from https://example.org/tiny.pth")
    with pytest.raises(zoo.ZooError, match="no released checkpoint named 'renamed.pth'"):
        zoo.verify(weights, "renamed.pth", manifest=manifest)


def test_verify_a_small_network_saved_as_a_released_name_is_a_mismatch(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]):
    """The issue's case, with the real manifest (no hash recorded): a tiny file named as SwinIR-S x2 fails."""
    name = "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth"
    assert zoo.get(name).sha256 is None
    fake = _save(tmp_path / name, TINY)
    assert zoo_main(["verify", str(fake)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"MISMATCH {fake} ({name}): SwinIR ") and "0 verified, 1 mismatched, 0 missing" in out
    (tmp_path / "real").mkdir()
    real = _save(tmp_path / "real" / name, zoo.get(name).network_g)  # the released shapes (900k parameters)
    assert zoo_main(["verify", str(real)]) == 0
    assert capsys.readouterr().out.startswith(f"OK       {real} ({name}): shapes match (")


def test_manifest_errors_name_the_entry(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries:\n  - {name: a.pth, url: 'http://x', network_g: {type: Identity}, sha: 1}\n")
    with pytest.raises(zoo.ZooError, match=r"entries\[0\] \(a.pth\): unknown fields \['sha'\]"):
        zoo.entries(bad)
    dup = tmp_path / "dup.yaml"
    dup.write_text("entries:\n  - {name: a.pth, url: 'http://x', network_g: {type: Identity}}\n"
                   "  - {name: a.pth, url: 'http://y', network_g: {type: Identity}}\n")
    with pytest.raises(zoo.ZooError, match="appears twice"):
        zoo.entries(dup)
    short = tmp_path / "short.yaml"
    short.write_text("entries:\n  - {name: a.pth, url: 'http://x', network_g: {type: Identity}, sha256: abc}\n")
    with pytest.raises(zoo.ZooError, match="64 lower-case hex"):
        zoo.entries(short)


def test_cli_list_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert zoo_main(["list"]) == 0
    out = capsys.readouterr().out
    assert "https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/001_classicalSR_DIV2K_s48w8_SwinIR-M_x2.pth" in out
    assert "HAT_SRx4.pth" in out and "drive.google.com" in out

    weights, manifest = _tiny_manifest(tmp_path)
    assert zoo_main(["--manifest", str(manifest), "verify", str(weights)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"OK       {weights} (tiny.pth): shapes match ({len(build_network(TINY).state_dict())} tensors of SwinIR); "
        "sha256 match", "1 verified, 0 mismatched, 0 missing"]
    # every entry without a file of its own is MISSING: nothing verified is a failure, not "all fine"
    assert zoo_main(["--manifest", str(manifest), "verify", str(tmp_path / "nohash.pth")]) == 1
    assert capsys.readouterr().out.startswith(f"MISSING  {tmp_path / 'nohash.pth'} (nohash.pth): no such file")
    # --dir: every entry in a folder; an absent entry is listed, only a mismatch or nothing verified fails
    assert zoo_main(["--manifest", str(manifest), "verify", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"MISSING  {tmp_path / 'nohash.pth'}" in out and out.endswith("1 verified, 0 mismatched, 1 missing\n")
    (tmp_path / "empty").mkdir()
    assert zoo_main(["--manifest", str(manifest), "verify", "--dir", str(tmp_path / "empty")]) == 1
    _save(tmp_path / "nohash.pth", {**TINY, "embed_dim": 12})
    assert zoo_main(["--manifest", str(manifest), "verify", "--dir", str(tmp_path)]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert zoo_main(["--manifest", str(manifest), "verify"]) == 1
    assert "nothing to verify: give FILE names or --dir FOLDER" in capsys.readouterr().err
