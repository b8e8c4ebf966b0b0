"""MedCPT (Jin et al. 2023): separate query and article encoders trained on PubMed search logs."""

from __future__ import annotations

from typing import Any

from ._hf import HFRetriever
from ._registry import register_retriever
from .base import Kind
from .documents import Document
from .pooling import cls_pool

__all__ = ["MedCPTRetriever"]


@register_retriever("medcpt")
class MedCPTRetriever(HFRetriever):
    """MedCPT as its model card uses it: ``ncbi/MedCPT-Query-Encoder`` for queries (at most 64 tokens),
    ``ncbi/MedCPT-Article-Encoder`` for corpus documents (at most 512 tokens), the ``[CLS]`` state of the
    last layer as the vector, and the raw inner product as the score (no normalisation).

    A titled document is encoded as the pair ``[title, text]``, as the card encodes
    ``[title, abstract]``; a document without a title (a report) as its text alone.

    Args:
        query_model: hub id or local folder of the query encoder.
        article_model: hub id or local folder of the article encoder.
        query_max_length: queries are truncated to this many tokens (the card's 64).
        article_max_length: documents are truncated to this many tokens (the card's 512).
        **kwargs: :class:`~cancerllm.retrieval._hf.HFRetriever` arguments (``device``, ``batch_size``, ...).
    """

    normalize = False

    def __init__(
        self,
        query_model: str = "ncbi/MedCPT-Query-Encoder",
        article_model: str = "ncbi/MedCPT-Article-Encoder",
        *,
        query_max_length: int = 64,
        article_max_length: int = 512,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query_model = str(query_model)
        self.article_model = str(article_model)
        self.query_max_length = int(query_max_length)
        self.article_max_length = int(article_max_length)

    def config(self) -> dict[str, Any]:
        return {
            "query_model": self.query_model,
            "article_model": self.article_model,
            "query_max_length": self.query_max_length,
            "article_max_length": self.article_max_length,
        }

    def embed(self, texts: list[str], *, kind: Kind) -> Any:
        if kind == "corpus":
            return self.embed_documents([Document(t) for t in texts])
        model, tok = self._encoder(self.query_model)
        batch = tok(
            texts, truncation=True, padding=True, return_tensors="pt", max_length=self.query_max_length
        )
        return cls_pool(self._hidden(model, batch), batch["attention_mask"])

    def embed_documents(self, docs: list[Document]) -> Any:
        import torch

        model, tok = self._encoder(self.article_model)
        kw = dict(truncation=True, padding=True, return_tensors="pt", max_length=self.article_max_length)
        titled = [i for i, d in enumerate(docs) if d.title]
        plain = [i for i, d in enumerate(docs) if not d.title]
        parts: list[tuple[list[int], Any]] = []
        if titled:  # [title, text] pairs, as the model card encodes [title, abstract]
            batch = tok([[docs[i].title, docs[i].text] for i in titled], **kw)
            parts.append((titled, cls_pool(self._hidden(model, batch), batch["attention_mask"])))
        if plain:
            batch = tok([docs[i].text for i in plain], **kw)
            parts.append((plain, cls_pool(self._hidden(model, batch), batch["attention_mask"])))
        order = torch.tensor([i for idx, _ in parts for i in idx])
        return torch.cat([v for _, v in parts])[torch.argsort(order)]
