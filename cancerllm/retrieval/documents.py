"""Corpus documents and search hits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..schema import Example

__all__ = ["Document", "Hit", "as_document", "text_key"]


@dataclass(frozen=True)
class Document:
    """One corpus document: its text, an optional title (MedCPT and Specter2 use it) and an optional id."""

    text: str
    title: str = ""
    id: str | None = None


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        index: position of the document in the indexed corpus.
        score: inner product of the query and document vectors (cosine when the backend normalises).
        rank: 0 for the best hit of a query, then 1, 2, ...
        id: the document id, when the corpus has ids.
        item: the corpus item as given to :meth:`Retriever.build_index` (e.g. an :class:`Example`).
    """

    index: int
    score: float
    rank: int
    id: str | None = None
    item: Any = None


def as_document(item: Any, where: str = "corpus item") -> Document:
    """Turn a string, :class:`Document`, :class:`~cancerllm.schema.Example` (its report ``context``),
    ``(title, text)`` pair or mapping with ``text``/``context``/``abstract`` (+ ``title``, ``id``) into a
    :class:`Document`.

    Raises:
        InputError: anything else.
    """
    if isinstance(item, Document):
        return item
    if isinstance(item, str):
        return Document(item)
    if isinstance(item, Example):
        return Document(item.context, id=item.id)
    if isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, str) for x in item):
        return Document(item[1], title=item[0])
    if isinstance(item, Mapping):
        for key in ("text", "context", "abstract"):
            if isinstance(item.get(key), str):
                ident = item.get("id")
                return Document(
                    item[key], title=str(item.get("title") or ""), id=None if ident is None else str(ident)
                )
    raise InputError(
        f"{where}: cannot index a {type(item).__name__}; pass a string, an Example, a (title, text) pair "
        "or a mapping with a 'text' key"
    )


def text_key(text: str) -> str:
    """``text`` with runs of whitespace collapsed: how identical texts are recognised."""
    return " ".join(text.split())
