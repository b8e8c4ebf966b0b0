"""Evaluation metrics of CancerLLM: Exact Match, BLEU-2, ROUGE-L (P/R/F1), the paper's average F1,
entity-set P/R/F1, bootstrap intervals, results tables, and a reproduction of the official evaluation code.

Example:
    >>> from cancerllm.metrics import evaluate, entity_set_prf
    >>> entity_set_prf(predictions=["{pr, er}"], references=["{pr, her2, er}"]).precision
    1.0

Importing this package does not import torch, transformers, pandas, sacrebleu or rouge_score.
See ``docs/metrics.md`` for the definitions.
"""

from __future__ import annotations

from ._core import normalize_item
from .bleu import bleu2, bleu2_item
from .bootstrap import bootstrap_ci
from .calibration import accuracy_at_coverage, coverage_curve, expected_calibration_error, reliability_table
from .evaluate import evaluate, instance_scores
from .exact_match import exact_match, exact_match_item
from .official import official_evaluate, official_normalize
from .results import METRIC_LABELS, TABLE_COLUMNS, EvaluationResult, Scores, SetScores
from .rouge import rouge_l, rouge_l_item
from .sets import entity_set_prf
from .table import results_table, results_table_markdown

__all__ = [
    "EvaluationResult",
    "METRIC_LABELS",
    "Scores",
    "SetScores",
    "TABLE_COLUMNS",
    "accuracy_at_coverage",
    "bleu2",
    "bleu2_item",
    "bootstrap_ci",
    "coverage_curve",
    "entity_set_prf",
    "evaluate",
    "exact_match",
    "exact_match_item",
    "expected_calibration_error",
    "instance_scores",
    "normalize_item",
    "official_evaluate",
    "official_normalize",
    "reliability_table",
    "results_table",
    "results_table_markdown",
    "rouge_l",
    "rouge_l_item",
]
