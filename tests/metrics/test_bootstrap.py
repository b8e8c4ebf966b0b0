"""Bootstrap intervals: determinism, coverage of the point estimate, a hand-checked tiny case, errors."""

from __future__ import annotations

import numpy as np
import pytest

from cancerllm.errors import InputError
from cancerllm.metrics import bootstrap_ci, evaluate

SCORES = [1.0, 0.0, 0.5, 1.0, 1.0, 0.25, 0.0, 1.0, 0.75, 1.0] * 3


def test_same_seed_same_interval_other_seed_other_interval():
    assert bootstrap_ci(SCORES, seed=7) == bootstrap_ci(SCORES, seed=7)
    assert bootstrap_ci(SCORES, seed=7) != bootstrap_ci(SCORES, seed=8)


def test_interval_contains_the_mean_and_narrows_with_confidence():
    low, high = bootstrap_ci(SCORES)
    assert low < np.mean(SCORES) < high
    low80, high80 = bootstrap_ci(SCORES, confidence=0.8)
    assert low <= low80 and high80 <= high and (high80 - low80) < (high - low)


def test_tiny_case_by_hand():
    # data [0, 1]: a resample's mean is 0 (prob 1/4), 0.5 (1/2) or 1 (1/4)
    # 95% interval -> 2.5th and 97.5th percentiles fall in the 0 and 1 masses
    assert bootstrap_ci([0.0, 1.0], n_resamples=2000) == (0.0, 1.0)
    # 40% interval -> 30th and 70th percentiles both fall in the 0.5 mass
    assert bootstrap_ci([0.0, 1.0], n_resamples=2000, confidence=0.4) == (0.5, 0.5)
    # constant data: every resample has the same mean
    assert bootstrap_ci([0.3] * 5) == pytest.approx((0.3, 0.3))


def test_statistic_on_records_uses_the_same_resamples():
    def mean(records):
        return sum(records) / len(records)

    assert bootstrap_ci(SCORES, statistic=mean, seed=3) == pytest.approx(bootstrap_ci(SCORES, seed=3))
    pairs = [("{pr}", "{pr}"), ("{er}", "{pr}")] * 5
    low, high = bootstrap_ci(pairs, statistic=lambda rs: sum(p == g for p, g in rs) / len(rs))
    assert 0.0 <= low < 0.5 < high <= 1.0


def test_bad_arguments():
    with pytest.raises(InputError, match="empty"):
        bootstrap_ci([])
    with pytest.raises(InputError, match="between 0 and 1"):
        bootstrap_ci(SCORES, confidence=1.0)
    with pytest.raises(InputError, match="positive integer"):
        bootstrap_ci(SCORES, n_resamples=0)
    with pytest.raises(InputError, match="statistic"):
        bootstrap_ci(["a", "b"])


def test_evaluate_with_ci():
    preds = ["{pr, er}", "{left}", "Not relevant", "{iib}", "{right}", "{grade 2}"]
    refs = ["{pr, her2, er}", "{left}", "{left}", "{iib}", "{left}", "{grade 2}"]
    plain = evaluate(predictions=preds, references=refs)
    assert plain.exact_match.f1_ci is None and plain.average_f1_ci is None and plain.confidence is None
    r = evaluate(predictions=preds, references=refs, ci=True, n_resamples=500, phenotypes=["a", "b"] * 3)
    assert r.confidence == 0.95
    for s in (r.exact_match, r.bleu2, r.rouge_l):
        for value, (low, high) in ((s.precision, s.precision_ci), (s.recall, s.recall_ci), (s.f1, s.f1_ci)):
            assert 0.0 <= low <= value <= high <= 1.0
    low, high = r.average_f1_ci
    assert low <= r.average_f1 <= high and low < high
    assert r == evaluate(
        predictions=preds, references=refs, ci=True, n_resamples=500, phenotypes=["a", "b"] * 3
    )
    assert r.per_phenotype["a"].exact_match.f1_ci is not None
