"""A hybrid of a model and the rules: the rules answer the fields where they are near-certain, the model
the rest.  A separate system, never a silent change of the model's answers.

Near-certain fields (:data:`RULE_FIELDS`) were chosen on the *training* side only: those where the rules'
precision (correct among answered) is at least 90% there (``python benchmarks/bench_rules.py --split train``,
1,494 reports): pT 96.6%, pN 94.3%, PR 93.8%, ER 92.8%, grade 92.3%, laterality 92.2%.  Where the rules do
not answer such a field, the model's answer stays.

Example:
    >>> from cancerllm.schema import PhenotypeResult
    >>> model = PhenotypeResult(stage=["pT3", "N0", "M0", "Stage II"], grade=["G2"])
    >>> rules = PhenotypeResult(stage=["pT2", "pN1"], grade=None)
    >>> combine(model, rules).stage, combine(model, rules).grade
    (['pT2', 'pN1', 'M0', 'Stage II'], ['G2'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..prompts import format_answer
from ..schema import Phenotype, PhenotypeResult
from .fields import predicted_stage, receptor_statuses

__all__ = ["RULE_FIELDS", "HybridExtractor", "combine", "merge_receptor_status", "replace_answer"]

#: Fields the rules answer in the hybrid (training-side rules precision >= 90%).
RULE_FIELDS: tuple[str, ...] = ("pt", "pn", "er_status", "pr_status", "grade", "laterality")
_LETTERS = (("T", "pt"), ("N", "pn"), ("M", "pm"))
_RECEPTORS = (("er", "er_status"), ("pr", "pr_status"), ("her2", "her2_status"))


def replace_answer(out: PhenotypeResult, name: str, items: list[str], taken: Sequence[str],
                   source: str = "rules") -> None:
    """Set ``out``'s answer to ``name`` to ``items``, of which ``taken`` came from ``source``: ``raw`` ends
    with ``"(<source>: <taken>)"`` and the model's ``details`` (no longer its answer) are dropped."""
    out.set(name, items or None)
    out.raw[name] = f"{format_answer(items or None)} ({source}: {', '.join(taken)})"
    out.details.pop(name, None)  # the model's evidence and confidence no longer describe this answer


def merge_receptor_status(model_items: Sequence[str] | None, chosen: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """The receptor-status items with ``chosen`` statuses (``{"er": "negative"}``) in place of the model's:
    ``(items, taken)``, ER, PR, HER2 in order, a receptor not chosen keeping the model's statuses."""
    mine = receptor_statuses(model_items)
    items, taken = [], []
    for short, _ in _RECEPTORS:
        if short in chosen:
            item = f"{short} {chosen[short]}"
            taken.append(item)
            items.append(item)
        else:
            items += [f"{short} {s}" for s in sorted(mine.get(short, ()))]
    return items, taken


def combine(model: PhenotypeResult, rules: PhenotypeResult, fields: Iterable[str] = RULE_FIELDS) -> PhenotypeResult:
    """The model's result with the rules' answers for ``fields`` wherever the rules gave one.

    * ``grade``, ``laterality`` (and any other whole question named): the rules' answer replaces the model's;
    * ``pt``/``pn``/``pm``, ``stage_group``: that item of the stage answer (the others stay the model's);
    * ``er_status``/``pr_status``/``her2_status``: that receptor's status, only where the model answered the
      receptor-status question (a "Not relevant" from the model is kept).

    ``raw`` of a changed answer ends with ``"(rules: <items>)"`` and its ``details`` are dropped.
    """
    wanted = set(fields)
    out = model.model_copy(deep=True)
    for ph in (p.value for p in Phenotype):
        if ph in wanted and rules.get(ph):
            replace_answer(out, ph, list(rules.get(ph) or []), list(rules.get(ph) or []))
    st = Phenotype.STAGE.value
    r_stage, m_stage = predicted_stage(rules.get(st)), predicted_stage(model.get(st))
    taken = []
    parts: list[str] = []
    for letter, key in _LETTERS:
        if key in wanted and r_stage[letter] is not None:
            parts.append(r_stage[letter].canonical)
            taken.append(r_stage[letter].canonical)
        elif m_stage[letter] is not None:
            parts.append(m_stage[letter].canonical)
    group = r_stage["group"] if "stage_group" in wanted and r_stage["group"] else m_stage["group"]
    if "stage_group" in wanted and r_stage["group"]:
        taken.append(group)
    if group:
        parts.append(group)
    if taken:
        replace_answer(out, st, parts, taken)
    rs = Phenotype.RECEPTOR_STATUS.value
    if model.get(rs):
        r_rec = receptor_statuses(rules.get(rs))
        items, taken = merge_receptor_status(model.get(rs), {
            short: next(iter(r_rec[short])) for short, key in _RECEPTORS
            if key in wanted and len(r_rec.get(short, ())) == 1})
        if taken:
            replace_answer(out, rs, items, taken)
    return out


class HybridExtractor:
    """A model's phenotype extractor whose near-certain fields the rules answer (:func:`combine`).

    Args:
        extractor: the model's extractor (``model.phenotype_extractor()``), or anything with ``extract_many``.
        rules: the rules (default :class:`~cancerllm.benchmark.RuleBasedExtractor`).
        fields: the fields the rules answer (default :data:`RULE_FIELDS`).
    """

    def __init__(self, extractor: Any, rules: Any = None, fields: Iterable[str] = RULE_FIELDS) -> None:
        from .rules import RuleBasedExtractor

        self.extractor = extractor
        self.rules = rules if rules is not None else RuleBasedExtractor()
        self.fields = tuple(fields)

    def extract_many(self, texts: Sequence[str], **kwargs: Any) -> list[PhenotypeResult]:
        """The model's results for ``texts`` (``kwargs`` passed on), combined with the rules'."""
        texts = list(texts)
        model = self.extractor.extract_many(texts, **kwargs)
        return [combine(m, r, self.fields) for m, r in zip(model, self.rules.extract_many(texts))]

    def extract(self, text: str, **kwargs: Any) -> PhenotypeResult:
        """One report."""
        return self.extract_many([text], **kwargs)[0]
