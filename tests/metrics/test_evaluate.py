"""evaluate(): the three metrics together, average F1, per-phenotype breakdown, micro option."""

from __future__ import annotations

import math

import pytest

from cancerllm import Phenotype, PhenotypeQuestion
from cancerllm.errors import InputError
from cancerllm.metrics import EvaluationResult, evaluate, instance_scores


def test_three_metrics_and_average_f1():
    # pred {ductal carcinoma} vs gold {invasive ductal carcinoma}
    # EM: 0
    # BLEU-2: p1 = 1, p2 = 1, BP = exp(1 - 3/2) -> 0.606531
    # ROUGE-L: LCS 2, P = 2/2, R = 2/3, F = 0.8
    # average F1 = (0 + 0.606531 + 0.8) / 3 = 0.468844
    r = evaluate(predictions=["{ductal carcinoma}"], references=["{invasive ductal carcinoma}"])
    assert isinstance(r, EvaluationResult) and r.variant == "library" and r.n == 1
    assert r.exact_match.f1 == 0.0
    assert r.bleu2.f1 == pytest.approx(math.exp(-0.5))
    assert r.rouge_l.f1 == pytest.approx(0.8)
    assert r.average_f1 == pytest.approx((math.exp(-0.5) + 0.8) / 3)
    assert r.metric("BLEU-2") is r.bleu2 and r.metric("rouge_l") is r.rouge_l
    with pytest.raises(InputError, match="unknown metric"):
        r.metric("meteor")


def test_per_phenotype_breakdown():
    preds = ["{pr, er}", "{left}", "{pr}", "{right}"]
    refs = ["{pr, her2, er}", "{left}", "{pr}", "{left}"]
    names = ["receptors", Phenotype.LATERALITY, PhenotypeQuestion.builtin("receptors"), "laterality"]
    r = evaluate(predictions=preds, references=refs, phenotypes=names)
    assert list(r.per_phenotype) == ["receptors", "laterality"]  # first-seen order
    rec, lat = r.per_phenotype["receptors"], r.per_phenotype["laterality"]
    assert (rec.n, lat.n) == (2, 2)
    # receptors: instance F1s 0.8 and 1 -> 0.9; laterality: 1 and 0 -> 0.5
    assert rec.exact_match.f1 == pytest.approx(0.9)
    assert lat.exact_match.f1 == pytest.approx(0.5)
    assert r.exact_match.f1 == pytest.approx((0.8 + 1 + 1 + 0) / 4)
    assert rec.per_phenotype == {} and r.per_phenotype["receptors"].variant == "library"


def test_micro_average():
    # EM as in test_exact_match: P 2/3, R 1/2, F1 4/7
    r = evaluate(predictions=["{a, b}", "{c}"], references=["{a}", "{c, d, e}"], average="micro")
    assert r.average == "micro"
    assert (r.exact_match.precision, r.exact_match.recall, r.exact_match.f1) == (
        pytest.approx(2 / 3),
        pytest.approx(0.5),
        pytest.approx(4 / 7),
    )


def test_not_relevant_pairs_are_perfect_for_all_metrics():
    r = evaluate(predictions=["Not relevant", None], references=["not relevant", "{Not relevant}"])
    for s in (r.exact_match, r.bleu2, r.rouge_l):
        assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    assert r.average_f1 == 1.0


def test_instance_scores():
    got = instance_scores(predictions=["{pr, er}", "{er}"], references=["{pr, her2, er}", "{pr}"])
    assert [(s.precision, round(s.recall, 4), round(s.f1, 4)) for s in got] == [
        (1.0, 0.6667, 0.8),
        (0.0, 0.0, 0.0),
    ]
    with pytest.raises(InputError, match="unknown metric"):
        instance_scores(predictions=["a"], references=["a"], metric="bleu4")
