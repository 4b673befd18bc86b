"""``SRModel``: the supervised restoration trainer (network, EMA, losses, optimizer, one training step).

It owns no I/O besides what it is asked for: ``train.py`` drives the loop, folders and logging, and
``restoration.models.evaluation`` runs validation. Subclasses (e.g. self-supervised trainers) override
:meth:`compute_losses` and/or :meth:`inference`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from restoration.archs.build import build_network
from restoration.inference import crop_to, pad_to_multiple, self_ensemble, tiled_forward
from restoration.models.lr_scheduler import build_scheduler
from restoration.registry import LOSS_REGISTRY, build_from_registry
from restoration.utils.weights import load_weights, unwrap

__all__ = ["SRModel", "build_optimizer"]

_LOGGER = logging.getLogger("restoration")


def build_optimizer(params: list[nn.Parameter], opt: Mapping[str, Any]) -> torch.optim.Optimizer:
    """``torch.optim.<type>(params, **rest)`` for type in Adam, AdamW, SGD."""
    opt = dict(opt)
    kind = opt.pop("type")
    if kind not in ("Adam", "AdamW", "SGD"):
        raise ValueError(f"unsupported optimizer '{kind}'; use Adam, AdamW or SGD")
    if "betas" in opt:
        opt["betas"] = tuple(opt["betas"])
    return getattr(torch.optim, kind)(params, **opt)


class SRModel:
    """Supervised image restoration: ``net_g(lq) ≈ gt``.

    Args:
        opt: Resolved options (see :func:`restoration.options.parse_options`).
        device: Where the network runs.
        world_size: Number of training processes (DDP when > 1).
    """

    def __init__(self, opt: Mapping[str, Any], device: torch.device, world_size: int = 1) -> None:
        self.opt = opt
        self.device = device
        self.scale = int(opt.get("scale", 1))
        train_opt = opt.get("train") or {}
        self.is_train = bool(opt.get("is_train", False))
        net = build_network(opt["network_g"])
        path = opt.get("path") or {}
        if path.get("pretrain_network_g"):
            load_weights(net, path["pretrain_network_g"], path.get("param_key_g"), path.get("strict_load_g", True))
        net = net.to(device)
        self.channels_last = bool(train_opt.get("channels_last", False))
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net_g = net
        self.size_multiple = int(getattr(net, "size_multiple", 1))
        self.ema = None
        self.world_size = world_size
        if not self.is_train:
            self.net_g.eval()
            return
        self.net_g.train()
        if train_opt.get("ema_decay", 0) > 0:
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(self.net_g, decay=float(train_opt["ema_decay"]), device=device)
            self.ema.module.eval()
        self.net_train: nn.Module = self.net_g
        if world_size > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.net_train = nn.parallel.DistributedDataParallel(self.net_g, device_ids=ids)
        if train_opt.get("compile", False):
            self.net_train = torch.compile(self.net_train)
        self.losses: dict[str, nn.Module] = {}
        for key, label in (("pixel_opt", "l_pix"), ("perceptual_opt", "l_percep")):
            if train_opt.get(key):
                self.losses[label] = build_from_registry(LOSS_REGISTRY, train_opt[key]).to(device)
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(params, train_opt["optim_g"])
        self.scheduler = build_scheduler(self.optimizer, train_opt.get("scheduler"), int(train_opt.get("warmup_iter", -1)))
        precision = train_opt.get("mixed_precision") or False
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision) if precision else None
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.grad_clip = float(train_opt.get("grad_clip", 0) or 0)
        self.skip_nonfinite = bool(train_opt.get("skip_nonfinite", True))
        self.skipped_steps = 0

    # ------------------------------------------------------------------ training
    def feed_data(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Move the tensors of a loader batch to the device (channels_last when enabled)."""
        out = {}
        for key, value in batch.items():
            if isinstance(value, Tensor):
                value = value.to(self.device, non_blocking=True)
                if self.channels_last and value.dim() == 4:
                    value = value.contiguous(memory_format=torch.channels_last)
            out[key] = value
        return out

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Losses of one batch. Default: the configured pixel and perceptual losses of ``net(lq)`` vs ``gt``.

        Args:
            batch: ``{'lq': (B,C,h,w) [0,1], 'gt': (B,C,H,W) [0,1], ...}`` on the device.
        """
        lq = batch["lq"]
        h, w = lq.shape[-2:]
        padded, _ = pad_to_multiple(lq, self.size_multiple)  # e.g. HAT needs multiples of 16; a no-op when aligned
        with self.autocast():
            output = self.net_train(padded)
        output = crop_to(output, (h * self.scale, w * self.scale)).float()
        losses = {}
        for label, loss_fn in self.losses.items():
            value = loss_fn(output, batch["gt"])
            if isinstance(value, tuple):  # PerceptualLoss returns (perceptual, style)
                for suffix, part in zip(("", "_style"), value):
                    if part is not None:
                        losses[label + suffix] = part
            else:
                losses[label] = value
        return losses

    def optimize_parameters(self, batch: Mapping[str, Any], current_iter: int) -> dict[str, Tensor]:
        """One training step; returns the values to log as 0-d tensors on the device (read them, which
        waits for the GPU, only on logging iterations).

        A non-finite loss (on any rank) or gradient skips the update: the weights, EMA and optimizer
        state stay as they were and ``skipped`` is reported. The step costs at most one host-device
        synchronisation (reading whether the gradient norm is finite, which also covers the loss, see
        below; none with ``skip_nonfinite: false`` in fp32/bf16) and no collective besides DDP's own.
        """
        self.optimizer.zero_grad(set_to_none=True)
        losses = self.compute_losses(batch)
        total = sum(losses.values())
        log = {k: v.detach() for k, v in losses.items()}
        if self.skip_nonfinite:
            # A non-finite loss turns every gradient into NaN (times NaN, not a branch: no host sync),
            # and DDP's gradient all-reduce carries the NaN to every rank, so all ranks skip together.
            total = total * torch.where(torch.isfinite(total.detach()), 1.0, float("nan"))
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = self._grad_norm()
        # fp16 must skip non-finite gradients (the GradScaler's rule); the scaler's own step() would read
        # found_inf a second time, so the decision is taken once here from the gradient norm.
        if (self.skip_nonfinite or self.scaler.is_enabled()) and not bool(torch.isfinite(grad_norm)):
            self.scaler.update()  # fp16: back off the scale (a no-op when disabled)
            return self._skip(log, current_iter, "loss or gradient")
        self.optimizer.step()  # gradients are already unscaled: what GradScaler.step does when all are finite
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.net_g, step=current_iter)
        log["grad_norm"] = grad_norm.detach()
        return log

    def _grad_norm(self) -> Tensor:
        """The total L2 norm of all gradients, clipped to ``grad_clip`` first when it is set.

        Without clipping the norm is only measured: ``clip_grad_norm_(max_norm=inf)`` would also
        multiply every gradient by 1.
        """
        grads = [p.grad for p in self.net_g.parameters() if p.grad is not None]
        if not grads:
            return torch.zeros((), device=self.device)
        if self.grad_clip > 0:
            params = [p for p in self.net_g.parameters() if p.grad is not None]
            return torch.nn.utils.clip_grad_norm_(params, self.grad_clip, foreach=True)
        if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6
            return torch.nn.utils.get_total_norm(grads, foreach=True)
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))

    def _skip(self, log: dict[str, Tensor], current_iter: int, what: str) -> dict[str, Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()  # keep the schedule aligned with the iteration counter
        self.skipped_steps += 1
        log["skipped"] = torch.ones((), device=self.device)
        values = ", ".join(f"{k} {float(v):.4g}" for k, v in log.items())
        _LOGGER.warning(
            f"iter {current_iter}: non-finite {what} ({values}); step skipped, weights unchanged "
            f"({self.skipped_steps} skipped so far)"
        )
        return log

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # ----------------------------------------------------------------- inference
    @property
    def eval_net(self) -> nn.Module:
        """The network used for validation/testing: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else self.net_g

    @torch.no_grad()
    def inference(self, lq: Tensor) -> Tensor:
        """Restore ``lq`` (B,C,h,w) in [0,1] → (B,C,h·s,w·s), padding to the network's multiple.

        Uses ``val.tile`` (overlapping blended tiles) and ``val.self_ensemble`` (×8) when configured.
        """
        net = self.eval_net
        was_training = net.training
        net.eval()
        val_opt = self.opt.get("val") or {}
        tile = val_opt.get("tile")

        def run(x: Tensor) -> Tensor:
            if tile:
                return tiled_forward(
                    net,
                    x,
                    scale=self.scale,
                    tile=int(tile["tile_size"]),
                    overlap=int(tile.get("tile_overlap", 32)),
                    multiple=self.size_multiple,
                    tile_batch_size=int(tile.get("tile_batch", 1)),
                )
            return self._padded_forward(net)(x)

        with self.autocast() if self.is_train else contextlib.nullcontext():
            out = self_ensemble(run, lq) if val_opt.get("self_ensemble") else run(lq)
        net.train(was_training)
        return out.float()

    def _padded_forward(self, net: nn.Module) -> Any:
        def forward(x: Tensor) -> Tensor:
            h, w = x.shape[-2:]
            padded, _ = pad_to_multiple(x, self.size_multiple)
            out = net(padded)
            return crop_to(out, (h * self.scale, w * self.scale))

        return forward

    # -------------------------------------------------------------- checkpoints
    def network_state(self) -> dict[str, Any]:
        """``{'params': sd}`` (+ ``'params_ema'``), BasicSR's weight-file layout, without prefixes."""
        out = {"params": {k: v.detach().cpu() for k, v in unwrap(self.net_g).state_dict().items()}}
        if self.ema is not None:
            out["params_ema"] = {k: v.detach().cpu() for k, v in self.ema.module.state_dict().items()}
        return out

    def training_state(self) -> dict[str, Any]:
        """Everything the trainer needs to continue bit-exactly (tensors and plain containers only)."""
        state = {
            "net_g": unwrap(self.net_g).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"last_epoch": self.scheduler.last_epoch, "base_lrs": self.scheduler.base_lrs},
            "scaler": self.scaler.state_dict(),
            "skipped_steps": self.skipped_steps,
        }
        if self.ema is not None:
            state["ema"] = self.ema.module.state_dict()
        return state

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`training_state`."""
        unwrap(self.net_g).load_state_dict(state["net_g"])
        if self.ema is not None:
            if "ema" not in state:
                raise ValueError("the training state has no EMA weights but train.ema_decay > 0")
            self.ema.module.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.last_epoch = int(state["scheduler"]["last_epoch"])
        self.scheduler.base_lrs = list(state["scheduler"]["base_lrs"])
        for group, base, factor in zip(self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas):
            group["lr"] = base * factor(self.scheduler.last_epoch)
        self.scaler.load_state_dict(state["scaler"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
