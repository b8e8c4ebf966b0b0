"""BLEU-2 (sacrebleu sentence BLEU, n-grams up to 2, effective order) with best-match set scoring."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ._core import Answer, check_item, metric_scores, normalize_item
from .results import Scores

__all__ = ["bleu2", "bleu2_item"]


@lru_cache(maxsize=1)
def _scorer() -> Any:
    from sacrebleu.metrics import BLEU

    # 13a tokenizer, 'exp' smoothing (sacrebleu's defaults); effective order so that one-word items
    # are scored on unigrams alone instead of getting a zero bigram precision.
    return BLEU(max_ngram_order=2, effective_order=True)


def _bleu2(prediction: str, reference: str) -> float:
    return _scorer().sentence_score(prediction, [reference]).score / 100.0


def bleu2_item(*, prediction: str, reference: str) -> float:
    """Sentence-level BLEU-2 of one predicted item against one reference item, in ``[0, 1]``.

    Both items are normalised (lowercase, whitespace collapsed); the score is
    ``sacrebleu.metrics.BLEU(max_ngram_order=2, effective_order=True).sentence_score(pred, [ref]).score / 100``:
    13a tokenisation, clipped unigram and bigram precisions, geometric mean over the orders the
    prediction has (a one-word prediction uses unigrams only), a zero precision smoothed by sacrebleu's
    'exp' method (``1 / (2 * total)`` for the first zero order), and brevity penalty
    ``exp(1 - ref_len / pred_len)`` when the prediction is shorter.  Two empty items score 1.0, one 0.0.

    Raises:
        InputError: ``prediction`` or ``reference`` is not a string (e.g. None).

    Example:
        >>> bleu2_item(prediction="left", reference="Left")
        1.0
        >>> round(bleu2_item(prediction="ductal carcinoma", reference="invasive ductal carcinoma"), 4)
        0.6065
    """
    p = normalize_item(check_item(prediction, "prediction"))
    r = normalize_item(check_item(reference, "reference"))
    if not p or not r:
        return 1.0 if p == r else 0.0
    return min(1.0, _bleu2(p, r))


def bleu2(
    *, predictions: Sequence[Answer], references: Sequence[Answer], average: str = "macro", task: str = "phenotype"
) -> Scores:
    """BLEU-2 precision, recall and F1 of set-valued answers (best-match scoring with :func:`bleu2_item`).

    Per instance, precision is the mean over predicted items of their best BLEU-2 against any reference
    item, recall the mean over reference items of their best BLEU-2 against any predicted item.  BLEU is
    not symmetric: every pair is scored the same way, ``bleu2_item(prediction=p, reference=g)``, and only
    the side that is averaged changes.  Parsing, empty answers and ``average`` are as in
    :func:`~cancerllm.metrics.exact_match`.

    Example:
        >>> s = bleu2(predictions=["{ductal carcinoma}"], references=["{invasive ductal carcinoma}"])
        >>> round(s.precision, 4), round(s.recall, 4)
        (0.6065, 0.6065)
    """
    return metric_scores(
        predictions=predictions, references=references, scorer=_bleu2, average=average, task=task
    )
