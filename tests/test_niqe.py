"""NIQE (restoration/metrics/niqe.py): the AGGD fit, the distance, flat areas, errors, the option check.

The pristine model is data we do not ship; tests that need the real one (BasicSR's niqe_pris_params.npz,
``$RESTORATION_NIQE_PARAMS`` or experiments/pretrained_models) skip without it. The comparison with the MATLAB
release's published values (TID2013 images we cannot ship) is in docs/realsr.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import skimage.data

from restoration.metrics.niqe import FLAT, NIQEParamsError, _aggd, calculate_niqe, niqe, niqe_features
from restoration.utils.matlab_fspecial import matlab_gaussian

ROOT = Path(__file__).resolve().parents[1]


def _picture() -> np.ndarray:
    return skimage.data.astronaut()[:288, 96:384]  # 288 x 288: nine 96 x 96 blocks


def _model_of(img: np.ndarray, path: Path) -> Path:
    """A 'pristine model' fitted to one image's own blocks (its NIQE against it is 0); the identity added to
    the covariance keeps it well conditioned (nine blocks cannot span 36 dimensions)."""
    from restoration.metrics.niqe import _gray_plane

    feats = niqe_features(_gray_plane(img, 0, "y"))
    np.savez(path, mu_pris_param=feats.mean(0)[None], cov_pris_param=np.cov(feats, rowvar=False) + np.eye(36))
    return path


@pytest.mark.parametrize("shape", [1.0, 2.0, 0.6])
def test_aggd_fit_recovers_a_generalized_gaussian(shape: float) -> None:
    x = scipy.stats.gennorm.rvs(shape, scale=0.7, size=(3, 200_000), random_state=np.random.default_rng(0))
    alpha, left, right = _aggd(x)
    assert alpha == pytest.approx([shape] * 3, rel=0.02)
    assert left == pytest.approx([0.7] * 3, rel=0.02) and right == pytest.approx([0.7] * 3, rel=0.02)
    # asymmetric: twice the spread on the right
    y = np.where(x > 0, 2 * x, x)
    _, left, right = _aggd(y)
    assert right / left == pytest.approx([2.0] * 3, rel=0.02)


def test_gaussian_window_is_matlab_fspecial() -> None:
    w = matlab_gaussian(7, 7 / 6)  # NIQE's window
    assert w.shape == (7, 7) and w.sum() == pytest.approx(1.0, abs=1e-15)
    # fspecial('gaussian', 7, 7/6): the centre over an edge-centre tap is exp(9 / (2 (7/6)^2))
    assert w[3, 3] / w[0, 3] == pytest.approx(np.exp(9 / (2 * (7 / 6) ** 2)), rel=1e-12)
    assert np.array_equal(w, w.T) and np.array_equal(w, w[::-1])


def test_distance_is_zero_to_the_own_model_and_grows_with_distortion(tmp_path: Path) -> None:
    img = _picture()
    model = _model_of(img, tmp_path / "own.npz")
    assert calculate_niqe(img, niqe_params_path=str(model)) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    noisy = [np.clip(img + rng.normal(0, s, img.shape), 0, 255).astype(np.uint8) for s in (5, 20)]
    scores = [calculate_niqe(x, niqe_params_path=str(model)) for x in noisy]
    assert 0 < scores[0] < scores[1]
    # img2 is ignored (no reference), and the metric is marked so for test sets without ground truth
    assert calculate_niqe(img, img2=noisy[1], niqe_params_path=str(model)) == pytest.approx(0.0, abs=1e-6)
    assert calculate_niqe.no_reference is True


def test_flat_areas_do_not_depend_on_rounding_residue(tmp_path: Path) -> None:
    img = _picture().copy()
    img[:150, :150] = 128  # a flat square: exact-zero MSCN coefficients
    img[200:, 200:] = 255  # saturated
    model = _model_of(_picture(), tmp_path / "m.npz")
    from restoration.metrics.niqe import _gray_plane, load_niqe_params

    plane = _gray_plane(img, 0, "y")
    mu, cov = load_niqe_params(str(model))
    base = niqe(plane, mu, cov)
    # A residue far below one grey level in the flat parts (what another filter's summation order leaves
    # there) changes nothing; counted by sign it would move the score by several percent:
    rng = np.random.default_rng(1)
    flat = np.zeros(plane.shape, bool)
    flat[:150, :150] = flat[200:, 200:] = True
    for _ in range(3):
        assert niqe(plane + flat * rng.normal(0, 1e-11, plane.shape), mu, cov) == pytest.approx(base, rel=1e-9)
    assert FLAT == 1e-8


def test_errors_name_the_problem(tmp_path: Path) -> None:
    img = _picture()
    with pytest.raises(NIQEParamsError, match="calculate_niqe needs 'niqe_params_path'"):
        calculate_niqe(img)
    with pytest.raises(NIQEParamsError, match=r"file not found: '.*missing\.npz'.*niqe_pris_params\.npz"):
        calculate_niqe(img, niqe_params_path=str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(NIQEParamsError, match=r"holds \['weights'\]; expected mu_pris_param \+ cov_pris_param"):
        calculate_niqe(img, niqe_params_path=str(tmp_path / "other.npz"))
    np.savez(tmp_path / "short.npz", mu_pris_param=np.zeros((1, 18)), cov_pris_param=np.eye(18))
    with pytest.raises(NIQEParamsError, match=r"mu \(18,\) and cov \(18, 18\); expected \(36,\) and \(36, 36\)"):
        calculate_niqe(img, niqe_params_path=str(tmp_path / "short.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(NIQEParamsError, match="cannot read the NIQE model"):
        calculate_niqe(img, niqe_params_path=str(tmp_path / "junk.npz"))
    model = str(_model_of(img, tmp_path / "m.npz"))
    with pytest.raises(ValueError, match="at least two whole 96x96 blocks .* got 96x150"):
        calculate_niqe(img[:96, :150], niqe_params_path=model)
    with pytest.raises(ValueError, match="fewer than two blocks have both signs"):
        calculate_niqe(np.full((192, 192, 3), 77, np.uint8), niqe_params_path=model)
    with pytest.raises(ValueError, match="convert_to must be 'y' or 'gray'"):
        calculate_niqe(img, niqe_params_path=model, convert_to="lab")


def test_the_option_check_reports_the_missing_model(tmp_path: Path) -> None:
    from restoration.metrics import register_metrics
    from restoration.options.validate import check_component
    from restoration.registry import METRIC_REGISTRY

    register_metrics()
    problems: list[str] = []
    check_component(METRIC_REGISTRY, {"type": "calculate_niqe", "niqe_params_path": str(tmp_path / "no.npz")},
                    "val.metrics.niqe", problems, call_args=("img", "img2"))
    check_component(METRIC_REGISTRY, {"type": "calculate_niqe", "convert_to": "rgb"}, "val.metrics.niqe2",
                    problems, call_args=("img", "img2"))
    assert len(problems) == 3, problems
    assert problems[0].startswith(f"'val.metrics.niqe': NIQE niqe_params_path file not found: '{tmp_path / 'no.npz'}'")
    assert problems[1].startswith("'val.metrics.niqe2': NIQE needs 'niqe_params_path'")
    assert problems[2] == "'val.metrics.niqe2': convert_to must be 'y' or 'gray', got 'rgb'"


def _real_model() -> Path:
    env = os.environ.get("RESTORATION_NIQE_PARAMS")
    path = Path(env) if env else ROOT / "experiments" / "pretrained_models" / "niqe_pris_params.npz"
    if not path.is_file():
        pytest.skip(f"NIQE pristine model not found at {path} (docs/realsr.md; set RESTORATION_NIQE_PARAMS)")
    return path


# NIQE of astronaut[:288, 96:384] with BasicSR's niqe_pris_params.npz (computed here, float64).
_PINNED = {"y": 4.783786, "gray": 4.782937}


@pytest.mark.parametrize("convert_to", ["y", "gray"])
def test_pristine_model_gives_the_pinned_value(convert_to: str) -> None:
    model = _real_model()
    got = calculate_niqe(_picture(), niqe_params_path=str(model), convert_to=convert_to)
    assert got == pytest.approx(_PINNED[convert_to], abs=1e-4)
    blurred = calculate_niqe(_picture()[::2, ::2].repeat(2, 0).repeat(2, 1), niqe_params_path=str(model))
    assert blurred > got + 1  # pixel doubling is far from natural statistics


def test_test_script_scores_niqe_on_a_folder_without_ground_truth(tmp_path: Path, capsys) -> None:
    """RealSRSet-like use: test.py on LQ photographs only reports NIQE per image and on average; a missing
    model file stops it before anything runs, naming the file."""
    import json

    import yaml

    from restoration.cli.test import main as run_test_script
    from tests.helpers import make_sr_pairs

    _, lr = make_sr_pairs(tmp_path / "data", n=2, size=192, scale=2)
    model = _model_of(_picture(), tmp_path / "m.npz")
    opt = {"name": "nogt_niqe", "model_type": "SRModel", "scale": 2, "num_gpu": 0,
           "datasets": {"test_1": {"name": "photos", "type": "SingleImageDataset", "dataroot_lq": str(lr)}},
           "network_g": {"type": "Bicubic", "upscale": 2},
           "val": {"pbar": False, "metrics": {"niqe": {"type": "calculate_niqe", "better": "lower",
                                                      "niqe_params_path": str(model)}}}}
    cfg = tmp_path / "nogt.yml"
    cfg.write_text(yaml.safe_dump(opt))
    assert run_test_script(["-opt", str(cfg), "--root", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results" / "nogt_niqe" / "metrics.json").read_text())["photos"]
    per_image = [scores["niqe"] for scores in result["per_image"].values()]
    assert len(per_image) == 2 and all(v > 0 for v in per_image)
    assert result["niqe"] == pytest.approx(sum(per_image) / 2)
    capsys.readouterr()
    assert run_test_script(["-opt", str(cfg), "--root", str(tmp_path), "--force_yml",
                            f"val.metrics.niqe.niqe_params_path={tmp_path / 'gone.npz'}"]) == 2
    assert f"NIQE niqe_params_path file not found: '{tmp_path / 'gone.npz'}'" in capsys.readouterr().err
