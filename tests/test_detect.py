"""Architecture detection from checkpoint keys: every official configuration is read back from its own state dict.

Networks are built on the meta device (shapes only), so the sweep over all releases, HAT-L included, is cheap.
"""

from __future__ import annotations

import functools
import re

import pytest
import torch

from restoration.archs.build import build_network
from tests.helpers import assert_unreleased_detection
from restoration.archs.detect import DetectionError, detect_architecture, layout_differences, published_configs
from restoration.errors import UnrecognisedCheckpointError

# Every official configuration of ARCHITECTURES.md: (label, network options). Where several checkpoints share a
# layout up to the stored attn_mask (classical DIV2K s48 vs DF2K s64) both patch sizes are listed.
_SWINIR_BASE = dict(type="SwinIR", in_chans=3, embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, window_size=8,
                    mlp_ratio=2, img_range=1.0, resi_connection="1conv")
_HAT_BASE = dict(type="HAT", img_size=64, embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, window_size=16,
                 compress_ratio=3, squeeze_factor=30, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2,
                 upsampler="pixelshuffle", resi_connection="1conv")
OFFICIAL: list[tuple[str, dict]] = []
for _s in (2, 3, 4, 8):
    for _img in (48, 64):
        OFFICIAL.append((f"SwinIR-M classical x{_s} s{_img}",
                         {**_SWINIR_BASE, "img_size": _img, "upscale": _s, "upsampler": "pixelshuffle"}))
for _s in (2, 3, 4):
    OFFICIAL.append((f"SwinIR-S lightweight x{_s}", {**_SWINIR_BASE, "img_size": 64, "embed_dim": 60, "depths": [6] * 4,
                                                     "num_heads": [6] * 4, "upscale": _s,
                                                     "upsampler": "pixelshuffledirect"}))
OFFICIAL += [
    ("SwinIR-M real-SR x4", {**_SWINIR_BASE, "img_size": 64, "upscale": 4, "upsampler": "nearest+conv"}),
    ("SwinIR-L real-SR x4", {**_SWINIR_BASE, "img_size": 64, "embed_dim": 240, "depths": [6] * 9, "num_heads": [8] * 9,
                             "upscale": 4, "upsampler": "nearest+conv", "resi_connection": "3conv"}),
    ("SwinIR gray denoise", {**_SWINIR_BASE, "in_chans": 1, "img_size": 128, "upscale": 1, "upsampler": ""}),
    ("SwinIR color denoise", {**_SWINIR_BASE, "img_size": 128, "upscale": 1, "upsampler": ""}),
    ("SwinIR gray JPEG", {**_SWINIR_BASE, "in_chans": 1, "img_size": 126, "window_size": 7, "img_range": 255.0,
                          "upscale": 1, "upsampler": ""}),
    ("SwinIR color JPEG", {**_SWINIR_BASE, "img_size": 126, "window_size": 7, "img_range": 255.0, "upscale": 1,
                           "upsampler": ""}),
]
for _s in (2, 3, 4):
    OFFICIAL += [
        (f"HAT-S x{_s}", {**_HAT_BASE, "embed_dim": 144, "compress_ratio": 24, "squeeze_factor": 24, "upscale": _s}),
        (f"HAT x{_s}", {**_HAT_BASE, "upscale": _s}),
        (f"HAT-L x{_s}", {**_HAT_BASE, "depths": [6] * 12, "num_heads": [6] * 12, "upscale": _s}),
    ]
OFFICIAL += [
    ("Real-HAT GAN x4", {**_HAT_BASE, "upscale": 4}),
    ("MSDeformableNAIR official", dict(type="MSDeformableNAIR", dim=48, heads=[3, 6, 12, 24])),
    ("DSwinIR paper", dict(type="DSwinIR")),
    ("TBSN SIDD", dict(type="TBSN")),
    ("RealESRGAN x4plus", dict(type="RRDBNet", num_in_ch=3, num_out_ch=3)),
    ("RealESRGAN x2plus", dict(type="RRDBNet", num_in_ch=3, num_out_ch=3, scale=2)),
    ("RealESRGAN x4plus anime 6B", dict(type="RRDBNet", num_in_ch=3, num_out_ch=3, num_block=6)),
    ("realesr-general-x4v3", dict(type="SRVGGNetCompact", num_conv=32)),
    ("realesr-animevideov3", dict(type="SRVGGNetCompact")),
    ("SPAN x4 ch48", dict(type="SPAN", num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4)),
    ("SPAN x2 ch48", dict(type="SPAN", num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=2)),
    ("NAFNet-SIDD-width32", dict(type="NAFNet", width=32, middle_blk_num=12, enc_blk_nums=[2, 2, 4, 8],
                                 dec_blk_nums=[2, 2, 2, 2])),
    ("NAFNet-SIDD-width64", dict(type="NAFNet", width=64, middle_blk_num=12, enc_blk_nums=[2, 2, 4, 8],
                                 dec_blk_nums=[2, 2, 2, 2])),
    ("NAFNet-GoPro-width32", dict(type="NAFNetLocal", width=32, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28],
                                  dec_blk_nums=[1, 1, 1, 1])),
    ("NAFNet-GoPro-width64", dict(type="NAFNetLocal", width=64, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28],
                                  dec_blk_nums=[1, 1, 1, 1])),
]
_RESTORMER = dict(type="Restormer", bias=False)  # official option files: the defaults plus these
OFFICIAL += [
    ("Restormer deraining / motion deblurring", dict(_RESTORMER, LayerNorm_type="WithBias")),
    ("Restormer dual-pixel defocus", dict(_RESTORMER, LayerNorm_type="WithBias", inp_channels=6,
                                          dual_pixel_task=True)),
    ("Restormer color denoising", dict(_RESTORMER, LayerNorm_type="BiasFree")),
    ("Restormer gray denoising", dict(_RESTORMER, LayerNorm_type="BiasFree", inp_channels=1, out_channels=1)),
]
_DAT = dict(type="DAT", img_size=64, in_chans=3, embed_dim=180, depth=[6] * 6, num_heads=[6] * 6, img_range=1.0,
            resi_connection="1conv")
for _s in (2, 3, 4):  # zhengchen1999/DAT options/Test/test_DAT{,_S,_2,_light}_x{s}.yml
    OFFICIAL += [
        (f"DAT_x{_s}", dict(_DAT, upscale=_s, split_size=[8, 32], expansion_factor=4)),
        (f"DAT_S_x{_s}", dict(_DAT, upscale=_s, split_size=[8, 16], expansion_factor=2)),
        (f"DAT_2_x{_s}", dict(_DAT, upscale=_s, split_size=[8, 32], expansion_factor=2)),
        (f"DAT_light_x{_s}", dict(_DAT, upscale=_s, split_size=[8, 32], expansion_factor=2, embed_dim=60, depth=[18],
                                  num_heads=[6], resi_connection="3conv", upsampler="pixelshuffledirect")),
    ]
for _s in (2, 3, 4):  # BasicSR's EDSR-M / EDSR-L (res_scale 0.1 is invisible: the release gives it) and RCAN
    OFFICIAL += [
        (f"EDSR_Mx{_s}", dict(type="EDSR", num_in_ch=3, num_out_ch=3, upscale=_s, res_scale=1)),
        (f"EDSR_Lx{_s}", dict(type="EDSR", num_in_ch=3, num_out_ch=3, num_feat=256, num_block=32, upscale=_s,
                              res_scale=0.1)),
        (f"RCAN x{_s}", dict(type="RCAN", num_in_ch=3, num_out_ch=3, num_block=20, upscale=_s)),
    ]


@functools.lru_cache(maxsize=None)
def _official_state_dict(label: str) -> dict[str, torch.Tensor]:
    return _meta_state_dict(dict(OFFICIAL)[label])


def _meta_state_dict(opt: dict) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build_network(opt).state_dict()


def _shapes(sd) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


@pytest.mark.parametrize("label,opt", OFFICIAL, ids=[label for label, _ in OFFICIAL])
def test_every_official_config_is_detected_back(label: str, opt: dict) -> None:
    sd = _official_state_dict(label)
    det = detect_architecture(sd)
    assert det.arch == opt["type"]
    assert det.release is not None
    for key, value in opt.items():  # every official kwarg, the invisible ones (img_range) included
        if key != "type":
            got = det.kwargs[key]
            assert (list(got) if isinstance(got, (list, tuple)) else got) == value, (label, key, got, value)
    assert _shapes(_meta_state_dict(det.network_opt())) == _shapes(sd)


def test_every_release_entry_is_covered_by_the_sweep() -> None:
    names = {detect_architecture(_official_state_dict(label)).release for label, _ in OFFICIAL}
    assert names == {c.name for c in published_configs()}


def test_an_unreleased_swinir_is_restored_with_a_notice_naming_what_was_assumed() -> None:
    """spandrel's rule: the shapes determine the network, the closest release fills what no state dict shows."""
    opt = {**_SWINIR_BASE, "embed_dim": 96, "img_size": 64, "upscale": 2, "upsampler": "pixelshuffle"}
    sd = _meta_state_dict(opt)
    det = detect_architecture(sd, where="my.pth")
    assert det.release is None and det.kwargs["embed_dim"] == 96 and det.kwargs["img_range"] == 1.0
    assert det.notice == ("not a released SwinIR configuration (embed_dim 96; closest: SwinIR-M classical SR x2); "
                          "not shown by the weights, assumed as in it: img_range=1.0; --arch-opt '{json}' sets "
                          "them otherwise")
    assert det.notice in det.describe()
    assert layout_differences(det.network_opt(), sd) == []


def test_an_unreleased_config_between_releases_that_disagree_is_refused_naming_them() -> None:
    """EDSR-M (res_scale 1) and EDSR-L (res_scale 0.1) are equally close to a 32-feature EDSR: truly ambiguous."""
    sd = _meta_state_dict({"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 32, "num_block": 4, "upscale": 2,
                           "res_scale": 0.1})
    with pytest.raises(DetectionError) as info:
        detect_architecture(sd, where="mine.pth")
    msg = str(info.value)
    assert "mine.pth: EDSR-like, but num_feat 32 is not a released config; the closest ones disagree on what the " \
           "weights do not show (res_scale: 1 in EDSR_Mx2_f64b16_DIV2K_official (EDSR-M x2) / 0.1 in " \
           "EDSR_Lx2_f256b32_DIV2K_official (EDSR-L x2))" in msg
    assert "--arch EDSR" in msg
    assert detect_architecture(sd, arch="EDSR", overrides={"res_scale": 0.1}).kwargs["res_scale"] == 0.1


def test_arch_confirms_an_unreleased_config_with_the_shapes_read_from_the_keys() -> None:
    opt = dict(type="SwinIR", img_size=16, in_chans=3, embed_dim=12, depths=[2, 3], num_heads=[2, 3], window_size=4,
               mlp_ratio=1.5, upscale=3, upsampler="pixelshuffle", resi_connection="3conv")
    sd = _meta_state_dict(opt)
    det = detect_architecture(sd, arch="SwinIR", overrides={"img_range": 255.0})
    assert det.release is None and det.kwargs["img_range"] == 255.0
    for key, value in opt.items():
        if key != "type":
            assert det.kwargs[key] == value, key
    assert layout_differences(det.network_opt(), sd) == []


@pytest.mark.parametrize("opt", [
    dict(type="HAT", img_size=16, embed_dim=12, depths=[2], num_heads=[2], window_size=4, compress_ratio=4,
         squeeze_factor=6, overlap_ratio=0.5, mlp_ratio=2, upscale=3),
    dict(type="DSwinIR", dim=6, heads=[3, 3, 3, 3], num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
         kernel_size=[3, 5, 3, 3], ffn_expansion_factor=2.66, ffn_type="msg", msg_kernel_sizes=[3, 7], bias=True),
    dict(type="DSwinIR", dim=6, heads=[3, 3, 3, 3], num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
         attn_type="dat", layer_norm_type="BiasFree"),
    dict(type="MSDeformableNAIR", dim=6, heads=[3, 3, 3, 3], num_blocks=[1, 2, 1, 1], num_refinement_blocks=2,
         ffn_expansion_factor=2.66, dual_pixel_task=True, inp_channels=6),
    dict(type="TBSN", dim=8, num_blocks=[1, 1, 1], num_refinement_blocks=1, channel_heads=[1, 1, 2],
         spatial_heads=[1, 2, 1], spatial_dim_head=4, window_size=4, ffn_expansion_factor=2, bias=True),
], ids=["hat", "dswinir-msg", "dswinir-dat", "msdnair-dualpixel", "tbsn"])
def test_small_configs_round_trip_with_arch(opt: dict) -> None:
    sd = _meta_state_dict(opt)
    assert_unreleased_detection(sd)
    det = detect_architecture(sd, arch=opt["type"])
    assert det.arch == opt["type"]
    for key, value in opt.items():
        if key not in ("type", "img_size"):  # HAT stores no attn_mask: its img_size leaves no trace
            assert det.kwargs[key] == pytest.approx(value), key
    assert layout_differences(det.network_opt(), sd) == []


def test_foreign_keys_name_the_closest_family_and_the_keys_that_differ() -> None:
    """An RRDBNet with a renamed first convolution and one foreign key: one line naming RRDBNet (the closest
    by shared key patterns), the checkpoint's keys it does not have, its keys the checkpoint lacks, and why
    its detector refused."""
    sd = dict(_meta_state_dict(dict(type="RRDBNet", num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, num_block=2,
                                    num_grow_ch=4)))
    sd["head.weight"] = sd.pop("conv_first.weight")
    sd["extra.bias"] = torch.zeros(1)
    with pytest.raises(UnrecognisedCheckpointError) as info:
        detect_architecture(sd, where="esrgan.pth")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("esrgan.pth: the keys match no supported architecture; closest: RRDBNet, ")
    assert "checkpoint keys it does not have (2): head.weight, extra.bias" in msg
    assert "its keys the checkpoint lacks (1): conv_first.weight" in msg
    assert "(not RRDBNet: no 'conv_first.weight')" in msg
    assert isinstance(info.value, DetectionError)
    with pytest.raises(UnrecognisedCheckpointError, match=re.escape(
            "x.pth: the keys match no supported architecture and share no key pattern with any of them (first "
            "keys: stem.weight, z.bias). Pass --arch")):
        detect_architecture({"stem.weight": torch.zeros(1), "z.bias": torch.zeros(1)}, where="x.pth")


def test_unknown_arch_name_is_refused() -> None:
    with pytest.raises(DetectionError, match=re.escape("--arch 'SimpleSRNet' cannot be detected")):
        detect_architecture({}, arch="SimpleSRNet")


def test_a_truncated_checkpoint_fails_the_layout_check() -> None:
    opt = {**_SWINIR_BASE, "img_size": 48, "upscale": 2, "upsampler": "pixelshuffle"}
    sd = dict(_meta_state_dict(opt))
    del sd["layers.2.residual_group.blocks.3.mlp.fc2.bias"]
    with pytest.raises(DetectionError, match=r"layout differs from the checkpoint: missing in checkpoint \(1\): "
                                             r"layers\.2\.residual_group\.blocks\.3\.mlp\.fc2\.bias"):
        detect_architecture(sd)
