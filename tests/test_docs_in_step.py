"""Generated documentation stays in step with its generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_options_reference_is_generated_from_the_schema() -> None:
    generated = subprocess.run([sys.executable, str(ROOT / "scripts" / "options_reference.py")], capture_output=True,
                               text=True, check=True, cwd=ROOT).stdout
    assert generated == (ROOT / "docs" / "options.md").read_text(), (
        "docs/options.md is out of date: run `python scripts/options_reference.py > docs/options.md`")
