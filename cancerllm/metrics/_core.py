"""Shared machinery: input checks, item normalisation, best-match scoring and aggregation.

Not public; the public functions live in the metric modules and re-export from :mod:`cancerllm.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

import numpy as np

from ..errors import InputError
from ..prompts import is_not_relevant, parse_answer
from .results import EvaluationResult, Scores

__all__ = [
    "Answer",
    "Average",
    "InstanceTable",
    "ItemScorer",
    "TASKS",
    "Task",
    "answer_items",
    "assemble_result",
    "check_average",
    "check_item",
    "check_pairs",
    "check_task",
    "metric_scores",
    "normalize_item",
    "phenotype_groups",
    "score_instances",
    "to_items",
]

#: One answer: a raw string (``"{pr, her2}"``, ``"Not relevant"``), a list of item strings, or None.
Answer = str | Sequence[str] | None
Average = Literal["macro", "micro"]
#: What the answers are: ``"phenotype"`` (set-valued answers, parsed into items) or ``"diagnosis"`` (free
#: text, each string one whole item: never split on commas or cut at a line break).
Task = Literal["phenotype", "diagnosis"]
TASKS: tuple[str, ...] = ("phenotype", "diagnosis")
#: ``scorer(prediction_item, reference_item) -> score in [0, 1]``.
ItemScorer = Callable[[str, str], float]

_METRICS = ("exact_match", "bleu2", "rouge_l")


# ------------------------------------------------------------------------------------------ inputs
def _as_list(value: Any, name: str) -> list[Any]:
    if isinstance(value, (str, bytes)):
        raise InputError(
            f"{name} must be a sequence of answers (one per instance), not a single string; "
            f"wrap it in a list: {name}=[...]"
        )
    if isinstance(value, Sequence) or hasattr(value, "__array__"):  # lists, tuples, numpy, pandas
        return list(value)
    raise InputError(f"{name} must be a sequence (list or tuple) of answers, got {type(value).__name__}")


def check_pairs(predictions: Any, references: Any) -> tuple[list[Any], list[Any]]:
    """Check that ``predictions`` and ``references`` are equally long, non-empty sequences; return them as lists.

    Lists, tuples, numpy arrays and pandas Series are accepted; a single string, a set or a dict is not.
    """
    preds, refs = _as_list(predictions, "predictions"), _as_list(references, "references")
    n, m = len(preds), len(refs)
    if n != m:
        raise InputError(
            f"Mismatch in the number of predictions ({n}) and references ({m}); pass one prediction per reference"
        )
    if n == 0:
        raise InputError("predictions and references are empty; pass at least one prediction/reference pair")
    return preds, refs


def check_average(average: str) -> Average:
    if average not in ("macro", "micro"):
        raise InputError(f"unknown average {average!r}; use 'macro' or 'micro'")
    return average  # type: ignore[return-value]


def check_task(task: str) -> Task:
    if task not in TASKS:
        raise InputError(
            f"unknown task {task!r}; use 'phenotype' (set-valued answers such as '{{pr, er}}') or 'diagnosis' "
            "(free text scored whole)"
        )
    return task  # type: ignore[return-value]


def check_item(value: Any, what: str) -> str:
    """``value`` if it is a string (one item), else :class:`InputError` (item scores take strings only)."""
    if not isinstance(value, str):
        raise InputError(
            f"{what} must be a string (one answer item), got {type(value).__name__}; item scores compare two "
            "items; for missing answers (None) use the set-level functions such as evaluate()"
        )
    return value


def raw_items(answer: Answer, *, what: str) -> list[str] | None:
    """``None`` for a string answer (to be parsed), else the list's items as strings (type-checked)."""
    if answer is None or isinstance(answer, str):
        return None
    if isinstance(answer, bytes) or not isinstance(answer, Sequence):
        raise InputError(
            f"each {what} must be a string, a list of strings or None, got {type(answer).__name__}"
        )
    items = list(answer)
    for item in items:
        if not isinstance(item, str):
            raise InputError(f"each item of a {what} must be a string, got {type(item).__name__}")
    return items


def normalize_item(text: str) -> str:
    """The library's item normalisation: lowercase and collapse whitespace (nothing else is removed).

    Raises:
        InputError: ``text`` is not a string (e.g. None).

    Example:
        >>> normalize_item("  Invasive   Ductal\\tCarcinoma ")
        'invasive ductal carcinoma'
    """
    return " ".join(check_item(text, "text").lower().split())


def to_items(answer: Answer, *, what: str = "answer", task: str = "phenotype") -> list[str]:
    """Normalised, deduplicated answer items; ``[]`` for "Not relevant", an empty answer or None.

    With ``task="phenotype"`` a string goes through :func:`cancerllm.prompts.parse_answer` (first ``{...}``
    or first line, split on commas/semicolons); with ``task="diagnosis"`` a string is one whole item
    (line breaks and commas kept as part of it, whitespace collapsed by the normalisation).  A list is
    taken as items, each normalised, with empty and "Not relevant"-like items dropped.

    Example:
        >>> to_items("{PR, her2,  ER}")
        ['pr', 'her2', 'er']
        >>> to_items(["Left", "left "]), to_items("Not relevant"), to_items(None)
        (['left'], [], [])
        >>> to_items("Ductal carcinoma, left breast\\nwith DCIS", task="diagnosis")
        ['ductal carcinoma, left breast with dcis']
    """
    items = raw_items(answer, what=what)
    if items is None:
        if answer is None:
            items = []
        elif check_task(task) == "diagnosis":
            items = [answer]  # type: ignore[list-item]
        else:
            items = parse_answer(answer)  # type: ignore[arg-type]
    out: list[str] = []
    for item in items:
        norm = normalize_item(item)
        if norm and not is_not_relevant(norm) and norm not in out:
            out.append(norm)
    return out


def phenotype_names(phenotypes: Sequence[Any], n: int) -> list[str]:
    if isinstance(phenotypes, (str, bytes)) or not (
        isinstance(phenotypes, Sequence) or hasattr(phenotypes, "__array__")
    ):
        raise InputError("phenotypes must be a list with one phenotype name per prediction")
    phenotypes = list(phenotypes)
    if len(phenotypes) != n:
        raise InputError(
            f"Mismatch in the number of phenotypes ({len(phenotypes)}) and predictions ({n}); "
            "pass one phenotype name per prediction"
        )
    names = []
    for p in phenotypes:
        if isinstance(p, Enum):
            names.append(str(p.value))
        elif isinstance(p, str):
            names.append(p)
        elif hasattr(p, "name") and isinstance(p.name, str):  # PhenotypeQuestion
            names.append(p.name)
        else:
            raise InputError(f"cannot use {type(p).__name__} as a phenotype name; pass strings")
    return names


def phenotype_groups(phenotypes: Sequence[Any] | None, n: int) -> dict[str, np.ndarray]:
    """``{name: instance indices}`` in first-seen order; empty when ``phenotypes`` is None."""
    if phenotypes is None:
        return {}
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(phenotype_names(phenotypes, n)):
        groups.setdefault(name, []).append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in groups.items()}


# ------------------------------------------------------------------------------------- instances
@dataclass(frozen=True)
class InstanceTable:
    """Per-instance scores of one metric (arrays of length n).

    ``pred_sum``/``pred_count`` are the sum of the predicted items' best scores and their number,
    ``gold_sum``/``gold_count`` the same for reference items; the micro average pools them.
    """

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    pred_sum: np.ndarray
    pred_count: np.ndarray
    gold_sum: np.ndarray
    gold_count: np.ndarray


def f1_of(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _clip(x: float) -> float:
    return 0.0 if not x > 0.0 else (1.0 if x > 1.0 else float(x))


def score_instances(
    pred_items: Sequence[Sequence[str]], gold_items: Sequence[Sequence[str]], scorer: ItemScorer
) -> InstanceTable:
    """Best-match scoring of every instance (the library's rules; see :func:`~cancerllm.metrics.evaluate`).

    Both empty: P = R = F1 = 1.  One empty: P = R = F1 = 0.  Otherwise P is the mean over predicted
    items of the best score against any reference item, R the mean over reference items of the best
    score against any predicted item, F1 = 2PR / (P + R).  Item pair scores are cached per call.
    """
    cache: dict[tuple[str, str], float] = {}
    rows = []
    for preds, golds in zip(pred_items, gold_items, strict=True):
        if not preds and not golds:
            rows.append((1.0, 1.0, 1.0, 0.0, 0, 0.0, 0))
            continue
        if not preds or not golds:
            rows.append((0.0, 0.0, 0.0, 0.0, len(preds), 0.0, len(golds)))
            continue
        matrix = np.empty((len(preds), len(golds)))
        for i, p in enumerate(preds):
            for j, g in enumerate(golds):
                key = (p, g)
                if key not in cache:
                    cache[key] = _clip(scorer(p, g))
                matrix[i, j] = cache[key]
        best_p = matrix.max(axis=1)
        best_g = matrix.max(axis=0)
        p_, r_ = float(best_p.mean()), float(best_g.mean())
        rows.append((p_, r_, f1_of(p_, r_), float(best_p.sum()), len(preds), float(best_g.sum()), len(golds)))
    return table_from_rows(rows)


def table_from_rows(rows: Sequence[tuple[float, float, float, float, int, float, int]]) -> InstanceTable:
    cols = list(zip(*rows, strict=True))
    return InstanceTable(*(np.asarray(c, dtype=np.float64) for c in cols))


# ------------------------------------------------------------------------------------- aggregation
def _ratio(num: np.ndarray, den: np.ndarray, other_den: np.ndarray) -> np.ndarray:
    """num/den; where den == 0: 1.0 if other_den == 0 too (nothing on either side) else 0.0."""
    safe = np.where(den > 0, den, 1.0)
    return np.where(den > 0, num / safe, np.where(other_den > 0, 0.0, 1.0))


def aggregate(table: InstanceTable, idx: np.ndarray, average: Average) -> tuple[np.ndarray, ...]:
    """(P, R, F1) for index rows ``idx`` of shape ``(k, m)`` -> three arrays of shape ``(k,)``.

    ``macro``: means of the per-instance values.  ``micro``: pooled sums of best-match scores over
    pooled item counts, F1 their harmonic mean.
    """
    if average == "macro":
        return table.precision[idx].mean(axis=1), table.recall[idx].mean(axis=1), table.f1[idx].mean(axis=1)
    ps, pc = table.pred_sum[idx].sum(axis=1), table.pred_count[idx].sum(axis=1)
    gs, gc = table.gold_sum[idx].sum(axis=1), table.gold_count[idx].sum(axis=1)
    p = _ratio(ps, pc, gc)
    r = _ratio(gs, gc, pc)
    denom = np.where(p + r > 0, p + r, 1.0)
    f1 = np.where(p + r > 0, 2 * p * r / denom, 0.0)
    return p, r, f1


def answer_items(
    predictions: Sequence[Answer], references: Sequence[Answer], task: str
) -> tuple[list[list[str]], list[list[str]]]:
    """Check the inputs and parse both sides into normalised items (the one place that does it)."""
    task = check_task(task)
    pred_list, ref_list = check_pairs(predictions, references)
    preds = [to_items(p, what="prediction", task=task) for p in pred_list]
    golds = [to_items(r, what="reference", task=task) for r in ref_list]
    return preds, golds


def metric_scores(
    *,
    predictions: Sequence[Answer],
    references: Sequence[Answer],
    scorer: ItemScorer,
    average: str,
    task: str = "phenotype",
) -> Scores:
    """Check the inputs, parse them into items, best-match score them with ``scorer`` and aggregate."""
    average = check_average(average)
    preds, golds = answer_items(predictions, references, task)
    n = len(preds)
    table = score_instances(preds, golds, scorer)
    p, r, f = (_clip(v[0]) for v in aggregate(table, np.arange(n)[None, :], average))
    return Scores(precision=p, recall=r, f1=f, n=n)


def assemble_result(
    tables: dict[str, InstanceTable],
    *,
    variant: Literal["library", "official"],
    average: Average,
    phenotypes: Sequence[Any] | None,
    ci: bool,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> EvaluationResult:
    """Build an :class:`EvaluationResult` (with per-phenotype results and bootstrap intervals if asked)."""
    n = len(tables["exact_match"].f1)
    groups = phenotype_groups(phenotypes, n)
    result = _result_for(tables, np.arange(n), variant, average, ci, n_resamples, confidence, seed)
    if groups:
        per = {
            name: _result_for(tables, idx, variant, average, ci, n_resamples, confidence, seed)
            for name, idx in groups.items()
        }
        result = result.model_copy(update={"per_phenotype": per})
    return result


def _result_for(
    tables: dict[str, InstanceTable],
    subset: np.ndarray,
    variant: Literal["library", "official"],
    average: Average,
    ci: bool,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> EvaluationResult:
    from .bootstrap import percentile_interval, resample_indices

    point = subset[None, :]
    boot = resample_indices(len(subset), n_resamples=n_resamples, seed=seed) if ci else None
    fields: dict[str, Any] = {}
    f1s, boot_f1s = [], []
    for name in _METRICS:
        p, r, f = (float(_clip(v[0])) for v in aggregate(tables[name], point, average))
        kw: dict[str, Any] = {"precision": p, "recall": r, "f1": f, "n": len(subset)}
        if boot is not None:
            bp, br, bf = aggregate(tables[name], subset[boot], average)
            kw["precision_ci"] = percentile_interval(bp, confidence)
            kw["recall_ci"] = percentile_interval(br, confidence)
            kw["f1_ci"] = percentile_interval(bf, confidence)
            boot_f1s.append(bf)
        fields[name] = Scores(**kw)
        f1s.append(f)
    avg = _clip(math.fsum(f1s) / len(f1s))
    avg_ci = percentile_interval(np.mean(boot_f1s, axis=0), confidence) if boot is not None else None
    return EvaluationResult(
        variant=variant,
        average=average,
        n=len(subset),
        average_f1=avg,
        average_f1_ci=avg_ci,
        confidence=confidence if ci else None,
        **fields,
    )
