"""``ESRGANModel``: ESRGAN's training step (Wang et al., ECCVW 2018; BasicSR's ``ESRGANModel``) on paired data.

:class:`~restoration.models.adversarial.AdversarialTrainer`'s iteration with the relativistic-average GAN (RaGAN)
of ESRGAN in place of the standard one. With ``C`` the discriminator's logits and ``gan`` the loss of
``train.gan_opt`` (:class:`~restoration.losses.gan_loss.GANLoss`, ``vanilla`` in the paper)::

    g:  (gan(C(gt) - mean(C(output)), fake) + gan(C(output) - mean(C(gt)), real)) / 2     # × gan_opt.loss_weight
    d:  gan(C(gt) - mean(C(output)), real) / 2  +  gan(C(output) - mean(C(gt)), fake) / 2  # unweighted

plus ``g``'s losses of ``train.losses`` (``pixel_opt`` / ``perceptual_opt``: the recipe's L1 and VGG19
``conv5_4`` losses) against ``gt``. The detaches are BasicSR's: in ``g``'s loss ``C(gt)`` carries no gradient;
in ``d``'s ``l_d_real`` the fake logits are a constant, in ``l_d_fake`` the real logits are. The discriminator
runs as often and in the same order as in BasicSR (``C(gt)``, ``C(output)`` for ``g``; ``C(output)`` without a
gradient, ``C(gt)``, ``C(output)`` for ``d``), so spectral-norm power iterations and BatchNorm running statistics
follow the same sequence. ``d``'s two halves take one backward here (BasicSR: one each); the gradient is their
sum either way.

Logged: the losses by their labels (``l_pix``, ``l_percep``), ``l_g_gan``, ``l_d_real``, ``l_d_fake`` (the two
halves, each already × 0.5), ``out_d_real`` / ``out_d_fake`` (mean logits of ``d``'s step), ``grad_norm``,
``grad_norm_d``. Option files: ``options/train/ESRGAN/`` (the PSNR stage is plain ``SRModel``).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from restoration.archs import register_archs
from restoration.losses.precision import upcast
from restoration.models.adversarial import GAN_OPTIONS, AdversarialTrainer
from restoration.registry import ARCH_REGISTRY, RegistryError
from restoration.schema import bind_arguments

__all__ = ["ESRGANModel"]


class ESRGANModel(AdversarialTrainer):
    """ESRGAN's adversarial SR step on ``lq``/``gt`` pairs (any paired dataset, e.g. ``PairedImageDataset``).

    Needs ``network_d`` (the paper's: ``VGGStyleDiscriminator``, whose ``input_size`` must equal
    ``datasets.train.gt_size``) and the ``train:`` keys of :data:`~restoration.models.adversarial.GAN_OPTIONS`.
    """

    options = dict(GAN_OPTIONS)

    @classmethod
    def check_run(cls, opt: Mapping[str, Any], is_train: bool) -> list[str]:
        """The base checks, and a discriminator of one input size (``input_size``) against the training patch:
        it scores whole GT patches, so ``datasets.train.gt_size`` must equal it."""
        problems = super().check_run(opt, is_train)
        net_d, datasets = opt.get("network_d"), opt.get("datasets")
        loader = datasets.get("train") if isinstance(datasets, Mapping) else None
        gt_size = loader.get("gt_size") if isinstance(loader, Mapping) else None
        if not is_train or not isinstance(net_d, Mapping) or not isinstance(gt_size, int):
            return problems
        register_archs()
        try:
            arch = ARCH_REGISTRY.get(net_d.get("type"))
        except (RegistryError, TypeError):
            return problems  # reported by the network check
        bound = bind_arguments(arch, {k: v for k, v in net_d.items() if k != "type"}) or {}
        size = bound.get("input_size")
        if isinstance(size, int) and size != gt_size:
            problems.append(f"'datasets.train.gt_size' {gt_size} is not network_d ({net_d['type']})'s input_size "
                            f"{size}: the discriminator scores whole GT patches of that size")
        return problems

    def generator_adversarial_loss(self, critic: nn.Module, output: Tensor, real: Tensor) -> Tensor:
        """``(gan(C(real) - mean(C(output)), fake) + gan(C(output) - mean(C(real)), real)) / 2``, weighted by
        ``gan_opt.loss_weight``; ``C(real)`` without a gradient (``critic`` is frozen)."""
        with torch.no_grad(), self.autocast():
            real_pred = critic(real)
        with self.autocast():
            fake_pred = critic(output)
        real_pred, fake_pred = upcast(real_pred), upcast(fake_pred)
        l_real = self.gan_loss(real_pred - torch.mean(fake_pred), False, is_disc=False)
        l_fake = self.gan_loss(fake_pred - torch.mean(real_pred), True, is_disc=False)
        return (l_real + l_fake) / 2

    def discriminator_losses(self, d: nn.Module, real: Tensor,
                             fake: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """``l_d_real = gan(C(real) - mean(C(fake)), real) / 2`` with ``C(fake)`` a constant (BasicSR's first
        forward of the step), ``l_d_fake = gan(C(fake) - mean(C(real)), fake) / 2`` with ``C(real)`` detached;
        returns them with the real and fake logits that carry the gradient."""
        with torch.no_grad(), self.autocast():
            fake_const = d(fake)
        with self.autocast():
            real_pred = d(real)
            fake_pred = d(fake)
        fake_const, real_pred, fake_pred = upcast(fake_const), upcast(real_pred), upcast(fake_pred)
        losses = {"l_d_real": self.gan_loss(real_pred - torch.mean(fake_const), True, is_disc=True) * 0.5,
                  "l_d_fake": self.gan_loss(fake_pred - torch.mean(real_pred.detach()), False, is_disc=True) * 0.5}
        return losses, real_pred, fake_pred
