"""The batched, second-order Real-ESRGAN degradation (Wang et al. 2021), run on the training device.

The data workers draw the blur kernels (:class:`~restoration.data.realesrgan_dataset.RealESRGANDataset`);
the trainer turns each batch into training pairs with :func:`realesrgan_degrade`, in this order
(BasicSR ``RealESRGANModel.feed_data``)::

    gt ─ USM ─ blur(kernel1) ─ resize ─ noise ─ JPEG                                  first order
         ─ [blur(kernel2)] ─ resize ─ noise ─ {resize to gt/scale, sinc, JPEG | JPEG, resize, sinc}
         ─ round to 8 bits ─ crop gt_size ─ training-pair pool ─ (lq, gt, USM(gt))

Options are a plain mapping with BasicSR's key names (the top level of its option files);
:data:`DEGRADATION_DEFAULTS` holds the Real-ESRGAN x4plus values, used for every key not given.

Randomness: every draw comes from the CPU ``torch.Generator`` passed in, which the trainer seeds from
``(manual_seed, iteration, rank)`` with :func:`degradation_generator`; noise fields are drawn on the
images' device from a generator seeded by it. So an iteration's degradation depends on nothing but
its batch and its seed, and a resumed run repeats it bit for bit on the CPU (on a GPU up to the
non-determinism of its kernels). The pool's contents are part of the training state
(:meth:`TrainingPairPool.state_dict`).
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from restoration.data.degradations.kernels import check_probabilities, check_range
from restoration.data.degradations.diff_jpeg import TABLE_LAYOUTS, diff_jpeg
from restoration.errors import DataError

__all__ = ["DEGRADATION_DEFAULTS", "RESIZE_MODES", "resolve_degradation_options", "check_degradation_options", "queue_problems",
           "degradation_generator", "filter2d", "usm_kernel", "usm_sharp", "add_gaussian_noise", "add_poisson_noise",
           "realesrgan_degrade", "TrainingPairPool"]

#: The Real-ESRGAN x4plus recipe (Real-ESRGAN ``options/train_realesrgan_x4plus.yml``, same in BasicSR and HAT).
DEGRADATION_DEFAULTS: dict[str, Any] = {
    "scale": 4,
    "gt_usm": True,  # degrade the USM-sharpened GT (RealESRGANModel always does; RealESRNet x4plus sets it)
    # first order
    "resize_prob": [0.2, 0.7, 0.1],  # up, down, keep
    "resize_range": [0.15, 1.5],
    "gaussian_noise_prob": 0.5,  # else Poisson
    "noise_range": [1, 30],  # Gaussian sigma, [0, 255] units
    "poisson_scale_range": [0.05, 3],
    "gray_noise_prob": 0.4,
    "jpeg_range": [30, 95],
    # second order
    "second_blur_prob": 0.8,
    "resize_prob2": [0.3, 0.4, 0.3],
    "resize_range2": [0.3, 1.2],
    "gaussian_noise_prob2": 0.5,
    "noise_range2": [1, 25],
    "poisson_scale_range2": [0.05, 2.5],
    "gray_noise_prob2": 0.4,
    "jpeg_range2": [30, 95],
    # BasicSR's DiffJPEG transposes the luma table: 'basicsr' reproduces the degradation the released
    # Real-ESRGAN / Real-HAT models were trained with; 'standard' (libjpeg's layout) is closer to real JPEG files
    "jpeg_table_layout": "standard",
    # pairs
    "gt_size": 256,  # GT crop after degrading (null: no crop)
    "queue_size": 180,  # training-pair pool (0: none); a multiple of the per-rank batch size
}
RESIZE_MODES = ("area", "bilinear", "bicubic")
_USM_SIZE, _USM_SIGMA = 51, 8.0  # BasicSR USMSharp(radius=50): 51 taps, OpenCV's sigma for ksize 51


def resolve_degradation_options(opt: Mapping[str, Any]) -> dict[str, Any]:
    """:data:`DEGRADATION_DEFAULTS` updated with the keys of ``opt`` that it declares (others are ignored,
    so a trainer may pass its whole ``train`` section)."""
    return {key: opt.get(key, default) for key, default in DEGRADATION_DEFAULTS.items()}


def check_degradation_options(opt: Mapping[str, Any], batch_size: int | None = None) -> list[str]:
    """Every problem of the degradation options as one line each (never raises).

    ``batch_size`` is the per-rank batch: the pool's ``queue_size`` must be a multiple of it.
    """
    o = resolve_degradation_options(opt)
    problems: list[str] = []

    def probability(key: str) -> None:
        value = o[key]
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1):
            problems.append(f"{key} must be a probability in [0, 1], got {value!r}")

    for s in ("", "2"):
        problems += check_probabilities("resize_prob" + s, o["resize_prob" + s], 3)
        range_problems = check_range("resize_range" + s, o["resize_range" + s], positive=True)
        problems += range_problems
        if not range_problems and not o["resize_range" + s][0] <= 1 <= o["resize_range" + s][1]:
            problems.append(f"resize_range{s} {o['resize_range' + s]} must contain 1 (down: U(low, 1), up: U(1, high))")
        problems += check_range("noise_range" + s, o["noise_range" + s], 0, 255)
        problems += check_range("poisson_scale_range" + s, o["poisson_scale_range" + s], 0)
        problems += check_range("jpeg_range" + s, o["jpeg_range" + s], 1, 100)
        probability("gaussian_noise_prob" + s)
        probability("gray_noise_prob" + s)
    probability("second_blur_prob")
    if o["jpeg_table_layout"] not in TABLE_LAYOUTS:
        problems.append(f"jpeg_table_layout must be one of {list(TABLE_LAYOUTS)}, got {o['jpeg_table_layout']!r}")
    scale, gt_size, queue = o["scale"], o["gt_size"], o["queue_size"]
    if not (isinstance(scale, int) and not isinstance(scale, bool) and scale >= 1):
        problems.append(f"scale must be an integer >= 1, got {scale!r}")
    elif gt_size is not None and not (isinstance(gt_size, int) and gt_size > 0 and gt_size % scale == 0):
        problems.append(f"gt_size must be a positive multiple of scale {scale} (or null: no crop), got {gt_size!r}")
    if not (isinstance(queue, int) and not isinstance(queue, bool) and queue >= 0):
        problems.append(f"queue_size must be an integer >= 0 (0: no training-pair pool), got {queue!r}")
    elif batch_size:
        problems += queue_problems(queue, batch_size)
    if not isinstance(o["gt_usm"], bool):
        problems.append(f"gt_usm must be true or false, got {o['gt_usm']!r}")
    return problems


def queue_problems(queue: Any, batch_size: int) -> list[str]:
    """The pool swaps whole batches: a positive integer ``queue_size`` must be a multiple of the per-rank batch."""
    if isinstance(queue, int) and not isinstance(queue, bool) and queue > 0 and queue % batch_size:
        return [f"queue_size {queue} must be a multiple of the per-GPU batch size {batch_size} "
                f"(e.g. {max(1, queue // batch_size) * batch_size})"]
    return []


def degradation_generator(manual_seed: int, iteration: int, rank: int = 0) -> torch.Generator:
    """The CPU generator of one iteration's degradation on one rank: a pure function of its arguments,
    so a resumed run draws what the interrupted one drew, and ranks draw differently."""
    words = np.random.SeedSequence([abs(int(manual_seed)), int(iteration), int(rank)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed((int(words[0]) << 31) ^ int(words[1]))


# --------------------------------------------------------------------------------------------- operations
def filter2d(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Filter each image of ``(B, C, H, W)`` with its own odd ``(B, k, k)`` kernel (or one ``(k, k)``),
    all channels alike; reflect-padded (replicate when the image is smaller than the half kernel).
    Cross-correlation, as BasicSR's ``filter2D``; the Real-ESRGAN kernels are point-symmetric anyway."""
    b, c, h, w = img.shape
    kernel = kernel.to(img).expand(b, *kernel.shape[-2:]) if kernel.dim() == 2 or kernel.shape[0] == 1 else kernel.to(img)
    k = kernel.shape[-1]
    if k % 2 == 0:
        raise ValueError(f"filter2d needs an odd kernel size, got {k}")
    pad = k // 2
    mode = "reflect" if pad < min(h, w) else "replicate"
    x = F.pad(img, (pad, pad, pad, pad), mode=mode).reshape(1, b * c, h + 2 * pad, w + 2 * pad)
    weight = kernel.repeat_interleave(c, dim=0).unsqueeze(1)  # (B*C, 1, k, k)
    return F.conv2d(x, weight, groups=b * c).reshape(b, c, h, w)


def on_device(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """CPU-drawn ``values`` on ``like``'s device and dtype without a host sync: a blocking copy to a GPU
    waits for every queued kernel, a non-blocking one of a small pageable tensor is staged at once."""
    return values.to(like.device, non_blocking=True).to(like.dtype)


def _usm_gaussian() -> torch.Tensor:
    """The normalised 1-D Gaussian of the USM blur, ``(51,)`` float64."""
    taps = torch.arange(_USM_SIZE, dtype=torch.float64) - (_USM_SIZE - 1) / 2
    g = torch.exp(-taps ** 2 / (2 * _USM_SIGMA ** 2))
    return g / g.sum()


@functools.lru_cache(maxsize=8)
def _usm_taps(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """:func:`_usm_gaussian` on ``device`` in ``dtype``, made once per device (no copy per call)."""
    with torch.inference_mode(False):  # a cached tensor must serve autograd too
        return _usm_gaussian().to(device=device, dtype=dtype)


def _gaussian_blur(img: torch.Tensor) -> torch.Tensor:
    """The USM blur: the 51×51 Gaussian (sigma 8) as two 1-D passes, equal to :func:`filter2d` with the
    outer-product kernel up to rounding and 25 times cheaper."""
    g = _usm_taps(img.device, img.dtype)
    b, c, h, w = img.shape
    pad = _USM_SIZE // 2
    mode = "reflect" if pad < min(h, w) else "replicate"
    x = F.pad(img, (pad, pad, pad, pad), mode=mode).reshape(b * c, 1, h + 2 * pad, w + 2 * pad)
    x = F.conv2d(F.conv2d(x, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))
    return x.reshape(b, c, h, w)


def usm_kernel() -> torch.Tensor:
    """The USM blur kernel ``(51, 51)`` (outer product of the 1-D Gaussian), float64."""
    g = _usm_gaussian()
    return torch.outer(g, g)


def usm_sharp(img: torch.Tensor, weight: float = 0.5, threshold: float = 10.0) -> torch.Tensor:
    """Unsharp masking (BasicSR ``USMSharp``): add ``weight`` × (image − blur) where the residual exceeds
    ``threshold``/255, blended with a blurred mask. ``(B, C, H, W)`` in [0, 1] → same; a flat image is unchanged."""
    residual = img - _gaussian_blur(img)
    mask = (residual.abs() * 255 > threshold).to(img)
    soft_mask = _gaussian_blur(mask)
    sharp = (img + weight * residual).clamp(0, 1)
    return soft_mask * sharp + (1 - soft_mask) * img


def _gray(img: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma ``(B, 1, H, W)``, torchvision's ``rgb_to_grayscale`` weights; a one-channel image is
    its own luma."""
    if img.shape[1] == 1:
        return img
    return 0.2989 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3]


def add_gaussian_noise(img: torch.Tensor, sigma: torch.Tensor, gray: torch.Tensor,
                       generator: torch.Generator) -> torch.Tensor:
    """``img + N(0, sigma/255)`` per sample (``sigma`` ``(B,)`` in [0, 255] units), one field on all channels
    where ``gray`` ``(B,)`` is true; clipped to [0, 1]. ``generator`` lives on ``img``'s device.

    Each gray sample has its own field (BasicSR shares one gray field across the batch, scaled per sample;
    independent fields are the intended distribution)."""
    b, c, h, w = img.shape
    any_gray = bool(gray.any())  # before the move: the pipeline's coins are CPU tensors, no device sync
    sigma = on_device(sigma, img).view(b, 1, 1, 1) / 255.0
    gray = on_device(gray, img).view(b, 1, 1, 1)
    noise = torch.randn(img.shape, generator=generator, device=img.device, dtype=img.dtype) * sigma
    if any_gray:
        gray_noise = torch.randn((b, 1, h, w), generator=generator, device=img.device, dtype=img.dtype) * sigma
        noise = noise * (1 - gray) + gray_noise * gray
    return (img + noise).clamp(0, 1)


def _poisson_noise(img: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shot noise of each image of ``(B, C, H, W)`` quantised to 8 bits, with as many photon levels as the
    next power of two above its number of distinct values (BasicSR ``generate_poisson_noise_pt``)."""
    b = img.shape[0]
    # NaN counts as 0 here; it stays in the image, and realesrgan_degrade reports it.
    levels = torch.clamp(torch.nan_to_num(img * 255.0).round(), 0, 255)
    # Distinct 8-bit values per sample: which of the 256 occur, scattered into a fixed-size table (bincount
    # would read its output size back from the GPU)
    present = torch.zeros((b, 256), dtype=torch.bool, device=img.device)
    present.scatter_(1, levels.reshape(b, -1).long(), True)
    distinct = present.sum(1).clamp(min=1)
    vals = torch.exp2(torch.ceil(torch.log2(distinct.double()))).to(img).view(b, 1, 1, 1)
    quantised = levels / 255.0
    return torch.poisson(quantised * vals, generator=generator) / vals - quantised


def add_poisson_noise(img: torch.Tensor, scale: torch.Tensor, gray: torch.Tensor,
                      generator: torch.Generator) -> torch.Tensor:
    """``img`` + ``scale`` × Poisson noise per sample (``scale``, ``gray``: ``(B,)``), clipped to [0, 1]."""
    b = img.shape[0]
    any_gray = bool(gray.any())  # before the move, as in add_gaussian_noise
    noise = _poisson_noise(img, generator)
    gray = on_device(gray, img).view(b, 1, 1, 1)
    if any_gray:
        noise = noise * (1 - gray) + _poisson_noise(_gray(img), generator).expand_as(noise) * gray
    return (img + noise * on_device(scale, img).view(b, 1, 1, 1)).clamp(0, 1)


# --------------------------------------------------------------------------------------------- the pipeline
class _Draws:
    """Random draws of one degradation from the CPU generator, recorded for error messages."""

    def __init__(self, generator: torch.Generator, device: torch.device) -> None:
        if generator.device.type != "cpu":
            raise ValueError("realesrgan_degrade draws its parameters from a CPU torch.Generator "
                             f"(use degradation_generator), got one on {generator.device}")
        self.g = generator
        self.params: dict[str, Any] = {"seed": generator.initial_seed()}
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
        self.device_g = torch.Generator(device=device).manual_seed(seed)  # noise fields, on the images' device

    def uniform(self, name: str, low: float, high: float, n: int | None = None) -> torch.Tensor | float:
        value = torch.rand(n or 1, generator=self.g, dtype=torch.float64) * (high - low) + low
        self.params[name] = [round(v, 4) for v in value.tolist()] if n else round(value.item(), 4)
        return value.float() if n else value.item()

    def coin(self, name: str, p: float) -> bool:
        self.params[name] = bool(torch.rand(1, generator=self.g).item() < p)
        return self.params[name]

    def coins(self, name: str, p: float, n: int) -> torch.Tensor:
        value = torch.rand(n, generator=self.g) < p
        self.params[name] = value.int().tolist()
        return value

    def choice(self, name: str, options: tuple[str, ...], probs: list[float] | None = None) -> str:
        weights = torch.tensor(probs if probs is not None else [1.0] * len(options), dtype=torch.float64)
        self.params[name] = options[int(torch.multinomial(weights, 1, generator=self.g))]
        return self.params[name]


def _resize_factor(draws: _Draws, stage: str, probs: list[float], scale_range: list[float]) -> float:
    kind = draws.choice(f"resize{stage}", ("up", "down", "keep"), probs)
    if kind == "up":
        return draws.uniform(f"resize{stage}_factor", 1.0, scale_range[1])
    if kind == "down":
        return draws.uniform(f"resize{stage}_factor", scale_range[0], 1.0)
    return 1.0


def _noise(out: torch.Tensor, draws: _Draws, o: dict[str, Any], s: str) -> torch.Tensor:
    b = out.shape[0]
    if draws.coin(f"gaussian_noise{s}", o["gaussian_noise_prob" + s]):
        sigma = draws.uniform(f"noise_sigma{s}", *o["noise_range" + s], n=b)
        gray = draws.coins(f"gray_noise{s}", o["gray_noise_prob" + s], b)
        return add_gaussian_noise(out, sigma, gray, draws.device_g)
    scale = draws.uniform(f"poisson_scale{s}", *o["poisson_scale_range" + s], n=b)
    gray = draws.coins(f"gray_noise{s}", o["gray_noise_prob" + s], b)
    return add_poisson_noise(out, scale, gray, draws.device_g)


def _jpeg(out: torch.Tensor, draws: _Draws, jpeg_range: list[float], s: str, layout: str) -> torch.Tensor:
    """Per-sample JPEG of ``(B, C, H, W)``, ``C`` 3 (RGB) or 1 (gray)."""
    quality = draws.uniform(f"jpeg_quality{s}", *jpeg_range, n=out.shape[0]).to(out.device, non_blocking=True)
    if out.shape[1] == 1:
        # A gray image as RGB has Y = the image and constant chroma (128, which quantises to itself), so the
        # round trip is a luma-only JPEG (what a gray JPEG file stores) and R = G = B = its result
        return diff_jpeg(out.clamp(0, 1).expand(-1, 3, -1, -1), quality, table_layout=layout).mean(1, keepdim=True)
    return diff_jpeg(out.clamp(0, 1), quality, table_layout=layout)


def realesrgan_degrade(batch: Mapping[str, Any], opt: Mapping[str, Any], generator: torch.Generator,
                       pool: "TrainingPairPool | None" = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Synthesise a batch of training pairs from GT images and their kernels.

    Args:
        batch: A batch of :class:`RealESRGANDataset`: ``gt`` ``(B, C, H, W)`` in [0, 1] on the training
            device (``C`` 3: RGB, or 1: gray), ``kernel1``, ``kernel2`` ``(B, k, k)``, ``sinc_kernel``
            ``(B, k', k')`` (any device);
            ``gt_path`` is named in errors when present.
        opt: Degradation options with BasicSR's names (see :data:`DEGRADATION_DEFAULTS`; other keys are
            ignored).
        generator: CPU generator of this iteration (:func:`degradation_generator`); every draw comes from it.
        pool: The trainer's training-pair pool (its state is saved with the training state), or ``None``.

    Returns:
        ``(lq, gt, gt_usm)``: ``lq`` ``(B, C, gt_size/scale, gt_size/scale)`` on the 8-bit grid,
        ``gt`` ``(B, C, gt_size, gt_size)`` and ``gt_usm`` its USM-sharpened copy, in [0, 1], float32.
        A gray batch (``C = 1``) gets the same stages: its "gray noise" is its only noise (the coin is
        still drawn, so the draws line up with RGB's), its JPEG is luma-only.

    Raises:
        DataError: If the result is not finite, naming the generator's seed, the samples and every draw.
    """
    o = resolve_degradation_options(opt)
    gt = batch["gt"].float()
    b, _, h0, w0 = gt.shape
    scale = int(o["scale"])
    draws = _Draws(generator, gt.device)

    with torch.no_grad():
        out = usm_sharp(gt) if o["gt_usm"] else gt
        # first order
        out = filter2d(out, batch["kernel1"])
        factor = _resize_factor(draws, "1", o["resize_prob"], o["resize_range"])
        out = F.interpolate(out, scale_factor=factor, mode=draws.choice("resize1_mode", RESIZE_MODES))
        out = _noise(out, draws, o, "")
        out = _jpeg(out, draws, o["jpeg_range"], "", o["jpeg_table_layout"])
        # second order
        if draws.coin("second_blur", o["second_blur_prob"]):
            out = filter2d(out, batch["kernel2"])
        factor = _resize_factor(draws, "2", o["resize_prob2"], o["resize_range2"])
        size = (max(1, int(h0 / scale * factor)), max(1, int(w0 / scale * factor)))
        out = F.interpolate(out, size=size, mode=draws.choice("resize2_mode", RESIZE_MODES))
        out = _noise(out, draws, o, "2")
        # The last resize, sinc and JPEG in one of two orders; other orders give twisted lines (Real-ESRGAN).
        lq_size = (h0 // scale, w0 // scale)
        if draws.coin("final_sinc_first", 0.5):
            out = F.interpolate(out, size=lq_size, mode=draws.choice("final_resize_mode", RESIZE_MODES))
            out = filter2d(out, batch["sinc_kernel"])
            out = _jpeg(out, draws, o["jpeg_range2"], "2", o["jpeg_table_layout"])
        else:
            out = _jpeg(out, draws, o["jpeg_range2"], "2", o["jpeg_table_layout"])
            out = F.interpolate(out, size=lq_size, mode=draws.choice("final_resize_mode", RESIZE_MODES))
            out = filter2d(out, batch["sinc_kernel"])
        lq = torch.clamp((out * 255.0).round(), 0, 255) / 255.0

        finite = torch.isfinite(lq).flatten(1).all(1)
        if not bool(finite.all()):
            bad = torch.nonzero(~finite).flatten().tolist()
            paths = batch.get("gt_path")
            named = [paths[i] for i in bad] if isinstance(paths, (list, tuple)) else []
            raise DataError(f"the Real-ESRGAN degradation produced NaN/Inf for sample(s) {bad} of the batch "
                            f"{named or ''} (generator seed {draws.params['seed']}); parameters: {draws.params}. "
                            "Check those images and kernels (a kernel1/kernel2/sinc_kernel with NaN, a GT with NaN).")

        gt_size = o["gt_size"]
        if gt_size is not None:
            lq, gt = _paired_crop(lq, gt, int(gt_size), scale, draws)
        if pool is not None:
            lq, gt = pool(lq, gt, generator)
        return lq, gt, usm_sharp(gt)


def _paired_crop(lq: torch.Tensor, gt: torch.Tensor, gt_size: int, scale: int,
                 draws: _Draws) -> tuple[torch.Tensor, torch.Tensor]:
    """One crop position for the whole batch: ``gt_size // scale`` on LQ, ``gt_size`` at ``scale`` × on GT."""
    lq_size = gt_size // scale
    h, w = lq.shape[-2:]
    if h < lq_size or w < lq_size:
        raise DataError(f"gt_size {gt_size} is larger than the GT images ({h * scale}x{w * scale}); lower gt_size")
    top = int(torch.randint(0, h - lq_size + 1, (1,), generator=draws.g))
    left = int(torch.randint(0, w - lq_size + 1, (1,), generator=draws.g))
    draws.params["crop"] = (top, left)
    return (lq[..., top: top + lq_size, left: left + lq_size],
            gt[..., top * scale: (top + lq_size) * scale, left * scale: (left + lq_size) * scale])


# --------------------------------------------------------------------------------------------- the pool
class TrainingPairPool:
    """A pool of ``queue_size`` training pairs that mixes degradations across batches (Real-ESRGAN's
    ``_dequeue_and_enqueue``): a batch of one iteration shares its resize/noise types, so training on
    pairs drawn from many iterations decorrelates a batch.

    While the pool fills, each batch is stored and used unchanged; once full, the pool is shuffled,
    its first ``B`` pairs are used and the incoming batch takes their place. The state
    (:meth:`state_dict`: the stored pairs and the fill pointer) is part of the training state, so a
    resumed run continues exactly.
    """

    def __init__(self, queue_size: int) -> None:
        if not (isinstance(queue_size, int) and queue_size > 0):
            raise DataError(f"queue_size must be a positive integer, got {queue_size!r}")
        self.queue_size = queue_size
        self.lq: torch.Tensor | None = None
        self.gt: torch.Tensor | None = None
        self.ptr = 0

    def __call__(self, lq: torch.Tensor, gt: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Put ``(lq, gt)`` (``(B, C, h, w)``, ``(B, C, H, W)``) into the pool; return the pairs to train on."""
        b = lq.shape[0]
        if self.queue_size % b:
            raise DataError(f"queue_size {self.queue_size} is not a multiple of the batch size {b}")
        if self.lq is None:
            self.lq = lq.new_zeros((self.queue_size, *lq.shape[1:]))
            self.gt = gt.new_zeros((self.queue_size, *gt.shape[1:]))
        elif self.lq.shape[1:] != lq.shape[1:] or self.gt.shape[1:] != gt.shape[1:]:
            raise DataError(f"the pool holds pairs of {tuple(self.lq.shape[1:])}/{tuple(self.gt.shape[1:])}, "
                            f"got {tuple(lq.shape[1:])}/{tuple(gt.shape[1:])}: gt_size changed during training")
        if self.ptr < self.queue_size:
            self.lq[self.ptr: self.ptr + b] = lq
            self.gt[self.ptr: self.ptr + b] = gt
            self.ptr += b
            return lq, gt
        order = torch.randperm(self.queue_size, generator=generator).to(self.lq.device, non_blocking=True)
        self.lq, self.gt = self.lq[order], self.gt[order]
        out_lq, out_gt = self.lq[:b].clone(), self.gt[:b].clone()
        self.lq[:b], self.gt[:b] = lq, gt
        return out_lq, out_gt

    def state_dict(self) -> dict[str, Any]:
        """``{'queue_size', 'ptr', 'lq', 'gt'}``; the pairs as CPU copies (``None`` before the first batch)."""
        return {"queue_size": self.queue_size, "ptr": self.ptr,
                "lq": None if self.lq is None else self.lq.detach().cpu().clone(),
                "gt": None if self.gt is None else self.gt.detach().cpu().clone()}

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device | str | None = None) -> None:
        """Restore :meth:`state_dict`; the pairs move to ``device`` (default: where they were saved from the CPU)."""
        if state["queue_size"] != self.queue_size:
            raise DataError(f"the saved training-pair pool has queue_size {state['queue_size']}, "
                            f"the options say {self.queue_size}")
        self.ptr = int(state["ptr"])
        self.lq = None if state["lq"] is None else state["lq"].clone().to(device or "cpu")
        self.gt = None if state["gt"] is None else state["gt"].clone().to(device or "cpu")
