"""Converters into the CancerLLM instruction format.

* :func:`bio_to_examples`: BIO-tagged NER data in CoNLL columns (as CancerBERT's CancerNER) -> the
  eight-question phenotype QA format, with "Not relevant" negatives.
* :func:`tcga_to_phenotype_examples` / :func:`tcga_to_diagnosis_examples`: records of the shared TCGA
  pathology-report file -> phenotype QA and diagnosis-generation examples.
* :func:`examples_to_official`: the official single-context records ``{instruction, context, response}``.

The TCGA label-to-answer mapping is one function per field (:func:`tumor_size_answer`, ...,
:func:`diagnosis_answer`), collected in :data:`TCGA_ANSWER_FUNCTIONS`; see ``docs/data.md`` for the rules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ..errors import DataFormatError, InputError
from ..prompts import format_answer
from ..schema import DIAGNOSIS_INSTRUCTION, PHENOTYPE_INSTRUCTION, Example, Phenotype
from ..tnm import TNMItem, parse_tnm, tnm_group
from .io import PathLike, TCGARecord, _describe_validation, write_jsonl

__all__ = [
    "DEFAULT_ENTITY_TO_PHENOTYPE",
    "RECEPTOR_CANCER_TYPES",
    "TCGA_ANSWER_FUNCTIONS",
    "bio_to_examples",
    "coded_diagnosis_answer",
    "diagnosis_answer",
    "diagnosis_text",
    "examples_to_official",
    "grade_answer",
    "histological_type_answer",
    "icd10_answer",
    "laterality_answer",
    "normalize_entity_type",
    "read_bio",
    "receptor_status_answer",
    "receptors_answer",
    "stage_answer",
    "tcga_to_diagnosis_examples",
    "tcga_to_phenotype_examples",
    "tumor_location_answer",
    "tumor_size_answer",
]

# --------------------------------------------------------------------------------------------- BIO / CoNLL
#: Default mapping from (normalised) NER entity types to the eight phenotypes.  Keys are normalised with
#: :func:`normalize_entity_type` (lower case, runs of spaces/``-``/``.``/``/`` -> ``_``).  Covers the
#: CancerBERT CancerNER types and common spellings; extend or override it with ``entity_to_phenotype=``.
DEFAULT_ENTITY_TO_PHENOTYPE: dict[str, Phenotype] = {
    **dict.fromkeys(
        ["tumor_size", "tumour_size", "size", "tumor_dimension", "tumour_dimension"], Phenotype.TUMOR_SIZE
    ),
    **dict.fromkeys(
        [
            "histological_type",
            "histologic_type",
            "histology",
            "histology_type",
            "histological_subtype",
            "hist_type",
            "tumor_type",
            "cancer_type",
        ],
        Phenotype.HISTOLOGICAL_TYPE,
    ),
    **dict.fromkeys(
        ["receptor", "receptors", "receptor_type", "hormone_receptor", "hormone_receptor_type", "hr_type"],
        Phenotype.RECEPTORS,
    ),
    **dict.fromkeys(
        ["receptor_status", "hormone_receptor_status", "hr_status", "receptor_result"],
        Phenotype.RECEPTOR_STATUS,
    ),
    **dict.fromkeys(["laterality", "tumor_laterality", "tumour_laterality", "side"], Phenotype.LATERALITY),
    **dict.fromkeys(
        ["stage", "cancer_stage", "tumor_stage", "tumour_stage", "tnm_stage", "tnm", "pathologic_stage"],
        Phenotype.STAGE,
    ),
    **dict.fromkeys(
        [
            "tumor_location",
            "tumour_location",
            "tumor_site",
            "tumour_site",
            "site",
            "location",
            "cancer_site",
            "anatomic_site",
        ],
        Phenotype.TUMOR_LOCATION,
    ),
    **dict.fromkeys(
        ["grade", "cancer_grade", "tumor_grade", "tumour_grade", "histologic_grade", "histological_grade"],
        Phenotype.GRADE,
    ),
}

_TAG_RE = re.compile(r"^(?:O|([BI])-(\S+))$")
_SEP_RE = re.compile(r"[\s\-./]+")


def normalize_entity_type(name: str) -> str:
    """Normalise an entity type for lookup: ``"Tumor-Size"`` / ``"tumor size"`` -> ``"tumor_size"``."""
    return _SEP_RE.sub("_", name.strip().lower()).strip("_")


def _phenotype_list(phenotypes: Iterable[Phenotype | str] | None) -> list[Phenotype]:
    """The requested built-in phenotypes (all eight when None), in the order given."""
    if phenotypes is None:
        return list(Phenotype)
    if isinstance(phenotypes, (str, Phenotype)):
        phenotypes = [phenotypes]
    out: list[Phenotype] = []
    for p in phenotypes:
        try:
            ph = p if isinstance(p, Phenotype) else Phenotype(normalize_entity_type(p))
        except ValueError:
            raise InputError(
                f"unknown phenotype {p!r}; use one of: {', '.join(x.value for x in Phenotype)}"
            ) from None
        if ph not in out:
            out.append(ph)
    return out


def _resolve_mapping(
    overrides: Mapping[str, Phenotype | str | None] | None,
) -> dict[str, Phenotype | None]:
    mapping: dict[str, Phenotype | None] = dict(DEFAULT_ENTITY_TO_PHENOTYPE)
    for key, value in (overrides or {}).items():
        if value is None:
            mapping[normalize_entity_type(key)] = None
            continue
        try:
            mapping[normalize_entity_type(key)] = Phenotype(
                value.value if isinstance(value, Phenotype) else normalize_entity_type(value)
            )
        except ValueError:
            raise InputError(
                f"entity_to_phenotype maps {key!r} to {value!r}, which is not a phenotype; use one of: "
                f"{', '.join(p.value for p in Phenotype)} (or None to ignore the type)"
            ) from None
    return mapping


class _Sentence:
    __slots__ = ("doc", "index", "tokens", "entities", "line")

    def __init__(self, doc: int, index: int, line: int) -> None:
        self.doc = doc
        self.index = index
        self.line = line
        self.tokens: list[str] = []
        self.entities: list[tuple[str, list[str], int]] = []  # (type as written, tokens, line of B-)


def _bio_lines(path_or_lines: PathLike | Iterable[str]) -> tuple[str | None, list[str]]:
    if isinstance(path_or_lines, (str, os.PathLike)):
        p = os.fspath(path_or_lines)
        try:
            data = Path(p).read_bytes()
        except FileNotFoundError:
            raise InputError(
                f"BIO file not found: {p} (to convert text in memory, pass a list of lines)"
            ) from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataFormatError(
                "invalid UTF-8; save the file as UTF-8", path=p, line=data[: exc.start].count(b"\n") + 1
            ) from None
        return p, text.splitlines()
    lines: list[str] = []
    for ln in path_or_lines:
        if not isinstance(ln, str):
            raise InputError(
                f"bio_to_examples expects a path or lines of text, got a {type(ln).__name__} line"
            )
        lines.extend(ln.splitlines() or [""])
    return None, lines


def read_bio(path_or_lines: PathLike | Iterable[str], *, strict: bool = True) -> list[list[tuple[str, str]]]:
    """Parse CoNLL-style BIO data into sentences of ``(token, tag)`` pairs.

    The token is the first whitespace-separated column and the tag the last; sentences are separated by
    blank lines; ``-DOCSTART-`` lines are dropped.

    Args:
        path_or_lines: a file path, or an iterable of lines.
        strict: reject an ``I-X`` that does not continue an ``X`` entity (otherwise it starts one).

    Raises:
        DataFormatError: a line with fewer than two columns, a tag that is not ``O``/``B-X``/``I-X``, or (strict)
            an ``I-X`` without a preceding ``B-X``/``I-X``; names the file and line.
    """
    path, lines = _bio_lines(path_or_lines)
    out: list[list[tuple[str, str]]] = []
    for sent in _parse_bio(path, lines, strict=strict):
        out.append([(t, tag) for t, tag, _ in sent[1]])
    return out


def _parse_bio(
    path: str | None, lines: Sequence[str], *, strict: bool
) -> Iterable[tuple[tuple[int, int, int], list[tuple[str, str, int]]]]:
    """Yield ``((doc, sentence, first_line), [(token, tag, line), ...])``, checking tags and columns.

    A stray ``I-X`` is rewritten to ``B-X`` when not ``strict``.
    """
    doc, sent_idx = 0, 0
    current: list[tuple[str, str, int]] = []
    start_line = 0
    prev_type: str | None = None
    for lineno, line in enumerate(lines, 1):
        cols = line.split()
        if not cols:
            if current:
                yield (doc, sent_idx, start_line), current
                sent_idx += 1
                current = []
            prev_type = None
            continue
        if cols[0] == "-DOCSTART-":
            if current:
                yield (doc, sent_idx, start_line), current
                sent_idx += 1
                current = []
            if sent_idx > 0:
                doc, sent_idx = doc + 1, 0
            prev_type = None
            continue
        if len(cols) < 2:
            raise DataFormatError(
                f"expected at least 2 columns (token ... BIO tag), found 1: {line.strip()[:40]!r}",
                path=path,
                line=lineno,
            )
        token, tag = cols[0], cols[-1]
        m = _TAG_RE.match(tag)
        if not m:
            raise DataFormatError(
                f"invalid BIO tag {tag[:40]!r}; tags must be O, B-<type> or I-<type> (last column)",
                path=path,
                line=lineno,
            )
        bi, etype = m.group(1), m.group(2)
        if bi == "I" and prev_type != etype:
            if strict:
                after = "O" if prev_type is None else f"an entity of type {prev_type!r}"
                raise DataFormatError(
                    f"tag {tag!r} follows {after}; an entity must start with B-{etype} "
                    "(pass strict=False to accept IOB1-style data)",
                    path=path,
                    line=lineno,
                )
            tag = f"B-{etype}"
        if not current:
            start_line = lineno
        current.append((token, tag, lineno))
        prev_type = etype
    if current:
        yield (doc, sent_idx, start_line), current


def _collect(path: str | None, lines: Sequence[str], *, strict: bool) -> list[_Sentence]:
    sentences = []
    for (doc, idx, first), triples in _parse_bio(path, lines, strict=strict):
        s = _Sentence(doc, idx, first)
        for token, tag, lineno in triples:
            s.tokens.append(token)
            if tag.startswith("B-"):
                s.entities.append((tag[2:], [token], lineno))
            elif tag.startswith("I-"):
                s.entities[-1][1].append(token)
        sentences.append(s)
    return sentences


def bio_to_examples(
    path_or_lines: PathLike | Iterable[str],
    *,
    entity_to_phenotype: Mapping[str, Phenotype | str | None] | None = None,
    negatives: bool = True,
    sentence_per_example: bool = True,
    unknown: Literal["raise", "ignore"] = "raise",
    phenotypes: Iterable[Phenotype | str] | None = None,
    strict: bool = True,
) -> list[Example]:
    """Convert BIO-tagged NER data (CoNLL columns) into the eight-question phenotype QA format.

    For each sentence (or document) and each phenotype, one example: ``context`` = the tokens joined by
    single spaces, ``question`` = the phenotype's paper question, ``response`` = ``format_answer`` of the
    entities of that phenotype in order of appearance (e.g. ``"{left}"``), or ``"Not relevant"`` when there
    is none (only when ``negatives``).  Entity text = its tokens joined by single spaces.

    ``id`` is ``"<doc>-<sentence>-<phenotype>"`` (0-based; documents are delimited by ``-DOCSTART-``), or
    ``"<doc>-<phenotype>"`` when ``sentence_per_example=False``; ``meta`` holds ``phenotype``, ``doc``,
    ``sentence`` (per-sentence only) and ``entity_types`` (the source types mapped to this phenotype).

    Args:
        path_or_lines: a CoNLL file path, or an iterable of lines.  Token = first column, BIO tag = last
            column; blank lines separate sentences.
        entity_to_phenotype: entity type -> phenotype (or None to drop that type), merged over
            :data:`DEFAULT_ENTITY_TO_PHENOTYPE`; keys are normalised with :func:`normalize_entity_type`.
        negatives: emit "Not relevant" examples for phenotypes without an entity.
        sentence_per_example: one context per sentence; False joins each document's sentences.
        unknown: ``"raise"`` on an entity type with no mapping, or ``"ignore"`` it.
        phenotypes: restrict to these phenotypes (all eight, in the paper's order, when None).
        strict: reject ``I-X`` without a preceding ``B-X``/``I-X``; False treats it as ``B-X`` (IOB1).

    Returns:
        The examples, sentence by sentence, phenotypes in :class:`~cancerllm.schema.Phenotype` order.

    Raises:
        DataFormatError: malformed CoNLL input or an unmapped entity type (names the file and line).
        InputError: a bad argument.

    Example:
        >>> exs = bio_to_examples(["Left O", "breast O", "IDC B-histological_type"])
        >>> [e.response for e in exs][:2]
        ['Not relevant', '{IDC}']
    """
    if unknown not in ("raise", "ignore"):
        raise InputError(f"unknown={unknown!r}; use 'raise' or 'ignore'")
    mapping = _resolve_mapping(entity_to_phenotype)
    wanted = _phenotype_list(phenotypes)
    path, lines = _bio_lines(path_or_lines)
    sentences = _collect(path, lines, strict=strict)

    # group into units (sentences or documents)
    units: list[tuple[str, dict[str, Any], list[_Sentence]]] = []
    if sentence_per_example:
        units = [(f"{s.doc}-{s.index}", {"doc": s.doc, "sentence": s.index}, [s]) for s in sentences]
    else:
        by_doc: dict[int, list[_Sentence]] = {}
        for s in sentences:
            by_doc.setdefault(s.doc, []).append(s)
        units = [(f"{d}", {"doc": d}, ss) for d, ss in by_doc.items()]

    out: list[Example] = []
    for key, base_meta, sents in units:
        context = " ".join(tok for s in sents for tok in s.tokens)
        answers: dict[Phenotype, list[str]] = {}
        types: dict[Phenotype, list[str]] = {}
        for s in sents:
            for etype, toks, ent_line in s.entities:
                norm = normalize_entity_type(etype)
                if norm not in mapping:
                    if unknown == "ignore":
                        continue
                    known = sorted({k for k, v in mapping.items() if v is not None})
                    raise DataFormatError(
                        f"entity type {etype!r} has no phenotype mapping; map it with "
                        f"entity_to_phenotype={{{etype!r}: <phenotype or None>}} or pass unknown='ignore' "
                        f"(known types: {', '.join(known)})",
                        path=path,
                        line=ent_line,
                    )
                ph = mapping[norm]
                if ph is None:
                    continue
                answers.setdefault(ph, []).append(" ".join(toks))
                if etype not in types.setdefault(ph, []):
                    types[ph].append(etype)
        for ph in wanted:
            items = answers.get(ph)
            if not items and not negatives:
                continue
            out.append(
                Example(
                    instruction=PHENOTYPE_INSTRUCTION,
                    context=context,
                    question=ph.question,
                    response=format_answer(items or None),
                    id=f"{key}-{ph.value}",
                    meta={"phenotype": ph.value, **base_meta, "entity_types": types.get(ph, [])},
                )
            )
    return out


# --------------------------------------------------------------------------------------------- TCGA
#: Cancer types whose reports the receptor questions apply to; elsewhere they are "Not relevant".
RECEPTOR_CANCER_TYPES: frozenset[str] = frozenset({"BRCA"})
_RECEPTORS: tuple[str, ...] = ("ER", "PR", "HER2")


def _labels(record: TCGARecord | Mapping[str, Any]) -> TCGARecord:
    if isinstance(record, TCGARecord):
        return record
    if not isinstance(record, Mapping):
        raise InputError(f"expected TCGARecord objects or dicts, got {type(record).__name__}")
    try:
        return TCGARecord.model_validate(dict(record))
    except ValidationError as exc:
        raise DataFormatError(f"invalid TCGA record: {_describe_validation(exc)}") from None


def tumor_size_answer(record: TCGARecord) -> list[str] | None:
    """``tumor_size`` as recorded (e.g. ``"2.5"``; the registry value, in cm, without a unit appended)."""
    v = record.label("tumor_size")
    return [v] if v else None


def histological_type_answer(record: TCGARecord) -> list[str] | None:
    """``histology`` as recorded, e.g. ``"Infiltrating Ductal Carcinoma"``."""
    v = record.label("histology")
    return [v] if v else None


def receptors_answer(record: TCGARecord) -> list[str] | None:
    """The receptors among ER, PR, HER2 with a recorded status, lower-cased: ``["er", "pr", "her2"]``."""
    items = [r.lower() for r in _RECEPTORS if record.label(r)]
    return items or None


def receptor_status_answer(record: TCGARecord) -> list[str] | None:
    """``"<receptor> <status>"`` for each recorded status, lower-cased: ``["er positive", "her2 negative"]``."""
    items = [f"{r.lower()} {record.label(r).lower()}" for r in _RECEPTORS if record.label(r)]  # type: ignore[union-attr]
    return items or None


def laterality_answer(record: TCGARecord) -> list[str] | None:
    """``laterality`` as recorded, e.g. ``"Right"`` or ``"Left lobe"``."""
    v = record.label("laterality")
    return [v] if v else None


def _tnm_item_answer(report: list[TNMItem], registry: str, letter: str) -> str:
    """One T/N/M answer item: the registry value, with prefix and sub-category as the report writes them.

    * the report writes the registry's full value (``pT1c`` for ``T1c``): the report's prefix on it;
    * the registry has only the main category and the report a finer one of it (``pT2a`` for ``T2``): the
      report's item;
    * the report writes another value of that letter: its prefix on the registry value;
    * the report writes none: the registry value.
    """
    gold = [i for i in parse_tnm(registry) if i.letter == letter]
    if not gold:
        return registry
    g = gold[0]
    same_letter = [i for i in report if i.letter == letter]
    mod = f" {g.modifier}" if g.modifier else ""
    exact = [i for i in same_letter if i.full == g.full]
    if exact:
        return exact[0].prefix + g.full + mod
    if g.full == g.category:
        finer = [i for i in same_letter if i.category == g.category]
        if finer:
            return finer[0].prefix + finer[0].full + mod
    prefix = same_letter[0].prefix if same_letter else g.prefix
    return prefix + g.full + mod


def stage_answer(record: TCGARecord) -> list[str] | None:
    """The stage as the CancerLLM paper asks it: the T, N and M items and the stage group, e.g.
    ``["pT2", "pN0", "M0", "Stage IIA"]``.

    Items come from the registry fields ``pT``, ``pN``, ``pM`` and ``stage`` (those recorded, in that order);
    prefixes (``p``, ``yp``, ``c``) and sub-categories follow the report where it writes that item (see
    :func:`_tnm_item_answer`), registry values otherwise.  None when none of the four is recorded.
    """
    report = parse_tnm(record.text)
    items = [_tnm_item_answer(report, v, letter)
             for letter, field in (("T", "pT"), ("N", "pN"), ("M", "pM")) if (v := record.label(field))]
    group = record.label("stage")
    if group:
        items.append(tnm_group(group) or group)
    return items or None


def tumor_location_answer(record: TCGARecord) -> list[str] | None:
    """``site`` as recorded, e.g. ``"Right Upper Outer Quadrant"``."""
    v = record.label("site")
    return [v] if v else None


def grade_answer(record: TCGARecord) -> list[str] | None:
    """``grade`` as recorded, e.g. ``"G3"`` or ``"High Grade"``."""
    v = record.label("grade")
    return [v] if v else None


#: Phenotype -> (function giving the answer items of a record, label fields it reads).
TCGA_ANSWER_FUNCTIONS: dict[Phenotype, tuple[Callable[[TCGARecord], list[str] | None], tuple[str, ...]]] = {
    Phenotype.TUMOR_SIZE: (tumor_size_answer, ("tumor_size",)),
    Phenotype.HISTOLOGICAL_TYPE: (histological_type_answer, ("histology",)),
    Phenotype.RECEPTORS: (receptors_answer, _RECEPTORS),
    Phenotype.RECEPTOR_STATUS: (receptor_status_answer, _RECEPTORS),
    Phenotype.LATERALITY: (laterality_answer, ("laterality",)),
    Phenotype.STAGE: (stage_answer, ("stage", "pT", "pN", "pM")),
    Phenotype.TUMOR_LOCATION: (tumor_location_answer, ("site",)),
    Phenotype.GRADE: (grade_answer, ("grade",)),
}


def tcga_to_phenotype_examples(
    records: Iterable[TCGARecord | Mapping[str, Any]],
    *,
    include_not_relevant: bool = True,
    phenotypes: Iterable[Phenotype | str] | None = None,
    receptor_cancer_types: Iterable[str] = RECEPTOR_CANCER_TYPES,
) -> list[Example]:
    """Phenotype QA examples from TCGA records, one per record and answerable phenotype.

    The answer of each phenotype comes from its function in :data:`TCGA_ANSWER_FUNCTIONS`.  A phenotype
    whose label is null is skipped (not recorded is not "absent"), except the receptor questions for cancer
    types outside ``receptor_cancer_types``, which get ``"Not relevant"`` when ``include_not_relevant``.

    ``id`` is ``"<patient_id>-<phenotype>"``; ``meta`` holds ``phenotype``, ``patient_id``, ``cancer_type``
    and ``labels`` (the source label fields of that phenotype, e.g. ``stage``, ``pT``, ``pN``, ``pM``).

    Args:
        records: :class:`~cancerllm.data.io.TCGARecord` objects or dicts of the same shape.
        include_not_relevant: add the "Not relevant" receptor examples outside the receptor cancer types.
        phenotypes: restrict to these phenotypes (all eight when None).
        receptor_cancer_types: cancer types where ER/PR/HER2 apply (default ``{"BRCA"}``).

    Returns:
        The examples, record by record, phenotypes in :class:`~cancerllm.schema.Phenotype` order.
    """
    wanted = _phenotype_list(phenotypes)
    receptor_types = {c.upper() for c in receptor_cancer_types}
    out: list[Example] = []
    for raw in records:
        rec = _labels(raw)
        for ph in wanted:
            fn, fields = TCGA_ANSWER_FUNCTIONS[ph]
            items = fn(rec)
            if items is None:
                receptor_q = ph in (Phenotype.RECEPTORS, Phenotype.RECEPTOR_STATUS)
                if not (
                    receptor_q and include_not_relevant and rec.cancer_type.upper() not in receptor_types
                ):
                    continue
            out.append(
                Example(
                    instruction=PHENOTYPE_INSTRUCTION,
                    context=rec.text,
                    question=ph.question,
                    response=format_answer(items),
                    id=f"{rec.patient_id}-{ph.value}",
                    meta={
                        "phenotype": ph.value,
                        "patient_id": rec.patient_id,
                        "cancer_type": rec.cancer_type,
                        "labels": {f: rec.label(f) for f in fields},
                    },
                )
            )
    return out


def diagnosis_answer(record: TCGARecord) -> str | None:
    """The diagnosis text of a record: ``"<histology>, <site>"``.

    The site is left out when it is null or already appears (case-insensitively, as whole words) in the
    histology, e.g. ``"Lung Adenocarcinoma"`` + ``"Lung"`` -> ``"Lung Adenocarcinoma"``.  None when the
    histology is null (no diagnosis to learn from).

    Example:
        ``"Infiltrating Ductal Carcinoma"`` + ``"Right Upper Outer Quadrant"`` ->
        ``"Infiltrating Ductal Carcinoma, Right Upper Outer Quadrant"``.
    """
    return diagnosis_text(record.label("histology"), record.label("site"))


def diagnosis_text(histology: str | None, site: str | None) -> str | None:
    """``"<histology>, <site>"`` by the rule of :func:`diagnosis_answer` (the site left out when null or
    already in the histology); None without a histology."""
    if histology is None:
        return None
    if site is None or re.search(rf"(?<!\w){re.escape(site.lower())}(?!\w)", histology.lower()):
        return histology
    return f"{histology}, {site}"


def icd10_answer(record: TCGARecord) -> str | None:
    """The ICD-10 code as recorded, e.g. ``"C50.9"`` (the ICD-coded diagnosis variant)."""
    return record.label("icd_10")


def coded_diagnosis_answer(record: TCGARecord) -> str | None:
    """The diagnosis text with its ICD-10-CM code: ``"Infiltrating Ductal Carcinoma, Right Lower Inner
    Quadrant (C50.3)"`` (:func:`diagnosis_answer` plus ``" (<icd_10>)"`` when the code is recorded); split
    a generated one with :func:`cancerllm.benchmark.icd.split_coded_diagnosis`."""
    text = diagnosis_answer(record)
    code = record.label("icd_10")
    if text is None:
        return None
    return f"{text} ({code})" if code else text


def tcga_to_diagnosis_examples(
    records: Iterable[TCGARecord | Mapping[str, Any]], *,
    target: Literal["text", "icd_10", "text+icd_10"] = "text",
) -> list[Example]:
    """Diagnosis-generation examples from TCGA records: context = report text, response = the diagnosis.

    With ``target="text"`` the response is :func:`diagnosis_answer` (``"<histology>, <site>"``); with
    ``target="icd_10"`` it is the ICD-10 code; with ``"text+icd_10"`` both, as
    :func:`coded_diagnosis_answer` (``"<histology>, <site> (C50.3)"``).  Records without that target label
    are skipped.  ``id`` is
    ``"<patient_id>-diagnosis"``; ``meta`` holds ``patient_id``, ``cancer_type``, ``icd_10``,
    ``icd_o_3_histology``, ``icd_o_3_site``, ``histology`` and ``site``.
    """
    answer_of = {"text": diagnosis_answer, "icd_10": icd10_answer, "text+icd_10": coded_diagnosis_answer}
    if target not in answer_of:
        raise InputError(f"target={target!r}; use 'text', 'icd_10' or 'text+icd_10'")
    out: list[Example] = []
    for raw in records:
        rec = _labels(raw)
        answer = answer_of[target](rec)
        if answer is None:
            continue
        out.append(
            Example(
                instruction=DIAGNOSIS_INSTRUCTION,
                context=rec.text,
                response=answer,
                id=f"{rec.patient_id}-diagnosis",
                meta={
                    "task": "diagnosis",
                    "target": target,
                    "patient_id": rec.patient_id,
                    "cancer_type": rec.cancer_type,
                    **{
                        k: rec.label(k)
                        for k in ("icd_10", "icd_o_3_histology", "icd_o_3_site", "histology", "site")
                    },
                },
            )
        )
    return out


# --------------------------------------------------------------------------------------------- official
def examples_to_official(examples: Iterable[Example], path: PathLike | None = None) -> list[dict[str, str]]:
    """The official CancerLLM records ``{instruction, context, response}`` (question folded into the context).

    Args:
        examples: the examples.
        path: when given, also write them there as JSONL (atomically).

    Returns:
        One dict per example (``Example.to_official()``).
    """
    records = []
    for ex in examples:
        if not isinstance(ex, Example):
            raise InputError(f"expected Example objects, got {type(ex).__name__}")
        records.append(ex.to_official())
    if path is not None:
        write_jsonl(records, path)
    return records
