"""BLEU-2: the sacrebleu path (library) and the pycocoevalcap path (official), worked out by hand."""

from __future__ import annotations

import math

import pytest

from cancerllm.metrics import bleu2, bleu2_item
from cancerllm.metrics.official import official_bleu2_item


# ------------------------------------------------------------------ sacrebleu (library) item scores
def test_sacrebleu_exp_smoothing_of_a_zero_bigram_precision():
    # hyp "invasive ductal carcinoma", ref "invasive lobular carcinoma"
    # unigrams: invasive, ductal, carcinoma -> clipped matches 2 of 3: p1 = 2/3
    # bigrams: "invasive ductal", "ductal carcinoma" -> 0 of 2 matched; 'exp' smoothing: p2 = 1 / (2 * 2) = 1/4
    # lengths 3 = 3 -> BP = 1;  BLEU-2 = sqrt(2/3 * 1/4) = sqrt(1/6)
    got = bleu2_item(prediction="invasive ductal carcinoma", reference="invasive lobular carcinoma")
    assert got == pytest.approx(math.sqrt(1 / 6))  # 0.408248


def test_sacrebleu_brevity_penalty():
    # hyp "ductal carcinoma" (2 words), ref "invasive ductal carcinoma" (3 words)
    # p1 = 2/2, p2 = 1/1; BP = exp(1 - 3/2) = exp(-0.5) = 0.606531
    got = bleu2_item(prediction="ductal carcinoma", reference="invasive ductal carcinoma")
    assert got == pytest.approx(math.exp(-0.5))


def test_sacrebleu_clips_repeated_unigrams_and_bigrams():
    # hyp "carcinoma carcinoma carcinoma", ref "carcinoma carcinoma"
    # unigram "carcinoma": hyp 3, ref 2 -> clipped 2 of 3: p1 = 2/3
    # bigram "carcinoma carcinoma": hyp 2, ref 1 -> clipped 1 of 2: p2 = 1/2
    # hyp longer than ref -> BP = 1;  BLEU-2 = sqrt(1/3)
    got = bleu2_item(prediction="carcinoma carcinoma carcinoma", reference="carcinoma carcinoma")
    assert got == pytest.approx(math.sqrt(1 / 3))


def test_sacrebleu_effective_order_for_one_word_items():
    # "left" vs "Left": one unigram, no bigram -> effective order 1: BLEU = p1 = 1
    assert bleu2_item(prediction="left", reference="Left") == pytest.approx(1.0)
    # "left breast" vs "left": p1 = 1/2; bigram "left breast" 0 of 1 -> exp smoothing p2 = 1/(2*1) = 1/2
    # BP = 1 (hyp longer) -> sqrt(1/2 * 1/2) = 1/2
    assert bleu2_item(prediction="left breast", reference="left") == pytest.approx(0.5)
    # nothing in common -> 0
    assert bleu2_item(prediction="right", reference="left") == 0.0


def test_set_level_bleu2():
    # pred {ductal carcinoma, left} vs gold {invasive ductal carcinoma}
    # pair scores: (ductal carcinoma, idc) = exp(-0.5) = 0.606531; (left, idc) = 0
    # P = (0.606531 + 0) / 2 = 0.303265;  R = max(0.606531, 0) = 0.606531
    # F1 = 2PR/(P+R) with P = R/2 -> R/1.5 = 0.404354
    s = bleu2(predictions=["{ductal carcinoma, left}"], references=["{invasive ductal carcinoma}"])
    r = math.exp(-0.5)
    assert s.precision == pytest.approx(r / 2)
    assert s.recall == pytest.approx(r)
    assert s.f1 == pytest.approx(r / 1.5)


def test_recall_keeps_prediction_as_hypothesis():
    # pred "invasive ductal carcinoma" vs gold "ductal carcinoma": always bleu(pred | ref=gold)
    # p1 = 2/3 (invasive unmatched), p2 = 1/2 ("invasive ductal" unmatched), BP = 1 -> sqrt(1/3) = 0.57735
    # (swapping hypothesis and reference would give exp(-0.5) = 0.6065 instead)
    s = bleu2(predictions=["{invasive ductal carcinoma}"], references=["{ductal carcinoma}"])
    assert s.precision == pytest.approx(math.sqrt(1 / 3))
    assert s.recall == pytest.approx(math.sqrt(1 / 3))


# -------------------------------------------------------------- pycocoevalcap (official) item scores
def test_pycoco_brevity_penalty_closest_reference():
    # stems: ductal carcinoma | invas ductal carcinoma
    # (c1 + 1e-15)/(g1 + 1e-9) = (2 + 1e-15)/(2 + 1e-9) ~ 1; (1 + 1e-15)/(1 + 1e-9) ~ 1
    # ratio = 2/3 < 1 -> BP = exp(1 - 3/2) = exp(-0.5)
    got = official_bleu2_item(prediction="ductal carcinoma", reference="invasive ductal carcinoma")
    assert got == pytest.approx(math.exp(-0.5), rel=1e-8)


def test_pycoco_has_no_effective_order_so_one_word_items_score_about_0_001():
    # "left" vs "left": c = [1, 0], g = [1, 0]
    # BLEU-2 = sqrt((1 + 1e-15)/(1 + 1e-9) * (0 + 1e-15)/(0 + 1e-9)) = sqrt(1e-6) = 0.001
    got = official_bleu2_item(prediction="Left", reference="left")
    assert got == pytest.approx(1e-3, rel=1e-8)


def test_pycoco_zero_bigram_precision_is_not_smoothed():
    # c = [2, 0], g = [3, 2] -> sqrt(2/3 * 1e-15/2) = sqrt(1/3 * 1e-15) = 1.8257e-8
    got = official_bleu2_item(prediction="invasive ductal carcinoma", reference="invasive lobular carcinoma")
    assert got == pytest.approx(math.sqrt(1e-15 / 3), rel=1e-6)


def test_pycoco_clipping():
    # same counts as the sacrebleu clipping case: c = [2, 1], g = [3, 2], BP = 1 -> sqrt(2/3 * 1/2)
    got = official_bleu2_item(prediction="carcinoma carcinoma carcinoma", reference="carcinoma carcinoma")
    assert got == pytest.approx(math.sqrt(1 / 3), rel=1e-8)
