"""Tiny random encoders for the retrieval tests, built in-process once per session (no hub, no network).

* ``tiny_bert_dir`` / ``tiny_bert2_dir``: 2-layer BERTs (hidden 32) with a WordPiece tokenizer trained here,
  for MedCPT (query and article encoders), Contriever and Specter2.
* ``tiny_gpt_dir``: a 2-layer GPT-Neo (the SGPT-125M architecture) with a byte-level BPE tokenizer.
* ``tiny_st_dir``: a sentence-transformers folder (tiny BERT + mean pooling + Normalize), as MiniLM's.
* ``retriever_factory``: registry name -> a retriever on these models.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = [
    "invasive ductal carcinoma of the left breast grade 3 er positive pr negative her2 negative",
    "squamous cell carcinoma of the right lung upper lobe stage iib moderately differentiated",
    "adenocarcinoma of the sigmoid colon pt3 n1 g2 margins negative lymph nodes positive",
    "papillary thyroid carcinoma right lobe 1.2 cm no extrathyroidal extension",
    "clear cell renal cell carcinoma left kidney fuhrman grade 2 tumor size 4 cm",
    "high grade serous carcinoma of the ovary bilateral stage iiic",
    "glioblastoma of the left frontal lobe who grade iv idh wild type",
    "urothelial carcinoma of the bladder invading muscularis propria",
    "melanoma of the skin of the back breslow thickness 2.1 mm ulceration present",
    "hepatocellular carcinoma of the right liver lobe with vascular invasion",
]

_WORDS = (
    " ".join(CORPUS) + " tumor size laterality stage grade receptor left right breast lung report the of and"
)


def _wordpiece_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=400, special_tokens=special, show_progress=False)
    tok.train_from_iterator([_WORDS] * 4 + CORPUS, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def save_tiny_bert(path: Path, *, seed: int) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    tok = _wordpiece_tokenizer()
    cfg = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=len(tok),
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        initializer_range=0.5,
    )
    torch.manual_seed(seed)
    BertModel(cfg).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


def save_tiny_gpt(path: Path, *, seed: int) -> Path:
    import torch
    from transformers import GPTNeoConfig, GPTNeoModel

    from cancerllm.testing import make_tiny_tokenizer

    tok = make_tiny_tokenizer(corpus=CORPUS + [_WORDS, "[ ] { } ( )"])
    cfg = GPTNeoConfig(
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        attention_types=[[["global", "local"], 1]],
        window_size=16,
        max_position_embeddings=256,
        vocab_size=len(tok),
        intermediate_size=64,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        initializer_range=0.5,
    )
    torch.manual_seed(seed)
    GPTNeoModel(cfg).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("enc") / "bert-a", seed=1)


@pytest.fixture(scope="session")
def tiny_bert2_dir(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("enc") / "bert-b", seed=2)


@pytest.fixture(scope="session")
def tiny_gpt_dir(tmp_path_factory) -> Path:
    return save_tiny_gpt(tmp_path_factory.mktemp("enc") / "gpt-neo-specb", seed=3)


@pytest.fixture(scope="session")
def tiny_st_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models

    word = models.Transformer(str(tiny_bert_dir), max_seq_length=128)
    pooling = models.Pooling(word.get_embedding_dimension(), "mean")
    path = tmp_path_factory.mktemp("enc") / "st-minilm"
    SentenceTransformer(modules=[word, pooling, models.Normalize()], device="cpu").save(str(path))
    return path


@pytest.fixture(scope="session")
def retriever_kwargs(tiny_bert_dir, tiny_bert2_dir, tiny_gpt_dir, tiny_st_dir):
    """Registry name -> constructor kwargs on tiny local models."""
    return {
        "random": {"seed": 7},
        # one tiny BERT on both sides so that the contract's self-retrieval check is meaningful; the pooling
        # tests use two different encoders
        "medcpt": {"query_model": str(tiny_bert_dir), "article_model": str(tiny_bert_dir), "device": "cpu"},
        "contriever": {"model": str(tiny_bert_dir), "device": "cpu"},
        "sgpt": {"model": str(tiny_gpt_dir), "device": "cpu"},
        "specter2": {"base_model": str(tiny_bert_dir), "adapter": None, "device": "cpu"},
        "minilm": {"model": str(tiny_st_dir), "device": "cpu"},
        "default": {"model": str(tiny_st_dir), "device": "cpu"},
    }


@pytest.fixture(scope="session")
def retriever_factory(retriever_kwargs):
    """``factory(name, **overrides)`` -> a fresh retriever of backend ``name`` on tiny local models."""
    from cancerllm.retrieval import get_retriever

    def make(name: str, **overrides):
        if name not in retriever_kwargs:
            pytest.skip(f"no tiny-model recipe for third-party retriever {name!r}")
        return get_retriever(name, **{**retriever_kwargs[name], **overrides})

    return make
