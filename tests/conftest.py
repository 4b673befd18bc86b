"""Shared pytest fixtures: locating the optional benchmark folder, seeding, architecture-test helpers."""

from __future__ import annotations

import functools
import io
import lzma
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import pytest
import torch

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


DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def load_xz_fixture() -> Callable[[str], Any]:
    """``load(name)``: the object ``torch.save``-d, xz-compressed, as ``tests/data/<name>`` (official outputs)."""

    def load(name: str) -> Any:
        return torch.load(io.BytesIO(lzma.decompress((DATA / name).read_bytes())), weights_only=True)

    return load


@pytest.fixture
def write_checkpoint(tmp_path: Path) -> Callable[..., str]:
    """``write(params, param_key='params', name='official.pth')``: save a float32 checkpoint, return its path.

    Fixtures store official weights in float16 (exactly, on a coarse grid); networks load float32.
    """

    def write(params: Mapping[str, torch.Tensor], param_key: str = "params", name: str = "official.pth") -> str:
        sd = {k: (v.float() if v.is_floating_point() else v) for k, v in params.items()}
        path = tmp_path / name
        torch.save({param_key: sd}, path)
        return str(path)

    return write


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@functools.lru_cache(maxsize=None)
def _meta_param_count(items: tuple) -> int:
    from restoration import build_network

    with torch.device("meta"):  # counting needs shapes only
        net = build_network({k: list(v) if isinstance(v, tuple) else v for k, v in items})
    return sum(p.numel() for p in net.parameters())


@pytest.fixture(scope="session")
def meta_param_count() -> Callable[[Mapping[str, Any]], int]:
    """``count(network_g)``: parameters of ``build_network(network_g)`` built on the meta device (cached per config)."""
    return lambda network_g: _meta_param_count(tuple(sorted((k, _freeze(v)) for k, v in network_g.items())))


@pytest.fixture(scope="session")
def option_file_problems() -> Callable[[Path], tuple[dict, list[str]]]:
    """``check(path)``: the option dict of a YAML file and its start-up problems, bar absent data and weights."""
    from restoration.options.validate import validate_options
    from restoration.options.yaml_io import load_yaml

    def check(path: Path) -> tuple[dict, list[str]]:
        opt = load_yaml(path)
        problems = validate_options(opt, is_train=path.parent.parent.name == "train")
        return opt, [p for p in problems if "does not exist" not in p and "file not found" not in p]

    return check


@pytest.fixture
def one_torch_thread() -> Any:
    """Run the test with one intra-op torch thread, then restore the count. For tests on tiny tensors,
    where extra threads only add synchronisation (10x+ slower on a busy 2-core box); use it module-wide
    with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
