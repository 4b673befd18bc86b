"""Real-world SR trainers: ``RealESRNetModel`` (pixel/perceptual losses) and ``RealESRGANModel`` (+ a discriminator).

One iteration of :class:`RealESRGANModel`: ``batch = degrade(batch, iter)`` (Real-ESRGAN pairs on the device, or
the paired batch as is), then the standard GAN step of :class:`~restoration.models.adversarial.AdversarialTrainer`
(BasicSR's ``RealESRGANModel`` / ``SRGANModel`` step)::

    l_g = Σ losses(output, l1_gt | percep_gt) + gan_opt(D(output), real)    # D: the bare critic, frozen
    l_d = gan(D(gan_gt), real) + gan(D(output.detach()), fake)               # unweighted

Targets: ``l1_gt`` / ``percep_gt`` / ``gan_gt`` are the USM-sharpened GT of the degradation when
``l1_gt_usm`` / ``percep_gt_usm`` / ``gan_gt_usm`` are on and the batch has one, else ``gt``. Perceptual
losses (``PerceptualLoss``, ``LPIPSLoss``) take ``percep_gt``; every other entry of ``train.losses``
``l1_gt``. Logged: each loss by its label, ``l_g_gan``, ``l_d_real``, ``l_d_fake``, ``out_d_real`` and
``out_d_fake`` (mean logits), ``grad_norm`` and ``grad_norm_d``.

The degradation (:mod:`restoration.data.degradations.realesrgan`) runs when the batch comes from
``RealESRGANDataset`` (it carries ``kernel1``) and ``train.high_order_degradation`` is on; its options are
declared here under ``train:`` with BasicSR's names (BasicSR reads them from the top level). With
``high_order_degradation: false`` the dataset's ``lq``/``gt`` pairs are used (any paired dataset, e.g.
``RealESRGANPairedDataset``: BasicSR's fine-tuning on real pairs).

Mixing both: with ``train.paired_prob: p`` each training batch is used as its own pairs with probability
``p``, else degraded; the batches must carry both (``RealESRGANPairedDataset`` with ``with_kernels: true``).
The coin of iteration ``i`` is a pure function of ``(manual_seed, i, rank)`` (:func:`paired_coin`), drawn
from its own stream: a resumed run tosses the same coins, and the degradation's draws are those of a run
without mixing. Paired batches skip the training-pair pool; their GT is USM-sharpened for the ``*_gt_usm``
targets only with ``paired_gt_usm: true`` (BasicSR's RealESRGANModel does so; its SRGANModel does not).

Upstream names that mean the same trainer are aliases in ``restoration/models/__init__.py``:
``RealHATMSEModel`` = ``RealESRNetModel``; ``RealHATGANModel`` = ``SRGANModel`` = ``RealESRGANModel``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from restoration.data.degradations.realesrgan import (
    DEGRADATION_DEFAULTS,
    TrainingPairPool,
    check_degradation_options,
    degradation_generator,
    queue_problems,
    realesrgan_degrade,
    usm_sharp,
)
from restoration.errors import DataError
from restoration.utils.rng import derived_seed
from restoration.losses.loss_list import evaluate_losses
from restoration.losses.lpips import LPIPSLoss
from restoration.losses.perceptual_loss import PerceptualLoss
from restoration.models.adversarial import GAN_OPTIONS, AdversarialTrainer
from restoration.models.sr_model import SRModel
from restoration.schema import Key

__all__ = ["RealESRNetModel", "RealESRGANModel", "paired_coin"]

_PERCEPTUAL = (PerceptualLoss, LPIPSLoss)  # losses that take percep_gt


def _key_for(name: str, default: Any) -> Key:
    types: tuple[type, ...] = {bool: (bool,), int: (int,), float: (int, float), list: (list,), str: (str,)}.get(
        type(default), (int,))
    return Key(types, default=default, doc="Real-ESRGAN degradation (restoration.data.degradations.realesrgan)")


#: The degradation's options, declared from its own defaults (``scale`` is the top-level one).
DEGRADATION_OPTIONS: dict[str, Key] = {k: _key_for(k, v) for k, v in DEGRADATION_DEFAULTS.items() if k != "scale"}

#: Tags the paired-or-degraded coin's stream, apart from the degradation's (manual_seed, iteration, rank).
_PAIRED_STREAM = 0x7061697265  # "paire"


def paired_coin(manual_seed: int, iteration: int, rank: int = 0) -> float:
    """The uniform [0, 1) number that decides whether iteration ``iteration`` of ``rank`` trains on the batch's
    own pairs (``< paired_prob``): a pure function of its arguments, so a resumed run repeats every decision."""
    return float(np.random.default_rng(derived_seed(manual_seed, iteration, rank, _PAIRED_STREAM)).random())


def _dataset_problems(values: Mapping[str, Any], loader: Mapping[str, Any]) -> list[str]:
    """The training dataset against ``high_order_degradation``/``paired_prob``, for the two Real-ESRGAN
    datasets (other datasets are checked batch by batch in :meth:`RealESRNetModel.degrade`)."""
    kind, p = loader.get("type"), values.get("paired_prob", 0.0)
    if values.get("high_order_degradation", True) is False or not isinstance(p, (int, float)):
        return []
    if kind == "RealESRGANDataset" and p > 0:
        return [f"paired_prob {p} trains on the batch's own LQ with that probability, but RealESRGANDataset has "
                "none: use RealESRGANPairedDataset with with_kernels: true"]
    if kind == "RealESRGANPairedDataset" and p < 1 and not loader.get("with_kernels", False):
        return [f"high_order_degradation is on (paired_prob {p}) but datasets.train (RealESRGANPairedDataset) has "
                "no blur kernels to degrade with: set high_order_degradation: false to train on its pairs, or "
                "its with_kernels: true to mix"]
    return []


class RealESRNetModel(SRModel):
    """Supervised real-world SR: the Real-ESRGAN degradation on the device, then :class:`SRModel`'s step.

    The target is the USM-sharpened GT when ``gt_usm`` is on and the degradation gave one (BasicSR's
    ``RealESRNetModel``), else ``gt``.
    """

    #: The degradation draws from the iteration's seed and feeds a pool of pairs: a step of several
    #: micro-batches would degrade them alike (``train.accum_iter`` is refused).
    supports_accumulation = False

    options = {
        "high_order_degradation": Key((bool,), default=True, doc="synthesise Real-ESRGAN pairs from RealESRGANDataset "
                                      "batches (false: use the dataset's lq/gt pairs)"),
        "paired_prob": Key((int, float), default=0.0, doc="probability that a training batch is used as its own "
                           "lq/gt pairs instead of being degraded (per iteration; needs lq and kernels: "
                           "RealESRGANPairedDataset with with_kernels: true)"),
        "paired_gt_usm": Key((bool,), default=False, doc="USM-sharpen the GT of paired batches for the *_gt_usm "
                             "targets (BasicSR's RealESRGANModel does)"),
        **DEGRADATION_OPTIONS,
    }

    @classmethod
    def check_options(cls, bound: Mapping[str, Any]) -> list[str]:
        p = bound["paired_prob"]
        number = isinstance(p, (int, float)) and not isinstance(p, bool)
        problems = [f"paired_prob must be a probability in [0, 1], got {p!r}"] if number and not 0 <= p <= 1 else []
        if not bound["high_order_degradation"]:
            return problems
        return problems + check_degradation_options({k: v for k, v in bound.items() if k in DEGRADATION_OPTIONS})

    @classmethod
    def check_run(cls, opt: Mapping[str, Any], is_train: bool) -> list[str]:
        """The base checks, and the pool against the training loader: ``train.queue_size`` must be a multiple
        of ``datasets.train.batch_size_per_gpu`` (the pool swaps whole batches), and a Real-ESRGAN training
        dataset that cannot give what ``high_order_degradation``/``paired_prob`` ask of it (LQ, kernels),
        which :meth:`check_options` cannot see."""
        problems = super().check_run(opt, is_train)
        if not is_train:
            return problems
        train = opt.get("train") if isinstance(opt.get("train"), Mapping) else {}
        values = train
        datasets = opt.get("datasets") if isinstance(opt.get("datasets"), Mapping) else {}
        loader = datasets.get("train") if isinstance(datasets.get("train"), Mapping) else {}
        problems += [f"'train' ({opt.get('model_type', cls.__name__)}): {p}" for p in _dataset_problems(values, loader)]
        batch = loader.get("batch_size_per_gpu")
        if values.get("high_order_degradation", True) is False or not isinstance(batch, int) or batch < 1:
            return problems  # paired data, or a batch size the dataset check reports
        # Only what the batch size adds: the rest was reported by check_options.
        queue = values.get("queue_size", DEGRADATION_DEFAULTS["queue_size"])
        return problems + [f"'train' ({opt.get('model_type', cls.__name__)}): {p}" for p in queue_problems(queue, batch)]

    def __init__(self, opt: Mapping[str, Any], device: torch.device, world_size: int = 1, *,
                 is_train: bool = True) -> None:
        super().__init__(opt, device, world_size, is_train=is_train)
        self.values = self.declared_options(self.train_opt)
        self.pair_pool: Any = None
        queue = self.values["queue_size"]
        if self.is_train and self.values["high_order_degradation"] and queue and self.values["paired_prob"] < 1:
            self.pair_pool = TrainingPairPool(int(queue))

    # ------------------------------------------------------------------ data
    def degrade(self, batch: Mapping[str, Any], current_iter: int) -> dict[str, Any]:
        """Training pairs of this iteration: ``{'lq', 'gt', 'gt_usm'?, ...}`` on the device.

        A ``RealESRGANDataset`` batch (``gt``, ``kernel1``, ``kernel2``, ``sinc_kernel``) is degraded with
        :func:`~restoration.data.degradations.realesrgan.realesrgan_degrade`, seeded from
        ``(manual_seed, current_iter, rank)`` (so a resumed run repeats it) and mixed through the
        training-pair pool. With ``high_order_degradation: false``, or where :meth:`uses_own_pairs`, the
        batch's own ``lq``/``gt`` are used (+ ``gt_usm`` with ``paired_gt_usm``).
        """
        if not self.values["high_order_degradation"] or self.uses_own_pairs(current_iter):
            return self._own_pairs(batch, current_iter)
        if "kernel1" not in batch:
            raise DataError("train.high_order_degradation is on but the training batch has no 'kernel1': use "
                            "RealESRGANDataset, or set train.high_order_degradation: false for paired data")
        generator = degradation_generator(int(self.opt.get("manual_seed") or 0), current_iter,
                                          self.rank)
        options = {**self.values, "scale": self.scale}
        lq, gt, gt_usm = realesrgan_degrade(batch, options, generator, self.pair_pool)
        if self.channels_last:
            lq, gt, gt_usm = (t.contiguous(memory_format=torch.channels_last) for t in (lq, gt, gt_usm))
        return {**batch, "lq": lq.contiguous(), "gt": gt, "gt_usm": gt_usm}

    def uses_own_pairs(self, current_iter: int) -> bool:
        """Whether iteration ``current_iter`` trains on the batch's own pairs under ``paired_prob`` (with the
        degradation on): never at 0, always at 1, else by :func:`paired_coin` of this rank."""
        p = float(self.values["paired_prob"])
        if p <= 0 or p >= 1:
            return p >= 1
        return paired_coin(int(self.opt.get("manual_seed") or 0), current_iter, self.rank) < p

    def _own_pairs(self, batch: Mapping[str, Any], current_iter: int) -> dict[str, Any]:
        """A paired batch as it is (its GT sharpened into ``gt_usm`` with ``paired_gt_usm``)."""
        if "lq" not in batch:
            raise DataError(f"iteration {current_iter} trains on the batch's own pairs (high_order_degradation "
                            f"off or paired_prob {self.values['paired_prob']}) but the batch has no 'lq': use a "
                            "paired dataset such as RealESRGANPairedDataset")
        if not self.values["paired_gt_usm"] or "gt" not in batch:
            return dict(batch)
        with torch.no_grad():
            return {**batch, "gt_usm": usm_sharp(batch["gt"].float())}

    def target(self, batch: Mapping[str, Any], use_usm: bool) -> Tensor:
        """``gt_usm`` when asked for and present, else ``gt``."""
        return batch["gt_usm"] if use_usm and "gt_usm" in batch else batch["gt"]

    # ------------------------------------------------------------------ training
    def optimize_parameters(self, batch: Mapping[str, Any], current_iter: int) -> dict[str, Tensor]:
        batch = self.degrade(batch, current_iter)
        batch["gt"] = self.target(batch, bool(self.values["gt_usm"]))
        return self.backward_step("g", self.compute_losses(batch), current_iter)

    # ------------------------------------------------------------------ checkpoints
    def rank_state(self) -> dict[str, Any]:
        """The training-pair pool: made from this rank's batches, so saved for every rank."""
        return {} if self.pair_pool is None else {"pair_pool": self.pair_pool.state_dict()}

    def load_rank_state(self, state: Mapping[str, Any]) -> None:
        if self.pair_pool is not None and "pair_pool" in state:
            self.pair_pool.load_state_dict(state["pair_pool"], device=self.device)

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        super().load_training_state(state)
        if self.pair_pool is not None and "pair_pool" in state:  # states saved before rank_states existed
            self.pair_pool.load_state_dict(state["pair_pool"], device=self.device)


class RealESRGANModel(AdversarialTrainer, RealESRNetModel):
    """Adversarial real-world SR: :class:`RealESRNetModel`'s pairs, then the standard GAN step of
    :class:`~restoration.models.adversarial.AdversarialTrainer` (``g`` under pixel + perceptual + GAN losses,
    a discriminator ``d``), with the USM-sharpened targets of ``l1_gt_usm`` / ``percep_gt_usm`` /
    ``gan_gt_usm``.
    """

    options = {
        **RealESRNetModel.options,
        **GAN_OPTIONS,
        "l1_gt_usm": Key((bool,), default=True, doc="pixel losses against the USM-sharpened GT when there is one"),
        "percep_gt_usm": Key((bool,), default=True, doc="perceptual losses against the USM-sharpened GT"),
        "gan_gt_usm": Key((bool,), default=False, doc="the discriminator's real input is the USM-sharpened GT"),
    }

    def real_images(self, batch: Mapping[str, Any]) -> Tensor:
        """``gt_usm`` with ``gan_gt_usm`` (when the batch has one), else ``gt``."""
        return self.target(batch, self.values["gan_gt_usm"])

    def generator_losses(self, output: Tensor, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Perceptual losses (``PerceptualLoss``, ``LPIPSLoss``) against the ``percep_gt_usm`` target, every other
        loss against the ``l1_gt_usm`` one."""
        percep = {k: v for k, v in self.losses.items() if isinstance(v, _PERCEPTUAL)}
        pixel = {k: v for k, v in self.losses.items() if k not in percep}
        losses = evaluate_losses(pixel, output, self.target(batch, self.values["l1_gt_usm"]),
                                 self.ema_output(batch["lq"]))
        losses.update(evaluate_losses(percep, output, self.target(batch, self.values["percep_gt_usm"])))
        return losses

    def optimize_parameters(self, batch: Mapping[str, Any], current_iter: int) -> dict[str, Tensor]:
        """One iteration on this iteration's pairs (:meth:`degrade`); returns 0-d tensors to log."""
        return self.adversarial_step(self.degrade(batch, current_iter), current_iter)
