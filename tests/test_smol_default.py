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
    # the default also asks for v4, its diagnosis adapter (here the same folder: nothing to route)
    assert asked == ["current", "v4"] and loaded.task_adapter_paths == {}
    asked.clear()
    # the first release by its name: the v1 folder, with its own saved prompt settings
    v1 = CancerLLM.from_pretrained("cancerllm-smol-v1")
    assert v1.has_adapter and asked == ["v1"]
    v2 = CancerLLM.from_pretrained("cancerllm-smol-v2")
    assert v2.has_adapter and asked == ["v1", "v2"]
    # v3 is the default's main adapter under its own name (no task adapters); v4 its own folder
    CancerLLM.from_pretrained("cancerllm-smol-v3")
    CancerLLM.from_pretrained("cancerllm-smol-v4")
    assert asked == ["v1", "v2", "current", "v4"]
    # the base by its own name: never the adapter, the untuned model's prompts
    plain = CancerLLM.from_pretrained("smollm2-135m-instruct")
    assert not plain.has_adapter and plain.base_model == "smollm2-135m-instruct"
    assert plain.prompt_builder.style == "chat" and plain.prompt_builder.answer_prefix == "{"
    # without a shipped adapter: the base with the chat template and the "{" answer prefix
    monkeypatch.setattr(smol, "packaged_adapter_dir", lambda version="current": None)
    base = CancerLLM.from_pretrained("cancerllm-smol")
    assert not base.has_adapter
    assert base.prompt_builder.style == "chat" and base.prompt_builder.answer_prefix == "{"


def test_default_runs_diagnoses_with_its_v4_adapter(tiny_chat_model_dir, tmp_path, monkeypatch):
    import peft

    import cancerllm._smol as smol
    from cancerllm import CancerLLM

    folders = {}
    for version, seed in (("current", 1), ("v4", 2)):
        import torch

        torch.manual_seed(seed)
        llm = CancerLLM.from_pretrained(tiny_chat_model_dir)
        pm = peft.get_peft_model(llm.model, peft.LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False,
                                                            task_type="CAUSAL_LM"))
        folders[version] = tmp_path / version
        pm.save_pretrained(folders[version])
    monkeypatch.setattr(smol, "smol_base_dir", lambda: tiny_chat_model_dir)
    monkeypatch.setattr(smol, "packaged_adapter_dir", lambda version="current": folders.get(version))
    default = CancerLLM.from_pretrained("cancerllm-smol")
    assert default.adapter_path == folders["current"] and default.task_adapter_paths == {"diagnosis": folders["v4"]}
    assert default.adapter_sha256_for("diagnosis") == CancerLLM.from_pretrained("cancerllm-smol-v4").adapter_sha256
    # by their names, v3 and v4 run every task with their one adapter
    for name in ("cancerllm-smol-v3", "cancerllm-smol-v4"):
        assert CancerLLM.from_pretrained(name).task_adapter_paths == {}
    assert CancerLLM.from_pretrained("cancerllm-smol", task_adapters={}).task_adapter_paths == {}
    # a diagnosis-only job (the CLI's diagnose, BatchDiagnoser) loads v4 alone
    dx_only = CancerLLM.from_pretrained("cancerllm-smol", tasks=["diagnosis"])
    assert dx_only.adapter_path == folders["v4"] and dx_only.task_adapter_paths == {}
    # another main adapter given: the packaged routing does not apply to it
    assert CancerLLM.from_pretrained("cancerllm-smol", adapter=folders["v4"]).task_adapter_paths == {}


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
