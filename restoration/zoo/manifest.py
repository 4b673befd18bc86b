"""The manifest of released checkpoints: every family's ``zoo.yaml`` read into :class:`ZooEntry` records, looked up
by file name, and the scores their authors published.

An entry's fields: ``name``, ``description``, ``url``, ``sha256`` (64 hex digits or null), ``param_key``,
``num_params``, ``network_g`` (``{config: <name>, ...changes}`` naming one of the family's published
configurations, or complete options with ``type``), ``protocol``, ``scores`` (``{dataset: {metric: value}}``),
``notes``. A malformed manifest is a :class:`~restoration.errors.ZooError` naming the file and the entry.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from functools import lru_cache
from typing import Any, Mapping

from restoration.archs import families
from restoration.archs.family import Family
from restoration.errors import ZooError
from restoration.options.yaml_io import load_yaml

__all__ = ["ZooEntry", "manifests", "entries", "find", "get", "published_score"]

_FIELDS = {"name", "description", "url", "sha256", "param_key", "num_params", "network_g", "protocol", "scores",
           "notes"}
#: Other spellings of the benchmark names (test.py's dataset names come from the user's option files).
_DATASET_ALIASES = {"bsds100": "bsd100", "b100": "bsd100", "urban": "urban100", "manga": "manga109"}


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """One released checkpoint.

    Attributes:
        name: The released file name, e.g. ``"HAT_SRx4.pth"`` (unique in the manifest).
        description: One line for listings.
        url: Direct download link, or the page that gives one (HAT: Google Drive / Baidu links in its README).
        sha256: Hex digest of the released file; None when not recorded.
        param_key: ``"params"`` / ``"params_ema"`` entry holding the weights; None for a raw state dict.
        num_params: Parameter count of the official class; None when not recorded.
        network_g: Constructor options (``{"type": ..., ...}``) for :func:`restoration.archs.build.build_network`.
        protocol: How the published scores were measured.
        scores: ``{dataset: {metric: value}}`` as published (metrics ``psnr`` in dB, ``ssim`` in [0, 1]).
        notes: Anything else a user must know ("" if nothing).
    """

    name: str
    description: str
    url: str
    sha256: str | None
    param_key: str | None
    num_params: int | None
    network_g: dict[str, Any]
    protocol: str
    scores: dict[str, dict[str, float]]
    notes: str = ""


def _network_g(raw: Mapping[str, Any], where: str, family: Family | None) -> dict[str, Any]:
    """An entry's constructor options: ``{config: <name>, **changes}`` resolved against the published
    configurations (of ``family``, or of every family for a manifest outside the package), else as written."""
    network_g = dict(raw)
    name = network_g.pop("config", None)
    if name is None:
        if "type" not in network_g:
            raise ZooError(f"{where}: network_g has no 'type' (nor a 'config' of the family)")
        return network_g
    pool = family.configs if family is not None else [c for f in families() for c in f.configs]
    config = next((c for c in pool if c.name == name), None)
    if config is None:
        close = difflib.get_close_matches(str(name), [c.name for c in pool], n=2, cutoff=0.5)
        raise ZooError(f"{where}: network_g names config {name!r}, not a published configuration"
                       + (f" (closest: {'; '.join(close)})" if close else ""))
    return {"type": config.arch, **config.kwargs, **network_g}


def _entry(raw: Mapping[str, Any], where: str, family: Family | None) -> ZooEntry:
    unknown = sorted(set(raw) - _FIELDS)
    missing = sorted({"name", "url", "network_g"} - set(raw))
    if unknown or missing:
        raise ZooError(f"{where}: " + "; ".join(
            ([f"unknown fields {unknown}"] if unknown else []) + ([f"missing fields {missing}"] if missing else [])))
    sha = raw.get("sha256")
    if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", str(sha)):
        raise ZooError(f"{where}: sha256 must be 64 lower-case hex digits or null, got {sha!r}")
    network_g = _network_g(raw["network_g"], where, family)
    scores = {str(ds): {str(m).lower(): float(v) for m, v in (metrics or {}).items()}
              for ds, metrics in (raw.get("scores") or {}).items()}
    return ZooEntry(name=str(raw["name"]), description=str(raw.get("description", "")), url=str(raw["url"]),
                    sha256=sha, param_key=raw.get("param_key"), num_params=raw.get("num_params"),
                    network_g=network_g, protocol=str(raw.get("protocol", "")), scores=scores,
                    notes=str(raw.get("notes", "")))


@lru_cache(maxsize=None)
def _load(path: str, family_name: str | None = None) -> tuple[ZooEntry, ...]:
    family = next((f for f in families() if f.name == family_name), None)
    data = load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise ZooError(f"{path}: expected a mapping with an 'entries' list")
    out: list[ZooEntry] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["entries"]):
        where = f"{path}: entries[{i}]" + (f" ({raw.get('name')})" if isinstance(raw, dict) else "")
        if not isinstance(raw, dict):
            raise ZooError(f"{where}: expected a mapping")
        entry = _entry(raw, where, family)
        if entry.name in seen:
            raise ZooError(f"{where}: name {entry.name!r} appears twice")
        seen.add(entry.name)
        out.append(entry)
    return tuple(out)


def manifests() -> list[tuple[Family, str]]:
    """Every family's manifest file, in the families' order."""
    return [(f, f.zoo_path()) for f in families() if f.zoo]


def entries(manifest: str | os.PathLike[str] | None = None) -> list[ZooEntry]:
    """Every released checkpoint: of every family's manifest (default; names unique across them), or of one
    manifest file."""
    if manifest is not None:
        return list(_load(str(manifest)))
    out: list[ZooEntry] = []
    seen: dict[str, str] = {}
    for family, path in manifests():
        for entry in _load(path, family.name):
            if entry.name in seen:
                raise ZooError(f"{path}: name {entry.name!r} is also in {seen[entry.name]}")
            seen[entry.name] = path
            out.append(entry)
    return out


def find(name: str, manifest: str | os.PathLike[str] | None = None) -> ZooEntry | None:
    """The entry named ``name`` (a file name or a path to one; ``.pth``/``.safetensors`` suffixes ignored), or None."""
    stem = _stem(os.path.basename(str(name)))
    return next((e for e in entries(manifest) if _stem(e.name) == stem), None)


def get(name: str, manifest: str | os.PathLike[str] | None = None) -> ZooEntry:
    """The entry named ``name`` (see :func:`find`).

    Raises:
        ZooError: No such entry; the message lists the closest names.
    """
    entry = find(name, manifest)
    if entry is None:
        names = [e.name for e in entries(manifest)]
        close = difflib.get_close_matches(os.path.basename(str(name)), names, n=3, cutoff=0.4)
        raise ZooError(f"no released checkpoint named {name!r} in the manifest"
                       + (f"; did you mean {', '.join(close)}?" if close else "")
                       + " (`python -m restoration.zoo list` shows all)")
    return entry


def _stem(name: str) -> str:
    for suffix in (".pth", ".pt", ".safetensors"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name



def _norm_dataset(name: str) -> str:
    key = re.sub(r"[^0-9a-z]", "", name.lower())
    return _DATASET_ALIASES.get(key, key)


def published_score(name: str, dataset: str, metric: str,
                    manifest: str | os.PathLike[str] | None = None) -> float | None:
    """The score the authors published for checkpoint ``name`` on ``dataset``, or None when they published none.

    Args:
        name: Manifest name (or a path to the file; see :func:`find`). An unknown name gives None, so a table can
            ask for every row.
        dataset: Benchmark name, case and punctuation ignored (``"Set5"``, ``"set5"``, ``"BSDS100"`` = ``"BSD100"``).
        metric: ``"psnr"`` (dB) or ``"ssim"``; case ignored, a ``_y`` suffix (``psnr_y``) accepted.
    """
    entry = find(name, manifest)
    if entry is None:
        return None
    metric = metric.lower().removesuffix("_y")
    wanted = _norm_dataset(dataset)
    for ds, metrics in entry.scores.items():
        if _norm_dataset(ds) == wanted:
            return metrics.get(metric)
    return None
