"""Every command line of README.md parses with the command's own argument parser: its flags exist and take the
values the README gives them. (What the commands then do is tested where each command is: the quickstart in
tests/test_quickstart.py, training in tests/test_trainer.py and tests/test_resume.py, test.py in
tests/test_test_script.py, infer in tests/test_infer.py, export in tests/test_export.py, zoo in tests/test_zoo.py.)
The README stays a front page: at most ~150 lines."""

from __future__ import annotations

import argparse
import re
import shlex
from typing import Callable

import pytest

from restoration.cli import export, infer, test, train, zoo
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")

#: how a README line starts -> the parser of that command
PARSERS: dict[tuple[str, ...], Callable[[], argparse.ArgumentParser]] = {
    ("python", "train.py"): train.build_arg_parser,
    ("python", "test.py"): test.build_arg_parser,
    ("restoration-train",): train.build_arg_parser,
    ("restoration-test",): test.build_arg_parser,
    ("restoration-infer",): infer.build_arg_parser,
    ("python", "-m", "restoration.infer"): infer.build_arg_parser,
    ("restoration-export",): export.build_arg_parser,
    ("python", "-m", "restoration.export"): export.build_arg_parser,
    ("restoration-zoo",): zoo.build_arg_parser,
    ("python", "-m", "restoration.zoo"): zoo.build_arg_parser,
}
#: lines that set up the machine or run the suite, not a command of ours
NOT_OURS = ("python3.11 -m venv", "pip install", "python -m pytest", ". .venv")


def _command_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if not line or line.startswith("#"):
                continue
            lines.extend(part.strip() for part in line.split("&&"))
    return [line for line in lines if not line.startswith(NOT_OURS)]


def _parser_and_args(line: str) -> tuple[Callable[[], argparse.ArgumentParser], list[str]]:
    words = shlex.split(line.replace("...", "options/placeholder.yml"))
    if words[0] == "torchrun":  # the launcher's own flags come before the script
        words = ["python", *words[next(i for i, w in enumerate(words) if w.endswith(".py")):]]
    for prefix, parser in PARSERS.items():
        if tuple(words[:len(prefix)]) == prefix:
            return parser, words[len(prefix):]
    raise AssertionError(f"README command {line!r} is none of the commands this test knows: add it to PARSERS")


def test_the_readme_has_the_commands_and_stays_a_front_page() -> None:
    lines = _command_lines()
    programs = {_parser_and_args(line)[0] for line in lines}
    assert programs == {train.build_arg_parser, test.build_arg_parser, infer.build_arg_parser,
                        export.build_arg_parser, zoo.build_arg_parser}
    assert len(README.splitlines()) <= 150


@pytest.mark.parametrize("line", _command_lines())
def test_every_readme_command_line_parses(line: str) -> None:
    build, args = _parser_and_args(line)
    try:
        build().parse_args(args)
    except SystemExit as exc:
        raise AssertionError(f"README's {line!r} is refused by its parser (exit {exc.code})") from None
