"""Launchers: rank/world size from torchrun's or slurm's environment; rank-0-first option parsing."""

from __future__ import annotations

import pytest

from restoration.utils import dist


def test_slurm_environment_is_translated(monkeypatch) -> None:
    calls = {}
    monkeypatch.setattr(dist.torch_dist, "init_process_group", lambda backend: calls.setdefault("backend", backend))
    monkeypatch.setattr(dist.subprocess, "getoutput", lambda cmd: "node-a" if "node-[a-b]" in cmd else "?")
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_NODELIST", "node-[a-b]")
    dist.init_dist("slurm", backend="gloo", port=29123)
    import os

    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]) == (
        "3", "4", "node-a", "29123")
    assert calls["backend"] == "gloo"


def test_unknown_launcher() -> None:
    with pytest.raises(ValueError, match="unknown launcher 'mpi'"):
        dist.init_dist("mpi")


def test_single_process_helpers() -> None:
    assert dist.get_dist_info() == (0, 1)
    assert dist.all_gather_objects({"a": 1}) == [{"a": 1}]
    assert dist.any_across_ranks(True) is True and dist.any_across_ranks(False) is False
