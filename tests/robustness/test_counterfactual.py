"""Counterfactual label noise: exact rates, accurate change records, determinism."""

from __future__ import annotations

import math
import random
import re

import pytest

from cancerllm.data import bio_to_examples
from cancerllm.errors import InputError
from cancerllm.prompts import parse_answer
from cancerllm.robustness import (
    BUILTIN_VOCABULARY,
    PAPER_COUNTERFACTUAL_RATES,
    apply_label_changes,
    counterfactual_labels,
    expected_count,
)
from cancerllm.schema import DIAGNOSIS_INSTRUCTION, PHENOTYPE_INSTRUCTION, Example, Phenotype

PHENOTYPES = list(Phenotype)


def _corpus(n: int, seed: int = 0) -> list[Example]:
    """Phenotype examples whose answer occurs in the context (about one in five is "Not relevant")."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ph = PHENOTYPES[i % len(PHENOTYPES)]
        value = rng.choice(BUILTIN_VOCABULARY[ph.value])
        relevant = rng.random() > 0.2
        context = f"Report {i}: " + (f"the finding is {value}." if relevant else "no such finding.")
        out.append(
            Example(
                instruction=PHENOTYPE_INSTRUCTION,
                context=context,
                question=ph.question,
                response="{" + value + "}" if relevant else "Not relevant",
                id=f"ex{i}",
                meta={"phenotype": ph.value},
            )
        )
    return out


def _occurs(item: str, text: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(item) + r"(?!\w)", text, re.I) is not None


@pytest.mark.parametrize("rate", PAPER_COUNTERFACTUAL_RATES)
@pytest.mark.parametrize("strategy", ["mixed", "absent_entity", "wrong_type"])
def test_realised_rate_matches_requested(rate, strategy):
    exs = _corpus(103)
    new, changes = counterfactual_labels(exs, rate=rate, seed=7, strategy=strategy)
    # exactly round_half_up(rate * n) examples change: 103 * 0.2 = 20.6 -> 21, 41.2 -> 41, 61.8 -> 62, 82.4 -> 82
    assert len(changes) == {0.2: 21, 0.4: 41, 0.6: 62, 0.8: 82}[rate] == expected_count(rate, 103)
    changed = [i for i, (a, b) in enumerate(zip(exs, new, strict=True)) if a.response != b.response]
    assert changed == [c.index for c in changes]
    assert abs(len(changed) / len(exs) - rate) <= 0.5 / len(exs)


def test_expected_count_rounds_half_up_on_the_written_decimal():
    assert expected_count(0.25, 10) == 3  # 2.5 -> 3 (Python's round would give 2)
    assert expected_count(0.2, 15) == 3
    assert expected_count(0.6, 5) == 3  # 0.6 * 5 is 3.0000000000000004 in floats
    assert expected_count(0.285, 100) == 29  # 28.499999999999996 in floats, 28.5 as written
    assert expected_count(0.0, 10) == 0 and expected_count(1.0, 10) == 10


def test_changes_are_accurate_and_input_untouched():
    exs = _corpus(40)
    before = [e.model_copy(deep=True) for e in exs]
    new, changes = counterfactual_labels(exs, rate=0.6, seed=1)
    assert exs == before
    assert apply_label_changes(exs, changes) == new
    by_index = {c.index: c for c in changes}
    for i, (old, cur) in enumerate(zip(exs, new, strict=True)):
        if i in by_index:
            c = by_index[i]
            assert (c.id, c.original, c.replacement, c.phenotype) == (
                old.id,
                old.response,
                cur.response,
                old.meta["phenotype"],
            )
            assert c.replacement != c.original
            assert {x.lower() for x in parse_answer(c.replacement)}.isdisjoint(
                x.lower() for x in parse_answer(c.original)
            )
            assert cur.model_copy(update={"response": old.response}) == old  # nothing else changed
        else:
            assert cur == old


def test_absent_entity_answers_are_not_in_the_context():
    exs = _corpus(64)
    _, changes = counterfactual_labels(exs, rate=1.0, seed=3, strategy="absent_entity")
    assert len(changes) == 64
    for c in changes:
        assert c.kind == "absent_entity"
        (item,) = parse_answer(c.replacement)
        assert not _occurs(item, exs[c.index].context)
        same_type = {v.lower() for v in BUILTIN_VOCABULARY[c.phenotype]}
        assert item.lower() in same_type


def test_wrong_type_answers_come_from_another_phenotype():
    exs = _corpus(64)
    _, changes = counterfactual_labels(exs, rate=1.0, seed=3, strategy="wrong_type")
    for c in changes:
        assert c.kind == "wrong_type"
        (item,) = parse_answer(c.replacement)
        assert item.lower() not in {v.lower() for v in BUILTIN_VOCABULARY[c.phenotype]}
        assert any(
            item.lower() in {v.lower() for v in vals}
            for k, vals in BUILTIN_VOCABULARY.items()
            if k != c.phenotype
        )


def test_absent_entity_hand_computed():
    exs = [
        Example(instruction=PHENOTYPE_INSTRUCTION, context="Left breast mass.", question=Phenotype.LATERALITY.question,
                response="{Left}", meta={"phenotype": "laterality"}),
        Example(instruction=PHENOTYPE_INSTRUCTION, context="Right breast mass.", question=Phenotype.LATERALITY.question,
                response="{Right}", meta={"phenotype": "laterality"}),
    ]  # fmt: skip
    for seed in range(5):
        new, (change,) = counterfactual_labels(exs, rate=0.5, seed=seed, strategy="absent_entity")
        # the only other laterality value in the data, absent from the context, is the other side
        assert change.replacement == ("{Right}" if change.index == 0 else "{Left}")
        assert new[change.index].response == change.replacement


def test_wrong_type_prefers_other_entities_of_the_same_context():
    lines = ["Left B-laterality", "breast B-tumor_site", "grade B-grade", "2 I-grade"]
    exs = bio_to_examples(lines, negatives=False)  # laterality, tumor_location, grade
    new, changes = counterfactual_labels(exs, rate=1.0, seed=0, strategy="wrong_type")
    for c in changes:
        others = {"laterality": "{Left}", "tumor_location": "{breast}", "grade": "{grade 2}"}
        del others[c.phenotype]
        assert c.replacement in others.values()


def test_phenotype_found_from_question_or_official_context():
    q = Phenotype.GRADE.question
    plain = Example(
        instruction=PHENOTYPE_INSTRUCTION, context="Grade 3 tumour.", question=q, response="{Grade 3}"
    )
    official = Example(
        instruction=PHENOTYPE_INSTRUCTION, context=f"In the text: Grade 3 tumour. {q}", response="{3}"
    )
    _, changes = counterfactual_labels([plain, official], rate=1.0, seed=0, strategy="absent_entity")
    assert [c.phenotype for c in changes] == ["grade", "grade"]


def test_diagnosis_examples_get_another_diagnosis():
    exs = [
        Example(instruction=DIAGNOSIS_INSTRUCTION, context="Lung lobectomy with adenocarcinoma.", response="Lung Adenocarcinoma"),
        Example(instruction=DIAGNOSIS_INSTRUCTION, context="Colectomy.", response="Colon Adenocarcinoma, Sigmoid Colon"),
    ]  # fmt: skip
    new, changes = counterfactual_labels(exs, rate=1.0, seed=0, strategy="absent_entity")
    assert [c.phenotype for c in changes] == ["diagnosis", "diagnosis"]
    assert new[0].response == "Colon Adenocarcinoma, Sigmoid Colon"  # the other example's diagnosis, verbatim
    assert new[1].response != exs[1].response


def test_deterministic_given_seed():
    exs = _corpus(50)
    a = counterfactual_labels(exs, rate=0.4, seed=11)
    b = counterfactual_labels(exs, rate=0.4, seed=11)
    c = counterfactual_labels(exs, rate=0.4, seed=12)
    assert a == b
    assert [x.index for x in a[1]] != [x.index for x in c[1]]


def test_vocabulary_override():
    exs = _corpus(16)
    vocab = {p.value: [f"custom {p.value} value"] for p in Phenotype}
    _, changes = counterfactual_labels(exs, rate=1.0, seed=0, strategy="absent_entity", vocabulary=vocab)
    assert all(c.replacement == f"{{custom {c.phenotype} value}}" for c in changes)


@pytest.mark.parametrize("rate", [-0.1, 1.5, 20, math.nan, "0.2", True])
def test_bad_rate(rate):
    with pytest.raises(InputError, match="rate"):
        counterfactual_labels(_corpus(4), rate=rate)


def test_bad_arguments():
    with pytest.raises(InputError, match="did you mean 0.2"):
        counterfactual_labels(_corpus(4), rate=20)
    with pytest.raises(InputError, match="unknown strategy 'random'"):
        counterfactual_labels(_corpus(4), rate=0.2, strategy="random")
    with pytest.raises(InputError, match="Example objects"):
        counterfactual_labels(["text"], rate=0.2)
    assert counterfactual_labels([], rate=0.5) == ([], [])
