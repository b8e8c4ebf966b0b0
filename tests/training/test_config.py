"""TrainingConfig: defaults, the paper's presets, YAML round trip, strict keys with helpful messages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cancerllm.errors import ConfigError
from cancerllm.training import TrainingConfig, load_config

MINIMAL = {"output_dir": "out", "model": {"name_or_path": "base"}}


def test_defaults_send_nothing_and_adapt_all_linear_layers():
    cfg = TrainingConfig.from_dict(MINIMAL)
    assert cfg.logging.report_to == "none"
    assert cfg.lora.target_modules == "all-linear"
    assert cfg.quantization.load_in_4bit is False
    assert cfg.stage == "sft" and cfg.checkpoint.resume is False


def test_paper_presets():
    pt = TrainingConfig.paper_pretrain(model="m", output_dir="o", train="notes/")
    assert (pt.stage, pt.lora.r, pt.lora.alpha, pt.lora.dropout, pt.optimizer.learning_rate, pt.training.epochs) == (
        "pretrain", 8, 16, 0.05, 2e-4, 1.0)
    assert pt.data.train == ["notes/"]
    sft = TrainingConfig.paper_sft(model="m", output_dir="o", train=["a.jsonl"], training={"max_steps": 3})
    assert (sft.lora.r, sft.lora.alpha, sft.optimizer.learning_rate) == (64, 16, 2e-4)
    q = sft.quantization
    assert (q.load_in_4bit, q.quant_type, q.double_quant) == (True, "nf4", True)
    assert sft.training.max_steps == 3 and sft.model.pretrain_adapter is None
    stacked = TrainingConfig.paper_sft(model="m", output_dir="o", train="a.jsonl", pretrain_adapter="runs/pt",
                                       qlora=False)
    assert stacked.model.pretrain_adapter == "runs/pt" and stacked.quantization.load_in_4bit is False


def test_yaml_round_trip(tmp_path):
    cfg = TrainingConfig.from_dict({
        **MINIMAL, "stage": "pretrain", "seed": 7,
        "data": {"train": ["a.txt", "b.jsonl"], "block_size": 512},
        "lora": {"r": 16, "target_modules": ["q_proj", "v_proj"]},
        "optimizer": {"betas": [0.9, 0.95], "scheduler": "cosine"},
        "checkpoint": {"save_every": 50, "resume": True},
        "logging": {"report_to": ["tensorboard"]},
    })
    path = tmp_path / "cfg.yaml"
    text = cfg.to_yaml(path)
    assert path.read_text() == text
    assert TrainingConfig.from_yaml(path) == cfg
    assert TrainingConfig.from_yaml(text) == cfg
    assert load_config(str(path)) == cfg
    assert cfg.updated(training={"max_steps": 5}).training.max_steps == 5


def test_unknown_top_level_key_is_named_with_the_allowed_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("output_dir: out\nmodel: {name_or_path: base}\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError) as exc:
        TrainingConfig.from_yaml(path)
    msg = str(exc.value)
    assert "unknown key 'learning_rate'" in msg and str(path) in msg
    assert "allowed keys: stage, output_dir, seed, model, data, lora" in msg


def test_unknown_nested_key_names_its_section_and_suggests():
    with pytest.raises(ConfigError) as exc:
        TrainingConfig.from_dict({**MINIMAL, "lora": {"r": 8, "dropuot": 0.1}, "optimizer": {"lr": 1e-4}})
    msg = str(exc.value)
    assert "lora: unknown key 'dropuot' (did you mean 'dropout'?)" in msg
    assert "allowed keys: r, alpha, dropout, target_modules, bias" in msg
    assert "optimizer: unknown key 'lr'" in msg and "learning_rate" in msg
    assert "2 problems" in msg


def test_bad_values_and_missing_keys_are_reported_by_location():
    with pytest.raises(ConfigError) as exc:
        TrainingConfig.from_dict({"model": {}, "training": {"batch_size": 0}, "stage": "finetune"})
    msg = str(exc.value)
    for where in ("output_dir: required key is missing", "model.name_or_path: required key is missing",
                  "training.batch_size", "stage"):
        assert where in msg, msg


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="invalid YAML"):
        TrainingConfig.from_yaml("output_dir: [unclosed\n")
    with pytest.raises(ConfigError, match="does not exist"):
        TrainingConfig.from_yaml(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        TrainingConfig.from_yaml("- a\n- b\n")


@pytest.mark.parametrize("attn", ["flash_attention_2", "flash_attention_3", "kernels-community/flash-attn"])
def test_share_prefix_with_flash_attention_is_refused_at_load(tmp_path, attn):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"output_dir: out\nmodel: {{name_or_path: base, attn_implementation: {attn}}}\n"
                    "data: {share_prefix: true}\n")
    with pytest.raises(ConfigError) as exc:
        TrainingConfig.from_yaml(path)
    msg = str(exc.value)  # why, and what to use instead
    assert "share_prefix" in msg and repr(attn) in msg and "4D mask" in msg and "'sdpa'" in msg
    assert "share_prefix: false" in msg
    with pytest.raises(ConfigError, match="4D mask"):
        TrainingConfig.from_dict({**MINIMAL, "data": {"share_prefix": True}}).updated(
            model={"attn_implementation": attn})


def test_share_prefix_with_4d_mask_attention_and_flash_without_share_prefix_are_fine():
    for attn in (None, "sdpa", "eager"):
        cfg = TrainingConfig.from_dict({**MINIMAL, "model": {"name_or_path": "b", "attn_implementation": attn},
                                        "data": {"share_prefix": True}})
        assert cfg.data.share_prefix
    flash = TrainingConfig.from_dict({**MINIMAL, "model": {"name_or_path": "b", "attn_implementation": "flash_attention_2"}})
    assert flash.data.share_prefix is False


def test_import_is_light():
    code = ("import sys, cancerllm.training as t; t.TrainingConfig; t.launch; "
            "print(','.join(m for m in ('torch','transformers','peft','accelerate','bitsandbytes') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_public_names_sorted():
    import cancerllm.training as t

    assert t.__all__ == sorted(t.__all__)
    assert callable(t.pretrain) and callable(t.instruction_tune) and callable(t.launch)
