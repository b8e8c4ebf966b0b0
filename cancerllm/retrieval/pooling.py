"""Pooling of token states into one vector, as each retriever's model card prescribes.

A wrong pooling gives vectors of the right shape that retrieve badly without any error, so each function
here is checked against a hand computation in ``tests/retrieval/test_pooling.py``.  All functions take
``hidden`` of shape ``(batch, seq, dim)`` and ``mask`` of shape ``(batch, seq)`` (1 = token, 0 = padding)
and work with left or right padding.  torch is not imported at module import time.
"""

from __future__ import annotations

from typing import Any

__all__ = ["POOLINGS", "cls_pool", "mean_pool", "pool", "weighted_mean_pool"]


def cls_pool(hidden: Any, mask: Any = None) -> Any:
    """The state of the first token (``[CLS]``): MedCPT and Specter2.  Assumes right padding, as BERT
    tokenizers pad."""
    return hidden[:, 0]


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Mean of the unmasked token states: Contriever (``facebook/contriever``) and all-MiniLM-L6-v2."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


def weighted_mean_pool(hidden: Any, mask: Any) -> Any:
    """SGPT's position-weighted mean: the i-th unmasked token (1-based) gets weight ``i``, so later tokens,
    which have attended to more of the text in a causal model, count more.  Padding gets weight 0."""
    m = mask.to(hidden.dtype)
    weights = (m.cumsum(dim=1) * m).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


#: pooling name -> function
POOLINGS = {"cls": cls_pool, "mean": mean_pool, "weightedmean": weighted_mean_pool}


def pool(name: str, hidden: Any, mask: Any) -> Any:
    """Apply the pooling called ``name`` (``"cls"``, ``"mean"`` or ``"weightedmean"``)."""
    from ..errors import UnknownBackendError

    try:
        fn = POOLINGS[name]
    except KeyError:
        raise UnknownBackendError("pooling", name, list(POOLINGS)) from None
    return fn(hidden, mask)
