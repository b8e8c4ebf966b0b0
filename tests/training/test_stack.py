"""Stacking a pre-training adapter and an instruction adapter (trained on the merged base) into one adapter."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from cancerllm.errors import ConfigError, ModelLoadError  # noqa: E402
from cancerllm.testing import make_tiny_model, make_tiny_tokenizer  # noqa: E402
from cancerllm.training import stack_adapters  # noqa: E402


def _random_adapter(model, r, alpha, seed, targets):
    pm = peft.get_peft_model(model, peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=targets,
                                                    task_type="CAUSAL_LM"))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return pm.eval()


def test_stacked_adapter_equals_merge_then_second_adapter(tmp_path):
    tok = make_tiny_tokenizer()
    ids = torch.tensor([tok("the left breast, grade 3").input_ids])
    # phase 1 on the base, attention only
    pt = _random_adapter(make_tiny_model(tok, hidden_size=32), 4, 8, 1, ["q_proj", "v_proj"])
    pt.save_pretrained(tmp_path / "pt")
    merged = pt.merge_and_unload()
    # phase 2 on the merged base, every linear layer
    sft = _random_adapter(merged, 8, 16, 2, "all-linear")
    with torch.no_grad():
        want = sft(ids).logits
    sft.save_pretrained(tmp_path / "sft")
    (tmp_path / "sft" / "cancerllm_config.json").write_text(json.dumps(
        {"adapter": True, "base_model": "x", "training": {"stage": "sft", "merged_base": "/somewhere/merged-base"}}))

    out = stack_adapters([tmp_path / "pt", tmp_path / "sft"], tmp_path / "stacked", base_model="base",
                         dtype="float32")
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 12 and cfg["lora_alpha"] == 12 and cfg["base_model_name_or_path"] == "base"
    saved = json.loads((out / "cancerllm_config.json").read_text())
    assert saved["base_model"] == "base"
    assert saved["training"]["stacked"] == [{"adapter": "pt"},
                                            {"adapter": "sft", "stage": "sft", "merged_base": "merged-base"}]
    got_model = peft.PeftModel.from_pretrained(make_tiny_model(tok, hidden_size=32), str(out)).eval()
    with torch.no_grad():
        got = got_model(ids).logits
    assert torch.allclose(got, want, atol=1e-4)
    # half precision is close, and half the size
    half = stack_adapters([tmp_path / "pt", tmp_path / "sft"], tmp_path / "half")
    assert (half / "adapter_model.safetensors").stat().st_size < 0.6 * (out / "adapter_model.safetensors").stat().st_size
    with torch.no_grad():
        got16 = peft.PeftModel.from_pretrained(make_tiny_model(tok, hidden_size=32), str(half)).eval()(ids).logits
    assert torch.allclose(got16, want, atol=1e-2)


def test_refuses_what_it_cannot_stack_exactly(tmp_path):
    with pytest.raises(ModelLoadError, match="not a PEFT adapter"):
        stack_adapters([tmp_path], tmp_path / "out")
    tok = make_tiny_tokenizer()
    pm = peft.get_peft_model(make_tiny_model(tok, hidden_size=32),
                             peft.LoraConfig(r=2, target_modules=["q_proj"], use_dora=True, task_type="CAUSAL_LM"))
    pm.save_pretrained(tmp_path / "dora")
    with pytest.raises(ConfigError, match="use_dora"):
        stack_adapters([tmp_path / "dora"], tmp_path / "out")
