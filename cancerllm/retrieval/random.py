"""The random retriever: the paper's baseline (random examples instead of similar ones)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._registry import register_retriever
from .base import Kind, Retriever
from .documents import Hit

__all__ = ["RandomRetriever"]


@register_retriever("random")
class RandomRetriever(Retriever):
    """Uniformly random examples, reproducible with ``seed``; a query never gets its own text back.

    Each text gets a pseudo-random unit vector drawn from a generator seeded by ``(seed, text)``.  For a
    query, the inner products with independent random corpus vectors are exchangeable, so the top ``k``
    is a uniformly random subset of the corpus, in random order; it depends only on the seed, the query
    and the corpus, not on batching or on the other queries.

    Args:
        seed: changes every ranking.
        dim: vector size (larger makes ties rarer; 64 suffices).
        **kwargs: :class:`Retriever` arguments.
    """

    normalize = True

    def __init__(self, *, seed: int = 0, dim: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = int(seed)
        self.dim = int(dim)

    def config(self) -> dict[str, Any]:
        return {"seed": self.seed, "dim": self.dim}

    def embed(self, texts: list[str], *, kind: Kind) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            digest = hashlib.blake2b(f"{self.seed}\x1f{kind}\x1f{t}".encode(), digest_size=16).digest()
            out[i] = np.random.default_rng(int.from_bytes(digest, "little")).standard_normal(self.dim)
        return out

    def search(
        self, queries: Sequence[str], k: int = 5, *, exclude: Any = None, exclude_identical: bool = True
    ) -> list[list[Hit]]:
        """As :meth:`Retriever.search`, but documents identical to the query are always excluded."""
        return super().search(queries, k, exclude=exclude, exclude_identical=True)
