"""How tests/data/realesrgan_official_tiny.pt.xz was made (run OUTSIDE this repo, on the official code).

    git clone https://github.com/XPixelGroup/BasicSR /tmp/official/BasicSR   # commit 8d56e3a
    python tests/data/realesrgan_make_fixtures.py /tmp/official/BasicSR tests/data/realesrgan_official_tiny.pt.xz

The official ``basicsr/archs/rrdbnet_arch.py`` and ``basicsr/archs/srvgg_arch.py`` are loaded as they are; only
the package imports they do not use are stubbed (the registry decorator, the deformable-conv ops that
``arch_util`` imports, its logger), because ``import basicsr`` needs a built package.

The file is an xz-compressed ``torch.save`` dict: case name -> ``config`` (the official kwargs), ``arch``
(our registry name), ``params`` (the official ``state_dict()``: its initialisation redrawn as N(0, 1/fan_in)
so every block changes the output, PReLU slopes drawn in [0, 0.5], then rounded to float16 so the file stores
them exactly), ``input`` ((1, C, H, W) float64 in [0, 1]) and ``output`` (the official float64 forward).
"""

import io
import lzma
import sys
import types

import torch
from torch import nn


def _load_official(root: str) -> tuple[type, type]:
    sys.path.insert(0, root)

    class _Registry:
        def register(self, obj=None, suffix=None):
            return obj if obj is not None else (lambda cls: cls)

    stubs = {
        "basicsr": types.ModuleType("basicsr"),
        "basicsr.utils": types.ModuleType("basicsr.utils"),
        "basicsr.utils.registry": types.ModuleType("basicsr.utils.registry"),
        "basicsr.ops": types.ModuleType("basicsr.ops"),
        "basicsr.ops.dcn": types.ModuleType("basicsr.ops.dcn"),
        "basicsr.archs": types.ModuleType("basicsr.archs"),
    }
    stubs["basicsr"].__path__ = [f"{root}/basicsr"]
    stubs["basicsr.archs"].__path__ = [f"{root}/basicsr/archs"]
    stubs["basicsr.utils"].get_root_logger = lambda *a, **k: None
    stubs["basicsr.utils.registry"].ARCH_REGISTRY = _Registry()
    stubs["basicsr.ops.dcn"].ModulatedDeformConvPack = nn.Module
    stubs["basicsr.ops.dcn"].modulated_deform_conv = None
    try:
        import distutils.version  # noqa: F401  (arch_util imports LooseVersion)
    except ImportError:
        dv = types.ModuleType("distutils.version")
        dv.LooseVersion = str
        sys.modules.setdefault("distutils", types.ModuleType("distutils"))
        sys.modules["distutils.version"] = dv
    sys.modules.update(stubs)
    from basicsr.archs.rrdbnet_arch import RRDBNet
    from basicsr.archs.srvgg_arch import SRVGGNetCompact

    return RRDBNet, SRVGGNetCompact


CASES = {
    "rrdb_x4": ("RRDBNet", dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, num_block=2, num_grow_ch=4), (1, 3, 6, 7)),
    "rrdb_x2": ("RRDBNet", dict(num_in_ch=3, num_out_ch=3, scale=2, num_feat=8, num_block=2, num_grow_ch=4), (1, 3, 8, 6)),
    "rrdb_x1_gray": ("RRDBNet", dict(num_in_ch=1, num_out_ch=1, scale=1, num_feat=8, num_block=1, num_grow_ch=4),
                     (1, 1, 8, 12)),
    "srvgg_prelu_x4": ("SRVGGNetCompact", dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=3, upscale=4,
                                               act_type="prelu"), (1, 3, 5, 6)),
    "srvgg_leakyrelu_x3_gray": ("SRVGGNetCompact", dict(num_in_ch=1, num_out_ch=1, num_feat=6, num_conv=2, upscale=3,
                                                        act_type="leakyrelu"), (1, 1, 4, 7)),
    "srvgg_relu_x2": ("SRVGGNetCompact", dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_conv=0, upscale=2,
                                              act_type="relu"), (1, 3, 6, 5)),
}


def main(root: str, out_path: str) -> None:
    classes = dict(zip(("RRDBNet", "SRVGGNetCompact"), _load_official(root)))
    cases = {}
    for i, (name, (arch, cfg, shape)) in enumerate(CASES.items()):
        torch.manual_seed(100 + i)
        net = classes[arch](**cfg)
        with torch.no_grad():
            for key, p in net.named_parameters():
                if p.dim() == 4:
                    p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)
                elif key.startswith("body.") and p.dim() == 1 and cfg.get("act_type") == "prelu" and key.endswith(".weight"):
                    p.copy_(torch.rand_like(p) * 0.5)
                else:
                    p.copy_(0.1 * torch.randn_like(p))
                p.copy_(p.half().float())
        params = {k: v.detach().half() for k, v in net.state_dict().items()}
        x = torch.rand(shape, generator=torch.Generator().manual_seed(7 + i), dtype=torch.float64)
        net = net.double().eval()
        with torch.no_grad():
            y = net(x.clone())
        cases[name] = {"arch": arch, "config": cfg, "params": params, "input": x, "output": y,
                       "source": "XPixelGroup/BasicSR@8d56e3a basicsr/archs/{rrdbnet,srvgg}_arch.py, float64 forward"}
    buf = io.BytesIO()
    torch.save(cases, buf)
    with open(out_path, "wb") as f:
        f.write(lzma.compress(buf.getvalue(), preset=9))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
