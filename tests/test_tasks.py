"""PhenotypeExtractor and DiagnosisGenerator on tiny models and on a scripted engine."""

import re
import warnings

import pandas as pd
import pytest

from cancerllm import CancerLLM, ClinicalNote, Diagnosis, InputError, PhenotypeQuestion, PhenotypeResult
from cancerllm.engine.base import Engine
from cancerllm.tasks._common import TruncationWarning, split_tokens


class ScriptedEngine(Engine):
    """Answers from the prompt text: a laterality word seen in the chunk, the grade 'G<d>' seen, ..."""

    def __init__(self, tok):
        self.tok = tok
        self.calls = []

    def generate_groups(self, groups, settings, *, progress=False):
        out = []
        for g in groups:
            prefix = self.tok.decode(g.prefix_ids)
            self.calls.append((prefix, len(g.suffix_ids)))
            seqs = []
            for s in g.suffix_ids:
                q = self.tok.decode(s)
                if "laterality" in q:
                    words = [w for w in ("left", "right") if w in prefix]
                    ans = "{" + ", ".join(words) + "}" if words else "Not relevant"
                elif "grade" in q:
                    ans = "{" + ", ".join(re.findall(r"G\d", prefix)) + "}" + " trailing chatter"
                else:
                    ans = "Not relevant"
                seqs.append(self.tok(ans, add_special_tokens=False)["input_ids"])
            out.append(seqs)
        return out


@pytest.fixture
def scripted(tiny_model_dir):
    llm = CancerLLM.from_pretrained(tiny_model_dir)
    llm._engine = ScriptedEngine(llm.tokenizer)
    return llm


def test_extract_returns_typed_result(scripted):
    r = scripted.phenotype_extractor().extract("Tumor of the left breast, G3.")
    assert isinstance(r, PhenotypeResult)
    assert r.laterality == ["left"] and r.grade == ["G3"] and r.stage is None and r.receptors is None
    assert set(r.raw) == {"tumor_size", "histological_type", "receptors", "receptor_status", "laterality", "stage",
                          "tumor_location", "grade"}
    # one group (one encoding of the report) with the eight questions
    assert scripted.engine.calls == [(scripted.engine.calls[0][0], 8)]


def test_custom_question_and_subset(scripted):
    q = PhenotypeQuestion(name="side", question="Please identify the value of tumor laterality, again.")
    r = scripted.phenotype_extractor(["grade", q]).extract("right kidney, G2")
    assert r.grade == ["G2"] and r.custom == {"side": ["right"]} and r.laterality is None


def test_long_reports_are_chunked_and_answers_merged(scripted):
    scripted.max_input_tokens = 260
    text = "left breast lesion G1. " + "filler words about margins and nodes. " * 60 + "right side also G3."
    sides = PhenotypeQuestion(name="sides", question="Please identify the value of tumor laterality, all of them.")
    ex = scripted.phenotype_extractor(["laterality", "grade", sides], chunk_overlap=8)
    r = ex.extract(text)
    assert len(scripted.engine.calls) > 1  # several chunks
    # single-valued phenotypes resolve to one chunk's answer (all with evidence, no confidence here: the
    # first chunk); the other chunk's values are kept as alternatives, with their evidence
    assert r.laterality == ["left"] and r.grade == ["G1"]
    assert [a.value for a in r.details["grade"].alternatives] == ["G3"]
    alt = r.details["laterality"].alternatives[0]
    assert alt.value == "right" and text[alt.span[0]:alt.span[1]] == "right" and alt.chunk > 0
    assert r.custom["sides"] == ["left", "right"]  # other questions: the union of the chunks' answers
    for name, value in (("laterality", "left"), ("grade", "G1")):
        item = r.details[name].items[0]
        assert text[item.span[0]:item.span[1]] == value and item.match == "exact" and item.chunk == 0
    for prefix, _ in scripted.engine.calls:
        assert len(scripted.tokenizer(prefix)["input_ids"]) <= 260


def test_truncation_warns_without_leaking_text(scripted):
    scripted.max_input_tokens = 200
    secret = "CANARY-PATIENT-NAME"
    text = f"{secret} left. " + "filler words about margins and nodes. " * 60 + "right G3."
    with pytest.warns(TruncationWarning, match=r"truncated from [\d,]+ to [\d,]+") as rec:
        r = scripted.phenotype_extractor(["laterality"], chunking=False).extract(text)
    assert r.laterality == ["left"]  # the end of the report was cut
    assert all(secret not in str(w.message) for w in rec)


def test_short_inputs_do_not_warn(scripted):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scripted.phenotype_extractor(["grade"]).extract("G2")


def test_extract_many_dataframe_in_and_out(scripted):
    df = pd.DataFrame({"report": ["left G1", "right G2", "no side"]}, index=["a", "b", "c"])
    out = scripted.phenotype_extractor(["laterality", "grade"]).extract_many(df, column="report", progress=False)
    assert list(out.columns) == ["laterality", "grade"] and list(out.index) == ["a", "b", "c"]
    assert out.loc["b", "laterality"] == ["right"] and out.loc["c", "laterality"] is None
    lst = scripted.phenotype_extractor(["grade"]).extract_many(["G1", "G4"], progress=False)
    assert [r.grade for r in lst] == [["G1"], ["G4"]]
    series_out = scripted.phenotype_extractor(["grade"]).extract_many(df["report"], progress=False)
    assert list(series_out["grade"]) == [["G1"], ["G2"], None]


@pytest.mark.parametrize("bad, match", [("", "empty"), ("   \n", "empty"), (None, r"missing \(None/NaN\)"),
                                        (float("nan"), r"missing \(None/NaN\)"), (3, "expected a string, got int"),
                                        ("G1\x00", "NUL")])
def test_bad_texts_name_the_row(scripted, bad, match):
    with pytest.raises(InputError, match=match) as e:
        scripted.phenotype_extractor(["grade"]).extract_many(["G1", bad], progress=False)
    assert "row 1" in str(e.value)
    assert scripted.engine.calls == []  # errors="raise" (the default): nothing was generated


def test_extract_many_record_keeps_the_good_rows(scripted):
    texts = ["left G1", None, "right G2", "   ", float("nan"), "G4"]
    out = scripted.phenotype_extractor(["laterality", "grade"]).extract_many(texts, progress=False, errors="record")
    assert [r.grade for r in out] == [["G1"], None, ["G2"], None, None, ["G4"]]
    assert [r.laterality for r in out] == [["left"], None, ["right"], None, None, None]
    assert [r.error is None for r in out] == [True, False, True, False, False, True]
    assert out[1].error.startswith("row 1: the text is missing") and out[3].error.startswith("row 3: the text is empty")
    assert out[4].error.startswith("row 4: the text is missing")
    assert all(r.id is None for r in out)  # list input: no ids, as with errors="raise"
    assert len(scripted.engine.calls) == 3  # only the three good reports reached the engine


def test_extract_many_record_dataframe_has_an_error_column(scripted):
    df = pd.DataFrame({"report": ["left G1", None, "right G3"]}, index=["p1", "p2", "p3"])
    out = scripted.phenotype_extractor(["grade"]).extract_many(df, column="report", progress=False, errors="record")
    assert list(out.columns) == ["grade", "error"] and list(out.index) == ["p1", "p2", "p3"]
    assert out.loc["p1", "grade"] == ["G1"] and out.loc["p3", "grade"] == ["G3"] and out.loc["p2", "grade"] is None
    assert out.loc["p1", "error"] is None and out.loc["p2", "error"].startswith("row p2: the text is missing")
    # all rows bad: no generation at all, every row an error
    out = scripted.phenotype_extractor(["grade"]).extract_many(["", None], progress=False, errors="record")
    assert [r.error is not None for r in out] == [True, True] and [r.grade for r in out] == [None, None]


def test_unknown_errors_policy(scripted):
    with pytest.raises(InputError, match="errors='skip'; use 'raise'"):
        scripted.phenotype_extractor(["grade"]).extract_many(["G1"], errors="skip")
    with pytest.raises(InputError, match="errors='ignore'; use 'raise'"):
        scripted.diagnosis_generator().generate_many(["note"], errors="ignore")


def test_generate_many_record_keeps_the_good_rows(tiny_model_dir):
    gen = CancerLLM.from_pretrained(tiny_model_dir).diagnosis_generator(max_new_tokens=3)
    with pytest.raises(InputError, match="row 1: the text is missing"):
        gen.generate_many(["lung mass", None], progress=False)
    ref = gen.generate_many(["lung mass", "breast lump"], progress=False)
    out = gen.generate_many(["lung mass", None, "breast lump", ClinicalNote()], progress=False, errors="record")
    assert [d.text for d in out] == [ref[0].text, "", ref[1].text, ""]  # the good rows get their own diagnoses
    assert out[0].error is None and out[2].error is None
    assert out[1].error.startswith("row 1: the text is missing") and "no text in any section" in out[3].error
    df = gen.generate_many(pd.DataFrame({"note": ["lung mass", float("nan")]}, index=[10, 11]), column="note",
                           progress=False, errors="record")
    assert list(df.columns) == ["diagnosis", "code_consistent", "error"] and list(df.index) == [10, 11]
    assert df.loc[10, "diagnosis"] == ref[0].text and df.loc[10, "error"] is None
    assert df.loc[11, "diagnosis"] == "" and df.loc[11, "error"].startswith("row 11: the text is missing")


def test_dataframe_wrong_column(scripted):
    df = pd.DataFrame({"text": ["G1"]})
    with pytest.raises(InputError, match="column 'report' not in the DataFrame; columns are: text"):
        scripted.phenotype_extractor().extract_many(df, column="report")


def test_split_tokens_windows():
    assert split_tokens(list(range(10)), 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert split_tokens(list(range(3)), 4, 1) == [(0, 3)]
    with pytest.raises(InputError):
        split_tokens([1], 0, 0)


def test_real_engine_extract_and_diagnosis(tiny_llm):
    r = tiny_llm.phenotype_extractor(["grade", "stage"], max_new_tokens=5).extract("left breast G3")
    assert set(r.raw) == {"grade", "stage"}
    d = tiny_llm.diagnosis_generator(max_new_tokens=5).generate(ClinicalNote(reason_for_visit="cough"))
    assert isinstance(d, Diagnosis) and d.raw


def test_diagnosis_many_and_truncation(tiny_model_dir):
    llm = CancerLLM.from_pretrained(tiny_model_dir, max_input_tokens=120)
    gen = llm.diagnosis_generator(max_new_tokens=3)
    with pytest.warns(TruncationWarning):
        out = gen.generate_many(["lung mass " * 200, "short note"], progress=False)
    assert len(out) == 2 and all(isinstance(d, Diagnosis) for d in out)
    df = gen.generate_many(pd.DataFrame({"note": ["a", "b"]}), column="note", progress=False)
    assert list(df.columns) == ["diagnosis", "code_consistent"] and len(df) == 2
    with pytest.raises(InputError, match="no text"):
        gen.generate(ClinicalNote())


def test_clean_diagnosis():
    from cancerllm.tasks.diagnosis import clean_diagnosis

    assert clean_diagnosis("{lung cancer} more") == "lung cancer"
    assert clean_diagnosis(" breast  cancer\n### Instruction: x") == "breast cancer"


class _DiagnosisScript(Engine):
    """Writes a fixed diagnosis per note: the note's first word picks it."""

    ANSWERS = {"colon": "Colon Adenocarcinoma, Sigmoid Colon (C18.7)",
               "wrong": "Colon Adenocarcinoma, Right Colon (C50.9)",
               "plain": "Colon Adenocarcinoma, Sigmoid Colon",
               "odd": "Xyzzy (C50.9)"}

    def __init__(self, tok):
        self.tok = tok

    def generate_groups(self, groups, settings, *, progress=False):
        out = []
        for g in groups:
            prefix = self.tok.decode(g.prefix_ids)
            key = next(k for k in self.ANSWERS if k + " note" in prefix)
            out.append([self.tok(self.ANSWERS[key], add_special_tokens=False)["input_ids"]])
        return out


def test_written_icd_code_is_checked_against_the_words(tiny_model_dir):
    llm = CancerLLM.from_pretrained(tiny_model_dir)
    llm._engine = _DiagnosisScript(llm.tokenizer)
    gen = llm.diagnosis_generator()
    out = gen.generate_many(["colon note", "wrong note", "plain note", "odd note"], progress=False)
    assert [d.icd_10 for d in out] == ["C18.7", "C50.9", None, "C50.9"]
    # agrees / contradicts its own words / no code / words the code list cannot place
    assert [d.code_consistent for d in out] == [True, False, None, None]
    assert [d.needs_review for d in out] == [False, True, False, False]
    df = gen.generate_many(pd.DataFrame({"note": ["colon note", "wrong note", "plain note"]}), column="note",
                           progress=False)
    assert list(df.columns) == ["diagnosis", "code_consistent"]
    assert df["code_consistent"].tolist() == [True, False, None]
    # switched off: nothing is claimed
    off = llm.diagnosis_generator(check_codes=False).generate("wrong note")
    assert off.icd_10 == "C50.9" and off.code_consistent is None and not off.needs_review
    # a caller's own code list
    from cancerllm.benchmark import IcdMapper
    from cancerllm.benchmark.icd import IcdCode

    mine = IcdMapper([IcdCode(code="C50.9", category="C50", title="Malignant neoplasm of colon, right")])
    assert llm.diagnosis_generator(icd_mapper=mine).generate("wrong note").code_consistent is True
