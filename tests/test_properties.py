"""Property-based fuzzing (hypothesis) of the answer parser, the prompt builder and the converters."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cancerllm import Example, PromptBuilder, format_answer, parse_answer
from cancerllm.errors import CancerLLMError
from cancerllm.schema import PHENOTYPE_INSTRUCTION, Phenotype

item = st.text(alphabet=st.characters(blacklist_characters="{},;\n\r\"'`[]()", blacklist_categories=("Cs",)),
               min_size=1, max_size=20).map(lambda s: " ".join(s.split())).filter(
    lambda s: s and s.lower() not in {"not relevant", "n/a", "na", "none", "not mentioned", "not applicable"}
    and any(c.isalnum() for c in s))


@given(st.text())
def test_parser_never_crashes_and_returns_clean_unique_items(text):
    items = parse_answer(text)
    assert isinstance(items, list)
    assert len({i.lower() for i in items}) == len(items)
    assert all(i == i.strip() and i and "{" not in i and "}" not in i and "," not in i for i in items)


@given(st.lists(item, max_size=6))
def test_format_then_parse_round_trips(items):
    expected, seen = [], set()
    for i in items:
        if i.lower() not in seen:
            seen.add(i.lower())
            expected.append(i)
    assert parse_answer(format_answer(items)) == expected


@settings(max_examples=60, deadline=None)
@given(context=st.text(max_size=300), question=st.sampled_from([p.question for p in Phenotype]))
def test_prompt_ids_are_the_ids_of_the_whole_prompt(context, question):
    """Any text at all, on the byte-level BPE tokenizer (test_prompt_matrix.py covers report-like text on four
    tokenizer/template families): the ids are those of the whole prompt text."""
    ex = Example(instruction=PHENOTYPE_INSTRUCTION, context=context, question=question)
    b = PromptBuilder("alpaca", _tokenizer())
    enc = b.encode(ex)
    text = b.render(ex)
    assert enc.prefix_ids + enc.suffix_ids == b.bos_ids() + b.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert text.startswith(b.parts(ex).prefix) and question in b.parts(ex).suffix


_TOK = []


def _tokenizer():
    if not _TOK:
        from cancerllm.testing import make_tiny_tokenizer

        _TOK.append(make_tiny_tokenizer())
    return _TOK[0]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40, deadline=None)
@given(lines=st.lists(st.one_of(st.text(max_size=40), st.builds(json.dumps, st.dictionaries(
    st.sampled_from(["instruction", "context", "response", "x"]), st.text(max_size=10)))), max_size=5))
def test_jsonl_reader_either_reads_or_names_the_line(tmp_path, lines):
    from cancerllm.data import read_examples

    p = tmp_path / "f.jsonl"
    p.write_text("\n".join(line.replace("\n", " ") for line in lines), encoding="utf-8")
    try:
        out = read_examples(p)
    except CancerLLMError as exc:
        assert "f.jsonl" in str(exc)
    else:
        assert all(isinstance(e, Example) for e in out)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet="abcXYZ.,", min_size=1, max_size=6),
                          st.sampled_from(["O", "B-grade", "I-grade", "B-stage", "I-stage", "B-bogus", "I"])),
                max_size=12))
def test_bio_converter_either_converts_or_raises_library_error(rows):
    from cancerllm.data import bio_to_examples

    lines = [f"{tok} {tag}" for tok, tag in rows]
    try:
        out = bio_to_examples(lines)
    except CancerLLMError:
        return
    assert all(isinstance(e, Example) and e.question for e in out)
