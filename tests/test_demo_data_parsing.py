"""Parsing builds no data: the commands decide to build the demo dataset a file's ``demo_data`` names.

``parse_options`` alone reports the missing demo folders and writes nothing; ``train.py`` / ``test.py`` pass
``prepare_data`` (the real builder), which parsing calls only when that dataset is the one thing missing.
The real build and the whole quickstart are ``tests/test_quickstart.py``'s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from restoration.errors import OptionsError
from restoration.options.parse import parse_options

ROOT = Path(__file__).resolve().parents[1]
TRAIN_FILE = ROOT / "options" / "train" / "demo" / "train_SwinIR_light_SRx2_demo.yml"


def _stand_in(calls: list[tuple[str, int]]):
    """A builder that records its call and makes the folders the demo file names (no images: fast)."""

    def build(root: str, scale: int) -> None:
        calls.append((root, scale))
        for split in ("train", "val"):
            (Path(root) / split / "HR").mkdir(parents=True)
            (Path(root) / split / "LR_bicubic" / f"X{scale}").mkdir(parents=True)

    return build


def test_parsing_builds_the_demo_data_only_through_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # demo_data.root is relative to the current folder
    with pytest.raises(OptionsError, match="datasets/demo/train/HR"):
        parse_options(str(TRAIN_FILE), is_train=True, root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing built, nothing written

    calls: list[tuple[str, int]] = []
    opt = parse_options(str(TRAIN_FILE), is_train=True, root=tmp_path, prepare_data=_stand_in(calls))
    assert calls == [("datasets/demo", 2)]
    assert opt["datasets"]["train"]["dataroot_gt"] == "datasets/demo/train/HR"
    parse_options(str(TRAIN_FILE), is_train=True, root=tmp_path, prepare_data=_stand_in(calls))
    assert calls == [("datasets/demo", 2)]  # present: not built again


def test_other_problems_are_reported_before_anything_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    calls: list[tuple[str, int]] = []
    with pytest.raises(OptionsError, match="train.total_iter"):
        parse_options(str(TRAIN_FILE), is_train=True, root=tmp_path, overrides=["train.total_iter=abc"],
                      prepare_data=_stand_in(calls))
    assert calls == [] and list(tmp_path.iterdir()) == []
