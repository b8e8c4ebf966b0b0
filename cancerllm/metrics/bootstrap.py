"""Percentile bootstrap confidence intervals (numpy only, deterministic given the seed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["bootstrap_ci", "percentile_interval", "resample_indices"]


def resample_indices(n: int, *, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap index matrix of shape ``(n_resamples, n)``: rows drawn with replacement from ``range(n)``.

    Uses ``numpy.random.default_rng(seed)``, so the same ``(n, n_resamples, seed)`` always gives the same
    matrix.  :func:`~cancerllm.metrics.evaluate` uses one matrix for all its metrics (paired resampling).
    """
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise InputError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if n < 1:
        raise InputError("cannot bootstrap an empty sample; pass at least one instance")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(int(n_resamples), n))


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` interval of ``values``: their ``(1-c)/2`` and ``(1+c)/2`` percentiles
    (numpy's default linear interpolation)."""
    _check_confidence(confidence)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(np.asarray(values, dtype=np.float64), [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)


def _check_confidence(confidence: float) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
        raise InputError(
            f"confidence must be a number strictly between 0 and 1 (e.g. 0.95), got {confidence!r}"
        )


def bootstrap_ci(
    data: Sequence[Any] | np.ndarray,
    *,
    statistic: Callable[[list[Any]], float] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a statistic of ``data``.

    ``n_resamples`` samples of ``len(data)`` instances are drawn with replacement
    (:func:`resample_indices`); the statistic is computed on each, and the ``(1-c)/2`` and ``(1+c)/2``
    percentiles of the results are returned.

    Args:
        data: per-instance values (e.g. per-instance F1 scores) or, with ``statistic``, any per-instance
            records (e.g. ``(prediction, reference)`` pairs).
        statistic: function of a resampled list of records returning a float; ``None`` means the mean
            of numeric ``data`` (computed vectorised).
        n_resamples: number of bootstrap samples.
        confidence: coverage of the interval, strictly between 0 and 1.
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same interval.

    Returns:
        ``(low, high)``.

    Raises:
        InputError: empty ``data``, non-numeric data without ``statistic``, bad ``n_resamples`` or
            ``confidence``.

    Example:
        >>> bootstrap_ci([1.0, 1.0, 1.0])
        (1.0, 1.0)
        >>> low, high = bootstrap_ci([0.0, 1.0] * 50, seed=1)
        >>> low < 0.5 < high
        True
    """
    _check_confidence(confidence)
    if isinstance(data, (str, bytes)):
        raise InputError("data must be a sequence of per-instance values, not a string")
    n = len(data)
    if n == 0:
        raise InputError("cannot bootstrap an empty sample; pass at least one instance")
    idx = resample_indices(n, n_resamples=n_resamples, seed=seed)
    if statistic is None:
        try:
            values = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(
                "data must be numbers when no statistic is given; pass statistic=... for other records"
            ) from None
        if values.ndim != 1:
            raise InputError("data must be a flat sequence of numbers when no statistic is given")
        stats = values[idx].mean(axis=1)
    else:
        records = list(data)
        stats = np.asarray([float(statistic([records[i] for i in row])) for row in idx])
    return percentile_interval(stats, confidence)
