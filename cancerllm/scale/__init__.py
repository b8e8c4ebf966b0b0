"""Scale-out: the picklable batch predictors (:class:`BatchExtractor`, :class:`BatchDiagnoser`) that Ray Data
and Apache Spark map over a warehouse of reports, one model per worker process.

``cancerllm.scale.ray`` and ``cancerllm.scale.spark`` plug them into those engines; importing this package
imports neither (nor torch).
"""

from __future__ import annotations

from .predictor import BatchDiagnoser, BatchExtractor

__all__ = ["BatchDiagnoser", "BatchExtractor"]
