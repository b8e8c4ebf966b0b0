"""The embedded default's plumbing, on tiny stand-ins: the packaged adapter and its prompt settings load by
default, and old caches with a GGUF ``quantization_config`` are repaired."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("peft")


def test_packaged_adapter_loads_by_default_with_its_prompt(tiny_chat_model_dir, tmp_path, monkeypatch):
    import peft

    import cancerllm._smol as smol
    from cancerllm import CancerLLM

    # an adapter trained with alpaca prompts and no answer prefix, "shipped" in the package
    llm = CancerLLM.from_pretrained(tiny_chat_model_dir)
    pm = peft.get_peft_model(llm.model, peft.LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    adapter = tmp_path / "adapter"
    pm.save_pretrained(adapter)
    (adapter / "cancerllm_config.json").write_text(json.dumps(
        {"adapter": True, "base_model": "cancerllm-smol", "prompt": {"style": "alpaca", "answer_prefix": ""}}))
    monkeypatch.setattr(smol, "smol_base_dir", lambda: tiny_chat_model_dir)
    asked = []
    monkeypatch.setattr(smol, "packaged_adapter_dir", lambda version="current": asked.append(version) or adapter)
    loaded = CancerLLM.from_pretrained("cancerllm-smol")
    assert loaded.has_adapter
    assert loaded.prompt_builder.style == "alpaca" and loaded.prompt_builder.answer_prefix == ""
    # the first release by its name: the v1 folder, with its own saved prompt settings
    v1 = CancerLLM.from_pretrained("cancerllm-smol-v1")
    assert v1.has_adapter and asked == ["current", "v1"]
    v2 = CancerLLM.from_pretrained("cancerllm-smol-v2")
    assert v2.has_adapter and asked == ["current", "v1", "v2"]
    # v3 is the default under its own name; v4 (diagnosis-leaning) its own folder
    CancerLLM.from_pretrained("cancerllm-smol-v3")
    CancerLLM.from_pretrained("cancerllm-smol-v4")
    assert asked == ["current", "v1", "v2", "current", "v4"]
    # the base by its own name: never the adapter, the untuned model's prompts
    plain = CancerLLM.from_pretrained("smollm2-135m-instruct")
    assert not plain.has_adapter and plain.base_model == "smollm2-135m-instruct"
    assert plain.prompt_builder.style == "chat" and plain.prompt_builder.answer_prefix == "{"
    # without a shipped adapter: the base with the chat template and the "{" answer prefix
    monkeypatch.setattr(smol, "packaged_adapter_dir", lambda version="current": None)
    base = CancerLLM.from_pretrained("cancerllm-smol")
    assert not base.has_adapter
    assert base.prompt_builder.style == "chat" and base.prompt_builder.answer_prefix == "{"


def test_old_cache_config_loses_its_gguf_quantization(tmp_path):
    from cancerllm._smol import _drop_gguf_quantization

    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "llama", "quantization_config": {"quant_method": "gguf"}}))
    _drop_gguf_quantization(cfg)
    assert json.loads(cfg.read_text()) == {"model_type": "llama"}
    other = {"model_type": "llama", "quantization_config": {"quant_method": "bitsandbytes"}}
    cfg.write_text(json.dumps(other))
    _drop_gguf_quantization(cfg)
    assert json.loads(cfg.read_text()) == other
