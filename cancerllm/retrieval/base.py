"""The :class:`Retriever` contract: encode queries and a corpus, build/save/load an index, search.

A retriever turns texts into vectors and finds, for each query, the most similar corpus documents by
exact inner-product search.  Subclasses override one method, :meth:`Retriever.embed`; everything else
(batching, progress bar, normalisation, on-disk embedding cache, index, exclusion, save/load) is shared.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

from ..errors import CancerLLMError, ConfigError, InputError
from ._persist import EMBEDDINGS_NAME, FORMAT_VERSION, dump_item, load_item, read_meta, versions, write_meta
from .documents import Document, Hit, as_document, text_key
from .index import VectorIndex

__all__ = ["Kind", "Retriever"]

Kind = Literal["query", "corpus"]
R = TypeVar("R", bound="Retriever")


class Retriever:
    """Base class of retrievers: encode queries, encode a corpus, build/save/load an index, search.

    Subclasses implement :meth:`embed` (texts -> ``(n, dim)`` array); they may also override
    :meth:`embed_documents` (titled documents, e.g. MedCPT's ``[title, abstract]`` pairs) and
    :meth:`config` (the constructor arguments, saved with an index and part of the cache key).

    Args:
        batch_size: texts per :meth:`embed` call.
        progress: show a progress bar while encoding a corpus.
        cache_dir: when set, corpus embeddings are stored there (safetensors) and reused when the same
            retriever encodes the same corpus again.
        index_backend: ``"auto"`` (numpy below ``faiss_min_size`` vectors, faiss ``IndexFlatIP`` above),
            ``"numpy"`` or ``"faiss"``; all three give the same exact search.

    Example:
        >>> class CharCounts(Retriever):
        ...     normalize = True
        ...     def embed(self, texts, *, kind):
        ...         return np.array([[t.count(c) for c in "aeiou"] for t in texts], dtype="float32")
        >>> r = CharCounts().build_index(["aaa", "eee", "ooo"])
        >>> r.retrieve("aa", k=1)[0].item
        'aaa'
    """

    #: registry name; set by :func:`register_retriever`
    name: ClassVar[str] = "custom"
    #: L2-normalise vectors before indexing and searching (inner product == cosine)
    normalize: ClassVar[bool] = False

    def __init__(
        self,
        *,
        batch_size: int = 32,
        progress: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        index_backend: Literal["auto", "numpy", "faiss"] = "auto",
    ) -> None:
        if int(batch_size) <= 0:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.progress = progress
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.index_backend = index_backend
        self._index: VectorIndex | None = None
        self._items: list[Any] = []
        self._docs: list[Document] = []
        self._by_text: dict[str, list[int]] = {}
        self._by_id: dict[str, int] = {}

    # ------------------------------------------------------------------------------- to override
    def embed(self, texts: list[str], *, kind: Kind) -> Any:
        """Vectors of ``texts``: an ``(len(texts), dim)`` array (numpy or torch).

        Args:
            texts: one batch of texts.
            kind: ``"query"`` for search inputs, ``"corpus"`` for indexed documents (asymmetric models
                such as MedCPT or SGPT-specb encode the two differently).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement embed(texts, *, kind)")

    def embed_documents(self, docs: list[Document]) -> Any:
        """Vectors of corpus documents; by default ``embed`` of :meth:`document_text` with ``kind="corpus"``."""
        return self.embed([self.document_text(d) for d in docs], kind="corpus")

    def document_text(self, doc: Document) -> str:
        """The text a titled document is encoded as (``"title. text"``; the text alone without a title)."""
        return f"{doc.title}. {doc.text}" if doc.title else doc.text

    def config(self) -> dict[str, Any]:
        """JSON-able constructor arguments that determine the vectors (saved with an index)."""
        return {}

    # ------------------------------------------------------------------------------- encoding
    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """``(n, dim)`` float32 vectors of the queries (normalised when the backend is cosine)."""
        texts = self._check_queries(queries)
        return self._encode(texts, lambda batch: self.embed(list(batch), kind="query"), desc="queries")

    def encode_corpus(self, corpus: Sequence[Any]) -> np.ndarray:
        """``(n, dim)`` float32 vectors of corpus items (see :func:`as_document` for accepted items)."""
        docs = [as_document(x, f"corpus item {i}") for i, x in enumerate(self._check_corpus(corpus))]
        return self._encode_docs(docs)

    def _encode_docs(self, docs: list[Document]) -> np.ndarray:
        path = self._cache_path(docs)
        if path is not None and path.is_file():
            from safetensors.numpy import load_file

            cached = load_file(str(path))["embeddings"]
            if cached.shape[0] == len(docs):
                return cached
        out = self._encode(docs, lambda batch: self.embed_documents(list(batch)), desc="corpus")
        if path is not None:
            from safetensors.numpy import save_file

            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            save_file({"embeddings": out}, str(tmp))
            os.replace(tmp, path)
        return out

    def _encode(self, items: Sequence[Any], fn: Callable[[Sequence[Any]], Any], *, desc: str) -> np.ndarray:
        from tqdm.auto import tqdm

        # longest first, so that each batch pads little; the original order is restored below
        order = sorted(range(len(items)), key=lambda i: -len(getattr(items[i], "text", items[i])))
        chunks: list[np.ndarray] = []
        with tqdm(
            total=len(items),
            desc=f"encoding {desc} ({self.name})",
            unit="text",
            disable=not self.progress or desc == "queries",
        ) as bar:
            for start in range(0, len(items), self.batch_size):
                idx = order[start : start + self.batch_size]
                chunks.append(self._as_matrix(fn([items[i] for i in idx]), len(idx)))
                bar.update(len(idx))
        dims = {c.shape[1] for c in chunks}
        if len(dims) > 1:
            raise CancerLLMError(f"{type(self).__name__} returned vectors of different sizes {sorted(dims)}")
        out = np.empty((len(items), chunks[0].shape[1]), dtype=np.float32)
        out[np.asarray(order)] = np.concatenate(chunks)
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _as_matrix(self, vectors: Any, n: int) -> np.ndarray:
        if hasattr(vectors, "detach"):  # torch tensor
            vectors = vectors.detach().float().cpu().numpy()
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] == 0:
            raise CancerLLMError(
                f"{type(self).__name__}.embed returned shape {arr.shape} for {n} texts; it must return an (n, dim) array"
            )
        return arr

    def _cache_path(self, docs: list[Document]) -> Path | None:
        if self.cache_dir is None:
            return None
        h = hashlib.sha256()
        head = {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "name": self.name,
            "config": self.config(),
            "signature": self._signature(),
            "normalize": self.normalize,
        }
        h.update(json.dumps(head, sort_keys=True, default=str).encode())
        for d in docs:
            h.update(b"\x1e" + d.title.encode() + b"\x1f" + d.text.encode())
        return self.cache_dir / f"{self.name}-{h.hexdigest()[:40]}.safetensors"

    def _signature(self) -> Any:
        """Extra cache-key material (HF backends: size and mtime of local weight files)."""
        return None

    # ------------------------------------------------------------------------------- index
    @property
    def has_index(self) -> bool:
        return self._index is not None

    @property
    def corpus(self) -> list[Any]:
        """The indexed items, in index order."""
        return list(self._items)

    @property
    def documents(self) -> list[Document]:
        return list(self._docs)

    def build_index(self: R, corpus: Sequence[Any], *, ids: Sequence[str] | None = None) -> R:
        """Encode ``corpus`` and index it (replacing any previous index); returns ``self``.

        Args:
            corpus: strings, :class:`~cancerllm.schema.Example` objects, ``(title, text)`` pairs, mappings
                or :class:`Document` objects; :attr:`Hit.item` gives them back.
            ids: optional ids, one per item (default: the items' own ids, if any).

        Raises:
            InputError: an empty corpus, an unusable item, or ``ids`` of the wrong length.
        """
        items = self._check_corpus(corpus)
        docs = [as_document(x, f"corpus item {i}") for i, x in enumerate(items)]
        if ids is not None:
            if isinstance(ids, str) or len(ids) != len(docs):
                raise InputError(f"ids must be a list with one id per corpus item ({len(docs)})")
            docs = [Document(d.text, d.title, str(i)) for d, i in zip(docs, ids, strict=True)]
        vectors = self._encode_docs(docs)
        self._set_index(items, docs, VectorIndex(vectors, backend=self.index_backend))
        return self

    def _set_index(self, items: list[Any], docs: list[Document], index: VectorIndex) -> None:
        self._items, self._docs, self._index = items, docs, index
        self._by_text = {}
        for i, d in enumerate(docs):
            self._by_text.setdefault(text_key(d.text), []).append(i)
        self._by_id = {d.id: i for i, d in enumerate(docs) if d.id is not None}

    def save_index(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index (vectors in safetensors, documents and settings in JSON) to ``directory``."""
        index = self._require_index()
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        index.save(out / EMBEDDINGS_NAME)
        meta = {
            "format_version": FORMAT_VERSION,
            "retriever": self.name,
            "config": self.config(),
            "normalize": self.normalize,
            "count": len(index),
            "dim": index.dim,
            "documents": [{"text": d.text, "title": d.title, "id": d.id} for d in self._docs],
            "items": [dump_item(x) for x in self._items],
            "versions": versions(),
        }
        write_meta(out, meta)
        return out

    def load_index(self: R, directory: str | os.PathLike[str]) -> R:
        """Load an index written by :meth:`save_index` (by a retriever of the same backend); returns ``self``.

        Raises:
            InputError: the folder holds no index.
            ConfigError: the index was built by another backend.
        """
        meta = read_meta(Path(directory))
        if meta.get("retriever") != self.name:
            raise ConfigError(
                f"the index in {directory} was built by the {meta.get('retriever')!r} retriever, not {self.name!r}; "
                f"load it with get_retriever({meta.get('retriever')!r}, ...)"
            )
        if meta.get("config") != json.loads(json.dumps(self.config())):
            warnings.warn(
                f"the index in {directory} was built with settings {meta.get('config')}, this retriever has "
                f"{self.config()}; queries may not match the indexed vectors",
                UserWarning,
                stacklevel=2,
            )
        index = VectorIndex.load(Path(directory) / EMBEDDINGS_NAME, backend=self.index_backend)
        docs = [Document(**d) for d in meta["documents"]]
        if len(docs) != len(index):
            raise InputError(
                f"{directory}: {len(docs)} documents but {len(index)} vectors; the index is damaged"
            )
        items = [load_item(b, d) for b, d in zip(meta.get("items") or [{}] * len(docs), docs, strict=False)]
        self._set_index(items, docs, index)
        return self

    @classmethod
    def from_index(cls, directory: str | os.PathLike[str], **kwargs: Any) -> Retriever:
        """A retriever rebuilt from a saved index's backend name and settings (``kwargs`` override them)."""
        meta = read_meta(Path(directory))
        from ._registry import RETRIEVERS

        klass = RETRIEVERS.get(meta["retriever"]) if cls is Retriever else cls
        return klass(**{**meta.get("config", {}), **kwargs}).load_index(directory)

    def _require_index(self) -> VectorIndex:
        if self._index is None:
            raise InputError(
                f"the {self.name!r} retriever has no index; call build_index(corpus) or load_index(path) before searching"
            )
        return self._index

    # ------------------------------------------------------------------------------- search
    def search(
        self,
        queries: Sequence[str],
        k: int = 5,
        *,
        exclude: Sequence[Iterable[int | str] | int | str | None] | None = None,
        exclude_identical: bool = False,
    ) -> list[list[Hit]]:
        """The ``k`` best corpus documents for each query, best first (fewer if the corpus is smaller).

        Args:
            queries: the query texts.
            k: hits per query.
            exclude: one entry per query: corpus positions (int) or ids (str) that must not be returned.
            exclude_identical: also drop documents whose text equals the query (whitespace-insensitive),
                so that an input is never its own example.

        Raises:
            InputError: no index, ``k`` not a positive integer, or ``exclude`` of the wrong length.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise InputError(f"k must be a positive integer, got {k!r}")
        index = self._require_index()
        texts = self._check_queries(queries)
        banned = self._exclusions(texts, exclude, exclude_identical)
        vectors = self.encode_queries(texts)
        return self._hits(index, vectors, int(k), banned)

    def retrieve(self, query: str, k: int = 5, **kwargs: Any) -> list[Hit]:
        """:meth:`search` for one query."""
        if not isinstance(query, str):
            raise InputError(f"query must be a string, got {type(query).__name__}")
        return self.search(
            [query],
            k,
            **{**kwargs, "exclude": None if kwargs.get("exclude") is None else [kwargs["exclude"]]},
        )[0]

    def _exclusions(self, texts: list[str], exclude: Any, identical: bool) -> list[set[int]]:
        banned: list[set[int]] = [set() for _ in texts]
        if exclude is not None:
            if isinstance(exclude, (str, bytes)) or len(exclude) != len(texts):
                raise InputError(
                    f"exclude must have one entry per query ({len(texts)}), e.g. [[3], None, [0, 7]]"
                )
            for row, ex in zip(banned, exclude, strict=True):
                if ex is None:
                    continue
                for e in [ex] if isinstance(ex, (int, str, np.integer)) else ex:
                    pos = self._by_id.get(e) if isinstance(e, str) else int(e)
                    if pos is not None:
                        row.add(pos)
        if identical:
            for row, t in zip(banned, texts, strict=True):
                row.update(self._by_text.get(text_key(t), ()))
        return banned

    def _hits(
        self, index: VectorIndex, vectors: np.ndarray, k: int, banned: list[set[int]]
    ) -> list[list[Hit]]:
        want = min(len(index), k + max((len(b) for b in banned), default=0))
        scores, positions = index.search(vectors, want)
        out: list[list[Hit]] = []
        for srow, prow, ban in zip(scores, positions, banned, strict=True):
            hits: list[Hit] = []
            for s, p in zip(srow, prow, strict=True):
                p = int(p)
                if p < 0 or p in ban:
                    continue
                hits.append(Hit(p, float(s), len(hits), self._docs[p].id, self._items[p]))
                if len(hits) == k:
                    break
            out.append(hits)
        return out

    # ------------------------------------------------------------------------------- checks
    @staticmethod
    def _check_queries(queries: Any) -> list[str]:
        if isinstance(queries, str):
            raise InputError("search() takes a list of queries; for one query use retrieve(query, k)")
        texts = list(queries)
        for i, q in enumerate(texts):
            if not isinstance(q, str):
                raise InputError(f"query {i}: expected a string, got {type(q).__name__}")
        if not texts:
            raise InputError("no queries given; pass at least one query text")
        return texts

    @staticmethod
    def _check_corpus(corpus: Any) -> list[Any]:
        if isinstance(corpus, str):
            raise InputError("the corpus must be a list of documents, not a single string")
        items = list(corpus)
        if not items:
            raise InputError("the corpus is empty; pass at least one document (e.g. the training examples)")
        return items

    def __repr__(self) -> str:
        size = len(self._index) if self._index is not None else 0
        return f"{type(self).__name__}(name={self.name!r}, indexed={size})"
