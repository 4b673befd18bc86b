"""Sweep over EVERY registered component of every kind: a misspelt key is always an options error.

For each component (the registries of :mod:`restoration.registry`, and the tables of optimizers, schedules,
batch augmentations, degradations, noise models and all-in-one sources) the test writes the smallest valid
section for it into a small valid option file, checks that the start-up check
(:func:`~restoration.options.validate.validate_options`) finds nothing, then adds ONE misspelt key (the
first declared key with two neighbouring letters swapped) and checks that the report is exactly the problem
naming that key, with its did-you-mean, and the accepted keys. A component that swallows unknown keys
(``**kwargs``) fails here. Once, ``python train.py`` runs such a file in a subprocess: exit code 2, nothing
written to disk.

A newly registered component needs no change here unless its smallest section needs values (a required
argument without a default: :data:`SMALLEST`, a trainer's other sections: :func:`_trainer_file`); the
sweep then fails and says so.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from restoration.archs import register_archs
from restoration.data import register_datasets
from restoration.data.all_in_one_dataset import SOURCE
from restoration.data.batch_augment import BATCH_AUGMENTS, CALL_ARGS
from restoration.data.degradations.chain import DEGRADATIONS
from restoration.data.noisy_image_dataset import NOISES
from restoration.declare import declared_mapping, declared_parameters
from restoration.losses import register_losses
from restoration.metrics import register_metrics
from restoration.models import register_models
from restoration.optim.optimizers import OPTIMIZERS, optimizer_declaration, optimizer_problem
from restoration.optim.schedulers import SCHEDULERS
from restoration.options.validate import METRIC_CALL_ARGS, validate_options
from restoration.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
from restoration.schema import did_you_mean

ROOT = Path(__file__).resolve().parents[1]

register_archs()
register_datasets()
register_losses()
register_metrics()
register_models()

#: The smallest valid section of the components whose defaults alone are not one: the arguments they require
#: (no default) and values their own check asks for. ``FILE`` stands for an existing (empty) file,
#: ``NIQE_MODEL`` for a readable NIQE model (its check loads it).
FILE = "<an existing file>"
NIQE_MODEL = "<a NIQE model>"
SMALLEST: dict[str, dict[str, Any]] = {
    "Bicubic": {"upscale": 2},
    "Identity": {"upscale": 2},
    "EDSR": {"num_in_ch": 3, "num_out_ch": 3},
    "RCAN": {"num_in_ch": 3, "num_out_ch": 3},
    "RRDBNet": {"num_in_ch": 3, "num_out_ch": 3},
    "UNetDiscriminatorSN": {"num_in_ch": 3},
    "VGGStyleDiscriminator": {"num_in_ch": 3, "num_feat": 2},
    "HAT": {"window_size": 8},
    "SwinIR": {"window_size": 8, "upscale": 1},
    "MSDeformableNAIR": {"dim": 48, "heads": [3, 6, 12, 24]},
    "GANLoss": {"gan_type": "vanilla"},
    "PerceptualLoss": {"layer_weights": {"conv5_4": 1.0}, "vgg_weights_path": FILE},
    "LPIPSLoss": {"backbone_weights_path": FILE, "lpips_weights_path": FILE},
    "DISTSLoss": {"backbone_weights_path": FILE, "dists_weights_path": FILE},
    "calculate_lpips": {"backbone_weights_path": FILE, "lpips_weights_path": FILE},
    "calculate_dists": {"backbone_weights_path": FILE, "dists_weights_path": FILE},
    "calculate_niqe": {"niqe_params_path": NIQE_MODEL},
}


def _smallest(name: str, root: Path) -> dict[str, Any]:
    """:data:`SMALLEST`'s values for ``name`` with ``FILE`` and ``NIQE_MODEL`` made files."""
    file, model = root / "weights.pth", root / "niqe.npz"
    file.write_bytes(b"")
    np.savez(model, mu_pris_param=np.zeros(36), cov_pris_param=np.eye(36))
    files = {FILE: str(file), NIQE_MODEL: str(model)}
    return {k: files.get(v, copy.deepcopy(v)) if isinstance(v, str) else copy.deepcopy(v)
            for k, v in SMALLEST.get(name, {}).items()}


#: Components exempt from the sweep, with the reason. Keep it empty: every component declares its options.
EXEMPT: dict[str, str] = {}


# ------------------------------------------------------------------------------------------ the files
def _base(root: Path) -> dict[str, Any]:
    """A valid x2 training file: a tiny SimpleSRNet, paired data, L1, Adam, PSNR (no data is read)."""
    hr, lr = root / "HR", root / "LR"
    for folder in (hr, lr):
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "name": "sweep", "model_type": "SRModel", "scale": 2, "num_gpu": 0,
        "datasets": {
            "train": {"type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr), "gt_size": 16},
            "val_1": {"type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr)},
        },
        "network_g": {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": 2},
        "train": {"ema_decay": 0.9, "optim_g": {"type": "Adam", "lr": 1e-3}, "total_iter": 4,
                  "losses": [{"type": "L1Loss"}]},
        "val": {"val_freq": 2, "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2}}},
        "logger": {"use_tb_logger": False},
    }


def _dataset_sections(root: Path) -> dict[str, dict[str, Any]]:
    """The smallest valid section of each dataset class (folders and files exist, empty)."""
    folder = root / "images"
    folder.mkdir(exist_ok=True)
    mat = root / "blocks.mat"
    mat.write_bytes(b"")
    paired = {"dataroot_gt": str(folder), "dataroot_lq": str(folder)}
    return {
        "PairedImageDataset": paired,
        "SingleImageDataset": {"dataroot_lq": str(folder)},
        "DegradationDataset": {"dataroot_gt": str(folder), "degradation": {"type": "bicubic"}},
        "NoisyImageDataset": {"dataroot_lq": str(folder)},
        "SyntheticNoiseDataset": {"dataroot_gt": str(folder), "noise": {"type": "gaussian", "sigma": 25}},
        "SIDDMediumDataset": {"dataroot_lq": str(folder)},
        "SIDDBlocksDataset": {"noisy_mat": str(mat), "gt_mat": str(mat)},
        "AllInOneDataset": {"sources": {"denoise": {"kind": "noise", "dataroot_gt": str(folder), "sigmas": [25]}}},
        "RealESRGANDataset": {"dataroot_gt": str(folder)},
        "RealESRGANPairedDataset": paired,
    }


def _trainer_file(name: str, opt: dict[str, Any]) -> None:
    """What trainer ``name`` needs besides SRModel's file (:func:`_base`), edited into ``opt``."""
    cls = MODEL_REGISTRY.get(name)
    if cls.__name__ == "TBSNModel":
        opt["scale"] = 1
        opt["network_g"] = {"type": "SimpleSRNet", "num_feat": 8, "num_block": 1, "upscale": 1}
    if cls.__name__ in ("RealESRNetModel", "RealESRGANModel"):
        opt["train"]["high_order_degradation"] = False  # paired batches: any paired dataset will do
    if cls.__name__ in ("RealESRGANModel", "ESRGANModel"):
        opt["network_d"] = {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 2, "input_size": 128}
        opt["train"]["optim_d"] = {"type": "Adam", "lr": 1e-3}
        opt["train"]["gan_opt"] = {"type": "GANLoss", "gan_type": "vanilla"}
    if cls.__name__ == "ESRGANModel":
        opt["datasets"]["train"]["gt_size"] = 128  # the patch the VGG discriminator scores whole


# ------------------------------------------------------------------------------------------ the sweep
def _misspelt(declared: list[str]) -> tuple[str, str]:
    """``(misspelt, original)``: the first declared key of four letters or more, two neighbouring different
    letters swapped (after the first letter), so that it is no declared key itself."""
    for key in declared:
        for i in range(1, len(key) - 1):
            if len(key) >= 4 and key[i] != key[i + 1] and key[i].isalpha() and key[i + 1].isalpha():
                typo = key[:i] + key[i + 1] + key[i] + key[i + 2:]
                if typo not in declared:
                    return typo, key
    return "gama", ""  # nothing declared to misspell (ConstantLR): any key is unknown


def _declared_keys(component: Any, call_args: tuple[str, ...] = ()) -> list[str]:
    mapping = declared_mapping(component)
    if mapping is not None:
        return list(mapping)
    params = declared_parameters(component, call_args)
    assert params is not None, f"{component} takes **kwargs: it would swallow any misspelt key"
    return list(params)


def _cases() -> list[tuple[str, Any]]:
    """``(id, builder)`` for every registered component. A builder writes the component's smallest section into
    the file and returns it with the keys the component declares (the one to misspell comes from them)."""
    cases: list[tuple[str, Any]] = []

    def add(kind: str, name: str, build: Callable[[dict[str, Any], Path], tuple[dict[str, Any], list[str]]]) -> None:
        if f"{kind}:{name}" not in EXEMPT:
            cases.append((f"{kind}:{name}", build))

    for name in ARCH_REGISTRY.names():
        def arch(opt: dict[str, Any], root: Path, name: str = name) -> tuple[dict[str, Any], list[str]]:
            section = {"type": name, **_smallest(name, root)}
            opt["baselines"] = [section]
            return section, _declared_keys(ARCH_REGISTRY.get(name))
        add("arch", name, arch)
    for name in DATASET_REGISTRY.names():
        def dataset(opt: dict[str, Any], root: Path, name: str = name) -> tuple[dict[str, Any], list[str]]:
            cls = DATASET_REGISTRY.get(name)
            section = {"type": name, **_dataset_sections(root)[cls.__name__]}
            opt["datasets"]["val_1"] = section
            return section, [k for k in _declared_keys(cls) if k not in ("type", "name", "phase", "scale")]
        add("dataset", name, dataset)
    for name in LOSS_REGISTRY.names():
        def loss(opt: dict[str, Any], root: Path, name: str = name) -> tuple[dict[str, Any], list[str]]:
            section = {"type": name, **_smallest(name, root)}
            opt["train"]["losses"] = [section]
            return section, _declared_keys(LOSS_REGISTRY.get(name))
        add("loss", name, loss)
    for name in METRIC_REGISTRY.names():
        def metric(opt: dict[str, Any], root: Path, name: str = name) -> tuple[dict[str, Any], list[str]]:
            section = {"type": name, "crop_border": 0, "better": "higher", **_smallest(name, root)}
            opt["val"]["metrics"] = {"m": section}
            return section, _declared_keys(METRIC_REGISTRY.get(name), METRIC_CALL_ARGS)
        add("metric", name, metric)
    for name in MODEL_REGISTRY.names():
        def trainer(opt: dict[str, Any], root: Path, name: str = name) -> tuple[dict[str, Any], list[str]]:
            opt["model_type"] = name
            _trainer_file(name, opt)
            own = list(getattr(MODEL_REGISTRY.get(name), "options", {}) or {})
            return opt["train"], own or ["total_iter"]  # a trainer without keys of its own: the framework's
        add("trainer", name, trainer)
    for name in OPTIMIZERS:
        if optimizer_problem(name):  # its optional package is not installed here
            continue
        def optimizer(opt: dict[str, Any], root: Path, name: str = name) -> tuple[dict[str, Any], list[str]]:
            opt["train"]["optim_g"] = section = {"type": name, "lr": 1e-3}
            return section, [k for k in optimizer_declaration(name).options if k != "lr"]
        add("optimizer", name, optimizer)
    schedules = {"CosineAnnealingRestartLR": {"periods": [4]}, "CosineAnnealingRestartCyclicLR": {"periods": [4]},
                 "CosineAnnealingLR": {"T_max": 4},
                 "WSD": {"decay_iter": 2}, "ReduceLROnPlateau": {"metric": "psnr"}}
    for name in SCHEDULERS:
        def schedule(opt: dict[str, Any], root: Path, name: str = name) -> tuple[dict[str, Any], list[str]]:
            opt["train"]["scheduler"] = section = {"type": name, **schedules.get(name, {})}
            return section, list(SCHEDULERS[name])
        add("schedule", name, schedule)
    for name in BATCH_AUGMENTS:
        def augment(opt: dict[str, Any], root: Path, name: str = name) -> tuple[dict[str, Any], list[str]]:
            section = {"type": name}
            opt["train"]["batch_augment"] = [section]
            return section, _declared_keys(BATCH_AUGMENTS[name], CALL_ARGS)
        add("batch_augment", name, augment)
    degradations = {"gaussian_noise": {"sigma": 5}, "jpeg": {"quality": 50}}
    for name in DEGRADATIONS:
        def degradation(opt: dict[str, Any], root: Path, name: str = name) -> tuple[dict[str, Any], list[str]]:
            section = {"type": name, **degradations.get(name, {})}
            opt["datasets"]["val_1"] = {"type": "DegradationDataset", "dataroot_gt": str(root / "HR"),
                                        "degradation": [{"type": "bicubic"}, section] if name != "bicubic" and
                                        name != "bsrgan" else section}
            return section, list(DEGRADATIONS[name].options)
        add("degradation", name, degradation)
    for name in NOISES:
        def noise(opt: dict[str, Any], root: Path, name: str = name) -> tuple[dict[str, Any], list[str]]:
            section = {"type": name, "sigma": 5, **({"peak": 30} if "peak" in NOISES[name].options else {})}
            opt["scale"] = 1
            opt["network_g"]["upscale"] = 1
            opt["datasets"]["val_1"] = {"type": "SyntheticNoiseDataset", "dataroot_gt": str(root / "HR"),
                                        "noise": section}
            return section, list(NOISES[name].options)
        add("noise", name, noise)

    def source(opt: dict[str, Any], root: Path) -> tuple[dict[str, Any], list[str]]:
        section = {"kind": "noise", "dataroot_gt": str(root / "HR"), "sigmas": [25]}
        opt["scale"] = 1
        opt["network_g"]["upscale"] = 1
        opt["datasets"]["val_1"] = {"type": "AllInOneDataset", "sources": {"denoise": section}}
        return section, list(SOURCE.options)
    add("all_in_one_source", "source", source)
    return cases


CASES = _cases()


def test_every_kind_is_swept() -> None:
    kinds = {case_id.split(":")[0] for case_id, _ in CASES}
    assert kinds == {"arch", "dataset", "loss", "metric", "trainer", "optimizer", "schedule", "batch_augment",
                     "degradation", "noise", "all_in_one_source"}
    names = {case_id for case_id, _ in CASES}
    for kind, registry in (("arch", ARCH_REGISTRY), ("dataset", DATASET_REGISTRY), ("loss", LOSS_REGISTRY),
                           ("metric", METRIC_REGISTRY), ("trainer", MODEL_REGISTRY)):
        missing = {f"{kind}:{n}" for n in registry.names()} - names - set(EXEMPT)
        assert not missing, f"not swept: {sorted(missing)}"


@pytest.mark.parametrize("case_id,build", CASES, ids=[case_id for case_id, _ in CASES])
def test_a_misspelt_key_is_reported_with_its_did_you_mean(case_id: str, build: Any, tmp_path: Path) -> None:
    opt = _base(tmp_path)
    section, declared = build(opt, tmp_path)
    assert validate_options(copy.deepcopy(opt), is_train=True) == [], f"{case_id}: the smallest section is not valid"
    typo, original = _misspelt(declared)
    section[typo] = section.get(original, 1)
    problems = validate_options(opt, is_train=True)
    named = [p for p in problems if f"'{typo}'" in p]
    assert len(named) == 1, f"{case_id}: {problems}"
    hint = did_you_mean(typo, set(declared))
    assert original == "" or hint == f" (did you mean '{original}'?)", (case_id, typo, hint)
    assert named[0].endswith(f"'{typo}'{hint}"), named[0]
    listed = [p for p in problems if p not in named]
    assert len(listed) == 1 and ("accepts:" in listed[0] or "accepted keys:" in listed[0]), problems
    assert all(key in listed[0] for key in declared), listed[0]


def test_train_py_refuses_a_misspelt_key_and_writes_nothing(tmp_path: Path) -> None:
    import yaml

    opt = _base(tmp_path / "data")
    opt["train"]["losses"] = [{"type": "L1Loss", "loss_wieght": 1.0}]
    path = tmp_path / "options" / "sweep.yml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(opt))
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "-opt", str(path), "--root", str(work)],
                            capture_output=True, text=True, cwd=work, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "'train.losses[0]' (L1Loss) has no argument 'loss_wieght' (did you mean 'loss_weight'?)" in result.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written anywhere
