"""Results for the format tests: the shipped sample reports with scripted answers taken from their registry
gold labels, evidence spans computed with :func:`cancerllm.evidence.find_span` (no model is run)."""

from __future__ import annotations

import hashlib
from typing import Any

import cancerllm
from cancerllm.demo import load_sample_reports
from cancerllm.evidence import find_span
from cancerllm.schema import AnswerDetail, ItemDetail, Phenotype, PhenotypeResult, Provenance

CREATED = "2025-01-02T03:04:05+00:00"
SAMPLES: list[dict[str, Any]] = load_sample_reports()


def provenance(text: str) -> Provenance:
    """A provenance record for ``text``, as ``extract`` would write it."""
    return Provenance(model="scripted-test-model", library_version=cancerllm.__version__,
                      settings={"max_new_tokens": 50}, created=CREATED,
                      input_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


def scripted_result(text: str, answers: dict[str, list[str] | None], *, rid: str | None = None,
                    confidence: float = 0.9) -> PhenotypeResult:
    """A result answering ``answers`` about ``text``, with details (spans from ``find_span``), as the
    extractor builds them: not-found items have a lower confidence and are marked for review."""
    result = PhenotypeResult(id=rid, provenance=provenance(text))
    for name, items in answers.items():
        result.set(name, items)
        result.raw[name] = ", ".join(items) if items else "Not relevant"
        if not items:
            result.details[name] = AnswerDetail(status="not_relevant", confidence=confidence)
            continue
        details = []
        for value in items:
            span = find_span(text, value)
            found = span.found
            details.append(ItemDetail(value=value, raw=result.raw[name],
                                      span=(span.start, span.end) if found else None,  # type: ignore[arg-type]
                                      match=span.match, confidence=confidence if found else confidence / 2,
                                      needs_review=not found))
        result.details[name] = AnswerDetail(status="answered", items=details, confidence=confidence,
                                            needs_review=any(d.needs_review for d in details))
    return result


def gold_answers(labels: dict[str, Any]) -> dict[str, list[str] | None]:
    """The eight phenotype answers of a sample report, from its registry labels (stage with its TNM items)."""
    def one(key: str) -> list[str] | None:
        return [labels[key]] if labels.get(key) else None

    stage = [labels[k] for k in ("stage", "pT", "pN", "pM") if labels.get(k)] or None
    markers = [k for k in ("ER", "PR", "HER2") if labels.get(k)]
    return {
        Phenotype.TUMOR_SIZE.value: one("tumor_size"),
        Phenotype.HISTOLOGICAL_TYPE.value: one("histology"),
        Phenotype.RECEPTORS.value: [m.lower() for m in markers] or None,
        Phenotype.RECEPTOR_STATUS.value: [f"{m} {labels[m].lower()}" for m in markers] or None,
        Phenotype.LATERALITY.value: one("laterality"),
        Phenotype.STAGE.value: stage,
        Phenotype.TUMOR_LOCATION.value: one("site"),
        Phenotype.GRADE.value: one("grade"),
    }


def sample_result(record: dict[str, Any]) -> tuple[PhenotypeResult, str]:
    """``(result, text)`` for one sample report."""
    text = record["text"]
    return scripted_result(text, gold_answers(record["labels"]), rid=record["patient_id"]), text
