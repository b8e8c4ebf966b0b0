"""Task schema: the eight phenotype questions, task instructions, data records and result models.

The question and instruction strings are the CancerLLM paper's and its official code's, verbatim.
Users add their own phenotype questions with :class:`PhenotypeQuestion` (no package edits needed)::

    margin = PhenotypeQuestion(name="margin_status", question="What is the margin status in the given context?")
    extractor = model.phenotype_extractor(phenotypes=["stage", "grade", margin])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import InputError, UnknownBackendError

__all__ = [
    "DIAGNOSIS_INSTRUCTION",
    "NOT_RELEVANT",
    "PHENOTYPE_INSTRUCTION",
    "SINGLE_VALUED",
    "AnswerDetail",
    "ClinicalNote",
    "Diagnosis",
    "Example",
    "ItemDetail",
    "Phenotype",
    "PhenotypeQuestion",
    "PhenotypeResult",
    "Provenance",
    "Task",
    "resolve_phenotypes",
]

#: Instruction of the phenotype-extraction task (official CancerLLM data format).
PHENOTYPE_INSTRUCTION = (
    "You are an excellent linguist. The task is to answer the question by given the context or text"
)
#: Instruction of the diagnosis-generation task (official CancerLLM data format).
DIAGNOSIS_INSTRUCTION = (
    "You are a medical expert. This task involves generating the diagnosis based on the provided context or text."
)
#: The answer given when a phenotype is not mentioned / does not apply.
NOT_RELEVANT = "Not relevant"


class Task(str, Enum):
    """The two CancerLLM tasks."""

    PHENOTYPE = "phenotype"
    DIAGNOSIS = "diagnosis"

    @property
    def instruction(self) -> str:
        """The paper's instruction for this task (``PHENOTYPE_INSTRUCTION`` or ``DIAGNOSIS_INSTRUCTION``)."""
        return PHENOTYPE_INSTRUCTION if self is Task.PHENOTYPE else DIAGNOSIS_INSTRUCTION


_QUESTIONS = {
    "tumor_size": "What is the tumor size in the given context?",
    "histological_type": "What is the histological type in the given context?",
    "receptors": "Please identify the receptors mentioned in the provided context.",
    "receptor_status": "What is the receptor type in the given context?",
    "laterality": "Please identify the value of tumor laterality in the provided context.",
    "stage": "What is the stage of cancer in the given context?",
    "tumor_location": "Please describe the tumor location in the given context",
    "grade": "What is the grade of cancer in the given context?",
}


class Phenotype(str, Enum):
    """The eight cancer phenotype types of the paper; ``.question`` is the paper's question, verbatim."""

    TUMOR_SIZE = "tumor_size"
    HISTOLOGICAL_TYPE = "histological_type"
    RECEPTORS = "receptors"
    RECEPTOR_STATUS = "receptor_status"
    LATERALITY = "laterality"
    STAGE = "stage"
    TUMOR_LOCATION = "tumor_location"
    GRADE = "grade"

    @property
    def question(self) -> str:
        """The paper's question for this phenotype."""
        return _QUESTIONS[self.value]

    @classmethod
    def from_question(cls, question: str) -> Phenotype | None:
        """The phenotype whose paper question is ``question`` (whitespace/case-insensitive), else None."""
        key = " ".join(question.split()).lower().rstrip("?.")
        for p in cls:
            if " ".join(p.question.split()).lower().rstrip("?.") == key:
                return p
        return None


_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class PhenotypeQuestion(BaseModel):
    """A phenotype question: one of the eight built-ins or a user's own.

    Args:
        name: short identifier (lowercase, digits, underscores), used as the result key.
        question: the question asked of the model, placed after the report text.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    question: str
    #: one value is meant (e.g. grade): answers of the chunks of a long report are resolved to one chunk's
    single_valued: bool = False

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"phenotype name {v!r} must be lowercase letters, digits and underscores")
        return v

    @field_validator("question")
    @classmethod
    def _check_question(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("phenotype question must not be empty")
        return v.strip()

    @classmethod
    def builtin(cls, phenotype: Phenotype | str) -> PhenotypeQuestion:
        """The question of a built-in phenotype (a ``Phenotype`` member or its value, e.g. ``"stage"``)."""
        p = Phenotype(phenotype)
        return cls(name=p.value, question=p.question, single_valued=p.value in SINGLE_VALUED)


PhenotypeLike = Phenotype | PhenotypeQuestion | str | Mapping[str, str]

#: built-in phenotypes of which a report states one value (a long report's chunks resolve to one answer)
SINGLE_VALUED = frozenset({"tumor_size", "laterality", "stage", "grade"})


def resolve_phenotypes(phenotypes: Iterable[PhenotypeLike] | None = None) -> list[PhenotypeQuestion]:
    """Turn built-in names, :class:`Phenotype` members, :class:`PhenotypeQuestion` objects or
    ``{"name":..., "question":...}`` dicts into a deduplicated list of questions (all eight when None).

    Raises:
        UnknownBackendError: a string that is not one of the built-in phenotype names.
    """
    if phenotypes is None:
        return [PhenotypeQuestion.builtin(p) for p in Phenotype]
    if isinstance(phenotypes, (str, Phenotype, PhenotypeQuestion)):
        phenotypes = [phenotypes]
    out: list[PhenotypeQuestion] = []
    seen: set[str] = set()
    for item in phenotypes:
        if isinstance(item, PhenotypeQuestion):
            q = item
        elif isinstance(item, Phenotype):
            q = PhenotypeQuestion.builtin(item)
        elif isinstance(item, str):
            try:
                q = PhenotypeQuestion.builtin(Phenotype(item.strip().lower().replace(" ", "_")))
            except ValueError:
                raise UnknownBackendError("phenotype", item, [p.value for p in Phenotype]) from None
        elif isinstance(item, Mapping):
            q = PhenotypeQuestion(**item)
        else:
            raise InputError(f"cannot use {type(item).__name__} as a phenotype; pass a name or PhenotypeQuestion")
        if q.name in seen:
            continue
        seen.add(q.name)
        out.append(q)
    if not out:
        raise InputError("no phenotypes requested; pass at least one phenotype name")
    return out


class Example(BaseModel):
    """One instruction example: the paper's and the official code's JSONL record ``{instruction, context, response}``.

    For phenotype examples built by this library the question is kept apart in ``question`` so that the
    report text can be encoded once and reused for every question; :attr:`full_context` renders the
    official single-string form ``"In the text: <context> <question>"``.
    """

    model_config = ConfigDict(extra="forbid")

    instruction: str
    context: str = ""
    response: str = ""
    question: str | None = None
    id: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def full_context(self) -> str:
        """The official single-string input: ``"In the text: <context> <question>"``, or the context alone."""
        if self.question is None:
            return self.context
        return f"In the text: {self.context} {self.question}"

    def to_official(self) -> dict[str, str]:
        """The record as the official code writes it (question folded into the context)."""
        return {"instruction": self.instruction, "context": self.full_context, "response": self.response}


_SECTIONS: tuple[tuple[str, str], ...] = (
    ("reason_for_visit", "Reason for visit"),
    ("treatment_site", "Treatment site"),
    ("subjective", "Subjective information"),
    ("nursing_review_of_systems", "Nursing Review of Systems (ROS)"),
    ("objective", "Objective observations"),
    ("laboratory_results", "Laboratory test results"),
)


class ClinicalNote(BaseModel):
    """A clinical note with the paper's six sections; :meth:`to_context` renders the paper's numbered form."""

    model_config = ConfigDict(extra="forbid")

    reason_for_visit: str = ""
    treatment_site: str = ""
    subjective: str = ""
    nursing_review_of_systems: str = ""
    objective: str = ""
    laboratory_results: str = ""
    id: str | None = None

    SECTION_TITLES: ClassVar[tuple[tuple[str, str], ...]] = _SECTIONS

    def to_context(self) -> str:
        """``"1) Reason for visit: ... 2) Treatment site: ... 6) Laboratory test results: ..."``; empty sections are kept."""
        parts = [f"{i}) {title}: {getattr(self, key).strip()}" for i, (key, title) in enumerate(_SECTIONS, 1)]
        return " ".join(parts)

    def is_empty(self) -> bool:
        """True when every section is empty or whitespace only."""
        return not any(getattr(self, k).strip() for k, _ in _SECTIONS)


def _as_items(v: Any) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


class ItemDetail(BaseModel):
    """One answer item with what supports it.

    Attributes:
        value: the item, as in the simple answer list (e.g. ``"G3"``).
        raw: the model's raw answer text it was parsed from.
        span: ``(start, end)`` offsets of its evidence in the caller's text (``text[start:end]``), or None.
        match: ``"exact"`` (the item verbatim), ``"fuzzy"`` (up to case, whitespace, units, TNM prefixes) or
            ``"not_found"`` (nothing in the report supports it: a possible hallucination).
        confidence: the model's probability of the item's tokens (0-1), or None when not computed.
        chunk: the index of the report chunk that answered (0 unless the report was split).
        needs_review: below ``min_confidence``, or without evidence.
    """

    model_config = ConfigDict(extra="forbid")

    value: str
    raw: str = ""
    span: tuple[int, int] | None = None
    match: Literal["exact", "fuzzy", "not_found"] = "not_found"
    confidence: float | None = None
    chunk: int = 0
    needs_review: bool = False


class AnswerDetail(BaseModel):
    """The detailed answer to one question.

    Attributes:
        status: ``"answered"`` (items below) or ``"not_relevant"`` (the model answered "Not relevant"); a
            question not asked has no :class:`AnswerDetail` at all.
        items: the answer items, each with evidence and confidence.
        alternatives: for single-valued phenotypes of a report split into chunks, the items of the other
            chunks that were not chosen.
        confidence: the model's probability of its whole answer (for "Not relevant" too), or None.
        needs_review: the answer is below ``min_confidence``, or an item lacks evidence.
    """

    model_config = ConfigDict(extra="forbid")

    status: Literal["answered", "not_relevant"]
    items: list[ItemDetail] = Field(default_factory=list)
    alternatives: list[ItemDetail] = Field(default_factory=list)
    confidence: float | None = None
    needs_review: bool = False


class Provenance(BaseModel):
    """Where a result came from: an audit trail for every output row.

    Attributes:
        model: the model's name or path; ``adapter_sha256``: a hash of the adapter weights (None without one).
        library_version: the ``cancerllm`` version; ``settings``: generation and prompt settings.
        created: when the result was made (ISO 8601, UTC); ``input_sha256``: a hash of the input text.
    """

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    adapter_sha256: str | None = None
    library_version: str
    settings: dict[str, Any] = Field(default_factory=dict)
    created: str
    input_sha256: str


class PhenotypeResult(BaseModel):
    """Extracted phenotypes of one text.  Each field is a list of strings, or ``None`` for "Not relevant" /
    not asked.  Answers to user-defined questions are in :attr:`custom`; raw model outputs in :attr:`raw`.
    :attr:`error` is None, or, for an input that could not be processed (``extract_many(...,
    errors="record")``), the reason, with every answer None."""

    model_config = ConfigDict(extra="forbid")

    tumor_size: list[str] | None = None
    histological_type: list[str] | None = None
    receptors: list[str] | None = None
    receptor_status: list[str] | None = None
    laterality: list[str] | None = None
    stage: list[str] | None = None
    tumor_location: list[str] | None = None
    grade: list[str] | None = None
    custom: dict[str, list[str] | None] = Field(default_factory=dict)
    raw: dict[str, str] = Field(default_factory=dict)
    id: str | None = None
    error: str | None = None
    details: dict[str, AnswerDetail] = Field(default_factory=dict)
    provenance: Provenance | None = None

    _normalize = field_validator(*[p.value for p in Phenotype], mode="before")(lambda cls, v: _as_items(v))

    def get(self, name: Phenotype | str) -> list[str] | None:
        """The answer for a built-in or custom phenotype name."""
        key = name.value if isinstance(name, Phenotype) else name
        if key in Phenotype._value2member_map_:
            return getattr(self, key)
        return self.custom.get(key)

    def set(self, name: str, value: list[str] | None) -> None:
        """Set the answer of a built-in phenotype field, or of a custom question in ``custom``."""
        if name in Phenotype._value2member_map_:
            setattr(self, name, value)
        else:
            self.custom[name] = value

    def status(self, name: Phenotype | str) -> Literal["answered", "not_relevant", "not_asked"]:
        """``"answered"``, ``"not_relevant"`` (asked; the model said "Not relevant") or ``"not_asked"``."""
        key = name.value if isinstance(name, Phenotype) else name
        if key in self.details:
            return self.details[key].status
        if key in self.raw:
            return "answered" if self.get(key) else "not_relevant"
        return "not_asked"

    @property
    def needs_review(self) -> bool:
        """Whether any answer is marked for review (low confidence, or an item without evidence)."""
        return any(d.needs_review for d in self.details.values())

    def as_dict(self, names: Sequence[str] | None = None) -> dict[str, list[str] | None]:
        """Flat ``{name: answer}`` for the built-ins and custom questions (or only ``names``)."""
        d: dict[str, list[str] | None] = {p.value: getattr(self, p.value) for p in Phenotype}
        d.update(self.custom)
        if names is not None:
            d = {k: d.get(k) for k in names}
        return d


class Diagnosis(BaseModel):
    """A generated cancer diagnosis: ``text`` is the cleaned answer, ``raw`` the model output.  ``error`` is
    None, or, for a note that could not be processed (``generate_many(..., errors="record")``), the reason
    (``text`` is then empty).

    ``code_consistent`` says whether the ICD-10-CM code the model wrote agrees with its own words (the code's
    category is among those :meth:`cancerllm.benchmark.IcdMapper.consistent` finds for the description):
    True, False, or None when there is no code or nothing to compare it with (or the check was off).  A
    code that disagrees sets :attr:`needs_review`."""

    model_config = ConfigDict(extra="forbid")

    text: str
    raw: str = ""
    id: str | None = None
    error: str | None = None
    code_consistent: bool | None = None

    @property
    def needs_review(self) -> bool:
        """True when the written ICD-10-CM code contradicts the diagnosis text (``code_consistent`` False)."""
        return self.code_consistent is False

    @property
    def icd_10(self) -> str | None:
        """The ICD-10-CM code the model wrote after the diagnosis, as in ``"Lung Adenocarcinoma, Upper Lobe
        (C34.1)"`` (CancerLLM-Smol v2 and later answer so); None when there is none."""
        m = _CODED_RE.search(self.text)
        return m.group("code").upper() if m else None

    @property
    def description(self) -> str:
        """The diagnosis without its trailing ICD-10-CM code."""
        m = _CODED_RE.search(self.text)
        return self.text[:m.start()].rstrip() if m else self.text

    def __str__(self) -> str:
        return self.text


#: A trailing ICD-10-CM neoplasm code in parentheses: ``"... (C50.3)"``.
_CODED_RE = re.compile(r"\s*\((?P<code>[CD]\d{2}(?:\.\d{1,4})?)\)\s*$", re.I)
