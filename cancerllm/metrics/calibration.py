"""Calibration of answer confidences: reliability table, expected calibration error, accuracy vs coverage.

Each function takes ``confidences`` (0-1, one per answer) and ``correct`` (whether each answer was right).

Example:
    >>> expected_calibration_error([0.9, 0.9, 0.2, 0.2], [True, True, False, True], bins=5)
    0.2
    >>> accuracy_at_coverage([0.9, 0.8, 0.3, 0.1], [True, True, False, False], 0.5)
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import InputError

__all__ = ["accuracy_at_coverage", "coverage_curve", "expected_calibration_error", "reliability_table"]


def _check(confidences: Sequence[float], correct: Sequence[bool]) -> list[tuple[float, bool]]:
    if len(confidences) != len(correct):
        raise InputError(f"got {len(confidences)} confidences for {len(correct)} answers")
    pairs = []
    for c, ok in zip(confidences, correct):
        if c is None or not isinstance(c, (int, float)) or math.isnan(c) or not 0.0 <= c <= 1.0:
            raise InputError(f"a confidence must be a number between 0 and 1, got {c!r}")
        pairs.append((float(c), bool(ok)))
    return pairs


def reliability_table(confidences: Sequence[float], correct: Sequence[bool], *, bins: int = 10) -> list[dict[str, Any]]:
    """Equal-width confidence bins: ``{"low", "high", "n", "confidence" (mean), "accuracy"}`` per non-empty bin."""
    pairs = _check(confidences, correct)
    rows = []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in pairs if low <= c < high or (b == bins - 1 and c == 1.0)]
        if inside:
            rows.append({"low": round(low, 4), "high": round(high, 4), "n": len(inside),
                         "confidence": round(sum(c for c, _ in inside) / len(inside), 4),
                         "accuracy": round(sum(ok for _, ok in inside) / len(inside), 4)})
    return rows


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], *, bins: int = 10) -> float:
    """ECE: the bin-size-weighted mean of ``|accuracy - mean confidence|`` over equal-width bins."""
    pairs = _check(confidences, correct)
    if not pairs:
        raise InputError("no answers to measure calibration on")
    table = reliability_table(confidences, correct, bins=bins)
    return round(sum(r["n"] * abs(r["accuracy"] - r["confidence"]) for r in table) / len(pairs), 4)


def accuracy_at_coverage(confidences: Sequence[float], correct: Sequence[bool], coverage: float) -> float:
    """Accuracy of the ``coverage`` share of answers with the highest confidence (ties kept in input order)."""
    pairs = _check(confidences, correct)
    if not pairs:
        raise InputError("no answers to measure accuracy on")
    if not 0.0 < coverage <= 1.0:
        raise InputError(f"coverage must be in (0, 1], got {coverage!r}")
    kept = sorted(range(len(pairs)), key=lambda i: -pairs[i][0])[: max(1, math.ceil(round(coverage * len(pairs), 9)))]
    return round(sum(pairs[i][1] for i in kept) / len(kept), 4)


def coverage_curve(confidences: Sequence[float], correct: Sequence[bool],
                   thresholds: Sequence[float] = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)) -> list[dict[str, Any]]:
    """For each threshold: the share of answers at or above it (coverage) and their accuracy."""
    pairs = _check(confidences, correct)
    out = []
    for t in thresholds:
        kept = [ok for c, ok in pairs if c >= t]
        out.append({"threshold": t, "coverage": round(len(kept) / len(pairs), 4) if pairs else None,
                    "accuracy": round(sum(kept) / len(kept), 4) if kept else None, "n": len(kept)})
    return out
