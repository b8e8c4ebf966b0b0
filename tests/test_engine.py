"""The generation engine: batching, KV reuse and stopping must not change greedy outputs."""

import pytest
import torch

from cancerllm.engine.base import GenerationSettings, PromptGroup
from cancerllm.engine.hf import HFEngine

REPORTS = [
    "In the text: Invasive ductal carcinoma of the left breast, 2.5 cm, grade 3.",
    "In the text: Squamous cell carcinoma of the right lung, upper lobe, pT2 pN0, stage IIB, moderately "
    "differentiated. Margins negative. Lymph nodes 0/12.",
    "In the text: Adenocarcinoma of the colon.",
]
QUESTIONS = [" What is the tumor size in the given context?\n\n### Response:\n",
             " What is the grade of cancer in the given context?\n\n### Response:\n", " Please"]


@pytest.fixture(scope="module")
def engine(tiny_llm):
    return HFEngine(tiny_llm.model, tiny_llm.tokenizer)


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def _reference(model, ids, n):
    """One prompt at a time, full transformers generate: the official code's way."""
    x = torch.tensor([ids])
    out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False,
                         pad_token_id=model.generation_config.pad_token_id)
    return out[0, x.shape[1]:].tolist()


def test_kv_reuse_and_left_padded_batching_equal_one_by_one_generate(engine, tiny_llm):
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    groups = [PromptGroup(_ids(tok, r), [_ids(tok, q) for q in QUESTIONS]) for r in REPORTS]
    out = engine.generate_groups(groups, GenerationSettings(max_new_tokens=12, batch_size=16))
    for g, r in enumerate(REPORTS):
        for s, q in enumerate(QUESTIONS):
            assert out[g][s] == _reference(model, _ids(tok, r) + _ids(tok, q), 12), (g, s)


@pytest.mark.parametrize("batch_size", [1, 2, 5, 64])
def test_batch_size_does_not_change_outputs(engine, tiny_llm, batch_size):
    tok = tiny_llm.tokenizer
    groups = [PromptGroup(_ids(tok, r), [_ids(tok, q) for q in QUESTIONS[:2]]) for r in REPORTS]
    ref = engine.generate_groups(groups, GenerationSettings(max_new_tokens=8, batch_size=64))
    assert engine.generate_groups(groups, GenerationSettings(max_new_tokens=8, batch_size=batch_size)) == ref


def test_plain_prompts_and_result_order(engine, tiny_llm):
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    prompts = [_ids(tok, r + QUESTIONS[0]) for r in REPORTS]
    out = engine.generate_groups([PromptGroup(p, [[]]) for p in prompts], GenerationSettings(max_new_tokens=6))
    assert [o[0] for o in out] == [_reference(model, p, 6) for p in prompts]


def test_stops_at_eos(tiny_llm):
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    prompt = _ids(tok, REPORTS[0] + QUESTIONS[0])
    full = _reference(model, prompt, 10)
    eng = HFEngine(model, tok)
    eng.eos_ids = {full[3]}  # pretend the 4th generated token is EOS
    first = full.index(full[3])
    out = eng.generate_groups([PromptGroup(prompt, [[]])], GenerationSettings(max_new_tokens=10))
    assert out[0][0] == full[: first + 1]


def test_stops_at_stop_string_per_sequence(engine, tiny_llm):
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    prompts = [_ids(tok, r + QUESTIONS[1]) for r in REPORTS]
    fulls = [_reference(model, p, 10) for p in prompts]
    stop = tok.decode([fulls[0][2]]).strip() or tok.decode([fulls[0][2]])
    out = engine.generate_groups([PromptGroup(p, [[]]) for p in prompts],
                                 GenerationSettings(max_new_tokens=10, stop_strings=(stop,)))
    for full, o in zip(fulls, out):
        text = tok.decode(o[0])
        assert full[: len(o[0])] == o[0]  # a prefix of the unstopped output
        if stop in tok.decode(full):
            assert stop in text and stop not in tok.decode(o[0][:-1])
        else:
            assert o[0] == full
    assert len(out[0][0]) <= 3


def test_max_new_tokens_is_respected(engine, tiny_llm):
    tok = tiny_llm.tokenizer
    out = engine.generate_groups([PromptGroup(_ids(tok, REPORTS[1]), [[]])], GenerationSettings(max_new_tokens=4))
    assert len(out[0][0]) == 4


def test_bad_groups(engine):
    with pytest.raises(ValueError):
        engine.generate_groups([PromptGroup([], [[]])], GenerationSettings())
    with pytest.raises(ValueError):
        engine.generate_groups([PromptGroup([1, 2], [])], GenerationSettings())
    assert engine.generate_groups([], GenerationSettings()) == []


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_logprobs_are_the_models_probabilities_of_the_generated_tokens(tiny_llm, shared_prefix):
    """Read off the decoding logits (no extra forward pass); equal to a teacher-forced forward pass."""
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    engine = HFEngine(model, tok)
    engine.shared_prefix = shared_prefix
    groups = [PromptGroup(_ids(tok, r), [_ids(tok, q) for q in QUESTIONS]) for r in REPORTS]
    settings = GenerationSettings(max_new_tokens=7, batch_size=16, logprobs=True)
    out = engine.generate(groups, settings)
    assert engine.generate_groups(groups, GenerationSettings(max_new_tokens=7, batch_size=16)) == [
        [g.ids for g in row] for row in out]
    for group, row in zip(groups, out):
        for suffix, gen in zip(group.suffix_ids, row):
            assert len(gen.logprobs) == len(gen.ids) == 7
            prompt = group.prefix_ids + suffix
            x = torch.tensor([prompt + gen.ids[:-1]])
            with torch.inference_mode():
                logp = model(input_ids=x).logits[0, len(prompt) - 1:].float().log_softmax(-1)
            expected = logp[torch.arange(len(gen.ids)), torch.tensor(gen.ids)]
            torch.testing.assert_close(torch.tensor(gen.logprobs), expected, rtol=0, atol=2e-4)
            assert all(lp <= 0 for lp in gen.logprobs)


def test_without_logprobs_none_are_returned(engine, tiny_llm):
    tok = tiny_llm.tokenizer
    (gen,), = engine.generate([PromptGroup(_ids(tok, REPORTS[0]), [[]])], GenerationSettings(max_new_tokens=3))
    assert gen.logprobs is None and len(gen.ids) == 3


# ------------------------------------------------------------------------------------------ continuous batching
HEADER = "### Instruction: Give the diagnosis of the report.\n\n### Input:\n"
NOTES = [HEADER + r[13:] + tail for r in REPORTS for tail in ("", " Frozen section.", " See addendum below.")]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 16])
def test_continuous_batching_equals_one_by_one_generate(tiny_llm, batch_size):
    """Rows finish at different steps (an early 'EOS'), newcomers join the running batch, and every prompt
    still gets exactly what it gets alone."""
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    prompts = [_ids(tok, n + "\n\n### Response:\n") for n in NOTES]
    eng = HFEngine(model, tok)
    fulls = [_reference(model, p, 14) for p in prompts]
    eng.eos_ids = {fulls[0][2], fulls[4][6]}  # pretend these are EOS: rows stop after 3..14 tokens
    want = []
    for full in fulls:
        cut = next((i for i, t in enumerate(full) if t in eng.eos_ids), len(full) - 1)
        want.append(full[: cut + 1])
    assert len({len(w) for w in want}) > 2  # the rows really stop at different steps
    settings = GenerationSettings(max_new_tokens=14, batch_size=batch_size, logprobs=True)
    got = eng.generate([PromptGroup(p, [[]]) for p in prompts], settings)
    assert [g[0].ids for g in got] == want
    eng.continuous = False  # the batch-at-a-time path gives the same ids and log-probabilities
    old = eng.generate([PromptGroup(p, [[]]) for p in prompts], settings)
    assert [g[0].ids for g in old] == want
    for a, b in zip(got, old):
        assert a[0].logprobs == pytest.approx(b[0].logprobs, abs=1e-4)


def test_continuous_batching_encodes_each_prompt_alone_unpadded(tiny_llm, monkeypatch):
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    prompts = [_ids(tok, n + "\n\n### Response:\n") for n in NOTES[:4]]
    eng = HFEngine(model, tok)
    seen = []
    forward = eng._forward
    monkeypatch.setattr(eng, "_forward", lambda ids, mask, *a: (seen.append((tuple(ids.shape), mask is None)),
                                                               forward(ids, mask, *a))[1])
    eng.generate_groups([PromptGroup(p, [[]]) for p in prompts], GenerationSettings(max_new_tokens=2, batch_size=8))
    by_length = sorted(prompts, key=len, reverse=True)
    assert seen[:4] == [((1, len(p)), True) for p in by_length]  # each prompt alone, no mask, longest first
    assert seen[4] == ((4, 1), False)  # then one decoding step for all four rows (left-padded, masked)


def test_prefixes_sharing_a_report_encode_it_once_and_equal_one_by_one(tiny_llm, monkeypatch):
    """Two prompts of one report with different retrieved examples (report first, examples after) share the
    report as a family level; outputs equal one-by-one generate."""
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    report = _ids(tok, HEADER + REPORTS[1][13:] + " Margins free. Nodes negative. Grade 2 of 3.")
    a = report + _ids(tok, "\n\nExample 1: right lung adenocarcinoma")
    b = report + _ids(tok, "\n\nExample 1: left kidney clear cell carcinoma, grade 2")
    other = _ids(tok, HEADER + REPORTS[0][13:])
    groups = [PromptGroup(a, [_ids(tok, q) for q in QUESTIONS[:2]]), PromptGroup(other, [_ids(tok, QUESTIONS[0])]),
              PromptGroup(b, [_ids(tok, QUESTIONS[2])])]
    eng = HFEngine(model, tok)
    encoded = []
    inner = eng._encode_rows
    monkeypatch.setattr(eng, "_encode_rows", lambda levels, rg, seqs, *a, **k: (
        encoded.append([len(x) for x in seqs]), inner(levels, rg, seqs, *a, **k))[1])
    out = eng.generate_groups(groups, GenerationSettings(max_new_tokens=8, batch_size=16))
    for g, grp in enumerate(groups):
        for s, suf in enumerate(grp.suffix_ids):
            assert out[g][s] == _reference(model, grp.prefix_ids + suf, 8), (g, s)
    head = len(__import__("os").path.commonprefix([a, b, other]))
    shared = len(__import__("os").path.commonprefix([a, b]))
    # the family parts (the report once; the other prompt, a family of its own), then what is left of each
    assert encoded[0] == [head]  # the header
    assert sorted(encoded[1]) == sorted([shared - head, len(other) - 1 - head])
    assert sorted(encoded[2]) == sorted([len(a) - shared, len(b) - shared, 1])


# ------------------------------------------------------------------------------------------ prefix cache
def _recording(eng, monkeypatch):
    encoded = []
    inner = eng._encode_rows
    monkeypatch.setattr(eng, "_encode_rows", lambda levels, rg, seqs, *a, **k: (
        encoded.append(sorted(len(x) for x in seqs)), inner(levels, rg, seqs, *a, **k))[1])
    return encoded


def test_prefix_cache_skips_reports_seen_before_with_identical_outputs(tiny_llm, monkeypatch):
    tok, model = tiny_llm.tokenizer, tiny_llm.model
    groups = [PromptGroup(_ids(tok, HEADER + r), [_ids(tok, q) for q in QUESTIONS]) for r in REPORTS]
    eng = HFEngine(model, tok)
    encoded = _recording(eng, monkeypatch)
    settings = GenerationSettings(max_new_tokens=8, batch_size=64)
    first = eng.generate_groups(groups, settings)
    n_first = len(encoded)
    assert n_first == 3  # header, reports, questions
    encoded.clear()
    again = eng.generate_groups(groups[::-1], settings)  # another order, same prompts
    assert again == first[::-1]
    assert len(encoded) == 1 and encoded[0] == sorted(len(q) for q in [_ids(tok, q) for q in QUESTIONS] * 3)
    # a new report among known ones: only it is encoded; outputs still equal one-by-one generate
    encoded.clear()
    new = PromptGroup(_ids(tok, HEADER + "In the text: Melanoma of the scalp, Breslow 2 mm."), [_ids(tok, QUESTIONS[0])])
    out = eng.generate_groups([groups[0], new], settings)
    assert out[0] == first[0]
    assert out[1][0] == _reference(model, new.prefix_ids + new.suffix_ids[0], 8)
    head = len(__import__("os").path.commonprefix([groups[0].prefix_ids, new.prefix_ids]))
    assert encoded[0] == [len(new.prefix_ids) - head]


def test_prefix_cache_is_dropped_when_the_weights_change_and_can_be_off(tiny_model_dir, monkeypatch):
    from cancerllm import CancerLLM

    llm = CancerLLM.from_pretrained(tiny_model_dir)
    tok, model = llm.tokenizer, llm.model
    groups = [PromptGroup(_ids(tok, HEADER + r), [_ids(tok, q) for q in QUESTIONS[:2]]) for r in REPORTS]
    eng = HFEngine(model, tok)
    encoded = _recording(eng, monkeypatch)
    settings = GenerationSettings(max_new_tokens=6, batch_size=64)
    eng.generate_groups(groups, settings)
    with torch.no_grad():
        next(model.parameters()).data.mul_(1.5)  # weights changed in place (as merging an adapter does)
    encoded.clear()
    changed = eng.generate_groups(groups, settings)
    assert len(encoded) == 3  # header, reports and questions encoded again
    for g, grp in enumerate(groups):
        assert changed[g][0] == _reference(model, grp.prefix_ids + grp.suffix_ids[0], 6)
    eng.prefix_cache_mb = 0
    eng.clear_prefix_cache()
    encoded.clear()
    eng.generate_groups(groups, settings)
    eng.generate_groups(groups, settings)
    assert len(encoded) == 6 and eng._prefix_kv is None  # nothing kept


def test_prefix_cache_keeps_to_its_budget():
    from cancerllm.engine.hf import _PrefixKV

    store = _PrefixKV(mark=1)
    store.budget = 3 * 4 * 2 * 10  # three entries of 10 float32 keys + 10 values
    for i in range(5):
        store.put((i,), [(torch.zeros(10), torch.zeros(10))])
    assert len(store) == 3 and store.get((0,)) is None and store.get((4,)) is not None
    store.get((2,))  # used: kept over 3
    store.put((5,), [(torch.zeros(10), torch.zeros(10))])
    assert store.get((2,)) is not None and store.get((3,)) is None and store.used <= store.budget
