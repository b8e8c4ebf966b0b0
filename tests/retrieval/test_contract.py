"""The contract every registered retriever must honour, run against each backend on tiny local models."""

from __future__ import annotations

import numpy as np
import pytest

from cancerllm.errors import InputError
from cancerllm.retrieval import RETRIEVERS, Hit, Retriever

from .conftest import CORPUS

BUILTIN = {"random", "medcpt", "contriever", "sgpt", "specter2", "minilm", "default"}
QUERIES = ["carcinoma of the left breast grade 3", "squamous cell carcinoma of the lung"]


@pytest.fixture(params=RETRIEVERS.names())
def name(request):
    return request.param


@pytest.fixture
def retriever(name, retriever_factory) -> Retriever:
    return retriever_factory(name)


def test_all_builtin_backends_are_registered():
    assert BUILTIN <= set(RETRIEVERS.names())


def test_encode_shapes_dtypes_and_determinism(retriever):
    q = retriever.encode_queries(QUERIES)
    d = retriever.encode_corpus(CORPUS)
    assert q.dtype == np.float32 and d.dtype == np.float32
    assert q.ndim == 2 and d.ndim == 2 and q.shape[0] == 2 and d.shape[0] == len(CORPUS)
    assert q.shape[1] == d.shape[1] > 0
    assert np.isfinite(q).all() and np.isfinite(d).all()
    if retriever.normalize:
        np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    # same vectors whatever the batch composition (padding and length sorting must not leak in)
    one_by_one = np.concatenate([retriever.encode_corpus([t]) for t in CORPUS[:4]])
    np.testing.assert_allclose(one_by_one, d[:4], atol=1e-4)


def test_search_returns_k_ranked_hits_scored_by_inner_product(retriever):
    retriever.build_index(CORPUS)
    hits = retriever.search(QUERIES, k=4)
    q, d = retriever.encode_queries(QUERIES), retriever.encode_corpus(CORPUS)
    assert len(hits) == 2
    for qi, row in enumerate(hits):
        assert len(row) == 4 and all(isinstance(h, Hit) for h in row)
        assert [h.rank for h in row] == [0, 1, 2, 3]
        scores = [h.score for h in row]
        assert scores == sorted(scores, reverse=True)
        assert len({h.index for h in row}) == 4
        assert all(h.item == CORPUS[h.index] for h in row)
        for h in row:  # the score is the inner product of the encoded query and document
            assert h.score == pytest.approx(float(q[qi] @ d[h.index]), rel=1e-4, abs=1e-4)
        # and nothing outside the top k scores higher
        assert scores[-1] >= np.delete(q[qi] @ d.T, [h.index for h in row]).max() - 1e-5


def test_identical_document_ranks_first(name, retriever):
    retriever.build_index(CORPUS)
    hits = retriever.search(CORPUS, k=len(CORPUS))
    if name == "random":  # the random baseline never returns the query itself
        assert all(i not in {h.index for h in row} for i, row in enumerate(hits))
        assert all(len(row) == len(CORPUS) - 1 for row in hits)
        return
    d = retriever.encode_corpus(CORPUS)
    norms = np.linalg.norm(d, axis=1)
    for i, row in enumerate(hits):
        above = [h.index for h in row[: [h.index for h in row].index(i)]]
        # Cauchy-Schwarz: only a longer vector can out-score the query's own (identical) vector; for cosine
        # backends all norms are 1, so the identical document must be first
        assert all(norms[j] > norms[i] + 1e-6 for j in above), (i, above)
        if retriever.normalize:
            assert row[0].index == i


def test_exclude_positions_ids_and_the_query_itself(retriever):
    ids = [f"doc-{i}" for i in range(len(CORPUS))]
    retriever.build_index(CORPUS, ids=ids)
    by_pos = retriever.search(CORPUS, k=3, exclude=[[i] for i in range(len(CORPUS))])
    by_id = retriever.search(CORPUS, k=3, exclude=[f"doc-{i}" for i in range(len(CORPUS))])
    identical = retriever.search(CORPUS, k=3, exclude_identical=True)
    for i in range(len(CORPUS)):
        for rows in (by_pos, by_id, identical):
            assert len(rows[i]) == 3 and i not in [h.index for h in rows[i]]
        assert [h.index for h in by_pos[i]] == [h.index for h in by_id[i]] == [h.index for h in identical[i]]
        assert all(h.id == f"doc-{h.index}" for h in by_pos[i])
    with pytest.raises(InputError, match="one entry per query"):
        retriever.search(CORPUS[:2], k=1, exclude=[[0]])


def test_save_load_round_trip_gives_identical_hits(name, retriever, retriever_factory, tmp_path):
    retriever.build_index(CORPUS)
    before = retriever.search(QUERIES, k=5)
    retriever.save_index(tmp_path / "idx")
    loaded = retriever_factory(name).load_index(tmp_path / "idx")
    rebuilt = Retriever.from_index(tmp_path / "idx")
    assert type(rebuilt) is type(retriever)
    for other in (loaded, rebuilt):
        after = other.search(QUERIES, k=5)
        assert [[(h.index, h.item) for h in r] for r in after] == [
            [(h.index, h.item) for h in r] for r in before
        ]
        np.testing.assert_allclose(
            [[h.score for h in r] for r in after],
            [[h.score for h in r] for r in before],
            rtol=1e-5,
            atol=1e-5,
        )


def test_k_larger_than_the_corpus_returns_all_documents(retriever):
    retriever.build_index(CORPUS[:3])
    assert len(retriever.retrieve(QUERIES[0], k=10)) == 3


def test_errors_are_clear(retriever):
    with pytest.raises(InputError, match="no index; call build_index"):
        retriever.search(QUERIES, k=2)
    with pytest.raises(InputError, match="corpus is empty"):
        retriever.build_index([])
    retriever.build_index(CORPUS[:3])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="k must be a positive integer"):
            retriever.search(QUERIES, k=bad)
    with pytest.raises(InputError, match="retrieve"):
        retriever.search("a single string", k=1)
