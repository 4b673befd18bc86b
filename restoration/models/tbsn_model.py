"""``TBSNModel``: self-supervised training and PD + refinement inference of a blind-spot denoiser.

Training uses **only the noisy image** (``batch['lq']``): the crop is pixel-shuffle down-sampled
(factor ``pd_train``, 5 for SIDD) and the network learns to map the sub-image to itself; the blind
spot prevents the identity solution. ``batch['gt']``, when a dataset provides one (synthetic noise),
is never read for the loss; it only serves validation metrics.

Inference: PD with ``pd_test`` (2), then random-replacing refinement (``refine_passes`` = 8 runs,
``refine_prob`` = 16 % of the values replaced by the noisy input, averaged), optionally inside the
×8 self-ensemble (``val.self_ensemble``).

Value range: the framework's tensors are in [0, 1]; the network is fed ``x * value_range`` and its
output is divided back, where ``value_range`` is the architecture's (its
:class:`~restoration.archs.spec.ArchSpec`: 255 for TBSN, as it was trained).

Options (the ``train:`` section, declared in :attr:`TBSNModel.train_options`; the old top-level
``model_opt`` mapping is still read, e.g. in test option files that have no ``train:``)::

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

import contextlib
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from restoration.inference import self_ensemble
from restoration.models.pixel_shuffle_downsampling import pd_denoise, pd_training_input
from restoration.models.sr_model import SRModel
from restoration.schema import Key

__all__ = ["TBSNModel", "TBSN_MODEL_DEFAULTS"]

_OPTIONS: dict[str, Key] = {
    "pd_train": Key((int,), default=5, doc="TBSN: pixel-shuffle down-sampling factor of the training crops"),
    "pd_train_all": Key((bool,), default=False, doc="TBSN: train on all pd_train**2 sub-images (false: the first, as upstream)"),
    "pd_test": Key((int,), default=2, doc="TBSN: PD factor at inference (1 = none)"),
    "refine": Key((bool,), default=True, doc="TBSN: random-replacing refinement at inference"),
    "refine_passes": Key((int,), default=8, doc="TBSN: refinement passes"),
    "refine_prob": Key((int, float), default=0.16, doc="TBSN: fraction of values replaced by the noisy input per pass"),
    "refine_seed": Key((int,), default=0, doc="TBSN: seed of the refinement masks (null: global RNG)"),
}

#: The defaults of :data:`_OPTIONS` (kept for callers of the first version).
TBSN_MODEL_DEFAULTS: dict[str, Any] = {key: spec.default for key, spec in _OPTIONS.items()}


class TBSNModel(SRModel):
    """Blind-spot denoiser trainer (AP-BSN/TBSN recipe) on top of :class:`SRModel`.

    Args:
        opt: Resolved options; reads its :attr:`train_options` (see the module docstring).
        device, world_size: As :class:`SRModel`.

    Raises:
        ValueError: bad values, or ``scale`` is not 1.
    """

    train_options = _OPTIONS

    def __init__(self, opt: Mapping[str, Any], device: torch.device, world_size: int = 1) -> None:
        self.opt = opt  # declared_options() reads it before the base class sets it
        self.bsn_opt = self.declared_options()
        problems = self.check_train_options(self.bsn_opt)
        if int(opt.get("scale", 1)) != 1:
            problems.append(f"TBSNModel denoises at scale 1, got scale {opt.get('scale')}")
        if (opt.get("val") or {}).get("tile"):
            problems.append("val.tile is not supported by TBSNModel: pixel-shuffle inference needs the whole image")
        if problems:
            raise ValueError("TBSNModel options: " + "; ".join(problems))
        super().__init__(opt, device, world_size)

    @classmethod
    def check_train_options(cls, values: Mapping[str, Any]) -> list[str]:
        """Problems with the values of :attr:`train_options` beyond their types (empty list when fine)."""
        problems = []
        for key in ("pd_train", "pd_test", "refine_passes"):
            if isinstance(values.get(key), int) and values[key] < 1:
                problems.append(f"{key} must be >= 1, got {values[key]}")
        prob = values.get("refine_prob")
        if isinstance(prob, (int, float)) and not 0 <= prob <= 1:
            problems.append(f"refine_prob must be in [0, 1], got {prob}")
        return problems

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
    @torch.no_grad()
    def inference(self, lq: Tensor) -> Tensor:
        """Denoise ``lq`` ``(B, C, H, W)`` in [0, 1] (any size) → ``(B, C, H, W)`` in [0, 1].

        PD (``pd_test``) + random-replacing refinement, optionally ×8 self-ensemble
        (``val.self_ensemble``). Tiling (``val.tile``) is not supported: PD needs the whole image.
        """
        net = self.eval_net
        was_training = net.training
        net.eval()
        o = self.bsn_opt
        scale = self.spec.value_range
        seed = o["refine_seed"]
        generator = None
        if seed is not None:
            generator = torch.Generator(device=lq.device)
            generator.manual_seed(int(seed))

        def run(x: Tensor) -> Tensor:
            return pd_denoise(
                net, x.float() * scale, factor=int(o["pd_test"]), size_multiple=self.spec.size_multiple,
                refine=bool(o["refine"]), passes=int(o["refine_passes"]), prob=float(o["refine_prob"]),
                generator=generator,
            ) / scale

        val_opt = self.opt.get("val") or {}
        with self.autocast() if self.is_train else contextlib.nullcontext():
            out = self_ensemble(run, lq) if val_opt.get("self_ensemble") else run(lq)
        net.train(was_training)
        return out.float()
