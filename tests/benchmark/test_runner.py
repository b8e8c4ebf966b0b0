"""Scoring, the benchmark runner on a tiny random model, the report writer and the CLI commands."""

from __future__ import annotations

import json

import pytest

from cancerllm._optional import is_available
from cancerllm.benchmark import build_tasks, score_diagnoses, score_phenotypes, select_records
from cancerllm.errors import InputError
from cancerllm.schema import PhenotypeResult

from .conftest import make_records


def _perfect(tasks):
    preds = [PhenotypeResult() for _ in tasks.records]
    for c in tasks.phenotype_cases:
        preds[c.report].set(c.phenotype, c.gold)
    return preds


def test_perfect_predictions_score_one_and_none_score_zero():
    tasks = build_tasks(select_records(make_records(20, seed=5), split="all"))
    good = score_phenotypes(tasks, _perfect(tasks))
    assert good["accuracy"]["overall"]["value"] == 1.0
    assert good["evaluation"]["average_f1"] == pytest.approx(1.0)
    empty = score_phenotypes(tasks, [PhenotypeResult() for _ in tasks.records])
    n_nr = sum(c.gold is None for c in tasks.phenotype_cases)
    # an empty answer is right exactly where the gold is "Not relevant"
    assert empty["accuracy"]["overall"]["value"] == pytest.approx(n_nr / len(tasks.phenotype_cases), abs=1e-4)
    assert set(good["accuracy"]["per_phenotype"]) == {c.phenotype for c in tasks.phenotype_cases if c.gold}
    # value-bearing and Not relevant apart: answering nothing is 0 on every value-bearing field, 1 on NR
    assert good["accuracy"]["macro"]["value"] == 1.0 and good["accuracy"]["not_relevant"]["value"] == 1.0
    assert all(f["value"] == 1.0 for f in good["fields"]["fields"].values())
    assert empty["accuracy"]["macro"]["value"] == 0.0 and empty["accuracy"]["value_bearing"]["value"] == 0.0
    assert empty["accuracy"]["not_relevant"]["value"] == 1.0 and empty["accuracy"]["not_relevant"]["n"] == n_nr
    assert empty["fields"]["fields"]["pt"]["answered"] == 0 and empty["fields"]["fields"]["pt"]["precision"] is None
    assert "not_relevant" not in good["fields"]["macro"]["fields"]


def test_normalisation_counts_other_spellings_as_matches():
    recs = make_records(1, seed=6)
    recs[0]["labels"].update(stage="Stage IIA", pT=None, pN=None, pM=None, grade="G3", laterality="Left")
    tasks = build_tasks(recs, phenotypes=["stage", "grade", "laterality"])
    pred = PhenotypeResult(stage=["stage 2a"], grade=["Grade III"], laterality=["left side"])
    sc = score_phenotypes(tasks, [pred], ci=False)
    assert sc["accuracy"]["per_phenotype"] == {p: {"value": 1.0, "ci": None, "n": 1}
                                              for p in ("laterality", "stage", "grade")}
    wrong = score_phenotypes(tasks, [PhenotypeResult(stage=["Stage IIB"], grade=["G2"], laterality=["Right"])],
                             ci=False)
    assert wrong["accuracy"]["overall"]["value"] == 0.0


def test_diagnosis_scores_and_icd_mapping():
    tasks = build_tasks(make_records(6, seed=7))
    gold_texts = [c.text for c in tasks.diagnosis_cases]
    sc = score_diagnoses(tasks, gold_texts, ci=False)
    assert sc["evaluation"]["average_f1"] == pytest.approx(1.0)
    assert 0 <= sc["icd"]["category"]["value"] <= 1 and sc["icd"]["category"]["n"] == 6
    none = score_diagnoses(tasks, [""] * 6, ci=False)
    assert none["evaluation"]["average_f1"] == 0.0 and none["icd"]["full"]["value"] == 0.0
    with pytest.raises(InputError, match="diagnoses"):
        score_diagnoses(tasks, gold_texts[:2])


def test_breast_diagnosis_maps_to_the_breast_category():
    recs = [r for r in make_records(30, seed=8) if r["cancer_type"] == "BRCA"][:2]
    tasks = build_tasks(recs)
    sc = score_diagnoses(tasks, ["Infiltrating ductal carcinoma, left breast"] * len(recs), ci=False)
    assert sc["icd"]["category"]["value"] == 1.0  # C50.x


def test_generated_codes_are_split_by_the_check_against_their_text():
    recs = [r for r in make_records(40, seed=8) if r["cancer_type"] == "BRCA"][:3]
    for r in recs:
        r["labels"]["icd_10"] = "C50.9"
    tasks = build_tasks(recs)
    texts = ["Infiltrating ductal carcinoma, left breast (C50.4)",   # agrees, right category
             "Infiltrating ductal carcinoma, left breast (C18.7)",   # contradicts its words, wrong category
             "Infiltrating ductal carcinoma, left breast"]           # no code
    sc = score_diagnoses(tasks, texts, ci=False)
    assert [c["code_consistent"] for c in sc["cases"]] == [True, False, None]
    by = sc["icd_generated_by_check"]
    assert by["consistent"] == {"value": 1.0, "ci": None, "n": 1, "share": round(1 / 3, 4)}
    assert by["inconsistent"]["value"] == 0.0 and by["inconsistent"]["n"] == 1
    assert by["unchecked"]["n"] == 1 and by["unchecked"]["value"] == 0.0
    assert sc["icd_generated"]["category"]["value"] == pytest.approx(1 / 3, abs=1e-4)
    # text-only diagnoses: no generated code, no split
    assert "icd_generated_by_check" not in score_diagnoses(tasks, [t.split(" (")[0] for t in texts], ci=False)


@pytest.fixture(scope="module")
def bench(tcga_file, tiny_model_dir, tmp_path_factory):
    from cancerllm.benchmark import run_benchmark

    out = tmp_path_factory.mktemp("bench")
    res = run_benchmark(tcga_file, models=[str(tiny_model_dir)], retrievers=["random"], k=1, limit=4,
                        misspelling_rates=(0.05, 0.1), diagnosis_max_new_tokens=4, out_dir=out, batch_size=8)
    return res, out


def test_benchmark_runs_every_system_and_writes_the_report(bench, tiny_model_dir):
    res, out = bench
    name = str(tiny_model_dir)
    if is_available("sklearn"):
        assert list(res["systems"]) == [
            name, f"{name} + rules (hybrid)", f"{name} + classifier (hybrid)", f"{name} + rules + classifier (hybrid)",
            f"{name} + staging table", f"{name} + rules + classifier (hybrid) + staging table", f"{name} + random (k=1)",
            "rules (regex)", "rules + most frequent", "rules + most frequent per cancer type",
            "classifier (tf-idf + linear SVM)"]
    else:  # skipped with a warning
        assert list(res["systems"]) == [
            name, f"{name} + rules (hybrid)", f"{name} + staging table", f"{name} + rules (hybrid) + staging table",
            f"{name} + random (k=1)", "rules (regex)", "rules + most frequent", "rules + most frequent per cancer type"]
    m = res["meta"]
    assert m["n_reports"] == 4 and m["split"] == "validation" and len(m["patient_ids"]) == 4
    assert m["n_retrieval_corpus_reports"] > 0
    for s in res["systems"].values():
        assert 0.0 <= s["phenotype_accuracy"]["overall"]["value"] <= 1.0
        assert s["timing"]["phenotype_s"] >= 0 and s["timing"]["peak_rss_mb"] > 0
        assert s["phenotype_accuracy"]["overall"]["n"] == m["n_phenotype_cases"]
    model = res["systems"][name]
    assert model["diagnosis"] is not None and set(model["icd"]) == {"full", "category"}
    assert model["timing"]["prompts_per_s"] > 0
    assert model["adapters"] == {t: {"adapter": None, "sha256": None} for t in ("phenotype", "diagnosis")}
    assert "diagnosis" not in res["systems"]["rules (regex)"] and "adapters" not in res["systems"]["rules (regex)"]
    # checking figures for model systems (details), none for the rules
    chk = model["checking"]
    assert chk["overall"]["n_answers"] == m["n_phenotype_cases"] == chk["overall"]["n_with_confidence"]
    assert 0 <= chk["overall"]["ece"] <= 1 and set(chk["per_phenotype"]) <= set(res["coverage"])
    shares = [v for v in chk["overall"]["span_share"].values() if v is not None]
    assert not shares or sum(shares) == pytest.approx(1.0, abs=1e-3)
    assert res["systems"]["rules (regex)"]["checking"] is None
    assert [p["rate"] for p in res["robustness"]["misspelling"][name]] == [0.05, 0.1]
    assert res["robustness"]["misspelling"][name][1]["n_misspelled_words"] > 0
    # the rules baseline is deterministic and good on the synthetic reports
    assert res["systems"]["rules (regex)"]["phenotype_accuracy"]["per_phenotype"]["laterality"]["value"] == 1.0
    # files
    assert json.loads((out / "results.json").read_text())["meta"]["patient_ids"] == m["patient_ids"]
    report = (out / "report.md").read_text()
    assert f"- Adapters of {name}: none for every task" in report
    for heading in ("## Coverage", "## Phenotype extraction", "## Per field", "## Per question", "## Diagnosis generation",
                    "Table 5", "## Robustness: misspellings", "Table 6", "![per_field.png](plots/per_field.png)",
                    "## Checking the answers"):
        assert heading in report, heading
    assert (out / "plots" / "per_field.png").stat().st_size > 1000
    assert (out / "plots" / "robustness.png").stat().st_size > 1000
    assert "n/a" in (out / "tables" / "per_phenotype.md").read_text()
    preds = (out / "predictions" / "rules_regex.jsonl").read_text().splitlines()
    assert len(preds) == m["n_phenotype_cases"]


def test_the_classifier_hybrid_takes_each_answer_from_the_model_or_the_classifier(bench, tiny_model_dir):
    pytest.importorskip("sklearn")
    res, _ = bench
    name = str(tiny_model_dir)
    systems = res["systems"]
    clf = systems["classifier (tf-idf + linear SVM)"]
    assert clf["kind"] == "classifier" and clf["fit_reports"] == res["meta"]["classifier_reports"] > 0
    assert clf["diagnosis"] is not None and set(clf["icd_generated"]) == {"full", "category"}

    def rows(system):
        return {(c["patient_id"], c["phenotype"]): c["prediction"] for c in systems[system]["phenotype_cases"]}

    model, classifier, hybrid = rows(name), rows("classifier (tf-idf + linear SVM)"), rows(f"{name} + classifier (hybrid)")
    single = {"histological_type", "tumor_location", "laterality", "grade"}
    changed = 0
    for key, pred in hybrid.items():
        if key[1] in single:
            assert pred in (model[key], classifier[key]), key
            changed += pred != model[key]
    # a random tiny model is never confident: the calibrated classifier replaces some of its answers
    assert changed > 0
    # the hybrid's diagnoses are the model's with the classifier's code where the model's was missing or contradicted
    hyb_diag = {c["patient_id"]: c["prediction"] for c in systems[f"{name} + classifier (hybrid)"]["diagnosis_cases"]}
    model_diag = {c["patient_id"]: c["prediction"] for c in systems[name]["diagnosis_cases"]}
    clf_code = {c["patient_id"]: c["prediction"].rsplit(" (", 1)[1] for c in clf["diagnosis_cases"]}
    assert set(hyb_diag) == set(model_diag)
    for pid, text in hyb_diag.items():
        assert text == model_diag[pid] or text.endswith(f"({clf_code[pid]}"), (text, model_diag[pid])


def test_without_scikit_learn_the_classifier_is_skipped(tcga_file, monkeypatch):
    import cancerllm._optional as optional
    from cancerllm.benchmark import run_benchmark

    real = optional.is_available
    monkeypatch.setattr(optional, "is_available", lambda m: False if m == "sklearn" else real(m))
    with pytest.warns(RuntimeWarning, match="scikit-learn"):
        res = run_benchmark(tcga_file, models=[], limit=3, diagnosis=False, misspelling_rates=(), ci=False)
    assert "classifier (tf-idf + linear SVM)" not in res["systems"]
    assert res["meta"]["classifier"].startswith("skipped")


def test_same_limit_same_reports(bench, tcga_file):
    from cancerllm.benchmark import run_benchmark

    res, _ = bench
    again = run_benchmark(tcga_file, models=[], limit=4, diagnosis=False, misspelling_rates=(), ci=False,
                          classifier=False)
    assert again["meta"]["patient_ids"] == res["meta"]["patient_ids"]
    assert list(again["systems"]) == ["rules (regex)", "rules + most frequent", "rules + most frequent per cancer type"]


def test_bad_arguments(tcga_file):
    from cancerllm.benchmark import run_benchmark

    with pytest.raises(InputError, match="misspelling"):
        run_benchmark(tcga_file, models=[], misspelling_rates=(2.0,))
    with pytest.raises(InputError, match="models must be"):
        run_benchmark(tcga_file, models=[42], limit=2, misspelling_rates=())


def test_cli_benchmark(tcga_file, tmp_path):
    from typer.testing import CliRunner

    from cancerllm.cli import app

    out, empty = tmp_path / "b", tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(app, ["benchmark", "--data", str(tcga_file), "--model", str(empty), "--no-rules",
                                 "--limit", "3", "--out", str(out)])
    assert r.exit_code == 1 and "error:" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["benchmark", "--data", str(tmp_path / "missing.jsonl")])
    assert r.exit_code == 2 and "no such file" in r.output
    r = CliRunner().invoke(app, ["benchmark", "--data", str(tcga_file), "--misspelling", "abc"])
    assert r.exit_code == 2 and "--misspelling" in r.output


def test_cli_benchmark_writes_the_report(tcga_file, tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from cancerllm.cli import app

    out = tmp_path / "b"
    r = CliRunner().invoke(app, ["benchmark", "--data", str(tcga_file), "--model", str(tiny_model_dir),
                                 "--limit", "2", "--out", str(out), "--misspelling", "none", "--no-diagnosis",
                                 "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output.strip().splitlines()[-1])
    assert summary["reports"] == 2 and (out / "report.md").is_file()
    assert "- Command: `cancerllm " in (out / "report.md").read_text()


def test_the_staging_systems_are_the_models_answers_with_the_derived_group(bench, tiny_model_dir, tcga_file):
    pytest.importorskip("sklearn")  # the fullest hybrid is the one with the classifier
    from cancerllm.benchmark import select_records
    from cancerllm.benchmark.runner import _training_side
    from cancerllm.benchmark.staging import StageGrouper
    from cancerllm.data import read_tcga
    from cancerllm.schema import PhenotypeResult

    res, _ = bench
    name = str(tiny_model_dir)
    records = read_tcga(tcga_file)
    scored = [r for r in records if r.patient_id in set(res["meta"]["patient_ids"])]
    grouper = StageGrouper.from_records(_training_side(records, scored, "validation"))
    assert res["systems"][f"{name} + staging table"]["staging_reports"] == grouper.n_records > 0
    assert res["systems"][f"{name} + staging table"]["kind"] == "model+staging"
    assert res["systems"][f"{name} + rules + classifier (hybrid) + staging table"]["kind"] == \
        "rules-classifier-hybrid+staging"
    texts = {r.patient_id: r.text for r in select_records(records, split="validation", limit=4)}
    changed = 0
    for base, staged in ((name, f"{name} + staging table"),
                         (f"{name} + rules + classifier (hybrid)", f"{name} + rules + classifier (hybrid) + staging table")):
        cases = {(c["patient_id"], c["phenotype"]): c["prediction"] for c in res["systems"][base]["phenotype_cases"]}
        for c in res["systems"][staged]["phenotype_cases"]:
            before = cases[(c["patient_id"], c["phenotype"])]
            if c["phenotype"] != "stage":
                assert c["prediction"] == before
                continue
            hist = cases.get((c["patient_id"], "histological_type"))
            want = grouper.apply(PhenotypeResult(stage=before, histological_type=hist), text=texts[c["patient_id"]])
            assert c["prediction"] == want.stage
            changed += c["prediction"] != before
    # the synthetic reports that write no group get one derived from the rules' T, N, M in the hybrid
    assert changed > 0


def test_report_names_the_adapter_each_task_ran_with():
    from cancerllm.benchmark.report import _adapter_lines

    v3 = {"adapter": "cancerllm-smol-adapter", "sha256": "a" * 64}
    v4 = {"adapter": "cancerllm-smol-v4-adapter", "sha256": "b" * 64}
    systems = {"cancerllm-smol": {"model": "cancerllm-smol", "adapters": {"phenotype": v3, "diagnosis": v4}},
               "cancerllm-smol + rules (hybrid)": {"model": "cancerllm-smol"},
               "cancerllm-smol + random (k=1)": {"model": "cancerllm-smol",
                                                 "adapters": {"phenotype": v3, "diagnosis": v4}},
               "cancerllm-smol-v3": {"model": "cancerllm-smol-v3", "adapters": {"phenotype": v3, "diagnosis": v3}},
               "rules (regex)": {"model": None}}
    assert _adapter_lines(systems) == [
        "- Adapters of cancerllm-smol: phenotypes `cancerllm-smol-adapter` (aaaaaaaaaaaa), diagnoses "
        "`cancerllm-smol-v4-adapter` (bbbbbbbbbbbb)",
        "- Adapters of cancerllm-smol-v3: `cancerllm-smol-adapter` (aaaaaaaaaaaa) for every task",
    ]
