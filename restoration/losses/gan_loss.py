"""``GANLoss``: the adversarial loss of a discriminator's logits, with BasicSR's options and numbers.

Used by the GAN trainers (:mod:`restoration.models.realesrgan_model`) through ``train.gan_opt``, not in
``train.losses``: it scores discriminator outputs, not an (output, target) image pair.

``gan_type`` (``x`` = logits, any shape; means over all elements):

=============== ============================== ============================== ==================
gan_type        real (``target_is_real``)      fake                           generator (hinge)
=============== ============================== ============================== ==================
vanilla         BCEWithLogits(x, real_label)   BCEWithLogits(x, fake_label)
lsgan           mean((x - real_label)²)        mean((x - fake_label)²)
wgan            -mean(x)                       mean(x)
wgan_softplus   mean(softplus(-x))             mean(softplus(x))
hinge           mean(relu(1 - x)) (critic)     mean(relu(1 + x)) (critic)     -mean(x)
=============== ============================== ============================== ==================

``loss_weight`` multiplies the generator's loss only (``is_disc=False``); the discriminator's is unweighted.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restoration.declare import refuse_bad_arguments
from restoration.errors import LossOptionError

__all__ = ["GANLoss", "GAN_TYPES"]

GAN_TYPES = ("vanilla", "lsgan", "wgan", "wgan_softplus", "hinge")


class GANLoss(nn.Module):
    """Adversarial loss (BasicSR's ``GANLoss``).

    Args:
        gan_type: One of :data:`GAN_TYPES`.
        real_label_val: Target of real samples (vanilla, lsgan).
        fake_label_val: Target of fake samples (vanilla, lsgan).
        loss_weight: Weight of the generator's loss (the discriminator's is never weighted).
    """

    label = "l_g_gan"

    def __init__(self, gan_type: str, real_label_val: float = 1.0, fake_label_val: float = 0.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        refuse_bad_arguments(GANLoss, {"gan_type": gan_type, "real_label_val": real_label_val,
                                       "fake_label_val": fake_label_val, "loss_weight": loss_weight}, LossOptionError)
        self.gan_type = gan_type
        self.real_label_val = float(real_label_val)
        self.fake_label_val = float(fake_label_val)
        self.loss_weight = float(loss_weight)

    @classmethod
    def check_options(cls, opt: Mapping[str, Any]) -> list[str]:
        """Problems with the complete constructor arguments ``opt``."""
        if opt["gan_type"] not in GAN_TYPES:
            return [f"gan_type must be one of {list(GAN_TYPES)}, got {opt['gan_type']!r}"]
        return []

    def forward(self, input: Tensor, target_is_real: bool, is_disc: bool = False) -> Tensor:
        """Loss of logits ``input`` (any shape) as real or fake samples; a 0-d float32 tensor.

        Args:
            input: Discriminator logits, e.g. ``(B, 1, H, W)`` or ``(B, 1)``.
            target_is_real: Score them as real (True) or fake (False).
            is_disc: The discriminator's loss (unweighted; hinge uses its margin form) rather than the generator's.
        """
        if not isinstance(target_is_real, bool):  # e.g. listed in train.losses and called as (output, gt)
            raise TypeError("GANLoss scores discriminator logits: forward(logits, target_is_real: bool, is_disc); "
                            "configure it as train.gan_opt, not in train.losses")
        x = input.float()
        if self.gan_type in ("vanilla", "lsgan"):
            target = torch.full_like(x, self.real_label_val if target_is_real else self.fake_label_val)
            if self.gan_type == "vanilla":
                loss = F.binary_cross_entropy_with_logits(x, target)
            else:
                loss = F.mse_loss(x, target)
        elif self.gan_type == "wgan":
            loss = -x.mean() if target_is_real else x.mean()
        elif self.gan_type == "wgan_softplus":
            loss = F.softplus(-x).mean() if target_is_real else F.softplus(x).mean()
        elif is_disc:  # hinge, critic: a margin of 1 on each side
            loss = F.relu(1 - x).mean() if target_is_real else F.relu(1 + x).mean()
        else:  # hinge, generator
            loss = -x.mean()
        return loss if is_disc else loss * self.loss_weight
