"""Token-exact prompts for every tokenizer/template family (byte-level BPE + ChatML, SentencePiece-style
Metaspace + a Mistral-Instruct template without a system role, byte-level + a Llama-3 ``| trim`` template,
Metaspace + the official Alpaca template): the ids the library feeds a model are the ids of the whole prompt
text; the engine equals one-by-one ``generate``; training labels cover exactly the response and EOS."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cancerllm import Example, PromptBuilder
from cancerllm.errors import TokenizationError
from cancerllm.schema import DIAGNOSIS_INSTRUCTION, PHENOTYPE_INSTRUCTION, Phenotype
from cancerllm.testing import TOKENIZER_FAMILIES, make_family_tokenizer, make_tiny_model

FAMILIES = sorted(TOKENIZER_FAMILIES)
QUESTIONS = [p.question for p in Phenotype]
# report-like text: letters, digits, punctuation, spaces, line breaks (LF and CRLF), tabs, non-ASCII
_ALPHABET = st.sampled_from(list("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;()-/%{}'\"")
                            + ["\n", "\r\n", "  ", "\t", "é", "µ", "Ø", "—", "×", "²", " cm", " mm", "pT2", "G3"])
report_text = st.lists(_ALPHABET, max_size=60).map("".join)


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    tok = make_family_tokenizer(request.param)
    return request.param, tok


def _builder(tok, answer_prefix=""):
    return PromptBuilder("auto", tok, answer_prefix=answer_prefix)


def whole_ids(builder, example, shots=(), *, with_response=False):
    """What the model must see: the whole prompt (and response) text encoded in one call."""
    text = builder.render(example, shots, with_response=with_response)
    return builder.bos_ids() + builder.tokenizer(text, add_special_tokens=False)["input_ids"]


def assert_exact(builder, example, shots=()):
    enc = builder.encode(example, shots, with_response=bool(example.response))
    assert enc.prefix_ids + enc.suffix_ids == whole_ids(builder, example, shots)
    if example.response:
        eos = builder.tokenizer.eos_token_id
        assert enc.input_ids == whole_ids(builder, example, shots, with_response=True) + [eos]
        assert enc.labels == [-100] * len(enc.prompt_ids) + enc.response_ids
    text = builder.render(example, shots)
    prefix = builder.parts(example, shots).prefix
    quoted = example.context + "".join(s.full_context + s.response for s in shots)
    assert text.startswith(prefix) and text.count("\u241f") == quoted.count("\u241f")  # no marker left
    return enc


def test_families_are_what_they_claim():
    kinds = {}
    for fam in FAMILIES:
        tok = make_family_tokenizer(fam)
        kinds[fam] = type(tok.backend_tokenizer.pre_tokenizer).__name__
    assert kinds["metaspace-mistral"] == kinds["metaspace-alpaca"] == "Metaspace"
    assert kinds["bytelevel-chatml"] == kinds["bytelevel-llama3"] == "ByteLevel"
    # the SentencePiece-style tokenizer is where piecewise encoding differs from whole-text encoding
    tok = make_family_tokenizer("metaspace-mistral")
    a, b = "In the text: Tumor 2.5 cm.", "\n What is the tumor size?"
    piecewise = tok(a, add_special_tokens=False)["input_ids"] + tok(b, add_special_tokens=False)["input_ids"]
    assert piecewise != tok(a + b, add_special_tokens=False)["input_ids"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60, deadline=None)
@given(context=report_text, question=st.sampled_from([*QUESTIONS, None]), response=report_text,
       prefix=st.sampled_from(["", "{"]))
def test_prompt_ids_are_the_ids_of_the_whole_text(family, context, question, response, prefix):
    _, tok = family
    b = _builder(tok, prefix)
    instruction = PHENOTYPE_INSTRUCTION if question else DIAGNOSIS_INSTRUCTION
    ex = Example(instruction=instruction, context=context, question=question, response=response or "x")
    enc = assert_exact(b, ex)
    if question is not None:  # the other questions about the report reuse its prefix ids exactly
        for q in QUESTIONS:
            other = Example(instruction=instruction, context=context, question=q)
            assert b.encode(other, prefix_ids=enc.prefix_ids).prefix_ids == enc.prefix_ids


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=15, deadline=None)
@given(context=report_text, shot_context=report_text.filter(str.strip))
def test_prompts_with_retrieved_examples_are_exact(family, context, shot_context):
    _, tok = family
    shot = Example(instruction=PHENOTYPE_INSTRUCTION, context=shot_context + " shot", question=QUESTIONS[0],
                   response="{2.5 cm}")
    ex = Example(instruction=PHENOTYPE_INSTRUCTION, context=context, question=QUESTIONS[0], response="{3 cm}")
    assert_exact(_builder(tok), ex, [shot])


def _broken_encode(builder):
    """The split as it was: prefix and suffix encoded separately, and one character early."""
    from cancerllm.prompts import EncodedPrompt

    def encode(example, shots=(), *, with_response=False, eos=True, prefix_ids=None):
        parts = builder.parts(example, shots)
        cut = len(parts.prefix) - 1
        ids = builder._ids
        return EncodedPrompt(builder.bos_ids() + ids(parts.text[:cut]), ids(parts.text[cut:]))

    return encode


def test_a_broken_split_fails_the_property(family):
    _, tok = family
    b = _builder(tok)
    ex = Example(instruction=PHENOTYPE_INSTRUCTION, context="Invasive ductal carcinoma", question=QUESTIONS[0])
    assert_exact(b, ex)
    b.encode = _broken_encode(b)
    with pytest.raises(AssertionError):
        assert_exact(b, ex)


def test_templates_without_system_role_get_the_instruction_in_the_user_turn():
    tok = make_family_tokenizer("metaspace-mistral")
    b = _builder(tok)
    ex = Example(instruction=PHENOTYPE_INSTRUCTION, context="Tumor 2.5 cm.", question=QUESTIONS[0])
    text = b.render(ex)
    assert b.system_role is False
    assert text == f"<s>[INST] {PHENOTYPE_INSTRUCTION}\n\nIn the text: Tumor 2.5 cm. {QUESTIONS[0]} [/INST]"


@pytest.mark.parametrize("context", ["1) Reason for visit: cough", "  cough \n\n", "cough\r\n"])
def test_trimming_templates_split_the_diagnosis_prompt_after_the_note(context):
    """Llama-3's template trims the message: the split comes from a marker, never from a text search."""
    tok = make_family_tokenizer("bytelevel-llama3")
    b = _builder(tok)
    parts = b.parts(Example(instruction=DIAGNOSIS_INSTRUCTION, context=context))
    assert parts.prefix.endswith(DIAGNOSIS_INSTRUCTION + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                                 + context.strip())
    assert parts.suffix == "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"


def test_a_token_across_the_boundary_is_an_error_naming_the_tokenizer():
    """A vocabulary that merges the report's last character with the question's space cannot be split."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .?:#\n,()-"))
    vocab = {"<unk>": 0, "</s>": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    vocab["x "], vocab["x W"] = len(vocab), len(vocab) + 1
    merges = [("x", " "), ("x ", "W")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    # no pre-tokenizer: the whole text is one word, so merges may cross word boundaries
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", name_or_path="merging")
    b = PromptBuilder("alpaca", fast)
    with pytest.raises(TokenizationError, match="merging"):
        b.encode(Example(instruction="Find it", context="tumor box", question="What is it?"))


# ------------------------------------------------------------------------------------ models of each family
def _model(tok, family_name, **kw):
    arch = "mistral" if "mistral" in family_name else "llama"
    return make_tiny_model(tok, arch=arch, hidden_size=32, seed=3, **kw)


def _reference(model, ids, n, eos):
    import torch

    x = torch.tensor([ids])
    with torch.inference_mode():
        out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False,
                             eos_token_id=eos, pad_token_id=eos)
    return out[0, x.shape[1]:].tolist()


REPORTS = [
    "Invasive ductal carcinoma of the left breast, 2.5 cm, grade 3. ER positive.\n",
    "Squamous cell carcinoma of the right lung, pT2 pN0, stage IIB.\r\nMargins negative.",
    "Adenocarcinoma of the colon, G2 — 3 × 2 cm.  ",
]


def _engine_matches_generate(llm, name):
    from cancerllm.engine.base import GenerationSettings

    ext = llm.phenotype_extractor(["tumor_size", "grade", "laterality"], progress=False)
    groups, _ = ext.build_groups(REPORTS, ext.questions, ["a", "b", "c"])
    settings = GenerationSettings(max_new_tokens=6, stop_strings=(), batch_size=16)
    out = llm.engine.generate_groups(groups, settings)
    eos = llm.tokenizer.eos_token_id
    for g, group in enumerate(groups):
        for s, suffix in enumerate(group.suffix_ids):
            assert out[g][s] == _reference(llm.model, group.prefix_ids + suffix, 6, eos), (name, g, s)
    gen = llm.diagnosis_generator(progress=False, max_new_tokens=6)
    diag_groups = [gen._group(r, "r") for r in REPORTS]
    outs = llm.engine.generate_groups(diag_groups, settings)
    for group, o in zip(diag_groups, outs):
        assert o[0] == _reference(llm.model, group.prefix_ids + group.suffix_ids[0], 6, eos)


@pytest.mark.parametrize("name", FAMILIES)
def test_engine_equals_one_by_one_generate_for_every_family(name):
    from cancerllm import CancerLLM

    tok = make_family_tokenizer(name)
    llm = CancerLLM(_model(tok, name), tok, prompt_style="auto")
    assert llm.prompt_builder.style == ("alpaca" if name.endswith("alpaca") else "chat")
    _engine_matches_generate(llm, name)


def test_sliding_window_shorter_than_the_prompt_falls_back_and_matches_generate():
    from cancerllm import CancerLLM

    tok = make_family_tokenizer("metaspace-mistral")
    model = _model(tok, "metaspace-mistral", sliding_window=16)
    llm = CancerLLM(model, tok, prompt_style="auto")
    n = len(llm.prompt_builder.encode(Example(instruction=PHENOTYPE_INSTRUCTION, context=REPORTS[0],
                                              question=QUESTIONS[0])).prompt_ids)
    assert n > 16 * 3
    _engine_matches_generate(llm, "sliding")


@pytest.mark.parametrize("shared_prefix", [False, True])
def test_bfloat16_engine_equals_bfloat16_generate(shared_prefix):
    """bfloat16 end to end.  The shared-prefix path merges per-part softmax outputs that bfloat16 has already
    rounded, so on a random model, whose logits are nearly tied, one token in a few dozen can flip; the head is
    scaled to a trained model's logit range (as in the training tests), where the greedy answers are equal."""
    import torch

    from cancerllm import CancerLLM

    tok = make_family_tokenizer("bytelevel-chatml")
    model = _model(tok, "bytelevel-chatml")
    if shared_prefix:
        with torch.no_grad():
            model.lm_head.weight.mul_(20.0)
    llm = CancerLLM(model.to(torch.bfloat16), tok, prompt_style="auto")
    llm.engine.shared_prefix = shared_prefix
    assert next(llm.model.parameters()).dtype == torch.bfloat16
    _engine_matches_generate(llm, "bf16")


@pytest.mark.parametrize("name", FAMILIES)
def test_one_sft_step_learns_exactly_the_response_and_eos(name, tmp_path):
    pytest.importorskip("peft")
    import json

    from cancerllm.training import instruction_tune
    from cancerllm.training.data import IGNORE_INDEX, encode_examples

    tok = make_family_tokenizer(name)
    model = _model(tok, name)
    base = tmp_path / "base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    exs = [Example(instruction=PHENOTYPE_INSTRUCTION, context=r, question=q, response=a)
           for r in REPORTS for q, a in ((QUESTIONS[0], "{2.5 cm}"), (QUESTIONS[1], "Not relevant"))]
    b = _builder(tok)
    data = encode_examples(exs, b, max_length=512)
    for ex, ids, labels in zip(exs, data.input_ids, data.labels):
        learned = [t for t in labels if t != IGNORE_INDEX]
        assert learned[-1] == tok.eos_token_id
        assert tok.decode(learned[:-1]) == ex.response
        assert ids[: len(ids) - len(learned)] == whole_ids(b, ex)  # the prompt exactly as at inference
        assert labels[: len(ids) - len(learned)] == [IGNORE_INDEX] * (len(ids) - len(learned))
    cfg = {"output_dir": str(tmp_path / "out"), "model": {"name_or_path": str(base), "prompt_style": "auto"},
           "lora": {"r": 4, "alpha": 8, "dropout": 0.0}, "training": {"max_steps": 1, "batch_size": 2},
           "logging": {"progress": False}}
    out = instruction_tune(cfg, examples=exs)
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 1 and log[-1]["loss"] > 0


def test_a_report_quoting_the_split_marker_still_splits_after_the_report():
    from cancerllm.prompts import _SENTINEL

    tok = make_family_tokenizer("bytelevel-chatml")
    context = f"odd {_SENTINEL} text {_SENTINEL[:-1]}1\u241f end"
    ex = Example(instruction=PHENOTYPE_INSTRUCTION, context=context, question=QUESTIONS[0])
    parts = _builder(tok).parts(ex)
    assert parts.prefix.endswith("In the text: " + context) and parts.suffix.startswith(" " + QUESTIONS[0])
    assert_exact(_builder(tok), ex)
