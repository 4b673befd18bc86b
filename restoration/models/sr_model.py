"""``SRModel``: the supervised restoration trainer, ``net_g(lq) ≈ gt`` under the losses of ``train.losses``.

Everything generic (members, device, DDP, compile, AMP, the guarded optimisation step, checkpoints) is
:class:`restoration.models.base_model.Trainer`'s; this file holds what supervised restoration adds: one
network ``g`` with its optimizer, the list of losses, and inference through the predictor its architecture declares
(:mod:`restoration.inference.predictor`: the plain :func:`restoration.inference.restore`, or a family's own
protocol such as TBSN's). Subclasses (e.g. self-supervised trainers) override :meth:`compute_losses`, and
:meth:`predictor_options` when they hold the values of the predictor's options.
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from restoration.archs.spec import arch_spec
from restoration.data.batch_augment import BatchAugment
from restoration.errors import ScaleMismatchError
from restoration.inference import InferenceSettings, Predictor, crop_to, pad_to_multiple, predictor_class
from restoration.losses.loss_list import build_losses, evaluate_losses, needs_ema_output
from restoration.models.base_model import Trainer

__all__ = ["SRModel", "ScaleMismatchError"]


class SRModel(Trainer):
    """Supervised image restoration: ``net_g(lq) ≈ gt``.

    Args:
        opt: Resolved options (see :func:`restoration.options.parse_options`): ``network_g``,
            ``path.pretrain_network_g``, ``train`` (``optim_g``, ``scheduler``, ``losses``, ...).
        device: Where the network runs.
        world_size: Number of training processes (DDP when > 1).
    """

    uses_loss_list = True  # train.losses (or pixel_opt / perceptual_opt) must name at least one loss

    def __init__(self, opt: Mapping[str, Any], device: torch.device, world_size: int = 1, *,
                 is_train: bool = True) -> None:
        super().__init__(opt, device, world_size, is_train=is_train)
        net = self.add_network("g", opt["network_g"],
                               ema_decay=float(self.train_opt.get("ema_decay", 0) or 0) if self.is_train else 0.0,
                               ema_warmup=bool(self.train_opt.get("ema_warmup", True)))
        self.spec = arch_spec(net)  # scale, size multiple, minimum size, value range (the architecture contract)
        self.predictor_type = predictor_class(net)  # how the architecture runs at test time
        self.predictor(net)  # refuses val settings the protocol cannot run (val.tile of TBSN) before any training
        if not self.is_train:
            return
        self.losses: dict[str, nn.Module] = {k: v.to(device) for k, v in build_losses(self.train_opt).items()}
        # train.batch_augment: CutBlur / mixup / CutMix of each (lq, gt) batch before the forward
        self.batch_augment = BatchAugment(self.train_opt.get("batch_augment") or [], int(opt.get("manual_seed") or 0),
                                          self.rank, self.scale)
        self.add_optimizer("g", self.train_opt["optim_g"], self.train_opt.get("scheduler"),
                           int(self.train_opt.get("warmup_iter", -1)), float(self.train_opt.get("grad_clip", 0) or 0))

    # Short names for network "g"'s members (BasicSR's attribute names).
    @property
    def net_g(self) -> nn.Module:
        return self.networks["g"]

    @net_g.setter
    def net_g(self, net: nn.Module) -> None:
        self.networks["g"] = net

    @property
    def net_train(self) -> nn.Module:
        return self.train_networks["g"]

    @net_train.setter
    def net_train(self, net: nn.Module) -> None:
        self.train_networks["g"] = net

    @property
    def ema(self) -> Any:
        return self.emas.get("g")

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.optimizers["g"]

    @property
    def scheduler(self) -> Any:
        return self.schedulers["g"]

    @property
    def scaler(self) -> torch.amp.GradScaler:
        return self.scalers["g"]

    # ------------------------------------------------------------------ training
    def generate(self, lq: Tensor, net: nn.Module | None = None) -> Tensor:
        """``net_g(lq)`` for training, float32 ``(B, C, h·s, w·s)``: padded to the spec's multiple and minimum
        size, run in the network's value range, cropped back; a wrong output size is refused, never cropped.

        Args:
            lq: ``(B, C, h, w)`` in [0, 1] on the device.
            net: Another network of g's architecture to run (the EMA copy); default: g as trained.
        """
        h, w = lq.shape[-2:]
        # e.g. HAT needs multiples of 16; a no-op when aligned
        padded, _ = pad_to_multiple(lq, self.spec.size_multiple, min_size=self.spec.min_size)
        value_range = self.spec.value_range  # the network's own range (TBSN: 255), as at inference
        with self.autocast():
            output = (net or self.net_train)(padded * value_range if value_range != 1 else padded)
        expected = (padded.shape[-2] * self.scale, padded.shape[-1] * self.scale)
        if tuple(output.shape[-2:]) != expected:  # only the padding may be cropped, never a wrong scale
            raise ScaleMismatchError(
                f"network_g turned a {tuple(padded.shape[-2:])} input into {tuple(output.shape[-2:])}, not "
                f"{expected} (scale {self.scale}): its upscale and the options' scale disagree")
        output = crop_to(output, (h * self.scale, w * self.scale)).float()
        return output / value_range if value_range != 1 else output

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Losses of one batch: every configured loss of ``net(lq)`` vs ``gt``.

        Args:
            batch: ``{'lq': (B,C,h,w) [0,1], 'gt': (B,C,H,W) [0,1], ...}`` on the device.
        """
        return evaluate_losses(self.losses, self.generate(batch["lq"]), batch["gt"], self.ema_output(batch["lq"]))

    def ema_output(self, lq: Tensor) -> Tensor | None:
        """The EMA generator's output for ``lq`` (no gradient) when a loss compares with it (LDL), else None."""
        if self.ema is None or not needs_ema_output(self.losses):
            return None
        with torch.no_grad():
            return self.generate(lq, self.ema.module)

    def optimize_parameters(self, batch: Mapping[str, Any], current_iter: int) -> dict[str, Tensor]:
        """One training step (see :meth:`Trainer.backward_step`); returns 0-d tensors to log."""
        batch = self.batch_augment(batch, current_iter, self._micro)  # seeded by (seed, iteration, rank, micro-batch)
        return self.backward_step("g", self.compute_losses(batch), current_iter)

    # ----------------------------------------------------------------- inference
    @property
    def eval_net(self) -> nn.Module:
        """The network used for validation/testing: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else self.net_g

    def evaluated_weights(self) -> str:
        """``params_ema (EMA, decay 0.999, warm-up)`` when validation uses the EMA copy, else ``params``."""
        if self.ema is None:
            return "params"
        warmup = ", warm-up" if self.ema.use_warmup else ""
        return f"params_ema (the EMA of net_g, decay {self.ema.decay:g}{warmup})"

    def predictor_options(self) -> dict[str, Any]:
        """Values of the architecture predictor's own options (:attr:`Predictor.options`) that this trainer
        declares in its ``options``; the others take the predictor's defaults."""
        values = self.declared_options(self.train_opt)
        return {key: values[key] for key in self.predictor_type.options if key in values}

    def predictor(self, net: nn.Module | None = None) -> Predictor:
        """The architecture's test-time protocol for ``net`` (default :attr:`eval_net`) with this trainer's
        spec, ``val.tile`` / ``val.self_ensemble`` and :meth:`predictor_options`."""
        settings = InferenceSettings.from_val_options(self.opt.get("val") or {})
        return self.predictor_type(self.eval_net if net is None else net, self.spec, settings,
                                   self.predictor_options())

    @torch.no_grad()
    def inference(self, lq: Tensor) -> Tensor:
        """Restore ``lq`` (B,C,h,w) in [0,1] → (B,C,h·s,w·s) float32 through :meth:`predictor`: the same
        protocol as ``test.py`` and ``restoration-infer`` (padding, value range, ``val.tile``,
        ``val.self_ensemble``, a family's own steps); under ``train.mixed_precision`` while training."""
        net = self.eval_net
        was_training = net.training
        net.eval()
        predictor = self.predictor(net)
        with self.autocast() if self.is_train else contextlib.nullcontext():
            out = predictor(lq)
        net.train(was_training)
        return out.float()
