"""Backends by name, plug-ins through entry points, user subclasses, and a light import."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cancerllm.errors import ConfigError, UnknownBackendError
from cancerllm.retrieval import (
    DEFAULT_RETRIEVER,
    RETRIEVERS,
    MiniLMRetriever,
    RandomRetriever,
    Retriever,
    get_retriever,
    register_retriever,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_retriever.py"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownBackendError) as err:
        get_retriever("bm25")
    msg = str(err.value)
    assert "unknown retriever 'bm25'" in msg
    for name in ("contriever", "default", "medcpt", "minilm", "random", "sgpt", "specter2"):
        assert name in msg


def test_default_is_the_offline_minilm_and_names_are_case_insensitive():
    assert DEFAULT_RETRIEVER == "minilm"
    assert type(get_retriever()) is MiniLMRetriever and get_retriever().model is None  # the packaged model
    assert type(get_retriever("default")) is MiniLMRetriever
    assert type(get_retriever(" Random ", seed=3)) is RandomRetriever
    r = RandomRetriever()
    assert get_retriever(r) is r
    with pytest.raises(ConfigError):
        get_retriever(r, seed=1)


def test_registration_is_checked(monkeypatch):
    monkeypatch.setattr(RETRIEVERS, "_items", dict(RETRIEVERS._items))

    @register_retriever("mine")
    class Mine(Retriever):
        def embed(self, texts, *, kind):
            return np.ones((len(texts), 2))

    assert Mine.name == "mine" and type(get_retriever("mine")) is Mine
    with pytest.raises(ConfigError, match="already registered"):
        register_retriever("mine")(type("Other", (Mine,), {}))
    with pytest.raises(ConfigError, match="only Retriever subclasses"):
        register_retriever("thing")(dict)
    with pytest.raises(ConfigError, match="invalid retriever name"):
        register_retriever("Bad Name")(Mine)


def test_third_party_backends_register_through_entry_points(monkeypatch):
    import importlib.metadata as md

    class Plugin(Retriever):
        name = "plugin"

        def embed(self, texts, *, kind):
            return np.ones((len(texts), 3))

    class FakeEntryPoint:
        name = "plugin"

        def load(self):
            return Plugin

    seen = []

    def fake_entry_points(*, group):
        seen.append(group)
        return [FakeEntryPoint()]

    monkeypatch.setattr(RETRIEVERS, "_items", dict(RETRIEVERS._items))
    monkeypatch.setattr(RETRIEVERS, "_entry_points_loaded", False)
    monkeypatch.setattr(md, "entry_points", fake_entry_points)
    assert type(get_retriever("plugin")) is Plugin
    assert seen == ["cancerllm.retrievers"] and "plugin" in RETRIEVERS.names()


def test_user_subclass_with_one_method_works_end_to_end(tmp_path):
    class Vowels(Retriever):
        normalize = True

        def embed(self, texts, *, kind):
            return np.array([[t.count(c) + 0.1 for c in "aeiou"] for t in texts])

    corpus = ["aaaa", "eeee", "iiii", "oooo", "aaee"]
    r = Vowels(batch_size=2).build_index(corpus)
    hits = r.search(["aaa", "ooo"], k=2)
    assert [h.item for h in hits[0]] == ["aaaa", "aaee"] and hits[1][0].item == "oooo"
    assert [h.item for h in r.retrieve("aaaa", k=1, exclude_identical=True)] == ["aaee"]
    r.save_index(tmp_path / "ix")
    again = Vowels.from_index(tmp_path / "ix")
    assert [h.index for h in again.search(["aaa"], k=3)[0]] == [h.index for h in r.search(["aaa"], k=3)[0]]


def test_the_custom_retriever_example_runs(capsys, monkeypatch):
    monkeypatch.setattr(RETRIEVERS, "_items", dict(RETRIEVERS._items))  # the example registers "hashing-bow"
    spec = importlib.util.spec_from_file_location("custom_retriever_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    prompt = module.main(generate=False)
    out = capsys.readouterr().out
    assert "Top 2 for the note:" in out
    assert (
        "Example 1:\nInput: Invasive ductal carcinoma, left breast, 2.5 cm, grade 3.\nOutput: Breast cancer"
        in prompt
    )
    assert (
        "Example 2:\nInput: Lobular carcinoma of the right breast, ER positive.\nOutput: Breast cancer"
        in prompt
    )
    assert prompt.index("Example 2:") < prompt.index(module.NOTE)


def test_importing_retrieval_is_light():
    heavy = {"torch", "transformers", "faiss", "sentence_transformers", "adapters"}
    code = (
        "import sys, cancerllm, cancerllm.retrieval; "
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert not heavy & set(out.strip().split(","))
