"""The command line, called in-process (typer's CliRunner) and, for the crash test, as a real subprocess."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from cancerllm.cli import app
from cancerllm.jobs import read_results

runner = CliRunner()


def _reports(folder, n):
    folder.mkdir()
    for i in range(n):
        side = "left" if i % 2 else "right"
        (folder / f"r{i:03d}.txt").write_text(f"Invasive ductal carcinoma of the {side} breast, grade {i % 3 + 1}.")
    return folder


@pytest.mark.parametrize("cmd", [[], ["extract"], ["diagnose"], ["evaluate"], ["demo"], ["train"], ["index"]])
def test_help_everywhere(cmd):
    res = runner.invoke(app, [*cmd, "--help"])
    assert res.exit_code == 0 and "Usage" in res.output


def test_extract_jsonl_and_csv(tiny_model_dir, tmp_path):
    src = _reports(tmp_path / "in", 3)
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["extract", str(src), "-o", str(out), "--model", str(tiny_model_dir), "-p", "grade",
                              "-p", "laterality", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["inputs"] == 3 and summary["processed"] == 3 and summary["errors"] == 0
    recs = read_results(out)
    assert list(recs) == ["r000", "r001", "r002"]
    rec = recs["r000"]["result"]
    assert set(rec) == {"grade", "laterality", "needs_review", "details", "raw", "provenance"}
    assert set(rec["details"]) == set(rec["raw"]) == {"grade", "laterality"}
    text = (src / "r000.txt").read_text()
    assert rec["provenance"]["input_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    for item in rec["details"]["grade"]["items"]:  # evidence offsets index the input text
        if item["span"]:
            assert text[item["span"][0]:item["span"][1]].lower().replace(" ", "") in (
                item["value"].lower().replace(" ", ""), "g" + item["value"].lower())
    csv_out = tmp_path / "out.csv"
    res = runner.invoke(app, ["extract", str(src), "-o", str(csv_out), "--model", str(tiny_model_dir), "-p", "grade",
                              "-q"])
    assert res.exit_code == 0, res.output
    lines = csv_out.read_text().splitlines()
    assert lines[0] == "id,grade,raw_grade,error,needs_review,model,adapter_sha256,library_version,input_sha256"
    assert len(lines) == 4 and not list(tmp_path.glob("*.partial.jsonl"))


def test_extract_parquet_fhir_and_omop(tiny_model_dir, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    src = _reports(tmp_path / "in", 3)
    common = ["--model", str(tiny_model_dir), "-p", "grade", "-p", "laterality", "-q"]
    res = runner.invoke(app, ["extract", str(src), "-o", str(tmp_path / "out.parquet"), *common])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(tmp_path / "out.parquet")
    assert list(frame["id"]) == ["r000", "r001", "r002"] and {"grade", "laterality", "input_sha256"} <= set(frame)
    res = runner.invoke(app, ["extract", str(src), "-o", str(tmp_path / "bundles.ndjson"), "--format", "fhir",
                              *common])
    assert res.exit_code == 0, res.output
    bundles = [json.loads(line) for line in (tmp_path / "bundles.ndjson").read_text().splitlines()]
    assert len(bundles) == 3 and all(b["resourceType"] == "Bundle" for b in bundles)
    res = runner.invoke(app, ["extract", str(src), "-o", str(tmp_path / "note_nlp.csv"), "--format", "omop",
                              "--min-confidence", "0.5", *common])
    assert res.exit_code == 0, res.output
    header = (tmp_path / "note_nlp.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["note_nlp_id", "note_id", "section_concept_id"] and "term_modifiers" in header
    res = runner.invoke(app, ["extract", str(src), "-o", str(tmp_path / "x.csv"), "--format", "fhir", *common])
    assert res.exit_code == 2 and "must end in" in res.output


def test_bad_rows_become_error_records(tiny_model_dir, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,report\na,left breast G1\nb,"   "\nc,right G2\n')
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["extract", str(src), "-o", str(out), "--model", str(tiny_model_dir), "-p", "grade",
                              "--text-column", "report", "--json"])
    assert res.exit_code == 0, res.output
    recs = read_results(out)
    assert "error" in recs["b"] and "empty" in recs["b"]["error"]["message"]
    assert "result" in recs["a"] and "result" in recs["c"]


@pytest.mark.parametrize(
    "args, exit_code, message",
    [
        (["extract", "nowhere.txt", "-o", "x.jsonl"], 2, "no such file"),
        (["extract", "{csv}", "-o", "x.jsonl", "--text-column", "body"], 2, "no column 'body'"),
        (["extract", "{csv}", "-o", "x.txt"], 2, "cannot tell the format"),
        (["extract", "{csv}", "-o", "x.jsonl", "--format", "xml"], 2, "unknown output format 'xml'"),
        (["extract", "{csv}", "-o", "x.parquet", "--engine", "ray", "--format", "fhir"], 2, "apply to --engine local"),
        (["extract", "{csv}", "-o", "x.parquet", "--engine", "dask"], 2, "known engines"),
        (["extract", "{csv}", "-o", "x.jsonl", "-p", "colour"], 2, "unknown phenotype 'colour'"),
        (["extract", "{csv}", "-o", "x.jsonl", "-p", "her2"], 2, "known phenotypes: grade, histological_type"),
        (["extract", "{csv}", "-o", "x.jsonl", "--id-column", "pid"], 2, "no id column 'pid'"),
        (["extract", "{csv}", "-o", "x.jsonl", "--model", "{tmp}/missing-model"], 1, "cannot load model"),
        (["extract", "{csv}", "-o", "x.jsonl", "--batch-size", "0"], 2, "batch-size"),
        (["diagnose", "{tmp}/in.xlsx", "-o", "x.jsonl"], 2, "no such file"),
        (["evaluate", "{csv}", "{csv}", "--task", "icd"], 2, "unknown task 'icd'"),
        (["index", "{csv}", "-o", "idx", "--retriever", "bm25"], 2, "unknown retriever 'bm25'"),
        (["benchmark", "--data", "{csv}", "--split", "test"], 2, "--split 'test'"),
        (["benchmark", "--data", "{csv}", "--misspelling", "lots"], 2, "--misspelling"),
    ],
)
def test_errors_are_one_line_with_a_hint(tmp_path, args, exit_code, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("text\nG1\n")
    args = [a.replace("{csv}", str(tmp_path / "in.csv")).replace("{tmp}", str(tmp_path)) for a in args]
    res = runner.invoke(app, args)
    assert res.exit_code == exit_code, res.output
    assert message in res.output
    assert "Traceback" not in res.output


def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text": "ok"}\n{"text": "\xff\xfe"}\n')
    res = runner.invoke(app, ["extract", str(bad), "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "UTF-8" in res.output


def test_debug_shows_the_traceback(tmp_path):
    res = runner.invoke(app, ["--debug", "extract", str(tmp_path / "none.txt"), "-o", "x.jsonl"])
    assert res.exit_code != 0 and res.exception is not None


def _best_match(item, preds, golds):
    """P, R, F1 of one instance by the documented best-match rule, from an item score function."""
    p = sum(max(item(prediction=x, reference=g) for g in golds) for x in preds) / len(preds)
    r = sum(max(item(prediction=x, reference=g) for x in preds) for g in golds) / len(golds)
    return p, r, 2 * p * r / (p + r)


def test_evaluate_command_joins_by_id_and_scores_exactly(tmp_path):
    from cancerllm.metrics import bleu2_item, rouge_l_item
    from cancerllm.metrics.official import official_rouge_item

    # the two files list the ids in opposite orders: a positional join would score {left} against {pr, her2, er}
    (tmp_path / "p.jsonl").write_text('{"id": "2", "prediction": "{left}"}\n{"id": "1", "prediction": "{pr, er}"}\n')
    (tmp_path / "g.jsonl").write_text('{"id": "1", "reference": "{pr, her2, er}"}\n{"id": "2", "reference": "{left}"}\n')
    res = runner.invoke(app, ["evaluate", str(tmp_path / "p.jsonl"), str(tmp_path / "g.jsonl"), "--official", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    ours, theirs = out["cancerllm"], out["official code"]
    # EM by hand: instance 1 P = 2/2, R = 2/3, F1 = 0.8; instance 2 all 1; macro means
    assert ours["exact_match"]["precision"] == 1.0
    assert ours["exact_match"]["recall"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-12)
    assert ours["exact_match"]["f1"] == pytest.approx(0.9, abs=1e-12)
    f1s = [0.9]
    for name, item in (("bleu2", bleu2_item), ("rouge_l", rouge_l_item)):
        p1, r1, f1 = _best_match(item, ["pr", "er"], ["pr", "her2", "er"])
        p2, r2, f2 = _best_match(item, ["left"], ["left"])
        assert (p2, r2, f2) == (1.0, 1.0, 1.0)
        assert ours[name]["precision"] == pytest.approx((p1 + p2) / 2, abs=1e-12)
        assert ours[name]["recall"] == pytest.approx((r1 + r2) / 2, abs=1e-12)
        assert ours[name]["f1"] == pytest.approx((f1 + f2) / 2, abs=1e-12)
        f1s.append((f1 + f2) / 2)
    assert ours["rouge_l"]["recall"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-12)  # her2 matches no token
    assert ours["average_f1"] == pytest.approx(sum(f1s) / 3, abs=1e-12)
    # official code: the gold string is one item "pr her2 er", so EM finds nothing in instance 1
    assert (theirs["exact_match"]["precision"], theirs["exact_match"]["recall"], theirs["exact_match"]["f1"]) == (
        0.5, 0.5, 0.5)
    f = official_rouge_item(prediction="pr", reference="pr her2 er")
    assert f == pytest.approx(2.44 * (1 / 3) / (1 / 3 + 1.44))  # prec 1, rec 1/3, beta 1.2
    assert theirs["rouge_l"]["f1"] == pytest.approx((f + 1) / 2, abs=1e-12)
    # the Markdown table shows the same numbers in percent
    res = runner.invoke(app, ["evaluate", str(tmp_path / "p.jsonl"), str(tmp_path / "g.jsonl"), "--official"])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if line.startswith("| cancerllm |"))
    assert row.split("|")[2:5] == [" 100.00 ", " 83.33 ", " 90.00 "]
    assert "| official code | 50.00 | 50.00 | 50.00 |" in res.output


def test_evaluate_diagnosis_scores_whole_texts(tmp_path):
    pred = "Invasive ductal carcinoma, left breast\nwith DCIS"
    gold = "invasive ductal carcinoma, left breast with DCIS"
    (tmp_path / "p.jsonl").write_text(json.dumps({"id": "a", "prediction": pred}) + "\n")
    (tmp_path / "g.jsonl").write_text(json.dumps({"id": "a", "reference": gold}) + "\n")
    args = ["evaluate", str(tmp_path / "p.jsonl"), str(tmp_path / "g.jsonl"), "--json"]
    whole = json.loads(runner.invoke(app, [*args, "--task", "diagnosis"]).stdout)["cancerllm"]
    assert whole["exact_match"]["f1"] == 1.0 and whole["average_f1"] == 1.0
    # as a phenotype answer the same text is cut at the line break and split on the comma:
    # predicted {invasive ductal carcinoma, left breast}, gold {invasive ductal carcinoma, left breast with dcis}
    parsed = json.loads(runner.invoke(app, args).stdout)["cancerllm"]
    assert parsed["exact_match"]["precision"] == 0.5 and parsed["exact_match"]["recall"] == 0.5
    # a `diagnose` results file: the 'diagnosis' field is scored by default; a failed input is no answer
    (tmp_path / "r.jsonl").write_text(json.dumps({"id": "a", "result": {"diagnosis": pred}}) + "\n"
                                      + json.dumps({"id": "b", "error": {"type": "InputError", "message": "x"}})
                                      + "\n")
    (tmp_path / "g2.jsonl").write_text(json.dumps({"id": "a", "reference": gold}) + "\n"
                                       + json.dumps({"id": "b", "reference": "lung adenocarcinoma"}) + "\n")
    res = runner.invoke(app, ["evaluate", str(tmp_path / "r.jsonl"), str(tmp_path / "g2.jsonl"), "--task", "diagnosis",
                              "--json"])
    assert res.exit_code == 0, res.output
    em = json.loads(res.stdout)["cancerllm"]["exact_match"]
    assert (em["precision"], em["recall"], em["f1"], em["n"]) == (0.5, 0.5, 0.5, 2)


@pytest.mark.parametrize(
    "preds, golds, message",
    [
        ('{"id": "1", "prediction": "a"}\n', '{"id": "1", "reference": "a"}\n{"id": "2", "reference": "b"}\n',
         "1 reference ids have no prediction (first: '2')"),
        ('{"prediction": "a"}\n', '{"id": "1", "reference": "a"}\n', "p.jsonl:1: record without an 'id'"),
        ('{"id": "1", "prediction": "a"}\n', '{"id": "1", "gold": "a"}\n', "g.jsonl:1: record without a 'reference'"),
        ('{"id": "1", "prediction": "a"}\n{"id": "1", "prediction": "b"}\n', '{"id": "1", "reference": "a"}\n',
         "p.jsonl:2: duplicate id '1'"),
        ('{"id": "1", "result": {"grade": ["G1"]}}\n', '{"id": "1", "reference": "G1"}\n', "pass --field"),
    ],
)
def test_evaluate_bad_inputs_exit_2(tmp_path, preds, golds, message):
    (tmp_path / "p.jsonl").write_text(preds)
    (tmp_path / "g.jsonl").write_text(golds)
    res = runner.invoke(app, ["evaluate", str(tmp_path / "p.jsonl"), str(tmp_path / "g.jsonl")])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_evaluate_extract_results_with_field(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"id": "1", "result": {"grade": ["G1", "G2"]}}\n'
                                      '{"id": "2", "result": {"grade": null}}\n')
    (tmp_path / "g.csv").write_text("id,reference\n1,{G1}\n2,Not relevant\n")
    res = runner.invoke(app, ["evaluate", str(tmp_path / "r.jsonl"), str(tmp_path / "g.csv"), "--field", "grade",
                              "--json"])
    assert res.exit_code == 0, res.output
    em = json.loads(res.stdout)["cancerllm"]["exact_match"]
    # instance 1: P = 1/2, R = 1, F1 = 2/3; instance 2: Not relevant vs nothing -> 1, 1, 1
    assert em["precision"] == 0.75 and em["recall"] == 1.0 and em["f1"] == pytest.approx((2 / 3 + 1) / 2)


def test_killed_runs_resume_without_losses_or_duplicates(tiny_model_dir, tmp_path):
    """SIGKILL a real `cancerllm extract` process at random points several times, then let it finish:
    exactly one result per input, none lost, none duplicated, no torn line."""
    src = _reports(tmp_path / "in", 24)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "cancerllm.cli", "extract", str(src), "-o", str(out), "--model",
           str(tiny_model_dir), "-p", "grade", "--batch-size", "2", "-q"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    rng = random.Random(7)
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # wait until the run has written something new (or finished), then kill at a random moment
        before = out.stat().st_size if out.exists() else 0
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if out.exists() and out.stat().st_size > before:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 1
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    lines = out.read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert sorted(ids) == [f"r{i:03d}" for i in range(24)]
    assert len(ids) == len(set(ids)) and out.read_bytes().endswith(b"\n")


def test_sigint_writes_the_chunk_in_flight_and_exits_130(tiny_model_dir, tmp_path):
    """Ctrl-C (SIGINT) or SIGTERM: the chunk being generated is finished and written, the process exits 130
    and says how to continue; the rerun completes with exactly one line per input."""
    src = _reports(tmp_path / "in", 40)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "cancerllm.cli", "extract", str(src), "-o", str(out), "--model",
           str(tiny_model_dir), "-p", "grade", "--batch-size", "2", "--chunk-size", "4", "-q"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    interrupted = 0
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        before = out.stat().st_size if out.exists() else 0
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None and not (out.exists() and out.stat().st_size > before):
            time.sleep(0.02)
        proc.send_signal(sig)
        err = proc.communicate(timeout=120)[1]
        if proc.returncode == 0:  # the run ended before the signal arrived
            break
        assert proc.returncode == 130 and "run the same command again" in err, (sig, proc.returncode, err)
        interrupted += 1
        lines = out.read_text().splitlines()
        assert lines and len(lines) % 4 == 0 and out.read_bytes().endswith(b"\n")  # whole chunks only
    assert interrupted >= 1
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == [f"r{i:03d}" for i in range(40)] and len(ids) == len(set(ids))


def test_resume_refuses_other_settings_and_retries_errors_on_request(tiny_model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "left breast G1"}\n{"id": "b", "text": "   "}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    base = ["extract", str(src), "-o", str(out), "--model", str(tiny_model_dir), "-q"]
    assert runner.invoke(app, [*base, "-p", "grade"]).exit_code == 0
    res = runner.invoke(app, [*base, "-p", "laterality"])  # other settings into the same file
    assert res.exit_code == 2 and "other settings (phenotypes differ)" in res.output
    # fix the bad row and retry it: the new line supersedes the error, the good row is not redone
    src.write_text('{"id": "a", "text": "left breast G1"}\n{"id": "b", "text": "right lung G2"}\n', encoding="utf-8")
    res = runner.invoke(app, [*base, "-p", "grade", "--retry-errors", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["done_before"] == 1 and summary["processed"] == 1 and summary["errors"] == 0
    recs = read_results(out)
    assert set(recs) == {"a", "b"} and "result" in recs["b"] and len(out.read_text().splitlines()) == 3


@pytest.fixture
def train_cfg(tmp_path):
    from cancerllm.training import TrainingConfig

    path = tmp_path / "cfg.yaml"
    TrainingConfig.from_dict({"output_dir": str(tmp_path / "out"), "model": {"name_or_path": "base"}}).to_yaml(path)
    return path


def test_train_dry_run_builds_the_multi_node_command(train_cfg):
    res = runner.invoke(app, ["train", "--config", str(train_cfg), "--nproc", "4", "--nnodes", "2", "--node-rank", "1",
                              "--master-addr", "10.0.0.1", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "torch.distributed.run" in res.stdout and "--nnodes=2" in res.stdout and "--node_rank=1" in res.stdout
    res = runner.invoke(app, ["train", "--config", str(train_cfg), "--preset", "fsdp", "--nproc", "2", "--dry-run"])
    assert res.exit_code == 0 and "accelerate" in res.stdout and "fsdp" in res.stdout


def test_train_errors(train_cfg, tmp_path):
    res = runner.invoke(app, ["train", "--config", str(tmp_path / "none.yaml")])
    assert res.exit_code == 2 and "no such training config" in res.output
    res = runner.invoke(app, ["train", "--config", str(train_cfg), "--preset", "megatron"])
    assert res.exit_code == 2 and "deepspeed-zero2" in res.output  # an unknown name is a bad argument
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: x\nmodel: {name_or_path: b}\nlearnin_rate: 1\n")
    res = runner.invoke(app, ["train", "--config", str(bad)])
    assert res.exit_code == 2 and "learnin_rate" in res.output and "Traceback" not in res.output


def test_index_command(tmp_path):
    src = tmp_path / "corpus.jsonl"
    src.write_text("".join(f'{{"id": "d{i}", "text": "report number {i}"}}\n' for i in range(5)))
    res = runner.invoke(app, ["index", str(src), "-o", str(tmp_path / "idx"), "--retriever", "random", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["documents"] == 5
    from cancerllm.retrieval import Retriever

    r = Retriever.from_index(tmp_path / "idx")
    hits = r.search(["report number 1"], k=2)[0]
    assert len(hits) == 2 and all(h.id.startswith("d") for h in hits)
    res = runner.invoke(app, ["index", str(src), "-o", str(tmp_path / "i2"), "--retriever", "bm25"])
    assert res.exit_code == 2 and "contriever" in res.output
