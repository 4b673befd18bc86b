"""The typed framework sections and the run context: declared once, filled from the schema, never the user's file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

from restoration.cli.train import main as train_main
from restoration.options.parse import parse_options
from restoration.options.schema import TOP_LEVEL
from restoration.run_context import RunContext
from restoration.settings import (
    SECTION_SPECS,
    LoggerSettings,
    TileSettings,
    TrainSettings,
    ValSettings,
    run_settings,
    settings_from,
)
from restoration.utils.experiment_folder import read_run_id
from tests.helpers import make_sr_pairs, train_options, write_options


@pytest.mark.parametrize("cls", list(SECTION_SPECS), ids=lambda c: c.__name__)
def test_every_settings_class_names_exactly_its_schema_keys(cls: type) -> None:
    assert [f.name for f in dataclasses.fields(cls)] == list(SECTION_SPECS[cls])


def test_the_schema_sections_are_the_settings_declarations() -> None:
    assert TOP_LEVEL["train"].children is SECTION_SPECS[TrainSettings]
    assert TOP_LEVEL["val"].children is SECTION_SPECS[ValSettings]
    assert TOP_LEVEL["logger"].children is SECTION_SPECS[LoggerSettings]
    assert SECTION_SPECS[ValSettings]["tile"].children is SECTION_SPECS[TileSettings]


def test_absent_and_null_keys_take_the_declared_default_and_nested_sections_are_typed() -> None:
    train = settings_from(TrainSettings, {"total_iter": 7, "optim_g": {"type": "Adam"}, "grad_clip": None,
                                          "pd_test": 2})  # a trainer's own key is not a field
    assert (train.total_iter, train.grad_clip, train.accum_iter, train.max_skipped_in_a_row) == (7, 0, 1, 100)
    assert train.tf32 is None and not hasattr(train, "pd_test")
    val = settings_from(ValSettings, {"tile": {"tile_size": 64}})
    assert val.tile == TileSettings(tile_size=64, tile_overlap=32, tile_batch=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        val.save_img = True  # type: ignore[misc]


def test_defaults_are_copied_not_shared() -> None:
    a, b = settings_from(TrainSettings, {}), settings_from(TrainSettings, {})
    a.batch_augment.append("x")
    assert b.batch_augment == [] and SECTION_SPECS[TrainSettings]["batch_augment"].default == []


def test_val_freq_is_zero_without_a_val_section() -> None:
    assert run_settings({"train": {"total_iter": 1}, "logger": {}}).val_freq == 0
    assert run_settings({"train": {"total_iter": 1}, "val": {"val_freq": 2e3}}).val_freq == 2000


def test_run_context_is_frozen_and_claims_its_run_id_by_copy() -> None:
    context = RunContext(rank=1, world_size=2, device=torch.device("cpu"))
    claimed = context.with_run_id("abc")
    assert (context.run_id, claimed.run_id, claimed.distributed, claimed.is_main) == (None, "abc", True, False)


def test_saved_options_carry_no_launcher_state(tmp_path: Path) -> None:
    """rank / world_size / dist, is_train, the option file and the start time belong to the run context:
    neither the schema nor the saved options have them."""
    for key in ("rank", "world_size", "dist", "is_train", "opt_path", "time"):
        assert key not in TOP_LEVEL
    data = make_sr_pairs(tmp_path / "data", n=2, size=16, scale=2)
    opt = train_options(data, "ctx", **{"train.total_iter": 1, "train.warmup_iter": -1, "val": None})
    assert train_main(["-opt", str(write_options(opt, tmp_path / "o.yml")), "--root", str(tmp_path)]) == 0
    saved = yaml.safe_load((tmp_path / "experiments" / "ctx" / "options" / "o.yml").read_text())
    assert not {"rank", "world_size", "dist", "run_id", "is_train", "opt_path", "time"} & set(saved)
    assert saved == yaml.safe_load(yaml.safe_dump(parse_options(str(tmp_path / "o.yml"), is_train=True,
                                                                root=tmp_path)))  # what parsing gives
    state = torch.load(tmp_path / "experiments" / "ctx" / "training_states" / "1.state", weights_only=True)
    assert state["run_id"] == read_run_id(str(tmp_path / "experiments" / "ctx")) is not None
