"""Task adapters: one base, an adapter per task, switched exactly around each task's generation."""

from __future__ import annotations

import json
import shutil
import threading

import pytest

pytest.importorskip("peft")

import torch  # noqa: E402

from cancerllm import CancerLLM, ConfigError  # noqa: E402
from cancerllm._constants import CONFIG_NAME  # noqa: E402

TEXT = "Invasive ductal carcinoma of the left breast, grade 2, pT2 N0, ER positive."


def _adapter(base_dir, path, *, seed, dtype="float32", r=4):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    llm = CancerLLM.from_pretrained(base_dir, dtype=dtype)
    cfg = LoraConfig(r=r, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    llm.model = get_peft_model(llm.model, cfg).eval()
    llm._engine = None
    return llm.save_pretrained(path)


@pytest.fixture(scope="module")
def two_adapters(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("task-adapters")
    return _adapter(tiny_model_dir, root / "pheno", seed=1), _adapter(tiny_model_dir, root / "dx", seed=2)


def _logits(llm, task=None):
    ids = torch.tensor([llm.tokenizer(TEXT)["input_ids"]])
    if task is None:
        with torch.no_grad():
            return llm.model(ids).logits
    with llm.task_adapter(task), torch.no_grad():
        return llm.model(ids).logits


def _answers(llm):
    res = llm.phenotype_extractor(["grade", "stage"], max_new_tokens=6, progress=False).extract(TEXT)
    dx = llm.diagnosis_generator(max_new_tokens=6, progress=False).generate(TEXT)
    return res.raw, dx.raw


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_each_task_runs_exactly_as_its_adapter_alone(tiny_model_dir, tmp_path, dtype):
    pheno = _adapter(tiny_model_dir, tmp_path / "pheno", seed=1, dtype=dtype)
    dx = _adapter(tiny_model_dir, tmp_path / "dx", seed=2, dtype=dtype)
    both = CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": dx}, dtype=dtype)
    alone_p = CancerLLM.from_pretrained(pheno, dtype=dtype)
    alone_d = CancerLLM.from_pretrained(dx, dtype=dtype)
    assert both.adapter_merged and both.task_adapter_paths == {"diagnosis": dx}
    assert not torch.equal(_logits(alone_p), _logits(alone_d))  # the two adapters differ
    # back and forth, bit for bit: the base is restored from its copy, never by subtracting the update
    for _ in range(3):
        assert torch.equal(_logits(both, "diagnosis"), _logits(alone_d))
        assert torch.equal(_logits(both, "phenotype"), _logits(alone_p))
    # through the task objects
    pa, da = _answers(both)
    assert pa == _answers(alone_p)[0] and da == _answers(alone_d)[1]


def test_peft_unmerge_alone_would_not_be_exact_in_bfloat16(tiny_model_dir, tmp_path):
    """Why the base weights are copied: merge + unmerge does not give the bf16 base back."""
    pheno = _adapter(tiny_model_dir, tmp_path / "p", seed=1, dtype="bfloat16")
    plain = CancerLLM.from_pretrained(pheno, dtype="bfloat16", merge_adapter=False)
    base = {n: p.detach().clone() for n, p in plain.model.named_parameters() if "base_layer" in n}
    plain.model.merge_adapter()
    plain.model.unmerge_adapter()
    after = dict(plain.model.named_parameters())
    assert any(not torch.equal(base[n], after[n]) for n in base)


def test_unmerged_and_routed_phenotype_task(two_adapters):
    pheno, dx = two_adapters
    # unmerged weights: switching is set_adapter only
    both = CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": dx}, merge_adapter=False)
    assert not both.adapter_merged and both._switch is not None and not both._switch.merged
    assert torch.allclose(_logits(both, "diagnosis"), _logits(CancerLLM.from_pretrained(dx)), atol=1e-5)
    # the phenotype task routed instead: diagnoses run with the main adapter
    flipped = CancerLLM.from_pretrained(dx, task_adapters={"phenotype": pheno})
    assert torch.equal(_logits(flipped, "phenotype"), _logits(CancerLLM.from_pretrained(pheno)))
    assert torch.equal(_logits(flipped, "diagnosis"), _logits(CancerLLM.from_pretrained(dx)))


def test_save_and_reload_keeps_the_routing(two_adapters, tmp_path):
    pheno, dx = two_adapters
    both = CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": dx})
    expected = _answers(both)
    out = both.save_pretrained(tmp_path / "saved")
    cfg = json.loads((out / CONFIG_NAME).read_text())
    assert cfg["task_adapters"] == {"diagnosis": "diagnosis"}
    assert (out / "adapter_model.safetensors").is_file() and (out / "diagnosis" / "adapter_model.safetensors").is_file()
    again = CancerLLM.from_pretrained(out)
    assert again.task_adapter_paths == {"diagnosis": out / "diagnosis"}
    assert _answers(again) == expected
    # the saved folder can move: the task adapter's path is relative to it
    moved = tmp_path / "moved"
    shutil.move(str(out), moved)
    assert _answers(CancerLLM.from_pretrained(moved)) == expected
    # task_adapters={} turns the routing off: every task runs with the main adapter
    plain = CancerLLM.from_pretrained(moved, task_adapters={})
    assert plain.task_adapter_paths == {} and plain._switch is None
    assert _answers(plain) == _answers(CancerLLM.from_pretrained(pheno))


def test_provenance_names_the_adapter_each_task_ran_with(two_adapters):
    pheno, dx = two_adapters
    both = CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": dx})
    p_hash, d_hash = CancerLLM.from_pretrained(pheno).adapter_sha256, CancerLLM.from_pretrained(dx).adapter_sha256
    assert p_hash != d_hash
    assert both.adapter_sha256 == both.adapter_sha256_for("phenotype") == p_hash
    assert both.adapter_sha256_for("diagnosis") == d_hash
    res = both.phenotype_extractor(["grade"], max_new_tokens=4, progress=False).extract(TEXT)
    assert res.provenance.adapter_sha256 == p_hash
    assert "task_adapters=['diagnosis']" in repr(both)


def test_concurrent_tasks_take_turns(two_adapters):
    pheno, dx = two_adapters
    both = CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": dx})
    expected = _answers(both)
    out: dict[str, list] = {"p": [], "d": []}
    ext = both.phenotype_extractor(["grade", "stage"], max_new_tokens=6, progress=False)
    gen = both.diagnosis_generator(max_new_tokens=6, progress=False)

    def run_p():
        for _ in range(4):
            out["p"].append(ext.extract(TEXT).raw)

    def run_d():
        for _ in range(4):
            out["d"].append(gen.generate(TEXT).raw)

    threads = [threading.Thread(target=run_p), threading.Thread(target=run_d)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out["p"] == [expected[0]] * 4 and out["d"] == [expected[1]] * 4


def test_bad_task_adapters_are_refused(two_adapters, tiny_model_dir, tmp_path):
    pheno, dx = two_adapters
    with pytest.raises(ConfigError, match="unknown task"):
        CancerLLM.from_pretrained(pheno, task_adapters={"summary": dx})
    with pytest.raises(ConfigError, match="need a main adapter"):
        CancerLLM.from_pretrained(tiny_model_dir, task_adapters={"diagnosis": dx})
    with pytest.raises(ConfigError, match="unknown task"):
        with CancerLLM.from_pretrained(pheno).task_adapter("summary"):
            pass
    # trained with other prompt settings: it would be prompted unlike its training
    other = tmp_path / "other-prompt"
    shutil.copytree(dx, other)
    cfg = json.loads((other / CONFIG_NAME).read_text())
    cfg["prompt"]["style"] = "chat"
    (other / CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="other prompt settings"):
        CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": other})
    # another tokenizer
    tok = tmp_path / "other-tok"
    shutil.copytree(dx, tok)
    data = json.loads((tok / "tokenizer.json").read_text())
    data["added_tokens"] = [*data.get("added_tokens", []), {"id": 9999, "content": "<x>", "single_word": False,
                                                             "lstrip": False, "rstrip": False, "normalized": False,
                                                             "special": True}]
    (tok / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="another tokenizer"):
        CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": tok})
    # a folder that is no adapter
    from cancerllm import ModelLoadError

    with pytest.raises(ModelLoadError, match="not a PEFT adapter"):
        CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": tiny_model_dir})
    # the main adapter itself: nothing to switch
    same = CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": pheno})
    assert same.task_adapter_paths == {} and same._switch is None


@pytest.mark.parametrize("merge", [True, False])
def test_the_prefix_cache_never_serves_another_adapters_keys(two_adapters, merge):
    pheno, dx = two_adapters
    both = CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": dx}, merge_adapter=merge)
    from cancerllm.engine.base import GenerationSettings, PromptGroup

    tok = both.tokenizer
    report = tok(TEXT * 3)["input_ids"]  # one report, two questions: its KV is cached and shared
    groups = [PromptGroup(report, [tok(" The stage is")["input_ids"], tok(" The grade is")["input_ids"]])]
    settings = GenerationSettings(max_new_tokens=5)

    def run(llm):
        return [g.ids for g in llm.engine.generate(groups, settings)[0]]

    alone = {t: run(CancerLLM.from_pretrained(p, merge_adapter=merge)) for t, p in (("phenotype", pheno),
                                                                                    ("diagnosis", dx))}
    assert alone["phenotype"] != alone["diagnosis"]
    for task in ("phenotype", "diagnosis", "phenotype", "diagnosis"):  # same prompts, other weights each time
        with both.task_adapter(task):
            assert run(both) == alone[task]


def test_a_nested_task_block_gives_the_outer_one_its_adapter_back(two_adapters):
    pheno, dx = two_adapters
    both = CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": dx})
    expected = _logits(CancerLLM.from_pretrained(dx))
    with both.task_adapter("diagnosis"):
        both.phenotype_extractor(["grade"], max_new_tokens=3, progress=False).extract(TEXT)  # switches inside
        ids = torch.tensor([both.tokenizer(TEXT)["input_ids"]])
        with torch.no_grad():
            assert torch.equal(both.model(ids).logits, expected)


def test_tasks_loads_only_the_adapters_those_tasks_run_with(two_adapters):
    pheno, dx = two_adapters
    routed = {"diagnosis": dx}
    only_dx = CancerLLM.from_pretrained(pheno, task_adapters=routed, tasks=["diagnosis"])
    assert only_dx.adapter_path == dx and only_dx.task_adapter_paths == {} and only_dx._switch is None
    assert only_dx.adapter_sha256_for("diagnosis") == CancerLLM.from_pretrained(dx).adapter_sha256
    assert only_dx.tasks == ("diagnosis",)
    assert only_dx.diagnosis_generator(max_new_tokens=6, progress=False).generate(TEXT).raw == _answers(
        CancerLLM.from_pretrained(dx))[1]
    with pytest.raises(ConfigError, match="loaded for diagnosis only"):
        only_dx.phenotype_extractor(["grade"], progress=False).extract(TEXT)
    only_p = CancerLLM.from_pretrained(pheno, task_adapters=routed, tasks="phenotype")
    assert only_p.adapter_path == pheno and only_p.task_adapter_paths == {} and only_p._switch is None
    both = CancerLLM.from_pretrained(pheno, task_adapters=routed, tasks=["phenotype", "diagnosis"])
    assert both._switch is not None and both.task_adapter_paths == routed
    with pytest.raises(ConfigError, match="names no task"):
        CancerLLM.from_pretrained(pheno, tasks=[])
    with pytest.raises(ConfigError, match="unknown task"):
        CancerLLM.from_pretrained(pheno, tasks=["summary"])


def test_cli_jobs_load_and_record_the_adapter_of_their_task(two_adapters, tmp_path):
    from typer.testing import CliRunner

    from cancerllm.cli import app

    pheno, dx = two_adapters
    saved = CancerLLM.from_pretrained(pheno, task_adapters={"diagnosis": dx}).save_pretrained(tmp_path / "routed")
    src = tmp_path / "in"
    src.mkdir()
    (src / "r1.txt").write_text(TEXT)
    hashes = {"extract": CancerLLM.from_pretrained(pheno).adapter_sha256,
              "diagnose": CancerLLM.from_pretrained(dx).adapter_sha256}
    expected_dx = CancerLLM.from_pretrained(dx).diagnosis_generator(max_new_tokens=8, progress=False).generate(TEXT)
    for cmd, sha in hashes.items():
        out = tmp_path / f"{cmd}.jsonl"
        args = [cmd, str(src), "-o", str(out), "--model", str(saved), "-q"]
        res = CliRunner().invoke(app, args + (["-p", "grade"] if cmd == "extract" else ["--max-new-tokens", "8"]))
        assert res.exit_code == 0, res.output
        assert json.loads(out.with_name(out.name + ".run.json").read_text())["adapter_sha256"] == sha
    from cancerllm.jobs import read_results

    assert read_results(tmp_path / "diagnose.jsonl")["r1"]["result"]["diagnosis"] == expected_dx.text
