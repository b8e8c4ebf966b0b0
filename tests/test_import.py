import subprocess
import sys

import pytest

HEAVY = ["torch", "transformers", "peft", "faiss", "sentence_transformers", "bitsandbytes", "accelerate",
         "pandas", "sacrebleu", "rouge_score", "nltk", "vllm", "gguf", "fhir", "pyarrow", "ray", "pyspark"]


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


def test_heavy_public_names_import_lazily_and_are_the_real_objects():
    # on first access, not at `import cancerllm`; the objects are those of their modules
    loaded = _loaded_after("from cancerllm import Retriever")
    assert not loaded & {"torch", "transformers", "faiss", "sentence_transformers"}, sorted(loaded & set(HEAVY))
    from cancerllm import CancerLLM, DiagnosisGenerator, PhenotypeExtractor, Retriever
    from cancerllm.model import CancerLLM as model_cls
    from cancerllm.retrieval import Retriever as retriever_cls
    from cancerllm.tasks.diagnosis import DiagnosisGenerator as diagnosis_cls
    from cancerllm.tasks.phenotype import PhenotypeExtractor as phenotype_cls

    assert (CancerLLM, PhenotypeExtractor, DiagnosisGenerator, Retriever) == (
        model_cls, phenotype_cls, diagnosis_cls, retriever_cls)


def test_subpackages_are_attributes_of_the_package():
    code = ("import cancerllm; r = cancerllm.metrics.evaluate(predictions=['{a}'], references=['{a}']); "
            "print(r.average_f1, cancerllm.retrieval.Retriever is cancerllm.Retriever)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1.0", "True"]
    import cancerllm

    assert {"metrics", "retrieval", "training"} <= set(dir(cancerllm))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cancerllm.nope  # noqa: B018


def test_api_page_names_the_lazily_imported_names():
    from pathlib import Path

    import cancerllm

    page = (Path(__file__).resolve().parents[1] / "docs" / "api" / "cancerllm.md").read_text()
    for name in cancerllm._LAZY:
        assert f"`{name}`" in page, name
