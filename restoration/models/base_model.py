"""The trainer contract: what ``train.py`` calls, and the named members a trainer owns.

``train.py`` (:class:`restoration.training.run.TrainingRun`) knows a trainer only through these calls::

    model = MODEL_REGISTRY.get(opt["model_type"])(opt, device, world_size, is_train=True)  # test.py: False
    log = model.optimize_parameters(model.feed_data(batch), iteration)   # {name: 0-d tensor}
    model.current_lr()                                                    # for the progress line
    model.evaluation_images(batch)                                        # validation: (output, target)
    model.network_states(), model.training_state(), model.load_training_state(state)
    model.rank_state(), model.load_rank_state(state)                      # per-rank parts (every rank's saved)
    model.networks["g"]                                                   # the network being trained

:class:`Trainer` owns *named* members: networks (``"g"``, a GAN adds ``"d"``), and per network an
optimizer, a learning-rate schedule, a GradScaler and an EMA copy. Whatever is registered through
:meth:`Trainer.add_network` / :meth:`Trainer.add_optimizer` is moved to the device, made channels_last,
wrapped in DDP and ``torch.compile``-d, checkpointed and resumed without the subclass writing any of
it. A subclass adds its losses and its step (:meth:`Trainer.optimize_parameters`), using
:meth:`Trainer.backward_step` for each optimizer; it follows the declaration protocol (:mod:`restoration.declare`): its own
``train:`` keys are its :attr:`Trainer.options`, their values are checked by :meth:`Trainer.check_options`
(the bound ``train:`` section), and the option file as a whole by :meth:`Trainer.check_run`; both run with
the rest of the file before anything starts.

Checkpoint layout (unchanged from the first trainer, extended by suffixes): ``net_g``, ``optimizer``,
``scheduler``, ``scaler``, ``ema`` for network ``"g"``; ``net_d``, ``optimizer_d``, ... for the others.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any, ClassVar, Iterable, Mapping

import torch
from torch import Tensor, nn

from restoration.archs.build import build_network
from restoration.optim.optimizers import build_optimizer, optimizer_options, uses_eval_point
from restoration.optim.plateau import PlateauLR
from restoration.optim.schedulers import build_scheduler
from restoration.declare import run_problems
from restoration.errors import OptionsError
from restoration.schema import Key
from restoration.settings import TrainSettings, settings_from
from restoration.utils.checkpoint import CheckpointError
from restoration.utils.dist import get_dist_info
from restoration.utils.weights import load_weights_report, unwrap

__all__ = ["Trainer"]

_LOGGER = logging.getLogger("restoration")


def _state_key(kind: str, name: str) -> str:
    """``net_g``/``optimizer``/``ema`` for network ``g``; ``net_d``/``optimizer_d``/``ema_d`` for ``d``."""
    if kind == "net":
        return f"net_{name}"
    return kind if name == "g" else f"{kind}_{name}"


class Trainer:
    """Base of every trainer (``model_type``).

    Args:
        opt: Resolved options (see :func:`restoration.options.parse_options`).
        device: Where the networks run.
        world_size: Number of training processes (DDP when > 1).
        is_train: Built to train (``train.py``: optimizers, losses, EMA) or only to evaluate network ``g``
            (``test.py``). A subclass takes it as a keyword and passes it on.

    Attributes:
        networks: ``{name: module}``, the bare networks (what is saved and evaluated).
        train_networks: ``{name: module}``, the same wrapped for training (DDP, ``torch.compile``).
        optimizers, schedulers, scalers, emas: Per network name (only for networks being trained).
        skipped_steps: Steps skipped because of a non-finite loss or gradient.
        rank: This process's rank in the process group (0 without one).
        train_settings: The shared ``train:`` keys, typed, defaults applied (:class:`restoration.settings.TrainSettings`);
            ``train_opt`` is the raw section, for the components it names (``optim_g``, ``losses``, ...).
    """

    #: The trainer's declaration (:mod:`restoration.declare`): the ``train:`` keys it reads beyond the common
    #: ones (:data:`restoration.options.schema.TOP_LEVEL`'s ``train``).
    options: ClassVar[dict[str, Key]] = {}

    #: Networks the option file must define (``network_<name>``); for training each needs ``train.optim_<name>``.
    required_networks: ClassVar[tuple[str, ...]] = ("g",)

    #: Whether ``train.accum_iter > 1`` works with this trainer: every step goes through :meth:`backward_step`
    #: and a micro-batch's forward does not depend on the iteration beyond it.
    supports_accumulation: ClassVar[bool] = True

    #: Whether ``network_g`` is fed the training crops as cut (``gt_size // scale``, and each progressive stage's
    #: ``gt_sizes[j] // scale``), so the option check holds them to its size rules (minimum side and multiple); a
    #: trainer that reshapes its crops first (TBSN's pixel-shuffle sub-images) leaves it False.
    feeds_training_crops: ClassVar[bool] = True

    #: Whether this trainer's losses come from ``train.losses`` (:func:`restoration.losses.loss_list.build_losses`),
    #: so the option check requires at least one entry; a trainer that computes its own loss leaves it False.
    uses_loss_list: ClassVar[bool] = False

    def __init__(self, opt: Mapping[str, Any], device: torch.device, world_size: int = 1, *,
                 is_train: bool = True) -> None:
        # the start-up check ran check_run on this very dict (then it is skipped); a trainer built directly
        # by Python code from an unchecked dict is checked here
        problems = run_problems(type(self), opt, is_train)
        if problems:
            raise OptionsError("the options", problems)
        self.opt = opt
        self.device = device
        self.world_size = world_size
        self.scale = int(opt.get("scale", 1))
        self.is_train = is_train
        self.rank = get_dist_info()[0]
        self.train_opt: Mapping[str, Any] = opt.get("train") or {}
        self.train_settings = settings_from(TrainSettings, self.train_opt)
        self.channels_last = self.train_settings.channels_last
        precision = self.train_settings.mixed_precision
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision) if precision else None
        self.skip_nonfinite = self.train_settings.skip_nonfinite
        self.accum_iter = self.train_settings.accum_iter
        self._micro = 0  # index of the current micro-batch inside an optimizer step (see micro_batch)
        self._accumulated: dict[str, Tensor] = {}  # logged losses summed over the step's micro-batches
        self.skipped_steps = 0
        self.networks: dict[str, nn.Module] = {}
        self.train_networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.emas: dict[str, Any] = {}
        self.grad_clip: dict[str, float] = {}

    @classmethod
    def check_options(cls, bound: Mapping[str, Any]) -> list[str]:
        """The protocol's value check: problems with the bound ``train:`` section (the common keys and
        :attr:`options`, every default applied) beyond their types (ranges, combinations). Never raises."""
        return []

    @classmethod
    def check_run(cls, opt: Mapping[str, Any], is_train: bool) -> list[str]:
        """Problems with the option file as a whole for this trainer, what no single section shows: its
        networks and their optimizers (testing needs network ``g`` only), gradient accumulation. A subclass
        adds its own cross-section checks (a discriminator's input size against the training crop, ...)."""
        problems = []
        trainer = opt.get("model_type", cls.__name__)
        train = opt.get("train") if isinstance(opt.get("train"), Mapping) else {}
        for name in cls.required_networks if is_train else ("g",):
            if not opt.get(f"network_{name}"):
                problems.append(f"{trainer} needs 'network_{name}'")
            elif is_train and name != "g" and f"optim_{name}" not in cls.options and not train.get(f"optim_{name}"):
                problems.append(f"'network_{name}' is trained by {trainer}: set 'train.optim_{name}'")
        if is_train and int(train.get("accum_iter", 1) or 1) > 1 and not cls.supports_accumulation:
            problems.append(f"{trainer} does not support gradient accumulation: set 'train.accum_iter' to 1")
        if is_train:
            for key in opt:
                if key.startswith("network_") and key[len("network_"):] not in cls.required_networks and opt[key]:
                    problems.append(f"'{key}' is set but {trainer} trains only "
                                    f"{', '.join(f'network_{n}' for n in cls.required_networks)}")
        return problems

    @classmethod
    def declared_options(cls, train: Mapping[str, Any] | None) -> dict[str, Any]:
        """This trainer's own options (:attr:`options`) read from the ``train:`` section ``train``, each absent
        one at its default."""
        values = {k: v for k, v in (train or {}).items() if k in cls.options}
        return {key: values.get(key, spec.default) for key, spec in cls.options.items()}

    # ------------------------------------------------------------------ members
    def add_network(self, name: str, net_opt: Mapping[str, Any], train: bool | None = None,
                    pretrain: str | None = None, param_key: str | None = None, strict: bool | None = None,
                    ema_decay: float = 0.0, ema_warmup: bool = True) -> nn.Module:
        """Build a network from its options and register it under ``name``.

        Args:
            name: Member name (``"g"``, ``"d"``); the checkpoint key is ``net_<name>``.
            net_opt: ``{type: ..., **kwargs}`` (e.g. ``opt['network_g']``).
            train: Whether it is trained (DDP/compile wrapping, train mode); default: whether the trainer was built to train.
            pretrain, param_key, strict: Initial weights (:func:`restoration.utils.weights.load_weights`; the log
                names the file, the entry, the tensors taken and the strictness);
                default: ``path.pretrain_network_<name>``, ``path.param_key_<name>``, ``path.strict_load_<name>``.
            ema_decay: Keep an EMA copy (timm's ``ModelEmaV3``, parameters and buffers) when > 0.
            ema_warmup: Let the EMA's decay grow as ``1 - iter ** (-2/3)`` up to ``ema_decay`` (0.9 at
                iteration 32, 0.99 at 1,000, 0.999 at 31,623), so that the EMA of a short run is not still mostly the
                random initialisation; False: ``ema_decay`` from the first step (BasicSR).

        Returns:
            The bare network (on the device); the training wrapper is ``train_networks[name]``.
        """
        train = self.is_train if train is None else train
        path = self.opt.get("path") or {}
        pretrain = path.get(f"pretrain_network_{name}") if pretrain is None else pretrain
        param_key = path.get(f"param_key_{name}") if param_key is None else param_key
        strict = bool(path.get(f"strict_load_{name}", True)) if strict is None else strict
        net = build_network(net_opt)
        if pretrain:
            _LOGGER.info(f"pretrained net_{name}: {load_weights_report(net, pretrain, param_key, strict)}")
        net = net.to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.networks[name] = net
        if not train:
            net.eval()
            self.train_networks[name] = net
            return net
        net.train()
        if ema_decay > 0:
            from timm.utils import ModelEmaV3  # heavy dependency

            # timm's EMA copies the model at step 1 (update_after_step 0); BasicSR already applies ema_decay there,
            # so without the warm-up the update starts one step earlier (every step at ema_decay, as BasicSR)
            self.emas[name] = ModelEmaV3(net, decay=float(ema_decay), use_warmup=bool(ema_warmup), device=self.device,
                                         update_after_step=0 if ema_warmup else -1)
            self.emas[name].module.eval()
        wrapped: nn.Module = net
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        if self.train_settings.compile:
            wrapped = torch.compile(wrapped)
        self.train_networks[name] = wrapped
        return net

    def add_optimizer(self, name: str, optim_opt: Mapping[str, Any], scheduler_opt: Mapping[str, Any] | None = None,
                      warmup_iter: int = -1, grad_clip: float = 0.0,
                      params: Iterable[nn.Parameter] | None = None) -> torch.optim.Optimizer:
        """An optimizer, learning-rate schedule and GradScaler for network ``name``.

        Args:
            optim_opt: ``{type, lr, ...}``, a type of :data:`restoration.optim.optimizers.OPTIMIZERS`.
            scheduler_opt: ``train.scheduler``-style options (None: constant).
            warmup_iter: Linear warm-up iterations (-1: none).
            grad_clip: Clip the gradient norm of this network's parameters to this value (0: off).
            params: Parameters to optimise; default: every trainable parameter of the network.
        """
        params = [p for p in (params if params is not None else self.networks[name].parameters()) if p.requires_grad]
        optimizer = build_optimizer(params, optim_opt)
        if uses_eval_point(optimizer):
            optimizer.train()  # schedule-free optimizers start in eval mode; training steps need train mode
        self.optimizers[name] = optimizer
        self.schedulers[name] = build_scheduler(optimizer, scheduler_opt, warmup_iter, self.train_opt.get("total_iter"),
                                                self.opt)
        self.scalers[name] = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.grad_clip[name] = float(grad_clip or 0)
        return optimizer

    # ------------------------------------------------------------------ the loop's calls
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

    def optimize_parameters(self, batch: Mapping[str, Any], current_iter: int) -> dict[str, Tensor]:
        """One training iteration; returns the values to log as 0-d tensors (read on logging iterations only)."""
        raise NotImplementedError(f"{type(self).__name__} must implement optimize_parameters")

    def inference(self, lq: Tensor) -> Tensor:
        """Restore a validation/test batch ``lq`` (B, C, h, w) in [0, 1]."""
        raise NotImplementedError(f"{type(self).__name__} must implement inference")

    def evaluation_images(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor | None]:
        """``(output, target)`` of one evaluation batch (batch 1), what validation scores and saves.

        Default: ``inference(batch['lq'])`` against ``batch['gt']`` (None without ground truth). Override it
        for batches of other keys or shapes; an output ``(1, T, C, H, W)`` is scored frame by frame against a
        target of the same shape (:func:`restoration.evaluation.evaluate`).
        """
        return self.inference(batch["lq"].to(self.device)), batch.get("gt")

    def current_lr(self) -> float:
        """Learning rate of the first optimizer (``g``)."""
        first = next(iter(self.optimizers.values()))
        return float(first.param_groups[0]["lr"])

    def autocast(self) -> contextlib.AbstractContextManager:
        """The mixed-precision context of ``train.mixed_precision`` (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @contextlib.contextmanager
    def micro_batch(self, index: int) -> Any:
        """The forward and backward of micro-batch ``index`` (0 .. ``accum_iter - 1``) of one optimizer step.

        With ``train.accum_iter: N`` an iteration is one optimizer step over N micro-batches: each adds
        ``1/N`` of its loss's gradient, DDP all-reduces only in the last one (``no_sync`` before), and
        :meth:`backward_step` steps (clipping, the non-finite check, schedule, EMA) only after the last.
        """
        self._micro = index
        last = index == self.accum_iter - 1
        with contextlib.ExitStack() as stack:
            if not last:
                for net in self.train_networks.values():
                    ddp = getattr(net, "_orig_mod", net)  # under torch.compile
                    if isinstance(ddp, nn.parallel.DistributedDataParallel):
                        stack.enter_context(ddp.no_sync())
            yield

    def backward_step(self, name: str, losses: Mapping[str, Tensor], current_iter: int,
                      log: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Backward of ``sum(losses)`` and one step of network ``name``'s optimizer, schedule and EMA
        (its gradients are zeroed first; call it after the forward pass that made ``losses``).

        A non-finite loss (on any rank) or gradient skips the update: the weights, EMA and optimizer state
        stay as they were and ``skipped`` is logged. Costs at most one host-device synchronisation
        (reading whether the gradient norm is finite, which also covers the loss; none with
        ``skip_nonfinite: false`` outside fp16) and no collective besides DDP's own. Two networks trained
        in one iteration share that one read: :meth:`backward_only` each, then :meth:`finish_steps`.

        With gradient accumulation (:meth:`micro_batch`) the micro-batches before the last only add their
        gradient; the losses logged are the step's means.

        Returns:
            ``log`` updated with the detached losses, ``grad_norm`` (or ``skipped``), as 0-d tensors.
        """
        log, grad_norm = self.backward_only(name, losses, log)
        if grad_norm is None:  # a micro-batch before the step's last
            return log
        return self.finish_steps({name: grad_norm}, current_iter, log)

    def backward_only(self, name: str, losses: Mapping[str, Tensor],
                      log: dict[str, Tensor] | None = None) -> tuple[dict[str, Tensor], Tensor | None]:
        """The first half of :meth:`backward_step`: zeroed gradients, backward, unscaled (fp16) and clipped
        gradients; no step yet, nothing read from the device. Returns ``(log, grad_norm)``; ``grad_norm`` is
        None for a micro-batch before the last of a step (gradient accumulation, :meth:`micro_batch`)."""
        log = {} if log is None else log
        total = sum(losses.values())
        if self.skip_nonfinite:
            # A non-finite loss turns every gradient into NaN (times NaN, not a branch: no host sync),
            # and DDP's gradient all-reduce carries the NaN to every rank, so all ranks skip together.
            total = total * torch.where(torch.isfinite(total.detach()), 1.0, float("nan"))
        optimizer, scaler = self.optimizers[name], self.scalers[name]
        n, micro = self.accum_iter, self._micro
        if micro == 0:
            optimizer.zero_grad(set_to_none=True)
        if n == 1:
            log.update({k: v.detach() for k, v in losses.items()})
            scaler.scale(total).backward()
        else:  # each micro-batch adds 1/n of its gradient: the step's gradient is that of the mean loss
            for k, v in losses.items():
                self._accumulated[k] = self._accumulated.get(k, 0) + v.detach() / n
            scaler.scale(total / n).backward()
            if micro < n - 1:
                return log, None
            log.update(self._accumulated)
            self._accumulated = {}
        scaler.unscale_(optimizer)
        return log, self._grad_norm(name)

    def finish_steps(self, grad_norms: Mapping[str, Tensor], current_iter: int,
                     log: dict[str, Tensor]) -> dict[str, Tensor]:
        """The second half: step (or skip) each network of ``grad_norms`` (name -> its norm from
        :meth:`backward_only`), in that order, deciding all of them from one read of the device."""
        checked = [name for name in grad_norms if self.skip_nonfinite or self.scalers[name].is_enabled()]
        finite = dict.fromkeys(grad_norms, True)
        if checked:
            # fp16 must skip non-finite gradients (the GradScaler's rule); the scaler's own step() would read
            # found_inf a second time, so the decision is taken once here from the gradient norms.
            flags = torch.isfinite(torch.stack([grad_norms[name].float() for name in checked])).tolist()
            finite.update(zip(checked, flags))
        for name, grad_norm in grad_norms.items():
            optimizer, scaler = self.optimizers[name], self.scalers[name]
            if not finite[name]:
                scaler.update()  # fp16: back off the scale (a no-op when disabled)
                log = self._skip(name, log, current_iter)
                continue
            optimizer.step()  # gradients are already unscaled: what GradScaler.step does when all are finite
            scaler.update()
            self.schedulers[name].step()
            self.update_ema(name, current_iter)
            log["grad_norm" if name == "g" else f"grad_norm_{name}"] = grad_norm.detach()
        return log

    def step_schedule(self, name: str) -> None:
        """Advance network ``name``'s learning-rate schedule by one iteration without an optimizer step.

        For an iteration whose step was skipped (non-finite) or that the network waits out (GAN
        ``net_d_init_iters``): the schedule stays on the iteration counter. torch warns when a schedule's
        first step comes before its optimizer's; here that order is intended, so that warning is silenced.
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            self.schedulers[name].step()

    def update_ema(self, name: str, current_iter: int) -> None:
        """Move network ``name``'s EMA (when it has one) towards its current weights."""
        if name in self.emas:
            self.emas[name].update(self.networks[name], step=current_iter)

    def _grad_norm(self, name: str) -> Tensor:
        """Total L2 norm of network ``name``'s gradients, clipped to its ``grad_clip`` first when set.

        Without clipping the norm is only measured: ``clip_grad_norm_(max_norm=inf)`` would also
        multiply every gradient by 1.
        """
        params = [p for p in self.networks[name].parameters() if p.grad is not None]
        if not params:
            return torch.zeros((), device=self.device)
        if self.grad_clip[name] > 0:
            return torch.nn.utils.clip_grad_norm_(params, self.grad_clip[name], foreach=True)
        grads = [p.grad for p in params]
        if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6
            return torch.nn.utils.get_total_norm(grads, foreach=True)
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))

    def _skip(self, name: str, log: dict[str, Tensor], current_iter: int) -> dict[str, Tensor]:
        self.optimizers[name].zero_grad(set_to_none=True)
        self.step_schedule(name)  # keep the schedule aligned with the iteration counter
        self.skipped_steps += 1
        log["skipped"] = torch.ones((), device=self.device)
        values = ", ".join(f"{k} {float(v):.4g}" for k, v in log.items())
        _LOGGER.warning(
            f"iter {current_iter}: non-finite loss or gradient of net_{name} ({values}); step skipped, weights "
            f"unchanged ({self.skipped_steps} skipped so far)"
        )
        return log

    # ------------------------------------------------------------------ checkpoints
    @contextlib.contextmanager
    def evaluation_point(self) -> Any:
        """Within the block, networks trained by a schedule-free optimizer hold the point it evaluates at (its
        averaged iterate, ``optimizer.eval()``); after it, exactly the training point again. Validation and the
        saved weights use it; training states keep the training point, so a resume continues bit-exactly.

        ``optimizer.train()`` after ``eval()`` is not exact in floating point, so the training point is copied
        before and written back after (one copy of those networks' parameters while the block runs).
        """
        held = {name: opt for name, opt in self.optimizers.items() if uses_eval_point(opt)}
        kept = {name: [p.detach().clone() for g in opt.param_groups for p in g["params"]]
                for name, opt in held.items()}
        for opt in held.values():
            opt.eval()
        try:
            yield
        finally:
            for name, opt in held.items():
                opt.train()  # the optimizer's own mode flags; the parameters are then restored bit for bit
                with torch.no_grad():
                    for p, saved in zip((p for g in opt.param_groups for p in g["params"]), kept[name]):
                        p.copy_(saved)

    def evaluated_weights(self) -> str:
        """Which weights validation scores and why, for its log line (``params``: the trained network's)."""
        return "params"

    def network_states(self) -> dict[str, dict[str, Any]]:
        """``{name: {'params': sd}}`` (+ ``'params_ema'`` where the network has an EMA) for every network, in
        :attr:`networks` order (``g`` first): BasicSR's weight-file layout, CPU copies; a schedule-free
        optimizer's evaluation point (:meth:`evaluation_point`)."""
        out: dict[str, dict[str, Any]] = {}
        with self.evaluation_point():
            # a copy even on the CPU: the block writes the training point back into these tensors
            for name, net in self.networks.items():
                out[name] = {"params": {k: v.detach().to("cpu", copy=True)
                                        for k, v in unwrap(net).state_dict().items()}}
        for name, ema in self.emas.items():
            out[name]["params_ema"] = {k: v.detach().cpu() for k, v in ema.module.state_dict().items()}
        return out

    def training_state(self) -> dict[str, Any]:
        """Everything needed to continue bit-exactly (tensors and plain containers only)."""
        state: dict[str, Any] = {"skipped_steps": self.skipped_steps}
        for name, net in self.networks.items():
            state[_state_key("net", name)] = unwrap(net).state_dict()
        for name, optimizer in self.optimizers.items():
            scheduler = self.schedulers[name]
            state[_state_key("optimizer", name)] = optimizer.state_dict()
            state[_state_key("scheduler", name)] = {"last_epoch": scheduler.last_epoch, "base_lrs": scheduler.base_lrs}
            if isinstance(scheduler, PlateauLR):  # the metric-driven part (best, bad validations, factors)
                state[_state_key("scheduler", name)]["plateau"] = scheduler.plateau.state_dict()
            state[_state_key("scaler", name)] = self.scalers[name].state_dict()
        for name, ema in self.emas.items():
            state[_state_key("ema", name)] = ema.module.state_dict()
        return state

    def after_validation(self, scores: Mapping[str, Mapping[str, float]]) -> None:
        """Feed a validation's scores (``{set name: {metric: value}}``, the same on every rank) to the schedules
        that follow a metric (``ReduceLROnPlateau``); their new lr applies from the next step."""
        for scheduler in self.schedulers.values():
            if isinstance(scheduler, PlateauLR):
                scheduler.step_metric(scores)

    def metric_schedule_state(self) -> dict[str, Any]:
        """``{network name: plateau state}`` of the metric-driven schedules (JSON-safe; empty without one)."""
        return {name: s.plateau.state_dict() for name, s in self.schedulers.items() if isinstance(s, PlateauLR)}

    def load_metric_schedule_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`metric_schedule_state` (the lr follows at once)."""
        for name, saved in state.items():
            scheduler = self.schedulers.get(name)
            if isinstance(scheduler, PlateauLR):
                scheduler.plateau.load_state_dict(saved)
                for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs,
                                               scheduler.lr_lambdas):
                    group["lr"] = base * factor(scheduler.last_epoch)

    def rank_state(self) -> dict[str, Any]:
        """This process's own part of the training state, which differs between ranks (e.g. a pool of
        training pairs made from this rank's batches); saved for every rank. Default: nothing."""
        return {}

    def load_rank_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`rank_state` (not called for a rank the saved run did not have)."""

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`training_state`."""
        for name, net in self.networks.items():
            try:
                unwrap(net).load_state_dict(state[_state_key("net", name)])
            except (KeyError, RuntimeError) as exc:  # another network, another trainer's state
                raise CheckpointError(f"the training state does not fit net_{name} "
                                      f"({type(net).__name__}): {str(exc).splitlines()[0]}") from exc
        for name, ema in self.emas.items():
            key = _state_key("ema", name)
            if key not in state:
                raise CheckpointError(f"the training state has no EMA weights for net_{name} but an EMA is configured")
            ema.module.load_state_dict(state[key])
        for name, optimizer in self.optimizers.items():
            # The optimizer's moments come from the state; its settings (lr, betas, weight decay) and the
            # schedule from the current options, so a changed train.optim_<name> or scheduler applies as a
            # whole from the resumed iteration (unchanged options give the saved values exactly).
            # (only the constructor's options: schedule-free keeps its running sums in the param groups)
            options = set(optimizer_options(type(optimizer)))
            settings = [{k: v for k, v in group.items() if k in options} for group in optimizer.param_groups]
            optimizer.load_state_dict(state[_state_key("optimizer", name)])
            for group, own in zip(optimizer.param_groups, settings):
                group.update(own)
            scheduler, saved = self.schedulers[name], state[_state_key("scheduler", name)]
            scheduler.last_epoch = int(saved["last_epoch"])
            if isinstance(scheduler, PlateauLR) and "plateau" in saved:
                scheduler.plateau.load_state_dict(saved["plateau"])
            for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
                group["lr"] = base * factor(scheduler.last_epoch)
            self.scalers[name].load_state_dict(state[_state_key("scaler", name)])
        self.skipped_steps = int(state.get("skipped_steps", 0))
