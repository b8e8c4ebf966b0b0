"""Shared-prefix attention: one KV copy per report, exact against copying the cache and one-by-one generate."""

from collections import Counter

import pytest
import torch

from cancerllm import CancerLLM
from cancerllm.engine import _shared_prefix
from cancerllm.engine.base import GenerationSettings, PromptGroup
from cancerllm.engine.hf import HFEngine
from cancerllm.testing import save_tiny_model

HEADER = list(range(20, 32))  # a shared template/instruction header of 12 tokens


def _groups(seed=0, n=7, header=()):
    """Prefixes of 3-60 tokens (after an optional shared header) with 1-4 suffixes of 1-8 tokens each (ragged
    on purpose)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        pre = list(header) + torch.randint(
            5, 500, (int(torch.randint(3, 60, (1,), generator=g)),), generator=g).tolist()
        sufs = [torch.randint(5, 500, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).tolist()
                for _ in range(1 + i % 4)]
        out.append(PromptGroup(pre, sufs))
    return out


@pytest.fixture(scope="module", params=["mistral", "llama"])
def llm(request, tmp_path_factory):
    return CancerLLM.from_pretrained(save_tiny_model(tmp_path_factory.mktemp(request.param) / "m", arch=request.param))


@pytest.fixture()
def engines(llm):
    shared = HFEngine(llm.model, llm.tokenizer)
    copied = HFEngine(llm.model, llm.tokenizer)
    copied.shared_prefix = False
    # frequent tokens act as EOS, so rows (and whole groups) finish at different steps
    free = copied.generate_groups(_groups(), GenerationSettings(max_new_tokens=20, batch_size=64))
    eos = {t for t, _ in Counter(t for g in free for s in g for t in s).most_common(6)}
    shared.eos_ids = copied.eos_ids = eos
    return shared, copied


def _spy(monkeypatch):
    calls = []
    original = HFEngine._run_batch_shared

    def spy(self, *a, **k):
        calls.append(1)
        return original(self, *a, **k)

    monkeypatch.setattr(HFEngine, "_run_batch_shared", spy)
    return calls


@pytest.mark.parametrize("batch_size", [64, 5, 3])
@pytest.mark.parametrize("prefill_tokens", [2048, 30, 1])
@pytest.mark.parametrize("header", [(), HEADER])
def test_shared_prefix_equals_copied_cache(engines, monkeypatch, batch_size, prefill_tokens, header):
    shared, copied = engines
    calls = _spy(monkeypatch)
    shared.prefill_tokens = prefill_tokens
    settings = GenerationSettings(max_new_tokens=20, batch_size=batch_size)
    out = shared.generate_groups(_groups(header=header), settings)
    assert calls, "the shared-prefix path was not used"
    assert out == copied.generate_groups(_groups(header=header), settings)
    lengths = {len(s) for g in out for s in g}
    assert len(lengths) > 3  # rows really stopped at different steps


@pytest.mark.parametrize("header", [(), HEADER, HEADER + [7]])
def test_shared_prefix_equals_one_by_one_generate(llm, monkeypatch, header):
    calls = _spy(monkeypatch)
    groups = _groups(seed=1, n=4, header=header)
    if len(header) > len(HEADER):  # one prefix is the header itself: the shared part must stop short of it
        groups.append(PromptGroup(list(header), [[40, 41], [42]]))
    out = HFEngine(llm.model, llm.tokenizer).generate_groups(groups, GenerationSettings(max_new_tokens=10))
    assert calls
    for g, group in enumerate(groups):
        for s, suffix in enumerate(group.suffix_ids):
            x = torch.tensor([group.prefix_ids + suffix])
            ref = llm.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=10, do_sample=False,
                                     pad_token_id=llm.tokenizer.pad_token_id)[0, x.shape[1]:].tolist()
            assert out[g][s] == ref, (g, s)


def test_plain_softmax_path_equals_fused_kernel(engines, monkeypatch):
    shared, copied = engines
    monkeypatch.setattr(_shared_prefix, "_cpu_flash", lambda: None)
    settings = GenerationSettings(max_new_tokens=12, batch_size=16)
    groups = _groups(header=HEADER)
    assert shared.generate_groups(groups, settings) == copied.generate_groups(groups, settings)


def test_header_is_encoded_once(engines, monkeypatch):
    shared, _ = engines
    seen = []
    original = HFEngine._forward

    def spy(self, ids, *a):
        seen.append(tuple(ids.shape))
        return original(self, ids, *a)

    monkeypatch.setattr(HFEngine, "_forward", spy)
    groups = _groups(header=HEADER)
    shared.generate_groups(groups, GenerationSettings(max_new_tokens=1, batch_size=64))  # no decoding step
    assert seen[0] == (1, len(HEADER))  # the header, alone, first
    # then every other token exactly once: no header copy, and no padding (lengths fall in exact buckets)
    everything = sum(len(g.prefix_ids) + sum(map(len, g.suffix_ids)) for g in groups)
    assert sum(r * w for r, w in seen[1:]) == everything - len(groups) * len(HEADER)


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_outside_the_engine_the_model_computes_exactly_as_before(llm, impl, monkeypatch):
    from transformers import AutoModelForCausalLM

    fresh = AutoModelForCausalLM.from_pretrained(llm.model.name_or_path, attn_implementation=impl).eval()
    ids = torch.tensor([[0, 0, 7, 8, 9, 10], [5, 6, 7, 8, 9, 10]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1] * 6])  # left padding: the model's own mask matters
    with torch.inference_mode():
        before = fresh(input_ids=ids, attention_mask=mask).logits
        gen_before = fresh.generate(ids, attention_mask=mask, max_new_tokens=5, do_sample=False)
    eng = HFEngine(fresh, llm.tokenizer)
    eng.generate_groups(_groups(n=3), GenerationSettings(max_new_tokens=3))
    assert fresh.config._attn_implementation == f"{_shared_prefix.ATTENTION_NAME}|{impl}"  # installed once
    with torch.inference_mode():
        assert torch.equal(fresh(input_ids=ids, attention_mask=mask).logits, before)
        assert torch.equal(fresh.generate(ids, attention_mask=mask, max_new_tokens=5, do_sample=False), gen_before)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(eng, "_decode", boom)
    with pytest.raises(KeyboardInterrupt):
        eng.generate_groups(_groups(n=2), GenerationSettings(max_new_tokens=3))
    assert _shared_prefix._ACTIVE.get() is None  # no engine state left behind after an error
    with torch.inference_mode():
        assert torch.equal(fresh(input_ids=ids, attention_mask=mask).logits, before)
    with pytest.raises(RuntimeError, match="outside"):  # the shared function itself needs engine state
        _shared_prefix._attention(None, None, None, None, None)


def test_other_implementations_are_left_alone(llm, monkeypatch):
    monkeypatch.setattr(llm.model.config, "_attn_implementation", "flex_attention")
    assert not _shared_prefix.supports_shared_prefix(llm.model, 100)
    assert not _shared_prefix.install(llm.model)
    assert llm.model.config._attn_implementation == "flex_attention"


def test_two_threads_on_one_model_give_the_sequential_answers(llm):
    """Two extractions and a plain ``generate`` at the same time on one model, repeatedly: each thread's
    engine state is its own, and the model's own attention is undisturbed."""
    from concurrent.futures import ThreadPoolExecutor

    ext = llm.phenotype_extractor(["tumor_size", "grade", "stage"], progress=False, max_new_tokens=8)
    texts_a = ["Invasive ductal carcinoma, left breast, 2.5 cm, grade 3.", "Adenocarcinoma of the colon, G2."]
    texts_b = ["Squamous cell carcinoma of the right lung, pT2 pN0, stage IIB, moderately differentiated."] * 3
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11]])

    def plain():
        with torch.inference_mode():
            return llm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                                      do_sample=False).tolist()

    def answers(results):  # what was generated (provenance has a time stamp; confidences: see below)
        return [(r.as_dict(), r.raw, {k: [(i.value, i.span, i.match) for i in d.items] for k, d in r.details.items()})
                for r in results]

    def confidences(results):
        return [d.confidence for r in results for d in r.details.values()]

    first_a, first_b = ext.extract_many(texts_a), ext.extract_many(texts_b)
    seq = (answers(first_a), answers(first_b), plain())
    with ThreadPoolExecutor(3) as pool:
        for _ in range(4):
            futures = [pool.submit(ext.extract_many, texts_a), pool.submit(ext.extract_many, texts_b),
                       pool.submit(plain)]
            a, b, p = (f.result() for f in futures)
            assert (answers(a), answers(b), p) == seq
            # the same answers; their probabilities may differ in the last float bits, since torch's kernels
            # split work by the threads free at the time
            assert confidences(a) == pytest.approx(confidences(first_a), rel=1e-4)
            assert confidences(b) == pytest.approx(confidences(first_b), rel=1e-4)


def test_unsupported_models_use_the_copying_path(llm, monkeypatch):
    assert _shared_prefix.supports_shared_prefix(llm.model, 100)
    window = getattr(llm.model.config, "sliding_window", None)
    monkeypatch.setattr(llm.model.config, "sliding_window", 16, raising=False)
    monkeypatch.setattr(llm.model.config, "use_sliding_window", True, raising=False)
    assert not _shared_prefix.supports_shared_prefix(llm.model, 100)  # longer than the window
    assert _shared_prefix.supports_shared_prefix(llm.model, 16)
    monkeypatch.setattr(llm.model.config, "sliding_window", window, raising=False)
    monkeypatch.setattr(llm.model, "hf_device_map", {"model.layers.0": 0, "model.layers.1": 1}, raising=False)
    assert not _shared_prefix.supports_shared_prefix(llm.model, 100)  # split over two GPUs
    monkeypatch.setattr(llm.model, "hf_device_map", {"": "cpu"}, raising=False)
    assert _shared_prefix.supports_shared_prefix(llm.model, 100)
    monkeypatch.setattr(llm.model.config, "model_type", "gemma2")  # soft-capped scores: not split exactly
    assert not _shared_prefix.supports_shared_prefix(llm.model, 100)
    calls = _spy(monkeypatch)
    HFEngine(llm.model, llm.tokenizer).generate_groups(_groups(n=2), GenerationSettings(max_new_tokens=3))
    assert not calls


@pytest.mark.parametrize("buckets", [1, 2])
def test_padded_buckets_give_the_same_outputs(engines, buckets):
    shared, copied = engines
    shared.suffix_buckets = buckets  # suffix (and prefix) lengths now share padded buckets
    settings = GenerationSettings(max_new_tokens=12, batch_size=64)
    groups = _groups(header=HEADER)
    assert shared.generate_groups(groups, settings) == copied.generate_groups(groups, settings)


@pytest.mark.parametrize("lengths", [[3, 1, 2, 3, 2], list(range(1, 30)), [5] * 4, [7, 1, 30, 2, 2, 9, 4, 11, 6, 3]])
@pytest.mark.parametrize("max_buckets", [1, 3, 8])
def test_length_buckets(lengths, max_buckets):
    from cancerllm.engine.hf import _chunks, _length_buckets

    plan = _length_buckets(lengths, max_buckets)
    assert len(plan) <= max_buckets
    assert sorted(r for _, rows in plan for r in rows) == list(range(len(lengths)))
    assert all(lengths[r] <= width for width, rows in plan for r in rows)
    assert max(w for w, _ in plan) == max(lengths)
    if len(set(lengths)) <= max_buckets:  # exact: no padding at all
        assert all(lengths[r] == width for width, rows in plan for r in rows)
    chunks = _chunks(lengths, 10, max_buckets)
    assert sorted(r for _, rows in chunks for r in rows) == list(range(len(lengths)))
    assert all(len(rows) == 1 or len(rows) * width <= 10 for width, rows in chunks)


def _split_cost(lengths, runs):
    return sum((e - s) * w for s, e, w in runs)


@pytest.mark.parametrize("seed", range(12))
def test_prefix_runs_are_the_cheapest_contiguous_split(seed):
    """The runs a prefix level is split into cover every group once, in order, each at the width of its
    longest prefix, and cost no more than any contiguous split into at most MAX_RUNS runs (brute force)."""
    import itertools
    import random

    from cancerllm.engine._shared_prefix import MAX_RUNS, MIN_RUN_SAVING, _runs

    rng = random.Random(seed)
    lengths = sorted((rng.randint(1, 600) for _ in range(rng.randint(1, 9))), reverse=seed % 2 == 0)
    if seed % 3 == 0:
        rng.shuffle(lengths)
    width = max(lengths) + rng.choice([0, 0, 7])
    runs = _runs(lengths, width)
    assert len(runs) <= MAX_RUNS
    assert [s for s, _, _ in runs] == [0] + [e for _, e, _ in runs[:-1]] and runs[-1][1] == len(lengths)
    assert all(max(lengths[s:e]) <= w <= width for s, e, w in runs)
    g = len(lengths)
    best = g * width
    for n in range(1, min(MAX_RUNS, g) + 1):
        for cuts in itertools.combinations(range(1, g), n - 1):
            bounds = (0, *cuts, g)
            best = min(best, sum((b - a) * max(lengths[a:b]) for a, b in zip(bounds, bounds[1:])))
    cost = _split_cost(lengths, runs)
    if best <= (1 - MIN_RUN_SAVING) * g * width:
        assert cost == best
    else:  # not worth the extra calls: one run of the whole width
        assert runs == [(0, g, width)] or (g == 1 and runs == [(0, 1, lengths[0])])


def test_many_groups_use_equal_runs():
    from cancerllm.engine._shared_prefix import MAX_RUNS, _runs

    lengths = list(range(400, 0, -4))  # 100 groups, longest first as the engine orders them
    runs = _runs(lengths, 400)
    assert len(runs) == MAX_RUNS and _split_cost(lengths, runs) < 0.9 * 100 * 400
    assert _runs([300] * 100, 300) == [(0, 100, 300)]


def test_trimmed_runs_and_causal_chunks_are_used(engines, monkeypatch):
    """The paths that skip padding (prefix runs narrower than the level) and blocks above the diagonal
    (chunks encoded whole) are taken on ragged groups, and the outputs still equal the copying path's."""
    shared, copied = engines
    seen = {"causal": 0, "narrow": 0}
    original = _shared_prefix._softmax_part

    def spy(q, k, v, bias, scale):
        if bias is None:
            seen["causal"] += 1
        return original(q, k, v, bias, scale)

    original_runs = _shared_prefix._runs

    def runs_spy(lengths, width):
        out = original_runs(lengths, width)
        seen["narrow"] += sum(w < width for _, _, w in out)
        return out

    monkeypatch.setattr(_shared_prefix, "_softmax_part", spy)
    monkeypatch.setattr(_shared_prefix, "_runs", runs_spy)
    settings = GenerationSettings(max_new_tokens=12, batch_size=64)
    groups = _groups(seed=3, n=9, header=HEADER)
    assert shared.generate_groups(groups, settings) == copied.generate_groups(groups, settings)
    assert seen["causal"] and seen["narrow"]


@pytest.mark.parametrize("causal", [True, False])
def test_compiled_attention_parts_match_float32(causal):
    """engine.compile_attention: the inductor-compiled bf16 parts give the float32 softmax (output and
    log-sum-exp) within bf16 rounding."""
    g = torch.Generator().manual_seed(0)
    if causal:
        q, k, v, bias = torch.randn(2, 6, 9, 16, generator=g), torch.randn(2, 2, 9, 16, generator=g), \
            torch.randn(2, 2, 9, 16, generator=g), None
    else:
        q, k, v = (torch.randn(3, 2, 7, 16, generator=g), torch.randn(3, 2, 11, 16, generator=g),
                   torch.randn(3, 2, 11, 16, generator=g))
        bias = torch.zeros(3, 1, 7, 11)
        bias[..., :4] = float("-inf")
    ref_o, ref_l = _shared_prefix._softmax_part(q, k, v, bias, 0.25)
    got = _shared_prefix._compiled_part(q.bfloat16(), k.bfloat16(), v.bfloat16(),
                                        None if bias is None else bias.bfloat16(), 0.25)
    assert got is not None, _shared_prefix._COMPILE_FAILED
    assert torch.allclose(got[0], ref_o, atol=0.05) and torch.allclose(got[1], ref_l, atol=0.05)


def test_compile_attention_flag_routes_bf16_parts_only_when_set(tmp_path, monkeypatch):
    """HFEngine.compile_attention reaches the softmax parts; a failed compile (None) falls back to the
    fused kernel, with the outputs of a run without the flag."""
    llm = CancerLLM.from_pretrained(save_tiny_model(tmp_path / "m", arch="mistral"), dtype="bfloat16")
    engine = HFEngine(llm.model, llm.tokenizer)
    calls = []
    monkeypatch.setattr(_shared_prefix, "_compiled_part", lambda *a: calls.append(1))
    settings = GenerationSettings(max_new_tokens=4, batch_size=16)
    groups = _groups(header=HEADER)
    plain = engine.generate_groups(groups, settings)
    assert not calls
    engine.compile_attention = True
    assert engine.generate_groups(groups, settings) == plain
    assert calls
