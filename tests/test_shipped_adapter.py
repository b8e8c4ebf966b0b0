"""The CancerLLM-Smol adapter ships inside the package: small, complete, with its prompt settings and card."""

from __future__ import annotations

import json
from importlib import resources

import pytest

ADAPTER = resources.files("cancerllm").joinpath("_resources", "cancerllm-smol-adapter")
V1 = resources.files("cancerllm").joinpath("_resources", "cancerllm-smol-v1-adapter")
V2 = resources.files("cancerllm").joinpath("_resources", "cancerllm-smol-v2-adapter")
V4 = resources.files("cancerllm").joinpath("_resources", "cancerllm-smol-v4-adapter")


@pytest.mark.parametrize("adapter", [ADAPTER, V1, V2, V4], ids=["current", "v1", "v2", "v4"])
def test_adapter_ships_and_is_small(adapter):
    weights = adapter.joinpath("adapter_model.safetensors")
    assert weights.is_file()
    with resources.as_file(weights) as p:
        assert p.stat().st_size <= 20 * 1024 * 1024


@pytest.mark.parametrize("adapter", [ADAPTER, V1, V2, V4], ids=["current", "v1", "v2", "v4"])
def test_adapter_config_matches_the_default_prompt(adapter):
    cfg = json.loads(adapter.joinpath("adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["base_model_name_or_path"] == "cancerllm-smol"
    saved = json.loads(adapter.joinpath("cancerllm_config.json").read_text())
    assert saved["adapter"] is True and saved["base_model"] == "cancerllm-smol"
    assert saved["prompt"]["style"] == "chat" and saved["prompt"]["answer_prefix"] == "{"
    # nothing that names this machine's paths
    text = adapter.joinpath("cancerllm_config.json").read_text() + adapter.joinpath("adapter_config.json").read_text()
    assert "/work/" not in text and "/root/" not in text and "/home/" not in text


def test_model_card_ships_with_the_adapter():
    card = ADAPTER.joinpath("README.md").read_text()
    assert "Not for clinical decisions" in card and "validation" in card


def test_packaged_adapter_is_found():
    from cancerllm._smol import packaged_adapter_dir

    assert packaged_adapter_dir() is not None
    v1 = packaged_adapter_dir("v1")
    assert v1 is not None and v1 != packaged_adapter_dir() and v1.name == "cancerllm-smol-v1-adapter"
    v2 = packaged_adapter_dir("v2")
    assert v2 is not None and v2 not in (v1, packaged_adapter_dir()) and v2.name == "cancerllm-smol-v2-adapter"
    v4 = packaged_adapter_dir("v4")
    assert v4 is not None and v4 not in (v1, v2, packaged_adapter_dir()) and v4.name == "cancerllm-smol-v4-adapter"
    assert packaged_adapter_dir("v0") is None
