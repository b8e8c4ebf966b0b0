"""Retrieval-augmented prompting end to end: retrieved examples reach the tiny model's prompt, in the set
format, through the one prompt builder, never the input itself; training encodes the same prompts."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from cancerllm import (
    DIAGNOSIS_INSTRUCTION,
    PHENOTYPE_INSTRUCTION,
    CancerLLM,
    Diagnosis,
    Example,
    InputError,
    Phenotype,
)
from cancerllm.engine.base import Engine
from cancerllm.retrieval import Retriever, ShotSelector

HEADER = "Here are similar examples with their answers:"
LAT, GRADE = Phenotype.LATERALITY.question, Phenotype.GRADE.question
REPORTS = {
    "left breast invasive ductal carcinoma G3 er positive": ("left", "G3"),
    "right lung squamous cell carcinoma G2 stage iib": ("right", "G2"),
    "left kidney clear cell renal carcinoma G2": ("left", "G2"),
    "right breast invasive lobular carcinoma G1": ("right", "G1"),
}


class Words(Retriever):
    """A user-style retriever: cosine of hashed word counts (one method overridden)."""

    normalize = True

    def embed(self, texts, *, kind):
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, zlib.crc32(w.encode()) % 256] += 1
        return out


def phenotype_corpus():
    out = []
    for text, (side, grade) in REPORTS.items():
        out.append(
            Example(instruction=PHENOTYPE_INSTRUCTION, context=text, question=LAT, response="{" + side + "}")
        )
        out.append(
            Example(
                instruction=PHENOTYPE_INSTRUCTION, context=text, question=GRADE, response="{" + grade + "}"
            )
        )
    return out


def diagnosis_corpus():
    return [
        Example(instruction=DIAGNOSIS_INSTRUCTION, context=t, response=t.split(" carcinoma")[0] + " cancer")
        for t in REPORTS
    ]


class Recording(Engine):
    """Records every prompt group; answers by question (or delegates to a real engine)."""

    def __init__(self, tok, inner=None):
        self.tok, self.inner, self.groups = tok, inner, []

    def generate_groups(self, groups, settings, *, progress=False):
        self.groups.extend(groups)
        if self.inner is not None:
            return self.inner.generate_groups(groups, settings, progress=progress)
        answer = {"laterality": "{left}", "grade": "{G3}"}
        return [
            [
                self.tok(
                    next((a for k, a in answer.items() if k in self.tok.decode(s)), "Not relevant"),
                    add_special_tokens=False,
                )["input_ids"]
                for s in g.suffix_ids
            ]
            for g in groups
        ]

    def prompts(self):
        return [
            (self.tok.decode(g.prefix_ids), [self.tok.decode(s) for s in g.suffix_ids]) for g in self.groups
        ]


@pytest.fixture
def llm(tiny_model_dir):
    model = CancerLLM.from_pretrained(tiny_model_dir)
    model._engine = Recording(model.tokenizer)
    return model


def _shots_in(prefix):
    return re.findall(r"Example \d+:\nInput: (.*?)\nOutput: (.*?)\n", prefix, flags=re.S)


def _shared_shots_in(prefix):
    """The example reports of a shared-layout prefix."""
    return re.findall(r"Example \d+:\nInput: In the text: (.*?)(?:\n\n|$)", prefix, flags=re.S)


def _answers_in(suffix):
    return re.findall(r"\nExample \d+: (\{.*?\})", suffix.split("Their answers to this question:", 1)[1])


# ------------------------------------------------------------------------------------------ phenotype
def test_shared_layout_one_prefix_per_report_answers_per_question(llm):
    ext = llm.phenotype_extractor(["laterality", "grade"], retriever=Words(), corpus=phenotype_corpus(), k=2)
    query = "left breast ductal carcinoma G3 her2 negative"
    res = ext.extract(query)
    assert res.laterality == ["left"] and res.grade == ["G3"]  # answers mapped back to their questions
    ((prefix, (lat_suf, grade_suf)),) = llm.engine.prompts()  # one group: the report's KV read by both
    best = "left breast invasive ductal carcinoma G3 er positive"
    assert prefix.count(HEADER) == 1
    reports = _shared_shots_in(prefix)
    assert len(reports) == 2 and reports[0] == best  # most similar first, reports only (no question/answer)
    assert prefix.index(f"In the text: {query}") < prefix.index("Example 1:")  # the input report first
    assert prefix.endswith(reports[-1]) and "{" not in prefix  # the prefix ends with the examples' reports
    # each question's suffix: the question, then the examples' answers to *that* question, in the same order
    answers = {t: REPORTS[t] for t in reports}
    assert lat_suf.startswith(" " + LAT) and _answers_in(lat_suf) == ["{" + answers[t][0] + "}" for t in reports]
    assert grade_suf.startswith(" " + GRADE) and _answers_in(grade_suf) == ["{" + answers[t][1] + "}" for t in reports]


def test_inline_layout_keeps_whole_examples_before_the_input(llm):
    llm.prompt_builder.shots_layout = "inline"
    ext = llm.phenotype_extractor(["laterality", "grade"], retriever=Words(), corpus=phenotype_corpus(), k=2)
    query = "left breast ductal carcinoma G3 her2 negative"
    assert ext.extract(query).grade == ["G3"]
    prompts = llm.engine.prompts()
    assert len(prompts) == 2 and all(len(sufs) == 1 for _, sufs in prompts)  # one group per (report, question)
    best = "left breast invasive ductal carcinoma G3 er positive"
    for (prefix, _), question, answer in zip(prompts, (LAT, GRADE), ("{left}", "{G3}")):
        shots = _shots_in(prefix)
        assert len(shots) == 2 and shots[0] == (f"In the text: {best} {question}", answer)
        assert prefix.index("Example 2:") < prefix.index(f"In the text: {query}")


def test_both_layouts_generate_what_one_prompt_at_a_time_does(tiny_model_dir):
    """The engine on the shared groups gives the ids of each whole prompt decoded alone."""
    from cancerllm.engine.base import GenerationSettings, PromptGroup

    model = CancerLLM.from_pretrained(tiny_model_dir)
    for layout in ("shared", "inline"):
        model.prompt_builder.shots_layout = layout
        ext = model.phenotype_extractor(["laterality", "grade"], retriever=Words(), corpus=phenotype_corpus(), k=2)
        texts = ["left breast ductal carcinoma G3", "right lung mass G2 squamous"]
        groups, _ = ext.build_groups(texts, ext.questions, ["a", "b"])
        assert len(groups) == (2 if layout == "shared" else 4)
        settings = GenerationSettings(6, (), 8)
        together = model.engine.generate_groups(groups, settings)
        alone = [model.engine.generate_groups([PromptGroup(g.prefix_ids + s, [[]])], settings)[0][0]
                 for g in groups for s in g.suffix_ids]
        assert [x for row in together for x in row] == alone


def test_the_shared_layout_refuses_examples_of_another_question():
    from cancerllm.prompts import PromptBuilder

    ex = Example(instruction=PHENOTYPE_INSTRUCTION, context="left breast", question=LAT)
    other = Example(instruction=PHENOTYPE_INSTRUCTION, context="right lung", question=GRADE, response="{G2}")
    with pytest.raises(InputError, match="another question"):
        PromptBuilder().parts(ex, [other])
    assert "Output: {G2}" in PromptBuilder(shots_layout="inline").render(ex, [other])
    with pytest.raises(InputError, match="shots_layout"):
        PromptBuilder(shots_layout="sideways")


def test_the_input_is_never_its_own_example(llm):
    ext = llm.phenotype_extractor(["laterality"], retriever=Words(), corpus=phenotype_corpus(), k=3)
    for text in REPORTS:
        llm.engine.groups.clear()
        ext.extract(text + "  ")  # whitespace differences do not hide the identity
        ((prefix, _),) = llm.engine.prompts()
        inputs = _shared_shots_in(prefix)
        assert len(inputs) == 3 and all(text not in i for i in inputs)


def test_without_a_retriever_one_group_shares_the_report(llm):
    llm.phenotype_extractor(["laterality", "grade"]).extract("left breast G3")
    ((prefix, sufs),) = llm.engine.prompts()
    assert len(sufs) == 2 and HEADER not in prefix


def test_training_encodes_exactly_the_inference_prompt(llm):
    corpus = phenotype_corpus()
    ext = llm.phenotype_extractor(["laterality"], retriever=Words(), corpus=corpus, k=2)
    train = corpus[2]  # the lung report's laterality example, itself in the corpus
    shots = ext.shots.for_examples([train])[0]
    assert len(shots) == 2 and all(s.context != train.context for s in shots)
    enc = llm.prompt_builder.encode(train, shots, with_response=True)
    groups, owners = ext.build_question_groups([train.context], ext.questions, ["text"])
    assert owners == [(0, [0])]
    assert groups[0].prefix_ids + groups[0].suffix_ids[0] == enc.prompt_ids
    assert enc.labels[-len(enc.response_ids) :] == enc.response_ids and enc.response_ids


def test_k_order_and_shot_length_are_settings(llm):
    corpus = phenotype_corpus()
    one = ShotSelector(corpus, Words(), k=1)
    assert [len(s) for s in one.select(["left breast G3"], [LAT, GRADE])[0]] == [1, 1]
    first = ShotSelector(corpus, Words(), k=3).select(["left breast G3"], [LAT])[0][0]
    last = ShotSelector(corpus, Words(), k=3, most_similar_last=True).select(["left breast G3"], [LAT])[0][0]
    assert [s.context for s in last] == [s.context for s in first][::-1]
    cut = ShotSelector(corpus, Words(), k=2, tokenizer=llm.tokenizer, max_shot_tokens=3)
    for s in cut.select(["left breast G3"], [LAT])[0][0]:
        assert len(llm.tokenizer(s.context, add_special_tokens=False)["input_ids"]) <= 4


def test_long_inputs_and_shots_stay_within_the_input_limit(llm):
    llm.max_input_tokens = 300
    long_corpus = [
        e.model_copy(update={"context": e.context + " filler about margins" * 80}) for e in phenotype_corpus()
    ]
    ext = llm.phenotype_extractor(
        ["laterality", "grade"], retriever=Words(), corpus=long_corpus, k=2, max_shot_tokens=12
    )
    ext.extract("left breast lesion G1. " + "more words about nodes and margins. " * 60)
    assert len(llm.engine.groups) > 2  # chunked
    for g in llm.engine.groups:
        assert len(g.prefix_ids) + max(len(s) for s in g.suffix_ids) <= 300
        assert "filler about margins filler" not in llm.tokenizer.decode(g.prefix_ids)  # examples were cut
    too_long = llm.phenotype_extractor(
        ["grade"], retriever=Words(), corpus=long_corpus, k=2, max_shot_tokens=200
    )
    with pytest.raises(InputError, match="lower k or max_shot_tokens"):
        too_long.extract("left breast G1")


def test_questions_missing_from_some_reports_and_the_official_format(llm):
    corpus = [e.to_official() for e in phenotype_corpus()]  # "In the text: <report> <question>" records
    corpus = [
        c
        for c in corpus
        if not (c["context"].startswith("In the text: left breast") and "grade" in c["context"])
    ]
    sel = ShotSelector(corpus, Words(), k=2)
    assert len(sel) == len(REPORTS)  # grouped by report once the question is split off
    lat, grade = sel.select(["left breast carcinoma G3"], [LAT, GRADE])[0]
    assert lat[0].context.startswith("left breast") and lat[0].question == LAT
    assert len(grade) == 2 and all(not s.context.startswith("left breast") for s in grade)


# ------------------------------------------------------------------------------------------ diagnosis
def test_diagnosis_end_to_end_on_a_tiny_model(tiny_model_dir, retriever_factory):
    model = CancerLLM.from_pretrained(tiny_model_dir)
    inner = model.engine
    model._engine = Recording(model.tokenizer, inner)
    gen = model.diagnosis_generator(
        retriever=retriever_factory("minilm"), corpus=diagnosis_corpus(), k=2, max_new_tokens=3
    )
    out = gen.generate_many(
        ["left breast invasive ductal carcinoma G3 er positive", "a lung mass"], progress=False
    )
    assert len(out) == 2 and all(isinstance(d, Diagnosis) for d in out)
    (first, _), (second, _) = model.engine.prompts()
    shots = _shots_in(first)
    assert len(shots) == 2 and first.count(HEADER) == 1
    assert all(
        i != "left breast invasive ductal carcinoma G3 er positive" for i, _ in shots
    )  # never the input
    assert all(o.endswith("cancer") for _, o in shots)
    assert len(_shots_in(second)) == 2


def test_retrieval_settings_are_checked(llm):
    with pytest.raises(InputError, match="needs corpus"):
        llm.phenotype_extractor(retriever=Words())
    with pytest.raises(InputError, match="k must be a positive integer"):
        llm.diagnosis_generator(retriever=Words(), corpus=diagnosis_corpus(), k=0)
    with pytest.raises(InputError, match="corpus is empty"):
        llm.diagnosis_generator(retriever=Words(), corpus=[])
    with pytest.raises(InputError, match="corpus item 1"):
        llm.diagnosis_generator(retriever=Words(), corpus=[diagnosis_corpus()[0], "just a string"])
    selector = ShotSelector(diagnosis_corpus(), Words())
    assert llm.diagnosis_generator(retriever=selector).shots is selector
    with pytest.raises(InputError, match="not next to it"):
        llm.diagnosis_generator(retriever=selector, corpus=diagnosis_corpus())
