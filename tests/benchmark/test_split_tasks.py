"""The patient-level split, the deterministic subset and the benchmark task builders."""

from __future__ import annotations

import random

import pytest

from cancerllm.benchmark import build_tasks, patient_split, select_records, split_records
from cancerllm.errors import InputError

from .conftest import make_records


def test_split_is_by_patient_stable_and_near_the_share():
    recs = make_records(400, seed=1)
    train, val = split_records(recs)
    assert len(train) + len(val) == 400 and 50 < len(val) < 110
    assert not {r["patient_id"] for r in train} & {r["patient_id"] for r in val}
    # order and file size do not move anyone
    shuffled = recs[:]
    random.Random(3).shuffle(shuffled)
    _, val2 = split_records(shuffled)
    assert {r["patient_id"] for r in val2} == {r["patient_id"] for r in val}
    _, val3 = split_records(recs[:100])
    assert {r["patient_id"] for r in val3} <= {r["patient_id"] for r in val}
    # one patient, one side, whatever the case of the barcode
    assert patient_split("tcga-sy-0001") == patient_split("TCGA-SY-0001")
    # a different salt is a different split
    _, other = split_records(recs, salt="another")
    assert {r["patient_id"] for r in other} != {r["patient_id"] for r in val}


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_split_rejects_bad_shares(bad):
    with pytest.raises(InputError, match="share"):
        patient_split("TCGA-XX-0001", validation=bad)


def test_split_needs_patient_ids():
    with pytest.raises(InputError, match="patient_id"):
        split_records([{"text": "no id"}])


def test_limit_is_deterministic_and_extends():
    recs = make_records(200, seed=2)
    a = [r.patient_id for r in select_records(recs, limit=10)]
    b = [r.patient_id for r in select_records(list(reversed(recs)), limit=10)]
    c = [r.patient_id for r in select_records(recs, limit=20)]
    assert a == b and c[:10] == a and len(set(c)) == 20
    val = {r["patient_id"] for r in split_records(recs)[1]}
    assert set(c) <= val
    assert len(select_records(recs, split="all")) == 200
    with pytest.raises(InputError, match="limit"):
        select_records(recs, limit=0)
    with pytest.raises(InputError, match="split"):
        select_records(recs, split="test")  # type: ignore[arg-type]


def test_tasks_score_recorded_values_and_not_relevant_receptors():
    recs = make_records(30, seed=4)
    tasks = build_tasks(select_records(recs, split="all"))
    by = {(c.patient_id, c.phenotype): c for c in tasks.phenotype_cases}
    for r in recs:
        pid, lab = r["patient_id"], r["labels"]
        assert by[(pid, "laterality")].gold == [lab["laterality"]]
        assert by[(pid, "grade")].gold == [lab["grade"]]
        assert (pid, "tumor_size") not in by  # null: not recorded, not scored
        if r["cancer_type"] == "BRCA":
            assert by[(pid, "receptor_status")].gold == [f"er {lab['ER'].lower()}"]
        else:  # receptors do not apply outside breast: scored as "Not relevant"
            assert by[(pid, "receptors")].gold is None and by[(pid, "receptor_status")].gold is None
        assert by[(pid, "stage")].labels == {"stage": lab["stage"], "pT": lab["pT"], "pN": "N0", "pM": lab["pM"]}
    cov = tasks.coverage()
    assert cov["tumor_size"]["n"] == 0 and cov["laterality"]["coverage"] == 1.0
    n_brca = sum(r["cancer_type"] == "BRCA" for r in recs)
    assert cov["receptors"]["with_value"] == n_brca and cov["receptors"]["not_relevant"] == 30 - n_brca
    assert cov["icd_10"]["n"] == 30
    assert [c.text for c in tasks.diagnosis_cases][0].startswith(recs[0]["labels"]["histology"])


def test_tasks_restricted_to_some_phenotypes():
    tasks = build_tasks(make_records(5), phenotypes=["grade", "stage"])
    assert tasks.phenotypes == ["grade", "stage"]  # the order asked for
    assert {c.phenotype for c in tasks.phenotype_cases} == {"grade", "stage"}
