"""Training data: packing, reading raw text, SFT encoding (response-only labels with EOS), collation, pad token."""

from __future__ import annotations

import json

import pytest

from cancerllm.errors import DataFormatError, InputError
from cancerllm.prompts import PromptBuilder
from cancerllm.schema import PHENOTYPE_INSTRUCTION, Example, Phenotype
from cancerllm.testing import make_tiny_tokenizer
from cancerllm.training.data import (
    IGNORE_INDEX,
    SFTCollator,
    encode_examples,
    ensure_pad_token,
    pack_documents,
    read_texts,
    tokenize_documents,
)


@pytest.fixture(scope="module")
def tok():
    return make_tiny_tokenizer()


def _ex(context: str, response: str = "{left}", q: Phenotype = Phenotype.LATERALITY) -> Example:
    return Example(instruction=PHENOTYPE_INSTRUCTION, context=context, question=q.question, response=response)


# ------------------------------------------------------------------------------------------ packing
def test_packing_fills_every_block_and_separates_documents_with_eos(tok):
    docs = ["Invasive ductal carcinoma of the left breast.", "Margins negative.", "Stage IIB, grade 3."] * 7
    ids = tokenize_documents(docs, tok)
    assert all(d[-1] == tok.eos_token_id for d in ids)
    packed = pack_documents(ids, block_size=16)
    stream = [t for d in ids for t in d]
    assert all(len(b) == 16 for b in packed.blocks)
    assert [t for b in packed.blocks for t in b] == stream[: len(packed.blocks) * 16]  # order kept, nothing lost
    assert packed.n_dropped == len(stream) % 16 and packed.efficiency == 1.0
    assert packed.coverage == pytest.approx(1 - packed.n_dropped / len(stream))
    # one short document per padded row would waste most of each block
    assert packed.unpacked_efficiency < 0.8
    s = packed.stats()
    assert s["packing_efficiency"] == 1.0 and s["n_documents"] == 21 and s["n_blocks"] == len(packed)
    eos_in_blocks = sum(t == tok.eos_token_id for b in packed.blocks for t in b)
    assert eos_in_blocks >= 21 - 1


def test_packing_short_corpus_and_errors():
    p = pack_documents([[5, 6, 2]], block_size=8)
    assert p.blocks == [[5, 6, 2]] and p.n_dropped == 0
    with pytest.raises(InputError):
        pack_documents([], block_size=8)
    with pytest.raises(InputError):
        pack_documents([[1]], block_size=1)


def test_read_texts_from_files_folders_jsonl_and_dataframe(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("First note.", encoding="utf-8")
    (tmp_path / "notes" / "b.txt").write_text("Second note.", encoding="utf-8")
    (tmp_path / "reports.jsonl").write_text(
        json.dumps({"text": "Report one."}) + "\n" + json.dumps({"text": "Report two."}) + "\n", encoding="utf-8")
    assert read_texts(tmp_path / "notes") == ["First note.", "Second note."]
    assert read_texts([str(tmp_path / "reports.jsonl"), "an inline document"]) == [
        "Report one.", "Report two.", "an inline document"]
    pd = pytest.importorskip("pandas")
    assert read_texts(pd.DataFrame({"note": ["x y", " "]}), text_field="note") == ["x y"]
    with pytest.raises(DataFormatError, match="text_field"):
        read_texts(tmp_path / "reports.jsonl", text_field="body")
    with pytest.raises(InputError, match="does not exist"):
        read_texts(tmp_path / "missing.txt")


# ------------------------------------------------------------------------------------------ SFT encoding
def test_sft_encoding_is_the_prompt_builders_with_loss_only_on_response_and_eos(tok):
    builder = PromptBuilder("alpaca", tok)
    ex = _ex("Carcinoma of the left breast, grade 3.")
    data = encode_examples([ex], builder, max_length=512)
    ids, labels = data.input_ids[0], data.labels[0]
    ref = builder.encode(ex, with_response=True)
    assert ids == ref.input_ids  # the very ids inference sees, plus the response
    n_prompt = len(ref.prompt_ids)
    assert labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:] and labels[-1] == tok.eos_token_id
    assert tok.decode(labels[n_prompt:-1]) == "{left}"
    assert data.stats()["n_response_tokens"] == len(ids) - n_prompt


def test_long_reports_lose_their_end_not_the_question_or_answer(tok):
    builder = PromptBuilder("alpaca", tok)
    ex = _ex("Carcinoma of the left breast. " * 60)
    full = builder.encode(ex, with_response=True)
    data = encode_examples([ex], builder, max_length=200)
    ids = data.input_ids[0]
    assert len(ids) == 200 and data.n_truncated == 1
    tail = full.suffix_ids + full.response_ids
    assert ids[-len(tail):] == tail
    with pytest.warns(UserWarning, match="dropped"), pytest.raises(InputError, match="no examples left"):
        encode_examples([ex], builder, max_length=len(tail))
    with pytest.raises(InputError, match="empty response"):
        encode_examples([_ex("x", response="")], builder, max_length=200)


def test_retrieved_examples_go_into_the_training_prompt(tok):
    """Training shows the shots inference would (the retrieval package's ShotSelector), never the example's own."""
    from cancerllm.retrieval import ShotSelector

    pool = [_ex(f"Tumor {i} of the {'left' if i % 2 else 'right'} breast.", "{left}" if i % 2 else "{right}")
            for i in range(6)]
    selector = ShotSelector(pool, "random", k=2)
    per_example = selector.for_examples(pool)
    assert all(len(s) == 2 and ex.context not in {x.context for x in s} for ex, s in zip(pool, per_example))
    builder = PromptBuilder("alpaca", tok)
    data = encode_examples(pool, builder, max_length=1024, shots=per_example)
    assert data.input_ids[0] == builder.encode(pool[0], per_example[0], with_response=True).input_ids
    assert "Here are similar examples" in tok.decode(data.input_ids[0])
    assert data.stats()["shots_per_example"] == 2
    same = encode_examples(pool[:1], builder, max_length=1024, shots=lambda ex: per_example[0])  # a function works too
    assert same.input_ids[0] == data.input_ids[0]
    with pytest.raises(InputError, match="lists of shots"):
        encode_examples(pool, builder, max_length=1024, shots=per_example[:2])


# ------------------------------------------------------------------------------------------ collation / pad
def test_collator_pads_with_a_token_that_is_not_eos_and_keeps_eos_in_the_labels(tok):
    assert tok.pad_token_id != tok.eos_token_id
    builder = PromptBuilder("alpaca", tok)
    data = encode_examples([_ex("Left breast."), _ex("Carcinoma of the right lung, upper lobe.", "{right}")],
                           builder, max_length=512)
    batch = SFTCollator(tok.pad_token_id)(list(zip(data.input_ids, data.labels)))
    short = 0 if len(data.input_ids[0]) < len(data.input_ids[1]) else 1
    n = len(data.input_ids[short])
    assert (batch["input_ids"][short, n:] == tok.pad_token_id).all()
    assert (batch["attention_mask"][short, n:] == 0).all() and (batch["attention_mask"][short, :n] == 1).all()
    assert (batch["labels"][short, n:] == IGNORE_INDEX).all()
    for r in range(2):  # each row's EOS is a training target
        last = len(data.input_ids[r]) - 1
        assert int(batch["labels"][r, last]) == tok.eos_token_id


def test_eos_is_learned_even_if_pad_equals_eos(tok):
    """The official code's bug: pad = eos and labels masked where input == pad, so EOS is never a target.
    Our labels come from the encoding, so EOS stays a target whatever the pad id is."""
    builder = PromptBuilder("alpaca", tok)
    data = encode_examples([_ex("Left breast."), _ex("Right lung, upper lobe.", "{right}")], builder, max_length=512)
    batch = SFTCollator(tok.eos_token_id)(list(zip(data.input_ids, data.labels)))
    assert int((batch["labels"] == tok.eos_token_id).sum()) == 2


def test_ensure_pad_token_reuses_an_unused_special_token():
    tok = make_tiny_tokenizer()
    tok.pad_token = tok.eos_token  # the official code's setting
    pad = ensure_pad_token(tok)
    assert pad != tok.eos_token_id and tok.pad_token_id == pad
    assert tok.convert_ids_to_tokens(pad) == "<pad>"
    n = len(tok)
    tok2 = make_tiny_tokenizer()
    tok2.pad_token = None
    tok2.add_special_tokens({"unk_token": "<unk>"})
    assert ensure_pad_token(tok2) not in (tok2.eos_token_id, tok2.bos_token_id) and len(tok2) == n


def test_ensure_pad_token_uses_a_spare_embedding_row_or_warns():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from cancerllm.testing import make_tiny_model

    raw = Tokenizer(models.WordLevel({"a": 0, "b": 1, "</s>": 2}, unk_token="</s>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="</s>", bos_token="</s>", unk_token="</s>")
    assert tok.pad_token_id is None
    base = make_tiny_tokenizer()
    model = make_tiny_model(base, hidden_size=16, num_layers=1)  # 512 rows > 3 tokens: spare rows
    pad = ensure_pad_token(tok, model)
    assert pad == 3 and tok.pad_token == "<pad>"
    assert model.get_input_embeddings().weight.shape[0] == len(base)  # never resized
    tok3 = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="</s>", bos_token="</s>", unk_token="</s>")
    with pytest.warns(UserWarning, match="padding with EOS"):
        assert ensure_pad_token(tok3) == tok3.eos_token_id
