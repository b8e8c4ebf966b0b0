"""VectorIndex (numpy and faiss give the same exact search), the embedding cache and batched encoding."""

from __future__ import annotations

import numpy as np
import pytest

from cancerllm.errors import CancerLLMError, InputError
from cancerllm.retrieval import Retriever, VectorIndex


def _vectors(n, dim=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_numpy_and_faiss_agree_exactly():
    pytest.importorskip("faiss")
    corpus, queries = _vectors(3000), _vectors(50, seed=1)
    s_np, i_np = VectorIndex(corpus, backend="numpy").search(queries, 10)
    s_fa, i_fa = VectorIndex(corpus, backend="faiss").search(queries, 10)
    assert (i_np == i_fa).all()
    np.testing.assert_allclose(s_np, s_fa, rtol=1e-5, atol=1e-5)
    brute = queries @ corpus.T
    assert (i_np[:, 0] == brute.argmax(1)).all()
    assert (np.diff(s_np, axis=1) <= 0).all()


def test_auto_backend_switches_at_the_threshold():
    pytest.importorskip("faiss")
    assert VectorIndex(_vectors(20)).backend == "numpy"
    assert VectorIndex(_vectors(20), faiss_min_size=10).backend == "faiss"


def test_ties_break_by_position_and_k_is_capped():
    idx = VectorIndex(np.ones((5, 3), dtype=np.float32), backend="numpy")
    scores, ids = idx.search(np.ones((1, 3), dtype=np.float32), 10)
    assert ids.tolist() == [[0, 1, 2, 3, 4]] and scores.shape == (1, 5)


def test_many_queries_are_searched_in_blocks(monkeypatch):
    import cancerllm.retrieval.index as mod

    monkeypatch.setattr(mod, "_BLOCK", 64)  # forces one query per block
    corpus, queries = _vectors(100), _vectors(7, seed=2)
    _, ids = VectorIndex(corpus, backend="numpy").search(queries, 3)
    assert (ids == np.argsort(-(queries @ corpus.T), axis=1)[:, :3]).all()


def test_save_load_round_trip(tmp_path):
    idx = VectorIndex(_vectors(40))
    path = idx.save(tmp_path / "v.safetensors")
    again = VectorIndex.load(path)
    q = _vectors(3, seed=5)
    assert (idx.search(q, 4)[1] == again.search(q, 4)[1]).all()
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="cannot read index vectors"):
        VectorIndex.load(tmp_path / "bad.safetensors")


@pytest.mark.parametrize(
    "vectors, match", [(np.zeros((0, 4)), "empty corpus"), (np.zeros(4), "2-D"), (np.zeros((3, 0)), "2-D")]
)
def test_bad_vectors(vectors, match):
    with pytest.raises(InputError, match=match):
        VectorIndex(vectors)


def test_bad_search_arguments():
    idx = VectorIndex(_vectors(5))
    with pytest.raises(InputError, match="k must be a positive integer"):
        idx.search(_vectors(1), 0)
    with pytest.raises(InputError, match=r"\(m, 16\)"):
        idx.search(np.zeros((1, 3), dtype=np.float32), 1)
    with pytest.raises(InputError, match="unknown index backend"):
        VectorIndex(_vectors(5), backend="annoy")


# ------------------------------------------------------------------------------------------ encoding
class Counting(Retriever):
    """A tiny deterministic encoder that counts its calls."""

    normalize = True

    def __init__(self, salt: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.salt = salt
        self.batches: list[int] = []

    def config(self):
        return {"salt": self.salt}

    def embed(self, texts, *, kind):
        self.batches.append(len(texts))
        return np.array(
            [[len(t) + self.salt, t.count("a") + 1, t.count("e") + 1] for t in texts], dtype=np.float32
        )


def test_batched_encoding_keeps_the_input_order():
    texts = ["a" * n for n in (3, 9, 1, 7, 5)]
    r = Counting(batch_size=2)
    out = r.encode_corpus(texts)
    assert r.batches == [2, 2, 1]
    want = np.array([[len(t), t.count("a") + 1, 1] for t in texts], dtype=np.float32)
    np.testing.assert_allclose(out, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-6)


def test_corpus_embeddings_are_cached_on_disk(tmp_path):
    texts = ["alpha", "beta", "gamma"]
    first = Counting(cache_dir=tmp_path)
    a = first.encode_corpus(texts)
    second = Counting(cache_dir=tmp_path)
    b = second.encode_corpus(texts)
    assert second.batches == [] and np.array_equal(a, b)  # read from the cache, not re-encoded
    other = Counting(salt=1, cache_dir=tmp_path)
    other.encode_corpus(texts)
    assert other.batches  # other settings: another cache entry
    changed = Counting(cache_dir=tmp_path)
    changed.encode_corpus(texts + ["delta"])
    assert changed.batches
    assert len(list(tmp_path.glob("*.safetensors"))) == 3


def test_a_broken_embed_is_reported():
    class Broken(Retriever):
        def embed(self, texts, *, kind):
            return np.zeros((len(texts) + 1, 2))

    with pytest.raises(CancerLLMError, match=r"returned shape \(3, 2\) for 2 texts"):
        Broken().encode_queries(["a", "b"])
    with pytest.raises(NotImplementedError, match="must implement embed"):
        Retriever().encode_queries(["a"])


def test_progress_bar_when_asked(capsys):
    Counting(progress=True).encode_corpus(["a", "b"])
    assert "encoding corpus (custom)" in capsys.readouterr().err
    Counting(progress=False).encode_corpus(["a", "b"])
    assert capsys.readouterr().err == ""
