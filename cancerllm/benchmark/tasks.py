"""Benchmark tasks built from any file in the shared TCGA format: report-level phenotype questions with
registry gold values, diagnosis generation (histology and site in words) and its ICD-10-coded variant.

Which questions are scored: one per report and phenotype that has a gold value (a registry value that
is null is "not recorded", not "absent", and is not scored), plus the receptor questions of reports of
cancer types where receptors do not apply (gold "Not relevant").  The mapping of label fields to
answers is :data:`cancerllm.data.TCGA_ANSWER_FUNCTIONS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..data.convert import (
    RECEPTOR_CANCER_TYPES,
    TCGA_ANSWER_FUNCTIONS,
    _labels,
    _phenotype_list,
    diagnosis_answer,
)
from ..data.io import TCGARecord
from ..errors import InputError
from ..schema import Phenotype
from .split import DEFAULT_SALT, split_records

__all__ = ["BenchmarkTasks", "DiagnosisCase", "PhenotypeCase", "build_tasks", "select_records"]

Split = Literal["validation", "train", "all"]


@dataclass(frozen=True)
class PhenotypeCase:
    """One scored question: report ``report`` (index into :attr:`BenchmarkTasks.records`) and phenotype.

    ``gold`` is the answer items, or None for "Not relevant"; ``labels`` the label fields it comes from.
    """

    report: int
    patient_id: str
    cancer_type: str
    phenotype: str
    gold: list[str] | None
    labels: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class DiagnosisCase:
    """One diagnosis to generate: gold ``text`` (``"<histology>, <site>"``) and ``icd_10`` (either may be None)."""

    report: int
    patient_id: str
    cancer_type: str
    text: str | None
    icd_10: str | None


@dataclass
class BenchmarkTasks:
    """The reports and the cases scored on them."""

    records: list[TCGARecord]
    phenotype_cases: list[PhenotypeCase]
    diagnosis_cases: list[DiagnosisCase]
    phenotypes: list[str]

    @property
    def texts(self) -> list[str]:
        """The report texts, in record order."""
        return [r.text for r in self.records]

    def coverage(self) -> dict[str, dict[str, Any]]:
        """Per phenotype and diagnosis target: scored cases, reports, and the share of reports covered."""
        n = len(self.records)
        out: dict[str, dict[str, Any]] = {}
        for ph in self.phenotypes:
            cases = [c for c in self.phenotype_cases if c.phenotype == ph]
            with_value = sum(1 for c in cases if c.gold is not None)
            out[ph] = {"n": len(cases), "with_value": with_value, "not_relevant": len(cases) - with_value,
                       "reports": n, "coverage": round(len(cases) / n, 4) if n else 0.0}
        for key, attr in (("diagnosis", "text"), ("icd_10", "icd_10")):
            k = sum(1 for c in self.diagnosis_cases if getattr(c, attr))
            out[key] = {"n": k, "with_value": k, "not_relevant": 0, "reports": n,
                        "coverage": round(k / n, 4) if n else 0.0}
        return out


def _order_key(patient_id: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:order:{patient_id.strip().upper()}".encode()).hexdigest()


def select_records(
    records: Iterable[TCGARecord | Mapping[str, Any]],
    *,
    split: Split = "validation",
    limit: int | None = None,
    salt: str = DEFAULT_SALT,
) -> list[TCGARecord]:
    """The reports to benchmark: one side of the patient-level split (or all), and with ``limit`` a
    deterministic subset - the first ``limit`` patients in an order fixed by a hash of their ids, so the
    same file and limit always give the same reports, and a larger limit extends a smaller one."""
    if split not in ("validation", "train", "all"):
        raise InputError(f"split={split!r}; use 'validation', 'train' or 'all'")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive integer, got {limit!r}")
    recs = [_labels(r) for r in records]
    if split != "all":
        train, val = split_records(recs, salt=salt)
        recs = val if split == "validation" else train
    if limit is not None:
        recs = sorted(recs, key=lambda r: _order_key(r.patient_id, salt))[:limit]
    if not recs:
        raise InputError(f"no reports in the {split!r} part of the data")
    return recs


def build_tasks(
    records: Sequence[TCGARecord | Mapping[str, Any]],
    *,
    phenotypes: Iterable[Phenotype | str] | None = None,
    receptor_cancer_types: Iterable[str] = RECEPTOR_CANCER_TYPES,
) -> BenchmarkTasks:
    """Phenotype and diagnosis cases of ``records`` (see the module docstring for what is scored)."""
    recs = [_labels(r) for r in records]
    wanted = _phenotype_list(phenotypes)
    receptor_types = {c.upper() for c in receptor_cancer_types}
    cases: list[PhenotypeCase] = []
    for i, rec in enumerate(recs):
        for ph in wanted:
            fn, fields = TCGA_ANSWER_FUNCTIONS[ph]
            gold = fn(rec)
            if gold is None:
                receptor_q = ph in (Phenotype.RECEPTORS, Phenotype.RECEPTOR_STATUS)
                if not (receptor_q and rec.cancer_type.upper() not in receptor_types):
                    continue
            cases.append(PhenotypeCase(i, rec.patient_id, rec.cancer_type, ph.value, gold,
                                       {f: rec.label(f) for f in fields}))
    diag = [DiagnosisCase(i, r.patient_id, r.cancer_type, diagnosis_answer(r), r.label("icd_10"))
            for i, r in enumerate(recs)]
    return BenchmarkTasks(recs, cases, diag, [p.value for p in wanted])
