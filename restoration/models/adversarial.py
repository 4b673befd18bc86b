"""``AdversarialTrainer``: what every GAN trainer shares, a discriminator ``d`` beside :class:`SRModel`'s ``g``.

One iteration (:meth:`AdversarialTrainer.adversarial_step`, BasicSR's ``SRGANModel`` step and its relatives)::

    output = net_g(lq)
    if iter % net_d_iters == 0 and iter > net_d_init_iters:              # else g is not stepped
        l_g = Σ generator_losses(output, batch) + generator_adversarial_loss(D, output, real)  # D frozen
        backward g
    l_d = discriminator_losses(D, real, output.detach())
    backward d
    step g (+ EMA), step d      # one read of the device decides both (finite?); d never sees g's update,
                                # so the numbers are BasicSR's (g steps before d's forward there)

The trainers differ only in the hooks: which images are real (:meth:`~AdversarialTrainer.real_images`), the
losses of ``g`` besides the adversarial one (:meth:`~AdversarialTrainer.generator_losses`) and the two
adversarial formulas. The ones here are the standard GAN of SRGAN / Real-ESRGAN (``gan(D(output), real)`` for
``g``; ``gan(D(real), real) + gan(D(fake), fake)``, unweighted, for ``d``);
:class:`~restoration.models.esrgan_model.ESRGANModel` overrides them with the relativistic-average GAN.

``train:`` keys of every GAN trainer (:data:`GAN_OPTIONS`): ``optim_d``, ``gan_opt`` (a
:class:`~restoration.losses.gan_loss.GANLoss`), ``net_d_iters``, ``net_d_init_iters``. ``d`` shares
``train.scheduler`` and ``warmup_iter`` with ``g`` (BasicSR steps every optimizer's schedule each iteration).
Logged: the losses by their labels, ``l_g_gan``, the discriminator's losses, ``out_d_real`` and ``out_d_fake``
(mean logits), ``grad_norm`` and ``grad_norm_d``.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from restoration.losses.loss_list import evaluate_losses
from restoration.models.sr_model import SRModel
from restoration.registry import LOSS_REGISTRY, build_from_registry
from restoration.schema import COMPONENT, Key

__all__ = ["AdversarialTrainer", "GAN_OPTIONS"]

#: The ``train:`` keys every GAN trainer declares (a trainer lists them in its own ``options``).
GAN_OPTIONS: dict[str, Key] = {
    "optim_d": Key((dict,), required=True, doc="optimizer of the discriminator: {type: Adam, lr, betas, ...}"),
    "gan_opt": Key((dict,), required=True, kind=COMPONENT,
                   doc="the adversarial loss: {type: GANLoss, gan_type, loss_weight, ...}"),
    "net_d_iters": Key((int,), default=1, doc="step g every N iterations (d steps every iteration)"),
    "net_d_init_iters": Key((int,), default=0, doc="train only d for the first N iterations"),
}


class AdversarialTrainer(SRModel):
    """Base of the GAN trainers: ``g`` under its losses plus an adversarial one, and a discriminator ``d``.

    Needs ``network_d`` and ``train.optim_d``; ``train.gan_opt`` is BasicSR's slot of the adversarial loss.
    A subclass declares :data:`GAN_OPTIONS` in its ``options`` and overrides the hooks it changes.
    """

    required_networks = ("g", "d")

    #: Both networks step in every iteration from one read of the device (:meth:`Trainer.finish_steps`);
    #: a step of several micro-batches would need both networks' gradients kept apart.
    supports_accumulation = False

    options = dict(GAN_OPTIONS)

    @classmethod
    def check_options(cls, bound: Mapping[str, Any]) -> list[str]:
        """The ranges of the step counts, and ``gan_opt`` must be a :class:`GANLoss` (the option check checks
        ``gan_opt`` itself as a loss section: a ``train:`` key of kind ``COMPONENT``)."""
        problems = super().check_options(bound)
        for key, low in (("net_d_iters", 1), ("net_d_init_iters", 0)):
            if isinstance(bound[key], int) and bound[key] < low:
                problems.append(f"{key} must be >= {low}, got {bound[key]}")
        gan_opt = bound["gan_opt"]
        if isinstance(gan_opt, Mapping) and "type" in gan_opt and gan_opt["type"] != "GANLoss":
            problems.append(f"gan_opt.type must be GANLoss, got {gan_opt['type']!r}")
        return problems

    def __init__(self, opt: Mapping[str, Any], device: torch.device, world_size: int = 1, *,
                 is_train: bool = True) -> None:
        super().__init__(opt, device, world_size, is_train=is_train)
        self.values = self.declared_options(self.train_opt)
        if not self.is_train:
            return  # test.py: only g
        self.add_network("d", opt["network_d"])
        self.add_optimizer("d", self.train_opt["optim_d"], self.train_opt.get("scheduler"),
                           int(self.train_opt.get("warmup_iter", -1)))
        self.gan_loss: nn.Module = build_from_registry(LOSS_REGISTRY, dict(self.values["gan_opt"])).to(self.device)

    # ------------------------------------------------------------------ hooks
    def real_images(self, batch: Mapping[str, Any]) -> Tensor:
        """What the discriminator sees as real: ``gt`` ``(B, C, H, W)`` in [0, 1]."""
        return batch["gt"]

    def generator_losses(self, output: Tensor, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``g``'s losses besides the adversarial one: every loss of ``train.losses`` of ``output`` vs ``gt``."""
        return evaluate_losses(self.losses, output, batch["gt"], self.ema_output(batch["lq"]))

    def generator_adversarial_loss(self, critic: nn.Module, output: Tensor, real: Tensor) -> Tensor:
        """``l_g_gan`` (weighted by ``gan_opt.loss_weight``): ``gan(D(output), real)``. ``critic`` is frozen;
        ``real`` is unused by the standard GAN."""
        with self.autocast():
            fake_pred = critic(output)
        return self.gan_loss(fake_pred, True, is_disc=False)

    def discriminator_losses(self, d: nn.Module, real: Tensor,
                             fake: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """``({'l_d_real', 'l_d_fake'}, real logits, fake logits)``: ``gan(D(real), real)`` and
        ``gan(D(fake), fake)``, unweighted; ``fake`` is the detached output."""
        with self.autocast():
            real_pred = d(real)
            fake_pred = d(fake)
        losses = {"l_d_real": self.gan_loss(real_pred, True, is_disc=True),
                  "l_d_fake": self.gan_loss(fake_pred, False, is_disc=True)}
        return losses, real_pred, fake_pred

    # ------------------------------------------------------------------ training
    def optimize_parameters(self, batch: Mapping[str, Any], current_iter: int) -> dict[str, Tensor]:
        """One iteration on the (batch-augmented) pairs; returns 0-d tensors to log."""
        return self.adversarial_step(self.batch_augment(batch, current_iter, self._micro), current_iter)

    def adversarial_step(self, batch: Mapping[str, Any], current_iter: int) -> dict[str, Tensor]:
        """One iteration of ``g`` and ``d`` on ``batch`` (``lq``, ``gt``, ... on the device; see the module
        docstring); returns 0-d tensors to log."""
        critic = self.networks["d"]
        step_g = current_iter % self.values["net_d_iters"] == 0 and current_iter > self.values["net_d_init_iters"]
        real = self.real_images(batch)
        log: dict[str, Tensor] = {}
        grad_norms: dict[str, Tensor] = {}
        if step_g:
            # g's backward: the critic is a fixed function. The bare module, not the DDP wrapper: its gradient
            # hooks would wait for a backward of d that this step never makes.
            critic.requires_grad_(False)
            output = self.generate(batch["lq"])
            losses = self.generator_losses(output, batch)
            losses["l_g_gan"] = self.generator_adversarial_loss(critic, output, real)
            log, grad_norms["g"] = self.backward_only("g", losses)
            critic.requires_grad_(True)
        else:
            with torch.no_grad():
                output = self.generate(batch["lq"])
            self.step_schedule("g")  # keep g's schedule on the iteration counter while it waits
            self.update_ema("g", current_iter)  # BasicSR updates the EMA every iteration, whether g stepped or not
        losses_d, real_pred, fake_pred = self.discriminator_losses(self.train_networks["d"], real, output.detach())
        log, grad_norms["d"] = self.backward_only("d", losses_d, log)
        # g's step waits until here (d's forward and backward use neither g's weights nor its gradients), so
        # one read of the device decides both steps; the numbers are those of g stepping first
        log = self.finish_steps(grad_norms, current_iter, log)
        log["out_d_real"] = real_pred.detach().float().mean()
        log["out_d_fake"] = fake_pred.detach().float().mean()
        return log
