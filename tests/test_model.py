"""CancerLLM loading and saving: round trips, adapters, quantization, safe loading."""

import json

import pytest

from cancerllm import CancerLLM, ConfigError, ModelLoadError
from cancerllm._constants import CONFIG_NAME

TEXTS = ["Invasive ductal carcinoma of the left breast, 2.5 cm, grade 3.", "Adenocarcinoma, pT3 N1, G2."]


def _answers(llm):
    ex = llm.phenotype_extractor(["grade", "stage"], max_new_tokens=8, progress=False)
    return [r.raw for r in ex.extract_many(TEXTS)]


def test_round_trip_without_adapter(tiny_llm, tmp_path):
    out = tiny_llm.save_pretrained(tmp_path / "saved")
    cfg = json.loads((out / CONFIG_NAME).read_text())
    assert cfg["adapter"] is False and cfg["prompt"]["style"] == "alpaca" and "transformers" in cfg["versions"]
    assert list(out.glob("*.safetensors")) and not list(out.glob("*.bin"))
    again = CancerLLM.from_pretrained(out)
    assert _answers(again) == _answers(tiny_llm)


def _lora_model(base_dir):
    from peft import LoraConfig, get_peft_model

    llm = CancerLLM.from_pretrained(base_dir)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    llm.model = get_peft_model(llm.model, cfg).eval()
    llm._engine = None
    return llm


def test_round_trip_with_adapter(tiny_model_dir, tmp_path):
    llm = _lora_model(tiny_model_dir)
    base_answers = _answers(CancerLLM.from_pretrained(tiny_model_dir))
    with_adapter = _answers(llm)
    assert with_adapter != base_answers  # the adapter changes the model
    out = llm.save_pretrained(tmp_path / "adapter")
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert not (out / "model.safetensors").exists()  # only the adapter is written
    cfg = json.loads((out / CONFIG_NAME).read_text())
    assert cfg["adapter"] is True and cfg["base_model"] == str(tiny_model_dir)
    again = CancerLLM.from_pretrained(out)
    assert again.has_adapter and _answers(again) == with_adapter
    # the same adapter given explicitly on top of the base
    explicit = CancerLLM.from_pretrained(tiny_model_dir, adapter=out)
    assert _answers(explicit) == with_adapter
    with pytest.raises(ConfigError):
        CancerLLM.from_pretrained(out, adapter=out)


def test_adapter_is_merged_for_inference_unless_asked_not_to(tiny_model_dir, tmp_path):
    out = _lora_model(tiny_model_dir).save_pretrained(tmp_path / "adapter")
    merged = CancerLLM.from_pretrained(out)
    unmerged = CancerLLM.from_pretrained(out, merge_adapter=False)
    assert merged.adapter_merged and not unmerged.adapter_merged
    assert merged.has_adapter and unmerged.has_adapter
    assert _answers(merged) == _answers(unmerged)
    # the merged model still saves its adapter (not merged weights), and loads back the same
    again = CancerLLM.from_pretrained(merged.save_pretrained(tmp_path / "again"), merge_adapter=False)
    assert not (tmp_path / "again" / "model.safetensors").exists()
    assert _answers(again) == _answers(unmerged)
    with pytest.raises(ConfigError, match="quantization"):
        CancerLLM.from_pretrained(out, quantization="8bit", merge_adapter=True)
    assert not CancerLLM.from_pretrained(out, quantization="8bit").adapter_merged


def test_saving_an_adapter_never_looks_up_the_hub(tiny_model_dir, tmp_path, monkeypatch):
    import peft.utils.save_and_load as peft_save

    def no_network(*a, **k):
        raise AssertionError("peft tried to reach the Hub")

    monkeypatch.setattr(peft_save, "check_file_exists_on_hf_hub", no_network)
    llm = _lora_model(tiny_model_dir)
    llm.base_model = "cancerllm-smol"  # a name, not a path: peft's "auto" check would query the Hub
    for cfg in llm.model.peft_config.values():
        cfg.base_model_name_or_path = "cancerllm-smol"
    out = llm.save_pretrained(tmp_path / "adapter")
    assert (out / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_quantized_loading_on_cpu(tiny_model_dir, quantization):
    pytest.importorskip("bitsandbytes")
    llm = CancerLLM.from_pretrained(tiny_model_dir, quantization=quantization)
    kinds = {type(m).__name__ for m in llm.model.modules()}
    assert ("Linear8bitLt" if quantization == "8bit" else "Linear4bit") in kinds
    res = llm.phenotype_extractor(["grade"], max_new_tokens=4, progress=False).extract(TEXTS[0])
    assert "grade" in res.raw
    # several questions per report: the shared-prefix path runs on quantized weights, same answers
    shared = _answers(llm)
    llm.engine.shared_prefix = False
    assert _answers(llm) == shared


def test_bad_quantization_value(tiny_model_dir):
    with pytest.raises(ConfigError):
        CancerLLM.from_pretrained(tiny_model_dir, quantization="3bit")


def test_pickled_checkpoints_are_refused_unless_allowed(tiny_model_copy):
    import torch
    from safetensors.torch import load_file

    st = tiny_model_copy / "model.safetensors"
    torch.save(load_file(st), tiny_model_copy / "pytorch_model.bin")
    st.unlink()
    with pytest.raises(ModelLoadError, match="pickled"):
        CancerLLM.from_pretrained(tiny_model_copy)
    assert CancerLLM.from_pretrained(tiny_model_copy, allow_pickle=True).model is not None


def test_missing_model_gives_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError):
        CancerLLM.from_pretrained(tmp_path / "nowhere")


def test_trust_remote_code_stays_off(tiny_model_dir, monkeypatch):
    import transformers

    seen = {}
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*a, **kw):
        seen.update(kw)
        return real(*a, **kw)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    CancerLLM.from_pretrained(tiny_model_dir)
    assert seen["trust_remote_code"] is False and seen["local_files_only"] is True


PROMPTS = ["Hello", "In the text: Invasive ductal carcinoma of the left breast, 2.5 cm, grade 3. What is",
           "Adenocarcinoma, pT3 N1, G2.\n\n### Response:\n"]


def _one_by_one(llm, prompt, n):
    """Greedy ``model.generate`` on one prompt at a time: the ids after the prompt (EOS included)."""
    import torch

    ids = llm.prompt_builder._ids(prompt)
    x = torch.tensor([ids], device=llm.model.device)
    out = llm.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False,
                             pad_token_id=llm.tokenizer.pad_token_id)
    return out[0, x.shape[1]:].tolist()


def _check_generate_equals_one_by_one(llm, n=10):
    from cancerllm.engine.base import GenerationSettings, PromptGroup

    refs = [_one_by_one(llm, p, n) for p in PROMPTS]
    assert len({len(p) for p in (llm.prompt_builder._ids(q) for q in PROMPTS)}) == len(PROMPTS)  # ragged: padded
    groups = [PromptGroup(llm.prompt_builder._ids(p), [[]]) for p in PROMPTS]
    ids = llm.engine.generate_groups(groups, GenerationSettings(max_new_tokens=n, batch_size=2))
    assert [o[0] for o in ids] == refs
    texts = llm.generate(PROMPTS, max_new_tokens=n, batch_size=2)
    assert texts == [llm.tokenizer.decode(r, skip_special_tokens=True) for r in refs]


def test_generate_raw_prompts(tiny_llm):
    _check_generate_equals_one_by_one(tiny_llm)
    from cancerllm import InputError

    with pytest.raises(InputError):
        tiny_llm.generate("Hello")


@pytest.mark.gpu
def test_generate_on_gpu_equals_one_by_one_generate(tiny_model_dir):  # pragma: no cover - needs a GPU
    llm = CancerLLM.from_pretrained(tiny_model_dir)  # the default placement: cuda:0, bfloat16/float16
    assert llm.model.device.type == "cuda"
    _check_generate_equals_one_by_one(llm)
