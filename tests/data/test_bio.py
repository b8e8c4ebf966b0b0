"""BIO (CoNLL) NER data -> the eight-question phenotype QA format."""

from __future__ import annotations

import pytest

from cancerllm.data import bio_to_examples, normalize_entity_type, read_bio
from cancerllm.errors import DataFormatError, InputError
from cancerllm.schema import PHENOTYPE_INSTRUCTION, Phenotype

CONLL = """\
-DOCSTART- -X- O O

Left JJ B-laterality
breast NN B-Tumor_Site
invasive JJ B-histological_type
ductal JJ I-histological_type
carcinoma NN I-histological_type
, , O
grade NN B-cancer_grade
2 CD I-cancer_grade
. . O

ER NN B-receptor
positive JJ B-receptor_status
, , O
PR NN B-receptor
negative JJ B-receptor_status
; : O
size NN O
2.1 CD B-tumor-size
cm NN I-tumor-size

-DOCSTART- -X- O O

Stage NN B-stage
IIA NN I-stage
"""

S0 = "Left breast invasive ductal carcinoma , grade 2 ."
S1 = "ER positive , PR negative ; size 2.1 cm"

EXPECTED = [
    # (id, context, response)
    ("0-0-tumor_size", S0, "Not relevant"),
    ("0-0-histological_type", S0, "{invasive ductal carcinoma}"),
    ("0-0-receptors", S0, "Not relevant"),
    ("0-0-receptor_status", S0, "Not relevant"),
    ("0-0-laterality", S0, "{Left}"),
    ("0-0-stage", S0, "Not relevant"),
    ("0-0-tumor_location", S0, "{breast}"),
    ("0-0-grade", S0, "{grade 2}"),
    ("0-1-tumor_size", S1, "{2.1 cm}"),
    ("0-1-histological_type", S1, "Not relevant"),
    ("0-1-receptors", S1, "{ER, PR}"),
    ("0-1-receptor_status", S1, "{positive, negative}"),
    ("0-1-laterality", S1, "Not relevant"),
    ("0-1-stage", S1, "Not relevant"),
    ("0-1-tumor_location", S1, "Not relevant"),
    ("0-1-grade", S1, "Not relevant"),
    ("1-0-tumor_size", "Stage IIA", "Not relevant"),
    ("1-0-histological_type", "Stage IIA", "Not relevant"),
    ("1-0-receptors", "Stage IIA", "Not relevant"),
    ("1-0-receptor_status", "Stage IIA", "Not relevant"),
    ("1-0-laterality", "Stage IIA", "Not relevant"),
    ("1-0-stage", "Stage IIA", "{Stage IIA}"),
    ("1-0-tumor_location", "Stage IIA", "Not relevant"),
    ("1-0-grade", "Stage IIA", "Not relevant"),
]


def test_bio_to_examples_hand_computed(tmp_path):
    path = tmp_path / "ner.conll"
    path.write_text(CONLL, encoding="utf-8")
    exs = bio_to_examples(path)
    assert [(e.id, e.context, e.response) for e in exs] == EXPECTED
    assert all(e.instruction == PHENOTYPE_INSTRUCTION for e in exs)
    assert [e.question for e in exs[:8]] == [p.question for p in Phenotype]
    assert exs[7].meta == {"phenotype": "grade", "doc": 0, "sentence": 0, "entity_types": ["cancer_grade"]}
    assert exs[7].full_context == f"In the text: {S0} What is the grade of cancer in the given context?"


def test_lines_input_and_no_negatives():
    exs = bio_to_examples(CONLL.splitlines(), negatives=False)
    assert [(e.id, e.response) for e in exs] == [(i, r) for i, _, r in EXPECTED if r != "Not relevant"]


def test_document_per_example():
    exs = bio_to_examples(CONLL.splitlines(), sentence_per_example=False, phenotypes=["receptors", "stage"])
    assert [(e.id, e.context, e.response) for e in exs] == [
        ("0-receptors", f"{S0} {S1}", "{ER, PR}"),
        ("0-stage", f"{S0} {S1}", "Not relevant"),
        ("1-receptors", "Stage IIA", "Not relevant"),
        ("1-stage", "Stage IIA", "{Stage IIA}"),
    ]


def test_read_bio_pairs():
    sents = read_bio(["a O", "b B-grade", "c I-grade", "", "d O"])
    assert sents == [[("a", "O"), ("b", "B-grade"), ("c", "I-grade")], [("d", "O")]]


def test_bad_tag_names_file_and_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("Left B-laterality\nbreast O\n\ngrade B_grade\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.conll:4: invalid BIO tag 'B_grade'") as info:
        bio_to_examples(path)
    assert info.value.line == 4


def test_missing_column_names_line():
    with pytest.raises(DataFormatError, match=r"^line 2: expected at least 2 columns"):
        bio_to_examples(["Left B-laterality", "breast"])


def test_stray_inside_tag_strict_and_lenient():
    lines = ["tumor O", "grade I-grade", "3 I-grade"]
    with pytest.raises(DataFormatError, match=r"line 2: tag 'I-grade' follows O"):
        bio_to_examples(lines)
    exs = bio_to_examples(lines, strict=False, phenotypes=["grade"])
    assert [e.response for e in exs] == ["{grade 3}"]
    # an I- of another type also breaks a strict sequence
    with pytest.raises(DataFormatError, match=r"line 2: tag 'I-stage' follows an entity of type 'grade'"):
        bio_to_examples(["grade B-grade", "3 I-stage"])


def test_unknown_entity_type():
    lines = ["margins B-margin_status", "clear I-margin_status", "left B-laterality"]
    with pytest.raises(
        DataFormatError, match=r"line 1: entity type 'margin_status' has no phenotype mapping"
    ):
        bio_to_examples(lines)
    exs = bio_to_examples(lines, unknown="ignore", negatives=False)
    assert [(e.id, e.response) for e in exs] == [("0-0-laterality", "{left}")]
    # mapped to None: dropped; mapped to a phenotype: used
    assert len(bio_to_examples(lines, entity_to_phenotype={"Margin Status": None}, negatives=False)) == 1
    exs = bio_to_examples(lines, entity_to_phenotype={"margin-status": "tumor_location"}, negatives=False)
    assert [(e.id, e.response) for e in exs] == [
        ("0-0-laterality", "{left}"),
        ("0-0-tumor_location", "{margins clear}"),
    ]
    with pytest.raises(InputError, match="not a phenotype"):
        bio_to_examples(lines, entity_to_phenotype={"margin_status": "margins"})


def test_normalize_entity_type():
    assert normalize_entity_type(" Tumor-Size ") == "tumor_size"
    assert normalize_entity_type("Hormone receptor / status") == "hormone_receptor_status"


def test_repeated_entity_is_deduplicated():
    exs = bio_to_examples(["left B-laterality", "and O", "Left B-laterality"], phenotypes=["laterality"])
    assert exs[0].response == "{left}"


def test_unknown_phenotype_selection():
    with pytest.raises(InputError, match="unknown phenotype 'margins'; use one of: tumor_size"):
        bio_to_examples(["a O"], phenotypes=["margins"])
