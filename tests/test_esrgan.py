"""ESRGANModel (ESRGAN's relativistic-average GAN step) against a transcription of BasicSR's
``ESRGANModel.optimize_parameters`` written here, its option check, a run through train.py with exact resume, the
two-stage recipe files (options/train/ESRGAN) and BasicSR's own train_ESRGAN_x4.yml run with its data paths changed.

Sizes: ``VGGStyleDiscriminator`` scores whole 128² patches only, so the patches are 128² with an x4 RRDBNet of
4 features and one block, and a discriminator of 4 features.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from restoration.archs import register_archs
from restoration.cli.train import main as train_main
from restoration.models import register_models
from restoration.options.parse import parse_options
from restoration.options.yaml_io import load_yaml
from restoration.registry import ARCH_REGISTRY, MODEL_REGISTRY
from tests.helpers import assert_gan_resume_is_bit_exact, make_sr_pairs, write_options

pytestmark = pytest.mark.usefixtures("one_torch_thread")
register_models()
register_archs()

TINY_G = {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 4, "num_block": 1,
          "num_grow_ch": 2}
TINY_D = {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 4, "input_size": 128}
PIX_W, GAN_W, LR_G, LR_D, BETAS = 1e-2, 5e-3, 1e-3, 2e-3, (0.9, 0.99)


def _opt(**train: Any) -> dict[str, Any]:
    return {
        "scale": 4, "manual_seed": 0, "model_type": "ESRGANModel",
        "network_g": dict(TINY_G), "network_d": dict(TINY_D),
        "train": {"optim_g": {"type": "Adam", "lr": LR_G, "betas": list(BETAS), "weight_decay": 0},
                  "optim_d": {"type": "Adam", "lr": LR_D, "betas": list(BETAS), "weight_decay": 0},
                  "total_iter": 4, "pixel_opt": {"type": "L1Loss", "loss_weight": PIX_W, "reduction": "mean"},
                  "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "real_label_val": 1.0,
                              "fake_label_val": 0.0, "loss_weight": GAN_W}, **train},
    }


def _batch(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"lq": torch.rand(2, 3, 32, 32, generator=g), "gt": torch.rand(2, 3, 128, 128, generator=g)}


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


class BasicSRStep:
    """BasicSR's ``ESRGANModel.optimize_parameters`` (basicsr/models/esrgan_model.py) with ``cri_pix`` an L1 of
    weight ``PIX_W``, ``cri_gan`` vanilla of weight ``GAN_W`` (the generator's terms weighted, the discriminator's
    not) and ``model_ema`` BasicSR's ``ema = decay * ema + (1 - decay) * g`` over the parameters."""

    def __init__(self, g: torch.nn.Module, d: torch.nn.Module, ema_decay: float, net_d_iters: int = 1,
                 net_d_init_iters: int = 0) -> None:
        self.g, self.d = g, d
        self.g_ema = copy.deepcopy(g)
        self.opt_g = torch.optim.Adam(g.parameters(), lr=LR_G, betas=BETAS, weight_decay=0)
        self.opt_d = torch.optim.Adam(d.parameters(), lr=LR_D, betas=BETAS, weight_decay=0)
        self.ema_decay, self.net_d_iters, self.net_d_init_iters = ema_decay, net_d_iters, net_d_init_iters

    def __call__(self, lq: torch.Tensor, gt: torch.Tensor, current_iter: int) -> dict[str, float]:
        for p in self.d.parameters():
            p.requires_grad = False
        self.opt_g.zero_grad()
        output = self.g(lq)
        log: dict[str, float] = {}
        if current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters:
            l_g_pix = PIX_W * F.l1_loss(output, gt)
            real_d_pred = self.d(gt).detach()
            fake_g_pred = self.d(output)
            l_g_real = GAN_W * _bce(real_d_pred - torch.mean(fake_g_pred), False)
            l_g_fake = GAN_W * _bce(fake_g_pred - torch.mean(real_d_pred), True)
            l_g_gan = (l_g_real + l_g_fake) / 2
            (l_g_pix + l_g_gan).backward()
            self.opt_g.step()
            log.update(l_g_pix=float(l_g_pix.detach()), l_g_gan=float(l_g_gan.detach()))
        for p in self.d.parameters():
            p.requires_grad = True
        self.opt_d.zero_grad()
        fake_d_pred = self.d(output).detach()
        real_d_pred = self.d(gt)
        l_d_real = _bce(real_d_pred - torch.mean(fake_d_pred), True) * 0.5
        l_d_real.backward()
        fake_d_pred = self.d(output.detach())
        l_d_fake = _bce(fake_d_pred - torch.mean(real_d_pred.detach()), False) * 0.5
        l_d_fake.backward()
        self.opt_d.step()
        log.update(l_d_real=float(l_d_real.detach()), l_d_fake=float(l_d_fake.detach()),
                   out_d_real=float(real_d_pred.detach().mean()), out_d_fake=float(fake_d_pred.detach().mean()))
        with torch.no_grad():
            for e, p in zip(self.g_ema.parameters(), self.g.parameters()):
                e.mul_(self.ema_decay).add_(p, alpha=1 - self.ema_decay)
        return log


def _pair(**train: Any) -> tuple[Any, BasicSRStep]:
    """Our trainer and the transcription, from the same initial weights."""
    torch.manual_seed(0)
    model = MODEL_REGISTRY.get("ESRGANModel")(_opt(ema_decay=0.9, ema_warmup=False, **train), torch.device("cpu"))
    g = ARCH_REGISTRY.get("RRDBNet")(**{k: v for k, v in TINY_G.items() if k != "type"})
    d = ARCH_REGISTRY.get("VGGStyleDiscriminator")(**{k: v for k, v in TINY_D.items() if k != "type"})
    g.load_state_dict(model.networks["g"].state_dict())
    d.load_state_dict(model.networks["d"].state_dict())
    g.train(), d.train()
    return model, BasicSRStep(g, d, 0.9, train.get("net_d_iters", 1), train.get("net_d_init_iters", 0))


def _assert_same_weights(model: Any, ref: BasicSRStep) -> None:
    for ours, theirs, what in ((model.networks["g"], ref.g, "g"), (model.networks["d"], ref.d, "d"),
                               (model.emas["g"].module, ref.g_ema, "ema")):
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            if a.dtype.is_floating_point:
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=lambda m: f"{what}.{name}: {m}")
            else:  # BatchNorm's num_batches_tracked: as many discriminator forwards in training mode
                assert torch.equal(a, b), f"{what}.{name}"


@pytest.mark.parametrize("train, steps_g", [
    ({}, [True, True]),
    ({"net_d_init_iters": 1}, [False, True]),   # d alone first
    ({"net_d_iters": 2}, [False, True]),        # g every second iteration
])
def test_two_iterations_equal_basicsr_esrgan_step(train: dict[str, int], steps_g: list[bool]) -> None:
    model, ref = _pair(**train)
    g0 = [p.detach().clone() for p in model.networks["g"].parameters()]
    for it, step_g in zip((1, 2), steps_g):
        batch = _batch(it)
        theirs = ref(batch["lq"], batch["gt"], it)
        ours = {k: float(v) for k, v in model.optimize_parameters(model.feed_data(batch), it).items()}
        assert ("l_g_gan" in ours) == ("l_g_gan" in theirs) == step_g
        if step_g:
            assert ours["l_pix"] == pytest.approx(theirs.pop("l_g_pix"), rel=1e-5)
        else:
            assert all(torch.equal(a, b) for a, b in zip(g0, model.networks["g"].parameters()))
        for key, value in theirs.items():
            assert ours[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
        _assert_same_weights(model, ref)
    assert not all(torch.equal(a, b) for a, b in zip(g0, model.networks["g"].parameters()))


# ------------------------------------------------------------------ through train.py
@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_sr_pairs(tmp_path_factory.mktemp("esrgan"), n=2, size=128, scale=4)


def _file_options(data: tuple[Path, Path], name: str) -> dict[str, Any]:
    hr, lr = data
    opt = _opt(ema_decay=0.999, ema_warmup=False, total_iter=4,
               scheduler={"type": "MultiStepLR", "milestones": [3], "gamma": 0.5})
    opt.update(name=name, num_gpu=0, manual_seed=1, datasets={"train": {
        "type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr), "io_backend": {"type": "disk"},
        "gt_size": 128, "use_hflip": True, "use_rot": True, "num_worker_per_gpu": 0, "batch_size_per_gpu": 1,
        "dataset_enlarge_ratio": 1}},
        logger={"print_freq": 1, "save_checkpoint_freq": 2, "use_tb_logger": False})
    return opt


def test_a_training_patch_other_than_the_discriminator_input_is_an_options_error(data, tmp_path: Path,
                                                                                  capsys) -> None:
    opt = _file_options(data, "bad_size")
    opt["datasets"]["train"]["gt_size"] = 96
    root = tmp_path / "root"
    root.mkdir()
    assert train_main(["-opt", str(write_options(opt, tmp_path / "bad.yml")), "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert ("'datasets.train.gt_size' 96 is not network_d (VGGStyleDiscriminator)'s input_size 128: the "
            "discriminator scores whole GT patches of that size") in err
    assert "Traceback" not in err and list(root.iterdir()) == []


def test_a_run_writes_checkpoints_and_resumes_bit_for_bit(data, tmp_path: Path) -> None:
    opt = _file_options(data, "straight")
    assert train_main(["-opt", str(write_options(opt, tmp_path / "s.yml")), "--root", str(tmp_path)]) == 0
    exp = tmp_path / "experiments" / "straight"
    assert (exp / "models" / "net_g_2.pth").is_file() and (exp / "models" / "net_g_4.pth").is_file()
    state = torch.load(exp / "training_states" / "4.state", weights_only=True)
    for key in ("net_g", "net_d", "optimizer", "optimizer_d", "scheduler", "scheduler_d", "ema"):
        assert key in state, key
    log = next(exp.glob("train_straight_*.log")).read_text()
    for name in ("l_pix", "l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake", "grad_norm_d"):
        assert name in log, name

    assert_gan_resume_is_bit_exact(exp, opt, tmp_path, last=4)  # stopped after iteration 2, resumed


# ------------------------------------------------------------------ the option files
OPTIONS = Path(__file__).resolve().parents[1] / "options"
TRAIN, TEST = OPTIONS / "train", OPTIONS / "test"


def test_esrgan_recipe_files_chain_the_psnr_stage_into_the_gan_stage(meta_param_count) -> None:
    """BasicSR options/train/ESRGAN/*.yml: the values of the recipe, and the GAN stage starts from the PSNR
    stage's last weights (the file its run writes)."""
    psnr = load_yaml(TRAIN / "ESRGAN" / "train_RRDBNet_PSNR_x4.yml")
    gan = load_yaml(TRAIN / "ESRGAN" / "train_ESRGAN_x4.yml")
    for opt in (psnr, gan):
        assert meta_param_count(opt["network_g"]) == 16_697_987  # RRDBNet 64/23/32: ESRGAN_SRx4_DF2KOST_official
        assert opt["datasets"]["train"]["gt_size"] == 128 and opt["datasets"]["train"]["batch_size_per_gpu"] == 16
        assert opt["train"]["ema_decay"] == 0.999
    assert gan["path"]["pretrain_network_g"] == (f"experiments/{psnr['name']}/models/"
                                                 f"net_g_{psnr['train']['total_iter']}.pth")
    assert (psnr["model_type"], gan["model_type"]) == ("SRModel", "ESRGANModel")
    assert (psnr["train"]["total_iter"], gan["train"]["total_iter"]) == (1_000_000, 400_000)
    assert psnr["train"]["scheduler"]["periods"] == [250_000] * 4
    assert gan["train"]["scheduler"]["milestones"] == [50_000, 100_000, 200_000, 300_000]
    t = gan["train"]
    assert (t["optim_g"]["lr"], t["optim_d"]["lr"]) == (1e-4, 1e-4)
    assert (t["pixel_opt"]["loss_weight"], t["perceptual_opt"]["perceptual_weight"], t["gan_opt"]["loss_weight"]) == (
        1e-2, 1.0, 5e-3)
    assert t["perceptual_opt"]["layer_weights"] == {"conv5_4": 1.0} and t["gan_opt"]["gan_type"] == "vanilla"
    assert gan["network_d"]["input_size"] == gan["datasets"]["train"]["gt_size"]
    # BasicSR basicsr/archs/discriminator_arch.py VGGStyleDiscriminator(3, 64), 128² input, counted from its layers
    assert meta_param_count(gan["network_d"]) == 14_499_401
    for name in ("test_ESRGAN_x4.yml", "test_RRDBNet_PSNR_x4.yml"):
        assert meta_param_count(load_yaml(TEST / "ESRGAN" / name)["network_g"]) == 16_697_987


# ------------------------------------------------------------------ BasicSR's own file
def _vgg19_file(path: Path) -> Path:
    """A torchvision-layout VGG19 state dict of random weights, small on disk (each conv weight an expanded view)."""
    gen = torch.Generator().manual_seed(0)
    state, in_ch = {}, 3
    for idx, out_ch in zip((0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34), (64, 64, 128, 128) + (256,) * 4
                           + (512,) * 8):
        state[f"features.{idx}.weight"] = (torch.randn(out_ch, 1, 3, 3, generator=gen) * (2 / 9) ** 0.5 / in_ch
                                           ).expand(-1, in_ch, -1, -1)
        state[f"features.{idx}.bias"] = torch.zeros(out_ch)
        in_ch = out_ch
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def basicsr_esrgan_train(hr: Path, lr: Path) -> dict[str, Any]:
    """BasicSR options/train/ESRGAN/train_ESRGAN_x4.yml, its keys and values (data paths, network widths and
    iteration counts changed; the PSNR stage's weights are not needed for 2 iterations)."""
    return {
        "name": "052_ESRGAN_x4_f64b23_DIV2K_400k_B16G1_051pretrain_wandb", "model_type": "ESRGANModel", "scale": 4,
        "num_gpu": 1, "manual_seed": 0,
        "datasets": {
            "train": {"name": "DIV2K", "type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr),
                      "filename_tmpl": "{}", "io_backend": {"type": "disk"}, "gt_size": 128, "use_hflip": True,
                      "use_rot": True, "num_worker_per_gpu": 0, "batch_size_per_gpu": 1, "dataset_enlarge_ratio": 1,
                      "prefetch_mode": None},
            "val": {"name": "Set14", "type": "PairedImageDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr),
                    "io_backend": {"type": "disk"}},
        },
        "network_g": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 4, "num_block": 1},
        "network_d": {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 4},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0.999,
            "optim_g": {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
            "optim_d": {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
            "scheduler": {"type": "MultiStepLR", "milestones": [50000, 100000, 200000, 300000], "gamma": 0.5},
            "total_iter": 2, "warmup_iter": -1,
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1e-2, "reduction": "mean"},
            "perceptual_opt": {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1}, "vgg_type": "vgg19",
                               "use_input_norm": True, "range_norm": False, "perceptual_weight": 1.0,
                               "style_weight": 0, "criterion": "l1"},
            "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "real_label_val": 1.0, "fake_label_val": 0.0,
                        "loss_weight": 5e-3},
            "net_d_iters": 1, "net_d_init_iters": 0,
        },
        "val": {"val_freq": 2.0, "save_img": True, "metrics": {
            "psnr": {"type": "calculate_psnr", "crop_border": 4, "test_y_channel": False}}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 2.0, "use_tb_logger": False,
                   "wandb": {"project": None, "resume_id": None}},
        "dist_params": {"backend": "nccl", "port": 29500},
    }


def test_basicsr_esrgan_file_parses_and_trains_two_iterations(data, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """BasicSR's VGG weights come from torchvision's download into torch's hub cache: a copy there is used."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    _vgg19_file(tmp_path / "torch_home" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth")
    cfg = write_options(basicsr_esrgan_train(*data), tmp_path / "esrgan.yml")
    notices: list[str] = []
    parse_options(str(cfg), is_train=True, overrides=["num_gpu=0"], root=tmp_path, notices=notices)
    assert notices == []  # every key is ours: nothing to translate
    assert train_main(["-opt", str(cfg), "--root", str(tmp_path), "--force_yml", "num_gpu=0"]) == 0
    exp = tmp_path / "experiments" / "052_ESRGAN_x4_f64b23_DIV2K_400k_B16G1_051pretrain_wandb"
    assert (exp / "models" / "net_g_2.pth").is_file()
    log = next(exp.glob("train_*.log")).read_text()
    for name in ("l_pix", "l_percep", "l_g_gan", "l_d_real", "l_d_fake", "validation Set14 @ iter 2: psnr"):
        assert name in log, name
