"""The data-preparation scripts, end to end through their command lines, on tiny images."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from restoration.data import lmdb_writer
from restoration.data.io_backend import LmdbBackend, read_lmdb_meta_info
from restoration.data.paired_image_dataset import PairedImageDataset
from restoration.utils.image_io import imfrombytes, imread, imwrite

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts" / "data"
# the scripts import `restoration`; make that work even without an editable install
_ENV = {**os.environ, "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))}


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=_ENV)


def _script(name: str):
    """Import a script as a module, to call its ``main(argv)`` in-process (a subprocess costs a torch import)."""
    spec = importlib.util.spec_from_file_location(f"_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def div2k_like(tmp_path):
    """Two 100x140 HR images and their x2 LR (every other pixel), named like DIV2K (0001.png, 0001x2.png)."""
    rng = np.random.default_rng(0)
    for i in (1, 2):
        hr = rng.integers(0, 256, (100, 140, 3), dtype=np.uint8)
        imwrite(tmp_path / "HR" / f"{i:04d}.png", hr)
        imwrite(tmp_path / "LR" / f"{i:04d}x2.png", np.ascontiguousarray(hr[::2, ::2]))
    return tmp_path


def test_extract_subimages_names_counts_and_alignment(div2k_like):
    t = div2k_like
    res = _run("extract_subimages.py", "--input", t / "HR", "--output", t / "HR_sub", "--crop-size", 48, "--step", 24,
               "--n-thread", 2)
    assert res.returncode == 0, res.stderr
    # rows start at 0, 24, 48 + flush 52; columns at 0, 24, 48, 72 + flush 92: 4 x 5 = 20 per image
    names = sorted(p.name for p in (t / "HR_sub").iterdir())
    assert len(names) == 40 and names[0] == "0001_s001.png" and names[-1] == "0002_s020.png"
    assert "wrote 40 sub-images from 2 images" in res.stdout
    hr = imread(t / "HR" / "0001.png")
    assert np.array_equal(imread(t / "HR_sub" / "0001_s020.png"), hr[52:100, 92:140])  # last = bottom-right flush
    assert np.array_equal(imread(t / "HR_sub" / "0001_s007.png"), hr[24:72, 24:72])  # row 2, column 2 (row-major)

    extract = _script("extract_subimages").main
    assert extract(["--input", str(t / "LR"), "--output", str(t / "LR_sub"), "--crop-size", "48", "--step", "24",
                    "--scale", "2", "--strip-suffix", "x2", "--n-thread", "1"]) == 0
    assert sorted(p.name for p in (t / "LR_sub").iterdir()) == names  # LR sub-images share the HR names
    for k in (1, 13, 20):
        lr_sub = imread(t / "LR_sub" / f"0002_s{k:03d}.png")
        assert lr_sub.shape == (24, 24, 3)
        assert np.array_equal(lr_sub, imread(t / "HR_sub" / f"0002_s{k:03d}.png")[::2, ::2])

    assert extract(["--input", str(t / "HR"), "--output", str(t / "thr"), "--crop-size", "48", "--step", "24",
                    "--thresh-size", "30", "--n-thread", "1"]) == 0
    assert len(list((t / "thr").iterdir())) == 2 * 3 * 4  # the 4- and 20-pixel leftovers are below the threshold


def test_extract_subimages_refuses_bad_input(div2k_like, tmp_path):
    res = _run("extract_subimages.py", "--input", tmp_path / "nope", "--output", tmp_path / "out")
    assert res.returncode == 2 and "input folder" in res.stderr and "nope" in res.stderr
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.png").write_bytes(b"")
    res = _run("extract_subimages.py", "--input", div2k_like / "HR", "--output", tmp_path / "busy")
    assert res.returncode == 2 and "not empty" in res.stderr
    res = _run("extract_subimages.py", "--input", div2k_like / "LR", "--output", tmp_path / "o", "--scale", 7)
    assert res.returncode == 2 and "not divisible by --scale 7" in res.stderr
    assert _run("extract_subimages.py", "--help").returncode == 0


def test_create_lmdb_feeds_paired_dataset(div2k_like):
    t = div2k_like
    extract = _script("extract_subimages").main
    for d, s in (("HR", "1"), ("LR", "2")):
        assert extract(["--input", str(t / d), "--output", str(t / f"{d}_sub"), "--crop-size", "48", "--step", "24",
                        "--n-thread", "1", "--scale", s, "--strip-suffix", "x2"]) == 0
    res = _run("create_lmdb.py", "--input", t / "HR_sub", "--output", t / "hr.lmdb",
               "--input", t / "LR_sub", "--output", t / "lr.lmdb", "--n-thread", 2)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (t / "hr.lmdb").iterdir()) == ["data.mdb", "lock.mdb", "meta_info.txt"]
    meta = (t / "lr.lmdb" / "meta_info.txt").read_text().splitlines()
    assert len(meta) == 40 and all(re.fullmatch(r"\d{4}_s\d{3}\.png \(24,24,3\) 1", line) for line in meta)
    ds = PairedImageDataset({"phase": "train", "scale": 2, "gt_size": 32, "dataroot_gt": str(t / "hr.lmdb"),
                             "use_hflip": False, "use_rot": False,
                             "dataroot_lq": str(t / "lr.lmdb"), "io_backend": {"type": "lmdb"}})
    assert len(ds) == 40
    item = ds[5]
    assert item["gt"].shape == (3, 32, 32) and item["lq"].shape == (3, 16, 16)
    # the LR was made by taking every other pixel, so aligned patches satisfy gt[::2, ::2] == lq
    assert torch.equal(item["gt"][:, ::2, ::2], item["lq"])
    value = LmdbBackend({"gt": str(t / "hr.lmdb")}).get("0001_s007", "gt")
    assert np.array_equal(imfrombytes(value), imread(t / "HR_sub" / "0001_s007.png"))

    res = _run("create_lmdb.py", "--input", t / "HR_sub", "--output", t / "hr.lmdb")
    assert res.returncode == 2 and "already exists" in res.stderr
    res = _run("create_lmdb.py", "--input", t / "HR_sub", "--output", t / "hr.db")
    assert res.returncode == 2 and "must end with '.lmdb'" in res.stderr
    assert _script("create_lmdb").main(["--input", str(t / "HR_sub"), "--meta-info", str(t / "meta.txt")]) == 0
    assert (t / "meta.txt").read_text().splitlines()[0] == "0001_s001.png (48,48,3)"
    assert _run("create_lmdb.py", "--help").returncode == 0


def test_lmdb_map_grows_instead_of_map_full(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    for i in range(6):  # incompressible noise: ~50 KB of PNG each
        imwrite(tmp_path / "imgs" / f"{i}.png", rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    # pretend the size estimate is far too small: writing must still succeed by growing the map
    monkeypatch.setattr(lmdb_writer, "lmdb_map_size_for", lambda data_bytes, n: 64 * 1024)
    out = lmdb_writer.make_lmdb_from_folder(tmp_path / "imgs", tmp_path / "x.lmdb", n_thread=1, batch_size=3)
    assert read_lmdb_meta_info(out) == [f"{i}.png" for i in range(6)]
    backend = LmdbBackend({"x": str(out)})
    assert np.array_equal(imfrombytes(backend.get("5", "x")), imread(tmp_path / "imgs" / "5.png"))
    assert not list(tmp_path.glob(".x.lmdb.partial-*"))  # built under a temporary name, then renamed
    with pytest.raises(FileExistsError, match="x.lmdb already exists"):
        lmdb_writer.make_lmdb_from_folder(tmp_path / "imgs", out)


def test_make_demo_dataset_script(tmp_path, capsys):
    assert _script("make_demo_dataset").main(["--root", str(tmp_path / "demo"), "--scale", "4"]) == 0
    assert "5 train / 2 val images" in capsys.readouterr().out
    assert len(list((tmp_path / "demo" / "val" / "LR_bicubic" / "X4").glob("*x4.png"))) == 2


def test_generate_lr_from_tiff_pairs_with_paired_dataset(tmp_path, capsys):
    """Own data that is not PNG: TIFF HR -> generate_lr.py (PNG LR) -> PairedImageDataset finds every pair."""
    rng = np.random.default_rng(3)
    sizes = [(40, 48), (41, 50), (36, 36)]  # the second is not a multiple of 2: mod-cropped on both sides
    for i, hw in enumerate(sizes):
        imwrite(tmp_path / "HR" / f"photo_{i}.tif", rng.integers(0, 256, (*hw, 3), dtype=np.uint8))
    assert _script("generate_lr").main(["--input", str(tmp_path / "HR"), "--output", str(tmp_path / "LR"),
                                        "--scale", "2"]) == 3
    assert "PairedImageDataset reads them with filename_tmpl: '{}x2'" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "LR").iterdir()) == ["photo_0x2.png", "photo_1x2.png", "photo_2x2.png"]
    ds = PairedImageDataset({"phase": "val", "scale": 2, "dataroot_gt": str(tmp_path / "HR"),
                             "dataroot_lq": str(tmp_path / "LR"), "filename_tmpl": "{}x2"})
    assert len(ds) == 3
    for i, (h, w) in enumerate(sizes):
        item = ds[i]
        assert item["gt_path"].endswith(f"photo_{i}.tif") and item["lq_path"].endswith(f"photo_{i}x2.png")
        assert item["gt"].shape == (3, h - h % 2, w - w % 2) and item["lq"].shape == (3, h // 2, w // 2)


def test_generate_lr_refuses_two_images_with_one_stem(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    imwrite(tmp_path / "HR" / "a.png", img)
    imwrite(tmp_path / "HR" / "a.tif", img)
    with pytest.raises(SystemExit, match=r"two images with the stem 'a' in .*HR: a.png and a.tif"):
        _script("generate_lr").main(["--input", str(tmp_path / "HR"), "--output", str(tmp_path / "LR"), "--scale", "2"])
    assert not (tmp_path / "LR").exists()
