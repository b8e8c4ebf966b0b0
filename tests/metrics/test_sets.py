"""Entity-set precision / recall / F1, micro and macro."""

from __future__ import annotations

import pytest

from cancerllm.metrics import entity_set_prf


def test_issue_example_exactly():
    # gold {pr, her2, er} vs predicted {pr, er}: TP 2, FP 0, FN 1 -> P = 1, R = 2/3, F1 = 0.8
    for average in ("micro", "macro"):
        s = entity_set_prf(predictions=["{pr, er}"], references=["{pr, her2, er}"], average=average)
        assert s.precision == 1.0
        assert s.recall == pytest.approx(2 / 3)
        assert s.f1 == pytest.approx(0.8)
        assert (s.tp, s.fp, s.fn) == (2, 0, 1)
        assert s.average == average


def test_micro_pools_counts_and_macro_averages_instances():
    # (1) {a, b} vs {a}:    TP 1 FP 1 FN 0 -> P 1/2, R 1,   F1 2/3
    # (2) {c} vs {c, d, e}: TP 1 FP 0 FN 2 -> P 1,   R 1/3, F1 1/2
    # micro: TP 2 FP 1 FN 2 -> P = 2/3, R = 2/4, F1 = 4/7
    # macro: P = 3/4, R = 2/3, F1 = 7/12
    preds, refs = ["{a, b}", "{c}"], ["{a}", "{c, d, e}"]
    micro = entity_set_prf(predictions=preds, references=refs, average="micro")
    macro = entity_set_prf(predictions=preds, references=refs, average="macro")
    assert (micro.precision, micro.recall, micro.f1) == (
        pytest.approx(2 / 3),
        pytest.approx(0.5),
        pytest.approx(4 / 7),
    )
    assert (macro.precision, macro.recall, macro.f1) == (
        pytest.approx(0.75),
        pytest.approx(2 / 3),
        pytest.approx(7 / 12),
    )
    assert (micro.tp, micro.fp, micro.fn) == (macro.tp, macro.fp, macro.fn) == (2, 1, 2)


def test_empty_set_cases():
    both = entity_set_prf(predictions=["Not relevant"], references=["Not relevant"], average="macro")
    assert (both.precision, both.recall, both.f1) == (1.0, 1.0, 1.0)
    for preds, refs in ((["Not relevant"], ["{a}"]), (["{a}"], ["Not relevant"])):
        for average in ("micro", "macro"):
            s = entity_set_prf(predictions=preds, references=refs, average=average)
            assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)
    # pooled: nothing anywhere -> 1; a both-empty instance adds no counts to micro but a 1 to macro
    assert entity_set_prf(predictions=["none", "N/A"], references=["Not relevant"] * 2).f1 == 1.0
    s = entity_set_prf(predictions=["{a, b}", "Not relevant"], references=["{a}", "Not relevant"])
    assert (s.precision, s.recall) == (0.5, 1.0)
    s = entity_set_prf(
        predictions=["{a, b}", "Not relevant"], references=["{a}", "Not relevant"], average="macro"
    )
    assert (s.precision, s.recall, s.f1) == (0.75, 1.0, pytest.approx((2 / 3 + 1) / 2))


def test_items_are_normalised_before_matching():
    s = entity_set_prf(predictions=["{PR , Her2, her2}"], references=[["pr", "HER2"]])
    assert (s.precision, s.recall, s.tp, s.fp, s.fn) == (1.0, 1.0, 2, 0, 0)
