"""Per-field scoring: every registry field scored on its own, value-bearing questions apart from
"Not relevant" ones.

A question can carry several fields: the stage answer (``{pT2, pN0, M0, Stage IIA}``) is scored as pT, pN
and pM at their main category (T1..T4/Tis/TX/T0, N0..N3/NX, M0/M1/MX) and at full value, the stage group as
written and collapsed to I-IV (the PathRep-Bench convention), and the whole set (the paper's metric); the
receptor-status answer is scored per receptor (ER, PR, HER2), on the reports of the receptor cancer types.
Every other question is one field of the same name, scored with :func:`~cancerllm.benchmark.answers_match`.

"Not relevant" questions (the receptor questions of non-breast reports) are one row of their own,
``not_relevant``; they never enter the headline, which is the macro-average over :data:`MACRO_FIELDS`
(the value-bearing fields, each weighted equally).

Example:
    >>> from cancerllm.benchmark.tasks import PhenotypeCase
    >>> case = PhenotypeCase(0, "P1", "BRCA", "stage", ["pT2", "N0", "M0", "Stage IIA"],
    ...                      {"stage": "Stage IIA", "pT": "T2", "pN": "N0", "pM": "M0"})
    >>> flags = {f: ok for f, ok, _ in field_flags(case, ["pT2a", "pN1", "Stage IIB"])}
    >>> flags["pt"], flags["pt_full"], flags["pn"], flags["pm"], flags["stage_group_i_iv"]
    (True, False, False, False, True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..schema import Phenotype
from ..tnm import parse_tnm, tnm_group
from .normalize import answers_match, normalize_receptor_status
from .tasks import PhenotypeCase

__all__ = ["FIELD_LABELS", "MACRO_FIELDS", "field_flags", "predicted_stage", "receptor_statuses", "score_fields",
           "stage_i_iv"]

#: Field key -> label of the tables, in table order.
FIELD_LABELS: dict[str, str] = {
    "tumor_size": "tumor size",
    "histological_type": "histological type",
    "receptors": "receptors mentioned",
    "er_status": "ER status",
    "pr_status": "PR status",
    "her2_status": "HER2 status",
    "laterality": "laterality",
    "pt": "pT (category)",
    "pn": "pN (category)",
    "pm": "pM (category)",
    "pt_full": "pT (full value)",
    "pn_full": "pN (full value)",
    "pm_full": "pM (full value)",
    "stage_group": "stage group (full)",
    "stage_group_i_iv": "stage group (I-IV)",
    "stage_set": "stage (whole set)",
    "tumor_location": "tumor location",
    "grade": "grade",
    "not_relevant": "Not relevant (receptor questions outside breast)",
}
#: The value-bearing fields of the headline macro-average (full values and the whole stage set are
#: reported, not averaged: they would count the same answer twice).
MACRO_FIELDS: tuple[str, ...] = (
    "tumor_size", "histological_type", "receptors", "er_status", "pr_status", "her2_status", "laterality",
    "pt", "pn", "pm", "stage_group_i_iv", "tumor_location", "grade",
)
_RECEPTORS = (("er_status", "ER", "er"), ("pr_status", "PR", "pr"), ("her2_status", "HER2", "her2"))
_GROUP_MAIN_RE = re.compile(r"^Stage (?P<main>IV|III|II|I|0|X)")


def stage_i_iv(group: str | None) -> str | None:
    """A stage group collapsed to its main numeral: ``"Stage IIIC"`` -> ``"Stage III"``, ``"Stage IS"`` ->
    ``"Stage I"``."""
    g = tnm_group(group)
    if g is None:
        return None
    m = _GROUP_MAIN_RE.match(g)
    return f"Stage {m.group('main')}" if m else g


def predicted_stage(items: Sequence[str] | None) -> dict[str, Any]:
    """The T, N, M items (first of each letter, :class:`~cancerllm.tnm.TNMItem`) and stage group of a
    predicted stage answer."""
    out: dict[str, Any] = {"T": None, "N": None, "M": None, "group": None}
    for it in items or []:
        for tnm in parse_tnm(it):
            if out[tnm.letter] is None:
                out[tnm.letter] = tnm
        if out["group"] is None and not parse_tnm(it):
            out["group"] = tnm_group(it)
    return out


def receptor_statuses(items: Sequence[str] | None) -> dict[str, set[str]]:
    """Receptor -> the statuses an answer gives it (``{"er": {"positive"}}``); two statuses = a conflict."""
    out: dict[str, set[str]] = {}
    for it in items or []:
        norm = normalize_receptor_status(it)
        parts = norm.split()
        if len(parts) == 2 and parts[0] in ("er", "pr", "her2"):
            out.setdefault(parts[0], set()).add(parts[1])
    return out


def field_flags(case: PhenotypeCase, prediction: Sequence[str] | None) -> list[tuple[str, bool, bool]]:
    """``(field, correct, answered)`` for every field that ``case`` scores (see the module docstring).

    ``answered`` is whether the prediction gives that field a value at all (precision = correct among
    answered; an abstention is never correct)."""
    if case.gold is None:
        return [("not_relevant", not prediction, True)]
    ph = case.phenotype
    if ph == Phenotype.STAGE.value:
        return _stage_flags(case, prediction)
    if ph == Phenotype.RECEPTOR_STATUS.value:
        got = receptor_statuses(prediction)
        flags = []
        for key, label, short in _RECEPTORS:
            gold = case.labels.get(label)
            if not gold:
                continue
            want = normalize_receptor_status(f"{short} {gold}").split()[-1]
            flags.append((key, got.get(short) == {want}, short in got))
        return flags
    return [(ph, answers_match(ph, prediction, case.gold), bool(prediction))]


def _stage_flags(case: PhenotypeCase, prediction: Sequence[str] | None) -> list[tuple[str, bool, bool]]:
    pred = predicted_stage(prediction)
    flags: list[tuple[str, bool, bool]] = []
    for letter, label in (("T", "pT"), ("N", "pN"), ("M", "pM")):
        gold = [i for i in parse_tnm(case.labels.get(label) or "") if i.letter == letter]
        if not gold:
            continue
        p = pred[letter]
        flags.append((label.lower(), p is not None and p.category == gold[0].category, p is not None))
        flags.append((f"{label.lower()}_full", p is not None and p.full == gold[0].full, p is not None))
    group = tnm_group(case.labels.get("stage"))
    if group:
        got = pred["group"] is not None
        flags.append(("stage_group", pred["group"] == group, got))
        flags.append(("stage_group_i_iv", got and stage_i_iv(pred["group"]) == stage_i_iv(group), got))
    flags.append(("stage_set", answers_match(Phenotype.STAGE.value, prediction, case.gold), bool(prediction)))
    return flags


def _macro(per_report: Sequence[Sequence[tuple[str, bool]]]) -> float:
    tot: dict[str, list[int]] = {}
    for rows in per_report:
        for f, ok in rows:
            t = tot.setdefault(f, [0, 0])
            t[0] += ok
            t[1] += 1
    accs = [c / n for f, (c, n) in tot.items() if f in MACRO_FIELDS and n]
    return sum(accs) / len(accs) if accs else float("nan")


def score_fields(cases: Sequence[PhenotypeCase], predictions: Sequence[Sequence[str] | None], *,
                 ci: bool = True, seed: int = 0) -> dict[str, Any]:
    """Per-field accuracy (with precision) and the macro-average over :data:`MACRO_FIELDS`.

    Args:
        cases: the scored questions.
        predictions: the predicted items of each case, in the same order.
        ci: 95% bootstrap intervals (per field over its questions; the macro-average over reports).
        seed: bootstrap seed.

    Returns:
        ``{"fields": {field: {"value", "ci", "n", "answered", "precision"}}, "macro": {"value", "ci",
        "fields"}, "not_relevant": {...}}`` (``not_relevant`` is also under ``fields``).
    """
    from ..metrics import bootstrap_ci

    rows: dict[str, list[tuple[bool, bool]]] = {}
    per_report: dict[int, list[tuple[str, bool]]] = {}
    for case, pred in zip(cases, predictions):
        for f, ok, answered in field_flags(case, pred):
            rows.setdefault(f, []).append((ok, answered))
            per_report.setdefault(case.report, []).append((f, ok))
    fields: dict[str, Any] = {}
    for f in FIELD_LABELS:
        if f not in rows:
            continue
        flags = [ok for ok, _ in rows[f]]
        n_ans = sum(a for _, a in rows[f])
        n_ok_ans = sum(ok and a for ok, a in rows[f])
        fields[f] = {
            "value": round(sum(flags) / len(flags), 4), "n": len(flags), "answered": n_ans,
            "precision": round(n_ok_ans / n_ans, 4) if n_ans else None,
            "ci": [round(x, 4) for x in bootstrap_ci([float(x) for x in flags], seed=seed)] if ci else None,
        }
    # reports with a value-bearing field (one with only Not-relevant questions adds nothing to the macro)
    reports = [r for r in per_report.values() if any(f in MACRO_FIELDS for f, _ in r)]
    used = [f for f in MACRO_FIELDS if f in fields]
    macro: dict[str, Any] = {"value": round(_macro(reports), 4) if used else None, "fields": used, "ci": None}
    if ci and used:
        macro["ci"] = [round(x, 4) for x in bootstrap_ci(reports, statistic=_macro, seed=seed)]
    return {"fields": fields, "macro": macro, "not_relevant": fields.get("not_relevant")}
