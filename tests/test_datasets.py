"""Image I/O, datasets (paired, single, on-the-fly degradations), LMDB backend, demo dataset builder."""

from __future__ import annotations

import copy
import inspect
import os
import pickle
import random
import re

import cv2
import numpy as np
import pytest
import torch

from restoration.data import register_datasets
from restoration.data.base_dataset import COMMON_OPTIONS, BaseDataset, DatasetOptionError
from restoration.schema import bind_options
from restoration.data.degradation_dataset import DegradationDataset
from restoration.data.lmdb_writer import make_lmdb_from_folder
from restoration.data.noisy_image_dataset import TRAIN_CROP_OPTIONS
from restoration.data.paired_image_dataset import PairedImageDataset
from restoration.data.single_image_dataset import SingleImageDataset
from restoration.data.transforms import augment
from restoration.declare import component_problems
from restoration.schema import type_ok
from restoration.registry import DATASET_REGISTRY
from restoration.utils.image_io import ImageReadError, img2tensor, imread, imwrite, tensor2img
from restoration.utils.matlab_imresize import imresize


def _rand(shape, seed=0, dtype=np.uint8):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(dtype)


# ------------------------------------------------------------------ image I/O
def test_imwrite_imread_rgb_order_and_modes(tmp_path):
    red = np.zeros((4, 5, 3), np.uint8)
    red[..., 0] = 255
    path = tmp_path / "sub" / "dir" / "red.png"  # parent folders are created
    imwrite(path, red)
    assert np.array_equal(imread(path), red)
    assert cv2.imread(str(path))[0, 0].tolist() == [0, 0, 255]  # on disk it is a normal (BGR-stored) red PNG
    assert [p.name for p in path.parent.iterdir()] == ["red.png"]  # no temporary file left behind

    gray = _rand((6, 7))
    imwrite(tmp_path / "g.png", gray)
    assert imread(tmp_path / "g.png").shape == (6, 7, 1)
    assert imread(tmp_path / "g.png", mode="rgb").shape == (6, 7, 3)
    assert imread(path, mode="gray")[0, 0, 0] == 76  # OpenCV luma: round(0.299 * 255)

    deep = (np.arange(24, dtype=np.uint16).reshape(2, 4, 3) * 2500)
    imwrite(tmp_path / "d.png", deep)
    back = imread(tmp_path / "d.png")
    assert back.dtype == np.uint16 and np.array_equal(back, deep)


def test_imread_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.png"
    with pytest.raises(ImageReadError, match="missing.png"):
        imread(missing)
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG not really an image")
    with pytest.raises(OSError, match="corrupt.png"):  # ImageReadError is an OSError
        imread(bad)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.jpg.*empty"):
        imread(empty)


def test_img2tensor_tensor2img_rounding():
    img = _rand((3, 4, 3))
    t = img2tensor(img)
    assert t.shape == (3, 3, 4) and t.dtype == torch.float32
    assert np.array_equal(tensor2img(t), img)  # exact round trip
    assert np.array_equal(tensor2img(t[None]), img)  # (1, C, H, W)
    vals = torch.tensor([0.2, 1.3, -0.1, 128.4 / 255, 128.6 / 255]).view(1, 1, 5)
    assert tensor2img(vals)[0, :, 0].tolist() == [51, 255, 0, 128, 129]  # clamp, *255, round (not truncate)
    batch = tensor2img(torch.zeros(2, 3, 4, 5))
    assert isinstance(batch, list) and len(batch) == 2 and batch[0].shape == (4, 5, 3)


# ------------------------------------------------------------------ paired dataset fixtures
def _make_pairs(root, n=3, hw=(40, 48), scale=2, tmpl="{}x2", lq_name_same=False):
    """GT = nearest-neighbour upsampling of a random LQ, so any aligned crop satisfies gt == repeat(lq)."""
    gt_dir, lq_dir = root / "gt", root / "lq"
    for i in range(n):
        lq = _rand((hw[0] // scale, hw[1] // scale, 3), seed=i)
        gt = lq.repeat(scale, 0).repeat(scale, 1)
        imwrite(gt_dir / f"img{i}.png", gt)
        imwrite(lq_dir / ((f"img{i}" if lq_name_same else tmpl.format(f"img{i}")) + ".png"), lq)
    return gt_dir, lq_dir


def _opt(gt_dir, lq_dir, phase="val", **kw):
    opt = dict(type="PairedImageDataset", name="pairs", phase=phase, scale=2, dataroot_gt=str(gt_dir),
               dataroot_lq=str(lq_dir), filename_tmpl="{}x2", io_backend={"type": "disk"})
    opt.update(kw)
    return opt


def test_paired_val_full_images(tmp_path):
    gt_dir, lq_dir = _make_pairs(tmp_path)
    ds = PairedImageDataset(_opt(gt_dir, lq_dir))
    assert len(ds) == 3
    item = ds[1]
    assert item["lq"].shape == (3, 20, 24) and item["gt"].shape == (3, 40, 48)
    assert item["lq_path"].endswith("img1x2.png") and item["gt_path"].endswith("img1.png")
    assert torch.equal(item["lq"], img2tensor(_rand((20, 24, 3), seed=1)))


def test_paired_train_crop_is_aligned_and_augmented(tmp_path):
    gt_dir, lq_dir = _make_pairs(tmp_path)
    ds = PairedImageDataset(_opt(gt_dir, lq_dir, phase="train", gt_size=16, use_hflip=True, use_rot=True))
    random.seed(0)
    patches = set()
    for k in range(12):
        item = ds[k % 3]
        assert item["gt"].shape == (3, 16, 16) and item["lq"].shape == (3, 8, 8)
        up = item["lq"].repeat_interleave(2, 1).repeat_interleave(2, 2)
        assert torch.equal(item["gt"], up)  # the same crop and flip/rotation on both
        patches.add(item["lq"].numpy().tobytes())
    assert len(patches) == 12  # random crops differ between calls
    random.seed(5)
    a = ds[0]["lq"]
    random.seed(5)
    assert torch.equal(a, ds[0]["lq"])  # reproducible given the worker's seed


def test_augment_applies_dihedral_transforms():
    img = np.arange(2 * 3, dtype=np.uint8).reshape(2, 3, 1)
    seen = set()
    for seed in range(64):
        out_a, out_b = augment([img, img.copy()], np.random.default_rng(seed))
        assert np.array_equal(out_a, out_b)
        seen.add((out_a.shape, out_a.tobytes()))
    assert len(seen) == 8  # all 8 flips/rotations occur
    assert {s for s, _ in seen} == {(2, 3, 1), (3, 2, 1)}  # a rotation swaps H and W
    only_h = {augment([img], np.random.default_rng(s), hflip=True, rotation=False)[0].tobytes() for s in range(32)}
    assert len(only_h) == 2


def test_paired_size_mismatch_and_mod_crop(tmp_path):
    gt_dir, lq_dir = _make_pairs(tmp_path, n=1)
    imwrite(gt_dir / "img0.png", _rand((41, 49, 3)))  # one row/column more than 2x LQ: mod-cropped
    item = PairedImageDataset(_opt(gt_dir, lq_dir))[0]
    assert item["gt"].shape == (3, 40, 48)
    with pytest.raises(ValueError, match=r"img0.png is 41x49.*img0x2.png is 20x24"):
        PairedImageDataset(_opt(gt_dir, lq_dir, mod_crop=False))[0]
    imwrite(gt_dir / "img0.png", _rand((44, 48, 3)))  # a real mismatch
    with pytest.raises(ValueError, match=r"GT .*img0.png is 44x48 but LQ .*img0x2.png is 20x24"):
        PairedImageDataset(_opt(gt_dir, lq_dir))[0]


def test_paired_patch_larger_than_image_names_it(tmp_path):
    gt_dir, lq_dir = _make_pairs(tmp_path, n=1)
    ds = PairedImageDataset(_opt(gt_dir, lq_dir, phase="train", gt_size=64))
    with pytest.raises(ValueError, match=r"img0x2.png.*20x24.*smaller than"):
        ds[0]


def test_paired_meta_info_and_missing_partner(tmp_path):
    gt_dir, lq_dir = _make_pairs(tmp_path)
    meta = tmp_path / "meta.txt"
    meta.write_text("img2.png (40,48,3)\n\nimg0.png (40,48,3)\n")
    ds = PairedImageDataset(_opt(gt_dir, lq_dir, meta_info_file=str(meta)))
    assert [os.path.basename(p["gt_path"]) for p in ds.paths] == ["img2.png", "img0.png"]
    os.remove(lq_dir / "img1x2.png")
    expected = f"no LQ image for GT 'img1.png': expected 'img1x2.*' in {lq_dir} (filename_tmpl '{{}}x2')"
    with pytest.raises(FileNotFoundError, match=re.escape(expected)):
        PairedImageDataset(_opt(gt_dir, lq_dir))


def test_paired_lq_found_by_stem_across_extensions(tmp_path):
    gt_dir, lq_dir = _make_pairs(tmp_path, n=2)
    os.rename(gt_dir / "img0.png", gt_dir / "img0.tif")  # GT TIFF, LQ PNG (what generate_lr.py writes)
    imwrite(lq_dir / "img1x2.bmp", imread(lq_dir / "img1x2.png"))
    os.remove(lq_dir / "img1x2.png")  # GT PNG, LQ BMP
    ds = PairedImageDataset(_opt(gt_dir, lq_dir))
    assert [(os.path.basename(p["gt_path"]), os.path.basename(p["lq_path"])) for p in ds.paths] == [
        ("img0.tif", "img0x2.png"), ("img1.png", "img1x2.bmp")]
    assert torch.equal(ds[0]["lq"], img2tensor(_rand((20, 24, 3), seed=0)))


def test_paired_two_candidates_for_one_stem_are_an_error_naming_both(tmp_path):
    gt_dir, lq_dir = _make_pairs(tmp_path, n=2)
    imwrite(lq_dir / "img1x2.tif", _rand((20, 24, 3)))
    with pytest.raises(ValueError, match=r"two LQ images for GT 'img1.png' in .*lq: img1x2.png and img1x2.tif"):
        PairedImageDataset(_opt(gt_dir, lq_dir))
    os.remove(lq_dir / "img1x2.tif")
    imwrite(gt_dir / "img1.tif", _rand((40, 48, 3)))
    two_gt = r"GT folder .*gt holds two images with the stem 'img1': img1.png and img1.tif"
    with pytest.raises(ValueError, match=two_gt):
        PairedImageDataset(_opt(gt_dir, lq_dir))


def test_paired_missing_lq_says_which_template_the_folder_holds(tmp_path):
    gt_dir, lq_dir = _make_pairs(tmp_path, n=3)  # LQ named img0x2.png, ...
    with pytest.raises(FileNotFoundError) as info:
        PairedImageDataset(_opt(gt_dir, lq_dir, filename_tmpl="{}"))
    msg = str(info.value)
    assert msg.startswith("no LQ image for 3 of 3 GT images: "
                          "expected 'img0.*' (GT 'img0.png'), 'img1.*' (GT 'img1.png')")
    assert f"in {lq_dir} (filename_tmpl '{{}}'); the LQ folder holds 'img0x2.png': set filename_tmpl: '{{}}x2'" in msg
    assert "scripts/data/generate_lr.py --scale N writes '<GT stem>xN.png'" in msg and "\n" not in msg


def test_corrupt_image_in_dataset_names_file(tmp_path):
    gt_dir, lq_dir = _make_pairs(tmp_path, n=1)
    (lq_dir / "img0x2.png").write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match="img0x2.png"):
        PairedImageDataset(_opt(gt_dir, lq_dir))[0]


def test_paired_lmdb_round_trip_and_pickling(tmp_path):
    gt_dir, lq_dir = _make_pairs(tmp_path, lq_name_same=True)
    gt_db = make_lmdb_from_folder(gt_dir, tmp_path / "gt.lmdb", n_thread=1)
    lq_db = make_lmdb_from_folder(lq_dir, tmp_path / "lq.lmdb", n_thread=1)
    assert (gt_db / "meta_info.txt").read_text().splitlines()[0] == "img0.png (40,48,3) 1"
    disk = PairedImageDataset(_opt(gt_dir, lq_dir, filename_tmpl="{}"))
    ds = PairedImageDataset(_opt(gt_db, lq_db, filename_tmpl="{}", io_backend={"type": "lmdb"}))
    blob = pickle.dumps(ds)  # before the first read: nothing open, pickles
    assert not ds.backend.is_open
    for i in range(3):
        a, b = ds[i], disk[i]
        assert a["lq_path"] == f"img{i}" and torch.equal(a["gt"], b["gt"]) and torch.equal(a["lq"], b["lq"])
    assert ds.backend.is_open
    clone = pickle.loads(pickle.dumps(ds))  # after opening: the environment is dropped, reopened lazily
    assert not clone.backend.is_open and torch.equal(clone[2]["gt"], disk[2]["gt"])
    assert torch.equal(copy.deepcopy(ds)[0]["lq"], disk[0]["lq"])
    assert torch.equal(pickle.loads(blob)[1]["gt"], disk[1]["gt"])


@pytest.mark.parametrize("context", ["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def test_lmdb_dataset_in_worker_process(tmp_path, context):
    gt_dir, lq_dir = _make_pairs(tmp_path, n=2, lq_name_same=True)
    opt = _opt(make_lmdb_from_folder(gt_dir, tmp_path / "g.lmdb", n_thread=1),
               make_lmdb_from_folder(lq_dir, tmp_path / "l.lmdb", n_thread=1))
    opt.update(filename_tmpl="{}", io_backend={"type": "lmdb"})
    ds = PairedImageDataset(opt)
    ds[0]  # open in the parent first: a spawned worker must still get a picklable dataset, a forked one reopens
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1, multiprocessing_context=context)
    batch = next(iter(loader))
    assert batch["gt"].shape == (2, 3, 40, 48) and list(batch["lq_path"]) == ["img0", "img1"]


# ------------------------------------------------------------------ option checking
def test_check_options_lists_every_problem(tmp_path):
    fake = tmp_path / "nometa.lmdb"
    fake.mkdir()
    (fake / "data.mdb").write_bytes(b"")
    opt = {"type": "PairedImageDataset", "phase": "train", "scale": 2, "dataroot_gt": str(fake),
           "gt_sise": 96, "use_hflip": "yes", "io_backend": {"type": "lmdb"}, "filename_tmpl": "{}"}
    opt["gt_sizee"] = 96  # a second unknown key: the accepted keys are still listed once
    problems = _problems(PairedImageDataset, opt)
    accepted = ", ".join(sorted(PairedImageDataset.options))
    assert problems == [
        "unknown key 'gt_sise' (did you mean 'gt_size'?)",
        "unknown key 'gt_sizee' (did you mean 'gt_size'?)",
        f"accepted keys: {accepted}",
        "missing required key 'dataroot_lq'",
        "'use_hflip' must be bool, got str 'yes'",
        f"dataroot_gt: LMDB {fake} has no meta_info.txt (create it with scripts/data/create_lmdb.py, which writes one)",
        "phase 'train' needs 'gt_size' (the GT patch size, e.g. 128)",
    ]
    assert "dataroot_gt, dataroot_lq, dataset_enlarge_ratio" in accepted and "type" in accepted
    del opt["gt_sizee"]
    problems = _problems(SingleImageDataset, {"dataroot_lq": str(tmp_path / "nope"), "phase": "tset"})
    assert any("folder" in p and "nope" in p and "does not exist" in p for p in problems)
    assert any("phase 'tset'" in p for p in problems)
    with pytest.raises(DatasetOptionError, match="gt_sise"):
        PairedImageDataset(opt)
    assert _problems(PairedImageDataset, _opt(*_make_pairs(tmp_path, n=1))) == []


def _problems(cls: type, opt: dict) -> list[str]:
    """The start-up check of one dataset section (declaration, then the dataset's own check), each message
    without the section's name."""
    return [p.removeprefix("'d': ") for p in component_problems(cls, opt, "d")]


def _registered_dataset_classes() -> list[type]:
    register_datasets()
    return sorted({DATASET_REGISTRY.get(name) for name in DATASET_REGISTRY.names()}, key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _registered_dataset_classes(), ids=lambda c: c.__name__)
def test_every_dataset_declares_each_key_it_reads_once(cls):
    """One source of defaults: the declaration. Every key the dataset's own code reads (``opt["..."]``) is
    declared, every declared default has the declared type and choice, and the common keys are part of it."""
    declared = cls.options
    assert set(COMMON_OPTIONS) <= set(declared)
    names = {n for k in cls.__mro__ if issubclass(k, BaseDataset) and k is not BaseDataset for n in vars(k)}
    methods = [getattr(inspect.getattr_static(cls, n), "__func__", inspect.getattr_static(cls, n)) for n in names]
    sources = "".join(inspect.getsource(m) for m in methods if inspect.isfunction(m))  # the ones cls really runs
    read = set(re.findall(r"\bopt\[\"(\w+)\"\]", sources))
    assert read <= set(declared), f"{cls.__name__} reads undeclared keys {sorted(read - set(declared))}"
    assert re.search(r"opt\.get\(", sources) is None, "read the bound self.opt[...], never opt.get(key, default)"
    for key, rule in declared.items():
        assert rule.doc, f"{cls.__name__}.options[{key!r}] has no doc"
        assert rule.default is None or type_ok(rule.default, rule.types), (cls.__name__, key, rule.default)
        assert rule.choices is None or rule.default is None or rule.default in rule.choices, (cls.__name__, key)


def test_bound_options_hold_every_declared_default(tmp_path):
    gt_dir, lq_dir = _make_pairs(tmp_path, n=1)
    ds = PairedImageDataset({"dataroot_gt": str(gt_dir), "dataroot_lq": str(lq_dir), "filename_tmpl": "{}x2",
                             "scale": 2, "phase": "val_1", "color": None})
    assert set(ds.opt) == set(PairedImageDataset.options)
    assert (ds.opt["use_hflip"], ds.opt["use_rot"], ds.opt["mod_crop"], ds.opt["color"]) == (True, True, True, "rgb")
    assert ds.opt["io_backend"] == {"type": "disk"} and ds.opt["batch_size_per_gpu"] == 1 and ds.opt["gt_size"] is None
    assert (ds.phase, ds.scale, ds.color, ds.opt["filename_tmpl"]) == ("val", 2, "rgb", "{}x2")
    ds.opt["io_backend"]["type"] = "lmdb"  # a bound default is a copy: the declaration stays as it was
    assert PairedImageDataset.options["io_backend"].default == {"type": "disk"}
    noisy = bind_options({"phase": "train"}, TRAIN_CROP_OPTIONS)
    assert noisy == {"gt_size": None, "use_hflip": False, "use_rot": False}  # TBSN recipe: no augmentation


def test_all_in_one_sources_are_checked_against_their_declaration(tmp_path):
    from restoration.data.all_in_one_dataset import AllInOneDataset

    sources = {"derain": {"kind": "paired", "dataroot_gt": str(tmp_path), "wieght": 2, "lq_prefx": "rain-"},
               "denoise": {"kind": "noise", "dataroot_gt": str(tmp_path), "sigmas": [15], "weight": "3"}}
    problems = _problems(AllInOneDataset, {"sources": sources, "phase": "val"})
    assert problems == [
        "'sources.derain': unknown key 'wieght' (did you mean 'weight'?)",
        "'sources.derain': unknown key 'lq_prefx' (did you mean 'lq_prefix'?)",
        "'sources.derain': accepted keys: dataroot_gt, dataroot_lq, gt_prefix, kind, lq_prefix, sigmas, task, weight",
        "'sources.derain': a paired source needs 'dataroot_lq'",
        "'sources.denoise': 'weight' must be int or float, got str '3'",
    ]


def test_registry_entries():
    register_datasets()
    assert DATASET_REGISTRY.get("PairedImageDataset") is PairedImageDataset
    assert DATASET_REGISTRY.get("SingleImageDataset") is SingleImageDataset
    assert DATASET_REGISTRY.get("DenoisingDataset") is DegradationDataset


def test_single_image_dataset(tmp_path):
    imwrite(tmp_path / "a.png", _rand((10, 12)))  # gray file
    imwrite(tmp_path / "b.png", _rand((8, 6, 3)))
    ds = SingleImageDataset({"dataroot_lq": str(tmp_path), "phase": "test", "color": "rgb"})
    assert len(ds) == 2 and "gt" not in ds[0]
    assert ds[0]["lq"].shape == (3, 10, 12) and ds[1]["lq"].shape == (3, 8, 6)
    ds = SingleImageDataset({"dataroot_lq": str(tmp_path), "phase": "test", "color": "y"})
    y = ds[1]["lq"]
    assert y.shape == (1, 8, 6) and 16 / 255 - 1e-6 <= float(y.min()) and float(y.max()) <= 235 / 255 + 1e-6


# ------------------------------------------------------------------ degradations
def _gt_folder(root, imgs):
    for name, img in imgs.items():
        imwrite(root / name, img)
    return str(root)


def _deg(root, degradation, phase="val", scale=1, **kw):
    return DegradationDataset(dict(type="DegradationDataset", phase=phase, scale=scale, dataroot_gt=root,
                                   degradation=degradation, **kw))


def test_gaussian_noise_statistics_unclipped_and_deterministic(tmp_path):
    root = _gt_folder(tmp_path, {"black.png": np.zeros((64, 64, 3), np.uint8),
                                 "mid.png": np.full((64, 64, 3), 128, np.uint8)})
    ds = _deg(root, {"type": "gaussian_noise", "sigma": 25})
    black, mid = ds[0], ds[1]
    noise = (mid["lq"] - mid["gt"]).numpy() * 255
    assert abs(noise.std() - 25) < 1.0 and abs(noise.mean()) < 1.0
    assert float(black["lq"].min()) < -0.1  # not clipped (the denoising test protocol)
    again = _deg(root, {"type": "gaussian_noise", "sigma": 25})
    assert torch.equal(again[1]["lq"], mid["lq"])  # val/test: the same noise every time
    assert not torch.equal(ds[0]["lq"] - ds[0]["gt"], mid["lq"] - mid["gt"])  # but different per image
    seeded = _deg(root, {"type": "gaussian_noise", "sigma": 25}, seed=7)
    assert not torch.equal(seeded[1]["lq"], mid["lq"])
    clipped = _deg(root, {"type": "gaussian_noise", "sigma": 25, "clip": True})
    assert float(clipped[0]["lq"].min()) == 0.0


def test_noise_sigma_range_and_train_patches(tmp_path):
    root = _gt_folder(tmp_path, {f"{i}.png": np.full((48, 40, 3), 128, np.uint8) for i in range(4)})
    ds = _deg(root, {"type": "gaussian_noise", "sigma_range": [0, 50]})
    stds = [float((ds[i]["lq"] - ds[i]["gt"]).std()) * 255 for i in range(4)]
    assert all(0 <= s <= 52 for s in stds) and len({round(s, 3) for s in stds}) == 4
    train = _deg(root, {"type": "gaussian_noise", "sigma": 15}, phase="train", gt_size=24, in_chans=1)
    random.seed(1)
    a = train[0]
    assert a["gt"].shape == (1, 24, 24) and a["lq"].shape == (1, 24, 24)
    random.seed(1)
    assert torch.equal(train[0]["lq"], a["lq"])
    assert not torch.equal(train[0]["lq"], a["lq"])  # next draw differs


def test_jpeg_is_lossy_and_keeps_colours(tmp_path):
    img = _rand((32, 32, 3)).astype(np.float32)
    img = cv2.GaussianBlur(img, (7, 7), 2).astype(np.uint8)
    img[:8, :8] = [255, 0, 0]  # a red square must stay red (RGB->BGR handled for OpenCV)
    root = _gt_folder(tmp_path, {"x.png": img})
    err = {}
    for q in (10, 90):
        item = _deg(root, {"type": "jpeg", "quality": q})[0]
        lq = tensor2img(item["lq"])
        err[q] = np.abs(lq.astype(float) - img).mean()
        assert lq[2, 2, 0] > 200 and lq[2, 2, 2] < 60
    assert err[10] > 2.0 and err[90] < err[10]
    ref = cv2.imdecode(cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 10])[1], 1)[..., ::-1]
    assert np.array_equal(tensor2img(_deg(root, {"type": "jpeg", "quality": 10})[0]["lq"]), ref)
    q = _deg(root, {"type": "jpeg", "quality_range": [10, 90]})
    assert torch.equal(q[0]["lq"], _deg(root, {"type": "jpeg", "quality_range": [10, 90]})[0]["lq"])


def test_bicubic_and_chains(tmp_path):
    gt = _rand((30, 26, 3))  # not a multiple of 4: mod-cropped to 28x24
    root = _gt_folder(tmp_path, {"g.png": gt})
    item = _deg(root, {"type": "bicubic"}, scale=4)[0]
    assert item["gt"].shape == (3, 28, 24) and item["lq"].shape == (3, 7, 6)
    assert np.array_equal(tensor2img(item["lq"]), imresize(gt[:28, :24], 1 / 4))
    chain = [{"type": "bicubic", "scale": 2}, {"type": "gaussian_noise", "sigma": 5}, {"type": "jpeg", "quality": 50}]
    item = _deg(root, chain, scale=2)[0]
    assert item["lq"].shape == (3, 15, 13) and item["gt"].shape == (3, 30, 26)
    assert float(item["lq"].min()) >= 0.0  # JPEG last: back to uint8 range


def test_degradation_option_problems(tmp_path):
    problems = _problems(DegradationDataset, {
        "dataroot_gt": str(tmp_path), "phase": "val", "scale": 2,
        "degradation": [{"type": "bicubic", "scale": 2}, {"type": "jpg", "quality": 5},
                        {"type": "jpeg", "quality": 0}, {"type": "gaussian_noise", "sigma": 5, "sigma_range": [0, 9]}]})
    text = "\n".join(problems)
    assert "degradation[1]: unknown type 'jpg'" in text
    assert "quality must be an integer in [1, 100], got 0" in text
    assert "give exactly one of sigma or sigma_range" in text
    problems = _problems(DegradationDataset, {"dataroot_gt": str(tmp_path), "phase": "val", "scale": 4,
                                                 "degradation": {"type": "bicubic", "scale": 2}})
    assert problems == ["the bicubic factors of 'degradation' multiply to 2 but scale is 4"]
    problems = _problems(DegradationDataset, {"dataroot_gt": str(tmp_path), "phase": "val",
                                                 "degradation": {"type": "jpeg", "quality": 50, "qualty": 3, "sigma": 1}})
    assert problems == ["'degradation': unknown key 'qualty' (did you mean 'quality'?)",
                        "'degradation': unknown key 'sigma'", "'degradation': accepted keys: quality, quality_range"]


def test_on_the_fly_bicubic_matches_set5_lr(benchmarks):
    ds = _deg(str(benchmarks / "Set5" / "HR"), {"type": "bicubic"}, scale=4)
    stored = PairedImageDataset(_opt(benchmarks / "Set5" / "HR", benchmarks / "Set5" / "LR_bicubic" / "X4",
                                     scale=4, filename_tmpl="{}x4"))
    for i in (2, 4):  # butterfly 256^2, woman 228x344
        assert torch.equal(ds[i]["lq"], stored[i]["lq"])


# ------------------------------------------------------------------ demo dataset
def test_demo_dataset_builder(tmp_path):
    from restoration.data.demo import prepare_demo_dataset

    root = prepare_demo_dataset(tmp_path / "demo", scale=2)
    for split, n in (("train", 5), ("val", 2)):
        hr = sorted((root / split / "HR").glob("*.png"))
        lr = sorted((root / split / "LR_bicubic" / "X2").glob("*x2.png"))
        assert len(hr) == n and len(lr) == n
    hr = imread(root / "val" / "HR" / "chelsea.png")
    assert hr.shape == (288, 432, 3)  # 300x451 cropped to multiples of 24
    assert np.array_equal(imread(root / "val" / "LR_bicubic" / "X2" / "chelseax2.png"), imresize(hr, 0.5))
    lr_file = root / "train" / "LR_bicubic" / "X2" / "astronautx2.png"
    stamp = lr_file.stat().st_mtime_ns
    assert prepare_demo_dataset(root, scale=2) == root and lr_file.stat().st_mtime_ns == stamp  # idempotent
    os.remove(lr_file)  # an incomplete dataset is rebuilt
    prepare_demo_dataset(root, scale=2)
    assert lr_file.is_file()
    val = PairedImageDataset(_opt(root / "val" / "HR", root / "val" / "LR_bicubic" / "X2"))
    assert len(val) == 2 and val[0]["gt"].shape[1:] == (288, 432)
    with pytest.raises(ValueError, match="scale must divide 24"):
        prepare_demo_dataset(root, scale=5)
