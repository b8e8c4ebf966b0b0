"""Entity-set precision, recall and F1 (micro and macro) for set-valued answers."""

from __future__ import annotations

from collections.abc import Sequence

from ._core import Answer, answer_items, check_average, f1_of
from .results import SetScores

__all__ = ["entity_set_prf"]


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """P, R, F1 from counts.  Nothing predicted and nothing gold: 1, 1, 1.  Precision with nothing
    predicted (but some gold) is 0; recall with nothing gold (but something predicted) is 0."""
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, f1_of(p, r)


def entity_set_prf(
    *, predictions: Sequence[Answer], references: Sequence[Answer], average: str = "micro", task: str = "phenotype"
) -> SetScores:
    """Precision, recall and F1 of predicted item sets against gold item sets (exact item matches).

    Answers are parsed into normalised item sets as in :func:`~cancerllm.metrics.exact_match`
    (lowercase, whitespace collapsed, duplicates and "Not relevant" dropped).  Per instance,
    ``TP = |pred & gold|``, ``FP = |pred - gold|``, ``FN = |gold - pred|``.

    * ``average="micro"``: TP, FP and FN are summed over all instances, then
      ``P = TP / (TP + FP)``, ``R = TP / (TP + FN)``, ``F1 = 2PR / (P + R)``.
    * ``average="macro"``: P, R and F1 are computed per instance from its own counts and averaged
      over instances (F1 is the mean of per-instance F1s).

    Empty cases (the same rule for an instance and for the pooled counts): both sets empty
    ("Not relevant" vs "Not relevant") gives P = R = F1 = 1; nothing predicted but gold items present
    gives P = R = F1 = 0; predicted items but an empty gold set gives P = R = F1 = 0.

    Args:
        predictions: one answer per instance (string like ``"{pr, er}"``, list of items or None).
        references: the gold answers, same length.
        average: ``"micro"`` or ``"macro"``.
        task: ``"phenotype"`` (strings parsed into items) or ``"diagnosis"`` (each string one whole item).

    Returns:
        :class:`~cancerllm.metrics.SetScores` (with the pooled ``tp``, ``fp``, ``fn``).

    Raises:
        InputError: lengths differ, inputs are empty or of the wrong type, unknown ``average`` or ``task``.

    Example:
        >>> s = entity_set_prf(predictions=["{pr, er}"], references=["{pr, her2, er}"])
        >>> s.precision, round(s.recall, 4), round(s.f1, 4)
        (1.0, 0.6667, 0.8)
    """
    average = check_average(average)
    pred_items, gold_items = answer_items(predictions, references, task)
    n = len(pred_items)
    tp = fp = fn = 0
    sums = [0.0, 0.0, 0.0]
    for pred_list, gold_list in zip(pred_items, gold_items, strict=True):
        pred, gold = set(pred_list), set(gold_list)
        i_tp, i_fp, i_fn = len(pred & gold), len(pred - gold), len(gold - pred)
        tp, fp, fn = tp + i_tp, fp + i_fp, fn + i_fn
        for k, v in enumerate(_prf(i_tp, i_fp, i_fn)):
            sums[k] += v
    if average == "micro":
        p, r, f = _prf(tp, fp, fn)
    else:
        p, r, f = (min(1.0, s / n) for s in sums)
    return SetScores(precision=p, recall=r, f1=f, n=n, tp=tp, fp=fp, fn=fn, average=average)
