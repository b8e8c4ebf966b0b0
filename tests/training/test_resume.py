"""Checkpoints survive faults: a real training process killed with SIGKILL mid-run, continued with
``resume=True``, ends with exactly the adapter of an uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from safetensors.torch import load_file  # noqa: E402

from cancerllm.data import write_examples  # noqa: E402
from cancerllm.errors import ConfigError  # noqa: E402
from cancerllm.training import TrainingConfig, instruction_tune, latest_checkpoint  # noqa: E402
from cancerllm.training.checkpoint import CHECKPOINTS_DIR, checkpoint_dirs, load_checkpoint  # noqa: E402

# the killed process: a slow callback leaves time to kill it between checkpoints
_WORKER = """
import sys, time, torch
torch.set_num_threads(1)
from cancerllm.training import TrainerCallback, instruction_tune

class Slow(TrainerCallback):
    def on_step_end(self, state, model):
        time.sleep(0.1)

instruction_tune(sys.argv[1], callbacks=[Slow()])
"""

STEPS, EVERY = 20, 5


def _config(tmp_path, base, synth, name):
    cfg = TrainingConfig.from_dict(synth.config(
        tmp_path / name, base, data={"train": [str(tmp_path / "train.jsonl")]},
        lora={"r": 4, "alpha": 8, "dropout": 0.1},  # dropout: the RNG state must be restored too
        optimizer={"scheduler": "cosine", "warmup_steps": 2},
        training={"max_steps": STEPS, "batch_size": 2, "gradient_accumulation_steps": 2},  # 5 steps per epoch
        checkpoint={"save_every": EVERY, "keep_last": 2}))
    cfg.to_yaml(tmp_path / f"{name}.yaml")
    return cfg


def test_killed_run_resumes_to_the_same_adapter(train_base_dir, synth, tmp_path, one_thread):
    write_examples(synth.examples(synth.rows(10, seed=11)), tmp_path / "train.jsonl")
    killed_cfg = _config(tmp_path, train_base_dir, synth, "killed")
    ref_cfg = _config(tmp_path, train_base_dir, synth, "reference")
    out = tmp_path / "killed"
    (tmp_path / "worker.py").write_text(_WORKER)

    proc = subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(tmp_path / "killed.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while latest_checkpoint(out) is None:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "adapter_model.safetensors").exists()  # it really did not finish
    ckpt = latest_checkpoint(out)
    state = load_checkpoint(ckpt)["state"]
    assert 0 < state["step"] < STEPS and state["step"] % EVERY == 0

    instruction_tune(killed_cfg, resume=True)
    instruction_tune(ref_cfg)  # uninterrupted, same seed

    results = json.loads((out / "train_results.json").read_text())
    assert results["resumed_from"] == str(ckpt) and results["steps_this_session"] == STEPS - state["step"]
    a = load_file(str(out / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "reference" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert any(v.abs().max() > 0 for k, v in a.items() if "lora_B" in k)
    # the log of the resumed run has each step once
    steps = [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS
    assert len(checkpoint_dirs(out)) <= 2  # keep_last


def test_resume_refuses_changed_settings_and_fresh_runs_clear_old_checkpoints(train_base_dir, synth, tmp_path):
    write_examples(synth.examples(synth.rows(4, seed=12)), tmp_path / "train.jsonl")
    cfg = TrainingConfig.from_dict(synth.config(
        tmp_path / "run", train_base_dir, data={"train": [str(tmp_path / "train.jsonl")]},
        training={"max_steps": 4, "batch_size": 2}, checkpoint={"save_every": 2}))
    instruction_tune(cfg)
    assert [p.name for p in checkpoint_dirs(tmp_path / "run")] == ["step-000002"]
    with pytest.raises(ConfigError, match="settings changed.*batch_size"):
        instruction_tune(cfg.updated(training={"batch_size": 1}), resume=True)
    with pytest.raises(ConfigError, match="settings changed.*data_sha256"):
        instruction_tune(cfg, examples=synth.examples(synth.rows(4, seed=99)), resume=True)
    # the response-only LM head gives the same loss up to rounding, so exact resume needs the same setting
    with pytest.raises(ConfigError, match=r"settings changed.*response_only_lm_head: True -> False"):
        instruction_tune(cfg.updated(training={"response_only_lm_head": False}), resume=True)
    (tmp_path / "run" / CHECKPOINTS_DIR / ".tmp-step-000004").mkdir()  # a write interrupted by a crash
    instruction_tune(cfg.updated(training={"max_steps": 1}, checkpoint={"save_every": None}))
    assert checkpoint_dirs(tmp_path / "run") == []  # an old run's checkpoints could never be resumed by mistake
    assert not list((tmp_path / "run").glob(f"{CHECKPOINTS_DIR}/.tmp-*"))


def test_checkpoints_of_an_older_version_resume_with_a_warning_for_unchecked_settings(tmp_path, caplog):
    from cancerllm.training.trainer import _check_fingerprint

    now = {"seed": 1, "response_only_lm_head": True}
    with caplog.at_level("WARNING", logger="cancerllm.training.trainer"):
        _check_fingerprint({"seed": 1}, now, tmp_path)  # written before the flag was recorded
    assert "response_only_lm_head" in caplog.text and "not checked" in caplog.text
    with pytest.raises(ConfigError, match="seed: 2 -> 1"):
        _check_fingerprint({"seed": 2, "response_only_lm_head": True}, now, tmp_path)
