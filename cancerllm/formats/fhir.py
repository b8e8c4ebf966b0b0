"""FHIR R4 Bundles of extraction results, following mCODE where mCODE has a profile for the value.

:func:`to_fhir_bundle` turns one :class:`~cancerllm.schema.PhenotypeResult` into a Bundle (``type:
"collection"``) holding a ``DocumentReference`` for the report text, a ``DiagnosticReport`` (status ``final``,
LOINC 11526-1 "Pathology study") whose ``result`` lists one ``Observation`` per extracted value, and those
Observations: TNM categories and stage groups (mCODE TNM codes, AJCC category codes), tumour markers ER / PR /
HER2 with positive / negative answers, histology and site (ICD-O-3 codes when a code list is at hand), grade,
laterality and tumour size (UCUM ``cm`` / ``mm``).  Every Observation carries its evidence (offsets into the
report text, match kind, the evidence text), the model's confidence and the review mark as extensions under
the ``cancerllm`` namespace (:data:`EXTENSION_BASE`), and ``derivedFrom`` the DocumentReference.  Values
without a verified code are text only; every code is listed with its source in ``docs/formats.md``.

:func:`validate_fhir_bundle` checks a Bundle (and each resource in it) with the ``fhir.resources`` package
(FHIR R4B models, the ``R4B`` subpackage; R4B does not change the resources written here).  The builder
itself needs no optional package.

Example:
    >>> from cancerllm.schema import PhenotypeResult
    >>> bundle = to_fhir_bundle(PhenotypeResult(grade=["G2"]), "Fuhrman grade G2.", report_id="r1")
    >>> [e["resource"]["resourceType"] for e in bundle["entry"]]
    ['DocumentReference', 'DiagnosticReport', 'Observation']
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from typing import Any, Literal

from .._optional import require
from ..errors import InputError
from ..schema import Phenotype, PhenotypeResult
from ._codes import AJCC, CODES, ICDO3, UCUM
from ._icdo3 import IcdO3Lookup, resolve_lookup
from ._items import (
    EvidenceItem,
    StagePart,
    check_result,
    evidence_items,
    grade_key,
    laterality_key,
    nlp_system,
    parse_receptor_status,
    parse_size,
    receptor_name,
    split_stage,
)

__all__ = [
    "EXTENSION_BASE",
    "EXT_CONFIDENCE",
    "EXT_EVIDENCE_SPAN",
    "EXT_NEEDS_REVIEW",
    "EXT_NLP_SYSTEM",
    "EXT_PHENOTYPE",
    "SID_INPUT_SHA256",
    "SID_REPORT",
    "to_fhir_bundle",
    "validate_fhir_bundle",
]

#: The namespace of the extensions and identifier systems defined by cancerllm (``.invalid`` on purpose: the
#: URLs name our definitions, documented in ``docs/formats.md``; nothing is served there).
EXTENSION_BASE = "https://cancerllm.example.invalid/fhir/StructureDefinition/"
#: Complex extension: ``match`` (valueCode exact / fuzzy / not_found), ``start`` and ``end`` (valueInteger,
#: Python string offsets into the report text, ``text[start:end]``), ``text`` (valueString, the evidence).
EXT_EVIDENCE_SPAN = EXTENSION_BASE + "evidence-span"
#: valueDecimal: the model's probability (0-1) of the item's tokens.
EXT_CONFIDENCE = EXTENSION_BASE + "confidence"
#: valueBoolean: the item is below the confidence threshold, or has no evidence in the report.
EXT_NEEDS_REVIEW = EXTENSION_BASE + "needs-review"
#: valueString: the question the value answers (``stage``, ``grade``, ... or a custom question's name).
EXT_PHENOTYPE = EXTENSION_BASE + "phenotype"
#: valueString on the DiagnosticReport: the model and library version that extracted the values.
EXT_NLP_SYSTEM = EXTENSION_BASE + "nlp-system"
#: Identifier systems: the caller's report id, and the SHA-256 (hex) of the report text.
SID_REPORT = "https://cancerllm.example.invalid/fhir/sid/report-id"
SID_INPUT_SHA256 = "https://cancerllm.example.invalid/fhir/sid/input-sha256"

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://cancerllm.example.invalid/fhir")
_CODE_ONLY_TEXT: dict[str, str] = {
    Phenotype.LATERALITY.value: "Laterality",
    Phenotype.RECEPTOR_STATUS.value: "Receptor status",
}
ObservationStatus = Literal["registered", "preliminary", "final", "amended"]


def _cc(text: str, *codings: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"text": text}
    if codings:
        out["coding"] = list(codings)
    return out


def _laboratory() -> list[dict[str, Any]]:
    return [{"coding": [CODES["laboratory"].coding()]}]


def _ajcc(code: str) -> dict[str, str]:
    return {"system": AJCC, "code": code}


# ------------------------------------------------------------------------------------------ values per phenotype
_STAGE_CODE = {
    ("T", "pathologic"): "t_pathologic", ("T", "clinical"): "t_clinical",
    ("N", "pathologic"): "n_pathologic", ("N", "clinical"): "n_clinical",
    ("M", "pathologic"): "m_pathologic", ("M", "clinical"): "m_clinical",
    ("group", "pathologic"): "stage_pathologic", ("group", "clinical"): "stage_clinical",
}
_STAGE_TEXT = {"T": "Primary tumor (T) category", "N": "Regional lymph nodes (N) category",
               "M": "Distant metastases (M) category", "group": "Stage group", "unknown": "Cancer stage"}


def _stage(part: StagePart) -> dict[str, Any]:
    key = _STAGE_CODE.get((part.kind, part.timing))
    code = _cc(f"{_STAGE_TEXT[part.kind]}, {part.timing}" if key else _STAGE_TEXT[part.kind],
               *([CODES[key].coding()] if key else []))
    value = _cc(part.text, *([_ajcc(part.ajcc)] if part.ajcc else []))
    return {"code": code, "valueCodeableConcept": value}


_STATUS = {"positive": ("positive_loinc", "positive_snomed"), "negative": ("negative_loinc", "negative_snomed")}


def _marker(receptor: str | None, status: str | None, text: str) -> dict[str, Any]:
    code = _cc(CODES[receptor].display, CODES[receptor].coding()) if receptor else _cc("Receptor status")
    obs: dict[str, Any] = {"code": code, "category": _laboratory()}
    if status is None:
        obs["valueString"] = text
    else:
        obs["valueCodeableConcept"] = _cc(text, *(CODES[k].coding() for k in _STATUS.get(status, ())))
    return obs


def _grade(value: str) -> dict[str, Any]:
    key = grade_key(value)
    codes = {"g1": "g1", "g2": "g2", "g3": "g3", "g4": "g4", "high": "grade_high", "low": "grade_low"}
    value_cc = _cc(value, *([CODES[codes[key]].coding()] if key else []))
    return {"code": _cc("Histologic grade", CODES["grade"].coding()), "category": _laboratory(),
            "valueCodeableConcept": value_cc}


def _laterality(value: str) -> dict[str, Any]:
    key = laterality_key(value)
    return {"code": _cc(_CODE_ONLY_TEXT[Phenotype.LATERALITY.value]),
            "valueCodeableConcept": _cc(value, *([CODES[key].coding()] if key else []))}


def _size(value: str) -> dict[str, Any]:
    obs: dict[str, Any] = {"code": _cc("Tumor size", CODES["tumor_size"].coding()), "category": _laboratory()}
    parsed = parse_size(value)
    if parsed is None:
        obs["valueString"] = value
        return obs
    number, unit = parsed
    obs["component"] = [{
        "code": _cc(CODES["tumor_size_max"].display, CODES["tumor_size_max"].coding()),
        "valueQuantity": {"value": number, "unit": unit, "system": UCUM, "code": unit},
    }]
    obs["note"] = [{"text": f"As answered: {value}"}]
    return obs


def _histology(value: str, lookup: IcdO3Lookup | None) -> dict[str, Any]:
    code = lookup.morphology(value) if lookup is not None else None
    return {"code": _cc("Histologic type", CODES["histology"].coding()), "category": _laboratory(),
            "valueCodeableConcept": _cc(value, *([{"system": ICDO3, "code": code}] if code else []))}


def _site(value: str, lookup: IcdO3Lookup | None) -> dict[str, Any]:
    code = lookup.topography(value) if lookup is not None else None
    return {"code": _cc("Tumor location", CODES["site"].coding()),
            "valueCodeableConcept": _cc(value, *([{"system": ICDO3, "code": code}] if code else []))}


# ------------------------------------------------------------------------------------------ evidence extensions
def _sub_span(item: EvidenceItem, part: str, text: str | None) -> tuple[int, int] | None:
    """The span of ``part`` inside the item's evidence (for one of several TNM parts of an item)."""
    if item.span is None or text is None:
        return item.span
    start, end = item.span
    at = text[start:end].lower().find(part.lower())
    return (start + at, start + at + len(part)) if at >= 0 else item.span


def _extensions(item: EvidenceItem, text: str | None, span: tuple[int, int] | None) -> list[dict[str, Any]]:
    ext: list[dict[str, Any]] = [{"url": EXT_PHENOTYPE, "valueString": item.phenotype}]
    if item.match is not None:
        sub: list[dict[str, Any]] = [{"url": "match", "valueCode": item.match}]
        if span is not None:
            sub += [{"url": "start", "valueInteger": span[0]}, {"url": "end", "valueInteger": span[1]}]
            if text is not None and span[1] > span[0]:
                sub.append({"url": "text", "valueString": text[span[0]:span[1]]})
        ext.append({"url": EXT_EVIDENCE_SPAN, "extension": sub})
    if item.confidence is not None:
        ext.append({"url": EXT_CONFIDENCE, "valueDecimal": round(float(item.confidence), 6)})
    ext.append({"url": EXT_NEEDS_REVIEW, "valueBoolean": bool(item.needs_review)})
    return ext


# ------------------------------------------------------------------------------------------ the bundle
def _status_of(value: str, result: PhenotypeResult) -> tuple[str | None, str | None]:
    """The receptor and status of a receptor-status item; a bare status (``"positive"``) belongs to the one
    receptor the ``receptors`` answer names, when it names exactly one."""
    receptor, status = parse_receptor_status(value)
    if receptor is None:
        named = {r for r in (receptor_name(v) for v in result.receptors or []) if r}
        receptor = named.pop() if len(named) == 1 else None
    return receptor, status


def _observation_bodies(item: EvidenceItem, result: PhenotypeResult, lookup: IcdO3Lookup | None,
                        covered: set[str], text: str | None) -> list[tuple[dict[str, Any], tuple[int, int] | None]]:
    """``(observation fields, evidence span)`` for one item; empty for a receptor already given a status."""
    name, value = item.phenotype, item.value
    if name == Phenotype.STAGE.value:
        parts = split_stage(value)
        many = len(parts) > 1
        return [(_stage(p), _sub_span(item, p.text, text) if many else item.span) for p in parts]
    if name == Phenotype.RECEPTOR_STATUS.value:
        receptor, status = _status_of(value, result)
        return [(_marker(receptor, status, value), item.span)]
    if name == Phenotype.RECEPTORS.value:
        receptor = receptor_name(value)
        if receptor in covered:
            return []
        obs = _marker(receptor, None, value)
        del obs["valueString"]
        obs["note"] = [{"text": "Receptor named in the report; no status was extracted for it."}]
        return [(obs, item.span)]
    builders: dict[str, Callable[[str], dict[str, Any]]] = {
        Phenotype.GRADE.value: _grade,
        Phenotype.LATERALITY.value: _laterality,
        Phenotype.TUMOR_SIZE.value: _size,
        Phenotype.HISTOLOGICAL_TYPE.value: lambda v: _histology(v, lookup),
        Phenotype.TUMOR_LOCATION.value: lambda v: _site(v, lookup),
    }
    if name in builders:
        return [(builders[name](value), item.span)]
    return [({"code": _cc(name), "valueString": value}, item.span)]  # a custom question


def to_fhir_bundle(
    result: PhenotypeResult,
    text: str | None = None,
    *,
    report_id: str | None = None,
    patient_reference: str | None = None,
    icdo3: IcdO3Lookup | bool = True,
    observation_status: ObservationStatus = "preliminary",
    include_text: bool = True,
    validate: bool = False,
) -> dict[str, Any]:
    """One report's extraction result as a FHIR R4 Bundle (``type: "collection"``), a JSON-ready dict.

    The Bundle holds a ``DocumentReference`` (the report text, base64, when ``text`` is given and
    ``include_text``; its SHA-256 as an identifier), a ``DiagnosticReport`` (status ``final``) listing the
    Observations in ``result``, and one ``Observation`` per extracted value (a stage item with several TNM
    categories gives one per category), each ``derivedFrom`` the DocumentReference and carrying the
    evidence-span, confidence, needs-review and phenotype extensions.  "Not relevant" answers give no
    Observation; a ``receptors`` item whose receptor has a status item gives none either (the status
    Observation covers it).  Resource ids are UUIDs derived from the report id, the text's hash and the
    result's creation time, so converting the same result twice gives the same Bundle.

    Args:
        result: the extraction result (``extract`` / ``extract_many``, or built by hand).
        text: the report text the result was extracted from: evidence offsets refer to it, evidence texts are
            cut from it, and missing spans are looked up in it.  Checked against ``provenance.input_sha256``.
        report_id: the report's identifier (default: ``result.id``, else the text's hash).
        patient_reference: a FHIR reference for ``subject`` (e.g. ``"Patient/123"``); no subject without it.
        icdo3: ICD-O-3 codes for histology and site: ``True`` uses lists shipped in the package (none are
            today, so no code), ``False`` none, or an :class:`~cancerllm.formats.IcdO3Lookup`.
        observation_status: ``Observation.status``; ``"preliminary"`` by default, as the values are
            machine-extracted and not yet checked by a clinician.
        include_text: embed the report text: in the DocumentReference, and each Observation's evidence text
            (``False`` keeps the offsets only).
        validate: also check the Bundle with ``fhir.resources`` (:func:`validate_fhir_bundle`).

    Returns:
        The Bundle as a dict (``json.dumps`` it as is).

    Raises:
        InputError: not a result; a result with an ``error``; a text that is not the result's input; a span
            outside the text; an unknown ``observation_status``; with ``validate``, an invalid Bundle.
        MissingDependencyError: ``validate=True`` without ``fhir.resources``.
    """
    check_result(result, text)
    if result.error is not None:
        named = f" {result.id!r}" if result.id else ""
        raise InputError(f"result{named} has an error ({result.error!r}) and no answers; "
                         "filter out results whose .error is set before converting them")
    if observation_status not in ("registered", "preliminary", "final", "amended"):
        raise InputError(f"observation_status={observation_status!r}; use 'preliminary', 'final', "
                         "'registered' or 'amended'")
    lookup = resolve_lookup(icdo3)
    prov = result.provenance
    digest = prov.input_sha256 if prov else (hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None)
    rid = report_id or result.id or (digest[:16] if digest else None)
    if rid is None:
        raise InputError("cannot name the report: pass report_id=, a result with an id, or the text")
    seed = f"{rid}|{digest or ''}|{prov.created if prov else ''}"

    def new_id(kind: str, i: int = 0) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{seed}|{kind}|{i}"))

    subject = {"subject": {"reference": patient_reference}} if patient_reference else {}
    issued = {"issued": prov.created} if prov else {}
    doc_id = new_id("DocumentReference")
    doc_ref = {"reference": f"urn:uuid:{doc_id}"}

    attachment: dict[str, Any] = {"title": f"Pathology report {rid}"}
    if text is not None and include_text:
        data = text.encode("utf-8")
        attachment.update(contentType="text/plain; charset=utf-8", data=base64.b64encode(data).decode("ascii"),
                          size=len(data), hash=base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"))
    document: dict[str, Any] = {
        "resourceType": "DocumentReference", "id": doc_id, "status": "current",
        "identifier": [{"system": SID_REPORT, "value": rid}]
        + ([{"system": SID_INPUT_SHA256, "value": digest}] if digest else []),
        "type": _cc(CODES["report"].display, CODES["report"].coding()),
        **subject,
        "content": [{"attachment": attachment}],
    }

    items = evidence_items(result, text)
    covered = {r for it in items if it.phenotype == Phenotype.RECEPTOR_STATUS.value
               for r in [_status_of(it.value, result)[0]] if r}
    observations: list[dict[str, Any]] = []
    for item in items:
        for body, span in _observation_bodies(item, result, lookup, covered, text):
            obs = {"resourceType": "Observation", "id": new_id("Observation", len(observations)),
                   "extension": _extensions(item, text if include_text else None, span),
                   "status": observation_status}
            obs.update(body)
            obs.update(subject)
            obs.update(issued)
            obs["derivedFrom"] = [doc_ref]
            observations.append(obs)

    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport", "id": new_id("DiagnosticReport"),
        "identifier": [{"system": SID_REPORT, "value": rid}],
        "status": "final",
        "category": [{"coding": [CODES["report_category"].coding()]}],
        "code": _cc(CODES["report"].display, CODES["report"].coding()),
        **subject, **issued,
    }
    if prov is not None:
        report["extension"] = [{"url": EXT_NLP_SYSTEM, "valueString": nlp_system(result)}]
    if observations:
        report["result"] = [{"reference": f"urn:uuid:{o['id']}"} for o in observations]

    resources = [document, report, *observations]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle", "id": new_id("Bundle"), "type": "collection",
        "identifier": {"system": SID_REPORT, "value": rid},
        **({"timestamp": prov.created} if prov else {}),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
    if validate:
        validate_fhir_bundle(bundle)
    return bundle


def _invalid(where: str, exc: Any) -> InputError:
    reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:8])
    return InputError(f"{where} is not valid FHIR R4B ({exc.error_count()} error(s)): {reasons}")


def validate_fhir_bundle(bundle: dict[str, Any]) -> Any:
    """Check a Bundle and every resource in it against the FHIR R4B models of ``fhir.resources``: element
    names, data types, cardinalities and choice types (not terminology bindings, which ``fhir.resources`` does
    not check).

    Args:
        bundle: a Bundle as a dict (e.g. from :func:`to_fhir_bundle`).

    Returns:
        The parsed ``fhir.resources.R4B.bundle.Bundle``.

    Raises:
        MissingDependencyError: ``fhir.resources`` is not installed (``pip install fhir.resources``).
        InputError: the Bundle, or a resource in it, is not valid (the message lists the failing paths and
            reasons, never the values).
    """
    require("fhir.resources", feature="validating FHIR bundles")
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InputError("validate_fhir_bundle expects a dict with resourceType 'Bundle'")
    for i, entry in enumerate(bundle.get("entry") or []):
        kind = (entry.get("resource") or {}).get("resourceType") if isinstance(entry, dict) else None
        try:
            get_fhir_model_class(str(kind))
        except (KeyError, ValueError):
            raise InputError(f"Bundle.entry[{i}].resource: unknown FHIR resource type {kind!r}") from None
    try:  # validates every entry's resource with its own model too
        parsed = get_fhir_model_class("Bundle").model_validate(bundle)
    except ValidationError as exc:
        raise _invalid("the Bundle", exc) from None
    return parsed
