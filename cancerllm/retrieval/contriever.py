"""Contriever (Izacard et al. 2022): one BERT encoder for queries and documents, unsupervised contrastive."""

from __future__ import annotations

from typing import Any

from ._hf import HFRetriever
from ._registry import register_retriever
from .base import Kind
from .pooling import mean_pool

__all__ = ["ContrieverRetriever"]


@register_retriever("contriever")
class ContrieverRetriever(HFRetriever):
    """Contriever as its model card uses it: one shared encoder (``facebook/contriever`` or
    ``facebook/contriever-msmarco``), the mean of the last-layer token states over the attention mask,
    and the raw dot product as the score (no normalisation).

    Args:
        model: hub id or local folder.
        max_length: inputs are truncated to this many tokens (the model's 512).
        **kwargs: :class:`~cancerllm.retrieval._hf.HFRetriever` arguments (``device``, ``batch_size``, ...).
    """

    normalize = False

    def __init__(self, model: str = "facebook/contriever", *, max_length: int = 512, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = str(model)
        self.max_length = int(max_length)

    def config(self) -> dict[str, Any]:
        return {"model": self.model, "max_length": self.max_length}

    def embed(self, texts: list[str], *, kind: Kind) -> Any:
        model, tok = self._encoder(self.model)
        batch = tok(texts, padding=True, truncation=True, return_tensors="pt", max_length=self.max_length)
        return mean_pool(self._hidden(model, batch), batch["attention_mask"])
