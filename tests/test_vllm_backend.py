"""The vLLM backend: a unit test with a fake ``vllm`` module everywhere, a real one only where vLLM exists."""

import sys
import types

import pytest

from cancerllm.engine.base import GenerationSettings, PromptGroup
from cancerllm.engine.vllm import VLLMEngine


class _FakeSamplingParams:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class _FakeLoRARequest:
    def __init__(self, name, lora_id, path):
        self.name, self.lora_id, self.path = name, lora_id, path


def _fake_vllm(monkeypatch):
    mod = types.ModuleType("vllm")
    mod.SamplingParams = _FakeSamplingParams
    mod.LLM = _RecordingLLM
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = dict
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = _FakeLoRARequest
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)
    monkeypatch.setitem(sys.modules, "vllm.lora", lora)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", request)
    _RecordingLLM.made.clear()


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


class _RecordingLLM(_FakeLLM):
    """A fake ``vllm.LLM``: records its kwargs and answers every prompt with ``answer`` token ids."""

    made: list = []
    answer: list = []

    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs
        self.lora_requests = []
        _RecordingLLM.made.append(self)

    def generate(self, prompts, params, use_tqdm=False, lora_request=None):
        self.seen = (prompts, params)
        self.lora_requests.append(lora_request)
        o = types.SimpleNamespace(token_ids=list(self.answer))
        return [types.SimpleNamespace(outputs=[o]) for _ in prompts]


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


def test_vllm_engine_returns_log_probabilities_when_asked(monkeypatch):
    _fake_vllm(monkeypatch)

    class _LogprobLLM:
        def generate(self, prompts, params, use_tqdm=False, lora_request=None):
            self.params = params
            steps = [{5: types.SimpleNamespace(logprob=-0.25)}, {9: types.SimpleNamespace(logprob=-1.5)}]
            o = types.SimpleNamespace(token_ids=[5, 9], logprobs=steps if params.logprobs is not None else None)
            return [types.SimpleNamespace(outputs=[o]) for _ in prompts]

    llm = _LogprobLLM()
    eng = VLLMEngine(llm)
    (gen,), = eng.generate([PromptGroup([1, 2])], GenerationSettings(max_new_tokens=4, logprobs=True))
    assert llm.params.logprobs == 0 and gen.ids == [5, 9] and gen.logprobs == [-0.25, -1.5]
    (gen,), = eng.generate([PromptGroup([1, 2])], GenerationSettings(max_new_tokens=4))
    assert llm.params.logprobs is None and gen.logprobs is None
    assert eng.generate_groups([PromptGroup([1, 2])], GenerationSettings(max_new_tokens=4)) == [[[5, 9]]]


def test_telemetry_is_disabled_before_vllm_import(monkeypatch):
    from cancerllm.engine import vllm as backend

    monkeypatch.delenv("VLLM_NO_USAGE_STATS", raising=False)
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    backend._disable_telemetry()
    import os

    assert os.environ["VLLM_NO_USAGE_STATS"] == "1" and os.environ["DO_NOT_TRACK"] == "1"


def _no_hf_weights(monkeypatch):
    import transformers

    def refuse(*a, **k):
        raise AssertionError("backend='vllm' loaded the transformers weights")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)


def _adapter(tiny_model_dir, path, r=4):
    from peft import LoraConfig, get_peft_model

    from cancerllm import CancerLLM

    llm = CancerLLM.from_pretrained(tiny_model_dir)
    llm.model = get_peft_model(llm.model, LoraConfig(r=r, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                     init_lora_weights=False)).eval()
    llm._engine = None
    return llm, llm.save_pretrained(path)


def test_from_pretrained_vllm_loads_no_hf_weights_and_uses_the_adapter_folder(tiny_model_copy, tmp_path,
                                                                              monkeypatch):
    import json

    from cancerllm import CancerLLM
    from cancerllm._constants import DIAGNOSIS_MAX_NEW_TOKENS, MAX_INPUT_TOKENS

    gen_cfg = tiny_model_copy / "generation_config.json"
    cfg = json.loads(gen_cfg.read_text()) if gen_cfg.is_file() else {}
    cfg["eos_token_id"] = [2, 7]  # a list of EOS ids, as Llama-3's generation config has
    gen_cfg.write_text(json.dumps(cfg))
    _, adapter = _adapter(tiny_model_copy, tmp_path / "adapter", r=12)
    _fake_vllm(monkeypatch)
    _no_hf_weights(monkeypatch)
    llm = CancerLLM.from_pretrained(adapter, backend="vllm", gpu_memory_utilization=0.5)
    assert llm.model is None and llm.has_adapter and llm.backend == "vllm"
    (made,) = _RecordingLLM.made  # built at load time, once
    kw = made.kwargs
    assert kw["model"] == str(tiny_model_copy) and kw["tokenizer"] == str(adapter)
    assert kw["enable_lora"] is True and kw["max_lora_rank"] == 16  # r=12 -> the next rank vLLM accepts
    assert kw["max_model_len"] == MAX_INPUT_TOKENS + DIAGNOSIS_MAX_NEW_TOKENS
    assert kw["enable_prefix_caching"] is True and kw["trust_remote_code"] is False
    assert kw["gpu_memory_utilization"] == 0.5 and kw["dtype"] == "float32"  # CPU here: float32
    eng = llm.engine
    assert eng is llm._engine and eng.lora_path == str(adapter) and eng._tmp is None  # used in place, no copy
    assert eng.eos_ids[:2] == [2, 7] and llm.tokenizer.eos_token_id in eng.eos_ids
    # generation goes through vLLM with the adapter and the stop ids
    _RecordingLLM.answer = [llm.tokenizer.eos_token_id]
    res = llm.phenotype_extractor(["grade", "stage"], progress=False).extract("Adenocarcinoma, G2.")
    prompts, params = made.seen
    assert len(prompts) == 2 and params.max_tokens == 50 and params.stop_token_ids == eng.eos_ids
    assert made.lora_requests[-1].path == str(adapter)
    assert res.raw == {"grade": "", "stage": ""}  # EOS at once: empty answers, decoded from vLLM's ids
    # save needs the transformers weights
    from cancerllm import ConfigError

    with pytest.raises(ConfigError, match="backend='vllm'"):
        llm.save_pretrained(tmp_path / "again")


def test_vllm_prompts_equal_the_hf_backend_prompts(tiny_model_dir, monkeypatch):
    from cancerllm import CancerLLM

    _fake_vllm(monkeypatch)
    vl = CancerLLM.from_pretrained(tiny_model_dir, backend="vllm", max_model_len=4096)
    assert _RecordingLLM.made[-1].kwargs["max_model_len"] == 4096 and not vl.has_adapter
    assert "enable_lora" not in _RecordingLLM.made[-1].kwargs
    _RecordingLLM.answer = [vl.tokenizer.eos_token_id]
    text = "Invasive ductal carcinoma of the left breast, grade 3."
    vl.phenotype_extractor(["grade"], progress=False).extract(text)
    (prompt,), _ = _RecordingLLM.made[-1].seen
    hf = CancerLLM.from_pretrained(tiny_model_dir)
    seen = []
    real = hf.engine.generate

    def spy(groups, settings, **kw):
        seen.extend(list(g.prefix_ids) + list(s) for g in groups for s in g.suffix_ids)
        return real(groups, settings, **kw)

    hf.engine.generate = spy
    hf.phenotype_extractor(["grade"], progress=False).extract(text)
    assert seen == [prompt["prompt_token_ids"]]


def test_vllm_missing_is_one_clear_error_at_load_time(tiny_model_dir, monkeypatch):
    from cancerllm import CancerLLM, MissingDependencyError

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    _no_hf_weights(monkeypatch)
    with pytest.raises(MissingDependencyError, match=r"cancerllm\[vllm\]"):
        CancerLLM.from_pretrained(tiny_model_dir, backend="vllm")


def test_vllm_settings_refused_at_load_time(tiny_model_dir, monkeypatch):
    from cancerllm import CancerLLM, ConfigError

    _fake_vllm(monkeypatch)
    with pytest.raises(ConfigError, match="4bit"):
        CancerLLM.from_pretrained(tiny_model_dir, backend="vllm", quantization="8bit")
    with pytest.raises(ConfigError, match="places the model itself"):
        CancerLLM.from_pretrained(tiny_model_dir, backend="vllm", device="cpu")
    CancerLLM.from_pretrained(tiny_model_dir, backend="vllm", quantization="4bit")
    assert _RecordingLLM.made[-1].kwargs["quantization"] == "bitsandbytes"


def test_vllm_refuses_prompts_longer_than_max_model_len(monkeypatch):
    from cancerllm import ConfigError

    _fake_vllm(monkeypatch)
    eng = VLLMEngine(_FakeLLM(), max_model_len=10)
    with pytest.raises(ConfigError, match="max_model_len=10"):
        eng.generate_groups([PromptGroup(list(range(8)))], GenerationSettings(max_new_tokens=5))


def test_from_model_copies_only_an_in_memory_adapter_and_cleans_up(tiny_model_dir, tmp_path, monkeypatch):
    import gc
    from pathlib import Path

    from cancerllm import CancerLLM

    in_memory, saved = _adapter(tiny_model_dir, tmp_path / "adapter")
    _fake_vllm(monkeypatch)
    eng = VLLMEngine.from_model(in_memory)  # built in memory: saved to a temporary folder
    tmp = Path(eng.lora_path)
    assert (tmp / "adapter_config.json").is_file() and tmp != saved
    assert _RecordingLLM.made[-1].kwargs["model"] == str(tiny_model_dir)
    eng.close()
    assert not tmp.exists()
    eng = VLLMEngine.from_model(in_memory)
    tmp = Path(eng.lora_path)
    del eng
    gc.collect()
    assert not tmp.exists()  # removed when the engine is collected
    loaded = CancerLLM.from_pretrained(saved)  # loaded from a folder: that folder is used, no copy
    eng = VLLMEngine.from_model(loaded)
    assert eng.lora_path == str(saved) and eng._tmp is None


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


def test_vllm_runs_each_task_with_its_adapter(tiny_model_dir, tmp_path, monkeypatch):
    from cancerllm import CancerLLM

    _, main = _adapter(tiny_model_dir, tmp_path / "main", r=4)
    _, dx = _adapter(tiny_model_dir, tmp_path / "dx", r=20)
    _fake_vllm(monkeypatch)
    _no_hf_weights(monkeypatch)
    llm = CancerLLM.from_pretrained(main, backend="vllm", task_adapters={"diagnosis": dx})
    (made,) = _RecordingLLM.made
    assert made.kwargs["max_loras"] == 2 and made.kwargs["max_lora_rank"] == 32  # covers r=20 as well
    _RecordingLLM.answer = [llm.tokenizer.eos_token_id]
    llm.phenotype_extractor(["grade"], progress=False).extract("Adenocarcinoma, G2.")
    llm.diagnosis_generator(progress=False).generate("Adenocarcinoma, G2.")
    llm.phenotype_extractor(["grade"], progress=False).extract("Adenocarcinoma, G2.")
    p1, d, p2 = made.lora_requests
    assert (p1.path, d.path, p2.path) == (str(main), str(dx), str(main))
    assert p1.lora_id == p2.lora_id != d.lora_id and p1.name != d.name
    assert llm.adapter_sha256_for("diagnosis") != llm.adapter_sha256
