"""``results/<name>/index.md``: test.py's results as a page — tables, protocol, per-image scores, thumbnails.

Markdown rather than HTML: it reads as plain text in a terminal over ssh, GitHub, GitLab, VS Code and Jupyter
render it with its images, it diffs between runs, and it needs no escaping rules beyond ``|`` or any script.
Links are relative, so the folder can be copied or archived as a whole.

Thumbnails are PNGs of at most :data:`THUMBNAIL_MAX_SIDE` pixels a side in ``thumbnails/<dataset>/``, each
linking to the full restored image in ``visualization/<dataset>/`` (written with ``val.save_img``; without
saved images the rows carry the scores only).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from restoration.utils.image_grid import thumbnail
from restoration.utils.image_io import imread, imwrite

__all__ = ["THUMBNAIL_MAX_SIDE", "PAGE_FILE", "write_results_page"]

#: Longest side of a thumbnail on the page, pixels.
THUMBNAIL_MAX_SIDE = 128
#: The page's file name in ``results/<name>/``.
PAGE_FILE = "index.md"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _link(path: str) -> str:
    """A relative link target that may hold spaces or parentheses (CommonMark's ``<...>`` form)."""
    return "<" + path.replace(os.sep, "/").replace("<", "%3C").replace(">", "%3E") + ">"


def _image_rows(root: str, dataset: str, per_image: Mapping[str, Mapping[str, float]], metrics: Sequence[str],
                suffix: str | None) -> list[str]:
    """The per-image table of one dataset; thumbnails are written for the images saved under ``visualization/``."""
    lines = ["| image | " + " | ".join(_cell(m) for m in metrics) + " | output |",
             "|---|" + "---:|" * len(metrics) + "---|"]
    for image, scores in per_image.items():
        full = os.path.join("visualization", dataset, f"{image}_{suffix}.png" if suffix else f"{image}.png")
        shown = "-"
        if os.path.isfile(os.path.join(root, full)):
            thumb = os.path.join("thumbnails", dataset, f"{image}.png")
            imwrite(os.path.join(root, thumb), thumbnail(imread(os.path.join(root, full), "rgb"),
                                                         THUMBNAIL_MAX_SIDE))
            shown = f"[![{_cell(image)}]({_link(thumb)})]({_link(full)})"
        cells = " | ".join(f"{scores[m]:.4f}" if m in scores else "-" for m in metrics)
        lines.append(f"| {_cell(image)} | {cells} | {shown} |")
    return lines


def write_results_page(root: str, title: str, header: Sequence[str], tables: Mapping[str, str],
                       results: Mapping[str, Mapping[str, Any]], metrics: Sequence[str],
                       suffix: str | None = None) -> str:
    """Write ``<root>/index.md`` and its thumbnails; returns the page's path.

    Args:
        root: ``results/<name>``, holding ``visualization/<dataset>/``.
        title: The page's heading (the run's name).
        header: Lines under the title (the weights file, the date).
        tables: ``{dataset: the log's table with its protocol line}`` (plain text, shown as it is).
        results: ``{dataset: evaluate's result}`` (``per_image``: ``{image: {metric: value}}``).
        metrics: Metric names, in column order.
        suffix: ``val.suffix`` of the saved images' names.
    """
    lines = [f"# {title}", "", *[f"{line}  " for line in header], ""]
    for dataset, res in results.items():
        scored = [m for m in metrics if any(m in s for s in res.get("per_image", {}).values())]
        lines += [f"## {dataset}", "", "```text", tables.get(dataset, ""), "```", ""]
        lines += _image_rows(root, dataset, res.get("per_image", {}), scored, suffix) + [""]
    path = os.path.join(root, PAGE_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)
    return path
