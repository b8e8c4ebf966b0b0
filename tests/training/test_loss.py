"""The response-only LM head gives the loss and gradients of the full-logits path."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from cancerllm.prompts import PromptBuilder  # noqa: E402
from cancerllm.training.data import SFTCollator, encode_examples  # noqa: E402
from cancerllm.training.loss import CausalLMLoss, full_logits_loss, response_only_loss  # noqa: E402

from .conftest import random_lora_model  # noqa: E402


@pytest.fixture(scope="module")
def setup(synth):
    tok, model = random_lora_model(seed=1)
    exs = synth.examples(synth.rows(3, seed=5))
    data = encode_examples(exs, PromptBuilder("alpaca", tok), max_length=512)
    batch = SFTCollator(tok.pad_token_id)(list(zip(data.input_ids, data.labels)))
    return model, batch


def _grads(model, fn, batch):
    model.zero_grad()
    loss, n = fn(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    (loss / n).backward()
    return loss.detach(), n, {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}


def test_same_loss_and_gradients_as_full_logits(setup):
    model, batch = setup
    model.eval()  # no dropout: identical networks
    a, na, ga = _grads(model, response_only_loss, batch)
    b, nb, gb = _grads(model, full_logits_loss, batch)
    assert na == nb == int((batch["labels"][:, 1:] != -100).sum()) > 0
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)
    assert ga.keys() == gb.keys() and len(ga) > 0
    for k in ga:
        assert torch.allclose(ga[k], gb[k], rtol=1e-4, atol=1e-6), k
    # and the same as transformers' own (mean) loss
    with torch.no_grad():
        hf = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    assert float(a) / na == pytest.approx(float(hf), rel=1e-5)


def test_loss_module_verifies_itself_without_touching_the_rng(setup):
    model, batch = setup
    model.train()
    mod = CausalLMLoss(model)
    assert mod.response_only
    state = torch.get_rng_state()
    assert mod.verify(batch) is True
    assert torch.equal(state, torch.get_rng_state())
    loss, n = mod(batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert int(n) > 0 and torch.isfinite(loss)
