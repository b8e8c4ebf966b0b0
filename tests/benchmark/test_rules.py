"""The rule-based extractor on hand-written report snippets in the TCGA wording."""

from __future__ import annotations

import pytest

from cancerllm.benchmark import RuleBasedExtractor, answers_match
from cancerllm.schema import PhenotypeResult

BREAST = (
    "SPECIMEN: Left breast, modified radical mastectomy.\n"
    "DIAGNOSIS: Invasive ductal carcinoma, Nottingham grade II (tubules 3, nuclei 2, mitoses 1).\n"
    "Tumor size: 1.3 x 1.3 x 1.2 cm. Margins free.\n"
    "Estrogen receptor: POSITIVE (95%). Progesterone receptor: negative (0%). Her2/neu: negative (1+).\n"
    "Pathologic stage: pT1c pN0 (i-) MX. AJCC Stage IA."
)


@pytest.fixture()
def extractor() -> RuleBasedExtractor:
    return RuleBasedExtractor()


def test_breast_report(extractor: RuleBasedExtractor) -> None:
    r = extractor.extract(BREAST, id="r1")
    assert isinstance(r, PhenotypeResult)
    assert r.id == "r1"
    assert r.laterality == ["Left"]
    assert r.grade == ["G2"]
    assert r.tumor_size == ["1.3 cm"]
    assert r.stage == ["Stage IA", "pT1c", "pN0", "MX"]
    assert r.receptors == ["er", "pr", "her2"]
    assert r.receptor_status == ["er positive", "pr negative", "her2 negative"]
    assert r.histological_type is None and r.tumor_location is None
    assert r.raw["grade"] == "{G2}"
    assert "tumor_location" not in r.raw


def test_scores_against_registry_values(extractor: RuleBasedExtractor) -> None:
    r = extractor.extract(BREAST)
    assert answers_match("stage", r.stage, "Stage IA")
    assert answers_match("pt", r.stage, "T1c")
    assert answers_match("pn", r.stage, "N0 (i-)")
    assert answers_match("grade", r.grade, "G2")
    assert answers_match("laterality", r.laterality, "Left")
    assert answers_match("tumor_size", r.tumor_size, "1.3")
    assert answers_match(
        "receptor_status", r.receptor_status, ["er positive", "pr negative", "her2 negative"]
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AJCC pathologic Stage IV A. (pT4a,pN2b)", ["Stage IVA", "pT4a", "pN2b"]),
        ("FIGO stage 2B", ["Stage IIB"]),
        ("T2N0M0", ["T2", "N0", "M0"]),
        (
            "Primary tumor (pT): ypT3 Regional lymph nodes (pN): pN1a Distant metastasis: pM1b",
            ["ypT3", "pN1a", "pM1b"],
        ),
        ("ISHAK fibrosis stage 3 of 4", None),
        ("Gleason score 3+4=7, no lymph nodes", None),
    ],
)
def test_stage(extractor: RuleBasedExtractor, text: str, expected: list[str] | None) -> None:
    assert extractor.stage(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Histologic grade: 3", ["G3"]),
        ("Fuhrman nuclear grade 2 of 4", ["G2"]),
        ("tumor is G1", ["G1"]),
        ("Gleason grade 3 pattern only", None),
        ("High grade papillary urothelial carcinoma", ["High Grade"]),
        ("adjacent high grade dysplasia, adenocarcinoma", None),
        ("moderately to poorly differentiated adenocarcinoma", ["G3"]),
        ("Well-differentiated", ["G1"]),
        ("no grading information", None),
    ],
)
def test_grade(extractor: RuleBasedExtractor, text: str, expected: list[str] | None) -> None:
    assert extractor.grade(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("left breast", ["Left"]),
        ("BREAST, RIGHT, LUMPECTOMY. Right breast tissue.", ["Right"]),
        ("Right lobe of thyroid, lobectomy", ["Right"]),
        ("Rt. kidney, radical nephrectomy", ["Right"]),
        ("Bilateral salpingo-oophorectomy", ["Bilateral"]),
        ("right ovary and left ovary", ["Bilateral"]),
        ("left upper lobe, left lung; right margin", ["Left"]),
        ("right margin clear", None),
    ],
)
def test_laterality(extractor: RuleBasedExtractor, text: str, expected: list[str] | None) -> None:
    assert extractor.laterality(text) == expected


@pytest.mark.parametrize(
    ("text", "receptors", "statuses"),
    [
        ("Estrogen receptor: POSITIVE", ["er"], ["er positive"]),
        ("Her2/neu: negative", ["her2"], ["her2 negative"]),
        ("HER-2 (IHC): 2+", ["her2"], ["her2 equivocal"]),
        ("HER2 score 3+", ["her2"], ["her2 positive"]),
        ("ER/PR: positive", ["er", "pr"], ["er positive", "pr positive"]),
        ("Tumor cells are negative for estrogen receptor.", ["er"], ["er negative"]),
        ("ER+ PR- breast carcinoma", ["er", "pr"], ["er positive", "pr negative"]),
        ("ER and PR studies are pending.", ["er", "pr"], None),
        ("Her 2 pending. The patient is older.", ["her2"], None),
        ("no receptor studies", None, None),
    ],
)
def test_receptors(
    extractor: RuleBasedExtractor, text: str, receptors: list[str] | None, statuses: list[str] | None
) -> None:
    assert extractor.receptors(text) == (receptors, statuses)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tumor size: 1.3 x 1.3 x 1.2 cm", ["1.3 cm"]),
        ("Size of tumor: Greatest dimension: 2.5 cm", ["2.5 cm"]),
        ("The tumor measures 4.5 x 3.0 x 2.0 cm.", ["4.5 cm"]),
        ("a mass measuring 25 mm", ["25 mm"]),
        ("carcinoma, 3.2 cm in greatest dimension", ["3.2 cm"]),
        ("specimen weighs 30 g and measures 10 x 8 cm", None),
    ],
)
def test_tumor_size(extractor: RuleBasedExtractor, text: str, expected: list[str] | None) -> None:
    assert extractor.tumor_size(text) == expected


def test_empty_text(extractor: RuleBasedExtractor) -> None:
    r = extractor.extract("")
    assert r.as_dict() == {k: None for k in r.as_dict()}
    assert r.raw["stage"] == "Not relevant"
    assert [x.grade for x in extractor.extract_many(["G3", "nothing"])] == [["G3"], None]
