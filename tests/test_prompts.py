import pytest

from cancerllm import Example, InputError, Phenotype, PromptBuilder, format_answer, parse_answer
from cancerllm.prompts import ALPACA_TEMPLATE, is_not_relevant
from cancerllm.schema import DIAGNOSIS_INSTRUCTION, PHENOTYPE_INSTRUCTION


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("{pr, her2, er}", ["pr", "her2", "er"]),
        ("pr, her2, er", ["pr", "her2", "er"]),
        ("iib,iib,iib", ["iib"]),  # the paper's repeated-answer error
        ("  {  IIB , iib ,IIb }  ", ["IIB"]),
        ("Not relevant", []),
        ("{Not relevant}", []),
        ("not relevant.", []),
        ("", []),
        (None, []),
        ("Response: {left}", ["left"]),
        ("{2.5 cm} The tumor is large. {3 cm}", ["2.5 cm"]),  # only the first answer set counts
        ("left\nExplanation: because ...", ["left"]),  # no braces: first line only
        ('{"er", \'pr\'}', ["er", "pr"]),
        ("{er; pr}", ["er", "pr"]),
        ("{er, , pr,}", ["er", "pr"]),
        ("{ductal carcinoma, not relevant}", ["ductal carcinoma"]),
        ("{unclosed, set", ["unclosed", "set"]),
    ],
)
def test_parse_answer(raw, expected):
    assert parse_answer(raw) == expected


def test_parse_answer_lowercase_option():
    assert parse_answer("{ER, Pr}", lowercase=True) == ["er", "pr"]


def test_format_answer_round_trips_through_parser():
    assert format_answer(["pr", "her2", "er"]) == "{pr, her2, er}"
    assert format_answer([]) == "Not relevant" and format_answer(None) == "Not relevant"
    assert format_answer("2.5 cm") == "{2.5 cm}"
    assert format_answer(["a, b", "A, B"]) == "{a b}"  # commas inside items would break the set
    for items in (["pr", "her2"], ["invasive ductal carcinoma"], ["G3"]):
        assert parse_answer(format_answer(items)) == items


def test_is_not_relevant():
    assert is_not_relevant("Not Relevant") and is_not_relevant("{n/a}") and is_not_relevant(" ")
    assert not is_not_relevant("relevant margin")


def _pheno(context="A 2.5 cm lesion.", q=Phenotype.TUMOR_SIZE.question, response=""):
    return Example(instruction=PHENOTYPE_INSTRUCTION, context=context, question=q, response=response)


def test_alpaca_prompt_is_the_official_template():
    ex = _pheno()
    text = PromptBuilder().render(ex)
    assert text == ALPACA_TEMPLATE.format(instruction=PHENOTYPE_INSTRUCTION, context=ex.full_context)


def test_prefix_is_independent_of_the_question():
    b = PromptBuilder()
    p1, p2 = b.parts(_pheno(q=Phenotype.GRADE.question)), b.parts(_pheno(q=Phenotype.STAGE.question))
    assert p1.prefix == p2.prefix and p1.suffix != p2.suffix
    assert p1.suffix.startswith(" What is the grade")


def test_diagnosis_prompt_parts():
    ex = Example(instruction=DIAGNOSIS_INSTRUCTION, context="1) Reason for visit: cough")
    parts = PromptBuilder().parts(ex)
    assert parts.prefix.endswith("### Input:\n1) Reason for visit: cough")
    assert parts.suffix == "\n\n### Response:\n"


def test_shots_are_rendered_before_the_input_and_never_the_input_itself():
    shot = _pheno(context="Lesion of 3 cm.", response="{3 cm}")
    text = PromptBuilder(shots_layout="inline").render(_pheno(), [shot])
    assert "Example 1:\nInput: In the text: Lesion of 3 cm." in text and "Output: {3 cm}" in text
    assert text.index("Example 1") < text.index("In the text: A 2.5 cm lesion.")
    # shared layout: the example's report in the prefix, its answer after the question, in the suffix
    parts = PromptBuilder().parts(_pheno(), [shot])
    assert parts.prefix.endswith("Example 1:\nInput: In the text: Lesion of 3 cm.") and "{3 cm}" not in parts.prefix
    assert parts.prefix.index("In the text: A 2.5 cm lesion.") < parts.prefix.index("Example 1")
    assert parts.suffix.index("What is the tumor size") < parts.suffix.index("Example 1: {3 cm}")
    with pytest.raises(InputError):
        PromptBuilder().parts(_pheno(), [_pheno()])


def test_encode_segments_and_response_only_labels(tiny_llm):
    b = PromptBuilder("alpaca", tiny_llm.tokenizer)
    enc = b.encode(_pheno(response="{2.5 cm}"), with_response=True)
    tok = tiny_llm.tokenizer
    assert enc.response_ids[-1] == tok.eos_token_id
    assert enc.input_ids == enc.prefix_ids + enc.suffix_ids + enc.response_ids
    n_prompt = len(enc.prefix_ids) + len(enc.suffix_ids)
    assert enc.labels[:n_prompt] == [-100] * n_prompt and enc.labels[n_prompt:] == enc.response_ids
    assert tok.decode(enc.response_ids, skip_special_tokens=True) == "{2.5 cm}"
    # a reused prefix gives the same ids as encoding again
    again = b.encode(_pheno(q=Phenotype.GRADE.question), prefix_ids=enc.prefix_ids)
    assert again.prefix_ids == b.encode(_pheno(q=Phenotype.GRADE.question)).prefix_ids


def test_chat_style_uses_the_tokenizer_template(tiny_chat_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_chat_model_dir)
    b = PromptBuilder("auto", tok)
    assert b.style == "chat"
    parts = b.parts(_pheno())
    assert parts.prefix.startswith("<|im_start|>system\n" + PHENOTYPE_INSTRUCTION)
    assert parts.prefix.endswith("In the text: A 2.5 cm lesion.")
    assert parts.suffix == " What is the tumor size in the given context?<|im_end|>\n<|im_start|>assistant\n"


def test_bad_builder_arguments():
    with pytest.raises(InputError):
        PromptBuilder("jinja")
    with pytest.raises(InputError):
        PromptBuilder("chat", None)
    with pytest.raises(InputError):
        PromptBuilder().encode(_pheno())
    with pytest.raises(InputError):
        PromptBuilder().parts("not an example")
