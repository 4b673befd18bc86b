"""The discriminators keep BasicSR's constructor names and state-dict layout, so its released weights load.

The expected keys and shapes are written out from BasicSR's ``basicsr/archs/discriminator_arch.py``
(XPixelGroup/BasicSR @ 8d56e3a; Real-ESRGAN's copy is identical) for the released configuration
``UNetDiscriminatorSN(num_in_ch=3, num_feat=64, skip_connection=True)`` (``RealESRGAN_x4plus_netD.pth``) and
ESRGAN's ``VGGStyleDiscriminator(num_in_ch=3, num_feat=64, input_size=128)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from restoration import build_network
from restoration.utils.weights import WeightsError, load_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (name, shape) in BasicSR's order; spectral-normalised convs carry weight_orig / weight_u [out] / weight_v [in*k*k].
_SN = {1: (128, 64, 4), 2: (256, 128, 4), 3: (512, 256, 4), 4: (256, 512, 3), 5: (128, 256, 3), 6: (64, 128, 3),
       7: (64, 64, 3), 8: (64, 64, 3)}
UNET_KEYS = [("conv0.weight", (64, 3, 3, 3)), ("conv0.bias", (64,))]
for _i, (_out, _in, _k) in _SN.items():
    UNET_KEYS += [(f"conv{_i}.weight_orig", (_out, _in, _k, _k)), (f"conv{_i}.weight_u", (_out,)),
                  (f"conv{_i}.weight_v", (_in * _k * _k,))]
UNET_KEYS += [("conv9.weight", (1, 64, 3, 3)), ("conv9.bias", (1,))]

_VGG_CONVS = [(64, 3, 3), (64, 64, 4), (128, 64, 3), (128, 128, 4), (256, 128, 3), (256, 256, 4), (512, 256, 3),
              (512, 512, 4), (512, 512, 3), (512, 512, 4)]
VGG_KEYS = [("conv0_0.weight", (64, 3, 3, 3)), ("conv0_0.bias", (64,))]
for _n, (_out, _in, _k) in enumerate(_VGG_CONVS):
    _stage, _j = divmod(_n, 2)
    if _n:
        VGG_KEYS.append((f"conv{_stage}_{_j}.weight", (_out, _in, _k, _k)))
    if _n:  # every conv but conv0_0 is followed by a BatchNorm
        VGG_KEYS += [(f"bn{_stage}_{_j}.{p}", (_out,)) for p in ("weight", "bias", "running_mean", "running_var")]
        VGG_KEYS.append((f"bn{_stage}_{_j}.num_batches_tracked", ()))
VGG_KEYS += [("linear1.weight", (100, 8192)), ("linear1.bias", (100,)), ("linear2.weight", (1, 100)),
             ("linear2.bias", (1,))]


def _shapes(net: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def test_unet_discriminator_has_basicsr_keys_shapes_and_parameter_count() -> None:
    net = build_network({"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 64, "skip_connection": True})
    assert _shapes(net) == dict(UNET_KEYS)
    assert list(net.state_dict()) == [k for k, _ in UNET_KEYS]  # BasicSR's order too
    assert sum(p.numel() for p in net.parameters()) == 4_376_897  # BasicSR's count at F=64


def test_vgg_discriminator_has_basicsr_keys_and_shapes() -> None:
    net = build_network({"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 64, "input_size": 128})
    assert _shapes(net) == dict(VGG_KEYS)
    big = build_network({"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 64, "input_size": 256})
    extra = set(_shapes(big)) - set(dict(VGG_KEYS))
    assert {"conv5_0.weight", "conv5_1.weight", "bn5_0.weight", "bn5_1.running_var"} <= extra


def test_a_basicsr_layout_checkpoint_loads_strictly_and_is_used(tmp_path: Path) -> None:
    """A ``{'params': ...}`` file with BasicSR's keys loads strictly; its u/v vectors are the ones used."""
    torch.manual_seed(0)
    state = {k: torch.randn(s) if s else torch.tensor(0) for k, s in UNET_KEYS}
    for i in _SN:
        state[f"conv{i}.weight_u"] = torch.nn.functional.normalize(state[f"conv{i}.weight_u"], dim=0)
        state[f"conv{i}.weight_v"] = torch.nn.functional.normalize(state[f"conv{i}.weight_v"], dim=0)
    torch.save({"params": state}, tmp_path / "netD.pth")
    net = build_network({"type": "UNetDiscriminatorSN", "num_in_ch": 3})
    load_weights(net, str(tmp_path / "netD.pth"))
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key
    net.eval()
    w = state["conv1.weight_orig"]
    sigma = state["conv1.weight_u"] @ (w.flatten(1) @ state["conv1.weight_v"])
    with torch.no_grad():
        net(torch.rand(1, 3, 8, 8))  # eval: the pre-hook recomputes weight from the stored u, v (no iteration)
    torch.testing.assert_close(net.conv1.weight, w / sigma)
    del state["conv9.bias"]  # a checkpoint of another layout is refused, naming the key
    torch.save({"params": state}, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="conv9.bias"):
        load_weights(build_network({"type": "UNetDiscriminatorSN", "num_in_ch": 3}), str(tmp_path / "bad.pth"))


def test_unet_discriminator_returns_same_size_logits_and_refuses_other_sizes() -> None:
    net = build_network({"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4}).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 24, 32)).shape == (2, 1, 24, 32)
    with pytest.raises(ValueError, match="multiple of 8"):
        net(torch.rand(1, 3, 20, 32))
    assert net.spec.scale == 1 and net.spec.out_channels == 1 and net.spec.size_multiple == 8


def test_unet_discriminator_without_skips_has_the_same_keys() -> None:
    a = build_network({"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4, "skip_connection": False})
    b = build_network({"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4})
    assert _shapes(a) == _shapes(b)
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.equal(a.eval()(x), b.eval()(x))


def test_spectral_norm_runs_one_power_iteration_per_training_forward() -> None:
    net = build_network({"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4})
    u = net.conv2.weight_u.clone()
    net.eval()(torch.rand(1, 3, 8, 8))
    assert torch.equal(net.conv2.weight_u, u)
    net.train()(torch.rand(1, 3, 8, 8))
    w = net.conv2.weight_orig.detach().flatten(1)
    v = torch.nn.functional.normalize(w.t() @ u, dim=0, eps=1e-12)
    torch.testing.assert_close(net.conv2.weight_u, torch.nn.functional.normalize(w @ v, dim=0, eps=1e-12))


def test_vgg_discriminator_gives_one_logit_per_image() -> None:
    net = build_network({"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 2}).eval()
    with torch.no_grad():
        assert net(torch.rand(3, 3, 128, 128)).shape == (3, 1)
    with pytest.raises(ValueError, match="128x128 inputs only"):
        net(torch.rand(1, 3, 96, 96))


def test_bad_discriminator_options_are_reported_by_the_option_check() -> None:
    from restoration.options.validate import check_component
    from restoration.registry import ARCH_REGISTRY

    problems: list[str] = []
    check_component(ARCH_REGISTRY, {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 8, "input_size": 96},
                    "network_d", problems)
    assert problems == ["'network_d': input_size must be 128 or 256, got 96"]
    problems = []
    check_component(ARCH_REGISTRY, {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "skip_conection": True},
                    "network_d", problems)
    assert problems[0] == ("'network_d' (UNetDiscriminatorSN) has no argument 'skip_conection' "
                           "(did you mean 'skip_connection'?)")
