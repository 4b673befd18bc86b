"""How tests/data/edsr_rcan_official_tiny.pt.xz was made (run OUTSIDE this repo, on the official code).

    git clone https://github.com/XPixelGroup/BasicSR /tmp/official/BasicSR   # commit 8d56e3a
    python tests/data/edsr_rcan_make_fixtures.py /tmp/official/BasicSR tests/data/edsr_rcan_official_tiny.pt.xz

The official ``basicsr/archs/edsr_arch.py`` and ``basicsr/archs/rcan_arch.py`` (with the ``arch_util.py`` they
import) are loaded as they are; only the package imports they do not use are stubbed, as in
``realesrgan_make_fixtures.py`` (the registry decorator, the deformable-conv ops and logger of ``arch_util``).

Also prints the trainable parameter counts of the released configurations, counted on the official classes on the
meta device (the numbers ``tests/test_edsr_rcan_archs.py`` asserts).

The file is an xz-compressed ``torch.save`` dict: case name -> ``config`` (the official kwargs), ``arch``,
``params`` (the official ``state_dict()``, redrawn as N(0, 1/fan_in) weights and N(0, 0.1^2) biases so every
block changes the output, rounded to float16 so the file stores them exactly), ``input`` ((1, 3, H, W) float64 in
[0, 1]) and ``output`` (the official float64 forward).
"""

import io
import lzma
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from realesrgan_make_fixtures import _load_official  # noqa: E402  (installs the same stubs)

CASES = {
    "edsr_x2_res1": ("EDSR", dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=2, res_scale=1),
                     (1, 3, 6, 7)),
    "edsr_x3_res01": ("EDSR", dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=3, upscale=3, res_scale=0.1),
                      (1, 3, 5, 6)),
    "edsr_x4_mean": ("EDSR", dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1, upscale=4, res_scale=0.5,
                                  img_range=1.0, rgb_mean=[0.5, 0.25, 0.125]), (1, 3, 4, 5)),
    "rcan_x2": ("RCAN", dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_group=2, num_block=2, squeeze_factor=4,
                             upscale=2), (1, 3, 6, 5)),
    "rcan_x3_res": ("RCAN", dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_group=1, num_block=3, squeeze_factor=2,
                                 upscale=3, res_scale=0.5), (1, 3, 5, 4)),
    "rcan_x8": ("RCAN", dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_group=2, num_block=1, squeeze_factor=4,
                             upscale=8), (1, 3, 3, 4)),
}

_MEAN = dict(num_in_ch=3, num_out_ch=3, img_range=255.0, rgb_mean=[0.4488, 0.4371, 0.404])
RELEASED = {
    **{f"EDSR_Mx{s}": ("EDSR", dict(_MEAN, num_feat=64, num_block=16, upscale=s, res_scale=1)) for s in (2, 3, 4)},
    **{f"EDSR_Lx{s}": ("EDSR", dict(_MEAN, num_feat=256, num_block=32, upscale=s, res_scale=0.1)) for s in (2, 3, 4)},
    **{f"RCAN_x{s}": ("RCAN", dict(_MEAN, num_feat=64, num_group=10, num_block=20, squeeze_factor=16, upscale=s,
                                   res_scale=1)) for s in (2, 3, 4)},
}


def _official_classes(root: str) -> dict[str, type]:
    _load_official(root)
    from basicsr.archs.edsr_arch import EDSR
    from basicsr.archs.rcan_arch import RCAN

    return {"EDSR": EDSR, "RCAN": RCAN}


def main(root: str, out_path: str) -> None:
    classes = _official_classes(root)
    for name, (arch, cfg) in RELEASED.items():
        with torch.device("meta"):
            net = classes[arch](**cfg)
        print(name, sum(p.numel() for p in net.parameters() if p.requires_grad))
    cases = {}
    for i, (name, (arch, cfg, shape)) in enumerate(CASES.items()):
        torch.manual_seed(200 + i)
        net = classes[arch](**cfg)
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5 if p.dim() == 4 else 0.1 * torch.randn_like(p))
                p.copy_(p.half().float())
        params = {k: v.detach().half() for k, v in net.state_dict().items()}
        x = torch.rand(shape, generator=torch.Generator().manual_seed(17 + i), dtype=torch.float64)
        net = net.double().eval()
        with torch.no_grad():
            y = net(x.clone())
        cases[name] = {"arch": arch, "config": cfg, "params": params, "input": x, "output": y,
                       "source": "XPixelGroup/BasicSR@8d56e3a basicsr/archs/{edsr,rcan}_arch.py, float64 forward"}
    buf = io.BytesIO()
    torch.save(cases, buf)
    with open(out_path, "wb") as f:
        f.write(lzma.compress(buf.getvalue(), preset=9))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
