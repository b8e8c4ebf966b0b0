"""The stage group derived from T, N and M, as a registrar derives it, where the report does not write one.

A pathology report usually states the T, N and M categories (about two thirds of the shared file's reports)
and rarely the stage group (about 7%); the registry's group is derived from T, N, M and the primary site by
the AJCC tables.  A model asked for the group of a report that does not state it can only guess.
:class:`StageGrouper` derives it instead: it learns, from registry-labelled training reports, which stage
group (collapsed to I-IV) each ``(cancer type, T, N, M)`` combination of main categories has, and applies
that table to an answer's own T, N and M items.  The cancer type, when the caller does not know it, is read
off the answer's histological type (the registry's histology strings are type-specific: "Lung Squamous Cell
Carcinoma" was written for LUSC reports only).

It is a separate system, never a silent change of a model's answers: the derived group is marked in
``raw`` (``"(stage group derived from pT2, N0, M0: BRCA, 41 training reports)"``) and in ``details``
(no evidence span: it is not in the report).  The table is data, not the AJCC manual: combinations seen
rarely in training give noisy groups, and with the registry's own T, N, M it reproduces the registry's I-IV
group on 83% of the validation reports (``benchmarks/results/staging/``).

Lookup order: the cancer type's row for ``(T, N, M)``, then the row over all types, else nothing (the
answer is left as it is).  An answer is left as it is, too, when it has no T, N or M item, when the report
writes a stage group (found by :class:`~cancerllm.benchmark.RuleBasedExtractor`'s stage-group rules), or when
its own group already collapses to the derived one (its fuller group, "Stage IIA", is kept).

Example:
    >>> recs = [{"patient_id": f"P{i}", "cancer_type": "BRCA", "text": "",
    ...          "labels": {"pT": "T2", "pN": "N0", "pM": "M0", "stage": "Stage IIA",
    ...                     "histology": "Infiltrating Ductal Carcinoma"}} for i in range(3)]
    >>> grouper = StageGrouper.from_records(recs)
    >>> grouper.derive("T2", "N0", "M0", cancer_type="BRCA").group
    'Stage II'
    >>> from cancerllm.schema import PhenotypeResult
    >>> r = PhenotypeResult(stage=["pT2", "pN0", "M0", "Stage I"], histological_type=["Infiltrating Ductal Carcinoma"])
    >>> grouper.apply(r).stage
    ['pT2', 'pN0', 'M0', 'Stage II']
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..prompts import format_answer
from ..schema import AnswerDetail, ItemDetail, Phenotype, PhenotypeResult
from ..tnm import tnm_category
from .fields import predicted_stage, stage_i_iv
from .normalize import normalize

__all__ = ["DERIVED_MARK", "StageDerivation", "StageGrouper", "StagedExtractor"]

#: Starts the note appended to the raw text of an answer whose group was derived.
DERIVED_MARK = "stage group derived from"
_DEFAULT_RESOURCE = "stage_groups.json"
_FORMAT = "cancerllm-stage-groups/1"
_HIST = Phenotype.HISTOLOGICAL_TYPE.value
_STAGE = Phenotype.STAGE.value


def _key(t: str | None, n: str | None, m: str | None) -> str:
    """``"T2 N0 M0"``; a missing category is ``"-"`` (``"T2 N0 -"``)."""
    return " ".join(c or "-" for c in (t, n, m))


def _field(rec: Any, name: str) -> Any:
    return rec.get(name) if isinstance(rec, Mapping) else getattr(rec, name)


def _top(counts: Mapping[str, int]) -> tuple[str, int]:
    """The most frequent value and its count; ties go to the smaller value (deterministic)."""
    best = min(counts, key=lambda v: (-counts[v], v))
    return best, counts[best]


@dataclass(frozen=True)
class StageDerivation:
    """A derived stage group.

    Attributes:
        group: the group at I-IV (``"Stage II"``).
        key: the T, N, M categories looked up (``"T2 N0 M0"``).
        basis: the cancer type whose row answered (``"BRCA"``), or ``"*"`` for the row over all types.
        support: training reports with that combination; ``agreeing``: how many of them had ``group``.
    """

    group: str
    key: str
    basis: str
    support: int
    agreeing: int


@dataclass
class StageGrouper:
    """Stage group at I-IV from the T, N, M main categories and the cancer type, learned from registry labels.

    Attributes:
        by_type: cancer type (upper case) -> ``"T2 N0 M0"`` -> stage group (I-IV) -> training reports.
        overall: the same over all cancer types.
        histology_types: normalised registry histology -> cancer type -> training reports (to infer the
            type from an answer's histological type).
        n_records: training reports with a stage group.
        source: where the table was learned (a note for the model card).
    """

    by_type: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    overall: dict[str, dict[str, int]] = field(default_factory=dict)
    histology_types: dict[str, dict[str, int]] = field(default_factory=dict)
    n_records: int = 0
    source: str = ""

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def from_records(cls, records: Iterable[Any], *, source: str = "") -> StageGrouper:
        """Learn the table from training records (:class:`~cancerllm.data.io.TCGARecord` or dicts of the
        shared TCGA format); pass only the training side of a split.  Records without a registry stage
        group count only for the histology -> cancer type table."""
        by_type: dict[str, dict[str, Counter[str]]] = {}
        overall: dict[str, Counter[str]] = {}
        hist: dict[str, Counter[str]] = {}
        n = 0
        for rec in records:
            labels = _field(rec, "labels") or {}
            ctype = str(_field(rec, "cancer_type") or "").upper()
            if labels.get("histology") and ctype:
                hist.setdefault(normalize(_HIST, labels["histology"]), Counter())[ctype] += 1
            group = stage_i_iv(labels.get("stage"))
            if not group:
                continue
            cats = [tnm_category(labels.get(f"p{letter}"), letter) for letter in "TNM"]
            if not any(cats):
                continue
            key = _key(*cats)
            n += 1
            overall.setdefault(key, Counter())[group] += 1
            if ctype:
                by_type.setdefault(ctype, {}).setdefault(key, Counter())[group] += 1
        return cls(
            by_type={ct: {k: dict(c) for k, c in rows.items()} for ct, rows in by_type.items()},
            overall={k: dict(c) for k, c in overall.items()},
            histology_types={h: dict(c) for h, c in hist.items()},
            n_records=n, source=source,
        )

    @classmethod
    def default(cls) -> StageGrouper:
        """The table shipped with the library: learned from the 1,494 training reports of the shared TCGA
        file's split (the reports CancerLLM-Smol was trained on; ``benchmarks/smol/build_stage_groups.py``)."""
        text = resources.files("cancerllm._resources").joinpath(_DEFAULT_RESOURCE).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(text))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (:meth:`from_dict` reads it back)."""
        return {"format": _FORMAT, "source": self.source, "n_records": self.n_records, "by_type": self.by_type,
                "overall": self.overall, "histology_types": self.histology_types}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageGrouper:
        """The grouper of :meth:`to_dict`'s data."""
        if data.get("format") != _FORMAT:
            raise InputError(f"not a stage-group table (format {data.get('format')!r}, expected {_FORMAT!r})")
        return cls(by_type=data["by_type"], overall=data["overall"], histology_types=data["histology_types"],
                   n_records=int(data["n_records"]), source=str(data.get("source", "")))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> StageGrouper:
        """Read a table written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    # ------------------------------------------------------------------------------------------ lookups
    def cancer_type_for(self, histology: str | None) -> str | None:
        """The cancer type most often recorded with this histological type in training, or None."""
        counts = self.histology_types.get(normalize(_HIST, histology)) if histology else None
        return _top(counts)[0] if counts else None

    def derive(self, t: str | None, n: str | None, m: str | None, *,
               cancer_type: str | None = None) -> StageDerivation | None:
        """The stage group (I-IV) of T, N, M (any spelling: ``"pT2a"`` counts as ``T2``) for a cancer type
        (None: the row over all types); None when no T, N or M is given or the combination was never seen."""
        cats = [tnm_category(v, letter) if v else None for v, letter in zip((t, n, m), "TNM")]
        if not any(cats):
            return None
        key = _key(*cats)
        rows = [(cancer_type.upper(), self.by_type.get(cancer_type.upper(), {}))] if cancer_type else []
        rows.append(("*", self.overall))
        for basis, table in rows:
            counts = table.get(key)
            if counts:
                group, agreeing = _top(counts)
                return StageDerivation(group=group, key=key, basis=basis, support=sum(counts.values()),
                                       agreeing=agreeing)
        return None

    # ------------------------------------------------------------------------------------------ applying
    def apply(self, result: PhenotypeResult, *, text: str | None = None,
              cancer_type: str | None = None) -> PhenotypeResult:
        """A copy of ``result`` whose stage group is the one derived from its own T, N and M items.

        Args:
            result: a phenotype result with a stage answer (left as it is without one).
            text: the report; when given and it writes a stage group, the answer is left as it is.
            cancer_type: the TCGA-style cancer type of the report; None: read off ``result``'s histological
                type (:meth:`cancer_type_for`), else the row over all types.
        """
        items = list(result.get(_STAGE) or [])
        have = predicted_stage(items)
        if not items or all(have[x] is None for x in "TNM"):
            return result
        if text is not None:
            from .rules import RuleBasedExtractor

            stated = RuleBasedExtractor.stage(text)
            if stated and predicted_stage(stated)["group"] is not None:
                return result
        if cancer_type is None:
            cancer_type = self.cancer_type_for((result.get(_HIST) or [None])[0])
        d = self.derive(*((have[x].canonical if have[x] else None) for x in "TNM"), cancer_type=cancer_type)
        if d is None or stage_i_iv(have["group"]) == d.group:
            return result
        tnm_items = [it for it in items if predicted_stage([it])["group"] is None]
        new = tnm_items + [d.group]
        out = result.model_copy(deep=True)
        out.set(_STAGE, new)
        basis = "all cancer types" if d.basis == "*" else d.basis
        note = (f"({DERIVED_MARK} {', '.join(x.canonical for x in (have['T'], have['N'], have['M']) if x)}: "
                f"{basis}, {d.agreeing} of {d.support} training reports)")
        out.raw[_STAGE] = f"{format_answer(new)} {note}"
        detail = out.details.get(_STAGE)
        if detail is not None:
            kept = [it for it in detail.items if it.value in tnm_items]
            derived = ItemDetail(value=d.group, raw=note, match="not_found", needs_review=True)
            out.details[_STAGE] = AnswerDetail(status="answered", items=[*kept, derived],
                                               alternatives=detail.alternatives, confidence=detail.confidence,
                                               needs_review=True)
        return out


class StagedExtractor:
    """An extractor whose stage answers get the group :class:`StageGrouper` derives from their T, N, M.

    Args:
        extractor: anything with ``extract_many(texts) -> list[PhenotypeResult]`` (a model's phenotype
            extractor, a :class:`~cancerllm.benchmark.HybridExtractor`).
        grouper: the table (default :meth:`StageGrouper.default`).
    """

    def __init__(self, extractor: Any, grouper: StageGrouper | None = None) -> None:
        self.extractor = extractor
        self.grouper = grouper if grouper is not None else StageGrouper.default()

    def extract_many(self, texts: Sequence[str], cancer_types: Sequence[str | None] | None = None,
                     **kwargs: Any) -> list[PhenotypeResult]:
        """The extractor's results for ``texts`` (``kwargs`` passed on), staged; ``cancer_types`` (one per
        text, None entries allowed) when known, else read off each result's histological type."""
        texts = list(texts)
        types = list(cancer_types) if cancer_types is not None else [None] * len(texts)
        if len(types) != len(texts):
            raise InputError(f"{len(texts)} texts but {len(types)} cancer types; pass one type per text")
        results = self.extractor.extract_many(texts, **kwargs)
        return [self.grouper.apply(r, text=t, cancer_type=ct) for r, t, ct in zip(results, texts, types)]

    def extract(self, text: str, cancer_type: str | None = None, **kwargs: Any) -> PhenotypeResult:
        """One report."""
        return self.extract_many([text], None if cancer_type is None else [cancer_type], **kwargs)[0]
