"""Inference helpers shared by test.py, validation and the benchmark script.

* :func:`pad_to_multiple` / :func:`crop_to`: pad to the network's ``size_multiple`` / ``min_size`` and crop back.
* :func:`tiled_forward`: overlapping tiles with smooth blending (the whole output in one float tensor);
  :func:`tiled_rows` / :func:`restore_rows`: the same rows handed out a band at a time, so the float output is
  never whole and memory is bounded by the tile size (what ``restoration-infer`` uses).
* :func:`self_ensemble`: the ×8 flip/transpose ensemble ("+" results).

* :func:`restore`: all of it in one call; ``restore(net, lq, spec=arch_spec(net))`` applies the network's
  whole contract (:mod:`restoration.archs.spec`): scale, padding and value range.
* :class:`Predictor` / :func:`predictor_for`: how a network runs at test time, declared by its architecture
  (:mod:`restoration.inference.predictor`): the plain protocol is :func:`restore`; a family may declare its own
  (TBSN's pixel-shuffle down-sampling and refinement). Validation, test.py, ``restoration-infer`` and
  ``restoration.export`` run every network through it.

They compose: ``self_ensemble(lambda t: tiled_forward(net, t, scale, tile, overlap, multiple), lq)`` is
``restore(net, lq, scale, multiple, tile=tile, overlap=overlap, self_ensemble=True)``.
"""

from __future__ import annotations

from restoration.inference.padding import crop_to, pad_amount, pad_to_multiple
from restoration.inference.pipeline import restore, restore_rows
from restoration.inference.predictor import InferenceSettings, Predictor, predictor_class, predictor_for
from restoration.inference.self_ensemble import dihedral_transform, inverse_dihedral_transform, self_ensemble
from restoration.inference.streamed_tiling import tiled_rows
from restoration.inference.tiling import blend_profile, tile_starts, tiled_forward

__all__ = [
    "restore",
    "restore_rows",
    "Predictor",
    "InferenceSettings",
    "predictor_class",
    "predictor_for",
    "tiled_rows",
    "pad_amount",
    "pad_to_multiple",
    "crop_to",
    "tiled_forward",
    "tile_starts",
    "blend_profile",
    "self_ensemble",
    "dihedral_transform",
    "inverse_dihedral_transform",
]
