"""Exact Match (EM) with the library's best-match set scoring."""

from __future__ import annotations

from collections.abc import Sequence

from ._core import Answer, check_item, metric_scores, normalize_item
from .results import Scores

__all__ = ["exact_match", "exact_match_item"]


def _em(prediction: str, reference: str) -> float:
    return 1.0 if prediction == reference else 0.0


def exact_match_item(*, prediction: str, reference: str) -> float:
    """1.0 when the two items are equal after :func:`normalize_item` (lowercase, whitespace collapsed), else 0.0.

    Two empty items score 1.0.

    Raises:
        InputError: ``prediction`` or ``reference`` is not a string (e.g. None); the set-level functions
            take None for a missing answer.

    Example:
        >>> exact_match_item(prediction="Invasive  Ductal Carcinoma", reference="invasive ductal carcinoma")
        1.0
        >>> exact_match_item(prediction="her-2", reference="her2")
        0.0
    """
    return _em(
        normalize_item(check_item(prediction, "prediction")), normalize_item(check_item(reference, "reference"))
    )


def exact_match(
    *, predictions: Sequence[Answer], references: Sequence[Answer], average: str = "macro", task: str = "phenotype"
) -> Scores:
    """Exact Match precision, recall and F1 of set-valued answers.

    Each answer is parsed into normalised items (:func:`cancerllm.prompts.parse_answer` for strings,
    lowercase, whitespace collapsed, duplicates dropped).  Per instance, precision is the fraction of
    predicted items that equal some reference item and recall the fraction of reference items that
    equal some predicted item (best-match scoring with :func:`exact_match_item`); "Not relevant" vs
    "Not relevant" scores 1 and one empty side scores 0.  See :func:`~cancerllm.metrics.evaluate` for
    the ``average`` options.

    Args:
        predictions: one answer per instance (string, list of items or None).
        references: the gold answers, same length.
        average: ``"macro"`` (mean of per-instance P, R and F1) or ``"micro"`` (pooled items).
        task: ``"phenotype"`` (strings parsed into items) or ``"diagnosis"`` (each string one whole item);
            see :func:`~cancerllm.metrics.evaluate`.

    Returns:
        :class:`~cancerllm.metrics.Scores`.

    Raises:
        InputError: lengths differ, inputs are empty or of the wrong type, unknown ``average`` or ``task``.

    Example:
        >>> s = exact_match(predictions=["{pr, er, ki-67}"], references=["{PR, her2, ER}"])
        >>> round(s.precision, 4), round(s.recall, 4), round(s.f1, 4)
        (0.6667, 0.6667, 0.6667)
    """
    return metric_scores(
        predictions=predictions, references=references, scorer=_em, average=average, task=task
    )
