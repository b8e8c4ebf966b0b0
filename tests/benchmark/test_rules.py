"""The rule-based extractor on hand-written report snippets in the TCGA wording (OCR casing and slips included)."""

from __future__ import annotations

import pickle

import pytest

from cancerllm.benchmark import RuleBasedExtractor, answers_match
from cancerllm.benchmark.fields import field_flags
from cancerllm.benchmark.rules import repair_tnm_ocr
from cancerllm.benchmark.tasks import PhenotypeCase
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
    assert r.stage == ["pT1c", "pN0 (i-)", "MX", "Stage IA"]
    assert r.receptors == ["er", "pr", "her2"]
    assert r.receptor_status == ["er positive", "pr negative", "her2 negative"]
    assert r.histological_type is None and r.tumor_location is None
    assert r.raw["grade"] == "{G2}"
    assert "tumor_location" not in r.raw
    assert set(r.raw) == set(RuleBasedExtractor.PHENOTYPES)


def test_scores_against_registry_values(extractor: RuleBasedExtractor) -> None:
    r = extractor.extract(BREAST)
    labels = {"stage": "Stage IA", "pT": "T1c", "pN": "N0 (i-)", "pM": "M0"}
    case = PhenotypeCase(0, "P1", "BRCA", "stage", ["pT1c", "pN0 (i-)", "M0", "Stage IA"], labels)
    flags = {f: ok for f, ok, _ in field_flags(case, r.stage)}
    assert flags["pt"] and flags["pt_full"] and flags["pn"] and flags["stage_group"]
    assert not flags["pm"]  # the report says MX, the registry M0
    assert answers_match("grade", r.grade, "G2")
    assert answers_match("laterality", r.laterality, "Left")
    assert answers_match("tumor_size", r.tumor_size, "1.3")
    assert answers_match("receptor_status", r.receptor_status, ["er positive", "pr negative", "her2 negative"])


def test_result_is_picklable(extractor: RuleBasedExtractor) -> None:
    assert pickle.loads(pickle.dumps(extractor)).extract(BREAST).stage == extractor.extract(BREAST).stage


# ------------------------------------------------------------------------------------------------ stage
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AJCC pathologic Stage IV A. (pT4a,pN2b)", ["pT4a", "pN2b", "Stage IVA"]),
        ("FIGO stage 2B", ["Stage IIB"]),
        ("T2N0M0", ["T2", "N0", "M0"]),
        (
            "Primary tumor (pT): ypT3 Regional lymph nodes (pN): pN1a Distant metastasis: pM1b",
            ["ypT3", "pN1a", "pM1b"],
        ),
        # synoptic run with (m) and (sn) modifiers
        ("PATHOLOGIC STAGE: pT2(m), pN1a (sn), pMX.", ["pT2 (m)", "pN1a (sn)", "pMX"]),
        # OCR: capitals, O for 0, l for 1, a space inside the code, codes run together
        ("TNM STAGE: PT2 NO MX", ["pT2", "N0", "MX"]),
        ("AJCC Staging: pTla pNx pMx", ["pT1a", "pNX", "pMX"]),
        ("Tumor classification: M-8070/3, G3, pT 1, pN 0, pMX, stage IA.", ["pT1", "pN0", "pMX", "Stage IA"]),
        ("PATHOLOGIC STAGE: pT3aNOMX.", ["pT3a", "N0", "MX"]),
        ("Pathological T. T2. Pathological N. N1a.", ["T2", "N1a"]),
        ("T. Stage: 2 N Stage: 0 M Stage: 0 Treatment: none", ["T2", "N0", "M0"]),
        ("ISHAK fibrosis stage 3 of 4", None),
        ("Gleason score 3+4=7, no lymph nodes", None),
        ("Periportal fibrosis (stage 2), mild steatosis.", None),
        # lone bare codes are block or cassette labels, not TNM
        ("Blocks. T1-4, tumor mass X 5. Summary of Cassettes: M1, one lymph node.", None),
    ],
)
def test_stage(extractor: RuleBasedExtractor, text: str, expected: list[str] | None) -> None:
    assert extractor.stage(text) == expected


def test_stage_prefers_the_pathologic_statement_over_the_clinical_history(extractor: RuleBasedExtractor) -> None:
    text = ("Clinical history: cT2 cN1, clinical stage IIB. Diagnosis: carcinoma. "
            "AJCC CATEGORIES: Stage IIIC. pTNM: pT3 pN3a pMX.")
    assert extractor.stage(text) == ["pT3", "pN3a", "pMX", "Stage IIIC"]


def test_stage_group_skips_boilerplate_and_clinical_mentions(extractor: RuleBasedExtractor) -> None:
    text = ("Survival in stage II, node-positive breast cancer patients depends on ... "
            "Pathologic stage: pT1c pN0. AJCC stage: IA.")
    assert extractor.stage(text) == ["pT1c", "pN0", "Stage IA"]
    assert extractor.stage("The pathologic stage is. pT2.") == ["pT2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pT2 pNO pMO", "pT2 pN0 pM0"),
        ("pTlb NO MX", "pT1b N0 MX"),
        ("pT 2, pN 1", "pT2 , pN1 "),
        ("No tumor. NO evidence", "No tumor. NO evidence"),
        ("T2 No lymph", "T2 No lymph"),
    ],
)
def test_repair_tnm_ocr(text: str, expected: str) -> None:
    assert repair_tnm_ocr(text) == expected
    assert len(repair_tnm_ocr(text)) == len(text)


# ------------------------------------------------------------------------------------------------ grade
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Histologic grade: 3", ["G3"]),
        ("Nottingham histologic grade: II (tubules 3, nuclei 2, mitoses 1)", ["G2"]),
        ("Fuhrman nuclear grade 2 of 4", ["G2"]),
        ("RENAL CELL CARCINOMA, CLEAR CELL TYPE, NUCLEAR GRADE. II/IV.", ["G2"]),
        ("clear cell type (6.5 cm), nuclear grade 2-3.", ["G3"]),
        ("tumor is G1", ["G1"]),
        ("Gleason grade 3 pattern only", None),
        ("High grade papillary urothelial carcinoma", ["High Grade"]),
        ("Urothelial carcinoma. Grade: 3 poorly differentiated (WHO 1973) high grade (WHO 2004).", ["High Grade"]),
        ("Right ovary: high grade serous carcinoma", ["G3"]),
        ("adjacent high grade dysplasia, adenocarcinoma", None),
        ("moderately to poorly differentiated adenocarcinoma", ["G3"]),
        ("Histologic grade: Poorly. differentiated.", ["G3"]),
        ("Well-differentiated", ["G1"]),
        ("Endometrioid adenocarcinoma, FIGO grade 1, nuclear grade 2.", ["G1"]),
        ("The worst differentiation: Edmondson grade 111. The major differentiation: Edmondson grade 11.", ["G3"]),
        ("Oligoastrocytoma, WHO grade Il.", ["G2"]),
        ("Tumor classification: pT3, pN0; G2, L0, V0.", ["G2"]),
        ("Block Summary: G1 - common bile duct margin. G2 - pancreatic neck margin.", None),
        ("chronic hepatitis C (grade 1 of 4, stage 4 of 4)", None),
        ("no grading information", None),
    ],
)
def test_grade(extractor: RuleBasedExtractor, text: str, expected: list[str] | None) -> None:
    assert extractor.grade(text) == expected


# ------------------------------------------------------------------------------------------------ laterality
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("left breast", ["Left"]),
        ("Left breast, modified radical mastectomy", ["Left"]),
        ("BREAST, RIGHT, LUMPECTOMY. Right breast tissue.", ["Right"]),
        ("Right lobe of thyroid, lobectomy", ["Right"]),
        ("Rt. kidney, radical nephrectomy", ["Right"]),
        ("Radical nephrectomy, right kidney: renal cell carcinoma", ["Right"]),
        ("Brain, right frontal tumor, biopsy: oligodendroglioma", ["Right"]),
        ("Left orchidectomy; seminoma; diameter 6.5 cm", ["Left"]),
        ("Removal of abdominal testis on the right side; seminoma", ["Right"]),
        ("Bilateral salpingo-oophorectomy", None),  # a procedure, not the tumour's side
        ("right ovary and left ovary", ["Bilateral"]),
        ("Papillary serous carcinoma involving both ovaries", ["Bilateral"]),
        ("left upper lobe, left lung; right margin", ["Left"]),
        ("right margin clear. Left lymph nodes negative.", None),
        # explicit fields beat counts; OCR drops letters
        ("Right breast biopsy site. Left breast lumpectomy. Laterality: Left.", ["Left"]),
        ("aterality: Right, lower inner quadrant. Path Report BREAST TISSUE", ["Right"]),
        ("Laterality. Midline. Histologic type: Squamous cell carcinoma.", ["Midline"]),
        ("Sites/laterality: Bilateral. Number positive 0. Right kidney, nephrectomy", ["Right"]),
        # thyroid: lobes
        ("Total thyroidectomy. Tumor Laterality: Isthmus. Tumor Size: 1.7cm.", ["Isthmus"]),
        ("Thyroid, total thyroidectomy. Tumor Location: Left lobe. Right lobe. Tumor Size: 2.8 cm", ["Bilateral"]),
        ("Thyroid. Tumor Laterality: Right lobe. Second Tumor: Tumor Laterality: Left lobe.", ["Bilateral"]),
        # prostate: tumour on both sides of the gland
        ("Prostate, radical prostatectomy. Tumor site: left and right prostate, peripheral zone.", ["Bilateral"]),
        ("Radical prostatectomy: adenocarcinoma in the right apex and left base.", ["Bilateral"]),
        ("Prostate: adenocarcinoma, right peripheral zone. Right seminal vesicle and left vas free.", ["Right"]),
    ],
)
def test_laterality(extractor: RuleBasedExtractor, text: str, expected: list[str] | None) -> None:
    assert extractor.laterality(text) == expected


# ------------------------------------------------------------------------------------------------ receptors
@pytest.mark.parametrize(
    ("text", "receptors", "statuses"),
    [
        ("Estrogen receptor: POSITIVE", ["er"], ["er positive"]),
        ("Her2/neu: negative", ["her2"], ["her2 negative"]),
        ("HER-2 (IHC): 2+", ["her2"], ["her2 equivocal"]),
        ("HER2 score 3+", ["her2"], ["her2 positive"]),
        ("HER2/NEU: zero or 1+.", ["her2"], ["her2 negative"]),
        ("HER2 by FISH: amplified (ratio 4.2)", ["her2"], ["her2 positive"]),
        ("HER-2/neu (FISH): Not amplified.", ["her2"], ["her2 negative"]),
        ("c-erbB-2: negative (0)", ["her2"], ["her2 negative"]),
        ("ER/PR: positive", ["er", "pr"], ["er positive", "pr positive"]),
        ("ER/PR- POSITIVE, HER-2- - 2+", ["er", "pr", "her2"], ["er positive", "pr positive", "her2 equivocal"]),
        ("Tumor cells are negative for estrogen receptor.", ["er"], ["er negative"]),
        ("THE TUMOR IS NEGATIVE. FOR ESTROGEN RECEPTORS AND FOCALLY POSITIVE FOR PROGESTERONE RECEPTORS.",
         ["er", "pr"], ["er negative", "pr positive"]),
        ("ER+ PR- breast carcinoma", ["er", "pr"], ["er positive", "pr negative"]),
        ("(ER+, PR+ Her2-)", ["er", "pr", "her2"], ["er positive", "pr positive", "her2 negative"]),
        ("ESTROGEN RECEPTOR - POSITIVE, PROGESTERONE RECEPTOR - NEGATIVE", ["er", "pr"], ["er positive", "pr negative"]),
        ("ER Status. Positive NOS. PR Status. Positive NOS.", ["er", "pr"], ["er positive", "pr positive"]),
        ("Estrogen receptors found in 75% of neoplastic cell nuclei. No progesterone receptors found.",
         ["er", "pr"], ["er positive", "pr negative"]),
        ("Results are as follows: ER. 0%. PR. 5%.", ["er", "pr"], ["er negative", "pr positive"]),
        ("ER: Allred score 7/8. PR: Allred score 2/8.", ["er", "pr"], ["er positive", "pr negative"]),
        ("Estrogen Receptor. 6F11-. Positive. 95 %.", ["er"], ["er positive"]),
        ("Estrogen Receptor: Performed on another specimen. Results: No immunoreactive tumor cells present.",
         ["er"], ["er negative"]),
        ("ER and PR studies are pending.", ["er", "pr"], None),
        ("ER: pending. PR: pending. HERCEPTEST (by IHC): pending.", ["er", "pr", "her2"], None),
        ("please obtain ER, PR, HER2/Neu by immunohistochemistry; for all 2+ IHC results do FISH",
         ["er", "pr", "her2"], None),
        ("Her 2 pending. The patient is older.", ["her2"], None),
        ("no receptor studies", None, None),
    ],
)
def test_receptors(
    extractor: RuleBasedExtractor, text: str, receptors: list[str] | None, statuses: list[str] | None
) -> None:
    assert extractor.receptors(text) == (receptors, statuses)


# ------------------------------------------------------------------------------------------------ tumor size
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tumor size: 1.3 x 1.3 x 1.2 cm", ["1.3 cm"]),
        ("Tumor size: 2.5 x 2 x 1.5 cm", ["2.5 cm"]),
        ("Size of tumor: Greatest dimension: 2.5 cm", ["2.5 cm"]),
        ("TUMOR SIZE: Invasive: 4.0 cm. OTHER ORGANS RESECTED", ["4 cm"]),
        ("Size of largest primary tumor: 1.5 cm.", ["1.5 cm"]),
        ("Location: Left lobe. Multi-focal: No. Size = 1.3 cm.", ["1.3 cm"]),
        ("The tumor measures 4.5 x 3.0 x 2.0 cm.", ["4.5 cm"]),
        ("a mass measuring 25 mm", ["25 mm"]),
        ("Tumor measuring 18 x 12 mm, invading the muscularis", ["18 mm"]),
        ("carcinoma, 3.2 cm in greatest dimension", ["3.2 cm"]),
        ("Thyroid, total thyroidectomy: Papillary carcinoma (2.7 cm) with focal extension", ["2.7 cm"]),
        ("specimen weighs 30 g and measures 10 x 8 cm", None),
        ("Specimen Size: 6.5 x 5.2 x 1.8 cm. One lymph node, 1.2 cm in greatest dimension.", None),
    ],
)
def test_tumor_size(extractor: RuleBasedExtractor, text: str, expected: list[str] | None) -> None:
    assert extractor.tumor_size(text) == expected


def test_empty_text(extractor: RuleBasedExtractor) -> None:
    r = extractor.extract("")
    assert r.as_dict() == {k: None for k in r.as_dict()}
    assert r.raw["stage"] == "Not relevant"
    assert [x.grade for x in extractor.extract_many(["Grade: G3", "nothing"])] == [["G3"], None]
