"""SPECTER2 (Singh et al. 2023): a scientific-document encoder with task adapters."""

from __future__ import annotations

from typing import Any

from .._optional import is_available
from ..errors import MissingDependencyError, ModelLoadError
from ._hf import HFRetriever, is_local
from ._registry import register_retriever
from .base import Kind
from .documents import Document
from .pooling import cls_pool

__all__ = ["Specter2Retriever"]

_ADAPTER_NAME = "specter2"


@register_retriever("specter2")
class Specter2Retriever(HFRetriever):
    """SPECTER2 as its model card uses it: ``allenai/specter2_base`` with the ``allenai/specter2`` proximity
    adapter (loaded with the ``adapters`` package), input ``title + [SEP] + text``, the ``[CLS]`` state as the
    vector.  Queries are encoded like documents (the proximity adapter is symmetric).

    A document without a title (a report) is encoded as its text alone.  Vectors are L2-normalised, so
    scores are cosines: SPECTER's nearest-neighbour evaluation ranks by distance, and on unit vectors the
    L2 ranking and the cosine ranking are the same.

    Args:
        base_model: hub id or local folder of the base encoder.
        adapter: hub id or local folder of the adapter; ``None`` uses the base encoder alone.
        max_length: inputs are truncated to this many tokens (the card's 512).
        **kwargs: :class:`~cancerllm.retrieval._hf.HFRetriever` arguments (``device``, ``batch_size``, ...).

    Raises:
        MissingDependencyError: (on first use) an adapter is requested and ``adapters`` is not installed.
    """

    normalize = True

    def __init__(
        self,
        base_model: str = "allenai/specter2_base",
        *,
        adapter: str | None = "allenai/specter2",
        max_length: int = 512,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_model = str(base_model)
        self.adapter = None if adapter is None else str(adapter)
        self.max_length = int(max_length)

    def config(self) -> dict[str, Any]:
        return {"base_model": self.base_model, "adapter": self.adapter, "max_length": self.max_length}

    def _model_paths(self) -> list[str]:
        return [self.base_model] + ([self.adapter] if self.adapter else [])

    def _load(self) -> tuple[Any, Any]:
        if self.adapter is None:
            return self._encoder(self.base_model)
        key = f"{self.base_model}+{self.adapter}"
        if key not in self._loaded:
            if not is_available("adapters"):
                raise MissingDependencyError(
                    f"the adapters package is required for the SPECTER2 adapter {self.adapter!r} but is not "
                    'installed; run: pip install "cancerllm[specter2]" (or pip install adapters), '
                    "or pass adapter=None to use the base encoder"
                )
            from adapters import AutoAdapterModel

            model, tok = self._encoder(self.base_model, model_class=AutoAdapterModel)
            source = None if is_local(self.adapter) else "hf"
            try:
                model.load_adapter(self.adapter, source=source, load_as=_ADAPTER_NAME, set_active=True)
            except (OSError, ValueError) as exc:
                raise ModelLoadError(f"cannot load the SPECTER2 adapter {self.adapter!r}: {exc}") from exc
            self._loaded[key] = (model.eval(), tok)
        return self._loaded[key]

    def document_text(self, doc: Document) -> str:
        if not doc.title:
            return doc.text
        _, tok = self._load()
        return doc.title + tok.sep_token + doc.text

    def embed(self, texts: list[str], *, kind: Kind) -> Any:
        model, tok = self._load()
        batch = tok(
            texts,
            padding=True,
            truncation=True,
            return_tensors="pt",
            return_token_type_ids=False,
            max_length=self.max_length,
        )
        return cls_pool(self._hidden(model, batch), batch["attention_mask"])
