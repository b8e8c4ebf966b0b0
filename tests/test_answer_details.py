"""Detailed answers: status, evidence spans into the caller's text, confidences from token probabilities,
review marks, single-valued resolution across chunks, provenance, DataFrame detail columns."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime

import pytest

from cancerllm import CancerLLM
from cancerllm.engine.base import GenerationSettings
from cancerllm.engine.hf import HFEngine
from cancerllm.schema import PhenotypeQuestion

TEXT = "Left breast:\r\nInvasive ductal carcinoma, Nottingham grade 3 (G3), Ø 2,5 cm — naïve."


def test_confidence_is_the_probability_of_the_generated_answer(tiny_llm):
    ext = tiny_llm.phenotype_extractor(["grade", "laterality"], progress=False, max_new_tokens=6)
    r = ext.extract(TEXT)
    groups, _ = ext.build_groups([TEXT], ext.questions, ["text"])
    gens = HFEngine(tiny_llm.model, tiny_llm.tokenizer).generate(
        groups, GenerationSettings(6, ("}",), 32, logprobs=True))[0]
    for q, gen in zip(ext.questions, gens):
        d = r.details[q.name]
        assert d.confidence == pytest.approx(math.exp(sum(gen.logprobs)), rel=1e-4)
        assert 0 < d.confidence <= 1
        assert r.status(q.name) == d.status == ("answered" if r.get(q.name) else "not_relevant")
        for item in d.items:
            assert d.confidence <= item.confidence + 1e-9 <= 1 + 1e-9  # an item is part of the answer
    assert r.status("stage") == "not_asked" and "stage" not in r.details


def test_review_marks_follow_min_confidence(tiny_llm):
    ext = tiny_llm.phenotype_extractor(["grade", "laterality", "stage"], progress=False, max_new_tokens=6)
    everything = ext.extract(TEXT, min_confidence=1.0)
    assert everything.needs_review and all(d.needs_review for d in everything.details.values())
    nothing = ext.extract(TEXT, min_confidence=0.0)
    for d in nothing.details.values():  # only items without evidence are marked
        assert d.needs_review == any(i.match == "not_found" for i in d.items)
    assert nothing.provenance.settings["min_confidence"] == 0.0
    with pytest.raises(ValueError):
        tiny_llm.phenotype_extractor(min_confidence=1.5)


def test_provenance_records_model_version_settings_time_and_input_hash(tiny_llm):
    import cancerllm

    r = tiny_llm.phenotype_extractor(["grade"], progress=False, max_new_tokens=4).extract(TEXT)
    p = r.provenance
    assert p.input_sha256 == hashlib.sha256(TEXT.encode()).hexdigest()
    assert p.library_version == cancerllm.__version__ and p.settings["max_new_tokens"] == 4
    assert datetime.fromisoformat(p.created).tzinfo is not None
    assert r.model_dump(mode="json")["provenance"]["input_sha256"] == p.input_sha256  # JSON-serialisable


class _Scripted(HFEngine):
    """Answers with fixed texts per question keyword, through the real decoding path's result type."""

    def __init__(self, llm, answers):
        super().__init__(llm.model, llm.tokenizer)
        self.answers = answers

    def generate(self, groups, settings, *, progress=False):
        from cancerllm.engine.base import Generation

        out = []
        for g in groups:
            prefix = self.tokenizer.decode(g.prefix_ids)
            row = []
            for s in g.suffix_ids:
                q = self.tokenizer.decode(s)
                key = next(k for k in self.answers if k in q)
                text = self.answers[key](prefix)
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                row.append(Generation(ids, [math.log(0.9)] * len(ids)))
            out.append(row)
        return out


def test_offsets_refer_to_the_whole_report_across_chunks(tiny_model_dir):
    llm = CancerLLM.from_pretrained(tiny_model_dir, max_input_tokens=200)
    tail = "Résumé: right side, G3 (poorly differentiated).\r\n"
    text = "Left breast lesion, G1.\r\n" + "filler words — about margins and nodes. " * 50 + tail
    llm._engine = _Scripted(llm, {
        "laterality": lambda p: "{right}" if "right" in p else ("{left}" if "Left" in p else "Not relevant"),
        "grade": lambda p: "{" + ", ".join(g for g in ("G1", "G3") if g in p) + "}" if "G" in p else "Not relevant",
    })
    r = llm.phenotype_extractor(["laterality", "grade"], progress=False, chunk_overlap=4).extract(text)
    lat = r.details["laterality"]
    assert lat.status == "answered" and len(lat.items) == 1 and lat.alternatives
    for item in lat.items + lat.alternatives + r.details["grade"].items + r.details["grade"].alternatives:
        assert text[item.span[0]:item.span[1]].lower() == item.value.lower()
        assert item.confidence == pytest.approx(0.9 ** len(llm.tokenizer(item.value, add_special_tokens=False)
                                                            ["input_ids"]), rel=0.2)
    last = max(lat.items + lat.alternatives, key=lambda i: i.chunk)
    assert last.value == "right" and last.span[0] == text.index("right side")


def test_single_valued_is_configurable_for_custom_questions(tiny_llm):
    q = PhenotypeQuestion(name="margin", question="What is the margin status?", single_valued=True)
    assert q.single_valued and not PhenotypeQuestion(name="x", question="y?").single_valued
    assert PhenotypeQuestion.builtin("grade").single_valued and not PhenotypeQuestion.builtin("receptors").single_valued


def test_dataframe_gets_detail_columns_only_when_asked(tiny_llm):
    pd = pytest.importorskip("pandas")
    ext = tiny_llm.phenotype_extractor(["grade"], progress=False, max_new_tokens=4)
    df = pd.DataFrame({"report": [TEXT, "Right lung."]})
    simple = ext.extract_many(df, column="report")
    assert list(simple.columns) == ["grade"]
    full = ext.extract_many(df, column="report", details=True)
    assert list(full.columns) == ["grade", "grade_confidence", "grade_match", "grade_evidence", "needs_review"]
    assert full["grade_confidence"].between(0, 1).all()


def test_provenance_hashes_the_adapter_weights(tiny_model_dir, tmp_path):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    lora.save_pretrained(tmp_path / "adapter")
    llm = CancerLLM.from_pretrained(tiny_model_dir, adapter=tmp_path / "adapter")
    weights = (tmp_path / "adapter" / "adapter_model.safetensors").read_bytes()
    r = llm.phenotype_extractor(["grade"], progress=False, max_new_tokens=3).extract(TEXT)
    assert r.provenance.adapter_sha256 == hashlib.sha256(weights).hexdigest()
    plain = CancerLLM.from_pretrained(tiny_model_dir).phenotype_extractor(["grade"], progress=False,
                                                                          max_new_tokens=3).extract(TEXT)
    assert plain.provenance.adapter_sha256 is None and plain.provenance.model
