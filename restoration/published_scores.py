"""How a benchmark's scores compare with the ones the authors published for a released checkpoint.

The published numbers come from the manifest (:mod:`restoration.zoo`); a score is compared only when the metric
follows the papers' protocol (Y channel, ``scale`` border pixels cropped).
"""

from __future__ import annotations

from typing import Any, Mapping

from restoration import zoo

__all__ = ["PUBLISHED_TOLERANCE", "published_scores", "differences_from_published"]

#: Differences from a paper's score worth a warning (the papers print 2 and 4 decimals).
PUBLISHED_TOLERANCE = {"psnr": 0.05, "ssim": 0.001}


def published_scores(weights: str | None, dataset: str, metrics: Mapping[str, Mapping[str, Any]],
                     scale: int) -> dict[str, float]:
    """``{metric name: published score}`` when ``weights`` is a released checkpoint of the manifest and the
    metric (``{name: {type, test_y_channel, crop_border, ...}}``) follows the papers' protocol: Y channel,
    ``scale`` border pixels cropped. Empty otherwise."""
    if not weights:
        return {}
    out = {}
    for name, m in metrics.items():
        kind = "psnr" if "psnr" in str(m.get("type")) else "ssim" if "ssim" in str(m.get("type")) else None
        if kind is None or not m.get("test_y_channel") or int(m.get("crop_border", 0)) != scale:
            continue
        value = zoo.published_score(weights, dataset, kind)
        if value is not None:
            out[name] = float(value)
    return out


def differences_from_published(ours: Mapping[str, Any], published: Mapping[str, float]) -> list[str]:
    """One line per metric whose score in ``ours`` differs from the ``published`` one by more than the papers'
    precision (:data:`PUBLISHED_TOLERANCE`); empty when all agree."""
    lines = []
    for name, paper in published.items():
        kind = "psnr" if "psnr" in name.lower() else "ssim"
        if name in ours and abs(ours[name] - paper) > PUBLISHED_TOLERANCE[kind]:
            lines.append(f"{name} {ours[name]:.4f} differs from the published {paper:.4f} by "
                         f"{ours[name] - paper:+.4f} (more than {PUBLISHED_TOLERANCE[kind]})")
    return lines
