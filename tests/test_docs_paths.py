"""Every file path that README.md and docs/ name exists: commands in the docs stay runnable.

Paths are taken from the text by pattern (``options/...yml``, ``scripts/...py``, ``restoration/...py``,
``tests/...``, ``docs/...md``). Placeholders (``<Arch>``, ``...``, ``*``, ``{``) and folders under
``datasets/`` (the user's data, absent here) are not files of the project and are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_PATH = re.compile(r"(?<![\w/.-])((?:options|scripts|docs|restoration|tests)/[A-Za-z0-9_./<>*{}-]+)")
_PLACEHOLDER = re.compile(r"[<>*{}]|\.\.\.")


def _named_paths(doc: Path) -> list[str]:
    found = []
    for match in _PATH.finditer(doc.read_text(encoding="utf-8")):
        path = match.group(1).rstrip(".,:;)")
        if not _PLACEHOLDER.search(path):
            found.append(path)
    return sorted(set(found))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_named_path_exists(doc: Path) -> None:
    missing = [p for p in _named_paths(doc) if not (ROOT / p).exists()]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def test_the_check_finds_paths() -> None:
    """Guard against a pattern that silently matches nothing."""
    paths = _named_paths(ROOT / "README.md")
    assert "options/train/demo/train_SwinIR_light_SRx2_demo.yml" in paths and len(paths) > 20
