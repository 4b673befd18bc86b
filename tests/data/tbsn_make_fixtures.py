"""How tests/data/tbsn_tiny_*.pt.gz were made (run OUTSIDE this repo, next to the official code).

    git clone https://github.com/nagejacob/TBSN /tmp/official  # commit 678e93d
    cd /tmp/official && python /path/to/tbsn_make_fixtures.py

Each file is a gzip-compressed ``torch.save`` dict: ``config`` (official TBSN kwargs),
``state_dict`` (official random init, float32, saved *before* the first forward so the first
conv's centre tap is still non-zero), ``input`` ((1, 3, H, W) float32 in [0, 255]) and ``output``
(the official float64 forward of ``input``).
"""

import gzip
import io
import sys

import torch

sys.path.insert(0, ".")
from network.tbsn import TBSN  # noqa: E402  (the official class)

CONFIGS = {
    "tbsn_tiny_ws8": (dict(in_ch=3, out_ch=3, dim=4, num_blocks=[1, 1, 1], num_refinement_blocks=0,
                           channel_heads=[1, 2, 4], spatial_heads=[1, 1, 1], overlap_ratio=[0.5, 0.5, 0.5],
                           window_size=8, spatial_dim_head=4, bias=False, ffn_expansion_factor=1,
                           LayerNorm_type="BiasFree"), (1, 3, 32, 32)),
    "tbsn_tiny_ws4_bias": (dict(in_ch=3, out_ch=3, dim=4, num_blocks=[1, 1, 1], num_refinement_blocks=1,
                                channel_heads=[1, 2, 2], spatial_heads=[1, 2, 1], overlap_ratio=[1.0, 1.0, 1.0],
                                window_size=4, spatial_dim_head=4, bias=True, ffn_expansion_factor=1,
                                LayerNorm_type="WithBias"), (1, 3, 16, 48)),
}

for name, (cfg, shape) in CONFIGS.items():
    torch.manual_seed(1234)
    net = TBSN(**cfg)
    if cfg["bias"]:  # perturb norms/temperatures away from their 1/0 init so they matter
        with torch.no_grad():
            for key, p in net.named_parameters():
                if "norm" in key:
                    p.add_(0.1 * torch.randn_like(p))
                if key.endswith("temperature"):
                    p.mul_(1 + 0.5 * torch.rand_like(p))
    sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
    x = torch.rand(shape, generator=torch.Generator().manual_seed(7)) * 255
    net = net.double().eval()
    with torch.no_grad():
        y = net(x.double())
    buf = io.BytesIO()
    torch.save({"config": cfg, "state_dict": sd, "input": x, "output": y,
                "source": "nagejacob/TBSN@678e93d network/tbsn.py, random init (seed 1234), float64 forward"}, buf)
    with open(f"{name}.pt.gz", "wb") as f:
        f.write(gzip.compress(buf.getvalue(), 9))
