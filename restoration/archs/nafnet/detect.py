"""Which NAFNet network a state dict holds, read from its key names and shapes."""

from __future__ import annotations

from typing import Any

from restoration.archs.layout import LayoutMismatch, StateDict, count, shape


def detect_nafnet(sd: StateDict) -> tuple[str, dict[str, Any]]:
    """NAFNet kwargs: ``intro``, per level ``encoders.{i}.{j}`` + ``downs.{i}``, ``middle_blks.{j}``,
    ``ups.{i}`` + ``decoders.{i}.{j}``, ``ending``. A level with no blocks still has its ``downs``/``ups`` conv.

    ``NAFNetLocal`` (TLC) has the same state dict; the release decides which of the two is built.
    """
    width, img_channel = shape(sd, "intro.weight")[:2]
    shape(sd, "ending.weight")
    levels = count(sd, "downs.")
    if count(sd, "ups.") != levels:
        raise LayoutMismatch(f"{levels} 'downs.*' but {count(sd, 'ups.')} 'ups.*' convolutions")
    return "NAFNet", dict(img_channel=img_channel, width=width, middle_blk_num=count(sd, "middle_blks."),
                          enc_blk_nums=[count(sd, f"encoders.{i}.") for i in range(levels)],
                          dec_blk_nums=[count(sd, f"decoders.{i}.") for i in range(levels)])
