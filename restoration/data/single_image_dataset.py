"""LQ images without ground truth, for inference (BasicSR's ``SingleImageDataset``)."""

from __future__ import annotations

from typing import Any, ClassVar

from restoration.data.base_dataset import COLOR_MODES, BaseDataset
from restoration.data.file_lists import single_paths
from restoration.data.paired_image_dataset import hwc_to_chw, to_float

__all__ = ["SingleImageDataset"]

_NoneType = type(None)


class SingleImageDataset(BaseDataset):
    """Every image of ``dataroot_lq`` (a folder, the names of ``meta_info_file``, or an ``.lmdb``).

    Returns from ``__getitem__``: ``{'lq': (C, H, W) float32 in [0, 1], 'lq_path': str}`` (no ``'gt'``).
    """

    option_keys: ClassVar[dict[str, Any]] = {
        "dataroot_lq": str,
        "meta_info_file": (str, _NoneType),
        "color": (str, _NoneType),
    }
    required_keys: ClassVar[tuple[str, ...]] = ("dataroot_lq",)
    folder_keys: ClassVar[tuple[str, ...]] = ("dataroot_lq",)
    file_keys: ClassVar[tuple[str, ...]] = ("meta_info_file",)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.lq_root = str(opt["dataroot_lq"])
        self.color = opt.get("color") or "rgb"
        self._make_backend({"lq": self.lq_root})
        meta = None if self.io_type == "lmdb" else opt.get("meta_info_file")
        self.paths = single_paths(self.lq_root, self.io_type, meta)

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        color = opt.get("color")
        return [f"color {color!r} is not one of {COLOR_MODES}"] if color is not None and color not in COLOR_MODES else []

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        lq = self.read_image(path, "lq", self.read_mode(self.color))
        return {"lq": hwc_to_chw(self.to_color(to_float(lq), self.color)), "lq_path": path}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.opt.get('name')!r}, {len(self)} images, backend={self.io_type})"
