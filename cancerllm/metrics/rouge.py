"""ROUGE-L (rouge-score's ``RougeScorer(["rougeL"])`` F-measure) with best-match set scoring."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ._core import Answer, check_item, metric_scores, normalize_item
from .results import Scores

__all__ = ["rouge_l", "rouge_l_item"]


@lru_cache(maxsize=1)
def _scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def _rouge_l(prediction: str, reference: str) -> float:
    return float(_scorer().score(reference, prediction)["rougeL"].fmeasure)


def rouge_l_item(*, prediction: str, reference: str) -> float:
    """ROUGE-L F-measure of one predicted item against one reference item, in ``[0, 1]``.

    rouge-score's default tokenizer (lowercase, every run of characters other than ``a-z0-9`` is a
    separator, no stemming); with LCS the longest common token subsequence,
    ``P = LCS / len(pred)``, ``R = LCS / len(ref)`` and ``F = 2PR / (P + R)``.  An item with no
    ``a-z0-9`` token scores 0 against a non-empty one.  Two empty items score 1.0, one 0.0.

    Raises:
        InputError: ``prediction`` or ``reference`` is not a string (e.g. None).

    Example:
        >>> round(rouge_l_item(prediction="ductal carcinoma invasive", reference="invasive ductal carcinoma"), 4)
        0.6667
    """
    p = normalize_item(check_item(prediction, "prediction"))
    r = normalize_item(check_item(reference, "reference"))
    if not p or not r:
        return 1.0 if p == r else 0.0
    return _rouge_l(p, r)


def rouge_l(
    *, predictions: Sequence[Answer], references: Sequence[Answer], average: str = "macro", task: str = "phenotype"
) -> Scores:
    """ROUGE-L precision, recall and F1 of set-valued answers (best-match scoring with :func:`rouge_l_item`).

    Per instance, precision is the mean over predicted items of their best ROUGE-L F-measure against any
    reference item and recall the mean over reference items of their best F-measure against any
    predicted item.  Parsing, empty answers and ``average`` are as in :func:`~cancerllm.metrics.exact_match`.

    Example:
        >>> s = rouge_l(predictions=["{left breast}"], references=["{left}"])
        >>> round(s.precision, 4), round(s.recall, 4)
        (0.6667, 0.6667)
    """
    return metric_scores(
        predictions=predictions, references=references, scorer=_rouge_l, average=average, task=task
    )
