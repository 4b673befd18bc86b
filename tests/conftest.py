"""Shared pytest fixtures: locating the optional benchmark folder, seeding."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def benchmarks_dir() -> Path:
    """``$RESTORATION_BENCHMARKS`` or ``../shared/data/benchmarks`` next to the project root."""
    return Path(os.environ.get("RESTORATION_BENCHMARKS", ROOT.parent / "shared" / "data" / "benchmarks"))


@pytest.fixture
def benchmarks() -> Path:
    """The benchmark folder (Set5, Set12, ...); the test is skipped when it is absent."""
    path = benchmarks_dir()
    if not (path / "Set5").is_dir():
        pytest.skip(f"benchmark images not found at {path} (set RESTORATION_BENCHMARKS)")
    return path
