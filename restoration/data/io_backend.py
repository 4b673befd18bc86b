"""Where image bytes come from: plain files on disk, or LMDB databases.

LMDB layout (the BasicSR convention)::

    DIV2K_train_HR_sub.lmdb/
        data.mdb
        lock.mdb
        meta_info.txt      # one line per image: "0001_s001.png (480,480,3) 1"

The key of an image is its file name without extension (``0001_s001``), the value its PNG bytes.

An ``lmdb.Environment`` holds OS handles and cannot be pickled into DataLoader workers started with
``spawn`` (nor safely shared across ``fork``). :class:`LmdbBackend` therefore opens its environments
lazily, on the first read *in the process that reads*, and drops them when pickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from restoration.errors import DataError, MissingDataError

__all__ = ["DiskBackend", "LmdbBackend", "make_io_backend", "read_lmdb_meta_info", "IO_BACKENDS"]

IO_BACKENDS = ("disk", "lmdb")


class DiskBackend:
    """Read files from disk. ``get(path)`` returns the file's bytes."""

    def get(self, path: str, client_key: str | None = None) -> bytes:
        """Bytes of the file at ``path`` (``client_key`` is ignored; kept for a uniform interface)."""
        with open(path, "rb") as f:
            return f.read()

    def describe(self, path: str, client_key: str | None = None) -> str:
        """How to name ``path`` in an error message."""
        return str(path)

    def __repr__(self) -> str:
        return "DiskBackend()"


class LmdbBackend:
    """Read values from one or more LMDB databases, one per ``client_key`` (e.g. ``'gt'``, ``'lq'``).

    Args:
        db_paths: ``client_key -> path/to/x.lmdb``.
        readonly, lock, readahead: Passed to :func:`lmdb.open`. The defaults (read-only, no lock,
            no readahead) suit random access from many DataLoader workers.
        **kwargs: Further :func:`lmdb.open` arguments.
    """

    def __init__(self, db_paths: dict[str, str], readonly: bool = True, lock: bool = False,
                 readahead: bool = False, **kwargs: Any) -> None:
        self.db_paths = {k: os.fspath(v) for k, v in db_paths.items()}
        self._open_kwargs = dict(readonly=readonly, lock=lock, readahead=readahead, **kwargs)
        self._envs: dict[str, Any] = {}
        self._pid: int | None = None

    def _env(self, client_key: str) -> Any:
        # A forked worker inherits the parent's dict; LMDB forbids using an environment across fork.
        if self._pid != os.getpid():
            self._envs = {}
            self._pid = os.getpid()
        env = self._envs.get(client_key)
        if env is None:
            if client_key not in self.db_paths:
                raise KeyError(f"no LMDB configured for {client_key!r}; configured: {sorted(self.db_paths)}")
            env = _open_shared(self.db_paths[client_key], self._open_kwargs)
            self._envs[client_key] = env
        return env

    @property
    def is_open(self) -> bool:
        """True once an environment has been opened in this process."""
        return bool(self._envs) and self._pid == os.getpid()

    def missing_keys(self, keys: list[str], client_key: str = "default") -> list[str]:
        """The ``keys`` that the database of ``client_key`` does not hold (one read transaction, no value copied)."""
        env = self._env(client_key)
        with env.begin(write=False, buffers=True) as txn:
            return [key for key in keys if txn.get(key.encode("utf-8")) is None]

    def get(self, key: str, client_key: str = "default") -> bytes:
        """The value stored under ``key`` in the database of ``client_key``.

        Raises:
            KeyError: If the key is not in the database (the message names key and database).
        """
        env = self._env(client_key)
        with env.begin(write=False) as txn:
            value = txn.get(key.encode("utf-8"))
        if value is None:
            raise KeyError(f"key {key!r} not found in LMDB {self.db_paths[client_key]}")
        return value

    def describe(self, key: str, client_key: str = "default") -> str:
        """How to name an entry in an error message: ``path/x.lmdb[key]``."""
        return f"{self.db_paths.get(client_key, '?')}[{key}]"

    def close(self) -> None:
        """Forget this backend's environments (they stay open, shared, for other users in the process)."""
        self._envs = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_envs"] = {}  # never pickle open environments; each process opens its own
        state["_pid"] = None
        return state

    def __repr__(self) -> str:
        return f"LmdbBackend({self.db_paths})"


# One environment per database and process: py-lmdb refuses to open the same database twice in a
# process, which happens when a dataset is copied (deepcopy, unpickling) or two datasets share an LMDB.
_SHARED_ENVS: dict[tuple[int, str], Any] = {}


def _open_shared(path: str, open_kwargs: dict) -> Any:
    import lmdb  # optional dependency

    pid = os.getpid()
    for inherited in [k for k in _SHARED_ENVS if k[0] != pid]:
        # Opened by the parent before a fork: unusable here, and py-lmdb would refuse a second open
        # of the same files. Closing the child's copy is safe: with or without a lock file it only
        # frees this process's mapping and descriptors (fcntl locks and reader slots are per-pid).
        try:
            _SHARED_ENVS.pop(inherited).close()
        except Exception:  # noqa: BLE001 - a failed close of a dead copy must not stop the read
            pass
    key = (pid, os.path.realpath(path))
    env = _SHARED_ENVS.get(key)
    if env is None:
        env = lmdb.open(path, subdir=True, max_readers=2048, **open_kwargs)
        _SHARED_ENVS[key] = env
    return env


def make_io_backend(io_opt: dict | None, db_paths: dict[str, str] | None = None) -> DiskBackend | LmdbBackend:
    """Build the backend named by ``io_opt['type']`` (``'disk'`` when ``io_opt`` is empty).

    Args:
        io_opt: The dataset's ``io_backend`` option, e.g. ``{'type': 'lmdb'}``; other keys are passed
            to the backend.
        db_paths: For LMDB, ``client_key -> path/to/x.lmdb``.
    """
    io_opt = dict(io_opt or {"type": "disk"})
    kind = io_opt.pop("type", "disk")
    if kind == "disk":
        return DiskBackend()
    if kind == "lmdb":
        return LmdbBackend(db_paths or {}, **io_opt)
    raise DataError(f"unknown io_backend type {kind!r}; choose one of {IO_BACKENDS}")


def read_lmdb_meta_info(lmdb_path: str | os.PathLike) -> list[str]:
    """Image file names listed in ``lmdb_path/meta_info.txt`` (first token of each non-empty line).

    Raises:
        FileNotFoundError: If the LMDB folder has no ``meta_info.txt``.
    """
    meta = Path(lmdb_path) / "meta_info.txt"
    if not meta.is_file():
        raise MissingDataError(
            f"LMDB {lmdb_path} has no meta_info.txt; create the database with scripts/data/create_lmdb.py "
            "(it writes one line per image: 'name.png (h,w,c) compress_level')")
    with open(meta, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]
