"""TBSN's test-time protocol: pixel-shuffle down-sampling, then random-replacing refinement (AP-BSN, TBSN).

The network is a blind-spot denoiser trained on PD sub-images, so one plain pass is not how it is tested:
:class:`TBSNPredictor` pads the image to ``pd_test * size_multiple``, denoises the ``pd_test**2`` sub-images
(:func:`~restoration.archs.tbsn.pixel_shuffle_downsampling.pd_denoise`), reassembles them, then averages
``refine_passes`` full-resolution passes in which a random ``refine_prob`` of the values is replaced by the noisy
input. The masks come from one generator seeded with ``refine_seed`` per call, so a result is reproducible;
inside the ×8 ensemble the 8 passes draw from it in turn.

Its options (:attr:`TBSNPredictor.options`) are declared here once; ``TBSNModel`` reads them from ``train:``.
The protocol needs the whole image: it cannot be tiled. An exported graph holds one pass of the network
(:meth:`~restoration.inference.predictor.Predictor.export_module`): random masks do not belong in a deployed
model.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

from restoration.archs.tbsn.pixel_shuffle_downsampling import pd_denoise
from restoration.inference.predictor import Predictor
from restoration.inference.self_ensemble import self_ensemble
from restoration.schema import Key

__all__ = ["TBSNPredictor"]


class TBSNPredictor(Predictor):
    """PD (``pd_test``) + random-replacing refinement, optionally inside the ×8 self-ensemble.

    ``predictor(lq)``: ``(B, C, H, W)`` in [0, 1] (any size) → ``(B, C, H, W)`` in [0, 1]; the network sees
    ``[0, value_range]`` (255 for TBSN). See :class:`~restoration.inference.predictor.Predictor` for the
    arguments.
    """

    options = {
        "pd_test": Key((int,), default=2, doc="TBSN: PD factor at inference (1 = none)"),
        "refine": Key((bool,), default=True, doc="TBSN: random-replacing refinement at inference"),
        "refine_passes": Key((int,), default=8, doc="TBSN: refinement passes"),
        "refine_prob": Key((int, float), default=0.16,
                           doc="TBSN: fraction of values replaced by the noisy input per pass"),
        "refine_seed": Key((int,), default=0, doc="TBSN: seed of the refinement masks (null: global RNG)"),
    }

    @classmethod
    def check_options(cls, values: Mapping[str, Any]) -> list[str]:
        """``pd_test`` and ``refine_passes`` at least 1, ``refine_prob`` in [0, 1]."""
        problems = []
        for key in ("pd_test", "refine_passes"):
            if isinstance(values.get(key), int) and values[key] < 1:
                problems.append(f"{key} must be >= 1, got {values[key]}")
        prob = values.get("refine_prob")
        if isinstance(prob, (int, float)) and not 0 <= prob <= 1:
            problems.append(f"refine_prob must be in [0, 1], got {prob}")
        return problems

    def tiling_problem(self) -> str | None:
        return "TBSN's test protocol (pixel-shuffle down-sampling + refinement) needs the whole image: it is not tiled"

    @torch.no_grad()
    def __call__(self, lq: Tensor) -> Tensor:
        o = self.values
        value_range = self.spec.value_range
        generator = None
        if o["refine_seed"] is not None:
            generator = torch.Generator(device=lq.device)
            generator.manual_seed(int(o["refine_seed"]))

        def run(x: Tensor) -> Tensor:
            return pd_denoise(
                self.net, x * value_range, factor=int(o["pd_test"]), size_multiple=self.spec.size_multiple,
                refine=bool(o["refine"]), passes=int(o["refine_passes"]), prob=float(o["refine_prob"]),
                generator=generator,
            ) / value_range

        return self_ensemble(run, lq) if self.settings.self_ensemble else run(lq)
