"""Each backend's pooling and input format against a hand computation on tiny random encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from cancerllm.errors import MissingDependencyError
from cancerllm.retrieval import (
    ContrieverRetriever,
    Document,
    MedCPTRetriever,
    MiniLMRetriever,
    SGPTRetriever,
    Specter2Retriever,
    cls_pool,
    mean_pool,
    weighted_mean_pool,
)
from cancerllm.retrieval._hf import is_local

from .conftest import CORPUS

# Batched (padded) and one-at-a-time passes run different BLAS kernels: ~1e-5 apart on some CPUs.
# Pooling mistakes (CLS vs mean, wrong mask, wrong encoder) move vectors by ~1e-1, far outside this.
TOL = {"atol": 1e-4, "rtol": 1e-4}

TEXTS = ["left breast carcinoma grade 3", CORPUS[1], "short"]  # different lengths -> padding in a batch


def _load(path):
    return AutoModel.from_pretrained(path, local_files_only=True).eval(), AutoTokenizer.from_pretrained(path)


def _last_hidden(model, ids, mask=None):
    ids = torch.tensor([ids])
    with torch.no_grad():
        return model(
            input_ids=ids, attention_mask=torch.ones_like(ids) if mask is None else mask
        ).last_hidden_state[0]


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


# ------------------------------------------------------------------------------------------ the functions
def test_pooling_functions_by_hand():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [100.0, 100.0]]])
    right = torch.tensor([[1, 1, 1, 0]])
    left = torch.tensor([[0, 1, 1, 1]])
    assert cls_pool(h, right).tolist() == [[1.0, 2.0]]
    assert mean_pool(h, right).tolist() == [[3.0, 4.0]]
    # weights 1, 2, 3 over the unmasked tokens: (1*1 + 2*3 + 3*5) / 6, (1*2 + 2*4 + 3*6) / 6
    assert torch.allclose(weighted_mean_pool(h, right), torch.tensor([[22 / 6, 28 / 6]]))
    # left padding: the unmasked tokens 3, 5, 100 get weights 1, 2, 3
    assert torch.allclose(
        weighted_mean_pool(h, left), torch.tensor([[(3 + 10 + 300) / 6, (4 + 12 + 300) / 6]])
    )
    assert torch.allclose(mean_pool(h, left), torch.tensor([[108 / 3, 110 / 3]]))


# ------------------------------------------------------------------------------------------ MedCPT
def test_medcpt_two_encoders_cls_and_max_lengths(tiny_bert_dir, tiny_bert2_dir):
    r = MedCPTRetriever(str(tiny_bert_dir), str(tiny_bert2_dir), device="cpu")
    qm, qt = _load(tiny_bert_dir)
    am, at = _load(tiny_bert2_dir)
    long_query = " ".join(CORPUS)  # > 64 tokens: truncated to 64, [SEP] included
    q_ids = qt(long_query, truncation=True, max_length=64)["input_ids"]
    assert len(q_ids) == 64
    got_q = r.encode_queries([long_query, "short"])
    np.testing.assert_allclose(got_q[0], _last_hidden(qm, q_ids)[0].numpy(), **TOL)
    # documents: the article encoder (a different model), its [CLS] state, up to 512 tokens
    got_d = r.encode_corpus(TEXTS)
    for i, t in enumerate(TEXTS):
        np.testing.assert_allclose(got_d[i], _last_hidden(am, at(t)["input_ids"])[0].numpy(), **TOL)
    # a titled document is the pair [title, text] with segment ids, as the model card encodes [title, abstract]
    pair = at("Breast", "left breast carcinoma")
    ids, types = torch.tensor([pair["input_ids"]]), torch.tensor([pair["token_type_ids"]])
    with torch.no_grad():
        want = am(input_ids=ids, token_type_ids=types, attention_mask=torch.ones_like(ids)).last_hidden_state[
            0, 0
        ]
    titled = r.encode_corpus([Document("left breast carcinoma", title="Breast"), "lung"])
    np.testing.assert_allclose(titled[0], want.numpy(), **TOL)
    assert not r.normalize and abs(np.linalg.norm(got_d[0]) - 1) > 1e-3  # raw inner product, not cosine
    # query and article encoders differ: the same text gets different vectors
    assert not np.allclose(r.encode_queries(["short"])[0], r.encode_corpus(["short"])[0], atol=1e-3)


def test_medcpt_defaults_are_the_ncbi_models():
    r = MedCPTRetriever()
    assert r.config() == {
        "query_model": "ncbi/MedCPT-Query-Encoder",
        "article_model": "ncbi/MedCPT-Article-Encoder",
        "query_max_length": 64,
        "article_max_length": 512,
    }


# ------------------------------------------------------------------------------------------ Contriever
def test_contriever_masked_mean_shared_encoder(tiny_bert_dir):
    r = ContrieverRetriever(str(tiny_bert_dir), device="cpu")
    model, tok = _load(tiny_bert_dir)
    got_q, got_d = r.encode_queries(TEXTS), r.encode_corpus(TEXTS)
    for i, t in enumerate(TEXTS):
        want = _last_hidden(model, tok(t)["input_ids"]).mean(dim=0).numpy()  # no padding: plain mean
        np.testing.assert_allclose(got_q[i], want, **TOL)
        np.testing.assert_allclose(got_d[i], want, **TOL)  # one encoder for both sides
    assert not r.normalize
    assert ContrieverRetriever().model == "facebook/contriever"


# ------------------------------------------------------------------------------------------ SGPT
def test_sgpt_specb_brackets_and_weighted_mean(tiny_gpt_dir):
    r = SGPTRetriever(str(tiny_gpt_dir), device="cpu")
    assert r.specb  # "specb" is in the folder name, as in the hub ids of the asymmetric models
    model, tok = _load(tiny_gpt_dir)
    brackets = {k: tok.encode(k, add_special_tokens=False) for k in "[]{}"}
    assert all(len(v) == 1 for v in brackets.values())
    got_q, got_d = r.encode_queries(TEXTS), r.encode_corpus(TEXTS)
    for i, t in enumerate(TEXTS):
        ids = tok(t)["input_ids"]
        for got, (lo, hi) in ((got_q[i], "[]"), (got_d[i], "{}")):
            wrapped = brackets[lo] + ids + brackets[hi]
            hidden = _last_hidden(model, wrapped)
            w = torch.arange(1, len(wrapped) + 1, dtype=torch.float32)[:, None]
            want = (hidden * w).sum(0) / w.sum()
            np.testing.assert_allclose(got, _unit(want.numpy()), **TOL)
    assert r.normalize  # cosine
    assert not np.allclose(got_q[0], got_d[0], atol=1e-4)  # queries and documents are wrapped differently


def test_sgpt_symmetric_models_use_no_brackets(tiny_gpt_dir):
    r = SGPTRetriever(str(tiny_gpt_dir), specb=False, device="cpu")
    model, tok = _load(tiny_gpt_dir)
    ids = tok(TEXTS[0])["input_ids"]
    hidden = _last_hidden(model, ids)
    w = torch.arange(1, len(ids) + 1, dtype=torch.float32)[:, None]
    want = _unit(((hidden * w).sum(0) / w.sum()).numpy())
    np.testing.assert_allclose(r.encode_queries([TEXTS[0]])[0], want, **TOL)
    np.testing.assert_allclose(r.encode_corpus([TEXTS[0]])[0], want, **TOL)
    assert SGPTRetriever("Muennighoff/SGPT-125M-weightedmean-nli-bitfit").specb is False
    assert SGPTRetriever().specb is True


# ------------------------------------------------------------------------------------------ Specter2
def test_specter2_title_sep_text_and_cls(tiny_bert_dir):
    r = Specter2Retriever(str(tiny_bert_dir), adapter=None, device="cpu")
    model, tok = _load(tiny_bert_dir)
    got = r.encode_corpus([Document("left breast carcinoma", title="Breast cancer"), TEXTS[1]])
    ids = tok("Breast cancer" + tok.sep_token + "left breast carcinoma")["input_ids"]
    assert ids.count(tok.sep_token_id) == 2  # title [SEP] text [SEP]
    np.testing.assert_allclose(got[0], _unit(_last_hidden(model, ids)[0].numpy()), **TOL)
    np.testing.assert_allclose(
        got[1], _unit(_last_hidden(model, tok(TEXTS[1])["input_ids"])[0].numpy()), **TOL
    )


def test_specter2_adapter_needs_the_adapters_package(tiny_bert_dir, monkeypatch):
    import cancerllm.retrieval.specter2 as mod

    monkeypatch.setattr(mod, "is_available", lambda name: False)
    r = Specter2Retriever(str(tiny_bert_dir), adapter="allenai/specter2", device="cpu")
    with pytest.raises(MissingDependencyError, match=r"pip install .*adapters.*adapter=None"):
        r.encode_queries(["x"])
    assert Specter2Retriever().config()["adapter"] == "allenai/specter2"


# ------------------------------------------------------------------------------------------ MiniLM
def test_minilm_mean_pooled_and_normalised(tiny_st_dir, tiny_bert_dir):
    r = MiniLMRetriever(str(tiny_st_dir), device="cpu")
    model, tok = _load(tiny_bert_dir)
    got = r.encode_corpus(TEXTS)
    for i, t in enumerate(TEXTS):
        want = _unit(_last_hidden(model, tok(t)["input_ids"]).mean(dim=0).numpy())
        np.testing.assert_allclose(got[i], want, **TOL)
    np.testing.assert_allclose(r.encode_queries(TEXTS), got, atol=1e-6)


def test_local_paths_never_reach_the_hub(tiny_bert_dir, monkeypatch):
    import transformers

    seen = []
    real = transformers.AutoModel.from_pretrained

    def spy(path, *args, **kwargs):
        seen.append(kwargs.get("local_files_only"))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", spy)
    assert is_local(str(tiny_bert_dir))
    ContrieverRetriever(str(tiny_bert_dir), device="cpu").encode_queries(["x"])
    assert seen == [True]
