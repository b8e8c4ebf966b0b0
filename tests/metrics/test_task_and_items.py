"""``task="diagnosis"`` (free text scored whole) and the item-level functions' input checks."""

from __future__ import annotations

import pytest

from cancerllm.errors import InputError
from cancerllm.metrics import (
    bleu2,
    bleu2_item,
    entity_set_prf,
    evaluate,
    exact_match,
    exact_match_item,
    instance_scores,
    normalize_item,
    official_normalize,
    rouge_l,
    rouge_l_item,
)
from cancerllm.metrics.official import official_bleu2_item, official_exact_match_item, official_rouge_item

DX_PRED = ["Infiltrating ductal carcinoma, breast, upper outer quadrant\nwith lymphovascular invasion",
           "", "Adenocarcinoma, lung", None]
DX_GOLD = ["infiltrating ductal carcinoma, breast, upper outer quadrant with lymphovascular invasion",
           "Squamous cell carcinoma, lung", "adenocarcinoma of the lung", "Not relevant"]


def test_diagnosis_task_scores_each_text_as_one_item():
    r = evaluate(predictions=DX_PRED, references=DX_GOLD, task="diagnosis")
    # EM per instance: 1 (same text once whitespace is collapsed), 0 (no prediction), 0, 1 (both empty)
    assert (r.exact_match.precision, r.exact_match.recall, r.exact_match.f1) == (0.5, 0.5, 0.5)
    # ROUGE-L of instance 3: LCS("adenocarcinoma lung", "adenocarcinoma of the lung") = 2 -> P 1, R 1/2, F 2/3
    assert r.rouge_l.f1 == pytest.approx((1 + 0 + 2 / 3 + 1) / 4)
    per = instance_scores(predictions=DX_PRED, references=DX_GOLD, metric="rouge_l", task="diagnosis")
    assert [round(s.f1, 6) for s in per] == [1.0, 0.0, round(2 / 3, 6), 1.0]


def test_phenotype_task_would_split_and_cut_the_same_texts():
    # the default parses answers: the first text is cut at its line break and split on commas
    r = evaluate(predictions=DX_PRED[:1], references=DX_GOLD[:1])
    assert r.exact_match.f1 < 1.0
    assert evaluate(predictions=DX_PRED[:1], references=DX_GOLD[:1], task="diagnosis").exact_match.f1 == 1.0


def test_diagnosis_task_is_the_benchmarks_whole_text_wrapping():
    # the benchmark scores diagnoses as one-item lists ([text], None for no text); task="diagnosis" is the same
    wrapped = evaluate(predictions=[[t] if t else None for t in DX_PRED], references=[[g] for g in DX_GOLD])
    whole = evaluate(predictions=DX_PRED, references=DX_GOLD, task="diagnosis")
    assert whole.model_dump() == wrapped.model_dump()


def test_every_set_metric_takes_the_task():
    preds, golds = ["ductal carcinoma, left\nbreast"], ["Ductal carcinoma, left breast"]
    for fn in (exact_match, bleu2, rouge_l):
        assert fn(predictions=preds, references=golds, task="diagnosis").f1 == 1.0
        assert fn(predictions=preds, references=golds).f1 < 1.0
    s = entity_set_prf(predictions=preds, references=golds, task="diagnosis")
    assert (s.tp, s.fp, s.fn) == (1, 0, 0)
    assert entity_set_prf(predictions=preds, references=golds).tp == 1  # "ductal carcinoma" only


@pytest.mark.parametrize("fn", [evaluate, exact_match, entity_set_prf, instance_scores], ids=lambda f: f.__name__)
def test_unknown_task_is_refused(fn):
    with pytest.raises(InputError, match="unknown task 'icd'; use 'phenotype'"):
        fn(predictions=["a"], references=["a"], task="icd")


ITEM_FUNCTIONS = [exact_match_item, bleu2_item, rouge_l_item, official_exact_match_item, official_bleu2_item,
                  official_rouge_item]


@pytest.mark.parametrize("fn", ITEM_FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("side", ["prediction", "reference"])
@pytest.mark.parametrize("value", [None, 3, ["pr"]])
def test_item_scores_refuse_non_strings_with_input_error(fn, side, value):
    kwargs = {"prediction": "pr", "reference": "pr", side: value}
    with pytest.raises(InputError, match=rf"^{side} must be a string \(one answer item\), got {type(value).__name__}"):
        fn(**kwargs)


def test_normalisers_refuse_none():
    with pytest.raises(InputError, match="must be a string"):
        normalize_item(None)
    with pytest.raises(InputError, match="must be a string"):
        official_normalize(None)
