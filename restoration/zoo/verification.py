"""Check a downloaded file against its manifest entry: its tensors' keys and shapes, then its sha256."""

from __future__ import annotations

import dataclasses
import hashlib
import os

from restoration.archs.detect import layout_differences
from restoration.utils.weights import WeightsError, read_state_dict
from restoration.zoo.manifest import ZooEntry, get

__all__ = ["OK", "MISMATCH", "MISSING", "Verification", "verify", "sha256_of"]


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
