"""Per-field scoring: stage parts, per-receptor status, Not relevant apart, macro-average, precision."""

from __future__ import annotations

import pytest

from cancerllm.benchmark.fields import (
    MACRO_FIELDS,
    field_flags,
    predicted_stage,
    receptor_statuses,
    score_fields,
    stage_i_iv,
)
from cancerllm.benchmark.tasks import PhenotypeCase

STAGE_LABELS = {"stage": "Stage IIIC", "pT": "T2a", "pN": "N3 (i+)", "pM": "MX"}
STAGE = PhenotypeCase(0, "P1", "BRCA", "stage", ["pT2a", "pN3 (i+)", "MX", "Stage IIIC"], STAGE_LABELS)
RECEPTORS = PhenotypeCase(0, "P1", "BRCA", "receptor_status", ["er positive", "her2 negative"],
                          {"ER": "Positive", "PR": None, "HER2": "Negative"})
NOT_RELEVANT = PhenotypeCase(1, "P2", "LUAD", "receptor_status", None, {"ER": None, "PR": None, "HER2": None})


def _flags(case, pred):
    return {f: (ok, answered) for f, ok, answered in field_flags(case, pred)}


def test_stage_parts_are_scored_one_by_one():
    got = _flags(STAGE, ["ypT2b", "N3", "Stage 3a"])
    assert got["pt"] == (True, True) and got["pt_full"] == (False, True)      # T2 category, not T2a
    assert got["pn"] == (True, True) and got["pn_full"] == (True, True)        # modifier not part of the value
    assert got["pm"] == (False, False) and got["pm_full"] == (False, False)    # not answered
    assert got["stage_group"] == (False, True) and got["stage_group_i_iv"] == (True, True)
    assert got["stage_set"] == (False, True)
    assert _flags(STAGE, ["pT2a", "pN3", "MX", "Stage IIIC"])["stage_set"] == (True, True)


def test_stage_fields_only_where_the_registry_has_them():
    case = PhenotypeCase(0, "P1", "LUAD", "stage", ["Stage IB"], {"stage": "Stage IB", "pT": None, "pN": None,
                                                                   "pM": None})
    assert set(_flags(case, ["Stage IB"])) == {"stage_group", "stage_group_i_iv", "stage_set"}


@pytest.mark.parametrize(("group", "main"), [("Stage IIIC2", "Stage III"), ("Stage IS", "Stage I"),
                                             ("stage 4b", "Stage IV"), ("IIb", "Stage II"), ("none", None)])
def test_stage_i_iv(group, main):
    assert stage_i_iv(group) == main


def test_predicted_stage_takes_the_first_item_of_each_letter_and_the_group():
    p = predicted_stage(["pT1c pN0", "pT2", "AJCC stage IA"])
    assert (p["T"].full, p["N"].full, p["M"], p["group"]) == ("T1c", "N0", None, "Stage IA")


def test_receptor_status_is_scored_per_receptor():
    got = _flags(RECEPTORS, ["ER+", "PR negative", "HER2/neu: positive"])
    assert got == {"er_status": (True, True), "her2_status": (False, True)}  # PR has no gold: not scored
    # two statuses for one receptor are a conflict, not a hit
    assert _flags(RECEPTORS, ["ER positive", "ER negative"])["er_status"] == (False, True)
    assert _flags(RECEPTORS, [])["er_status"] == (False, False)
    assert receptor_statuses(["Estrogen receptor: POSITIVE", "HER2 2+"]) == {"er": {"positive"},
                                                                            "her2": {"equivocal"}}


def test_not_relevant_is_its_own_field():
    assert _flags(NOT_RELEVANT, None) == {"not_relevant": (True, True)}
    assert _flags(NOT_RELEVANT, ["er positive"]) == {"not_relevant": (False, True)}


def test_score_fields_macro_excludes_not_relevant_and_reports_precision():
    cases = [STAGE, RECEPTORS, NOT_RELEVANT]
    preds = [["pT2", "Stage IIIA"], ["er positive"], None]
    out = score_fields(cases, preds, ci=False)
    f = out["fields"]
    assert f["pt"]["value"] == 1.0 and f["pn"]["value"] == 0.0 and f["pn"]["answered"] == 0
    assert f["er_status"]["precision"] == 1.0 and f["her2_status"]["answered"] == 0
    assert out["not_relevant"]["value"] == 1.0
    used = out["macro"]["fields"]
    assert "not_relevant" not in used and set(used) <= set(MACRO_FIELDS)
    expected = sum(f[k]["value"] for k in used) / len(used)
    assert out["macro"]["value"] == pytest.approx(expected, abs=1e-4)
    # CIs: the macro bootstrap over reports brackets the value
    lo, hi = score_fields(cases, preds, ci=True)["macro"]["ci"]
    assert lo <= out["macro"]["value"] <= hi
