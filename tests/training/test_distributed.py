"""Two real CPU processes (torchrun, gloo backend, DDP through Accelerate) train on different shards of the
data: their gradients are synchronised at every step, both end with the same adapter, and the gradient is
that of one process on the union of the shards even when the shards hold very different numbers of tokens."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from safetensors.torch import load_file  # noqa: E402

from cancerllm.data import write_examples  # noqa: E402
from cancerllm.prompts import format_answer  # noqa: E402
from cancerllm.training import TrainerCallback, TrainingConfig, instruction_tune, latest_checkpoint  # noqa: E402
from cancerllm.training.checkpoint import load_checkpoint  # noqa: E402

_WORKER = """
import json, sys, torch
from safetensors.torch import save_file
from cancerllm.training import TrainerCallback, instruction_tune

class Record(TrainerCallback):
    def __init__(self):
        self.grads, self.losses = [], []
    def on_before_optimizer_step(self, state, model):  # gradients after DDP's all-reduce
        self.grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]).clone())
    def on_step_end(self, state, model):
        self.losses.append(state.local_loss)
    def on_train_end(self, state, model):
        r = state.process_index
        sd = {n: p.detach().clone().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        sd.update({f"grad.{i}": g for i, g in enumerate(self.grads)})
        save_file(sd, f"{sys.argv[2]}/rank{r}.safetensors")
        with open(f"{sys.argv[2]}/rank{r}.json", "w") as f:
            json.dump({"local_losses": self.losses, "num_processes": state.num_processes,
                       "loss_log": [rec["loss"] for rec in state.log_history]}, f)

instruction_tune(sys.argv[1], callbacks=[Record()])
"""


def _free_port() -> int:
    with socket.socket() as s:  # binding is local; the test suite only blocks outgoing connections
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Grads(TrainerCallback):
    def __init__(self):
        self.grads = []

    def on_before_optimizer_step(self, state, model):
        self.grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]).clone())


def _unequal_examples(synth):
    """16 examples; without shuffling rank 0 reads the even ones (long answers: ~10x the labelled tokens)
    and rank 1 the odd ones (short answers)."""
    long = format_answer(["left", "right", "upper outer quadrant", "lower inner quadrant", "axillary tail",
                          "nipple", "central portion", "overlapping lesion"])
    ex = synth.examples(synth.rows(8, seed=13))
    return [e.model_copy(update={"response": long}) if i % 2 == 0 else e for i, e in enumerate(ex)]


def test_two_process_gloo_training_keeps_ranks_in_sync(train_base_dir, synth, tmp_path):
    examples = _unequal_examples(synth)
    write_examples(examples, tmp_path / "train.jsonl")
    steps = 3
    # each step: 2 micro-batches of 1 sequence per process (accumulated), 4 sequences in all
    cfg = TrainingConfig.from_dict(synth.config(
        tmp_path / "out", train_base_dir, data={"train": [str(tmp_path / "train.jsonl")], "shuffle": False},
        lora={"r": 4, "alpha": 8, "dropout": 0.0},
        training={"max_steps": steps, "batch_size": 1, "gradient_accumulation_steps": 2},
        checkpoint={"save_every": 2}))
    cfg.to_yaml(tmp_path / "cfg.yaml")
    (tmp_path / "worker.py").write_text(_WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           str(tmp_path / "worker.py"), str(tmp_path / "cfg.yaml"), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]

    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["num_processes"] for i in info] == [2, 2]
    # different data on each rank: the local losses differ ...
    assert info[0]["local_losses"] != info[1]["local_losses"]
    w0, w1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    # ... yet the gradients used for every step are the same on both (synchronised) ...
    for i in range(steps):
        assert torch.equal(w0[f"grad.{i}"], w1[f"grad.{i}"]) and w0[f"grad.{i}"].abs().sum() > 0
    # ... and both ranks end with the same adapter, which moved away from its initialisation (B starts at 0)
    params = [k for k in w0 if not k.startswith("grad.")]
    assert params and all(torch.equal(w0[k], w1[k]) for k in params)
    assert any(w0[k].abs().max() > 0 for k in params if "lora_B" in k)
    results = json.loads((tmp_path / "out" / "train_results.json").read_text())
    assert results["num_processes"] == 2 and results["steps"] == steps
    saved = load_file(str(tmp_path / "out" / "adapter_model.safetensors"))
    assert len(saved) == len(params)
    ckpt = latest_checkpoint(tmp_path / "out")  # one checkpoint, with the random states of both processes
    assert ckpt.name == "step-000002"
    assert load_checkpoint(ckpt, rank=1)["rng"] is not None and load_checkpoint(ckpt)["state"]["num_processes"] == 2

    # One process on the same data: its step 1 reads the 4 sequences the two processes read together (in
    # 2 micro-batches of 2).  The 2-process gradient is the gradient of the mean over all labelled tokens
    # (not the mean of each process's own token mean) and the reported loss is that mean.
    ref = _Grads()
    single = cfg.updated(output_dir=str(tmp_path / "single"), training={"batch_size": 2})
    instruction_tune(single, callbacks=[ref])
    g2, g1 = w0["grad.0"], ref.grads[0]
    assert g1.abs().sum() > 0
    torch.testing.assert_close(g2, g1, rtol=1e-4, atol=1e-7)
    single_log = [json.loads(x)["loss"] for x in (tmp_path / "single" / "train_log.jsonl").read_text().splitlines()]
    assert info[0]["loss_log"][0] == pytest.approx(single_log[0], rel=1e-5)
