"""How checkable the answers are: evidence-span shares, accuracy with and without evidence, and calibration
of the confidences (ECE, reliability table, accuracy at 80% coverage), per phenotype and overall.

Computed from the :attr:`~cancerllm.schema.PhenotypeResult.details` of a model's predictions and the
benchmark's match flags (:func:`~cancerllm.benchmark.answers_match`); systems without details (the rules)
get None.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..metrics.calibration import (
    accuracy_at_coverage,
    coverage_curve,
    expected_calibration_error,
    reliability_table,
)

__all__ = ["score_checking"]


def _block(cases: Sequence[tuple[Any, bool]]) -> dict[str, Any]:
    """Figures over ``(AnswerDetail, correct)`` pairs."""
    kinds: Counter[str] = Counter()
    with_span: list[bool] = []
    without_span: list[bool] = []
    confs: list[float] = []
    flags: list[bool] = []
    for detail, ok in cases:
        if detail.confidence is not None:
            confs.append(min(1.0, max(0.0, detail.confidence)))
            flags.append(ok)
        if detail.status != "answered":
            continue
        kinds.update(i.match for i in detail.items)
        (with_span if all(i.match != "not_found" for i in detail.items) else without_span).append(ok)
    n_items = sum(kinds.values())

    def acc(xs: list[bool]) -> dict[str, Any]:
        return {"accuracy": round(sum(xs) / len(xs), 4) if xs else None, "n": len(xs)}

    out: dict[str, Any] = {
        "n_answers": len(cases),
        "n_items": n_items,
        "span_share": {k: round(kinds[k] / n_items, 4) if n_items else None for k in ("exact", "fuzzy", "not_found")},
        "answers_with_evidence": acc(with_span),
        "answers_without_evidence": acc(without_span),
        "n_with_confidence": len(confs),
    }
    if confs:
        out.update(ece=expected_calibration_error(confs, flags), accuracy=round(sum(flags) / len(flags), 4),
                   mean_confidence=round(sum(confs) / len(confs), 4),
                   accuracy_at_80_coverage=accuracy_at_coverage(confs, flags, 0.8),
                   reliability=reliability_table(confs, flags), coverage_curve=coverage_curve(confs, flags))
    return out


def score_checking(tasks: Any, predictions: Sequence[Any], flags: Sequence[bool]) -> dict[str, Any] | None:
    """The checking figures of one system; ``flags[i]`` is whether phenotype case ``i`` was answered right.
    None when the predictions carry no details."""
    pairs: dict[str, list[tuple[Any, bool]]] = {}
    for case, ok in zip(tasks.phenotype_cases, flags, strict=True):
        detail = predictions[case.report].details.get(case.phenotype) if predictions[case.report].details else None
        if detail is None:
            return None
        pairs.setdefault(case.phenotype, []).append((detail, ok))
    if not pairs:
        return None
    return {"overall": _block([p for ps in pairs.values() for p in ps]),
            "per_phenotype": {ph: _block(ps) for ph, ps in pairs.items()}}
