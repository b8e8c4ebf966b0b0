"""Misspellings: exact realised rates, one real edit per word, everything else preserved."""

from __future__ import annotations

import math
import random
import re

import pytest

from cancerllm.errors import InputError
from cancerllm.robustness import (
    PAPER_MISSPELLING_RATES,
    apply_misspellings,
    eligible_words,
    expected_count,
    misspell,
    realised_rate,
)
from cancerllm.schema import PHENOTYPE_INSTRUCTION, Example, Phenotype

WORDS = (
    "the tumor is located in left right breast upper outer quadrant invasive ductal carcinoma grade stage "
    "margins negative positive receptor estrogen progesterone lymph node biopsy specimen measures a of"
).split()


def _sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 25))]
        words.insert(rng.randrange(len(words)), f"{rng.randint(1, 9)}.{rng.randint(0, 9)} cm,")
        words[0] = words[0].capitalize()
        out.append(f"({i}) " + " ".join(words) + rng.choice([".", "!", "?", " ;"]))
    return out


@pytest.mark.parametrize("rate", PAPER_MISSPELLING_RATES)
def test_realised_rate_matches_requested(rate):
    texts = _sentences(300)
    counts = [len(eligible_words(t)) for t in texts]
    total = sum(counts)
    new, changes = misspell(texts, rate=rate, seed=5)
    # whole corpus: exactly round_half_up(rate * eligible words), i.e. within half a word of the rate
    assert len(changes) == expected_count(rate, total)
    assert realised_rate(changes, texts) == len(changes) / total
    assert abs(realised_rate(changes, texts) - rate) <= 0.5 / total
    # each input: floor or ceil of rate * its eligible words
    per_input = [0] * len(texts)
    for c in changes:
        per_input[c.index] += 1
    for k, e in zip(per_input, counts, strict=True):
        assert math.floor(rate * e + 1e-9) <= k <= math.ceil(rate * e - 1e-9)
    assert sum(a != b for a, b in zip(texts, new, strict=True)) == sum(k > 0 for k in per_input)


def test_single_text_count_is_rounded_half_up():
    text = "one two three four five six seven eight nine ten"  # 10 eligible words
    assert len(misspell([text], rate=0.25, seed=0)[1]) == 3  # 2.5 -> 3
    assert len(misspell([text], rate=0.04, seed=0)[1]) == 0  # 0.4 -> 0
    # ...but the carry spreads the rate over a corpus: 5 such texts at 4% = 2 edits in all
    _, changes = misspell([text] * 5, rate=0.04, seed=0)
    assert [c.index for c in changes] == [1, 3]  # cumulative targets 0.4, 0.8->1, 1.2->1, 1.6->2, 2.0->2


def test_every_edit_is_real_and_matches_its_operation():
    texts = _sentences(200, seed=1)
    new, changes = misspell(texts, rate=0.3, seed=2)
    assert {c.operation for c in changes} == {"swap", "drop", "insert", "substitute"}
    for c in changes:
        o, r = c.original, c.replacement
        assert r != o and r.isalpha()
        assert texts[c.index][c.start : c.start + len(o)] == o
        assert eligible_words(texts[c.index])[c.word_index] == (c.start, o)
        if c.operation == "swap":
            assert len(r) == len(o) and sorted(r) == sorted(o)
            diff = [i for i in range(len(o)) if o[i] != r[i]]
            assert len(diff) == 2 and diff[1] == diff[0] + 1
        elif c.operation == "drop":
            assert len(r) == len(o) - 1 and any(o[:i] + o[i + 1 :] == r for i in range(len(o)))
        elif c.operation == "insert":
            assert len(r) == len(o) + 1 and any(r[:i] + r[i + 1 :] == o for i in range(len(r)))
        else:
            assert len(r) == len(o) and sum(a != b for a, b in zip(o, r, strict=True)) == 1
    # at most one edit per word
    assert len({(c.index, c.word_index) for c in changes}) == len(changes)


def test_whitespace_punctuation_and_numbers_preserved():
    texts = ["ER-positive,  PR negative\t(3.5 cm)...\nHER2:  equivocal!  "] + _sentences(50, seed=3)
    new, changes = misspell(texts, rate=0.5, seed=4)
    for old, cur in zip(texts, new, strict=True):
        assert re.split(r"[^\W\d_]+", old)[1:-1] == re.split(r"[^\W\d_]+", cur)[1:-1]
        assert re.findall(r"[^A-Za-z]+", old) == re.findall(r"[^A-Za-z]+", cur)


def test_changes_reproduce_the_output():
    texts = _sentences(80, seed=6)
    new, changes = misspell(texts, rate=0.08, seed=9)
    assert apply_misspellings(texts, changes) == new
    assert apply_misspellings(texts, []) == texts


def test_deterministic_given_seed_and_input_untouched():
    texts = _sentences(60)
    copy = list(texts)
    assert misspell(texts, rate=0.06, seed=1) == misspell(texts, rate=0.06, seed=1)
    assert misspell(texts, rate=0.06, seed=1)[0] != misspell(texts, rate=0.06, seed=2)[0]
    assert texts == copy


def test_hand_computed_edits():
    # swapping is the only edit of a two-letter word that keeps its letters: "ab" -> "ba"
    assert misspell(["ab, cd!"], rate=1.0, operations=("swap",))[0] == ["ba, dc!"]
    # "aa" cannot be swapped into anything different: passed over, no change
    new, changes = misspell(["aa xy"], rate=1.0, operations=("swap",))
    assert new == ["aa yx"] and [(c.word_index, c.replacement) for c in changes] == [(1, "yx")]
    # min_word_length: "a" and "of" are too short at 3
    assert [w for _, w in eligible_words("a lump of tissue", min_word_length=3)] == ["lump", "tissue"]
    new, changes = misspell(["a lump of tissue"], rate=1.0, seed=0, min_word_length=3)
    assert (
        [c.original for c in changes] == ["lump", "tissue"] and new[0].startswith("a ") and " of " in new[0]
    )
    assert misspell(["no change here"], rate=0.0) == (["no change here"], [])


def test_eligible_words():
    assert eligible_words("ER-positive, pT2 (3 cm)") == [(0, "ER"), (3, "positive"), (20, "cm")]
    assert eligible_words("Tumour größe 2x3") == [(0, "Tumour"), (7, "größe")]


def test_examples_only_context_changes():
    q = Phenotype.LATERALITY.question
    ex = Example(instruction=PHENOTYPE_INSTRUCTION, context="Left breast upper outer quadrant mass", question=q,
                 response="{Left}", id="e1", meta={"k": 1})  # fmt: skip
    (new,), changes = misspell([ex], rate=0.5, seed=0)
    assert len(changes) == 3
    assert new.context != ex.context
    assert new.model_copy(update={"context": ex.context}) == ex
    assert ex.context == "Left breast upper outer quadrant mass"


def test_official_form_keeps_prefix_and_question():
    q = Phenotype.STAGE.question
    report = "Invasive ductal carcinoma stage two"
    ex = Example(instruction=PHENOTYPE_INSTRUCTION, context=f"In the text: {report} {q}", response="{ii}")
    (new,), changes = misspell([ex], rate=1.0, seed=0)
    assert len(changes) == 5 and realised_rate(changes, [ex]) == 1.0
    assert new.context.startswith("In the text: ") and new.context.endswith(" " + q)
    assert new.context[len("In the text: ") : -len(q) - 1] != report


@pytest.mark.parametrize("rate", [-0.01, 1.01, 8, math.nan])
def test_bad_rate(rate):
    with pytest.raises(InputError, match="rate"):
        misspell(["some text"], rate=rate)


def test_bad_arguments():
    with pytest.raises(InputError, match="wrap a single one in a list"):
        misspell("some text", rate=0.1)
    with pytest.raises(InputError, match="operations must be a non-empty subset"):
        misspell(["some text"], rate=0.1, operations=("shout",))
    with pytest.raises(InputError, match="min_word_length"):
        misspell(["some text"], rate=0.1, min_word_length=0)
    with pytest.raises(InputError, match="strings or Example"):
        misspell([3], rate=0.1)
