"""Which of our families a checkpoint nobody recognises is closest to, and which keys kept it out.

When no family's detector accepts a state dict (:func:`restoration.archs.detect.detect_architecture`), the user
is told one thing: the family whose key layout shares the most with the checkpoint's, and the keys that did not
match, both ways. Layouts are compared as key *patterns* (block indices replaced by ``#``:
``body.3.rdb1.conv1.weight`` -> ``body.#.rdb1.conv1.weight``), so the depth of a network does not matter; each
family's patterns come from its tiny test configurations (:attr:`~restoration.archs.family.Family.tiny`), built
on the meta device (no memory, a fraction of a second for all of them).
"""

from __future__ import annotations

import dataclasses
import re

import torch

from restoration.archs.build import build_network
from restoration.archs.family import Family
from restoration.archs.layout import StateDict

__all__ = ["ClosestFamily", "closest_family", "key_pattern"]

_INDEX = re.compile(r"(?<=\.)\d+(?=\.)|^\d+(?=\.)")


def key_pattern(key: str) -> str:
    """``key`` with every block index replaced by ``#`` (``body.3.rdb1.conv1.weight`` -> ``body.#.rdb1.conv1.weight``)."""
    return _INDEX.sub("#", key)


def _patterns(keys: list[str]) -> dict[str, str]:
    """Pattern -> the first key of that pattern (what a message shows)."""
    out: dict[str, str] = {}
    for key in keys:
        out.setdefault(key_pattern(key), key)
    return out


@dataclasses.dataclass(frozen=True)
class ClosestFamily:
    """The family closest to a checkpoint and how the two key layouts differ.

    Attributes:
        family: The family's name (``"RRDBNet"``).
        arch: Its network whose layout was closest (``"RRDBNet"``; ``"MSDeformableNAIR"`` in DSwinIR's family).
        shared: Key patterns both have.
        total: Key patterns either has.
        unmatched: Checkpoint keys (one per pattern) the family's network has no counterpart for.
        missing: The family network's keys (one per pattern, from its tiny configuration) the checkpoint lacks.
    """

    family: str
    arch: str
    shared: int
    total: int
    unmatched: tuple[str, ...]
    missing: tuple[str, ...]

    def describe(self, limit: int = 4) -> str:
        """``"closest: RRDBNet (3 of 45 key patterns shared); keys it does not have (2): a.weight, b.bias;
        its keys not in the checkpoint (40): conv_first.weight, ..."``."""

        def listed(keys: tuple[str, ...]) -> str:
            return f"({len(keys)}): " + ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")

        name = self.family if self.arch == self.family else f"{self.family} ({self.arch})"
        text = f"closest: {name}, {self.shared} of {self.total} key patterns shared"
        if self.unmatched:
            text += "; checkpoint keys it does not have " + listed(self.unmatched)
        if self.missing:
            text += "; its keys the checkpoint lacks " + listed(self.missing)
        return text


def closest_family(sd: StateDict, candidates: list[Family]) -> ClosestFamily | None:
    """The candidate whose key patterns overlap ``sd``'s most (Jaccard index; ties: detection order).

    Args:
        sd: The state dict no detector accepted.
        candidates: Families to compare with, in detection order (those without a tiny configuration are skipped).

    Returns:
        The closest, or None when no candidate shares a key pattern with ``sd`` (or none could be built).
    """
    ours = _patterns(list(sd))
    best: tuple[float, ClosestFamily] | None = None
    for family in candidates:
        for arch, tiny in family.tiny.items():
            try:
                with torch.device("meta"):
                    theirs = _patterns(list(build_network({"type": arch, **tiny.kwargs}).state_dict()))
            except (TypeError, ValueError):  # a tiny configuration that does not build is not a candidate
                continue
            shared = len(ours.keys() & theirs.keys())
            total = len(ours.keys() | theirs.keys())
            score = shared / total if total else 0.0
            if best is None or score > best[0]:
                best = (score, ClosestFamily(
                    family.name, arch, shared, total,
                    unmatched=tuple(key for pattern, key in ours.items() if pattern not in theirs),
                    missing=tuple(key for pattern, key in theirs.items() if pattern not in ours)))
    return None if best is None or best[1].shared == 0 else best[1]
