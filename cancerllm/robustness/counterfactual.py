"""Counterfactual label noise: the paper's first robustness testbed.

A given fraction of the training examples (the paper uses 20, 40, 60 and 80%) gets a wrong answer:

* ``"absent_entity"``: an answer value of the same phenotype that does not occur in the context (drawn from
  the other examples' answers of that phenotype, else from :data:`BUILTIN_VOCABULARY`);
* ``"wrong_type"``: an answer of a different phenotype, e.g. a grade given to the laterality question
  (preferably an entity of another type that does occur in the same context);
* ``"mixed"`` (default): each corrupted example gets one of the two kinds at random.

Exactly ``round_half_up(rate * n)`` examples are changed (the rate is taken as the decimal it is written
as, so ``0.2 * 15 = 3`` and ``0.25 * 10 = 2.5 -> 3``), each to an answer that differs from its original.
Everything is drawn from ``random.Random(seed)``: the same inputs and seed give the same output.

Example:
    >>> noisy, changes = counterfactual_labels(train, rate=0.4, seed=0)   # doctest: +SKIP
    >>> len(changes) == round(0.4 * len(train))                          # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..errors import InputError
from ..prompts import format_answer, parse_answer
from ..schema import DIAGNOSIS_INSTRUCTION, Example, Phenotype

__all__ = [
    "BUILTIN_VOCABULARY",
    "LabelChange",
    "apply_label_changes",
    "counterfactual_labels",
    "expected_count",
]

Strategy = Literal["mixed", "absent_entity", "wrong_type"]
_STRATEGIES: tuple[str, ...] = ("mixed", "absent_entity", "wrong_type")

#: Built-in answer values per phenotype (and ``"diagnosis"``), used when the data offer no candidate.
BUILTIN_VOCABULARY: dict[str, tuple[str, ...]] = {
    "tumor_size": ("0.6 cm", "1.2 cm", "1.8 cm", "2.4 cm", "3.5 cm", "4.2 cm", "5.1 cm", "7 mm", "15 mm"),
    "histological_type": (
        "invasive ductal carcinoma",
        "invasive lobular carcinoma",
        "ductal carcinoma in situ",
        "mucinous carcinoma",
        "tubular carcinoma",
        "medullary carcinoma",
        "adenocarcinoma",
        "squamous cell carcinoma",
    ),
    "receptors": ("er", "pr", "her2", "ki-67", "egfr", "androgen receptor"),
    "receptor_status": (
        "er positive",
        "er negative",
        "pr positive",
        "pr negative",
        "her2 positive",
        "her2 negative",
        "her2 equivocal",
    ),
    "laterality": ("left", "right", "bilateral"),
    "stage": ("stage i", "stage ia", "stage iib", "stage iiia", "stage iiic", "stage iv"),
    "tumor_location": (
        "upper outer quadrant",
        "upper inner quadrant",
        "lower outer quadrant",
        "lower inner quadrant",
        "retroareolar",
        "axillary tail",
    ),
    "grade": ("grade 1", "grade 2", "grade 3", "low grade", "intermediate grade", "high grade"),
    "diagnosis": (
        "Infiltrating Ductal Carcinoma, Left Breast",
        "Infiltrating Lobular Carcinoma, Right Breast",
        "Lung Adenocarcinoma",
        "Kidney Clear Cell Renal Carcinoma",
        "Colon Adenocarcinoma",
        "Head and Neck Squamous Cell Carcinoma",
        "Thyroid Papillary Carcinoma",
    ),
}
_PHENOTYPE_NAMES = frozenset(p.value for p in Phenotype)


class LabelChange(BaseModel):
    """One corrupted label.

    Attributes:
        index: position of the example in the input list.
        id: the example's id.
        phenotype: the example's phenotype (``"diagnosis"`` / ``"other"`` for non-phenotype examples).
        original: the original response.
        replacement: the new response.
        kind: ``"absent_entity"`` or ``"wrong_type"``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    id: str | None
    phenotype: str
    original: str
    replacement: str
    kind: Literal["absent_entity", "wrong_type"]


def _check_rate(rate: float, name: str = "rate") -> Decimal:
    """``rate`` as an exact decimal (as written), after checking it is a number in [0, 1].

    Raises:
        InputError: not a number, not finite, or outside [0, 1].
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate):
        raise InputError(f"{name} must be a number in [0, 1], got {rate!r}")
    if not 0 <= rate <= 1:
        hint = f" (did you mean {rate / 100:g}?)" if 1 < rate <= 100 else ""
        raise InputError(f"{name} must be a fraction in [0, 1], got {rate!r}{hint}")
    return Decimal(repr(float(rate)))


def expected_count(rate: float, n: int) -> int:
    """``rate * n`` rounded half up, with ``rate`` taken as the decimal it is written as (``0.25 * 10 -> 3``)."""
    return int((_check_rate(rate) * n).to_integral_value(rounding=ROUND_HALF_UP))


def _group(ex: Example) -> str:
    ph = ex.meta.get("phenotype") if isinstance(ex.meta, dict) else None
    if isinstance(ph, str) and ph:
        return ph
    if ex.question is not None:
        p = Phenotype.from_question(ex.question)
        return p.value if p is not None else "other"
    tail = " ".join(ex.context.split()).lower()
    for p in Phenotype:
        if tail.rstrip("?. ").endswith(" ".join(p.question.split()).lower().rstrip("?. ")):
            return p.value
    if ex.instruction == DIAGNOSIS_INSTRUCTION:
        return "diagnosis"
    return "other"


def _items(ex: Example, group: str) -> list[str]:
    if group in _PHENOTYPE_NAMES:
        return parse_answer(ex.response)
    return [ex.response.strip()] if ex.response.strip() else []


def _render(items: list[str], group: str) -> str:
    return format_answer(items) if group in _PHENOTYPE_NAMES else items[0]


def _occurs(item: str, text: str) -> bool:
    words = item.split()
    if not words:
        return True
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"
    return re.search(pattern, text, re.I) is not None


def _dedup(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for it in items:
        k = " ".join(it.split()).lower()
        if k and k not in seen:
            seen.add(k)
            out.append(it)
    return out


def counterfactual_labels(
    examples: Sequence[Example],
    *,
    rate: float,
    seed: int = 0,
    strategy: Strategy = "mixed",
    vocabulary: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[Example], list[LabelChange]]:
    """Give a fraction ``rate`` of the examples a wrong answer (counterfactual label noise).

    Args:
        examples: the training examples (not modified).
        rate: fraction in [0, 1] of examples to corrupt; exactly :func:`expected_count` ``(rate, n)`` are.
        seed: seed of the ``random.Random`` that picks the examples, the kinds and the replacements.
        strategy: ``"absent_entity"``, ``"wrong_type"`` or ``"mixed"`` (see the module docstring).  When the
            chosen kind has no candidate for an example, the other kind is used (and recorded).
        vocabulary: phenotype name -> answer values, used instead of the values collected from the data
            for that phenotype (the built-in lists remain the fallback).

    Returns:
        ``(new_examples, changes)``: deep copies of all examples, corrupted ones with a new ``response``;
        one :class:`LabelChange` per corrupted example, in index order.

    Raises:
        InputError: ``rate`` outside [0, 1], an unknown strategy, a non-Example input, or an example for which
            no wrong answer can be found.
    """
    _check_rate(rate)
    if strategy not in _STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; use one of: {', '.join(_STRATEGIES)}")
    exs = list(examples)
    for ex in exs:
        if not isinstance(ex, Example):
            raise InputError(f"counterfactual_labels expects Example objects, got {type(ex).__name__}")
    n = len(exs)
    k = expected_count(rate, n)
    rng = random.Random(seed)

    groups = [_group(ex) for ex in exs]
    items = [_items(ex, g) for ex, g in zip(exs, groups, strict=True)]
    vocab: dict[str, list[str]] = {}
    by_context: dict[str, list[int]] = {}
    for i, (g, its) in enumerate(zip(groups, items, strict=True)):
        vocab.setdefault(g, []).extend(its)
        by_context.setdefault(exs[i].context, []).append(i)
    for key, values in (vocabulary or {}).items():
        vocab[str(key)] = [str(v) for v in values]
    vocab = {g: _dedup(v) for g, v in vocab.items()}
    group_order = _dedup(list(vocab) + list(BUILTIN_VOCABULARY))

    def valid(item: str, i: int) -> bool:
        orig = {x.lower() for x in items[i]}
        return item.lower() not in orig and _render([item], groups[i]) != exs[i].response

    def absent_candidates(i: int) -> list[str]:
        g, ctx = groups[i], exs[i].context
        for pool in (vocab.get(g, []), list(BUILTIN_VOCABULARY.get(g, ()))):
            cands = [x for x in pool if valid(x, i) and not _occurs(x, ctx)]
            if cands:
                return cands
        return []

    def wrong_type_candidates(i: int) -> list[str]:
        g, ctx = groups[i], exs[i].context
        same = {x.lower() for x in vocab.get(g, []) + list(BUILTIN_VOCABULARY.get(g, ()))}

        def ok(x: str) -> bool:
            return valid(x, i) and x.lower() not in same

        # 1. entities of another type annotated in this very context
        tier1 = _dedup([x for j in by_context.get(ctx, []) if groups[j] != g for x in items[j]])
        # 2. other types' values that occur in the context; 3. any value of another type
        others = _dedup([x for h in group_order if h != g for x in vocab.get(h, [])])
        builtin = _dedup([x for h in BUILTIN_VOCABULARY if h != g for x in BUILTIN_VOCABULARY[h]])
        for pool in (tier1, [x for x in others if _occurs(x, ctx)], others, builtin):
            cands = [x for x in pool if ok(x)]
            if cands:
                return cands
        return []

    chosen = sorted(rng.sample(range(n), k)) if k else []
    new = [ex.model_copy(deep=True) for ex in exs]
    changes: list[LabelChange] = []
    for i in chosen:
        if strategy == "mixed":
            kind = "absent_entity" if rng.random() < 0.5 else "wrong_type"
        else:
            kind = strategy
        finders = {"absent_entity": absent_candidates, "wrong_type": wrong_type_candidates}
        cands = finders[kind](i)
        if not cands:
            kind = "wrong_type" if kind == "absent_entity" else "absent_entity"
            cands = finders[kind](i)
        if not cands:
            raise InputError(
                f"no wrong answer found for example {i} (id {exs[i].id!r}); pass vocabulary= with more values"
            )
        replacement = _render([rng.choice(cands)], groups[i])
        new[i] = new[i].model_copy(update={"response": replacement})
        changes.append(
            LabelChange(
                index=i,
                id=exs[i].id,
                phenotype=groups[i],
                original=exs[i].response,
                replacement=replacement,
                kind=kind,  # type: ignore[arg-type]
            )
        )
    return new, changes


def apply_label_changes(examples: Sequence[Example], changes: Sequence[LabelChange]) -> list[Example]:
    """Re-apply recorded :class:`LabelChange` s to the original examples (copies; the inputs are not modified).

    Raises:
        InputError: a change whose index is out of range or whose ``original`` is not the example's response.
    """
    out = [ex.model_copy(deep=True) for ex in examples]
    for ch in changes:
        if not 0 <= ch.index < len(out) or out[ch.index].response != ch.original:
            raise InputError(f"label change for index {ch.index} does not match the examples given")
        out[ch.index] = out[ch.index].model_copy(update={"response": ch.replacement})
    return out
