"""ROUGE-L (rouge-score) against hand-computed LCS values."""

from __future__ import annotations

import pytest

from cancerllm.metrics import rouge_l, rouge_l_item


def test_lcs_of_reordered_words():
    # pred: ductal carcinoma invasive; ref: invasive ductal carcinoma
    # LCS = "ductal carcinoma" = 2 -> P = 2/3, R = 2/3, F = 2/3
    got = rouge_l_item(prediction="ductal carcinoma invasive", reference="invasive ductal carcinoma")
    assert got == pytest.approx(2 / 3)


def test_lcs_with_unequal_lengths():
    # pred: left breast upper outer quadrant (5); ref: upper outer quadrant (3)
    # LCS = 3 -> P = 3/5, R = 3/3, F = 2 * 0.6 * 1 / 1.6 = 0.75
    got = rouge_l_item(prediction="left breast upper outer quadrant", reference="upper outer quadrant")
    assert got == pytest.approx(0.75)


def test_tokenizer_splits_on_non_alphanumerics():
    # rouge-score tokens: "her-2" -> [her, 2]; "her2" -> [her2]: LCS 0
    assert rouge_l_item(prediction="her-2", reference="her2") == 0.0
    # "ER+" -> [er]; "er" -> [er]: identical
    assert rouge_l_item(prediction="ER+", reference="er") == pytest.approx(1.0)


def test_set_level_rouge_l():
    # pred {left breast, right} vs gold {left}
    # (left breast, left): LCS 1, P = 1/2, R = 1, F = 2/3;  (right, left): 0
    # P = (2/3 + 0)/2 = 1/3;  R = max(2/3, 0) = 2/3;  F1 = 2 * 1/3 * 2/3 / 1 = 4/9
    s = rouge_l(predictions=["{left breast, right}"], references=["{left}"])
    assert s.precision == pytest.approx(1 / 3)
    assert s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(4 / 9)
