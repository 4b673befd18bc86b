"""Every option file under ``options/`` passes the start-up check, and the check itself behaves.

One parametrised test replaces the per-family copies that lived in test_swinir.py, test_hat.py,
test_dswinir.py and test_tbsn_pipeline.py: a new file is checked the moment it is added. Family tests
keep only what is specific to them (official parameter counts, schedules).

The second half tests the mechanism those files go through: options bound to the component's
signature (:func:`~restoration.options.validate.bind_arguments`), unknown keys with did-you-mean and the
accepted keys once, keys under an unknown ``type``, and the size contract (:func:`check_size_requirements`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from restoration.archs import register_archs
from restoration.options.validate import bind_arguments, check_component, check_size_requirements
from restoration.registry import ARCH_REGISTRY, LOSS_REGISTRY

ROOT = Path(__file__).resolve().parents[1]
OPTION_FILES = sorted((ROOT / "options").rglob("*.yml"))

register_archs()


def test_option_files_cover_every_family() -> None:
    families = {path.parent.name for path in OPTION_FILES}
    assert {"Bicubic", "DSwinIR", "HAT", "SwinIR", "TBSN", "demo"} <= families
    assert len(OPTION_FILES) >= 70


@pytest.mark.parametrize("path", OPTION_FILES, ids=lambda p: str(p.relative_to(ROOT / "options")))
def test_option_file_is_valid(path: Path, option_file_problems: Callable) -> None:
    """No problem but absent data or weights, including the network's size contract."""
    opt, problems = option_file_problems(path)
    check_size_requirements(opt, problems)
    assert problems == [], f"{path.name}: {problems}"


# ------------------------------------------------------------------------------ the checking mechanism


def test_check_options_receives_the_bound_defaults() -> None:
    """SwinIR's check reads window_size 7 and img_size 64 from the signature, not from repeated defaults."""
    problems: list[str] = []
    check_component(ARCH_REGISTRY, {"type": "SwinIR", "upscale": 1}, "network_g", problems)
    assert problems == ["'network_g': window_size 7 does not divide img_size 64"]
    bound = bind_arguments(ARCH_REGISTRY.get("SwinIR"), {"window_size": 8, "typo": 1})
    assert bound is not None and bound["window_size"] == 8 and bound["img_size"] == 64 and "typo" not in bound
    assert bind_arguments(ARCH_REGISTRY.get("Bicubic"), {}) is None  # upscale is required: nothing complete


def test_unknown_keys_each_with_a_hint_and_the_accepted_keys_once() -> None:
    problems: list[str] = []
    check_component(LOSS_REGISTRY, {"type": "L1Loss", "loss_wieght": 1.0, "reductoin": "mean"}, "train.losses[0]",
                    problems)
    assert problems[:2] == [
        "'train.losses[0]' (L1Loss) has no argument 'loss_wieght' (did you mean 'loss_weight'?)",
        "'train.losses[0]' (L1Loss) has no argument 'reductoin' (did you mean 'reduction'?)",
    ]
    accepted = [p for p in problems if "accepts:" in p]
    assert accepted == ["'train.losses[0]' (L1Loss) accepts: loss_weight, reduction"]


def test_keys_under_an_unknown_type_are_checked_against_the_closest_type() -> None:
    problems: list[str] = []
    result = check_component(ARCH_REGISTRY, {"type": "SwinIRR", "windw_size": 8, "embed_dim": 60}, "network_g",
                             problems)
    assert result is None
    assert "Did you mean 'SwinIR', 'DSwinIR'?" in problems[0]
    assert problems[1] == ("'network_g' (checked against SwinIR, the closest type) has no argument 'windw_size' "
                           "(did you mean 'window_size'?)")
    assert len(problems) == 3 and problems[2].startswith("'network_g' (checked against SwinIR, the closest type) accepts:")


def test_values_are_checked_even_beside_an_unknown_key() -> None:
    problems: list[str] = []
    check_component(ARCH_REGISTRY, {"type": "HAT", "window_size": 16, "upscale": 5, "colour": 1}, "network_g", problems)
    assert "'network_g' (HAT) has no argument 'colour'" in problems[0]
    assert "'network_g': upscale must be 2^n or 3, got 5" in problems


def _size_problems(opt: dict) -> list[str]:
    problems: list[str] = []
    check_size_requirements(opt, problems)
    return problems


def test_size_requirements_against_tile_crop_and_scale() -> None:
    dswinir = {"type": "DSwinIR", "dim": 6, "heads": [3, 3, 3, 3]}  # min_size 48
    assert _size_problems({"network_g": dswinir, "scale": 1, "val": {"tile": {"tile_size": 48}},
                           "datasets": {"train": {"gt_size": 48}}}) == []
    assert _size_problems({"network_g": dswinir, "val": {"tile": {"tile_size": 47}},
                           "datasets": {"train": {"gt_size": 40}}}) == [
        "'val.tile.tile_size' 47 is smaller than network_g (DSwinIR)'s minimum input side 48; use at least 48",
        "'datasets.train.gt_size' 40 gives LQ crops of 40 pixels, smaller than network_g (DSwinIR)'s minimum "
        "input side 48",
    ]
    hat = {"type": "HAT", "window_size": 16, "upscale": 4}
    assert _size_problems({"network_g": hat, "scale": 2, "datasets": {"train": {"gt_size": 32}}}) == [
        "'scale' is 2 but network_g (HAT) upscales by 4",
        "'datasets.train.gt_size' 32 gives LQ crops of 8 pixels, smaller than network_g (HAT)'s minimum input side 16",
    ]
    swinir_ape = {"type": "SwinIR", "window_size": 8, "upscale": 1, "ape": True}
    assert _size_problems({"network_g": swinir_ape, "val": {"tile": {"tile_size": 64}}}) == [
        "'val.tile': network_g (SwinIR) cannot be tiled with this configuration"]
    # an invalid network is reported by check_component, not here
    assert _size_problems({"network_g": {"type": "HAT", "window_size": 7}, "val": {"tile": {"tile_size": 1}}}) == []


def test_training_crops_and_progressive_stages_meet_the_network_size_rules() -> None:
    """Every crop the network is trained on, the loader's and each progressive stage's, is checked before
    anything starts: Restormer (no padding inside) needs sides that are multiples of 8; a trainer that reshapes
    its crops first (TBSN's pixel-shuffle sub-images) is held to the minimum side only."""
    restormer = {"type": "Restormer", "dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                 "heads": [1, 2, 2, 4]}
    good = {"gt_size": 384, "gt_sizes": [128, 160, 384], "mini_batch_sizes": [4, 2, 1], "iters": [1, 1, 1]}
    assert _size_problems({"network_g": restormer, "scale": 1, "datasets": {"train": good}}) == []
    bad = {**good, "gt_size": 100, "gt_sizes": [4, 100, 96]}
    assert _size_problems({"network_g": restormer, "scale": 1, "datasets": {"train": bad}}) == [
        "'datasets.train.gt_size' 100 gives LQ crops of 100 pixels, not a multiple of 8, which network_g "
        "(Restormer) needs (training crops are not padded)",
        "'datasets.train.gt_sizes' stage 1 4 gives LQ crops of 4 pixels, smaller than network_g (Restormer)'s "
        "minimum input side 8",
        "'datasets.train.gt_sizes' stage 2 100 gives LQ crops of 100 pixels, not a multiple of 8, which network_g "
        "(Restormer) needs (training crops are not padded)",
    ]
    tbsn = {"type": "TBSN"}  # size multiple 32; TBSNModel feeds pixel-shuffle sub-images of its crops
    assert _size_problems({"network_g": tbsn, "model_type": "TBSNModel", "datasets": {"train": {"gt_size": 150}}}) == []
    assert _size_problems({"network_g": tbsn, "model_type": "SRModel", "datasets": {"train": {"gt_size": 150}}}) == [
        "'datasets.train.gt_size' 150 gives LQ crops of 150 pixels, not a multiple of 32, which network_g (TBSN) "
        "needs (training crops are not padded)"]
