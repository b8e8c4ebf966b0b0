"""The reproduction of the official CancerLLM evaluation code, checked against hand-worked values."""

from __future__ import annotations

import pytest

from cancerllm.metrics import official_evaluate, official_normalize
from cancerllm.metrics.official import (
    official_exact_match_item,
    official_rouge_item,
    official_split,
)

BETA2 = 1.2**2  # 1.44


def _em(**kw):
    r = official_evaluate(**kw)
    return r.exact_match.precision, r.exact_match.recall, r.exact_match.f1


# ------------------------------------------------------------------------------------ normalisation
def test_stemming_and_punctuation_deletion():
    assert official_normalize("tumors") == "tumor"
    assert official_normalize("her-2") == "her2"  # punctuation deleted, no space put in
    assert official_normalize("  HER-2  Positive   Tumors. ") == "her2 posit tumor"
    assert official_normalize("Tumor's size.") == "tumor size"
    assert official_normalize("HER-2 Positive", stem=False) == "her2 positive"


def test_no_stop_word_or_article_removal():
    assert official_normalize("the tumors are a mass") == "the tumor are a mass"


def test_stemmer_is_nltk_extensions_mode():
    # NLTK_EXTENSIONS (the official porter.py's default): irregular forms, short words untouched.
    # ORIGINAL_ALGORITHM would give "ly", "di", "a"; MARTIN_EXTENSIONS "ly", "di", "as".
    assert official_normalize("lying dies as") == "lie die as"


def test_non_ascii_punctuation_is_kept():
    assert official_normalize("≥2 cm") == "≥2 cm"


def test_split_drops_quotes_and_braces_and_splits_on_commas():
    assert official_split("{'pr', \"her2\" , er}") == ["pr", "her2", "er"]
    assert official_split("Not relevant") == ["Not relevant"]
    assert official_split("a,,b") == ["a", "", "b"]  # empty pieces are kept, as in the official code


# ------------------------------------------------------------------------------------- item scores
def test_exact_match_item_compares_stems():
    assert official_exact_match_item(prediction="Tumors", reference="tumor") == 1.0
    assert official_exact_match_item(prediction="HER-2", reference="her2") == 1.0
    assert official_exact_match_item(prediction="pr", reference="er") == 0.0


def test_rouge_is_unigram_set_f_at_beta_1_2():
    # C = {invas, ductal, carcinoma}, G = {ductal, carcinoma}; overlap 2
    # prec = 2/3, rec = 2/2 = 1
    # F = (1 + 1.44) * (2/3) * 1 / (1 + 1.44 * 2/3) = 1.626667 / 1.96 = 0.829932
    got = official_rouge_item(prediction="invasive ductal carcinoma", reference="ductal carcinoma")
    assert got == pytest.approx((1 + BETA2) * (2 / 3) / (1 + BETA2 * 2 / 3))
    assert got == pytest.approx(0.829932, abs=1e-6)


def test_rouge_ignores_order_and_repeats_unlike_rouge_l():
    assert official_rouge_item(prediction="carcinoma ductal", reference="ductal carcinoma") == 1.0
    assert official_rouge_item(prediction="left left", reference="left") == 1.0
    assert official_rouge_item(prediction="right", reference="left") == 0.0


# ---------------------------------------------------------------------------------------- instances
def test_gold_is_not_split_by_default():
    # gold "{pr, her2, er}" is one item: "pr her2 er"; predictions "pr", "er"
    # EM: no predicted item equals "pr her2 er" -> P = R = F1 = 0
    assert _em(predictions=["{pr, er}"], references=["{pr, her2, er}"]) == (0.0, 0.0, 0.0)
    # ROUGE: "pr" vs "pr her2 er": prec 1, rec 1/3 -> F = 2.44 * 1/3 / (1/3 + 1.44) = 0.458647 (same for "er")
    # P = mean(0.458647, 0.458647); R = best over predictions for the single gold item; F1 = same
    r = official_evaluate(predictions=["{pr, er}"], references=["{pr, her2, er}"])
    f = (1 + BETA2) * (1 / 3) / (1 / 3 + BETA2)
    assert f == pytest.approx(0.458647, abs=1e-6)
    assert (r.rouge_l.precision, r.rouge_l.recall, r.rouge_l.f1) == (
        pytest.approx(f),
        pytest.approx(f),
        pytest.approx(f),
    )


def test_split_gold_option():
    # gold split into pr, her2, er: P = 2/2, R = 2/3, F1 = 0.8
    p, r, f = _em(predictions=["{pr, er}"], references=["{pr, her2, er}"], split_gold=True)
    assert (p, r, f) == (1.0, pytest.approx(2 / 3), pytest.approx(0.8))


def test_not_relevant_is_an_ordinary_string():
    assert _em(predictions=["Not relevant"], references=["Not relevant"]) == (1.0, 1.0, 1.0)
    assert _em(predictions=["Not relevant"], references=["left"]) == (0.0, 0.0, 0.0)


def test_empty_instance_rules():
    assert _em(predictions=[[]], references=[[]]) == (1.0, 1.0, 1.0)
    assert _em(predictions=[["left"]], references=[[]]) == (0.0, 1.0, 0.0)  # no gold
    assert _em(predictions=[[]], references=["left"]) == (1.0, 0.0, 0.0)  # no prediction
    assert _em(predictions=[None], references=["left"]) == (1.0, 0.0, 0.0)
    # an empty string still splits into one (empty) item, which scores 0 against a gold item
    assert _em(predictions=[""], references=["left"]) == (0.0, 0.0, 0.0)
    # the OpenPI leftover: a lone "there will be no change..." prediction is no prediction
    assert _em(predictions=["There will be no change."], references=["left"]) == (1.0, 0.0, 0.0)


def test_predictions_are_deduplicated_on_raw_text_gold_items_are_not():
    # predictions pr, pr, ki67 -> set {pr, ki67}: P = (1 + 0)/2 = 1/2 (3 items would give 2/3)
    p, _, _ = _em(predictions=["pr, pr, ki67"], references=["pr"])
    assert p == pytest.approx(0.5)
    # "PR" and "pr" are different raw strings: both kept, both match -> P = 1
    p, _, _ = _em(predictions=["PR, pr"], references=["pr"])
    assert p == 1.0
    # gold items pr, pr, er (a list, used as is): R = (1 + 1 + 0)/3 = 2/3 (deduplicated it would be 1/2)
    _, r, _ = _em(predictions=["pr"], references=[["pr", "pr", "er"]])
    assert r == pytest.approx(2 / 3)


def test_space_dot_is_removed_from_the_first_gold_item_only():
    # "her .2" -> replace(" .", "") -> "her2" matches; without it, "her .2" -> "her 2" would not
    assert _em(predictions=["her2"], references=["her .2"]) == (1.0, 1.0, 1.0)
    # only the first gold item ("x") is touched; "her .2" stays and normalises to "her 2": P = R = 0
    p, r, _ = _em(predictions=["her2"], references=[["x", "her .2"]])
    assert (p, r) == (0.0, 0.0)


def test_reported_f1_is_the_mean_of_instance_f1s():
    # (1) pred pr vs gold {pr, er}:          P = 1,   R = 1/2, F1 = 2/3
    # (2) pred pr, er, x, y vs gold {pr}:    P = 1/4, R = 1,   F1 = 2 * 1/4 / (5/4) = 0.4
    # means: P = 0.625, R = 0.75, F1 = (2/3 + 0.4)/2 = 0.533333 (harmonic mean of P and R: 0.6818)
    p, r, f = _em(predictions=["pr", "pr, er, x, y"], references=["{pr, er}", "{pr}"], split_gold=True)
    assert (p, r, f) == (pytest.approx(0.625), pytest.approx(0.75), pytest.approx(1.6 / 3))


def test_result_is_marked_official_and_averages_three_f1s():
    r = official_evaluate(predictions=["invasive ductal carcinoma"], references=["ductal carcinoma"])
    assert r.variant == "official" and r.average == "macro"
    # EM 0; BLEU-2: hyp 3 words vs ref 2: p1 = 2/3, p2 = 1/2, BP = 1 -> sqrt(1/3); ROUGE 0.829932
    assert r.exact_match.f1 == 0.0
    assert r.bleu2.f1 == pytest.approx((1 / 3) ** 0.5, rel=1e-8)
    assert r.rouge_l.f1 == pytest.approx(0.829932, abs=1e-6)
    assert r.average_f1 == pytest.approx((0.0 + (1 / 3) ** 0.5 + 0.829932) / 3, abs=1e-6)


# ------------------------------------------------------------------------------ the "answer:" step
def test_split_keeps_the_text_between_the_first_and_second_answer_marker():
    # Evaluation/1_make_standard_output_for_*.py: quotes and braces deleted, then Q.split("answer:")[1]
    assert official_split("{'answer': 'pr, her2'}") == ["pr", "her2"]
    assert official_split("### Response: answer: left, right answer: ignored, too") == ["left", "right"]
    assert official_split('{"answer": "iib"} chatter') == ["iib chatter"]  # everything after the marker counts
    assert official_split("answer:") == [""]
    # the marker is literal and case-sensitive: "Answer:" is not it, and the whole string is split
    assert official_split("Answer: pr, er") == ["Answer: pr", "er"]


def test_raw_outputs_with_the_marker_score_like_their_answer_part():
    raw = ["Below is an instruction ... ### Response: {'answer': 'pr, er'}", "{'answer': 'left'}"]
    golds = ["pr", "left"]
    a = official_evaluate(predictions=raw, references=golds)
    b = official_evaluate(predictions=[["pr", "er"], ["left"]], references=golds)
    assert a.model_dump() == b.model_dump()
    assert a.exact_match.precision == pytest.approx((0.5 + 1) / 2) and a.exact_match.recall == 1.0
    # without the step the prompt text before the marker would be an item: recall would be the same but
    # precision lower, so the marker step is what makes these numbers
    no_step = official_evaluate(predictions=[["Below is an instruction ... ### Response: pr", "er"], ["left"]],
                                references=golds)
    assert no_step.exact_match.precision < a.exact_match.precision


def test_split_gold_does_not_apply_the_answer_step():
    r = official_evaluate(predictions=[["x"]], references=["answer: a, x"], split_gold=True)
    assert r.exact_match.recall == 0.5  # gold items "answer: a" and "x"
