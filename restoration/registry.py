"""Name → component registries, filled by explicit registration.

Every registry maps a ``type:`` name from an option file to a class or function. Entries are either
registered directly (:meth:`Registry.register`) or *lazily* (:meth:`Registry.register_lazy`): a lazy
entry stores the dotted path and imports it only on first use, so a component whose optional
dependency is broken fails on its own and never breaks ``import restoration`` or other components.

A ``type:`` that is itself a path, ``"my_package.my_module:MyTrainer"``, names a component outside this
package (a research project's own trainer, network, dataset or loss) without registering it anywhere. A path
imports code, so :meth:`Registry.get` imports one only when its caller says the name comes from a file the
user named on the command line (``user_named=True``: ``-opt`` of train.py, test.py, infer, export), never
from a file found on disk (the options saved beside downloaded weights), and only a class of the registry's
kind (:attr:`Registry.base`: an ``nn.Module`` subclass for a network, never ``subprocess:getoutput``). A
path accepted once is remembered, so the later look-ups of the same run (the trainer building what the
option check resolved) need not repeat the flag.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable, Iterator

from restoration.errors import RegistryError

__all__ = [
    "Registry",
    "RegistryError",
    "ARCH_REGISTRY",
    "DATASET_REGISTRY",
    "LOSS_REGISTRY",
    "METRIC_REGISTRY",
    "MODEL_REGISTRY",
]


class Registry:
    """A mapping from names to objects, refusing duplicates and suggesting close names on a miss.

    Args:
        name: What the registry holds, used in error messages (e.g. ``"arch"``).
        base: ``"module:Class"`` of the class an import-path ``type`` must subclass (imported when first
            needed); None: this registry takes registered names only.
        base_doc: How messages name ``base`` (``"an nn.Module subclass"``).
    """

    def __init__(self, name: str, base: str | None = None, base_doc: str = "") -> None:
        self.name = name
        self.base = base
        self.base_doc = base_doc or (f"a subclass of {base}" if base else "")
        self._objects: dict[str, Any] = {}
        self._lazy: dict[str, str] = {}
        self._external: dict[str, Any] = {}  # import paths accepted from a user-named file

    def register(self, obj: Any = None, *, name: str | None = None) -> Any:
        """Register ``obj`` under ``name`` (default: ``obj.__name__``). Usable as a decorator."""
        if obj is None:
            return lambda o: self.register(o, name=name)
        key = name or obj.__name__
        self._check_free(key)
        self._objects[key] = obj
        return obj

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``"package.module:attribute"`` under ``name``; imported on first :meth:`get`."""
        if ":" not in target:
            raise ValueError(f"lazy target must look like 'module:attr', got {target!r}")
        self._check_free(name)
        self._lazy[name] = target

    def register_table(self, table: dict[str, str]) -> None:
        """Register every ``name -> "module:attr"`` of ``table`` lazily, skipping names already present."""
        for name, target in table.items():
            if name not in self:
                self.register_lazy(name, target)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (registered directly or lazily), e.g. a component a test or a notebook registered
        for a while; an unknown name raises :class:`RegistryError`."""
        if name not in self:
            raise RegistryError(self.unknown_message(name))
        self._objects.pop(name, None)
        self._lazy.pop(name, None)

    def _check_free(self, key: str) -> None:
        if key in self._objects or key in self._lazy:
            raise RegistryError(f"'{key}' is already registered in the {self.name} registry")

    def get(self, name: str, *, user_named: bool = False, source: str | None = None) -> Any:
        """Return the object registered as ``name``; raise :class:`RegistryError` with suggestions.

        Args:
            name: A registered name, or an import path ``"package.module:Class"``.
            user_named: ``name`` comes from a file the user named on the command line (``-opt``), so an
                import path may be imported; otherwise only a path accepted earlier in this process is.
            source: The file ``name`` was read from, for the messages.

        Raises:
            RegistryError: Unknown name; an import path from a file not named by the user; an import path
                that is not a class of the registry's kind (:attr:`base`).
        """
        if name in self._objects:
            return self._objects[name]
        if name in self._lazy:
            obj = self._import(name, self._lazy[name])
            self._objects[name] = obj
            del self._lazy[name]
            return obj
        if isinstance(name, str) and ":" in name:  # "module:attr", outside the registry
            if name in self._external:
                return self._external[name]
            where = f"{source}: " if source else ""
            if self.base is None:
                raise RegistryError(f"{where}{self.name} type '{name}' is an import path; a {self.name} is named by "
                                    f"its registered name only (register yours: {self.name.upper()}_REGISTRY.register)")
            if not user_named:
                raise RegistryError(
                    f"{where}{self.name} type '{name}' is an import path (code), refused in a file that was not "
                    f"named with -opt (such as the options beside downloaded weights); use a registered "
                    f"{self.name} name, or pass the file with -opt if you trust its code")
            obj = self._import(name, name)
            self._check_kind(name, obj, where)
            self._external[name] = obj
            return obj
        raise RegistryError(self.unknown_message(name))

    def _check_kind(self, name: str, obj: Any, where: str) -> None:
        """Refuse an imported ``obj`` that is not a subclass of :attr:`base` (a function, a module, ...)."""
        assert self.base is not None
        module_name, _, attr = self.base.partition(":")
        base = getattr(importlib.import_module(module_name), attr)
        if isinstance(obj, type) and issubclass(obj, base):
            return
        what = "a class of another kind" if isinstance(obj, type) else f"a {type(obj).__name__}"
        raise RegistryError(f"{where}{self.name} type '{name}' is {what}, not {self.base_doc}; "
                            f"an import path must name {self.base_doc}")

    def _import(self, name: str, target: str) -> Any:
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise RegistryError(
                f"{self.name} '{name}': its module '{module_name}' cannot be imported: {exc}. "
                f"Install the missing dependency, put the module on PYTHONPATH, or pick another {self.name}."
            ) from exc
        if not hasattr(module, attr):
            raise RegistryError(f"{self.name} '{name}': module '{module_name}' has no attribute '{attr}'")
        return getattr(module, attr)

    def unknown_message(self, name: str) -> str:
        """The error text for an unknown ``name``: close matches first, then everything registered."""
        names = self.names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        if not close:  # case-insensitive fallback, e.g. 'swinir' -> 'SwinIR'
            close = [n for n in names if n.lower() == str(name).lower()]
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"no {self.name} named '{name}'.{hint} Registered: {', '.join(names)}"

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted({*self._objects, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._objects or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, {self.names()})"


ARCH_REGISTRY = Registry("arch", "torch.nn:Module", "an nn.Module subclass")
DATASET_REGISTRY = Registry("dataset", "torch.utils.data:Dataset", "a torch Dataset subclass")
LOSS_REGISTRY = Registry("loss", "torch.nn:Module", "an nn.Module subclass")
METRIC_REGISTRY = Registry("metric")  # metrics are functions: an import path could name any function
MODEL_REGISTRY = Registry("model", "restoration.models.base_model:Trainer", "a Trainer subclass")


def build_from_registry(registry: Registry, opt: dict, **extra: Any) -> Any:
    """Instantiate ``registry.get(opt['type'])(**rest_of_opt, **extra)``. ``opt`` is not modified."""
    opt = dict(opt)
    if "type" not in opt:
        raise ValueError(f"{registry.name} options need a 'type' key, got keys {sorted(opt)}")
    cls: Callable[..., Any] = registry.get(opt.pop("type"))
    return cls(**opt, **extra)
