"""The model + rules hybrid: the rules' near-certain fields replace the model's, nothing else changes."""

from __future__ import annotations

from cancerllm.benchmark.hybrid import RULE_FIELDS, HybridExtractor, combine
from cancerllm.schema import PhenotypeResult


def test_rules_replace_only_their_fields():
    model = PhenotypeResult(stage=["pT3", "pN0", "MX", "Stage IIA"], grade=["G2"], laterality=["Left"],
                            receptor_status=["er negative", "pr positive", "her2 positive"], tumor_size=["2 cm"])
    rules = PhenotypeResult(stage=["pT2", "M0", "Stage IIB"], grade=["G3"], laterality=None,
                            receptor_status=["er positive", "her2 negative"], tumor_size=["5 cm"])
    out = combine(model, rules)
    # T from the rules; N, M and the group stay the model's (pm / stage_group are not rule fields)
    assert out.stage == ["pT2", "pN0", "MX", "Stage IIA"]
    assert out.grade == ["G3"] and out.laterality == ["Left"]          # rules silent on laterality
    # ER from the rules; PR the model's (the rules have none); HER2 is not a rule field
    assert out.receptor_status == ["er positive", "pr positive", "her2 positive"]
    assert out.tumor_size == ["2 cm"]
    assert out.raw["grade"].endswith("(rules: G3)") and "tumor_size" not in out.raw
    assert model.stage == ["pT3", "pN0", "MX", "Stage IIA"]            # the input is not changed


def test_a_not_relevant_model_answer_is_kept():
    model = PhenotypeResult(receptor_status=None)
    rules = PhenotypeResult(receptor_status=["er positive"])
    assert combine(model, rules).receptor_status is None


def test_rule_fields_can_be_chosen():
    model = PhenotypeResult(grade=["G2"], stage=["T1"])
    rules = PhenotypeResult(grade=["G3"], stage=["pT2", "Stage IIA"])
    out = combine(model, rules, fields=["stage_group"])
    assert out.grade == ["G2"] and out.stage == ["T1", "Stage IIA"]
    assert set(RULE_FIELDS) == {"pt", "pn", "er_status", "pr_status", "grade", "laterality"}


def test_hybrid_extractor_runs_the_model_then_the_rules():
    class Model:
        def extract_many(self, texts, **kw):
            return [PhenotypeResult(grade=["G1"], laterality=["Right"]) for _ in texts]

    (res,) = HybridExtractor(Model()).extract_many(["Left breast. Nottingham grade III."])
    assert res.grade == ["G3"] and res.laterality == ["Left"]
