"""How tests/data/span_nafnet_official_tiny.pt.xz was made (run OUTSIDE this repo, on the official code).

    git clone https://github.com/hongyuanyu/SPAN /tmp/official/SPAN                # commit c77a591
    git clone https://github.com/megvii-research/NAFNet /tmp/official/NAFNet       # commit 2b4af71
    python tests/data/span_nafnet_make_fixtures.py /tmp/official/SPAN /tmp/official/NAFNet \
        tests/data/span_nafnet_official_tiny.pt.xz

(only ``basicsr/archs/span_arch.py`` and ``basicsr/models/archs/{NAFNet_arch,arch_util,local_arch}.py`` are read,
so a clone whose large files failed to check out is enough.) The official files are loaded as they are; only the
package imports they do not use are stubbed (BasicSR's registry decorator, ``get_root_logger``), because their
package ``__init__`` files import the whole training stack.

The file is an xz-compressed ``torch.save`` dict: case name -> ``arch`` (our registry name), ``config`` (the
official kwargs), ``mode`` (``eval`` or ``train``), ``params`` (the official ``state_dict()`` BEFORE the forward,
every tensor redrawn and rounded to float16 so the file stores it exactly; SPAN's ``eval_conv`` tensors are random
too, i.e. stale, as in trained files), ``input`` ((1, C, H, W) float64 in [0, 1]) and ``output`` (the official
float64 forward in that mode). Entry ``layernorm2d`` holds NAFNet's custom autograd LayerNorm2d in float64:
``x``, ``weight``, ``bias``, ``grad_out`` and the official ``y``, ``grad_x``, ``grad_weight``, ``grad_bias``.
"""

import importlib.util
import io
import lzma
import sys
import types

import torch


def _module(name: str, path: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _load_official(span_root: str, nafnet_root: str) -> dict:
    class _Registry:
        def register(self, obj=None, suffix=None):
            return obj if obj is not None else (lambda cls: cls)

    for name in ("basicsr", "basicsr.utils", "basicsr.utils.registry", "basicsr.archs", "basicsr.models",
                 "basicsr.models.archs"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["basicsr.utils.registry"].ARCH_REGISTRY = _Registry()
    sys.modules["basicsr.utils"].get_root_logger = lambda *a, **k: None
    span = _module("basicsr.archs.span_arch", f"{span_root}/basicsr/archs/span_arch.py")
    archs = f"{nafnet_root}/basicsr/models/archs"
    util = _module("basicsr.models.archs.arch_util", f"{archs}/arch_util.py")
    _module("basicsr.models.archs.local_arch", f"{archs}/local_arch.py")
    naf = _module("basicsr.models.archs.NAFNet_arch", f"{archs}/NAFNet_arch.py")
    return {"SPAN": span.SPAN, "NAFNet": naf.NAFNet, "NAFNetLocal": naf.NAFNetLocal,
            "LayerNorm2d": util.LayerNorm2d}


CASES = {
    "span_x4_eval": ("SPAN", dict(num_in_ch=3, num_out_ch=3, feature_channels=4, upscale=4), "eval", (1, 3, 5, 6)),
    "span_x4_train": ("SPAN", dict(num_in_ch=3, num_out_ch=3, feature_channels=4, upscale=4), "train", (1, 3, 5, 6)),
    "span_x3_gray_out_eval": ("SPAN", dict(num_in_ch=3, num_out_ch=1, feature_channels=5, upscale=3), "eval",
                              (1, 3, 4, 7)),
    "span_x2_train": ("SPAN", dict(num_in_ch=3, num_out_ch=3, feature_channels=4, upscale=2), "train", (1, 3, 6, 3)),
    "nafnet_two_levels": ("NAFNet", dict(img_channel=3, width=4, middle_blk_num=1, enc_blk_nums=[1, 2],
                                         dec_blk_nums=[2, 1]), "eval", (1, 3, 7, 10)),
    "nafnet_gray_one_level": ("NAFNet", dict(img_channel=1, width=2, middle_blk_num=2, enc_blk_nums=[1],
                                             dec_blk_nums=[1]), "train", (1, 1, 5, 4)),
    "nafnetlocal_square": ("NAFNetLocal", dict(img_channel=3, width=4, middle_blk_num=1, enc_blk_nums=[1, 1],
                                               dec_blk_nums=[1, 1], train_size=[1, 3, 16, 16]), "eval", (1, 3, 40, 36)),
    "nafnetlocal_oblong": ("NAFNetLocal", dict(img_channel=3, width=4, middle_blk_num=1, enc_blk_nums=[1, 1],
                                               dec_blk_nums=[1, 1], train_size=[1, 3, 12, 20]), "eval", (1, 3, 30, 26)),
    "nafnetlocal_global": ("NAFNetLocal", dict(img_channel=3, width=4, middle_blk_num=1, enc_blk_nums=[1, 1],
                                               dec_blk_nums=[1, 1]), "eval", (1, 3, 13, 9)),
}


def _layernorm_case(layer_norm2d: type) -> dict:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64) * 3 + 1
    ln = layer_norm2d(5).double()
    with torch.no_grad():
        ln.weight.copy_(torch.randn(5, generator=g, dtype=torch.float64))
        ln.bias.copy_(torch.randn(5, generator=g, dtype=torch.float64))
    grad_out = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64)
    xg = x.clone().requires_grad_(True)
    y = ln(xg)
    y.backward(grad_out)
    return {"x": x, "weight": ln.weight.detach().clone(), "bias": ln.bias.detach().clone(), "grad_out": grad_out,
            "y": y.detach(), "grad_x": xg.grad, "grad_weight": ln.weight.grad, "grad_bias": ln.bias.grad}


def main(span_root: str, nafnet_root: str, out_path: str) -> None:
    classes = _load_official(span_root, nafnet_root)
    cases = {}
    for i, (name, (arch, cfg, mode, shape)) in enumerate(CASES.items()):
        torch.manual_seed(200 + i)
        net = classes[arch](**cfg)
        with torch.no_grad():
            for key, p in net.state_dict().items():
                fan_in = p[0].numel() if p.dim() == 4 and not key.endswith(("beta", "gamma")) else 1
                scale = 1 / fan_in ** 0.5 if p.dim() == 4 and fan_in > 1 else 0.3
                p.copy_((torch.randn_like(p) * scale).half().float())
        params = {k: v.detach().clone().half() for k, v in net.state_dict().items()}
        x = torch.rand(shape, generator=torch.Generator().manual_seed(11 + i), dtype=torch.float64)
        net = net.double().train(mode == "train")
        with torch.no_grad():
            y = net(x.clone())
        cases[name] = {"arch": arch, "config": cfg, "mode": mode, "params": params, "input": x, "output": y,
                       "source": "hongyuanyu/SPAN@c77a591 span_arch.py / megvii-research/NAFNet@2b4af71 "
                                 "NAFNet_arch.py + local_arch.py, float64 forward"}
    cases["layernorm2d"] = _layernorm_case(classes["LayerNorm2d"])
    buf = io.BytesIO()
    torch.save(cases, buf)
    with open(out_path, "wb") as f:
        f.write(lzma.compress(buf.getvalue(), preset=9))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
