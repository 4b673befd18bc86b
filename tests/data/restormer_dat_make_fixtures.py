"""How tests/data/restormer_dat_official_tiny.pt.xz was made (run OUTSIDE this repo, on the official code).

    git clone https://github.com/swz30/Restormer /tmp/official/Restormer
    git clone https://github.com/zhengchen1999/DAT /tmp/official/DAT
    python tests/data/restormer_dat_make_fixtures.py /tmp/official/Restormer /tmp/official/DAT \
        tests/data/restormer_dat_official_tiny.pt.xz

The official ``basicsr/models/archs/restormer_arch.py`` and ``basicsr/archs/dat_arch.py`` are loaded unmodified;
only the package they live in is stubbed (``basicsr`` needs a build; DAT's file uses nothing of it but the
registry decorator). Needs einops and timm, as the official files do.

The file is an xz-compressed ``torch.save`` dict: case name -> ``config`` (official kwargs), ``arch`` (registry
name), ``params`` (the official ``state_dict()``; floating tensors redrawn (weights N(0, 1/fan_in), the rest
0.1 N(0, 1), LayerNorm / BatchNorm scales and running variances near 1, temperatures in [0.5, 1.5]) and rounded to
float16 so the file stores them exactly; integer buffers as they are), ``input`` ((1, C, H, W) float64 in [0, 1])
and ``output`` (the official float64 eval-mode forward).
"""

import importlib
import io
import lzma
import sys
import types

import torch


def _package(name: str, path: str) -> None:
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module


def _load_official(restormer_root: str, dat_root: str) -> dict[str, type]:
    _package("basicsr", f"{restormer_root}/basicsr")
    _package("basicsr.models", f"{restormer_root}/basicsr/models")
    _package("basicsr.models.archs", f"{restormer_root}/basicsr/models/archs")
    restormer = importlib.import_module("basicsr.models.archs.restormer_arch").Restormer
    for name in [n for n in sys.modules if n == "basicsr" or n.startswith("basicsr.")]:
        del sys.modules[name]

    class _Registry:
        def register(self, obj=None, suffix=None):
            return obj if obj is not None else (lambda cls: cls)

    _package("basicsr", f"{dat_root}/basicsr")
    _package("basicsr.archs", f"{dat_root}/basicsr/archs")
    _package("basicsr.utils", f"{dat_root}/basicsr/utils")
    registry = types.ModuleType("basicsr.utils.registry")
    registry.ARCH_REGISTRY = _Registry()
    sys.modules["basicsr.utils.registry"] = registry
    dat = importlib.import_module("basicsr.archs.dat_arch").DAT
    return {"Restormer": restormer, "DAT": dat}


CASES = {
    "restormer_withbias": ("Restormer", dict(inp_channels=3, out_channels=3, dim=4, num_blocks=[1, 2, 1, 1],
                                             num_refinement_blocks=1, heads=[1, 2, 2, 4], ffn_expansion_factor=2.66,
                                             bias=False, LayerNorm_type="WithBias", dual_pixel_task=False),
                           (1, 3, 16, 24)),
    "restormer_biasfree_gray_bias": ("Restormer", dict(inp_channels=1, out_channels=1, dim=4, num_blocks=[1, 1, 1, 1],
                                                       num_refinement_blocks=2, heads=[2, 2, 4, 4],
                                                       ffn_expansion_factor=1.5, bias=True, LayerNorm_type="BiasFree",
                                                       dual_pixel_task=False), (1, 1, 16, 8)),
    "restormer_dual_pixel": ("Restormer", dict(inp_channels=6, out_channels=3, dim=4, num_blocks=[1, 1, 1, 1],
                                               num_refinement_blocks=0, heads=[1, 1, 2, 2], ffn_expansion_factor=2.66,
                                               bias=False, LayerNorm_type="WithBias", dual_pixel_task=True),
                             (1, 6, 8, 16)),
    # img_size 16 = the input: the stored shift masks are used (blocks rg0/b2 and rg1/b0 shift)
    "dat_x2_stored_mask": ("DAT", dict(img_size=16, in_chans=3, embed_dim=32, split_size=[2, 4], depth=[4, 2],
                                       num_heads=[2, 4], expansion_factor=2.0, upscale=2, img_range=1.0,
                                       resi_connection="1conv", upsampler="pixelshuffle"), (1, 3, 16, 16)),
    # sides that are not multiples of max(split_size): padded q/k/v, recomputed masks
    "dat_x2_padded_no_qkv_bias": ("DAT", dict(img_size=16, in_chans=3, embed_dim=32, split_size=[2, 4], depth=[3, 1],
                                  num_heads=[2, 2], expansion_factor=4.0, qkv_bias=False, upscale=2, img_range=1.0,
                                  resi_connection="1conv", upsampler="pixelshuffle"), (1, 3, 10, 13)),
    "dat_light_x3_gray": ("DAT", dict(img_size=8, in_chans=1, embed_dim=32, split_size=[4, 8], depth=[5],
                                      num_heads=[4], expansion_factor=2.0, upscale=3, img_range=255.0,
                                      resi_connection="3conv", upsampler="pixelshuffledirect"), (1, 1, 9, 11)),
}


def _redraw(net: torch.nn.Module) -> None:
    with torch.no_grad():
        for key, t in net.state_dict().items():
            if not t.is_floating_point() or key.endswith(("rpe_biases", "attn_mask_0", "attn_mask_1")):
                continue
            name = key.rsplit(".", 1)[-1]
            if t.dim() >= 2:
                t.copy_(torch.randn_like(t) / t[0].numel() ** 0.5)
            elif name == "temperature" or t.dim() == 3:
                t.copy_(0.5 + torch.rand_like(t))
            elif name in ("running_var",):
                t.copy_(0.5 + torch.rand_like(t))
            elif name == "weight":
                t.copy_(1.0 + 0.1 * torch.randn_like(t))
            else:
                t.copy_(0.1 * torch.randn_like(t))
            t.copy_(t.half().float())


def main(restormer_root: str, dat_root: str, out_path: str) -> None:
    classes = _load_official(restormer_root, dat_root)
    cases = {}
    for i, (name, (arch, cfg, shape)) in enumerate(CASES.items()):
        torch.manual_seed(200 + i)
        net = classes[arch](**cfg)
        _redraw(net)
        params = {k: (v.detach().half() if v.is_floating_point() else v.detach().clone())
                  for k, v in net.state_dict().items()}
        x = torch.rand(shape, generator=torch.Generator().manual_seed(11 + i), dtype=torch.float64)
        net = net.double().eval()
        with torch.no_grad():
            y = net(x.clone())
        source = ("swz30/Restormer basicsr/models/archs/restormer_arch.py" if arch == "Restormer"
                  else "zhengchen1999/DAT basicsr/archs/dat_arch.py")
        cases[name] = {"arch": arch, "config": cfg, "params": params, "input": x, "output": y,
                       "source": f"{source}, float64 eval forward"}
    buf = io.BytesIO()
    torch.save(cases, buf)
    with open(out_path, "wb") as f:
        f.write(lzma.compress(buf.getvalue(), preset=9))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
