"""Extraction results in the formats hospitals load: FHIR R4 Bundles (mCODE Observations) and OMOP CDM v5.4
``NOTE_NLP`` rows, each value with its evidence in the report (``docs/formats.md``); a self-contained HTML
review page (``docs/review.md``); and the command line's result files (:mod:`cancerllm.formats.results`).

Importing this package imports no optional dependency: ``fhir.resources`` is needed only to validate a
Bundle, ``pandas`` + ``pyarrow`` only to write Parquet.
"""

from __future__ import annotations

from ._icdo3 import IcdO3Lookup
from .fhir import (
    EXT_CONFIDENCE,
    EXT_EVIDENCE_SPAN,
    EXT_NEEDS_REVIEW,
    EXT_NLP_SYSTEM,
    EXT_PHENOTYPE,
    EXTENSION_BASE,
    to_fhir_bundle,
    validate_fhir_bundle,
)
from .omop import NOTE_NLP_COLUMNS, to_note_nlp_rows, write_note_nlp
from .review import review_html, write_review

__all__ = [
    "EXTENSION_BASE",
    "EXT_CONFIDENCE",
    "EXT_EVIDENCE_SPAN",
    "EXT_NEEDS_REVIEW",
    "EXT_NLP_SYSTEM",
    "EXT_PHENOTYPE",
    "IcdO3Lookup",
    "NOTE_NLP_COLUMNS",
    "review_html",
    "to_fhir_bundle",
    "to_note_nlp_rows",
    "validate_fhir_bundle",
    "write_note_nlp",
    "write_review",
]
