"""Exact inner-product search over a matrix of vectors: numpy for small corpora, faiss ``IndexFlatIP`` above.

Both paths are exact and return the same neighbours (ties go to the lower position).  ``backend="auto"``
switches to faiss at ``FAISS_MIN_SIZE`` vectors; ``benchmarks/bench_retrieval.py`` measures both on your
machine (on the 2-core development machine numpy was faster for batched queries at every size up to 100k,
and within ~1.5x of faiss for one query at a time, so the threshold is a setting, not a law).  Vectors are
stored in safetensors; a faiss index is rebuilt from them on load (a flat index is a copy of the vectors),
so nothing is pickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._optional import is_available, require
from ..errors import InputError

__all__ = ["FAISS_MIN_SIZE", "VectorIndex"]

#: ``backend="auto"`` uses faiss from this many vectors on (when faiss is installed).  On our 2-core CPU
#: numpy's BLAS search was 4-7x faster than faiss ``IndexFlatIP`` for batched queries at 10k and 100k vectors
#: (``benchmarks/bench_retrieval.py``), so faiss is only chosen for very large corpora.
FAISS_MIN_SIZE = 250_000
_BLOCK = 1 << 24  # scores computed at once by the numpy path (64 MiB of float32)

Backend = Literal["auto", "numpy", "faiss"]


class VectorIndex:
    """Exact maximum-inner-product search.

    Args:
        vectors: ``(n, dim)`` array; copied to float32.
        backend: ``"auto"``, ``"numpy"`` or ``"faiss"`` (needs ``faiss-cpu``, the ``retrieval`` extra).
        faiss_min_size: corpus size from which ``"auto"`` uses faiss.

    Example:
        >>> idx = VectorIndex(np.eye(3, dtype="float32"))
        >>> scores, ids = idx.search(np.array([[0.0, 1.0, 0.2]], dtype="float32"), k=2)
        >>> ids.tolist()
        [[1, 2]]
    """

    def __init__(
        self, vectors: Any, *, backend: Backend = "auto", faiss_min_size: int = FAISS_MIN_SIZE
    ) -> None:
        arr = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise InputError(f"vectors must be a 2-D (n, dim) array, got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise InputError("cannot index an empty corpus; pass at least one vector")
        if backend not in ("auto", "numpy", "faiss"):
            raise InputError(f"unknown index backend {backend!r}; use 'auto', 'numpy' or 'faiss'")
        if backend == "auto":
            backend = "faiss" if arr.shape[0] >= faiss_min_size and is_available("faiss") else "numpy"
        self.vectors = arr
        self.backend: str = backend
        self._faiss: Any = None
        if backend == "faiss":
            faiss = require("faiss", feature="the faiss index backend")
            self._faiss = faiss.IndexFlatIP(arr.shape[1])
            self._faiss.add(arr)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and positions of the ``k`` largest inner products per query, best first.

        Ties are broken by position (lower first).  When ``k`` exceeds the corpus size, only
        ``len(self)`` columns are returned.

        Raises:
            InputError: ``k <= 0`` or queries of the wrong dimension.
        """
        if isinstance(k, bool) or int(k) != k or k <= 0:
            raise InputError(f"k must be a positive integer, got {k!r}")
        q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise InputError(f"queries must be (m, {self.dim}) vectors, got shape {q.shape}")
        k = min(int(k), len(self))
        if self._faiss is not None:
            scores, ids = self._faiss.search(q, k)
            return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)
        return self._numpy_search(q, k)

    def _numpy_search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        rows = max(1, _BLOCK // max(n, 1))
        out_s = np.empty((q.shape[0], k), dtype=np.float32)
        out_i = np.empty((q.shape[0], k), dtype=np.int64)
        for start in range(0, q.shape[0], rows):
            sims = q[start : start + rows] @ self.vectors.T
            if k < n:
                part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            else:
                part = np.broadcast_to(np.arange(n), sims.shape)
            part_s = np.take_along_axis(sims, part, axis=1)
            order = np.lexsort((part, -part_s), axis=1)  # score descending, then position ascending
            out_i[start : start + rows] = np.take_along_axis(part, order, axis=1)
            out_s[start : start + rows] = np.take_along_axis(part_s, order, axis=1)
        return out_s, out_i

    # ----------------------------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the vectors to ``path`` (safetensors)."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        save_file({"embeddings": self.vectors}, str(tmp))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, backend: Backend = "auto") -> VectorIndex:
        """Read vectors written by :meth:`save` and rebuild the index."""
        from safetensors.numpy import load_file

        try:
            vectors = load_file(str(path))["embeddings"]
        except Exception as exc:  # OSError, KeyError, safetensors' own error for a damaged file
            raise InputError(f"cannot read index vectors from {path}: {exc}") from exc
        return cls(vectors, backend=backend)

    def __repr__(self) -> str:
        return f"VectorIndex(n={len(self)}, dim={self.dim}, backend={self.backend!r})"
