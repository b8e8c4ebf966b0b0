"""SGPT (Muennighoff 2022): GPT decoders as sentence encoders, with position-weighted mean pooling."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ._hf import HFRetriever
from ._registry import register_retriever
from .base import Kind
from .pooling import weighted_mean_pool

__all__ = ["SGPTRetriever"]


@register_retriever("sgpt")
class SGPTRetriever(HFRetriever):
    """SGPT bi-encoders (``Muennighoff/SGPT-*-weightedmean-*``) as the SGPT README uses them.

    * Pooling: position-weighted mean of the last hidden states, the i-th unmasked token weighted ``i``.
    * Asymmetric "specb" models (e.g. ``SGPT-125M-weightedmean-msmarco-specb-bitfit``): each tokenised query
      is wrapped in the ``[`` and ``]`` tokens and each document in ``{`` and ``}``, before padding, and
      the brackets are attended to.  Symmetric models (``...-nli-...``) use no brackets.
    * Score: cosine similarity (vectors are L2-normalised).

    Args:
        model: hub id or local folder.
        specb: wrap in special brackets; ``"auto"``: when ``"specb"`` is in the model name.
        max_length: inputs are truncated to this many tokens (brackets included); default: the tokenizer's
            limit, capped at 2048.
        **kwargs: :class:`~cancerllm.retrieval._hf.HFRetriever` arguments (``device``, ``batch_size``, ...).
    """

    normalize = True

    def __init__(
        self,
        model: str = "Muennighoff/SGPT-125M-weightedmean-msmarco-specb-bitfit",
        *,
        specb: bool | str = "auto",
        max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = str(model)
        if specb == "auto":
            specb = "specb" in self.model.lower()
        if not isinstance(specb, bool):
            raise ConfigError(f"specb must be True, False or 'auto', got {specb!r}")
        self.specb = specb
        self.max_length = None if max_length is None else int(max_length)

    def config(self) -> dict[str, Any]:
        return {"model": self.model, "specb": self.specb, "max_length": self.max_length}

    def _bracket_ids(self, tok: Any, kind: Kind) -> tuple[int, int]:
        left, right = ("[", "]") if kind == "query" else ("{", "}")
        return (tok.encode(left, add_special_tokens=False)[0], tok.encode(right, add_special_tokens=False)[0])

    def _limit(self, tok: Any, model: Any) -> int:
        if self.max_length is not None:
            return self.max_length
        limit = int(min(getattr(tok, "model_max_length", 2048) or 2048, 2048))
        return min(limit, int(getattr(model.config, "max_position_embeddings", limit) or limit))

    def embed(self, texts: list[str], *, kind: Kind) -> Any:
        model, tok = self._encoder(self.model)
        if tok.pad_token is None:  # GPT tokenizers have none; padding is masked out anyway
            tok.pad_token = tok.eos_token
        tok.padding_side = "right"  # positions of a right-padded row equal those of the unpadded text
        limit = self._limit(tok, model)
        extra = 2 if self.specb else 0
        batch = tok(texts, padding=False, truncation=True, max_length=limit - extra)
        if self.specb:
            bos, eos = self._bracket_ids(tok, kind)
            batch["input_ids"] = [[bos, *ids, eos] for ids in batch["input_ids"]]
            batch["attention_mask"] = [[1, *m, 1] for m in batch["attention_mask"]]
        padded = tok.pad(
            {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
            padding=True,
            return_tensors="pt",
        )
        return weighted_mean_pool(self._hidden(model, padded), padded["attention_mask"])
