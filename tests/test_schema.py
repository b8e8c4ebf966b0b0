import pytest

from cancerllm import (
    ClinicalNote,
    Example,
    Phenotype,
    PhenotypeQuestion,
    PhenotypeResult,
    UnknownBackendError,
)
from cancerllm.schema import DIAGNOSIS_INSTRUCTION, PHENOTYPE_INSTRUCTION, resolve_phenotypes

PAPER_QUESTIONS = {
    "tumor_size": "What is the tumor size in the given context?",
    "histological_type": "What is the histological type in the given context?",
    "receptors": "Please identify the receptors mentioned in the provided context.",
    "receptor_status": "What is the receptor type in the given context?",
    "laterality": "Please identify the value of tumor laterality in the provided context.",
    "stage": "What is the stage of cancer in the given context?",
    "tumor_location": "Please describe the tumor location in the given context",
    "grade": "What is the grade of cancer in the given context?",
}


def test_eight_phenotypes_with_paper_questions_verbatim():
    assert {p.value: p.question for p in Phenotype} == PAPER_QUESTIONS


def test_instructions_are_the_official_ones():
    assert PHENOTYPE_INSTRUCTION.startswith("You are an excellent linguist.")
    assert DIAGNOSIS_INSTRUCTION.startswith("You are a medical expert.")


def test_from_question_is_whitespace_and_case_insensitive():
    assert Phenotype.from_question("what is the  GRADE of cancer in the given context") is Phenotype.GRADE
    assert Phenotype.from_question("How old is the patient?") is None


def test_resolve_phenotypes_defaults_builtins_and_custom():
    assert [q.name for q in resolve_phenotypes()] == [p.value for p in Phenotype]
    margin = PhenotypeQuestion(name="margin_status", question="What is the margin status in the given context?")
    qs = resolve_phenotypes(["stage", Phenotype.GRADE, margin, {"name": "nodes", "question": "How many nodes?"}, "stage"])
    assert [q.name for q in qs] == ["stage", "grade", "margin_status", "nodes"]
    assert qs[2].question.startswith("What is the margin")


def test_unknown_phenotype_lists_known_names():
    with pytest.raises(UnknownBackendError) as e:
        resolve_phenotypes(["tumour_colour"])
    assert "tumour_colour" in str(e.value) and "laterality" in str(e.value)


@pytest.mark.parametrize("bad", ["Bad Name", "1stage", ""])
def test_custom_question_names_are_validated(bad):
    with pytest.raises(ValueError):
        PhenotypeQuestion(name=bad, question="Q?")


def test_example_official_form_folds_question_into_context():
    ex = Example(instruction=PHENOTYPE_INSTRUCTION, context="A 2.5 cm lesion.", question=PAPER_QUESTIONS["tumor_size"],
                 response="{2.5 cm}")
    assert ex.to_official() == {
        "instruction": PHENOTYPE_INSTRUCTION,
        "context": "In the text: A 2.5 cm lesion. What is the tumor size in the given context?",
        "response": "{2.5 cm}",
    }
    with pytest.raises(ValueError):
        Example(instruction="x", unexpected="y")


def test_clinical_note_renders_six_numbered_sections():
    note = ClinicalNote(reason_for_visit="cough", treatment_site="right upper lobe", laboratory_results="biopsy")
    assert note.to_context() == (
        "1) Reason for visit: cough 2) Treatment site: right upper lobe 3) Subjective information:  "
        "4) Nursing Review of Systems (ROS):  5) Objective observations:  6) Laboratory test results: biopsy"
    )
    assert ClinicalNote().is_empty() and not note.is_empty()


def test_phenotype_result_fields_and_custom():
    r = PhenotypeResult(stage="IIb", grade=["G3"])
    assert r.stage == ["IIb"] and r.grade == ["G3"] and r.laterality is None
    r.set("margin_status", ["negative"])
    assert r.get("margin_status") == ["negative"] and r.get(Phenotype.STAGE) == ["IIb"]
    assert r.as_dict(["stage", "margin_status"]) == {"stage": ["IIb"], "margin_status": ["negative"]}
