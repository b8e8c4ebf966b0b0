"""Every code the output formats emit, each with the public source it was checked against.

Nothing here is guessed: a code is listed only when a published specification or implementation guide shows
it with this meaning (the ``source`` of each :class:`Code`).  A value with no listed code is written as text
only.  ``docs/formats.md`` has the same table; a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AJCC_CODE_SOURCES", "CODES", "Code", "SYSTEMS"]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
AJCC = "http://cancerstaging.org"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

_MCODE_STU2 = "https://hl7.org/fhir/us/mcode/STU2"
_MCODE_FSH = "https://github.com/HL7/fhir-mCODE-ig/blob/master/input/fsh"

#: Code system URIs and where their canonical URI is documented.
SYSTEMS: dict[str, str] = {
    LOINC: f"{_MCODE_FSH}/AL_CodeSystems.fsh",
    SNOMED: f"{_MCODE_FSH}/AL_CodeSystems.fsh",
    UCUM: f"{_MCODE_FSH}/AL_CodeSystems.fsh",
    AJCC: f"{_MCODE_FSH}/AL_CodeSystems.fsh",
    ICDO3: f"{_MCODE_FSH}/AL_CodeSystems.fsh",
    OBS_CATEGORY: f"{_MCODE_FSH}/AL_CodeSystems.fsh",
}


@dataclass(frozen=True)
class Code:
    """One verified code.

    Attributes:
        system: the code system URI.
        code: the code.
        display: its display text, as the source shows it.
        source: the public page where the code is shown with this meaning.
    """

    system: str
    code: str
    display: str
    source: str

    def coding(self) -> dict[str, str]:
        """The FHIR ``Coding`` of this code."""
        return {"system": self.system, "code": self.code, "display": self.display}


def _c(system: str, code: str, display: str, source: str) -> Code:
    return Code(system, code, display, source)


#: name -> code.  Keys are what the builders use; the docs table lists them all.
CODES: dict[str, Code] = {
    # ----- the report
    "report": _c(LOINC, "11526-1", "Pathology study", "https://www.healthassure.in/codes/loinc-11526-1-pathology-study"),
    "report_category": _c(
        LOINC, "LP7839-6", "Pathology",
        "https://hl7.org/fhir/uv/ihe-sdc-ecc/STU1/DiagnosticReport-eCCDiagnosticReport0.ttl.html"),
    "laboratory": _c(OBS_CATEGORY, "laboratory", "Laboratory",
                     f"{_MCODE_STU2}/Observation-tumor-marker-test-er-jenny-m.html"),
    # ----- TNM categories (mCODE staging-type value sets)
    "t_clinical": _c(LOINC, "21905-5", "Primary tumor.clinical [Class] Cancer",
                     f"{_MCODE_STU2}/ValueSet-mcode-observation-codes-primary-tumor-vs.json.html"),
    "t_pathologic": _c(LOINC, "21899-0", "Primary tumor.pathology Cancer",
                       f"{_MCODE_STU2}/ValueSet-mcode-observation-codes-primary-tumor-vs.json.html"),
    "n_clinical": _c(LOINC, "21906-3", "Regional lymph nodes.clinical [Class] Cancer",
                     f"{_MCODE_STU2}/ValueSet-mcode-observation-codes-regional-nodes-vs.json.html"),
    "n_pathologic": _c(LOINC, "21900-6", "Regional lymph nodes.pathology [Class] Cancer",
                       f"{_MCODE_STU2}/ValueSet-mcode-observation-codes-regional-nodes-vs.json.html"),
    "m_clinical": _c(LOINC, "21907-1", "Distant metastases.clinical [Class] Cancer",
                     f"{_MCODE_STU2}/ValueSet-mcode-observation-codes-distant-metastases-vs.json.html"),
    "m_pathologic": _c(LOINC, "21901-4", "Distant metastases.pathology [Class] Cancer",
                       f"{_MCODE_STU2}/ValueSet-mcode-observation-codes-distant-metastases-vs.json.html"),
    "stage_clinical": _c(LOINC, "21908-9", "Stage group.clinical Cancer",
                         "https://build.fhir.org/ig/HL7/fhir-mCODE-ig/"
                         "ValueSet-mcode-tnm-stage-group-staging-type-max-vs.json.html"),
    "stage_pathologic": _c(LOINC, "21902-2", "Stage group.pathology Cancer",
                           f"{_MCODE_STU2}.1/Observation-tnm-pathologic-stage-group-jenny-m.html"),
    # ----- tumour markers (mCODE TumorMarkerTest examples) and their results
    "er": _c(LOINC, "85337-4", "Estrogen receptor Ag [Presence] in Breast cancer specimen by Immune stain",
             f"{_MCODE_STU2}/Observation-tumor-marker-test-er-jenny-m.html"),
    "pr": _c(LOINC, "85339-0", "Progesterone receptor Ag [Presence] in Breast cancer specimen by Immune stain",
             f"{_MCODE_STU2}/Observation-tumor-marker-test-pr-jenny-m.html"),
    "her2": _c(LOINC, "48676-1", "HER2 [Interpretation] in Tissue",
               f"{_MCODE_STU2}/Observation-tumor-marker-test-her2-jenny-m.html"),
    "positive_loinc": _c(LOINC, "LA6576-8", "Positive", f"{_MCODE_STU2}/Observation-tumor-marker-test-er-jenny-m.html"),
    "negative_loinc": _c(LOINC, "LA6577-6", "Negative", f"{_MCODE_STU2}/Observation-tumor-marker-test-pr-jenny-m.html"),
    "positive_snomed": _c(SNOMED, "10828004", "Positive (qualifier value)",
                          "https://hl7.org/fhir/us/covid19library/informative1/ValueSet-covid19-pos-neg-vs.xml.html"),
    "negative_snomed": _c(SNOMED, "260385009", "Negative (qualifier value)",
                          "https://hl7.org/fhir/us/covid19library/informative1/ValueSet-covid19-pos-neg-vs.xml.html"),
    # ----- histology, site, grade, size
    "histology": _c(LOINC, "31206-6", "Behavior ICD-O-3 Cancer", f"{_MCODE_FSH}/SD_Histology.fsh"),
    "site": _c(LOINC, "21855-2", "Primary site Cancer",
               "https://www.healthassure.in/codes/loinc-21855-2-primary-site-cancer"),
    "grade": _c(LOINC, "33732-9", "Histology grade [Identifier] in Cancer specimen",
                "https://www.hl7.org/fhir/us/mcode/2024May/Observation-histologic-grade-intermediate.html"),
    "g1": _c(SNOMED, "54102005", "G1 grade (finding)",
             "https://build.fhir.org/ig/HL7LT/ig-lt-colorectal/lt/ValueSet-scc-grading.html"),
    "g2": _c(SNOMED, "1663004", "G2 grade (finding)",
             "https://build.fhir.org/ig/HL7LT/ig-lt-colorectal/lt/ValueSet-scc-grading.html"),
    "g3": _c(SNOMED, "61026006", "G3 grade",
             "https://build.fhir.org/ig/hl7-eu/pcsp/branches/__default/ValueSet-grade-test-vs.json"),
    "g4": _c(SNOMED, "258245003", "G4 grade",
             "https://build.fhir.org/ig/hl7-eu/pcsp/branches/__default/ValueSet-grade-test-vs.json"),
    "grade_low": _c(SNOMED, "1155708003", "Low histologic grade (qualifier value)",
                    "https://hl7.org/fhir/us/mcode/ValueSet-mcode-histologic-grade-vs.html"),
    "grade_high": _c(SNOMED, "1155707008", "High histologic grade (qualifier value)",
                     "https://hl7.org/fhir/us/mcode/ValueSet-mcode-histologic-grade-vs.html"),
    "tumor_size": _c(LOINC, "21889-1", "Size Tumor", f"{_MCODE_STU2}/Observation-tumor-size-pathology.html"),
    "tumor_size_max": _c(LOINC, "33728-7", "Size.maximum dimension in Tumor",
                         f"{_MCODE_STU2}/Observation-tumor-size-pathology.html"),
    "cm": _c(UCUM, "cm", "cm", "https://hl7.org/fhir/us/mcode/ValueSet-mcode-tumor-size-units-vs.html"),
    "mm": _c(UCUM, "mm", "mm", "https://hl7.org/fhir/us/mcode/ValueSet-mcode-tumor-size-units-vs.html"),
    # ----- laterality (mCODE LateralityQualifierVS)
    "left": _c(SNOMED, "7771000", "Left (qualifier value)",
               "https://hl7.org/fhir/us/mcode/ValueSet-mcode-laterality-qualifier-vs.html"),
    "right": _c(SNOMED, "24028007", "Right (qualifier value)",
                "https://hl7.org/fhir/us/mcode/ValueSet-mcode-laterality-qualifier-vs.html"),
    "bilateral": _c(SNOMED, "51440002", "Right and left (qualifier value)",
                    "https://hl7.org/fhir/us/mcode/ValueSet-mcode-laterality-qualifier-vs.html"),
    "midline": _c(SNOMED, "399488007", "Midline (qualifier value)",
                  "https://hl7.org/fhir/us/mcode/ValueSet-mcode-laterality-qualifier-vs.html"),
}

#: Where the AJCC category-code form (``pT3``, ``pN0``, ``cM0``, stage group ``2B`` for IIB) is shown.
AJCC_CODE_SOURCES: tuple[str, ...] = (
    f"{_MCODE_STU2}/Observation-tnm-pathologic-regional-nodes-category-jenny-m.html",
    f"{_MCODE_STU2}/Observation-tnm-clinical-distant-metastases-category-cM0.html",
    "https://hl7.org/fhir/us/mcode/STU1/Observation-mCODETNMPathologicalPrimaryTumorCategoryExample01.html",
    f"{_MCODE_STU2}.1/Observation-tnm-pathologic-stage-group-jenny-m.html",
)
