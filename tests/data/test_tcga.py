"""TCGA records -> phenotype QA and diagnosis examples (hand-written records, not the shared file)."""

from __future__ import annotations

import json

import pytest

from cancerllm.data import (
    TCGARecord,
    diagnosis_answer,
    examples_to_official,
    read_jsonl,
    read_tcga,
    tcga_to_diagnosis_examples,
    tcga_to_phenotype_examples,
)
from cancerllm.errors import DataFormatError
from cancerllm.schema import DIAGNOSIS_INSTRUCTION, PHENOTYPE_INSTRUCTION, Phenotype

CODES = {"icd_10": "C50.9", "icd_o_3_histology": "8500/3", "icd_o_3_site": "C50.9"}
BRCA = {
    "patient_id": "TCGA-XX-0001",
    "cancer_type": "BRCA",
    "text": "Right breast, upper outer quadrant: infiltrating ductal carcinoma, 2.5 cm. ER positive, PR negative.",
    "labels": {
        "stage": "Stage IIA", "pT": "T2", "pN": "N0 (i-)", "pM": "M0",
        "histology": "Infiltrating Ductal Carcinoma", "site": "Right Upper Outer Quadrant",
        "laterality": "Right", "grade": None, "ER": "Positive", "PR": "Negative", "HER2": None,
        "tumor_size": "2.5", **CODES,
    },
}  # fmt: skip
LUAD = {
    "patient_id": "TCGA-YY-0002",
    "cancer_type": "LUAD",
    "text": "Left lower lobe lobectomy: adenocarcinoma of the lung.",
    "labels": {
        "stage": "Stage IB", "pT": "T2a", "pN": "N0", "pM": "MX", "histology": "Lung Adenocarcinoma",
        "site": "Lung", "laterality": "Left", "grade": None, "ER": None, "PR": None, "HER2": None,
        "tumor_size": None, "icd_10": "C34.3", "icd_o_3_histology": "8140/3", "icd_o_3_site": "C34.3",
    },
}  # fmt: skip


def _rows(exs):
    return [(e.id, e.response) for e in exs]


def test_phenotype_examples_brca_and_non_brca(tmp_path):
    path = tmp_path / "tcga.jsonl"
    path.write_text(json.dumps(BRCA) + "\n" + json.dumps(LUAD) + "\n", encoding="utf-8")
    exs = tcga_to_phenotype_examples(read_tcga(path))
    assert _rows(exs) == [
        ("TCGA-XX-0001-tumor_size", "{2.5}"),
        ("TCGA-XX-0001-histological_type", "{Infiltrating Ductal Carcinoma}"),
        ("TCGA-XX-0001-receptors", "{er, pr}"),
        ("TCGA-XX-0001-receptor_status", "{er positive, pr negative}"),
        ("TCGA-XX-0001-laterality", "{Right}"),
        ("TCGA-XX-0001-stage", "{T2, N0 (i-), M0, Stage IIA}"),
        ("TCGA-XX-0001-tumor_location", "{Right Upper Outer Quadrant}"),
        # grade is null for both: skipped
        ("TCGA-YY-0002-histological_type", "{Lung Adenocarcinoma}"),
        ("TCGA-YY-0002-receptors", "Not relevant"),
        ("TCGA-YY-0002-receptor_status", "Not relevant"),
        ("TCGA-YY-0002-laterality", "{Left}"),
        ("TCGA-YY-0002-stage", "{T2a, N0, MX, Stage IB}"),
        ("TCGA-YY-0002-tumor_location", "{Lung}"),
    ]
    stage = exs[5]
    assert stage.instruction == PHENOTYPE_INSTRUCTION
    assert stage.context == BRCA["text"] and stage.question == Phenotype.STAGE.question
    assert stage.meta == {
        "phenotype": "stage",
        "patient_id": "TCGA-XX-0001",
        "cancer_type": "BRCA",
        "labels": {"stage": "Stage IIA", "pT": "T2", "pN": "N0 (i-)", "pM": "M0"},
    }


def test_without_not_relevant_and_dict_input():
    exs = tcga_to_phenotype_examples([LUAD], include_not_relevant=False)
    assert [e.meta["phenotype"] for e in exs] == [
        "histological_type", "laterality", "stage", "tumor_location",
    ]  # fmt: skip


def test_brca_without_receptor_labels_is_skipped_not_negative():
    rec = json.loads(json.dumps(BRCA))
    rec["labels"].update(ER=None, PR=None)
    exs = tcga_to_phenotype_examples([rec], phenotypes=["receptors", "receptor_status"])
    assert exs == []


def test_diagnosis_examples():
    no_histology = json.loads(json.dumps(LUAD))
    no_histology["patient_id"] = "TCGA-ZZ-0003"
    no_histology["labels"]["histology"] = None
    exs = tcga_to_diagnosis_examples([BRCA, LUAD, no_histology])
    assert _rows(exs) == [
        ("TCGA-XX-0001-diagnosis", "Infiltrating Ductal Carcinoma, Right Upper Outer Quadrant"),
        ("TCGA-YY-0002-diagnosis", "Lung Adenocarcinoma"),  # site already named in the histology
    ]
    assert exs[0].instruction == DIAGNOSIS_INSTRUCTION and exs[0].question is None
    assert exs[0].context == BRCA["text"]
    assert exs[0].meta["icd_10"] == "C50.9" and exs[0].meta["icd_o_3_histology"] == "8500/3"
    assert exs[0].meta["cancer_type"] == "BRCA" and exs[0].meta["patient_id"] == "TCGA-XX-0001"
    codes = tcga_to_diagnosis_examples([BRCA, LUAD, no_histology], target="icd_10")
    assert [e.response for e in codes] == ["C50.9", "C34.3", "C34.3"]


def test_diagnosis_answer_site_rule():
    def rec(h, s):
        return TCGARecord(patient_id="P", cancer_type="X", text="", labels={"histology": h, "site": s})

    assert (
        diagnosis_answer(rec("Kidney Clear Cell Renal Carcinoma", "Kidney"))
        == "Kidney Clear Cell Renal Carcinoma"
    )
    assert (
        diagnosis_answer(rec("Colon Adenocarcinoma", "Sigmoid Colon"))
        == "Colon Adenocarcinoma, Sigmoid Colon"
    )
    assert diagnosis_answer(rec("Melanoma", None)) == "Melanoma"
    assert diagnosis_answer(rec(None, "Lung")) is None


def test_invalid_dict_record():
    with pytest.raises(DataFormatError, match="missing required field 'text'"):
        tcga_to_phenotype_examples([{"patient_id": "P", "cancer_type": "BRCA", "labels": {}}])


def test_examples_to_official(tmp_path):
    exs = tcga_to_phenotype_examples([LUAD], phenotypes=["laterality"])
    recs = examples_to_official(exs, tmp_path / "official.jsonl")
    expected = {
        "instruction": PHENOTYPE_INSTRUCTION,
        "context": "In the text: Left lower lobe lobectomy: adenocarcinoma of the lung. "
        "Please identify the value of tumor laterality in the provided context.",
        "response": "{Left}",
    }
    assert recs == [expected]
    assert read_jsonl(tmp_path / "official.jsonl") == [expected]


def _stage_rec(text, **labels):
    base = {"stage": None, "pT": None, "pN": None, "pM": None}
    return TCGARecord(patient_id="TCGA-ZZ-0003", cancer_type="LUAD", text=text, labels={**base, **labels})


@pytest.mark.parametrize(("text", "labels", "want"), [
    # the report's prefix on the registry value; group normalised to "Stage ..."
    ("Final: pT2 pN0 (0/12).", dict(pT="T2", pN="N0", pM="M0", stage="IIb"), ["pT2", "pN0", "M0", "Stage IIB"]),
    # registry less specific than the report: the report's finer value of that category
    ("AJCC: ypT2a N1", dict(pT="T2", pN="N1"), ["ypT2a", "N1"]),
    # registry more specific / different: registry value, report's prefix
    ("pT3 pN1", dict(pT="T2b", pN="N1a (sn)"), ["pT2b", "pN1a (sn)"]),
    # OCR capitals and run-together items
    ("PATHOLOGIC STAGE: PT1CN0MX", dict(pT="T1c", pN="N0", pM="MX"), ["pT1c", "N0", "MX"]),
    # nothing in the report: registry values; modifiers kept
    ("No staging written.", dict(pM="cM0 (i+)"), ["cM0 (i+)"]),
])
def test_stage_answer_is_tnm_items_and_group(text, labels, want):
    from cancerllm.data import stage_answer

    assert stage_answer(_stage_rec(text, **labels)) == want


def test_stage_answer_none_without_any_stage_label():
    from cancerllm.data import stage_answer

    assert stage_answer(_stage_rec("pT2 pN0")) is None


def test_coded_diagnosis_examples():
    rec = TCGARecord.model_validate(BRCA)
    (ex,) = tcga_to_diagnosis_examples([rec], target="text+icd_10")
    assert ex.response == "Infiltrating Ductal Carcinoma, Right Upper Outer Quadrant (C50.9)"
    from cancerllm.schema import Diagnosis

    d = Diagnosis(text=ex.response)
    assert d.icd_10 == "C50.9" and d.description == "Infiltrating Ductal Carcinoma, Right Upper Outer Quadrant"
    assert Diagnosis(text="Lung Adenocarcinoma").icd_10 is None
