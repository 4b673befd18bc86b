"""LQ images without ground truth, for inference (BasicSR's ``SingleImageDataset``)."""

from __future__ import annotations

from typing import Any, ClassVar

from restoration.data.base_dataset import COLOR_OPTION, COMMON_OPTIONS, META_INFO_OPTION, BaseDataset
from restoration.data.file_lists import single_paths
from restoration.data.transforms import hwc_to_chw, to_float
from restoration.schema import Key

__all__ = ["ImageFolderDataset", "SingleImageDataset"]


class ImageFolderDataset(BaseDataset):
    """Base of the datasets whose samples are the images of one source, no pairing.

    The source is the option :attr:`root_key` (``dataroot_lq`` by default): a folder, the names of
    ``meta_info_file`` in it, or an ``.lmdb``. Subclasses reading another key set :attr:`root_key`,
    :attr:`client_key` and declare it (required) in :attr:`options` and :attr:`folder_keys`; those with their own
    layout override :meth:`list_paths`. Sets ``self.root``, ``self.paths`` and the backend.
    """

    options: ClassVar[dict[str, Key]] = {
        **COMMON_OPTIONS,
        "dataroot_lq": Key((str,), required=True, doc="the images: a folder (or .lmdb)"),
        "meta_info_file": META_INFO_OPTION,
    }
    root_key: ClassVar[str] = "dataroot_lq"
    client_key: ClassVar[str] = "lq"
    folder_keys: ClassVar[tuple[str, ...]] = ("dataroot_lq",)
    file_keys: ClassVar[tuple[str, ...]] = ("meta_info_file",)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.root = str(self.opt[self.root_key])
        self._make_backend({self.client_key: self.root})
        self.paths = self.list_paths()

    def list_paths(self) -> list[str]:
        """The sample paths (LMDB keys): ``meta_info_file``'s names on disk, else every image of the root."""
        meta = None if self.io_type == "lmdb" else self.opt["meta_info_file"]
        return single_paths(self.root, self.io_type, meta)

    def __len__(self) -> int:
        return len(self.paths)


class SingleImageDataset(ImageFolderDataset):
    """Every image of ``dataroot_lq`` (a folder, the names of ``meta_info_file``, or an ``.lmdb``).

    Returns from ``__getitem__``: ``{'lq': (C, H, W) float32 in [0, 1], 'lq_path': str}`` (no ``'gt'``).
    """

    options: ClassVar[dict[str, Key]] = {**ImageFolderDataset.options, "color": COLOR_OPTION}

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.color = self.opt["color"]

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        lq = self.read_image(path, "lq", self.read_mode(self.color))
        return {"lq": hwc_to_chw(self.to_color(to_float(lq), self.color)), "lq_path": path}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.opt['name']!r}, {len(self)} images, backend={self.io_type})"
