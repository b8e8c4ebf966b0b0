"""A small generic registry: short lowercase names -> objects (usually classes).

Used for retrievers, engines, metrics and perturbations.  Names are checked at registration and duplicates
refused; an unknown name raises :class:`~cancerllm.errors.UnknownBackendError` listing the known ones.
Third-party plug-ins register through an entry-point group (``cancerllm.<kind>s``), loaded on first lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import ConfigError, UnknownBackendError

T = TypeVar("T")
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")


class Registry(Generic[T]):
    """Name -> object mapping for one kind of backend.

    Example:
        >>> reg: Registry[type] = Registry("widget")
        >>> @reg.register("plain")
        ... class Plain: ...
        >>> reg.get("plain").__name__
        'Plain'
    """

    def __init__(self, kind: str, *, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._entry_points_loaded = entry_point_group is None

    def register(self, name: str, obj: T | None = None, *, overwrite: bool = False) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""

        def _add(o: T) -> T:
            if not isinstance(name, str) or not _NAME.match(name):
                raise ConfigError(
                    f"invalid {self.kind} name {name!r}: use lowercase letters, digits, '-' or '_', "
                    "starting with a letter"
                )
            if name in self._items and not overwrite and self._items[name] is not o:
                raise ConfigError(f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it")
            self._items[name] = o
            return o

        if obj is None:
            return _add
        return _add(obj)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._items:
                self._items[ep.name] = ep.load()

    def get(self, name: str) -> T:
        """Return the object registered as ``name``, or raise listing the known names."""
        if name not in self._items:
            self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownBackendError(self.kind, str(name), list(self._items)) from None

    def names(self) -> list[str]:
        """Sorted registered names (entry-point plug-ins included)."""
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
