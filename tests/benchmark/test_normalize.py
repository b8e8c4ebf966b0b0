"""Answer normalisation: one case per documented rule (expectations worked out by hand)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cancerllm.benchmark import answers_match, normalize, tnm_components
from cancerllm.schema import Phenotype


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Stage IIA", "iia"),
        ("stage iia", "iia"),
        ("IIA", "iia"),
        ("Stage 2A", "iia"),
        ("Stage 3C", "iiic"),
        ("Stage IB1", "ib1"),
        ("Stage IIIC2", "iiic2"),
        ("Stage IS", "is"),
        ("Stage X", "x"),
        ("Stage 0", "0"),
        ("IIb", "iib"),
        ("AJCC stage: IV", "iv"),
        ("Stage IIA (pT2 N0)", "iia"),
        ("pT2", "t2"),
        ("Not relevant", ""),
    ],
)
def test_stage(value: str, expected: str) -> None:
    assert normalize("stage", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pT2", "t2"),
        ("T2", "t2"),
        ("ypT2a", "t2a"),
        ("cT1b", "t1b"),
        ("T1b1", "t1b1"),
        ("Tis", "tis"),
        ("TX", "tx"),
        ("N0 (i-)", "n0"),
        ("pN0(i+)", "n0"),
        ("N1mi", "n1mi"),
        ("cM0 (i+)", "m0"),
        ("pMX", "mx"),
        ("pT1c pN0", "t1c n0"),
        ("T2N0M0", "t2 n0 m0"),
        ("pT1cpN0MX", "t1c n0 mx"),
    ],
)
def test_tnm(value: str, expected: str) -> None:
    assert normalize("tnm", value) == expected


def test_tnm_components_ignores_words() -> None:
    assert tnm_components("this is a tumor") == []
    assert tnm_components("pT3 N1a M0") == ["t3", "n1a", "m0"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("G3", "g3"),
        ("grade 3", "g3"),
        ("Grade III", "g3"),
        ("Nottingham grade II", "g2"),
        ("grade 3 of 3", "g3"),
        ("3/3", "g3"),
        ("GX", "gx"),
        ("GB", "gb"),
        ("high grade", "high"),
        ("High-Grade", "high"),
        ("Low Grade", "low"),
        ("well differentiated", "g1"),
        ("moderately to poorly differentiated", "g3"),
        ("undifferentiated", "g4"),
    ],
)
def test_grade(value: str, expected: str) -> None:
    assert normalize("grade", value) == expected


def test_grade_two_tier_is_not_mapped_to_numbers() -> None:
    assert not answers_match("grade", ["G3"], "High Grade")
    assert answers_match("grade", ["high grade"], "High Grade")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Right", "right"),
        ("right lobe", "right"),
        ("R", "right"),
        ("rt.", "right"),
        ("Left lobe", "left"),
        ("left breast", "left"),
        ("Bilateral", "bilateral"),
        ("left and right", "bilateral"),
        ("Isthmus", "isthmus"),
        ("Midline", "midline"),
    ],
)
def test_laterality(value: str, expected: str) -> None:
    assert normalize("laterality", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ER positive", "er positive"),
        ("estrogen receptor positive", "er positive"),
        ("ER+", "er positive"),
        ("Estrogen receptor: POSITIVE", "er positive"),
        ("ER-positive", "er positive"),
        ("PR-", "pr negative"),
        ("progesterone receptor neg", "pr negative"),
        ("HER2/neu: negative", "her2 negative"),
        ("HER2 2+", "her2 equivocal"),
        ("HER2 3+", "her2 positive"),
        ("Her2 equivocal", "her2 equivocal"),
        ("PgR", "pr"),
    ],
)
def test_receptor_status(value: str, expected: str) -> None:
    assert normalize("receptor_status", value) == expected


def test_receptors() -> None:
    assert normalize(Phenotype.RECEPTORS, "Estrogen Receptor") == "er"
    assert normalize("receptors", "c-erbB-2") == "her2"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.5 cm", "2.5"),
        ("25 mm", "2.5"),
        ("2.5", "2.5"),
        ("2.0", "2"),
        ("1.3 x 1.3 x 1.2 cm", "1.3"),
        ("45 x 30 mm", "4.5"),
        ("2.5 cm x 20 mm", "2.5"),
        ("3 centimeters", "3"),
    ],
)
def test_tumor_size(value: str, expected: str) -> None:
    assert normalize("tumor_size", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Infiltrating Ductal Carcinoma", "infiltrating ductal carcinoma"),
        ("Adenocarcinoma, NOS", "adenocarcinoma"),
        ("Carcinoma, ductal", "carcinoma ductal"),
        ("  Squamous   cell carcinoma ", "squamous cell carcinoma"),
    ],
)
def test_histology(value: str, expected: str) -> None:
    assert normalize("histological_type", value) == expected
    assert normalize("histology", value) == expected


def test_location_and_custom_use_generic_rules() -> None:
    assert normalize("tumor_location", "Right Upper-Outer Quadrant") == "right upper outer quadrant"
    assert normalize("margin_status", "Margins: NEGATIVE.") == "margins negative"
    assert normalize("stage", None) == ""


def test_answers_match_single_valued_any_item() -> None:
    assert answers_match("stage", ["Stage 2B"], "Stage IIB")
    # the stage answer is a set (T, N, M items and group): extra items are not free
    assert not answers_match("stage", ["pT2", "Stage IIB"], "Stage IIB")
    assert answers_match("stage", ["pT2", "N0 (i-)", "Stage 2b"], ["T2", "pN0", "Stage IIB"])
    assert not answers_match("stage", ["Stage IIA"], "Stage IIB")
    assert answers_match("tumor_size", "25 mm", "2.5")
    assert answers_match("laterality", ["Right"], "Right lobe")


def test_answers_match_tnm_splits_components() -> None:
    assert answers_match("tnm", ["pT2 pN0 MX"], "N0 (i-)")
    assert answers_match("pt", ["ypT2a"], "T2a")
    assert not answers_match("pt", ["pT2"], "T2a")


def test_answers_match_sets_are_exact() -> None:
    gold = ["er positive", "pr positive", "her2 negative"]
    assert answers_match("receptor_status", ["ER+", "PR positive", "HER2/neu: negative"], gold)
    assert not answers_match("receptor_status", ["ER+", "PR positive"], gold)
    assert not answers_match("receptor_status", ["ER+", "PR positive", "HER2 negative", "HER2 3+"], gold)
    assert answers_match("receptors", ["PR", "estrogen receptor"], ["er", "pr"])


def test_answers_match_empty_gold() -> None:
    assert answers_match("grade", [], None)
    assert answers_match("grade", ["Not relevant"], "Not relevant")
    assert not answers_match("grade", ["G2"], None)
    assert not answers_match("grade", [], "G2")


def test_import_is_light() -> None:
    code = (
        "import sys, cancerllm.benchmark; "
        "print(sorted(m for m in ('torch', 'transformers', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
