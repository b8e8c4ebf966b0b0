"""The library's evaluation entry point: EM, BLEU-2 and ROUGE-L with the paper's average F1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._core import (
    Answer,
    aggregate,
    answer_items,
    assemble_result,
    check_average,
    score_instances,
)
from .bleu import _bleu2
from .exact_match import _em
from .results import EvaluationResult, Scores
from .rouge import _rouge_l

__all__ = ["evaluate", "instance_scores"]

_SCORERS = {"exact_match": _em, "bleu2": _bleu2, "rouge_l": _rouge_l}


def evaluate(
    *,
    predictions: Sequence[Answer],
    references: Sequence[Answer],
    task: str = "phenotype",
    phenotypes: Sequence[Any] | None = None,
    average: str = "macro",
    ci: bool = False,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> EvaluationResult:
    """Score predictions with Exact Match, BLEU-2 and ROUGE-L, plus the paper's average F1.

    These are the library's recommended metrics (``variant="library"``); for the numbers of the official
    CancerLLM code use :func:`~cancerllm.metrics.official_evaluate`.

    Each answer is a raw string (model output or gold such as ``"{pr, her2, er}"`` or
    ``"Not relevant"``), a list of item strings, or None.  With ``task="phenotype"`` (the default)
    strings are parsed with :func:`cancerllm.prompts.parse_answer`; with ``task="diagnosis"`` each string
    is one whole item (a free-text diagnosis is never split on commas nor cut at a line break).  Items
    are lowercased, whitespace-collapsed and deduplicated; "Not relevant"/empty answers become the empty
    set.  Per instance and metric:

    * both sides empty: P = R = F1 = 1; exactly one side empty: P = R = F1 = 0;
    * otherwise P = mean over predicted items of the best item score against any reference item,
      R = mean over reference items of the best item score against any predicted item,
      F1 = 2PR / (P + R) (0 when P + R = 0).

    Item scores: :func:`~cancerllm.metrics.exact_match_item`, :func:`~cancerllm.metrics.bleu2_item`,
    :func:`~cancerllm.metrics.rouge_l_item`.

    Args:
        predictions: one answer per instance.
        references: gold answers, same length.
        task: ``"phenotype"`` (set-valued answers, parsed into items) or ``"diagnosis"`` (free text: each
            string scored whole, e.g. ``Diagnosis.text`` against the gold diagnosis).
        phenotypes: optional parallel list of phenotype names (strings, :class:`~cancerllm.Phenotype`
            or :class:`~cancerllm.PhenotypeQuestion`) for a per-phenotype breakdown.
        average: ``"macro"`` (the paper's way): reported P, R and F1 are the means of the per-instance
            values.  ``"micro"``: P = sum of predicted items' best scores / number of predicted items over
            all instances, R likewise for reference items, F1 = 2PR / (P + R); a both-empty instance adds
            nothing, and with no items at all on either side the scores are 1.
        ci: add percentile bootstrap intervals (instances resampled with replacement, one index matrix
            shared by the three metrics and the average F1).
        n_resamples, confidence, seed: bootstrap settings (see :func:`~cancerllm.metrics.bootstrap_ci`).

    Returns:
        :class:`~cancerllm.metrics.EvaluationResult`; ``average_f1`` is the mean of the three F1s.

    Raises:
        InputError: "Mismatch in the number of predictions (n) and references (m)", empty inputs,
            wrong types, a ``phenotypes`` list of another length, unknown ``task`` or ``average``, bad
            bootstrap settings.

    Example:
        >>> r = evaluate(predictions=["{pr, er}", "Not relevant"], references=["{pr, her2, er}", "Not relevant"])
        >>> round(r.exact_match.precision, 4), round(r.exact_match.recall, 4), round(r.exact_match.f1, 4)
        (1.0, 0.8333, 0.9)
        >>> d = evaluate(predictions=["Ductal carcinoma, left breast\\nsecond line"],
        ...              references=["ductal carcinoma, left breast second line"], task="diagnosis")
        >>> d.exact_match.f1
        1.0
    """
    average = check_average(average)
    preds, golds = answer_items(predictions, references, task)
    tables = {name: score_instances(preds, golds, scorer) for name, scorer in _SCORERS.items()}
    return assemble_result(
        tables,
        variant="library",
        average=average,
        phenotypes=phenotypes,
        ci=ci,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )


def instance_scores(
    *,
    predictions: Sequence[Answer],
    references: Sequence[Answer],
    metric: str = "exact_match",
    task: str = "phenotype",
) -> list[Scores]:
    """Per-instance P, R and F1 (each a :class:`~cancerllm.metrics.Scores` with ``n=1``) of one metric.

    Useful for error analysis and for :func:`~cancerllm.metrics.bootstrap_ci` on your own statistic.

    Args:
        predictions, references, task: as in :func:`evaluate`.
        metric: ``"exact_match"``, ``"bleu2"`` or ``"rouge_l"``.

    Example:
        >>> [s.f1 for s in instance_scores(predictions=["{pr}", "{er}"], references=["{pr}", "{pr}"])]
        [1.0, 0.0]
    """
    from ..errors import InputError

    if metric not in _SCORERS:
        raise InputError(f"unknown metric {metric!r}; use one of: {', '.join(_SCORERS)}")
    preds, golds = answer_items(predictions, references, task)
    table = score_instances(preds, golds, _SCORERS[metric])
    out = []
    for i in range(len(preds)):
        p, r, f = (float(v[0]) for v in aggregate(table, np.array([[i]]), "macro"))
        out.append(Scores(precision=p, recall=r, f1=f, n=1))
    return out
