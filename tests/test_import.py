import subprocess
import sys

HEAVY = ["torch", "transformers", "peft", "faiss", "sentence_transformers", "bitsandbytes", "accelerate",
         "pandas", "sacrebleu", "rouge_score", "nltk", "vllm", "gguf"]


def _loaded_after(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print(','.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.strip().split(","))


def test_import_cancerllm_is_light():
    loaded = _loaded_after("import cancerllm")
    assert not loaded & set(HEAVY), f"import cancerllm pulled in {sorted(loaded & set(HEAVY))}"


def test_light_submodules_stay_light():
    loaded = _loaded_after("import cancerllm.metrics, cancerllm.robustness, cancerllm.data, cancerllm.prompts")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_public_names_sorted_and_resolvable():
    import cancerllm

    assert cancerllm.__all__ == sorted(cancerllm.__all__)
    for name in cancerllm.__all__:
        assert getattr(cancerllm, name) is not None
    assert "CancerLLM" in dir(cancerllm)
