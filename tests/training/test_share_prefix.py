"""Shared-prefix packing: a report asked several questions is encoded once, with each example's loss and
gradients what they are alone."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from cancerllm.prompts import PromptBuilder  # noqa: E402
from cancerllm.training.data import IGNORE_INDEX, SFTCollator, encode_examples  # noqa: E402
from cancerllm.training.loss import batch_args, full_logits_loss, response_only_loss  # noqa: E402

from .conftest import random_lora_model  # noqa: E402


@pytest.fixture(scope="module")
def setup(synth):
    tok, model = random_lora_model(seed=2)
    model.eval()
    exs = synth.examples(synth.rows(3, seed=7))  # 3 reports x 2 questions
    return tok, model, exs


def _loss_and_grads(model, fn, batch):
    model.zero_grad()
    loss, n = fn(model, *batch_args(batch))
    (loss / n).backward()
    return float(loss.detach()), n, {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}


def test_packing_groups_questions_of_one_report(setup):
    tok, _, exs = setup
    builder = PromptBuilder("alpaca", tok)
    plain = encode_examples(exs, builder, max_length=512)
    packed = encode_examples(exs, builder, max_length=512, share_prefix=True)
    assert len(plain) == 6 and len(packed) == 3
    assert packed.stats()["n_examples"] == plain.stats()["n_examples"] == 6
    # the same labelled tokens, fewer tokens in all
    assert packed.stats()["n_response_tokens"] == plain.stats()["n_response_tokens"]
    assert packed.stats()["n_tokens"] < plain.stats()["n_tokens"]
    for ids, lab, seg in packed.items():
        assert sum(seg) == len(ids) == len(lab) and len(seg) == 3


@pytest.mark.parametrize("fn", [response_only_loss, full_logits_loss])
def test_packed_loss_and_gradients_equal_one_example_per_row(setup, fn):
    tok, model, exs = setup
    builder = PromptBuilder("alpaca", tok)
    coll = SFTCollator(tok.pad_token_id)
    plain = coll(encode_examples(exs, builder, max_length=512).items())
    packed = coll(encode_examples(exs, builder, max_length=512, share_prefix=True).items())
    assert "segment_mask" in packed and "segment_mask" not in plain
    a, na, ga = _loss_and_grads(model, fn, plain)
    b, nb, gb = _loss_and_grads(model, fn, packed)
    assert na == nb > 0
    assert a == pytest.approx(b, rel=1e-5)
    for k in ga:
        assert torch.allclose(ga[k], gb[k], rtol=1e-4, atol=1e-6), k


def test_a_segment_does_not_see_the_other_questions(setup):
    """Changing the first question's answer leaves the second segment's logits unchanged."""
    tok, model, exs = setup
    builder = PromptBuilder("alpaca", tok)
    coll = SFTCollator(tok.pad_token_id)
    a = exs[:2]
    b = [a[0].model_copy(update={"response": '{"something else entirely"}'}), a[1]]
    ba = coll(encode_examples(a, builder, max_length=512, share_prefix=True).items())
    bb = coll(encode_examples(b, builder, max_length=512, share_prefix=True).items())
    seg_a = encode_examples(a, builder, max_length=512, share_prefix=True).segments[0]
    seg_b = encode_examples(b, builder, max_length=512, share_prefix=True).segments[0]
    with torch.no_grad():
        la = model(input_ids=ba["input_ids"], attention_mask=batch_args(ba)[1].float().log(),
                   position_ids=ba["position_ids"]).logits
        lb = model(input_ids=bb["input_ids"], attention_mask=batch_args(bb)[1].float().log(),
                   position_ids=bb["position_ids"]).logits
    last_a = la[0, seg_a[0] + seg_a[1]: sum(seg_a)]
    last_b = lb[0, seg_b[0] + seg_b[1]: sum(seg_b)]
    assert torch.allclose(last_a, last_b, atol=1e-5)


def test_prefix_cut_keeps_every_example_within_max_length(setup):
    tok, _, exs = setup
    builder = PromptBuilder("alpaca", tok)
    full = encode_examples(exs[:2], builder, max_length=4096, share_prefix=True)
    prefix_len, *segs = full.segments[0]
    limit = prefix_len + max(segs) - 5
    cut = encode_examples(exs[:2], builder, max_length=limit, share_prefix=True)
    p2, *segs2 = cut.segments[0]
    assert segs2 == segs and p2 + max(segs2) == limit and cut.n_truncated == 2
    assert all(t == IGNORE_INDEX for t in cut.labels[0][:p2])


def test_collator_rejects_segments_that_do_not_add_up():
    coll = SFTCollator(0)
    with pytest.raises(Exception, match="do not add up"):
        coll([([1, 2, 3, 4], [-100, -100, 5, 6], [2, 1])])


def test_instruction_tuning_with_shared_prefixes(synth, train_base_dir, tmp_path):
    import json

    from cancerllm.training import instruction_tune

    cfg = synth.config(tmp_path / "out", train_base_dir, data={"share_prefix": True},
                       training={"max_steps": 6, "batch_size": 2})
    out = instruction_tune(cfg, examples=synth.examples(synth.rows(12, seed=3)))
    res = json.loads((out / "train_results.json").read_text())
    assert res["data"]["n_examples"] == 24 and res["data"]["n_sequences"] == 12
    losses = [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]
