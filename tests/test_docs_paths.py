"""Every file path that README.md, docs/ and the code's docstrings and comments name exists: commands stay runnable.

Paths are taken from the text by pattern (``options/...yml``, ``scripts/...py``, ``restoration/...py``,
``tests/...``, ``docs/...md``); in the Python files of ``restoration/``, ``scripts/`` and the root
(``train.py``, ``test.py``) only paths ending in ``.yml``/``.yaml``/``.py``/``.md`` count. A bare option-file
name (``train_SwinIR_SRx2_DIV2K.yml``) must be a file under ``options/``. Placeholders (``<Arch>``, ``...``,
``*``, ``{``) and folders under ``datasets/`` (the user's data, absent here) are not files of the project and
are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = sorted([*ROOT.glob("*.py"), *(ROOT / "restoration").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")])
_PATH = re.compile(r"(?<![\w/.-])((?:options|scripts|docs|restoration|tests)/[A-Za-z0-9_./<>*{}-]+)")
_SOURCE_PATH = re.compile(r"(?<![\w/.-])((?:options|scripts|docs|restoration|tests)/[A-Za-z0-9_./<>*{}-]+"
                          r"\.(?:yml|yaml|py|md))(?![\w/-])")
_OPTION_FILE = re.compile(r"(?<![\w/.<>{}*-])((?:train|test)_[A-Za-z0-9_.-]+\.yml)\b")
_PLACEHOLDER = re.compile(r"[<>*{}]|\.\.\.")

#: Paths named on purpose although they are not this repository's files, or bad paths in files whose owners must
#: fix them. Each entry is ``(file, path)``; an entry that no longer occurs fails the test, so the list only shrinks.
ALLOWED = {
    # Real-ESRGAN's own option file (upstream repository), cited as the source of the defaults
    ("restoration/data/degradations/realesrgan.py", "options/train_realesrgan_x4plus.yml"),
}
_OPTION_NAMES = {p.name for p in (ROOT / "options").rglob("*.yml")}


def _named_paths(text: str, pattern: re.Pattern[str] = _PATH) -> list[str]:
    found = []
    for match in pattern.finditer(text):
        path = match.group(1).rstrip(".,:;)")
        if not _PLACEHOLDER.search(path):
            found.append(path)
    return sorted(set(found))


def _bad_paths(file: Path, pattern: re.Pattern[str]) -> list[str]:
    text = file.read_text(encoding="utf-8")
    missing = [p for p in _named_paths(text, pattern) if not (ROOT / p).exists()]
    missing += [n for n in _named_paths(text, _OPTION_FILE) if n not in _OPTION_NAMES]
    return missing


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_named_path_exists(doc: Path) -> None:
    missing = _bad_paths(doc, _PATH)
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def test_every_path_named_in_the_code_exists() -> None:
    found = {(f.relative_to(ROOT).as_posix(), p) for f in SOURCES for p in _bad_paths(f, _SOURCE_PATH)}
    assert not found - ALLOWED, f"docstrings/comments name paths that do not exist: {sorted(found - ALLOWED)}"
    assert not ALLOWED - found, f"fixed (remove from ALLOWED): {sorted(ALLOWED - found)}"


def test_the_check_finds_paths() -> None:
    """Guard against patterns that silently match nothing."""
    paths = _named_paths((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "options/train/demo/train_SwinIR_light_SRx2_demo.yml" in paths and len(paths) > 20
    assert _named_paths("see options/train/HAT/x.yml, scripts/a.py; and restoration/ alone", _SOURCE_PATH) == [
        "options/train/HAT/x.yml", "scripts/a.py"]
    assert _named_paths("python train.py -opt train_SwinIR_SRx2_scratch.yml", _OPTION_FILE) == [
        "train_SwinIR_SRx2_scratch.yml"]
    assert len(SOURCES) > 50 and ROOT / "train.py" in SOURCES
