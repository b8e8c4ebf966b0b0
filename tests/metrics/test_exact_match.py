"""Exact Match against hand-worked values."""

from __future__ import annotations

import pytest

from cancerllm.metrics import exact_match, exact_match_item


def test_partial_sets():
    # pred {pr, er, ki-67} vs gold {pr, her2, er}
    # P: pr->1, er->1, ki-67->0          = 2/3
    # R: pr->1, her2->0, er->1           = 2/3
    # F1 = 2 * 2/3 * 2/3 / (4/3)          = 2/3
    s = exact_match(predictions=["{pr, er, ki-67}"], references=["{PR, her2, ER}"])
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(2 / 3)
    assert s.n == 1


def test_issue_example():
    # gold {pr, her2, er} vs pred {pr, er}: P = 2/2 = 1, R = 2/3, F1 = 2*1*(2/3)/(5/3) = 0.8
    s = exact_match(predictions=["{pr, er}"], references=["{pr, her2, er}"])
    assert (s.precision, s.recall) == (1.0, pytest.approx(2 / 3))
    assert s.f1 == pytest.approx(0.8)


def test_item_normalisation_is_case_and_whitespace_only():
    assert (
        exact_match_item(prediction=" Invasive  DUCTAL carcinoma", reference="invasive ductal carcinoma")
        == 1.0
    )
    assert exact_match_item(prediction="her-2", reference="her2") == 0.0
    assert exact_match_item(prediction="tumors", reference="tumor") == 0.0  # no stemming
    assert exact_match_item(prediction="", reference="  ") == 1.0


def test_not_relevant_cases():
    both = exact_match(predictions=["Not relevant"], references=["not relevant"])
    assert (both.precision, both.recall, both.f1) == (1.0, 1.0, 1.0)
    missed = exact_match(predictions=["Not relevant"], references=["{left}"])
    assert (missed.precision, missed.recall, missed.f1) == (0.0, 0.0, 0.0)
    spurious = exact_match(predictions=["{left}"], references=["Not relevant"])
    assert (spurious.precision, spurious.recall, spurious.f1) == (0.0, 0.0, 0.0)


def test_macro_is_the_mean_of_instances():
    # (1) {a, b} vs {a}:    P = 1/2, R = 1,   F1 = 2/3
    # (2) {c} vs {c, d, e}: P = 1,   R = 1/3, F1 = 1/2
    # macro: P = 3/4, R = 2/3, F1 = (2/3 + 1/2) / 2 = 7/12 (not the harmonic mean of P and R, 12/17)
    s = exact_match(predictions=["{a, b}", "{c}"], references=["{a}", "{c, d, e}"])
    assert s.precision == pytest.approx(0.75)
    assert s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(7 / 12)


def test_micro_pools_items():
    # predicted items a(1) b(0) c(1): P = 2/3; gold items a(1) c(1) d(0) e(0): R = 2/4
    # F1 = 2 * (2/3) * (1/2) / (2/3 + 1/2) = 4/7
    preds, refs = ["{a, b}", "{c}"], ["{a}", "{c, d, e}"]
    s = exact_match(predictions=preds, references=refs, average="micro")
    assert (s.precision, s.recall, s.f1) == (pytest.approx(2 / 3), pytest.approx(0.5), pytest.approx(4 / 7))
    # a both-empty instance adds no items, so the micro scores do not move; the macro ones do
    s2 = exact_match(
        predictions=preds + ["Not relevant"], references=refs + ["Not relevant"], average="micro"
    )
    assert (s2.precision, s2.recall, s2.f1) == (s.precision, s.recall, s.f1)
    m2 = exact_match(predictions=preds + ["Not relevant"], references=refs + ["Not relevant"])
    assert m2.f1 == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_micro_with_no_items_at_all_is_perfect_and_one_sided_is_zero():
    s = exact_match(predictions=["Not relevant"] * 2, references=["none", "N/A"], average="micro")
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    s = exact_match(predictions=["Not relevant"], references=["{left}"], average="micro")
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)


def test_repeated_predicted_items_count_once():
    # the paper's "iib,iib,iib": one item, exact -> P = R = 1
    s = exact_match(predictions=["iib,iib,iib"], references=["{IIB}"])
    assert (s.precision, s.recall) == (1.0, 1.0)
