"""A tiny super-resolution dataset built from the photographs bundled with scikit-image.

Nothing is downloaded: only images that ship inside the ``skimage/data`` folder of the installed
package are used (scikit-image fetches others on demand; those are never touched). The layout is the
one the example option files expect::

    datasets/demo/train/HR/astronaut.png          datasets/demo/val/HR/chelsea.png
    datasets/demo/train/LR_bicubic/X2/astronautx2.png   ...

HR images are cropped (bottom/right) to a multiple of :data:`HR_MULTIPLE` so one HR folder serves
every scale in 2, 3, 4, 6, 8, 12, 24; LR images are ``imresize(HR, 1/scale)`` with the MATLAB-compatible
bicubic, as the SR benchmark sets were made. Use ``filename_tmpl: '{}x2'`` with
:class:`~restoration.data.paired_image_dataset.PairedImageDataset`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import skimage

from restoration.data.transforms import mod_crop
from restoration.utils.image_io import imread, imwrite
from restoration.utils.matlab_imresize import imresize

__all__ = ["prepare_demo_dataset", "DEMO_TRAIN_IMAGES", "DEMO_VAL_IMAGES", "HR_MULTIPLE", "skimage_data_dir"]

#: Natural RGB photographs bundled with scikit-image (checked to be in the wheel, no download).
DEMO_TRAIN_IMAGES = ("astronaut.png", "rocket.jpg", "ihc.png", "motorcycle_left.png", "hubble_deep_field.jpg")
DEMO_VAL_IMAGES = ("chelsea.png", "coffee.png")
HR_MULTIPLE = 24
_MARKER = ".complete_x{scale}.json"


def skimage_data_dir() -> Path:
    """The ``data`` folder inside the installed scikit-image package."""
    return Path(skimage.__file__).resolve().parent / "data"


def _is_complete(root: Path, scale: int) -> bool:
    marker = root / _MARKER.format(scale=scale)
    if not marker.is_file():
        return False
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError):
        return False
    return all((root / f).is_file() for f in files)


def prepare_demo_dataset(root: str | os.PathLike = "datasets/demo", scale: int = 2) -> Path:
    """Build the demo SR dataset under ``root`` (idempotent) and return ``Path(root)``.

    A completed build leaves ``root/.complete_x{scale}.json``; when it is present and every file it
    lists exists, nothing is done. Otherwise every file is (re)written — each atomically, via a
    temporary name — and the marker is written last, so an interrupted build is simply redone.

    Args:
        root: Output folder.
        scale: Downscaling factor; must divide :data:`HR_MULTIPLE` (2, 3, 4, 6, 8, 12, 24).

    Raises:
        ValueError: For an unsupported ``scale``.
        FileNotFoundError: If the installed scikit-image lacks the bundled photographs.
    """
    if not isinstance(scale, int) or scale < 1 or HR_MULTIPLE % scale:
        raise ValueError(f"demo dataset scale must divide {HR_MULTIPLE} (2, 3, 4, 6, 8, 12, 24), got {scale!r}")
    root = Path(root)
    if _is_complete(root, scale):
        return root
    src = skimage_data_dir()
    written: list[str] = []
    for split, names in (("train", DEMO_TRAIN_IMAGES), ("val", DEMO_VAL_IMAGES)):
        missing = [n for n in names if not (src / n).is_file()]
        if missing:
            raise FileNotFoundError(f"scikit-image at {src} does not ship {missing}; reinstall scikit-image "
                                    "(the demo dataset uses only images bundled in its wheel)")
        for name in names:
            stem = Path(name).stem
            hr = mod_crop(imread(src / name, mode="rgb"), HR_MULTIPLE)
            lr = imresize(hr, 1.0 / scale)  # uint8 in, uint8 out, rounded like MATLAB
            hr_rel = f"{split}/HR/{stem}.png"
            lr_rel = f"{split}/LR_bicubic/X{scale}/{stem}x{scale}.png"
            imwrite(root / hr_rel, hr)
            imwrite(root / lr_rel, lr)
            written += [hr_rel, lr_rel]
    marker = root / _MARKER.format(scale=scale)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"scale": scale, "files": written}, indent=1), encoding="utf-8")
    os.replace(tmp, marker)
    return root
