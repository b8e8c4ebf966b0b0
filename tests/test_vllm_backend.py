"""The vLLM backend: a unit test with a fake ``vllm`` module everywhere, a real one only where vLLM exists."""

import sys
import types

import pytest

from cancerllm.engine.base import GenerationSettings, PromptGroup
from cancerllm.engine.vllm import VLLMEngine


class _FakeSamplingParams:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _fake_vllm(monkeypatch):
    mod = types.ModuleType("vllm")
    mod.SamplingParams = _FakeSamplingParams
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = dict
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)


class _FakeLLM:
    def __init__(self):
        self.seen = None

    def generate(self, prompts, params, use_tqdm=False, lora_request=None):
        self.seen = (prompts, params)
        out = []
        for p in prompts:
            o = types.SimpleNamespace(token_ids=[len(p["prompt_token_ids"])])
            out.append(types.SimpleNamespace(outputs=[o]))
        return out


def test_vllm_engine_maps_groups_to_prompts_and_back(monkeypatch):
    _fake_vllm(monkeypatch)
    llm = _FakeLLM()
    eng = VLLMEngine(llm, eos_ids=[2])
    out = eng.generate_groups([PromptGroup([1, 2, 3], [[4], [5, 6]]), PromptGroup([7], [[8]])],
                              GenerationSettings(max_new_tokens=9, stop_strings=("}",)))
    assert out == [[[4], [5]], [[2]]]
    prompts, params = llm.seen
    assert prompts[1]["prompt_token_ids"] == [1, 2, 3, 5, 6]
    assert params.temperature == 0.0 and params.max_tokens == 9 and params.stop == ["}"]
    assert params.stop_token_ids == [2]


def test_telemetry_is_disabled_before_vllm_import(monkeypatch):
    from cancerllm.engine import vllm as backend

    monkeypatch.delenv("VLLM_NO_USAGE_STATS", raising=False)
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    backend._disable_telemetry()
    import os

    assert os.environ["VLLM_NO_USAGE_STATS"] == "1" and os.environ["DO_NOT_TRACK"] == "1"


@pytest.mark.gpu
def test_real_vllm_matches_hf(tiny_model_dir):  # pragma: no cover - needs a GPU and vLLM
    pytest.importorskip("vllm")
    from cancerllm import CancerLLM

    hf = CancerLLM.from_pretrained(tiny_model_dir)
    vl = CancerLLM.from_pretrained(tiny_model_dir, backend="vllm")
    text = "Invasive ductal carcinoma of the left breast, grade 3."
    a = hf.phenotype_extractor(["grade"], max_new_tokens=8).extract(text).raw
    b = vl.phenotype_extractor(["grade"], max_new_tokens=8).extract(text).raw
    assert a == b
