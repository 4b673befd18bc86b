"""Restormer's option files (swz30/Restormer ``Options/*.yml``) read as they are: its spellings translated into ours.

Called by :func:`restoration.options.upstream.translate_upstream` before the datasets are looked up; each
translation leaves one notice, and a Restormer feature with no counterpart here is a problem that names it and says
what to write instead. ``model_type: ImageCleanModel`` itself is an alias of SRModel (its notice is in
:data:`restoration.options.upstream.MODEL_ALIASES`). What ImageCleanModel adds to a plain supervised step, and its
translation here:

* ``train.use_grad_clip: true`` clips the gradient norm to 0.01 (a constant in its code) -> ``train.grad_clip: 0.01``;
  NAFNet's ``ImageRestorationModel`` reads the same switch with the default true, so a NAFNet training file that
  does not set it (none of the official ones does) clips too;
* ``train.mixing_augs`` (``mixup``, ``mixup_beta``, ``use_identity``): mixup of the batch with itself permuted, a
  weight from Beta(mixup_beta, mixup_beta), applied to every batch or, with ``use_identity``, to one batch in two
  (it picks among mixup and "identity") -> ``train.batch_augment: [{type: mixup, alpha: mixup_beta, prob: 1 or
  0.5}]`` (:func:`restoration.data.batch_augment.mixup`, the same operation after the progressive crop, as there);
* the datasets ``Dataset_PairedImage`` and ``Dataset_GaussianDenoising`` (below), whose ``geometric_augs`` draws
  one of the 8 flips/rotations, as ``use_hflip`` + ``use_rot`` do;
* ``val.window_size`` (its test-time padding multiple: the network's size contract pads here), ``val.rgb2bgr`` and
  ``val.max_minibatch`` (unused by its single-image validation) are dropped.

The progressive keys (``mini_batch_sizes``, ``gt_sizes``, ``iters``) need no translation: every training set here
declares them (:mod:`restoration.data.progressive_patches`).
"""

from __future__ import annotations

from typing import Any, Mapping

from restoration.errors import value_repr

__all__ = ["RESTORMER_DATASETS", "RESTORMER_GRAD_CLIP", "translate_restormer"]

#: The gradient-norm bound ImageCleanModel (and NAFNet's ImageRestorationModel) apply with ``use_grad_clip``.
RESTORMER_GRAD_CLIP = 0.01

#: Restormer's dataset types -> (ours, why they are the same).
RESTORMER_DATASETS: dict[str, tuple[str, str]] = {
    "Dataset_PairedImage": ("PairedImageDataset", "Restormer's paired GT/LQ folders with random crops"),
    "Dataset_GaussianDenoising": ("DegradationDataset",
                                  "clean images with Gaussian noise (unclipped, [0, 255] units) added on the fly"),
}

_MODELS = ("ImageCleanModel", "ImageRestorationModel")


def _yaml(value: Any) -> str:
    """A value as the option file writes it (``true``, not ``True``)."""
    return str(value).lower() if isinstance(value, bool) else value_repr(value)
_VAL_DROPPED = {"window_size": "the network's own size contract pads here",
                "rgb2bgr": "images are written in the right channel order here",
                "max_minibatch": "validation runs one image at a time here"}


def _translate_train(train: dict[str, Any], notices: list[str], problems: list[str]) -> None:
    """``use_grad_clip`` -> ``grad_clip``; ``mixing_augs`` -> ``batch_augment``."""
    if "use_grad_clip" in train:
        clip = train.pop("use_grad_clip")
        if clip and train.get("grad_clip"):
            problems.append("'train.use_grad_clip' (Restormer's switch for a 0.01 bound) and 'train.grad_clip' are "
                            "both set; keep grad_clip")
        elif clip:
            train["grad_clip"] = RESTORMER_GRAD_CLIP
            notices.append(f"train.use_grad_clip: true is train.grad_clip: {RESTORMER_GRAD_CLIP} here (the gradient "
                           "norm bound Restormer's ImageCleanModel and NAFNet's ImageRestorationModel hard-code; "
                           "ImageRestorationModel clips unless use_grad_clip is false)")
        else:
            notices.append(f"train.use_grad_clip: {_yaml(clip)} ignored (no clipping, as here by default)")
    if "mixing_augs" not in train:
        return
    mixing = train["mixing_augs"]
    unknown = sorted(set(mixing) - {"mixup", "mixup_beta", "use_identity"}) if isinstance(mixing, Mapping) else None
    if unknown is None or unknown:
        problems.append(f"'train.mixing_augs' (Restormer's mixup switch) takes mixup, mixup_beta and use_identity, "
                        f"got {value_repr(mixing)}; here mixup is train.batch_augment: [{{type: mixup, alpha, prob}}]")
        return
    del train["mixing_augs"]
    if not mixing.get("mixup", False):
        notices.append("train.mixing_augs with mixup: false ignored (no mixup, as here by default)")
        return
    if train.get("batch_augment"):
        problems.append("'train.mixing_augs' (Restormer's mixup) and 'train.batch_augment' are both set; "
                        "keep batch_augment")
        return
    beta, identity = mixing.get("mixup_beta", 1.2), bool(mixing.get("use_identity", False))
    entry = {"type": "mixup", "alpha": beta, "prob": 0.5 if identity else 1.0}
    train["batch_augment"] = [entry]
    notices.append(f"train.mixing_augs {{mixup: true, mixup_beta: {value_repr(beta)}, use_identity: "
                   f"{_yaml(identity)}}} is train.batch_augment [{{type: mixup, alpha: {value_repr(beta)}, "
                   f"prob: {entry['prob']}}}] here"
                   + (" (use_identity: mixup or nothing, each half the time)" if identity else ""))


def _gaussian_degradation(phase: str, dopt: dict[str, Any], problems: list[str]) -> dict[str, Any] | None:
    """Dataset_GaussianDenoising's noise keys as a ``degradation`` entry (None: a problem was reported)."""
    if phase.startswith("train"):
        kind, value = dopt.pop("sigma_type", None), dopt.pop("sigma_range", None)
        if kind == "constant" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"type": "gaussian_noise", "sigma": value}
        if kind == "random" and isinstance(value, list) and len(value) == 2:
            return {"type": "gaussian_noise", "sigma_range": value}
        problems.append(f"'datasets.{phase}' sigma_type {value_repr(kind)} with sigma_range {value_repr(value)}: "
                        "Restormer's Gaussian noise translates for sigma_type constant (one sigma) and random ([low, "
                        "high]); for a choice among sigmas train with degradation: {type: gaussian_noise, sigma_range}")
        return None
    sigma = dopt.pop("sigma_test", None)
    if isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
        return {"type": "gaussian_noise", "sigma": sigma}
    problems.append(f"'datasets.{phase}' of Dataset_GaussianDenoising needs sigma_test (the noise of the evaluation "
                    f"images), got {value_repr(sigma)}")
    return None


def _translate_dataset(phase: str, dopt: dict[str, Any], notices: list[str], problems: list[str]) -> None:
    """One ``datasets.<phase>`` of a Restormer type -> ours."""
    kind = dopt.get("type")
    if kind not in RESTORMER_DATASETS:
        return
    ours, why = RESTORMER_DATASETS[kind]
    dopt["type"] = ours
    changed = []
    if "geometric_augs" in dopt:
        flips = dopt.pop("geometric_augs")
        if "use_hflip" in dopt or "use_rot" in dopt:
            problems.append(f"datasets.{phase} sets both geometric_augs (Restormer's name) and use_hflip/use_rot; "
                            "keep use_hflip and use_rot")
        dopt["use_hflip"] = dopt["use_rot"] = bool(flips)
        changed.append(f"geometric_augs {_yaml(flips)} is use_hflip and use_rot {_yaml(bool(flips))}")
    if kind == "Dataset_GaussianDenoising":
        degradation = _gaussian_degradation(phase, dopt, problems)
        if degradation is None:
            return
        dopt["degradation"] = degradation
        changed.append("the noise is degradation {" + ", ".join(f"{k}: {_yaml(v)}" for k, v in degradation.items())
                       + "}")
        if "in_ch" in dopt:
            dopt["in_chans"] = dopt.pop("in_ch")
            changed.append(f"in_ch is in_chans ({'gray' if dopt['in_chans'] == 1 else 'rgb'})")
        if isinstance(dopt.get("dataroot_lq"), str) and dopt["dataroot_lq"].lower() == "none":
            del dopt["dataroot_lq"]  # Restormer's placeholder: the noisy images exist only in memory
        if dopt.get("filename_tmpl") == "{}":
            del dopt["filename_tmpl"]  # the default template: there is no LQ file to name
        if not phase.startswith("train"):
            dopt.setdefault("seed", 0)  # Restormer seeds its test noise with 0 (NumPy's global stream)
    notices.append(f"datasets.{phase}.type {kind} is {ours} here ({why})"
                   + (f": {'; '.join(changed)}" if changed else ""))


def translate_restormer(opt: dict[str, Any], notices: list[str], problems: list[str]) -> None:
    """Rewrite Restormer's spellings in ``opt`` (in place); one line per translation in ``notices``, one per
    untranslatable setting in ``problems``."""
    train = opt.get("train")
    if isinstance(train, dict) and opt.get("model_type") in _MODELS:
        if (opt["model_type"] == "ImageRestorationModel" and "use_grad_clip" not in train
                and train.get("grad_clip") is None and "optim_g" in train):
            train["use_grad_clip"] = True  # NAFNet's ImageRestorationModel clips unless the file says false
        _translate_train(train, notices, problems)
    val = opt.get("val")
    if isinstance(val, dict) and opt.get("model_type") == "ImageCleanModel":
        dropped = [key for key in _VAL_DROPPED if key in val]
        for key in dropped:
            notices.append(f"val.{key} {_yaml(val.pop(key))} ignored ({_VAL_DROPPED[key]})")
    datasets = opt.get("datasets")
    for phase, dopt in (datasets.items() if isinstance(datasets, Mapping) else ()):
        if isinstance(dopt, dict):
            _translate_dataset(str(phase), dopt, notices, problems)
