"""The official released checkpoints: where to get each, how to check a downloaded file, what it should score.

The manifest is every family's ``zoo.yaml`` (``restoration/archs/<family>/zoo.yaml``, installed with the package);
every entry names a released file, its download URL (or the page that gives one), its sha256 when we know it, its
network (``network_g``: one of the family's published configurations, ``{config: <name>, ...changes}``, or
complete options) and the scores its authors published. Downloading stays the user's step::

    python -m restoration.zoo list                      # every entry and where to fetch it
    python -m restoration.zoo verify HAT_SRx4.pth       # tensor shapes (and sha256 when recorded) vs the manifest
    python -m restoration.zoo verify my_copy.pth --name 001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth
    python -m restoration.zoo verify --dir experiments/pretrained_models   # every entry found in a folder

``verify`` prints ``OK`` (every key and shape of the entry's network; sha256 match or "no sha256 recorded"),
``MISMATCH`` (which keys/shapes, or the two hashes) or ``MISSING`` per file, and exits 1 when a file differs or
none could be verified.

In code::

    from restoration import zoo
    entry = zoo.get("001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth")
    net = build_network(entry.network_g)
    zoo.published_score(entry.name, "Set5", "psnr")     # 38.42 (None when not published)
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import os
import re
import sys
from functools import lru_cache
from typing import Any, Mapping, Sequence

from restoration.archs import families
from restoration.archs.detect import layout_differences
from restoration.archs.family import Family
from restoration.errors import RestorationError
from restoration.errors import ZooError
from restoration.options.yaml_io import load_yaml
from restoration.utils.weights import WeightsError, read_state_dict

__all__ = ["ZooEntry", "ZooError", "manifests", "OK", "MISMATCH", "MISSING", "Verification", "entries", "get", "find",
           "verify", "sha256_of", "published_score", "main"]

_FIELDS = {"name", "description", "url", "sha256", "param_key", "num_params", "network_g", "protocol", "scores",
           "notes"}
_METRICS = ("psnr", "ssim")
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


def sha256_of(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in ``chunk``-byte pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


#: The outcomes of :func:`verify`: the file is the entry's; it is not (keys, shapes or hash differ); it is absent.
OK, MISMATCH, MISSING = "OK", "MISMATCH", "MISSING"


@dataclasses.dataclass(frozen=True)
class Verification:
    """What :func:`verify` found for one file.

    Attributes:
        path: The local file.
        entry: Its manifest entry.
        status: :data:`OK`, :data:`MISMATCH` or :data:`MISSING`.
        details: Why, one item per finding (the differing keys/shapes, the two hashes, "no sha256 recorded").
        sha256: The file's hash; None when it is missing.
    """

    path: str
    entry: ZooEntry
    status: str
    details: tuple[str, ...]
    sha256: str | None = None

    def line(self) -> str:
        """``OK path (entry): shapes match (N tensors); no sha256 recorded (file: ...)`` and the like."""
        return f"{self.status:<8} {self.path} ({self.entry.name}): " + "; ".join(self.details)


def verify(path: str | os.PathLike[str], name: str | None = None,
           manifest: str | os.PathLike[str] | None = None) -> Verification:
    """Check a downloaded file against its manifest entry: its tensors, then its hash.

    The entry's network is built on the meta device (no memory, no time, even for HAT-L) and every key and
    shape of the file's state dict (the entry's ``param_key``) must equal the network's, as a detected
    architecture is verified (:func:`restoration.archs.detect.layout_differences`): a file of another size or
    family is a :data:`MISMATCH` whether or not the manifest records a sha256. A recorded sha256 must match too;
    without one, the file's hash is given to be added to the manifest.

    Args:
        path: The local file.
        name: Its manifest name; None = the file's own name.
        manifest: Another manifest file (tests).

    Raises:
        ZooError: The name is not in the manifest (the closest names are listed).
    """
    entry = get(name if name is not None else os.path.basename(str(path)), manifest)
    path = str(path)
    if not os.path.isfile(path):
        return Verification(path, entry, MISSING, (f"no such file; fetch it from {entry.url}",))
    actual = sha256_of(path)
    try:
        state = read_state_dict(path, entry.param_key)
    except WeightsError as exc:
        return Verification(path, entry, MISMATCH, (f"not the released state dict: {exc}",), actual)
    details = [f"{entry.network_g['type']} {what}" for what in layout_differences(entry.network_g, state)]
    if entry.sha256 is not None and actual != entry.sha256:
        details.append(f"sha256 {actual}, manifest {entry.sha256} (a truncated download or another file; "
                       f"fetch it again from {entry.url})")
    if details:
        return Verification(path, entry, MISMATCH, tuple(details), actual)
    shapes = f"shapes match ({len(state)} tensors of {entry.network_g['type']})"
    digest = "sha256 match" if entry.sha256 else f"no sha256 recorded (this file's: {actual})"
    return Verification(path, entry, OK, (shapes, digest), actual)


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


# --------------------------------------------------------------------------------------------- command line
def _list(manifest: str | None) -> int:
    for e in entries(manifest):
        scores = ", ".join(f"{ds} " + "/".join(f"{v:g}" for v in m.values()) for ds, m in e.scores.items())
        print(e.name)
        print(f"    {e.description} [{e.network_g['type']}" + (f", {e.num_params:,} params" if e.num_params else "")
              + "]")
        print(f"    fetch: {e.url}")
        print(f"    sha256: {e.sha256 or 'not recorded'}")
        if scores:
            print(f"    published: {scores}")
        if e.notes:
            print(f"    note: {e.notes}")
    return 0


def _verify(files: Sequence[str], name: str | None, folder: str | None, manifest: str | None) -> int:
    """Print one line per file (per entry with ``--dir``); 0 when at least one file was verified and none failed.

    A file named on the command line that is absent fails; with ``--dir``, absent entries are only listed.
    """
    if name is not None and (len(files) != 1 or folder):
        raise ZooError("--name needs exactly one FILE (and no --dir)")
    if folder is not None and not os.path.isdir(folder):
        raise ZooError(f"--dir {folder} is not a folder")
    checks = [(path, name) for path in files]
    checks += [(os.path.join(folder, e.name), e.name) for e in entries(manifest)] if folder else []
    if not checks:
        raise ZooError("nothing to verify: give FILE names or --dir FOLDER")
    results = [verify(path, n, manifest) for path, n in checks]
    for result in results:
        print(result.line())
    ok = sum(r.status == OK for r in results)
    bad = [r for r in results if r.status == MISMATCH or (r.status == MISSING and r.path in files)]
    print(f"{ok} verified, {sum(r.status == MISMATCH for r in results)} mismatched, "
          f"{sum(r.status == MISSING for r in results)} missing")
    return 1 if bad or not ok else 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m restoration.zoo",
                                description="The official released checkpoints: where to fetch them and checks.")
    p.add_argument("--manifest", default=None, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print every entry and the URL to fetch it from")
    v = sub.add_parser("verify", help="check downloaded files' tensor shapes (and sha256 when recorded) against "
                                      "the manifest; exit 1 when one differs or none could be verified")
    v.add_argument("files", nargs="*", metavar="FILE")
    v.add_argument("--name", default=None, help="the manifest name, when FILE was renamed")
    v.add_argument("--dir", default=None, metavar="FOLDER", help="check every entry's file in FOLDER")
    args = p.parse_args(argv)
    try:
        if args.command == "list":
            return _list(args.manifest)
        return _verify(args.files, args.name, args.dir, args.manifest)
    except RestorationError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
