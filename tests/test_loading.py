"""The one loader (``cancerllm._loading``): placement, dtype, hub files, kwargs, pickles, errors at load time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings

import pytest
import torch

from cancerllm import CancerLLM, ConfigError, ModelLoadError
from cancerllm import _loading as ld
from cancerllm._constants import CONFIG_NAME
from cancerllm.errors import PerformanceWarning

TEXT = "Invasive ductal carcinoma of the left breast, 2.5 cm, grade 3."


class _Stop(Exception):
    """Raised by a spy to stop a load once its arguments are seen (no weights loaded)."""


def _spy_model_load(monkeypatch, *, stop: bool = False) -> dict:
    import transformers

    seen: dict = {}
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*a, **kw):
        seen.update(kw, _path=a[0])
        if stop:
            raise _Stop
        return real(*a, **kw)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    return seen


def _fake_gpus(monkeypatch, *, count: int = 2, bf16: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(ld, "cuda_supports_bf16", lambda index=None: bf16)


# ------------------------------------------------------------------------------------------ errors at load
@pytest.mark.parametrize("name", ["./nowhere", "/no/such/model", "~/no-such-cancerllm-model", "a/b/c", "..\\x"])
def test_a_missing_local_path_says_it_does_not_exist(name):
    with pytest.raises(ModelLoadError, match="does not exist") as info:
        CancerLLM.from_pretrained(name)
    assert "Repo id" not in str(info.value)


def test_hub_ids_are_not_taken_for_paths():
    for name in ("mistralai/Mistral-7B-v0.1", "gpt2", "org/model.v2_x-y"):
        assert not ld.looks_like_path(name)
        ld.check_exists(name)  # no error: it is for the hub to answer
    from pathlib import Path

    assert ld.looks_like_path(Path("model"))  # a Path object is always a path


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only machine")
@pytest.mark.parametrize("kw", [{"device": "cuda"}, {"device": "cuda:1"}, {"device_map": "cuda"},
                                {"device_map": {"": 0}}])
def test_asking_for_a_gpu_on_a_cpu_only_machine_fails_at_load_time(tiny_model_dir, monkeypatch, kw):
    seen = _spy_model_load(monkeypatch)
    with pytest.raises(ConfigError, match="CUDA GPU"):
        CancerLLM.from_pretrained(tiny_model_dir, **kw)
    assert not seen  # refused before any weight was read


def test_bad_device_values(tiny_model_dir):
    with pytest.raises(ConfigError, match="not both"):
        CancerLLM.from_pretrained(tiny_model_dir, device="cpu", device_map="auto")
    with pytest.raises(ConfigError, match="not a device"):
        ld.resolve_placement("gpu0")
    with pytest.raises(ConfigError, match="dtype"):
        CancerLLM.from_pretrained(tiny_model_dir, dtype="float8")


# ------------------------------------------------------------------------------------------ placement, dtype
def test_placement_rules_with_gpus(monkeypatch):
    _fake_gpus(monkeypatch, count=2)
    assert ld.resolve_placement() == ld.Placement({"": "cuda:0"}, "cuda", 0)  # default: the first GPU
    assert ld.resolve_placement("cuda:1") == ld.Placement({"": "cuda:1"}, "cuda", 1)
    assert ld.resolve_placement("cuda") == ld.Placement({"": "cuda:0"}, "cuda", 0)
    assert ld.resolve_placement("auto") == ld.Placement("auto", "cuda", 0)
    assert ld.resolve_placement("cpu") == ld.Placement(None)
    assert ld.resolve_placement(device_map={"model": 1, "lm_head": "cpu"}).cuda_index == 1
    with pytest.raises(ConfigError, match="2 CUDA GPU"):
        ld.resolve_placement("cuda:2")


def test_placement_rules_without_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ld.resolve_placement() == ld.Placement(None)
    assert ld.resolve_placement("auto") == ld.Placement(None)  # auto = a GPU only when there is one


@pytest.mark.parametrize("bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_dtype_follows_the_device(monkeypatch, bf16, expected):
    _fake_gpus(monkeypatch, bf16=bf16)
    on_gpu = ld.resolve_placement()
    assert ld.resolve_dtype(None, on_gpu) is expected and ld.resolve_dtype("auto", on_gpu) is expected
    assert ld.resolve_dtype(None, ld.resolve_placement("cpu")) is torch.float32  # CPU: float32 unless asked
    assert ld.resolve_dtype("bf16", ld.Placement(None)) is torch.bfloat16
    assert ld.resolve_dtype("fp16", on_gpu) is torch.float16 and ld.resolve_dtype(torch.float32) is torch.float32


def test_emulated_bf16_gpus_get_float16(monkeypatch):
    """A T4 / V100: ``torch.cuda.is_bf16_supported()`` says True by default (emulation); we ask natively."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert ld.cuda_supports_bf16() is False
    assert ld.resolve_dtype("auto", "cuda") is torch.float16
    from cancerllm.training.modeling import resolve_dtype, resolve_precision

    assert resolve_dtype("auto") is torch.float16 and resolve_precision("auto") == "fp16"
    assert resolve_dtype("auto", torch.device("cpu")) is torch.float32


def test_with_a_gpu_the_default_load_goes_to_the_gpu_in_bf16(tiny_model_dir, monkeypatch):
    """The old bug: bfloat16 chosen because CUDA exists, but no device_map, so a bf16 model ran on the CPU."""
    _fake_gpus(monkeypatch, bf16=True)
    seen = _spy_model_load(monkeypatch, stop=True)
    with pytest.raises(_Stop):
        CancerLLM.from_pretrained(tiny_model_dir)
    assert seen["device_map"] == {"": "cuda:0"} and seen["dtype"] is torch.bfloat16


def test_on_cpu_the_default_is_float32(tiny_llm):
    assert next(tiny_llm.model.parameters()).dtype is torch.float32
    assert tiny_llm.model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


# ------------------------------------------------------------------------------------------ kwargs
def test_kwargs_reach_transformers(tiny_model_dir, tmp_path, monkeypatch):
    import transformers

    seen = _spy_model_load(monkeypatch)
    tok_seen: dict = {}
    real_tok = transformers.AutoTokenizer.from_pretrained

    def tok_spy(*a, **kw):
        tok_seen.update(kw)
        return real_tok(*a, **kw)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tok_spy)
    llm = CancerLLM.from_pretrained(tiny_model_dir, attn_implementation="eager", revision="main",
                                    cache_dir=str(tmp_path / "cache"))
    assert seen["attn_implementation"] == "eager" and seen["revision"] == "main"
    assert seen["cache_dir"] == str(tmp_path / "cache") and seen["use_safetensors"] is True
    assert tok_seen["revision"] == "main" and tok_seen["cache_dir"] == str(tmp_path / "cache")
    assert llm.model.config._attn_implementation == "eager"


@pytest.mark.parametrize("key, hint", [("torch_dtype", "dtype="), ("device_map", None), ("load_in_4bit", "4bit"),
                                       ("quantization_config", "quantization="), ("use_safetensors", "allow_pickle")])
def test_kwargs_owned_by_our_parameters_are_refused(key, hint):
    if hint is None:  # device_map is a parameter of its own, not a passed-through kwarg
        return
    with pytest.raises(ConfigError, match=hint):
        ld.check_kwargs({key: None})


# ------------------------------------------------------------------------------------------ hub ids
_COMMIT = "0123456789abcdef0123456789abcdef01234567"
_COMMIT2 = "fedcba9876543210fedcba9876543210fedcba98"


def _hub_cache(cache, repo, folder, *, commit=_COMMIT, ref="main"):
    """Lay ``folder`` out as the hub cache does: models--org--name/{refs/<ref>, snapshots/<commit>/...}."""
    root = cache / ("models--" + repo.replace("/", "--"))
    shutil.copytree(folder, root / "snapshots" / commit)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / ref).write_text(commit)
    return root


def _answers(llm):
    ex = llm.phenotype_extractor(["grade", "stage"], max_new_tokens=6, progress=False)
    return ex.extract(TEXT).raw


def test_saved_config_is_read_from_a_hub_id(tiny_chat_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = CancerLLM.from_pretrained(tiny_chat_model_dir, prompt_style="chat", answer_prefix="{")
    src.generation = {"phenotype": {"max_new_tokens": 5}}
    saved = src.save_pretrained(tmp_path / "saved")
    cache = tmp_path / "hub"
    _hub_cache(cache, "acme/tiny-cancerllm", saved)
    llm = CancerLLM.from_pretrained("acme/tiny-cancerllm", cache_dir=cache)
    assert llm.prompt_builder.style == "chat" and llm.prompt_builder.answer_prefix == "{"
    assert llm.phenotype_extractor().max_new_tokens == 5
    assert _answers(llm) == _answers(src)
    # the revision is honoured for cancerllm_config.json too: a branch whose config says otherwise
    other = tmp_path / "other"
    shutil.copytree(saved, other)
    cfg = json.loads((other / CONFIG_NAME).read_text())
    cfg["prompt"]["answer_prefix"] = ""
    (other / CONFIG_NAME).write_text(json.dumps(cfg))
    root = cache / "models--acme--tiny-cancerllm"
    shutil.copytree(other, root / "snapshots" / _COMMIT2)
    (root / "refs" / "v2").write_text(_COMMIT2)
    assert CancerLLM.from_pretrained("acme/tiny-cancerllm", cache_dir=cache, revision="v2").prompt_builder.answer_prefix == ""


def test_a_hub_model_without_cancerllm_config_loads_with_defaults(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hub"
    _hub_cache(cache, "acme/plain", tiny_model_dir)
    assert ld.fetch_file("acme/plain", CONFIG_NAME, hub={"cache_dir": cache}, local_files_only=None) is None
    llm = CancerLLM.from_pretrained("acme/plain", cache_dir=cache)
    assert llm.prompt_builder.style == "alpaca" and not llm.has_adapter


def test_an_adapter_repo_on_the_hub(tiny_model_dir, tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    llm = CancerLLM.from_pretrained(tiny_model_dir)
    llm.model = get_peft_model(llm.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                     init_lora_weights=False)).eval()
    llm._engine = None
    expected = _answers(llm)
    saved = llm.save_pretrained(tmp_path / "adapter")
    cache = tmp_path / "hub"
    _hub_cache(cache, "acme/tiny-adapter", saved)
    again = CancerLLM.from_pretrained("acme/tiny-adapter", cache_dir=cache)
    assert again.has_adapter and _answers(again) == expected
    assert again.adapter_path is not None and again.adapter_path.is_relative_to(cache)
    # as adapter= on top of the base
    assert _answers(CancerLLM.from_pretrained(tiny_model_dir, adapter="acme/tiny-adapter", cache_dir=cache)) == expected


def test_an_uncached_hub_id_offline_is_a_model_load_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="acme/absent"):
        CancerLLM.from_pretrained("acme/absent", cache_dir=tmp_path / "empty-cache")


# ------------------------------------------------------------------------------------------ quantization
def test_4bit_on_cpu_warns_that_it_is_slower(tiny_model_dir):
    pytest.importorskip("bitsandbytes")
    if torch.cuda.is_available():
        pytest.skip("checks the CPU")
    with pytest.warns(PerformanceWarning, match="slower than float32"):
        CancerLLM.from_pretrained(tiny_model_dir, quantization="4bit")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        CancerLLM.from_pretrained(tiny_model_dir)  # no quantization: no warning


_CHILD = """
import logging, sys
from cancerllm import CancerLLM
CancerLLM.from_pretrained(sys.argv[1])
print("bitsandbytes" in sys.modules, len(logging.getLogger("bitsandbytes.backends.cpu.ops").filters))
"""


def test_no_kernels_message_when_loading_without_quantization(tiny_model_dir, tmp_path):
    """peft imports bitsandbytes, which logs "Failed to load CPU gemm_4bit_forward from kernels-community"
    on every import (CPUs with AVX512-BF16); our load filters that one message, and only while loading."""
    pytest.importorskip("bitsandbytes")
    from peft import LoraConfig, get_peft_model

    llm = CancerLLM.from_pretrained(tiny_model_dir)
    llm.model = get_peft_model(llm.model, LoraConfig(r=4, target_modules=["q_proj"])).eval()
    adapter = llm.save_pretrained(tmp_path / "adapter")
    res = subprocess.run([sys.executable, "-c", _CHILD, str(adapter)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "kernels-community" not in res.stderr and "gemm_4bit_forward" not in res.stderr
    imported, filters_left = res.stdout.split()[-2:]
    assert imported == "True"  # the probe did run (peft imported bitsandbytes) ...
    assert filters_left == "0"  # ... and the filter is gone after the load
    from bitsandbytes.functional import has_avx512bf16

    if has_avx512bf16():  # the message really appears on this CPU without our filter
        plain = subprocess.run([sys.executable, "-c", "import bitsandbytes"], capture_output=True, text=True,
                               timeout=300)
        assert "kernels-community" in plain.stderr


# ------------------------------------------------------------------------------------------ pad token
def test_one_pad_token_rule(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.pad_token = None
    assert ld.ensure_pad_token(tok) == tok.eos_token_id  # inference: EOS pads (masked out)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.pad_token = tok.eos_token
    pad = ld.ensure_pad_token(tok, training=True)  # training: a pad distinct from EOS
    assert pad != tok.eos_token_id and tok.pad_token_id == pad
    kept = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert ld.ensure_pad_token(kept) == kept.pad_token_id  # an existing pad is kept


# ------------------------------------------------------------------------------------------ generation settings
def test_saved_generation_settings_are_the_task_defaults(tiny_llm, tmp_path, caplog):
    llm = CancerLLM(tiny_llm.model, tiny_llm.tokenizer,
                    generation={"phenotype": {"max_new_tokens": 3, "batch_size": 5}, "diagnosis": {"max_new_tokens": 7}})
    ex = llm.phenotype_extractor(["grade"], progress=False)
    assert (ex.max_new_tokens, ex.batch_size) == (3, 5)
    assert llm.phenotype_extractor(["grade"], max_new_tokens=9).max_new_tokens == 9  # a kwarg wins
    gen = llm.diagnosis_generator(progress=False)
    assert gen.max_new_tokens == 7 and gen.batch_size == 8
    # the defaults change the output as the kwargs would
    explicit = tiny_llm.phenotype_extractor(["grade"], max_new_tokens=3, progress=False).extract(TEXT).raw
    assert ex.extract(TEXT).raw == explicit
    # saved and loaded back
    out = llm.save_pretrained(tmp_path / "saved")
    assert json.loads((out / CONFIG_NAME).read_text())["generation"]["phenotype"] == {"max_new_tokens": 3,
                                                                                      "batch_size": 5}
    assert CancerLLM.from_pretrained(out).diagnosis_generator().max_new_tokens == 7
    # tolerant of a newer version's keys, strict about values
    with caplog.at_level("WARNING"):
        odd = CancerLLM(tiny_llm.model, tiny_llm.tokenizer,
                        generation={"phenotype": {"top_k": 3}, "summary": {}})
    assert odd.generation == {"phenotype": {}} and "top_k" in caplog.text and "summary" in caplog.text
    with pytest.raises(ConfigError, match="positive integer"):
        CancerLLM(tiny_llm.model, tiny_llm.tokenizer, generation={"diagnosis": {"max_new_tokens": 0}})


# ------------------------------------------------------------------------------------------ GPU
@pytest.mark.gpu
def test_auto_dtype_lands_on_cuda_in_bf16(tiny_model_dir):  # pragma: no cover - needs a GPU
    llm = CancerLLM.from_pretrained(tiny_model_dir, dtype="auto")
    p = next(llm.model.parameters())
    assert p.device.type == "cuda"
    assert p.dtype is (torch.bfloat16 if ld.cuda_supports_bf16() else torch.float16)
    assert llm.phenotype_extractor(["grade"], max_new_tokens=4, progress=False).extract(TEXT).raw is not None


# ------------------------------------------------------------------------------------------ command line
@pytest.mark.parametrize("command", ["extract", "diagnose", "benchmark"])
def test_cli_loading_options_reach_from_pretrained(command, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cancerllm.cli import app

    seen: list = []

    def spy(cls, name, **kw):
        seen.append((name, kw))
        raise ModelLoadError("stop here")

    monkeypatch.setattr(CancerLLM, "from_pretrained", classmethod(spy))
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "1", "text": TEXT}) + "\n")
    opts = ["--model", "m1", "--device", "cpu", "--dtype", "bfloat16", "--quantization", "4bit",
            "--adapter", str(tmp_path / "adapter")]
    args = ["benchmark", "--data", str(src), *opts] if command == "benchmark" else [
        command, str(src), "-o", str(tmp_path / "out.jsonl"), *opts]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and "stop here" in res.output
    expected = {"device": "cpu", "dtype": "bfloat16", "quantization": "4bit", "adapter": str(tmp_path / "adapter")}
    if command != "benchmark":  # a job loads only the adapter its task runs with
        expected["tasks"] = ["phenotype" if command == "extract" else "diagnosis"]
    assert seen == [("m1", expected)]


def test_cli_bad_loading_options(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from cancerllm.cli import app

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "1", "text": TEXT}) + "\n")
    base = ["extract", str(src), "-o", str(tmp_path / "out.jsonl"), "--model", str(tiny_model_dir), "-p", "grade"]
    res = CliRunner().invoke(app, [*base, "--quantization", "3bit"])
    assert res.exit_code == 2 and "--quantization" in res.output
    if not torch.cuda.is_available():
        res = CliRunner().invoke(app, [*base, "--device", "cuda"])
        assert res.exit_code == 2 and "CUDA GPU" in res.output
    res = CliRunner().invoke(app, [*base, "--device", "cpu", "--dtype", "float32", "-q"])
    assert res.exit_code == 0, res.output


def test_cpu_bf16_detection_reads_the_cpu_flags():
    assert ld.cpu_supports_bf16("processor: 0\nflags\t: fpu avx512f avx512_bf16 sse\n")
    assert ld.cpu_supports_bf16("flags : amx_bf16 amx_tile")
    assert ld.cpu_supports_bf16("Features\t: fp asimd bf16 i8mm")  # Arm
    assert not ld.cpu_supports_bf16("flags : fpu avx2 avx512f avx512bw")  # AVX-512 alone: bf16 emulated
    assert not ld.cpu_supports_bf16("")


def test_cpu_fp16_detection_reads_the_cpu_flags():
    assert ld.cpu_supports_fp16("flags : fpu avx512f avx512_fp16 avx512_bf16")
    assert ld.cpu_supports_fp16("flags : amx_fp16 amx_tile")
    assert ld.cpu_supports_fp16("Features\t: fp asimd asimdhp")  # Arm half-precision arithmetic
    assert not ld.cpu_supports_fp16("flags : fpu avx2 f16c avx512f")  # f16c converts, it does not compute
    assert not ld.cpu_supports_fp16("")


@pytest.mark.parametrize("name,probe", [("bfloat16", "cpu_supports_bf16"), ("float16", "cpu_supports_fp16")])
def test_explicit_half_precision_on_a_cpu_without_it_warns(monkeypatch, name, probe):
    cpu = ld.resolve_placement("cpu")
    monkeypatch.setattr(ld, probe, lambda cpuinfo=None: False)
    with pytest.warns(PerformanceWarning, match=f"{name} was asked for on a CPU without native"):
        assert ld.resolve_dtype(name, cpu) is getattr(torch, name)  # warned, still given as asked
    with pytest.warns(PerformanceWarning, match="emulates"):
        ld.resolve_dtype(getattr(torch, name), cpu)
    monkeypatch.setattr(ld, probe, lambda cpuinfo=None: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        assert ld.resolve_dtype(name, cpu) is getattr(torch, name)  # native: no warning
        monkeypatch.setattr(ld, probe, lambda cpuinfo=None: False)
        assert ld.resolve_dtype(name, "cuda") is getattr(torch, name)  # a GPU: not the CPU's business
        assert ld.resolve_dtype("float32", cpu) is torch.float32
        assert ld.resolve_dtype("auto", cpu, cpu_bf16=True) is torch.float32  # auto never picks emulation


def test_training_half_precision_on_a_cpu_without_it_warns(monkeypatch):
    from cancerllm.training.modeling import resolve_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(ld, "cpu_supports_bf16", lambda cpuinfo=None: False)
    with pytest.warns(PerformanceWarning, match="bfloat16 was asked for"):
        assert resolve_precision("bf16") == "bf16"
    monkeypatch.setattr(ld, "cpu_supports_bf16", lambda cpuinfo=None: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        assert resolve_precision("bf16") == "bf16" and resolve_precision("no") == "no"
        assert resolve_precision("auto") == "no"


def test_auto_dtype_on_a_bf16_cpu_is_bfloat16_for_inference_only(monkeypatch):
    cpu = ld.resolve_placement("cpu")
    monkeypatch.delenv("CANCERLLM_CPU_BF16", raising=False)
    monkeypatch.setattr(ld, "cpu_supports_bf16", lambda cpuinfo=None: True)
    assert ld.resolve_dtype("auto", cpu, cpu_bf16=True) is torch.bfloat16
    assert ld.resolve_dtype("auto", cpu) is torch.float32  # training and other callers keep float32
    assert ld.resolve_dtype("float32", cpu, cpu_bf16=True) is torch.float32  # asked for: given
    monkeypatch.setenv("CANCERLLM_CPU_BF16", "0")  # the operator's switch back to float32
    assert ld.resolve_dtype("auto", cpu, cpu_bf16=True) is torch.float32
    monkeypatch.delenv("CANCERLLM_CPU_BF16")
    monkeypatch.setattr(ld, "cpu_supports_bf16", lambda cpuinfo=None: False)
    assert ld.resolve_dtype("auto", cpu, cpu_bf16=True) is torch.float32  # emulated bf16 would be slower
