"""Retrieval for retrieval-augmented CancerLLM: find similar training examples and show them in the prompt.

Backends are chosen by name (``get_retriever("medcpt", ...)``); ``None``/``"default"`` is the offline
all-MiniLM-L6-v2.  Importing this package does not import torch, transformers, faiss or
sentence-transformers; a backend imports them when it first encodes.  See ``docs/retrieval.md``::

    from cancerllm.retrieval import get_retriever

    r = get_retriever().build_index(["left breast IDC, G3", "right lung SCC, stage IIB"])
    r.retrieve("breast carcinoma, grade 3", k=1)[0].item    # 'left breast IDC, G3'
"""

from __future__ import annotations

from ._registry import DEFAULT_RETRIEVER, RETRIEVERS, get_retriever, register_retriever
from .base import Retriever
from .contriever import ContrieverRetriever
from .documents import Document, Hit, as_document
from .index import FAISS_MIN_SIZE, VectorIndex
from .medcpt import MedCPTRetriever
from .minilm import MiniLMRetriever, packaged_minilm_dir
from .pooling import cls_pool, mean_pool, weighted_mean_pool
from .random import RandomRetriever
from .sgpt import SGPTRetriever
from .shots import ShotSelector
from .specter2 import Specter2Retriever

__all__ = [
    "ContrieverRetriever",
    "DEFAULT_RETRIEVER",
    "Document",
    "FAISS_MIN_SIZE",
    "Hit",
    "MedCPTRetriever",
    "MiniLMRetriever",
    "RETRIEVERS",
    "RandomRetriever",
    "Retriever",
    "SGPTRetriever",
    "ShotSelector",
    "Specter2Retriever",
    "VectorIndex",
    "as_document",
    "cls_pool",
    "get_retriever",
    "mean_pool",
    "packaged_minilm_dir",
    "register_retriever",
    "weighted_mean_pool",
]
