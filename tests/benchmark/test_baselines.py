"""The most-frequent fill: learned per cancer type from training labels, filling only what an extractor left empty."""

from __future__ import annotations

import pickle

import pytest

from cancerllm.benchmark import RuleBasedExtractor
from cancerllm.benchmark.baselines import FILL_MARK, FilledExtractor, MostFrequentFill
from cancerllm.errors import InputError
from cancerllm.prompts import parse_answer
from cancerllm.schema import AnswerDetail, ItemDetail, PhenotypeResult


def _rec(i: int, ctype: str, **labels: str | None) -> dict:
    return {"patient_id": f"TCGA-FI-{i:04d}", "cancer_type": ctype, "text": "report", "labels": labels}


@pytest.fixture(scope="module")
def fill() -> MostFrequentFill:
    recs = [
        # breast: right x2, left x1; ER positive x2; HER2 negative; stage pT2 N0 M0 / Stage IIA mostly
        _rec(0, "BRCA", laterality="Right", ER="Positive", PR="Negative", HER2="Negative",
             pT="T2", pN="N0", pM="M0", stage="Stage IIA", histology="Infiltrating Ductal Carcinoma"),
        _rec(1, "BRCA", laterality="Right", ER="Positive", PR="Positive", HER2="Negative",
             pT="T2a", pN="N1a", pM="M0", stage="Stage IIB", histology="Infiltrating Ductal Carcinoma"),
        _rec(2, "BRCA", laterality="Left", ER="Negative", PR="Negative", pT="T1c", pN="N0 (i-)", pM="MX",
             stage="Stage IIA", histology="Infiltrating Lobular Carcinoma"),
        # thyroid: left lobe x2 (two spellings of one value), right lobe x1; no receptors
        _rec(3, "THCA", laterality="Left lobe", pT="T3", tumor_size="2.5", grade=None),
        _rec(4, "THCA", laterality="Left", pT="T3", tumor_size="2.5"),
        _rec(5, "THCA", laterality="Left lobe", pT="T1b", tumor_size="1.0"),
        _rec(6, "THCA", laterality="Right lobe", pT="T2"),
        # kidney: grades; the only type with a grade
        _rec(7, "KIRC", grade="G2", laterality="Left"),
        _rec(8, "KIRC", grade="G3", laterality="Left"),
        _rec(9, "KIRC", grade="G3", laterality="Right"),
    ]
    return MostFrequentFill.from_records(recs)


def test_learns_per_type_values(fill: MostFrequentFill) -> None:
    assert fill.value("laterality", "BRCA") == "Right"
    assert fill.value("laterality", "thca") == "Left lobe"  # "Left lobe" and "Left" count as one value
    assert fill.value("T", "BRCA") == "T2"  # T2 and T2a are both category T2
    assert fill.value("N", "BRCA") == "N0"  # N0 and "N0 (i-)"
    assert fill.value("M", "BRCA") == "M0"
    assert fill.value("stage_group", "BRCA") == "Stage IIA"
    assert fill.value("T", "THCA") == "T3"
    assert fill.value("er", "BRCA") == "positive" and fill.value("her2", "BRCA") == "negative"
    assert fill.value("receptors", "BRCA") == ["er", "pr", "her2"]
    assert fill.value("tumor_size", "THCA") == "2.5"
    assert fill.value("histological_type", "BRCA") == "Infiltrating Ductal Carcinoma"


def test_falls_back_to_all_types(fill: MostFrequentFill) -> None:
    assert fill.value("grade", "KIRC") == "G3"
    assert fill.value("grade", "LUAD") == "G3"  # no LUAD grade: over all types
    assert fill.value("laterality", "LUAD") == "Left"  # Left x6 (lobe spellings included), Right x4
    assert fill.value("er", "THCA") is None  # receptors only for the receptor cancer types
    assert fill.value("receptors", "LUAD") is None


def test_fill_only_where_the_extractor_abstains(fill: MostFrequentFill) -> None:
    r = RuleBasedExtractor().extract("Right kidney, nephrectomy. Fuhrman nuclear grade 2.")
    out = fill.fill(r, "KIRC")
    assert out.grade == ["G2"] and out.laterality == ["Right"]  # kept
    assert out.raw["grade"] == "{G2}"
    assert out.stage == ["T2", "N0", "M0", "Stage IIA"]  # no KIRC stage in training: over all types
    assert out.raw["stage"] == f"{{T2, N0, M0, Stage IIA}} ({FILL_MARK})"
    assert r.stage is None  # the input is not changed


def test_stage_components_are_filled_one_by_one(fill: MostFrequentFill) -> None:
    r = PhenotypeResult(stage=["pT1c", "Stage IA"], raw={"stage": "{pT1c, Stage IA}"})
    out = fill.fill(r, "BRCA")
    assert out.stage == ["pT1c", "N0", "M0", "Stage IA"]  # T and group kept, N and M filled before the group
    assert out.raw["stage"] == f"{{pT1c, N0, M0, Stage IA}} ({FILL_MARK}: N0, M0)"
    assert parse_answer(out.raw["stage"]) == out.stage
    only_group = fill.fill(PhenotypeResult(stage=["pT2", "pN1", "M0"]), "BRCA")
    assert only_group.stage == ["pT2", "pN1", "M0", "Stage IIA"]


def test_receptors_filled_per_receptor_and_only_in_breast(fill: MostFrequentFill) -> None:
    r = PhenotypeResult(receptor_status=["er negative"], receptors=["er"])
    out = fill.fill(r, "BRCA")
    assert out.receptor_status == ["er negative", "pr negative", "her2 negative"]
    assert out.receptors == ["er"]  # answered: kept
    empty = fill.fill(PhenotypeResult(), "BRCA")
    assert empty.receptors == ["er", "pr", "her2"]
    assert empty.receptor_status == ["er positive", "pr negative", "her2 negative"]
    thyroid = fill.fill(PhenotypeResult(), "THCA")
    assert thyroid.receptors is None and thyroid.receptor_status is None
    assert "receptor_status" not in thyroid.raw
    assert thyroid.laterality == ["Left lobe"] and thyroid.tumor_size == ["2.5"]


def test_details_get_the_filled_items_without_evidence(fill: MostFrequentFill) -> None:
    r = PhenotypeResult(grade=None, raw={"grade": "Not relevant"},
                        details={"grade": AnswerDetail(status="not_relevant", confidence=0.9)})
    out = fill.fill(r, "KIRC")
    assert out.grade == ["G3"] and out.status("grade") == "answered"
    d = out.details["grade"]
    assert [i.value for i in d.items] == ["G3"] and d.items[0].match == "not_found" and d.needs_review
    kept = PhenotypeResult(grade=["G1"], details={"grade": AnswerDetail(status="answered", items=[ItemDetail(value="G1")])})
    assert fill.fill(kept, "KIRC").details == kept.details


def test_filled_extractor_and_pickling(fill: MostFrequentFill) -> None:
    ex = FilledExtractor(RuleBasedExtractor(), fill)
    out = ex.extract_many(["Left breast. pT1c pN0.", "Thyroid, total thyroidectomy."], ["BRCA", "THCA"])
    assert out[0].laterality == ["Left"] and out[0].stage == ["pT1c", "pN0", "M0", "Stage IIA"]
    assert out[1].laterality == ["Left lobe"] and out[1].receptor_status is None
    assert ex.extract("Left breast. pT1c pN0.", "BRCA").stage == out[0].stage
    assert set(ex.PHENOTYPES) >= set(RuleBasedExtractor.PHENOTYPES) | {"histological_type", "tumor_location"}
    with pytest.raises(InputError, match="cancer types"):
        ex.extract_many(["a", "b"], ["BRCA"])
    again = pickle.loads(pickle.dumps(fill))
    assert again == fill and again.value("laterality", "BRCA") == "Right"
