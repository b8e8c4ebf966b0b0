"""Result models shared by every metric: :class:`Scores`, :class:`SetScores` and :class:`EvaluationResult`.

All scores are fractions in ``[0, 1]``; tables turn them into the paper's percentages.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError

__all__ = [
    "EvaluationResult",
    "METRIC_LABELS",
    "Scores",
    "SetScores",
    "TABLE_COLUMNS",
]

#: Result field -> column label of the paper's tables, in the paper's order.
METRIC_LABELS: dict[str, str] = {"exact_match": "EM", "bleu2": "BLEU-2", "rouge_l": "ROUGE-L"}

#: Columns of :func:`~cancerllm.metrics.results_table`, in order.
TABLE_COLUMNS: tuple[str, ...] = tuple(
    f"{label} {part}" for label in METRIC_LABELS.values() for part in ("P", "R", "F1")
) + ("Avg F1",)

Interval = tuple[float, float]


class Scores(BaseModel):
    """Precision, recall and F1 of one metric over ``n`` instances.

    Args:
        precision: aggregated precision in ``[0, 1]``.
        recall: aggregated recall in ``[0, 1]``.
        f1: aggregated F1 in ``[0, 1]`` (with ``average="macro"`` the mean of per-instance F1s, not the
            harmonic mean of ``precision`` and ``recall``).
        n: number of instances.
        precision_ci, recall_ci, f1_ci: bootstrap ``(low, high)`` intervals, when asked for.

    Example:
        >>> Scores(precision=1.0, recall=2 / 3, f1=0.8, n=1).recall
        0.6666666666666666
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    precision: float = Field(ge=0.0, le=1.0)
    recall: float = Field(ge=0.0, le=1.0)
    f1: float = Field(ge=0.0, le=1.0)
    n: int = Field(ge=0)
    precision_ci: Interval | None = None
    recall_ci: Interval | None = None
    f1_ci: Interval | None = None


class SetScores(Scores):
    """:class:`Scores` of :func:`~cancerllm.metrics.entity_set_prf`, with the pooled item counts.

    ``tp``, ``fp`` and ``fn`` are summed over all instances whatever the ``average``.
    """

    tp: int = Field(ge=0)
    fp: int = Field(ge=0)
    fn: int = Field(ge=0)
    average: Literal["micro", "macro"]


class EvaluationResult(BaseModel):
    """EM, BLEU-2 and ROUGE-L scores of one system, with the paper's average F1.

    Args:
        variant: ``"library"`` for :func:`~cancerllm.metrics.evaluate` (this library's recommended
            metrics) or ``"official"`` for :func:`~cancerllm.metrics.official_evaluate` (a reproduction of
            the official CancerLLM evaluation code).  In an official result ``bleu2`` is pycocoevalcap-style
            cumulative BLEU-2 and ``rouge_l`` holds the official code's "ROUGE" score (unigram-set overlap,
            F at beta 1.2), which the paper reports under the ROUGE-L heading.
        average: ``"macro"`` (mean over instances, the paper's way) or ``"micro"`` (pooled items).
        n: number of instances.
        exact_match, bleu2, rouge_l: the three metrics.
        average_f1: mean of the three F1 values (the paper's "average F1").
        average_f1_ci: bootstrap interval of ``average_f1``, when asked for.
        confidence: confidence level of the intervals, when asked for.
        per_phenotype: results restricted to the instances of each phenotype, in first-seen order
            (empty unless phenotype names were given).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    variant: Literal["library", "official"] = "library"
    average: Literal["macro", "micro"] = "macro"
    n: int = Field(ge=0)
    exact_match: Scores
    bleu2: Scores
    rouge_l: Scores
    average_f1: float = Field(ge=0.0, le=1.0)
    average_f1_ci: Interval | None = None
    confidence: float | None = None
    per_phenotype: dict[str, EvaluationResult] = Field(default_factory=dict)

    def metric(self, name: str) -> Scores:
        """The :class:`Scores` of ``name``: a field name (``"bleu2"``) or a table label (``"BLEU-2"``)."""
        for field, label in METRIC_LABELS.items():
            if name in (field, label):
                return getattr(self, field)
        known = ", ".join(list(METRIC_LABELS) + list(METRIC_LABELS.values()))
        raise InputError(f"unknown metric {name!r}; use one of: {known}")

    def as_row(self) -> dict[str, float]:
        """The result as ``{column: fraction}`` with the keys of :data:`TABLE_COLUMNS`, in order.

        Example:
            >>> s = Scores(precision=1.0, recall=0.5, f1=0.5, n=2)
            >>> r = EvaluationResult(n=2, exact_match=s, bleu2=s, rouge_l=s, average_f1=0.5)
            >>> list(r.as_row().items())[:3]
            [('EM P', 1.0), ('EM R', 0.5), ('EM F1', 0.5)]
        """
        row: dict[str, float] = {}
        for field, label in METRIC_LABELS.items():
            s: Scores = getattr(self, field)
            row[f"{label} P"] = s.precision
            row[f"{label} R"] = s.recall
            row[f"{label} F1"] = s.f1
        row["Avg F1"] = self.average_f1
        return row


EvaluationResult.model_rebuild()
