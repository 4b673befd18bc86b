"""``TBSNModel``: self-supervised training of a blind-spot denoiser (TBSN).

Training uses **only the noisy image** (``batch['lq']``): the crop is pixel-shuffle down-sampled
(factor ``pd_train``, 5 for SIDD) and the network learns to map the sub-image to itself; the blind
spot prevents the identity solution. ``batch['gt']``, when a dataset provides one (synthetic noise),
is never read for the loss; it only serves validation metrics.

Inference is the architecture's own protocol, which :class:`SRModel` runs
(:class:`~restoration.archs.tbsn.tbsn_predictor.TBSNPredictor`): PD with ``pd_test`` (2), then random-replacing
refinement (``refine_passes`` = 8 runs, ``refine_prob`` = 16 % of the values replaced by the noisy input,
averaged), optionally inside the ×8 self-ensemble (``val.self_ensemble``). Its options are the predictor's
declaration; this trainer reads their values from ``train:`` (:meth:`TBSNModel.predictor_options`).

Value range: the framework's tensors are in [0, 1]; the network is fed ``x * value_range`` and its
output is divided back, where ``value_range`` is the architecture's (its
:class:`~restoration.archs.spec.ArchSpec`: 255 for TBSN, as it was trained).

Options (the ``train:`` section, declared in :attr:`TBSNModel.options`)::

    train:
      pd_train: 5            # PD factor of the training crops
      pd_train_all: false    # false: first sub-image only (official); true: all pd_train**2
      pd_test: 2             # PD factor at inference (1 = none)
      refine: true           # random-replacing refinement
      refine_passes: 8
      refine_prob: 0.16
      refine_seed: 0         # seed of the refinement masks (null: global RNG, not reproducible)
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from restoration.archs.tbsn.pixel_shuffle_downsampling import pd_training_input
from restoration.archs.tbsn.tbsn_predictor import TBSNPredictor
from restoration.models.sr_model import SRModel
from restoration.schema import Key

__all__ = ["TBSNModel"]

# the training options; the test-time ones (pd_test, refine, ...) are the predictor's declaration
_OPTIONS: dict[str, Key] = {
    "pd_train": Key((int,), default=5, doc="TBSN: pixel-shuffle down-sampling factor of the training crops"),
    "pd_train_all": Key((bool,), default=False, doc="TBSN: train on all pd_train**2 sub-images (false: the first, as upstream)"),
    **TBSNPredictor.options,
}


class TBSNModel(SRModel):
    """Blind-spot denoiser trainer (AP-BSN/TBSN recipe) on top of :class:`SRModel`.

    Args:
        opt: Resolved options; reads its :attr:`options` (see the module docstring).
        device, world_size: As :class:`SRModel`.

    Raises:
        ValueError: bad values, or ``scale`` is not 1.
    """

    options = _OPTIONS
    feeds_training_crops = False  # the network sees pixel-shuffle sub-images of the crops (checked at run time)

    def __init__(self, opt: Mapping[str, Any], device: torch.device, world_size: int = 1, *,
                 is_train: bool = True) -> None:
        self.bsn_opt = self.declared_options(opt.get("train"))
        problems = self.check_options(self.bsn_opt)
        if int(opt.get("scale", 1)) != 1:
            problems.append(f"TBSNModel denoises at scale 1, got scale {opt.get('scale')}")
        if (opt.get("val") or {}).get("tile"):
            problems.append("val.tile is not supported by TBSNModel: pixel-shuffle inference needs the whole image")
        if problems:
            raise ValueError("TBSNModel options: " + "; ".join(problems))
        super().__init__(opt, device, world_size, is_train=is_train)

    @classmethod
    def check_options(cls, bound: Mapping[str, Any]) -> list[str]:
        """Problems with the values of :attr:`options` beyond their types (empty list when fine)."""
        problems = []
        if isinstance(bound.get("pd_train"), int) and bound["pd_train"] < 1:
            problems.append(f"pd_train must be >= 1, got {bound['pd_train']}")
        return problems + TBSNPredictor.check_options(bound)

    # ------------------------------------------------------------------ training
    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """L1 between the network output and its own PD input (noisy only, network value range).

        Args:
            batch: ``{'lq': (B, C, H, W) noisy in [0, 1], ...}``; H and W must be multiples of
                ``pd_train * size_multiple`` (e.g. 160 for PD 5 and TBSN's 32). ``'gt'`` is ignored.
        """
        noisy = batch["lq"].float() * self.spec.value_range
        target = pd_training_input(noisy, int(self.bsn_opt["pd_train"]), bool(self.bsn_opt["pd_train_all"]))
        with self.autocast():
            output = self.net_train(target)
        output = output.float()
        loss_fn = self.losses.get("l_pix")
        return {"l_pix": loss_fn(output, target) if loss_fn is not None else F.l1_loss(output, target)}

    # ----------------------------------------------------------------- inference
    def predictor_options(self) -> dict[str, Any]:
        """The predictor's options as this trainer holds them (:attr:`bsn_opt`, read from ``train:``)."""
        return {key: self.bsn_opt[key] for key in self.predictor_type.options if key in self.bsn_opt}
