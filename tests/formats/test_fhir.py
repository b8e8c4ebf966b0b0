"""FHIR R4 Bundles of extraction results: valid (``fhir.resources``), mCODE codes that are all verified,
evidence offsets that point at the evidence, and clear errors for bad input."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cancerllm.errors import DataFormatError, InputError, MissingDependencyError
from cancerllm.formats import (
    EXT_CONFIDENCE,
    EXT_EVIDENCE_SPAN,
    EXT_NEEDS_REVIEW,
    EXT_PHENOTYPE,
    IcdO3Lookup,
    to_fhir_bundle,
    validate_fhir_bundle,
)
from cancerllm.formats._codes import AJCC, AJCC_CODE_SOURCES, CODES, ICDO3
from cancerllm.schema import AnswerDetail, ItemDetail, PhenotypeResult

from . import SAMPLES, sample_result, scripted_result

DOCS = Path(__file__).resolve().parents[2] / "docs" / "formats.md"
IDS = [s["patient_id"] for s in SAMPLES]


def _resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _ext(resource, url):
    return next((e for e in resource.get("extension", []) if e["url"] == url), None)


def _span(obs):
    ext = _ext(obs, EXT_EVIDENCE_SPAN)
    return {e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in ext["extension"]} if ext else None


def _codings(obj):
    if isinstance(obj, dict):
        if "system" in obj and "code" in obj and set(obj) <= {"system", "code", "display", "version"}:
            yield obj
        for v in obj.values():
            yield from _codings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _codings(v)


def _obs(bundle, code_text_prefix):
    return [o for o in _resources(bundle, "Observation") if o["code"]["text"].startswith(code_text_prefix)]


def _loinc(obs):
    return [c["code"] for c in obs["code"].get("coding", [])]


def _value_codes(obs):
    return {(c["system"], c["code"]) for c in obs.get("valueCodeableConcept", {}).get("coding", [])}


# ------------------------------------------------------------------------------------------ the sample reports
@pytest.mark.parametrize("record", SAMPLES, ids=IDS)
def test_bundle_of_each_sample_report_is_valid_fhir(record):
    pytest.importorskip("fhir.resources")
    result, text = sample_result(record)
    bundle = to_fhir_bundle(result, text, patient_reference="Patient/example", validate=True)
    parsed = validate_fhir_bundle(bundle)
    assert type(parsed).__module__ == "fhir.resources.R4B.bundle" and parsed.type == "collection"
    assert json.loads(json.dumps(bundle)) == bundle  # plain JSON


@pytest.mark.parametrize("record", SAMPLES, ids=IDS)
def test_bundle_links_report_document_and_one_observation_per_value(record):
    result, text = sample_result(record)
    bundle = to_fhir_bundle(result, text, patient_reference="Patient/p1")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert bundle["timestamp"] == result.provenance.created
    urls = {e["fullUrl"] for e in bundle["entry"]}
    [doc], [report] = _resources(bundle, "DocumentReference"), _resources(bundle, "DiagnosticReport")
    observations = _resources(bundle, "Observation")
    assert report["status"] == "final" and _loinc(report) == ["11526-1"]
    assert [r["reference"] for r in report["result"]] == [f"urn:uuid:{o['id']}" for o in observations]
    assert all(r["reference"] in urls for r in report["result"])
    assert base64.b64decode(doc["content"][0]["attachment"]["data"]).decode("utf-8") == text
    for obs in observations:
        assert obs["derivedFrom"] == [{"reference": f"urn:uuid:{doc['id']}"}]
        assert obs["subject"] == {"reference": "Patient/p1"} and obs["status"] == "preliminary"
        assert obs["code"]["text"] and ("valueCodeableConcept" in obs or "valueString" in obs
                                        or "component" in obs or "note" in obs)
    # every answered item is an Observation (stage items with several TNM parts give one per part)
    phenotypes = [_ext(o, EXT_PHENOTYPE)["valueString"] for o in observations]
    for name, detail in result.details.items():
        if detail.status == "answered" and name not in ("stage", "receptors"):
            assert phenotypes.count(name) == len(detail.items), name
        if detail.status == "not_relevant":
            assert name not in phenotypes
    assert phenotypes.count("stage") >= len(result.details["stage"].items)


@pytest.mark.parametrize("record", SAMPLES, ids=IDS)
def test_evidence_extensions_point_at_the_evidence(record):
    result, text = sample_result(record)
    bundle = to_fhir_bundle(result, text)
    spans = {(i.value, i.span) for d in result.details.values() for i in d.items}
    seen_not_found = False
    for obs in _resources(bundle, "Observation"):
        span = _span(obs)
        assert span is not None and span["match"] in ("exact", "fuzzy", "not_found")
        assert _ext(obs, EXT_NEEDS_REVIEW)["valueBoolean"] is (span["match"] == "not_found")
        assert 0 < _ext(obs, EXT_CONFIDENCE)["valueDecimal"] <= 1
        if span["match"] == "not_found":
            seen_not_found = True
            assert "start" not in span and "text" not in span
            continue
        assert text[span["start"]:span["end"]] == span["text"]
        # the span is the item's, or (a TNM part of a longer item) lies inside it
        assert any(s is not None and s[0] <= span["start"] <= span["end"] <= s[1] for _, s in spans)
    assert seen_not_found or record["patient_id"] != "TCGA-AR-A255"  # registry values the report lacks


def test_every_code_emitted_is_a_verified_code():
    registry = {(c.system, c.code) for c in CODES.values()}
    for record in SAMPLES:
        result, text = sample_result(record)
        for coding in _codings(to_fhir_bundle(result, text)):
            if coding["system"] == AJCC:
                assert re.fullmatch(r"(?:y?[pc])?[TNM](?:X|is|[0-4](?:mi|[a-d][12]?)?)|[0-4](?:[A-C][12]?)?",
                                    coding["code"]), coding
            else:
                assert (coding["system"], coding["code"]) in registry, coding
    assert all(c.source.startswith("https://") for c in CODES.values()) and AJCC_CODE_SOURCES


def test_docs_table_lists_every_code_with_its_source():
    doc = DOCS.read_text(encoding="utf-8")
    for name, code in CODES.items():
        row = next((line for line in doc.splitlines() if f"`{code.code}`" in line and code.source in line), None)
        assert row is not None, f"docs/formats.md lacks a table row with `{code.code}` and {code.source} ({name})"
    for url in AJCC_CODE_SOURCES:
        assert url in doc


# ------------------------------------------------------------------------------------------ values and codes
def test_stage_answer_with_stage_groups_and_tnm_items():
    text = "Final: pT2 pN0 (0/12) M0. AJCC Stage IIA. Also pT1cN1mi cM0 and MX, ypT0."
    items = ["Stage IIA", "pT2", "pN0", "M0", "pT1cN1mi cM0", "MX", "ypT0", "unknown stage"]
    bundle = to_fhir_bundle(scripted_result(text, {"stage": items}), text)
    rows = [(o["code"].get("coding", [{}])[0].get("code"), o["valueCodeableConcept"]["text"],
             sorted(c for _, c in _value_codes(o))) for o in _resources(bundle, "Observation")]
    assert rows == [
        ("21902-2", "Stage IIA", ["2A"]),
        ("21899-0", "pT2", ["pT2"]),
        ("21900-6", "pN0", ["pN0"]),
        ("21907-1", "M0", ["cM0"]),  # AJCC 8: M0 is clinical (as mCODE's own example codes it)
        ("21899-0", "pT1c", ["pT1c"]),
        ("21900-6", "N1mi", ["pN1mi"]),
        ("21907-1", "cM0", ["cM0"]),
        ("21907-1", "MX", []),  # not an AJCC 8 category: text only
        ("21899-0", "ypT0", ["ypT0"]),
        (None, "unknown stage", []),
    ]
    parts = [o for o in _resources(bundle, "Observation") if o["valueCodeableConcept"]["text"] in ("pT1c", "N1mi")]
    for obs in parts:  # a part of a longer item points at the part itself
        span = _span(obs)
        assert text[span["start"]:span["end"]] == obs["valueCodeableConcept"]["text"]


def test_receptor_status_uses_marker_loincs_and_positive_negative_answers():
    text = "ER positive (90%). PR: negative. HER2 2+ equivocal. Estrogen receptor tested."
    answers = {"receptors": ["er", "pr", "her2"],
               "receptor_status": ["ER positive", "PR negative", "HER2 equivocal"]}
    bundle = to_fhir_bundle(scripted_result(text, answers), text)
    markers = {_loinc(o)[0]: _value_codes(o) for o in _resources(bundle, "Observation")}
    assert markers == {
        "85337-4": {("http://loinc.org", "LA6576-8"), ("http://snomed.info/sct", "10828004")},
        "85339-0": {("http://loinc.org", "LA6577-6"), ("http://snomed.info/sct", "260385009")},
        "48676-1": set(),  # equivocal: no verified answer code, text only
    }  # the receptors answer adds nothing: each receptor has a status Observation
    bare = to_fhir_bundle(scripted_result(text, {"receptors": ["er"], "receptor_status": ["positive"]}), text)
    [obs] = _resources(bare, "Observation")
    assert _loinc(obs) == ["85337-4"] and ("http://loinc.org", "LA6576-8") in _value_codes(obs)
    named = to_fhir_bundle(scripted_result(text, {"receptors": ["her2"]}), text)
    [obs] = _resources(named, "Observation")
    assert _loinc(obs) == ["48676-1"] and "valueCodeableConcept" not in obs and obs["note"]


def test_grade_laterality_size_histology_and_site_values():
    text = "Right breast, infiltrating duct carcinoma, grade 3 (G3), high grade, 1.3 x 1.3 x 1.2 cm; node 25 mm."
    answers = {"grade": ["G3", "high grade", "grade 9"], "laterality": ["Right", "both sides"],
               "tumor_size": ["1.3 x 1.3 x 1.2 cm", "25 mm", "large"],
               "histological_type": ["infiltrating duct carcinoma"], "tumor_location": ["breast"]}
    bundle = to_fhir_bundle(scripted_result(text, answers), text)
    grades = [_value_codes(o) for o in _obs(bundle, "Histologic grade")]
    assert grades == [{("http://snomed.info/sct", "61026006")}, {("http://snomed.info/sct", "1155707008")}, set()]
    sides = [_value_codes(o) for o in _obs(bundle, "Laterality")]
    assert sides == [{("http://snomed.info/sct", "24028007")}, {("http://snomed.info/sct", "51440002")}]
    sizes = _obs(bundle, "Tumor size")
    assert [o.get("component", [{}])[0].get("valueQuantity") for o in sizes] == [
        {"value": 1.3, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"},
        {"value": 25.0, "unit": "mm", "system": "http://unitsofmeasure.org", "code": "mm"},
        None,
    ]
    assert sizes[2]["valueString"] == "large" and _loinc(sizes[0]) == ["21889-1"]
    [histology], [site] = _obs(bundle, "Histologic type"), _obs(bundle, "Tumor location")
    assert _loinc(histology) == ["31206-6"] and _loinc(site) == ["21855-2"]
    # the package ships no ICD-O-3 lists: no ICD-O-3 code, the text only
    assert _value_codes(histology) == set() and histology["valueCodeableConcept"]["text"] == answers[
        "histological_type"][0]


def _write_lists(tmp_path):
    morph = tmp_path / "Morphenglish.txt"
    morph.write_text('Code\tStruct\tLabel\r\n8500/3\ttitle\t"Infiltrating duct carcinoma, NOS"\r\n'
                     '8500/3\tsub\t"Ductal carcinoma, NOS"\r\n8140/3\ttitle\t"Adenocarcinoma, NOS"\r\n'
                     '8000/1\tsub\tTumor\r\n8000/3\tsub\tTumor\r\n'
                     '"8634/3\r\n8634/3"\ttitle\t"Sertoli-Leydig cell tumor, poorly differentiated"\r\n',
                     encoding="utf-8")
    topo = tmp_path / "Topoenglish.txt"
    topo.write_text('Kode\tLvl\tTitle\r\nC50\t3\tBREAST\r\nC50.9\t4\t"Breast, NOS"\r\nC44.5\tk\tSkin of:\r\n'
                    'C44.5\tb\tbreast\r\nC64.9\tincl\t"Renal, NOS"\r\n', encoding="utf-8")
    return morph, topo


def test_icdo3_codes_come_only_from_a_code_list(tmp_path):
    morph, topo = _write_lists(tmp_path)
    lookup = IcdO3Lookup.from_files(morph, topo)
    assert lookup.morphology("Ductal carcinoma") == "8500/3" and lookup.topography("breast") == "C50.9"
    assert lookup.morphology("tumor") is None  # a label naming two codes is dropped
    assert lookup.topography("renal") == "C64.9" and IcdO3Lookup.default() is None  # none shipped
    # a code quoted across a line break, as in the CANTEMIST list, is read
    assert lookup.morphology("Sertoli-Leydig cell tumor, poorly differentiated") == "8634/3"
    text = "Ductal carcinoma, NOS of the breast; tumour."
    answers = {"histological_type": ["Ductal carcinoma, NOS", "Tumor"], "tumor_location": ["Breast"]}
    bundle = to_fhir_bundle(scripted_result(text, answers), text, icdo3=lookup)
    assert [_value_codes(o) for o in _obs(bundle, "Histologic type")] == [{(ICDO3, "8500/3")}, set()]
    assert [_value_codes(o) for o in _obs(bundle, "Tumor location")] == [{(ICDO3, "C50.9")}]
    off = to_fhir_bundle(scripted_result(text, answers), text, icdo3=False)
    assert not [c for c in _codings(off) if c["system"] == ICDO3]


def test_icdo3_lists_with_errors_are_reported_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("Code\tStruct\tLabel\n85003\ttitle\tDuct carcinoma\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad.txt:2: malformed ICD-O-3 code"):
        IcdO3Lookup.from_files(morphology=bad)
    with pytest.raises(InputError, match="ICD-O-3 code list not found"):
        IcdO3Lookup.from_files(topography=tmp_path / "missing.txt")
    with pytest.raises(InputError, match="icdo3="):
        to_fhir_bundle(PhenotypeResult(grade=["G1"]), "G1", icdo3="yes")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ other behaviour
def test_same_result_gives_the_same_bundle_and_not_relevant_gives_no_observation():
    result, text = sample_result(SAMPLES[0])
    assert to_fhir_bundle(result, text) == to_fhir_bundle(result, text)
    other = to_fhir_bundle(result, text, report_id="another")
    assert other["id"] != to_fhir_bundle(result, text)["id"]
    text2 = "No tumour seen."
    empty = to_fhir_bundle(scripted_result(text2, {"stage": None, "grade": None}), text2)
    assert _resources(empty, "Observation") == [] and "result" not in _resources(empty, "DiagnosticReport")[0]


def test_without_text_or_details_there_are_no_offsets_but_the_bundle_is_valid():
    result = PhenotypeResult(id="r9", grade=["G2"], laterality=["left"], custom={"margin": ["clear"]})
    bundle = to_fhir_bundle(result, include_text=False)
    observations = _resources(bundle, "Observation")
    assert [_span(o) for o in observations] == [None, None, None]
    assert [o["code"]["text"] for o in observations] == ["Laterality", "Histologic grade", "margin"]
    assert observations[2]["code"] == {"text": "margin"} and observations[2]["valueString"] == "clear"
    [doc] = _resources(bundle, "DocumentReference")
    assert "data" not in doc["content"][0]["attachment"]
    # without details the spans are looked up in the text; the text is then embedded
    looked_up = to_fhir_bundle(result, "Grade G2, LEFT side.")
    private = to_fhir_bundle(result, "Grade G2, LEFT side.", include_text=False)
    assert [sorted(_span(o)) for o in _resources(private, "Observation")] == [
        ["end", "match", "start"], ["end", "match", "start"], ["match"]]  # offsets, no evidence text
    assert "data" not in _resources(private, "DocumentReference")[0]["content"][0]["attachment"]
    # laterality comes before grade (phenotype order), then the custom question
    assert [_span(o)["match"] for o in _resources(looked_up, "Observation")] == ["fuzzy", "exact", "not_found"]
    pytest.importorskip("fhir.resources")
    validate_fhir_bundle(bundle)
    validate_fhir_bundle(looked_up)


def test_bad_input_is_refused_with_a_clear_message():
    result, text = sample_result(SAMPLES[1])
    with pytest.raises(InputError, match="pass a cancerllm.schema.PhenotypeResult"):
        to_fhir_bundle({"grade": ["G2"]}, text)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not the text it was extracted from"):
        to_fhir_bundle(result, text + " ")
    with pytest.raises(InputError, match="str or None"):
        to_fhir_bundle(result, b"bytes")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="has an error"):
        to_fhir_bundle(PhenotypeResult(id="x", error="empty text"), "")
    with pytest.raises(InputError, match="observation_status"):
        to_fhir_bundle(result, text, observation_status="done")  # type: ignore[arg-type]
    outside = PhenotypeResult(id="y", grade=["G2"])
    outside.details["grade"] = AnswerDetail(status="answered",
                                            items=[ItemDetail(value="G2", span=(40, 42), match="exact")])
    with pytest.raises(InputError, match=r"lies outside the text \(8 characters\)"):
        to_fhir_bundle(outside, "Grade G2")
    with pytest.raises(InputError, match="cannot name the report"):
        to_fhir_bundle(PhenotypeResult(grade=["G2"]))


def test_invalid_bundles_fail_validation_without_showing_values():
    pytest.importorskip("fhir.resources")
    result, text = sample_result(SAMPLES[0])
    bundle = to_fhir_bundle(result, text)
    obs = bundle["entry"][2]["resource"]
    del obs["code"]  # required
    obs["valueInteger"] = "SECRET-VALUE"  # not an integer
    with pytest.raises(InputError, match=r"is not valid FHIR R4B \(2 error\(s\)\): entry.2.resource.code: Field "
                                         r"required; entry.2.resource.valueInteger") as err:
        validate_fhir_bundle(bundle)
    assert "SECRET-VALUE" not in str(err.value)
    with pytest.raises(InputError, match="resourceType 'Bundle'"):
        validate_fhir_bundle({"resourceType": "Observation"})
    bundle["entry"][2]["resource"] = {"resourceType": "NoSuchThing"}
    with pytest.raises(InputError, match="unknown FHIR resource type 'NoSuchThing'"):
        validate_fhir_bundle(bundle)


def test_validation_without_fhir_resources_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "fhir.resources", None)
    with pytest.raises(MissingDependencyError, match="fhir.resources is required for validating FHIR bundles"):
        validate_fhir_bundle({"resourceType": "Bundle", "type": "collection"})
    bundle = to_fhir_bundle(PhenotypeResult(id="r", grade=["G1"]), "G1")  # building needs no package
    assert bundle["type"] == "collection"


def test_importing_the_formats_imports_no_optional_package():
    code = ("import sys, cancerllm.formats; "
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & {'fhir', 'pandas', 'pyarrow', "
            "'torch', 'transformers'})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
