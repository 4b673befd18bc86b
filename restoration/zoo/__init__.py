"""The official released checkpoints: where to get each, how to check a downloaded file, what it should score.

The manifest is every family's ``zoo.yaml`` (``restoration/archs/<family>/zoo.yaml``, installed with the package);
every entry names a released file, its download URL (or the page that gives one), its sha256 when we know it, its
network (``network_g``: one of the family's published configurations, ``{config: <name>, ...changes}``, or
complete options) and the scores its authors published (:mod:`restoration.zoo.manifest`). Downloading stays the
user's step; a downloaded file is checked with :func:`verify` (:mod:`restoration.zoo.verification`). The command
(``python -m restoration.zoo list|verify``, ``restoration-zoo``) is :mod:`restoration.cli.zoo`.

In code::

    from restoration import zoo
    entry = zoo.get("001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth")
    net = build_network(entry.network_g)
    zoo.published_score(entry.name, "Set5", "psnr")     # 38.42 (None when not published)
"""

from __future__ import annotations

from restoration.errors import ZooError
from restoration.zoo.manifest import ZooEntry, entries, find, get, manifests, published_score
from restoration.zoo.verification import MISMATCH, MISSING, OK, Verification, sha256_of, verify

__all__ = ["ZooEntry", "ZooError", "manifests", "OK", "MISMATCH", "MISSING", "Verification", "entries", "get", "find",
           "verify", "sha256_of", "published_score"]
