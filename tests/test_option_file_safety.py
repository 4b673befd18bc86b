"""Option files and overrides that could hang, exhaust memory or run code are one options error (exit 2).

An alias bomb (a 1 KB file whose ``*aliases`` expand a billion times) used to take a minute and gigabytes, then
die of MemoryError while an error message formatted the expanded value; a ``--force_yml`` value that is not
YAML, or carries a ``!!python`` tag, used to end in a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from restoration.options.yaml_io import MAX_EXPANDED_NODES, YAMLLimitError, load_yaml, parse_yaml_value
from restoration.cli.train import main as train_main
from tests.helpers import make_sr_pairs, train_options, write_options


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("data"), n=2, size=16, scale=2)


def _alias_bomb(path: Path, levels: int) -> Path:
    """``name`` is 9**levels strings built from ``levels`` lines of nine aliases each (a few hundred bytes)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    lines.append(f"name: *a{levels - 1}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path, capsys) -> None:
    # 9**6 = 531,441 strings: small enough that the old code finished (with a 4 MB message), past the bound
    cfg = _alias_bomb(tmp_path / "bomb.yml", levels=6)
    assert cfg.stat().st_size < 1000
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}: its aliases (*name) expand to more than {MAX_EXPANDED_NODES:,} values" in err
    assert len(err) < 1000 and "Traceback" not in err
    with pytest.raises(YAMLLimitError, match="bomb.yml"):  # the billion-laughs size: refused as fast
        load_yaml(_alias_bomb(tmp_path / "bomb.yml", levels=9))
    with pytest.raises(YAMLLimitError, match="recursive"):
        parse_yaml_value("&a [1, *a]")
    assert load_yaml(_alias_bomb(tmp_path / "small.yml", levels=3))["name"] == [[["lol"] * 9] * 9] * 9  # 729: fine


def test_a_long_value_is_quoted_short_in_messages(data, tmp_path: Path, capsys) -> None:
    opt = train_options(data, "long")
    opt["name"] = list(range(5000))  # a wrong type whose repr is 30 KB
    assert train_main(["-opt", str(write_options(opt, tmp_path / "l.yml")), "--root", str(tmp_path)]) == 2
    line = next(l for l in capsys.readouterr().err.splitlines() if "'name' must be" in l)
    assert "'name' must be str, got list [0, 1, 2, 3, 4, 5, 6, 7, ...]" in line and len(line) < 200


def test_force_yml_values_that_are_not_plain_yaml_are_an_options_error(data, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "ran"
    cfg = write_options(train_options(data, "over"), tmp_path / "o.yml")
    code = train_main(["-opt", str(cfg), "--root", str(tmp_path), "--force_yml", "train.total_iter=[1,",
                       f'logger.x=!!python/object/apply:os.system ["touch {marker}"]'])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and not marker.exists()
    assert ("override 'train.total_iter=[1,': the value is not plain YAML: while parsing a flow node; expected the "
            "node content, but found '<stream end>' (line 1, column 4)") in err
    assert "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'" in err
    assert not (tmp_path / "experiments").exists()
