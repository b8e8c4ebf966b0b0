"""Input handling shared by every metric: parsing, normalisation, errors, import hygiene."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cancerllm import Phenotype
from cancerllm.errors import InputError
from cancerllm.metrics import (
    bleu2,
    entity_set_prf,
    evaluate,
    exact_match,
    instance_scores,
    official_evaluate,
    rouge_l,
)
from cancerllm.metrics._core import to_items

ALL_METRICS = [evaluate, official_evaluate, exact_match, bleu2, rouge_l, entity_set_prf, instance_scores]


@pytest.mark.parametrize("fn", ALL_METRICS, ids=lambda f: f.__name__)
def test_length_mismatch_names_both_counts(fn):
    with pytest.raises(
        InputError, match=r"^Mismatch in the number of predictions \(2\) and references \(1\)"
    ):
        fn(predictions=["{pr}", "{er}"], references=["{pr}"])


@pytest.mark.parametrize("fn", ALL_METRICS, ids=lambda f: f.__name__)
def test_empty_inputs_are_refused(fn):
    with pytest.raises(InputError, match="empty"):
        fn(predictions=[], references=[])


@pytest.mark.parametrize("fn", ALL_METRICS, ids=lambda f: f.__name__)
def test_a_bare_string_instead_of_a_list_is_refused(fn):
    # "{pr}" is a sequence of 4 characters; silently scoring them would be wrong
    with pytest.raises(InputError, match="not a single string"):
        fn(predictions="{pr}", references="{pr}")


@pytest.mark.parametrize("fn", [evaluate, exact_match, entity_set_prf], ids=lambda f: f.__name__)
def test_wrong_element_types_are_refused(fn):
    with pytest.raises(InputError, match="must be a string"):
        fn(predictions=[3], references=["{pr}"])
    with pytest.raises(InputError, match="must be a string"):
        fn(predictions=[["pr", 3]], references=["{pr}"])


def test_input_error_is_a_value_error():
    with pytest.raises(ValueError):
        exact_match(predictions=["a"], references=[])


def test_unknown_average_is_refused():
    with pytest.raises(InputError, match="'macro' or 'micro'"):
        evaluate(predictions=["a"], references=["a"], average="weighted")
    with pytest.raises(InputError, match="'macro' or 'micro'"):
        entity_set_prf(predictions=["a"], references=["a"], average="samples")


def test_phenotypes_must_be_parallel():
    with pytest.raises(InputError, match=r"phenotypes \(1\) and predictions \(2\)"):
        evaluate(predictions=["a", "b"], references=["a", "b"], phenotypes=["stage"])
    with pytest.raises(InputError, match=r"phenotypes \(1\) and predictions \(2\)"):
        official_evaluate(predictions=["a", "b"], references=["a", "b"], phenotypes=[Phenotype.STAGE])


def test_to_items_parses_normalises_and_deduplicates():
    assert to_items("{PR, her2,  ER}") == ["pr", "her2", "er"]
    assert to_items("Response: {Invasive  Ductal Carcinoma}\nextra chatter") == ["invasive ductal carcinoma"]
    assert to_items("iib,iib, IIB ") == ["iib"]
    assert to_items(["Left", "left ", "Not relevant", ""]) == ["left"]
    assert to_items("Not relevant") == []
    assert to_items("{Not relevant}") == []
    assert to_items(None) == []
    # no punctuation is removed by the library's normalisation
    assert to_items("{her-2}") == ["her-2"]


def test_string_and_list_answers_score_the_same():
    a = evaluate(predictions=["{pr, ER}"], references=["{pr, her2, er}"])
    b = evaluate(predictions=[["PR", "er"]], references=[("pr", "her2", "er")])
    assert a == b


def test_import_is_light():
    code = (
        "import sys, cancerllm.metrics\n"
        "heavy = [m for m in ('torch', 'transformers', 'pandas', 'sacrebleu', 'rouge_score', 'nltk') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_numpy_arrays_are_accepted_and_sets_are_not():
    np = pytest.importorskip("numpy")
    a = exact_match(predictions=np.array(["{pr, er}", "{left}"]), references=("{pr, her2, er}", "{left}"))
    b = exact_match(predictions=["{pr, er}", "{left}"], references=["{pr, her2, er}", "{left}"])
    assert a == b
    with pytest.raises(InputError, match="sequence"):
        exact_match(predictions={"{pr}"}, references=["{pr}"])
