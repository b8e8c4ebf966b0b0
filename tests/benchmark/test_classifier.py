"""The TF-IDF + linear SVM classifier baseline, its calibration, and its arbitration with a model's answers."""

from __future__ import annotations

import pickle

import pytest

from cancerllm.benchmark.classifier import (
    FieldPrediction,
    TextClassifier,
    arbitrate,
    arbitrate_diagnosis,
)
from cancerllm.errors import InputError
from cancerllm.schema import AnswerDetail, Diagnosis, ItemDetail, PhenotypeResult

from .conftest import make_records

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def clf():
    return TextClassifier.from_records(make_records(90, seed=1), folds=3)


def _text(side="Left", organ="breast", hist="infiltrating ductal carcinoma", grade="2", t="T2", er="positive"):
    return f"{side} {organ}, resection: {hist}, grade {grade}, p{t} N0 M0, Stage IIA. ER {er}."


def test_it_learns_the_fields_written_in_the_text(clf):
    assert set(clf.fields) >= {"histological_type", "laterality", "grade", "T", "N", "M", "stage_group", "er",
                               "breast", "icd_10"}
    assert clf.n_records == 90
    r = clf.extract(_text(side="Right", grade="3", t="T3", er="negative"))
    assert r.laterality == ["Right"] and r.grade == ["G3"]
    assert r.histological_type == ["Infiltrating Ductal Carcinoma"]
    assert r.stage[0] == "T3" and "N0" in r.stage
    assert r.receptor_status == ["ER negative"]
    assert r.tumor_size is None  # it abstains on size
    assert "(classifier" in r.raw["grade"]
    left = clf.extract(_text(side="Left", grade="1", t="T1", er="positive"))
    assert left.laterality == ["Left"] and left.grade == ["G1"] and left.receptor_status == ["ER positive"]


def test_receptor_questions_only_on_reports_it_judges_breast(clf):
    kidney = clf.extract("Right kidney, resection: kidney clear cell renal carcinoma, grade 2, pT1 N0 M0, Stage I.")
    assert kidney.receptor_status is None and kidney.receptors is None  # "Not relevant"
    assert kidney.histological_type == ["Kidney Clear Cell Renal Carcinoma"]


def test_probabilities_are_calibrated_shares(clf):
    preds = clf.predict([_text(), "", "lung, resection: lung adenocarcinoma"])
    assert len(preds) == 3
    for p in preds:
        for f in p.values():
            assert f.probability is None or 0.0 <= f.probability <= 1.0
    # the code is learned at the category, then the full code within it
    lung = preds[2]["icd_10"]
    assert lung.category == "C34" and lung.value == "C34.1"


def test_diagnosis_in_the_benchmark_format(clf):
    pred = clf.predict([_text()])[0]
    assert clf.diagnosis_for(pred) == "Infiltrating Ductal Carcinoma, Breast (C50.9)"
    lung = clf.predict(["Right lung, resection: lung adenocarcinoma, grade 2"])[0]
    # the site is left out when the histology already names it, as in the gold diagnosis
    assert clf.diagnosis_for(lung) == "Lung Adenocarcinoma (C34.1)"
    assert clf.diagnose_many([_text()]) == ["Infiltrating Ductal Carcinoma, Breast (C50.9)"]


def test_without_calibration_probabilities_are_none_and_it_pickles():
    c = TextClassifier.from_records(make_records(30, seed=2), folds=0)
    p = c.predict([_text()])[0]
    assert p["grade"].probability is None and p["grade"].value in ("G1", "G2", "G3")
    again = pickle.loads(pickle.dumps(c))
    assert again.predict([_text()])[0]["grade"] == p["grade"]


def test_bad_arguments():
    with pytest.raises(InputError, match="folds"):
        TextClassifier.from_records(make_records(10), folds=1)
    with pytest.raises(InputError):
        TextClassifier.from_records([])


# ---------------------------------------------------------------------------------------------- arbitration
def _fp(value, p, category=None):
    return FieldPrediction(value, category or str(value), p)


def _model(**answers):
    """A model result with a confidence per answer: name=(items, confidence[, item confidences])."""
    r = PhenotypeResult()
    for name, spec in answers.items():
        items, conf = spec[0], spec[1]
        item_conf = spec[2] if len(spec) > 2 else [conf] * len(items)
        r.set(name, items)
        r.details[name] = AnswerDetail(status="answered", confidence=conf,
                                       items=[ItemDetail(value=v, confidence=c) for v, c in zip(items, item_conf)])
    return r


def test_the_likelier_answer_wins_per_field():
    model = _model(grade=(["G3"], 0.40), laterality=(["Left"], 0.95))
    pred = {"grade": _fp("G2", 0.80), "laterality": _fp("Right", 0.90)}
    out = arbitrate(model, pred)
    assert out.grade == ["G2"] and out.raw["grade"] == "{G2} (classifier: G2)" and "grade" not in out.details
    assert out.laterality == ["Left"] and "laterality" in out.details  # the model was more confident
    assert model.grade == ["G3"]  # the input is not changed


def test_an_empty_model_answer_is_filled_and_agreement_changes_nothing():
    model = _model(grade=(["grade 2"], 0.10))
    out = arbitrate(model, {"grade": _fp("G2", 0.99), "laterality": _fp("Right", 0.30)})
    assert out.grade == ["grade 2"]  # the same grade: the model's spelling and evidence stay
    assert out.laterality == ["Right"]  # the model gave none


def test_stage_items_are_arbitrated_one_by_one():
    model = _model(stage=(["pT2b", "N1", "M0", "Stage IIB"], 0.05, [0.9, 0.2, 0.9, 0.3]))
    pred = {"T": _fp("T2a", 0.99, "T2"), "N": _fp("N0", 0.7, "N0"), "M": _fp("MX", 0.5, "MX"),
            "stage_group": _fp("Stage IIA", 0.6, "Stage II")}
    out = arbitrate(model, pred)
    # T: same category, the model's finer value stays; N: the classifier is likelier; M: the model is;
    # the group: same main numeral, the model's stays
    assert out.stage == ["pT2b", "N0", "M0", "Stage IIB"]
    assert out.raw["stage"].endswith("(classifier: N0)")


def test_receptor_status_only_where_the_model_answered_it():
    model = _model(receptor_status=(["ER positive", "HER2 negative"], 0.3, [0.9, 0.2]))
    pred = {"er": _fp("negative", 0.8), "pr": _fp("positive", 0.7), "her2": _fp("positive", 0.6)}
    out = arbitrate(model, pred)
    assert out.receptor_status == ["er positive", "pr positive", "her2 positive"]
    not_relevant = PhenotypeResult()
    assert arbitrate(not_relevant, pred).receptor_status is None


def test_without_the_models_confidence_the_fallback_applies():
    model = PhenotypeResult(grade=["G3"], laterality=["Left"])
    out = arbitrate(model, {"grade": _fp("G2", 0.95), "laterality": _fp("Right", 0.85)}, fallback=0.9)
    assert out.grade == ["G2"] and out.laterality == ["Left"]
    assert arbitrate(model, {"grade": _fp("G2", None)}).grade == ["G3"]  # uncalibrated: never replaces
    assert arbitrate(model, {"grade": _fp("G2", 0.95)}, fields=["laterality"]).grade == ["G3"]


def test_a_contradicted_or_missing_code_is_replaced():
    pred = {"icd_10": _fp("C50.9", 0.9, "C50")}
    ok = Diagnosis(text="Infiltrating Ductal Carcinoma (C50.4)", code_consistent=True)
    bad = Diagnosis(text="Infiltrating Ductal Carcinoma (C34.1)", code_consistent=False)
    assert arbitrate_diagnosis(ok, pred) == ok.text
    assert arbitrate_diagnosis(bad, pred) == "Infiltrating Ductal Carcinoma (C50.9)"
    assert arbitrate_diagnosis("Infiltrating Ductal Carcinoma", pred) == "Infiltrating Ductal Carcinoma (C50.9)"
    assert arbitrate_diagnosis(bad, {}) == bad.text
