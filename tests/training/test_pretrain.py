"""Continued pre-training from a YAML config: packed raw text in, a loadable adapter and its statistics out."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("peft")
pytest.importorskip("accelerate")

from cancerllm import CancerLLM  # noqa: E402
from cancerllm.training import TrainingConfig, train  # noqa: E402


def test_pretrain_from_yaml_on_text_files_and_jsonl(train_base_dir, synth, tmp_path, one_thread):
    rows = synth.rows(30, seed=9)
    notes = tmp_path / "notes"
    notes.mkdir()
    for i, (text, _, _) in enumerate(rows[:10]):
        (notes / f"note{i:02d}.txt").write_text(text, encoding="utf-8")
    (tmp_path / "reports.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t, _, _ in rows[10:25]))
    (tmp_path / "held_out.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t, _, _ in rows[25:]))
    cfg = TrainingConfig.from_dict(synth.config(
        tmp_path / "pt", train_base_dir, stage="pretrain",
        data={"train": [str(notes), str(tmp_path / "reports.jsonl")], "eval": [str(tmp_path / "held_out.jsonl")],
              "block_size": 48},
        training={"max_steps": 12, "batch_size": 2}, logging={"log_every": 1}))
    path = tmp_path / "pt.yaml"
    cfg.to_yaml(path)

    out = train(path)  # dispatches on stage: pretrain

    results = json.loads((out / "train_results.json").read_text())
    packing = results["packing"]
    assert packing["n_documents"] == 25 and packing["packing_efficiency"] == 1.0
    assert packing["coverage"] > 0.9 and packing["unpacked_efficiency"] < packing["packing_efficiency"]
    losses = [json.loads(x)["loss"] for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(losses) == 12 and min(losses[-3:]) < losses[0]
    assert results["eval_loss"] > 0
    saved = json.loads((out / "cancerllm_config.json").read_text())
    assert saved["adapter"] is True and saved["training"]["stage"] == "pretrain"
    assert saved["base_model"] == str(train_base_dir.resolve())
    assert TrainingConfig.from_yaml(out / "training_config.yaml") == cfg
    llm = CancerLLM.from_pretrained(out)
    assert llm.has_adapter and isinstance(llm.generate(["Invasive ductal"], max_new_tokens=3)[0], str)
