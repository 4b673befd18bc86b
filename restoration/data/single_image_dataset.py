"""LQ images without ground truth, for inference (BasicSR's ``SingleImageDataset``)."""

from __future__ import annotations

from typing import Any, ClassVar

from restoration.data.base_dataset import COLOR_MODES, BaseDataset
from restoration.data.file_lists import single_paths
from restoration.data.transforms import hwc_to_chw, to_float

__all__ = ["ImageFolderDataset", "SingleImageDataset"]

_NoneType = type(None)


class ImageFolderDataset(BaseDataset):
    """Base of the datasets whose samples are the images of one source, no pairing.

    The source is the option :attr:`root_key` (``dataroot_lq`` by default): a folder, the names of
    ``meta_info_file`` in it, or an ``.lmdb``. Subclasses reading another key set :attr:`root_key`,
    :attr:`client_key` and the matching ``required_keys``/``folder_keys``; those with their own
    layout override :meth:`list_paths`. Sets ``self.root``, ``self.paths`` and the backend.
    """

    root_key: ClassVar[str] = "dataroot_lq"
    client_key: ClassVar[str] = "lq"
    required_keys: ClassVar[tuple[str, ...]] = ("dataroot_lq",)
    folder_keys: ClassVar[tuple[str, ...]] = ("dataroot_lq",)
    file_keys: ClassVar[tuple[str, ...]] = ("meta_info_file",)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.root = str(opt[self.root_key])
        self._make_backend({self.client_key: self.root})
        self.paths = self.list_paths()

    def list_paths(self) -> list[str]:
        """The sample paths (LMDB keys): ``meta_info_file``'s names on disk, else every image of the root."""
        meta = None if self.io_type == "lmdb" else self.opt.get("meta_info_file")
        return single_paths(self.root, self.io_type, meta)

    def __len__(self) -> int:
        return len(self.paths)


class SingleImageDataset(ImageFolderDataset):
    """Every image of ``dataroot_lq`` (a folder, the names of ``meta_info_file``, or an ``.lmdb``).

    Returns from ``__getitem__``: ``{'lq': (C, H, W) float32 in [0, 1], 'lq_path': str}`` (no ``'gt'``).
    """

    option_keys: ClassVar[dict[str, Any]] = {
        "dataroot_lq": str,
        "meta_info_file": (str, _NoneType),
        "color": (str, _NoneType),
    }

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.color = opt.get("color") or "rgb"

    @classmethod
    def check_extra(cls, opt: dict) -> list[str]:
        color = opt.get("color")
        return [f"color {color!r} is not one of {COLOR_MODES}"] if color is not None and color not in COLOR_MODES else []

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        lq = self.read_image(path, "lq", self.read_mode(self.color))
        return {"lq": hwc_to_chw(self.to_color(to_float(lq), self.color)), "lq_path": path}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.opt.get('name')!r}, {len(self)} images, backend={self.io_type})"
