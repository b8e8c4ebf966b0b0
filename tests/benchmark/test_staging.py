"""The stage group derived from T, N, M: the learned table, its lookups, and what apply changes (only the group)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cancerllm.benchmark.staging import DERIVED_MARK, StagedExtractor, StageGrouper
from cancerllm.errors import InputError
from cancerllm.schema import AnswerDetail, ItemDetail, PhenotypeResult


def _rec(i, ctype, stage, t, n, m, histology):
    return {"patient_id": f"P{i}", "cancer_type": ctype, "text": "",
            "labels": {"stage": stage, "pT": t, "pN": n, "pM": m, "histology": histology}}


@pytest.fixture(scope="module")
def grouper():
    recs = [_rec(0, "BRCA", "Stage IIA", "T2", "N0", "M0", "Infiltrating Ductal Carcinoma"),
            _rec(1, "BRCA", "Stage IIB", "T2", "N0 (i-)", "M0", "Infiltrating Ductal Carcinoma"),
            _rec(2, "BRCA", "Stage I", "T2", "N0", "M0", "Infiltrating Ductal Carcinoma"),
            _rec(3, "LUAD", "Stage IB", "T2a", "N0", "M0", "Lung Adenocarcinoma"),
            _rec(4, "LUAD", "Stage IB", "T2b", "N0", "MX", "Lung Adenocarcinoma"),
            _rec(5, "LUAD", "Stage IV", "T1", "N0", "M1a", "Lung Adenocarcinoma"),
            _rec(6, "KIRC", None, "T1a", "N0", "M0", "Kidney Clear Cell Renal Carcinoma"),   # no group: histology only
            _rec(7, "UCEC", "Stage III", None, None, None, "Endometrioid endometrial adenocarcinoma")]  # no TNM
    return StageGrouper.from_records(recs, source="test")


def test_the_table_counts_main_categories_per_type_and_overall(grouper):
    assert grouper.n_records == 6
    assert grouper.by_type["BRCA"] == {"T2 N0 M0": {"Stage II": 2, "Stage I": 1}}
    assert grouper.by_type["LUAD"] == {"T2 N0 M0": {"Stage I": 1}, "T2 N0 MX": {"Stage I": 1},
                                       "T1 N0 M1": {"Stage IV": 1}}
    assert grouper.overall["T2 N0 M0"] == {"Stage II": 2, "Stage I": 2}
    assert "KIRC" not in grouper.by_type and "UCEC" not in grouper.by_type
    assert grouper.cancer_type_for("Kidney Clear Cell Renal Carcinoma") == "KIRC"
    assert grouper.cancer_type_for("kidney clear cell renal carcinoma") == "KIRC"   # normalised
    assert grouper.cancer_type_for("Something else") is None and grouper.cancer_type_for(None) is None


def test_derive_uses_the_type_row_then_the_row_over_all_types(grouper):
    d = grouper.derive("pT2a", "pN0", "M0", cancer_type="luad")        # any spelling; type case-insensitive
    assert (d.group, d.key, d.basis, d.support, d.agreeing) == ("Stage I", "T2 N0 M0", "LUAD", 1, 1)
    d = grouper.derive("T2", "N0", "M0", cancer_type="BRCA")
    assert (d.group, d.support, d.agreeing) == ("Stage II", 3, 2)
    d = grouper.derive("T1", "N0", "M1", cancer_type="BRCA")           # unseen for BRCA: all types
    assert (d.group, d.basis) == ("Stage IV", "*")
    d = grouper.derive("T2", "N0", "M0")                                # a tie (2 vs 2) goes to the smaller value
    assert d.group == "Stage I" and d.basis == "*"
    assert grouper.derive("T4", "N3", "M0") is None                    # never seen
    assert grouper.derive(None, None, None) is None


def test_apply_replaces_a_disagreeing_group_and_marks_it(grouper):
    r = PhenotypeResult(stage=["pT2", "pN0", "M0", "Stage I"], histological_type=["Infiltrating Ductal Carcinoma"])
    out = grouper.apply(r)
    assert out.stage == ["pT2", "pN0", "M0", "Stage II"]
    assert out.raw["stage"] == ("{pT2, pN0, M0, Stage II} (stage group derived from pT2, pN0, M0: BRCA, "
                                "2 of 3 training reports)")
    assert DERIVED_MARK in out.raw["stage"]
    assert r.stage == ["pT2", "pN0", "M0", "Stage I"]                  # the input is not changed
    # without a group the derived one is added; with an explicit type the histology is not read
    out = grouper.apply(PhenotypeResult(stage=["T2", "N0", "M0"], histological_type=["Lung Adenocarcinoma"]),
                        cancer_type="BRCA")
    assert out.stage == ["T2", "N0", "M0", "Stage II"]


def test_apply_leaves_answers_it_cannot_or_need_not_stage(grouper):
    brca = ["Infiltrating Ductal Carcinoma"]
    agree = PhenotypeResult(stage=["pT2", "pN0", "M0", "Stage IIA"], histological_type=brca)
    assert grouper.apply(agree).stage == ["pT2", "pN0", "M0", "Stage IIA"]        # same I-IV: the fuller group kept
    no_tnm = PhenotypeResult(stage=["Stage III"], histological_type=brca)
    assert grouper.apply(no_tnm) is no_tnm
    unseen = PhenotypeResult(stage=["pT4", "pN3", "M0", "Stage I"], histological_type=brca)
    assert grouper.apply(unseen) is unseen
    assert grouper.apply(PhenotypeResult(stage=None)).stage is None
    # the report writes its stage group: the model read it, keep it
    r = PhenotypeResult(stage=["pT2", "pN0", "M0", "Stage I"], histological_type=brca)
    assert grouper.apply(r, text="Pathologic stage: pT2 pN0. AJCC stage group: IA").stage[-1] == "Stage I"
    assert grouper.apply(r, text="pT2 pN0, margins clear").stage[-1] == "Stage II"


def test_apply_keeps_the_tnm_details_and_flags_the_derived_item(grouper):
    items = [ItemDetail(value=v, span=(0, 3), match="exact", confidence=0.9) for v in ("pT2", "pN0", "M0")]
    items.append(ItemDetail(value="Stage I", match="not_found", confidence=0.4))
    r = PhenotypeResult(stage=["pT2", "pN0", "M0", "Stage I"], histological_type=["Infiltrating Ductal Carcinoma"],
                        details={"stage": AnswerDetail(status="answered", items=items, confidence=0.5)})
    d = grouper.apply(r).details["stage"]
    assert [i.value for i in d.items] == ["pT2", "pN0", "M0", "Stage II"]
    assert d.items[0].span == (0, 3) and d.items[-1].span is None and d.items[-1].needs_review
    assert d.needs_review and DERIVED_MARK in d.items[-1].raw


def test_the_table_round_trips_and_rejects_other_files(grouper, tmp_path):
    path = tmp_path / "groups.json"
    grouper.save(path)
    back = StageGrouper.load(path)
    assert back == grouper
    with pytest.raises(InputError, match="not a stage-group table"):
        StageGrouper.from_dict({"format": "something/1"})


def test_the_shipped_table_is_learned_from_the_training_side():
    g = StageGrouper.default()
    assert g.n_records > 1000 and len(g.by_type) >= 15 and "training side" in g.source
    assert g.derive("T1", "N0", "M0", cancer_type="BRCA").group == "Stage I"
    assert g.derive("T2", "N0", "M1").group == "Stage IV"
    assert g.cancer_type_for("Lung Squamous Cell Carcinoma") == "LUSC"


def test_staged_extractor_stages_every_result(grouper):
    class Model:
        def extract_many(self, texts, **kw):
            return [PhenotypeResult(stage=["T2", "N0", "M0", "Stage IV"]) for _ in texts]

    ex = StagedExtractor(Model(), grouper)
    out = ex.extract_many(["a", "b"], ["BRCA", None])
    assert [o.stage[-1] for o in out] == ["Stage II", "Stage I"]        # BRCA row; all types (a tie) without
    assert ex.extract("c", "BRCA").stage[-1] == "Stage II"
    with pytest.raises(InputError, match="one type per text"):
        ex.extract_many(["a"], ["BRCA", "LUAD"])


_ITEMS = st.sampled_from(["pT1", "T2a", "pT3", "ypT2", "N0", "pN1", "N2", "M0", "M1", "MX", "Stage I", "Stage IIA",
                          "Stage IV", "stage 3", "Not a TNM"])


@settings(max_examples=200, deadline=None)
@given(items=st.lists(_ITEMS, max_size=6), ctype=st.sampled_from([None, "BRCA", "LUAD"]))
def test_apply_changes_at_most_the_group(grouper, items, ctype):
    from cancerllm.benchmark.fields import predicted_stage

    r = PhenotypeResult(stage=items or None)
    out = grouper.apply(r, cancer_type=ctype)
    before, after = predicted_stage(r.stage), predicted_stage(out.stage)
    assert all(before[x] == after[x] for x in "TNM")                 # T, N, M never change
    if out.stage != r.stage:
        d = grouper.derive(*(before[x].canonical if before[x] else None for x in "TNM"), cancer_type=ctype)
        assert after["group"] == d.group and out.stage[-1] == d.group
