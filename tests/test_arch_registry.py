"""Sweep over EVERY registered architecture (timm's ``tests/test_models.py`` style).

Each architecture is checked the moment it is registered: forward shape from its contract
(:class:`~restoration.archs.spec.ArchSpec`), finite gradients for every parameter, a strict state-dict
round trip through :func:`~restoration.utils.weights.load_weights`, eval determinism, batch independence,
gradient-checkpointing equality where the constructor has ``use_checkpoint``, ``check_options`` clean on
the bound tiny config, and a spec that matches the built network and drives :func:`restore`.

The tiny configurations come from the family descriptors (``Family.tiny``: a few thousand parameters, a
forward of a few milliseconds), which refuse a network without one; an architecture registered outside a
family has none, and the sweep fails and says so.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from restoration import build_network
from restoration.archs import families, register_archs
from restoration.archs.spec import ArchSpec, arch_spec
from restoration.inference import pad_to_multiple, restore, tiled_forward
from restoration.schema import bind_arguments
from restoration.registry import ARCH_REGISTRY
from restoration.utils.weights import load_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: see tests/conftest.py

register_archs()

# name -> (network_g kwargs, one image's (C, H, W)): every family's tiny configurations (restoration/archs/<family>/).
TINY_CONFIGS: dict[str, tuple[dict[str, Any], tuple[int, int, int]]] = {
    name: (dict(tiny.kwargs), tiny.chw) for family in families() for name, tiny in family.tiny.items()}

#: Networks that score an image instead of restoring it: their output is ``(B, 1)`` whatever the spec's
#: scale says (a discriminator's spec is scale 1, out_channels 1; see restoration/archs/discriminators/discriminator_arch.py).
ONE_SCORE_PER_IMAGE = {"VGGStyleDiscriminator"}

#: Networks that work on another range than [0, 1] (the framework scales for them); every other is 1.0.
VALUE_RANGES = {"TBSN": 255.0}

NAMES = ARCH_REGISTRY.names()


def _tiny(name: str, **overrides: Any) -> tuple[nn.Module, torch.Tensor]:
    """The tiny network (seeded) and a batch of two aligned inputs in [0, 1]."""
    if name not in TINY_CONFIGS:
        pytest.fail(f"registered arch '{name}' belongs to no family: register it with its family's descriptor "
                    "(restoration.archs.register_family), which gives its tiny configuration")
    cfg, chw = TINY_CONFIGS[name]
    torch.manual_seed(0)
    net = build_network({"type": name, **cfg, **overrides})
    return net, torch.rand(2, *chw, generator=torch.Generator().manual_seed(1))


def _expected_shape(spec: ArchSpec, x: torch.Tensor, name: str = "") -> tuple[int, ...]:
    b, c, h, w = x.shape
    if name in ONE_SCORE_PER_IMAGE:
        return b, 1
    return b, spec.out_channels or c, h * spec.scale, w * spec.scale


def test_every_registered_arch_has_a_tiny_config() -> None:
    assert sorted(TINY_CONFIGS) == NAMES, "TINY_CONFIGS and the arch registry differ"


@pytest.mark.parametrize("name", NAMES)
def test_spec_matches_the_network_and_the_options(name: str) -> None:
    net, x = _tiny(name)
    cls = ARCH_REGISTRY.get(name)
    bound = bind_arguments(cls, TINY_CONFIGS[name][0])
    assert bound is not None
    assert cls.check_options(bound) == []
    spec = arch_spec(net)
    assert spec == cls.spec_from_options(bound)  # the option-time contract is the built network's
    assert spec.value_range == VALUE_RANGES.get(name, 1.0)
    assert spec.in_channels in (None, x.shape[1])
    assert spec.padded_size(x.shape[2]) == x.shape[2] and spec.padded_size(x.shape[3]) == x.shape[3]
    with torch.no_grad():
        y = net.eval()(x)
    assert y.shape == _expected_shape(spec, x, name)
    if spec.size_multiple > 1:  # the declared multiple is a real requirement, refused with a readable error
        with pytest.raises(ValueError, match="multiple"):
            net(torch.rand(1, x.shape[1], x.shape[2] + 1, x.shape[3]))


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_gives_finite_gradients_to_every_parameter(name: str) -> None:
    net, x = _tiny(name)
    x.requires_grad_(True)
    net.train()(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in net.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: parameter {pname} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_through_load_weights(name: str, tmp_path: Path) -> None:
    net, x = _tiny(name)
    for p in net.parameters():  # move away from the initialisation; fixed masks (TBSN) stay as built
        if p.requires_grad:
            p.data.add_(0.01 * torch.randn_like(p))
    torch.save({"params": net.state_dict()}, tmp_path / "net.pth")
    torch.manual_seed(123)
    fresh = build_network({"type": name, **TINY_CONFIGS[name][0]})
    load_weights(fresh, str(tmp_path / "net.pth"))  # strict
    for key, value in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), net.eval()(x))


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic_and_images_in_a_batch_are_independent(name: str) -> None:
    net, x = _tiny(name)
    net.eval()
    with torch.no_grad():
        y = net(x)
        assert torch.equal(net(x), y)
        for i in range(x.shape[0]):
            torch.testing.assert_close(net(x[i : i + 1]), y[i : i + 1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in NAMES if "use_checkpoint" in inspect.signature(ARCH_REGISTRY.get(n)).parameters])
def test_gradient_checkpointing_changes_nothing(name: str) -> None:
    plain, x = _tiny(name, use_checkpoint=False)
    ckpt, _ = _tiny(name, use_checkpoint=True)
    ckpt.load_state_dict(plain.state_dict())
    outputs = [net.train()(x) for net in (plain, ckpt)]
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=0)
    for net, y in zip((plain, ckpt), outputs):
        y.square().mean().backward()
    for (pname, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-7, msg=pname)


@pytest.mark.parametrize("name", NAMES)
def test_restore_with_the_spec_handles_any_input_size(name: str) -> None:
    """An odd, too-small input is padded to the contract and cropped back; the value range is applied."""
    if name in ONE_SCORE_PER_IMAGE:
        pytest.skip("one score per image: nothing to pad and crop back")
    net, x = _tiny(name)
    net.eval()
    spec = arch_spec(net)
    odd = x[:1, :, :5, :7]
    out = restore(net, odd, spec=spec)
    assert out.shape == _expected_shape(spec, odd)
    padded, _ = pad_to_multiple(odd, spec.size_multiple, min_size=spec.min_size)
    with torch.no_grad():
        direct = net(padded * spec.value_range) / spec.value_range
    torch.testing.assert_close(out, direct[..., : 5 * spec.scale, : 7 * spec.scale])


# ------------------------------------------------------------------ the contract in inference and the wrappers


def test_restore_applies_value_range_and_min_size() -> None:
    """A [0, 255] network gets 255 * x and its output back in [0, 1]; sides below min_size are padded up."""
    seen: list[torch.Tensor] = []

    def net(t: torch.Tensor) -> torch.Tensor:
        seen.append(t)
        return t.repeat_interleave(2, -2).repeat_interleave(2, -1)

    spec = ArchSpec(scale=2, size_multiple=4, min_size=12, value_range=255.0)
    x = torch.rand(1, 3, 5, 13)
    y = restore(net, x, spec=spec)
    assert seen[0].shape == (1, 3, 12, 16) and seen[0].max() > 1.0
    torch.testing.assert_close(seen[0][..., :5, :13], x * 255.0)
    torch.testing.assert_close(y, x.repeat_interleave(2, -2).repeat_interleave(2, -1))
    with pytest.raises(ValueError, match=r"scale=4 contradicts the network's spec \(2\)"):
        restore(net, x, scale=4, spec=spec)
    with pytest.raises(ValueError, match="smaller than the network's minimum input side 12"):
        tiled_forward(net, x, 2, tile=8, overlap=2, multiple=4, min_size=12)
    with pytest.raises(ValueError, match="cannot be tiled"):
        restore(net, x, spec=ArchSpec(tileable=False), tile=8)


def test_arch_spec_looks_through_wrappers_and_falls_back_for_foreign_networks() -> None:
    net, _ = _tiny("HAT")
    wrapper = nn.Module()
    wrapper.module = net  # what DistributedDataParallel looks like
    assert arch_spec(wrapper) is net.spec
    foreign = nn.Conv2d(3, 3, 3)
    foreign.size_multiple, foreign.upscale = 8, 1  # an old-style research network from outside the package
    assert arch_spec(foreign) == ArchSpec(size_multiple=8, min_size=8)
    with pytest.raises(ValueError, match="min_size 12 must be a multiple of size_multiple 8"):
        ArchSpec(size_multiple=8, min_size=12)
