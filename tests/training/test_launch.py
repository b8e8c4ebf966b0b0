"""The launcher, tested without launching: an injected launch function receives the command line."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from cancerllm.errors import CancerLLMError, ConfigError, InputError, UnknownBackendError
from cancerllm.training import PRESETS, TrainingConfig, build_command, launch, preset_path


@pytest.fixture
def cfg_path(tmp_path):
    path = tmp_path / "cfg.yaml"
    TrainingConfig.from_dict({"output_dir": str(tmp_path / "out"), "model": {"name_or_path": "base"}}).to_yaml(path)
    return path


class Recorder:
    def __init__(self, returncode: int = 0):
        self.calls: list[tuple[list[str], dict]] = []
        self.returncode = returncode

    def __call__(self, cmd, **kw):
        self.calls.append((cmd, kw))
        return SimpleNamespace(returncode=self.returncode)


def test_single_process_runs_the_module_directly(cfg_path):
    rec = Recorder()
    launch(cfg_path, launcher=rec)
    (cmd, kw), = rec.calls
    assert cmd == [sys.executable, "-m", "cancerllm.training", "--config", str(cfg_path)]
    assert kw["check"] is False


def test_multi_gpu_and_multi_node_use_torchrun(cfg_path):
    rec = Recorder()
    launch(cfg_path, nproc=8, nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=29400, resume=True,
           launcher=rec, env={"NCCL_DEBUG": "WARN"})
    (cmd, kw), = rec.calls
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    for arg in ("--nnodes=2", "--nproc_per_node=8", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29400"):
        assert arg in cmd
    assert cmd[-5:] == ["-m", "cancerllm.training", "--config", str(cfg_path), "--resume"]
    assert kw["env"] == {"NCCL_DEBUG": "WARN"}
    from torch.distributed.run import get_args_parser  # torchrun's own parser accepts it

    ns = get_args_parser().parse_args(cmd[3:])
    assert (ns.nnodes, ns.nproc_per_node, ns.node_rank, ns.master_addr, ns.master_port) == ("2", "8", 1, "10.0.0.1", 29400)
    assert ns.module and ns.training_script == "cancerllm.training"


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_use_accelerate_launch_with_a_shipped_config(cfg_path, preset):
    rec = Recorder()
    launch(cfg_path, nproc=4, nnodes=2, node_rank=0, master_addr="node0", preset=preset, launcher=rec)
    (cmd, _), = rec.calls
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    i = cmd.index("--module")
    assert cmd[i + 1:] == ["cancerllm.training", "--config", str(cfg_path)]
    # accelerate's own parser accepts the command line
    from accelerate.commands.launch import launch_command_parser

    ns = launch_command_parser().parse_args(cmd[3:])
    assert (ns.num_processes, ns.num_machines, ns.machine_rank, ns.main_process_ip) == (8, 2, 0, "node0")
    assert ns.module and ns.training_script == "cancerllm.training"
    assert ns.training_script_args == ["--config", str(cfg_path)] and ns.config_file == str(preset_path(preset))
    shipped = yaml.safe_load(preset_path(preset).read_text())
    expected = {"ddp": "MULTI_GPU", "deepspeed-zero2": "DEEPSPEED", "deepspeed-zero3": "DEEPSPEED", "fsdp": "FSDP"}
    assert shipped["distributed_type"] == expected[preset]
    if preset.startswith("deepspeed"):
        assert shipped["deepspeed_config"]["zero_stage"] == int(preset[-1])
    if preset == "fsdp":
        assert shipped["fsdp_config"]["fsdp_use_orig_params"] is True  # needed for LoRA


def test_bad_arguments_fail_before_launching(cfg_path, tmp_path):
    rec = Recorder()
    with pytest.raises(UnknownBackendError, match="deepspeed-zero2, deepspeed-zero3, ddp, fsdp|ddp, deepspeed"):
        launch(cfg_path, preset="zero9", launcher=rec)
    with pytest.raises(InputError, match="node_rank"):
        launch(cfg_path, nnodes=2, node_rank=2, launcher=rec)
    with pytest.raises(InputError, match="nproc"):
        build_command(cfg_path, nproc=0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: o\nmodel: {name_or_path: b}\noptimiser: {}\n")
    with pytest.raises(ConfigError, match="unknown key 'optimiser'.*did you mean 'optimizer'"):
        launch(bad, launcher=rec)
    with pytest.raises(ConfigError, match="does not exist"):
        launch(tmp_path / "missing.yaml", launcher=rec)
    assert rec.calls == []


def test_failed_training_raises(cfg_path):
    with pytest.raises(CancerLLMError, match="exited with status 3"):
        launch(cfg_path, launcher=Recorder(returncode=3))


def test_module_entry_point_dry_run(cfg_path):
    out = subprocess.run([sys.executable, "-m", "cancerllm.training", "--config", str(cfg_path), "--nproc", "2",
                          "--dry-run"], capture_output=True, text=True, check=True).stdout
    assert "torch.distributed.run" in out and "--nproc_per_node=2" in out and str(cfg_path) in out


def test_real_single_process_launch_trains_through_the_module_entry_point(train_base_dir, synth, tmp_path):
    pytest.importorskip("peft")
    from cancerllm.data import write_examples

    write_examples(synth.examples(synth.rows(2, seed=21)), tmp_path / "train.jsonl")
    path = tmp_path / "run.yaml"
    TrainingConfig.from_dict(synth.config(tmp_path / "out", train_base_dir,
                                          data={"train": [str(tmp_path / "train.jsonl")]},
                                          training={"max_steps": 1, "batch_size": 2})).to_yaml(path)
    done = launch(path, launcher=lambda cmd, **kw: subprocess.run(cmd, capture_output=True, text=True, **kw))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert done.stdout.strip().endswith(str(tmp_path / "out"))
