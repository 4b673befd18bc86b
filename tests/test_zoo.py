"""The weights manifest (restoration/zoo.yaml): every entry builds, has the official parameter count, sane scores;
lookup, published scores, sha256 verification and the command line. No network access."""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path

import pytest
import torch

from restoration import zoo
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


def _manifest_with_hash(tmp_path: Path, payload: bytes) -> tuple[Path, Path]:
    weights = tmp_path / "tiny.pth"
    weights.write_bytes(payload)
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(
        "entries:\n"
        "  - {name: tiny.pth, url: 'https://example.org/tiny.pth', sha256: %s, param_key: params,\n"
        "     network_g: {type: Identity}, scores: {Set5: {psnr: 30.5}}}\n"
        "  - {name: nohash.pth, url: 'https://example.org/nohash.pth', sha256: null, network_g: {type: Identity}}\n"
        % hashlib.sha256(b"released bytes").hexdigest())
    return weights, manifest


def test_verify_matching_mismatching_and_unknown_hash(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    good = hashlib.sha256(b"released bytes").hexdigest()
    weights, manifest = _manifest_with_hash(tmp_path, b"released bytes")
    assert zoo.verify(weights, manifest=manifest) is True

    weights.write_bytes(b"truncated")
    bad = hashlib.sha256(b"truncated").hexdigest()
    with pytest.raises(zoo.ZooError) as info:
        zoo.verify(weights, manifest=manifest)
    assert bad in str(info.value) and good in str(info.value)

    other = tmp_path / "renamed.bin"
    other.write_bytes(b"anything")
    with caplog.at_level(logging.WARNING, logger="restoration"):
        assert zoo.verify(other, "nohash.pth", manifest=manifest) is False
    assert "records no sha256" in caplog.text and hashlib.sha256(b"anything").hexdigest() in caplog.text

    with pytest.raises(zoo.ZooError, match="no such file"):
        zoo.verify(tmp_path / "missing.pth", manifest=manifest)


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
    assert zoo.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/001_classicalSR_DIV2K_s48w8_SwinIR-M_x2.pth" in out
    assert "HAT_SRx4.pth" in out and "drive.google.com" in out

    weights, manifest = _manifest_with_hash(tmp_path, b"released bytes")
    assert zoo.main(["--manifest", str(manifest), "verify", str(weights)]) == 0
    assert capsys.readouterr().out.startswith("OK ")
    weights.write_bytes(b"corrupt")
    assert zoo.main(["--manifest", str(manifest), "verify", str(weights)]) == 1
    assert "FAILED" in capsys.readouterr().out
