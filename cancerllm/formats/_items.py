"""What both output formats share: the answer items of a result with their evidence, and how a stage,
receptor-status, grade, laterality or size item is read."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from ..benchmark.normalize import (
    normalize_grade,
    normalize_laterality,
    normalize_receptor,
    normalize_receptor_status,
    normalize_stage,
    normalize_tumor_size,
)
from ..errors import InputError
from ..evidence import EvidenceIndex
from ..schema import Phenotype, PhenotypeResult

__all__ = [
    "EvidenceItem", "StagePart", "evidence_items", "nlp_system", "parse_receptor_status", "parse_size", "split_stage",
]

Match = Literal["exact", "fuzzy", "not_found"]


@dataclass(frozen=True)
class EvidenceItem:
    """One answer item with its evidence.

    Attributes:
        phenotype: the question's name (a built-in phenotype or a custom question).
        value: the item as answered.
        span: ``(start, end)`` into the report text, or None (not found, or no text to look in).
        match: ``"exact"``, ``"fuzzy"``, ``"not_found"``, or None when it is unknown (no details, no text).
        confidence: the model's probability of the item, or None.
        needs_review: the item is marked for review.
    """

    phenotype: str
    value: str
    span: tuple[int, int] | None
    match: Match | None
    confidence: float | None
    needs_review: bool

    def evidence(self, text: str | None) -> str | None:
        """``text[start:end]``, or None."""
        if text is None or self.span is None:
            return None
        return text[self.span[0]:self.span[1]]


def check_result(result: object, text: str | None, where: str = "result") -> PhenotypeResult:
    """The result, checked: a :class:`PhenotypeResult` whose evidence spans lie in ``text``.

    Raises:
        InputError: not a result; ``text`` not a string; a text whose hash differs from the one the result
            was extracted from; a span outside the text.
    """
    if not isinstance(result, PhenotypeResult):
        raise InputError(f"{where} is a {type(result).__name__}; pass a cancerllm.schema.PhenotypeResult")
    if text is not None and not isinstance(text, str):
        raise InputError(f"the text of {where} is a {type(text).__name__}; pass the report text as a str or None")
    if text is not None and result.provenance is not None:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest != result.provenance.input_sha256:
            raise InputError(f"the text given for {where} is not the text it was extracted from (its SHA-256 "
                             "differs from provenance.input_sha256); pass the exact input text")
    if text is not None:
        for name, detail in result.details.items():
            for item in detail.items:
                if item.span is not None and not 0 <= item.span[0] <= item.span[1] <= len(text):
                    raise InputError(f"{where}: the evidence span {item.span} of {name!r} lies outside the "
                                     f"text ({len(text)} characters); pass the text the result was extracted from")
    return result


def evidence_items(result: PhenotypeResult, text: str | None) -> list[EvidenceItem]:
    """Every answered item of ``result`` (built-in phenotypes first, then custom questions), with evidence.

    Items come from :attr:`PhenotypeResult.details` when the result has them; otherwise from the plain answer
    lists, with spans looked up in ``text`` (:class:`~cancerllm.evidence.EvidenceIndex`) when it is given.
    "Not relevant" answers and results with an ``error`` have no items.
    """
    if result.error is not None:
        return []
    index: EvidenceIndex | None = None
    out: list[EvidenceItem] = []
    for name, answer in result.as_dict().items():
        detail = result.details.get(name)
        if detail is not None:
            if detail.status != "answered":
                continue
            out.extend(EvidenceItem(name, i.value, i.span, i.match, i.confidence, i.needs_review)
                       for i in detail.items)
            continue
        for value in answer or []:
            if text is None:
                out.append(EvidenceItem(name, value, None, None, None, False))
                continue
            index = index or EvidenceIndex(text)
            span = index.find(value)
            found = span.found and span.start is not None and span.end is not None
            out.append(EvidenceItem(name, value, (span.start, span.end) if found else None,  # type: ignore[arg-type]
                                    span.match, None, not found))
    return out


def nlp_system(result: PhenotypeResult) -> str:
    """``"<model> (cancerllm <version>)"`` from the result's provenance (``"cancerllm"`` without one)."""
    prov = result.provenance
    if prov is None:
        return "cancerllm"
    model = prov.model or "unknown model"
    return f"{model} (cancerllm {prov.library_version})"


# --------------------------------------------------------------------------------------------- stage / TNM
_TNM_RE = re.compile(
    r"(?:(?<![A-Za-z0-9])|(?<=[0-9a-dA-DxX)]))"
    r"(?P<prefix>yp|yc|p|c|r|a)?(?P<cat>[TNM])(?P<val>is|[xX]|[0-4](?:mi|[a-dA-D][12]?)?)"
    r"(?P<mod>\s*\((?:sn|i[+-]|mol[+-]|m|f|\d+)\))?"
    r"(?=$|[^A-Za-z0-9]|(?:yp|yc|p|c)?[TNM])"
)
_T_VALID = re.compile(r"^(?:X|0|is|[1-4](?:mi|[a-d][12]?)?)$")
_N_VALID = re.compile(r"^(?:X|0|[1-3](?:mi|[a-c])?)$")
_M_VALID = re.compile(r"^(?:0|1[a-d]?)$")
_GROUP_RE = re.compile(r"^(?P<num>0|i|ii|iii|iv)(?P<suf>[a-c][12]?)?$")
_ARABIC = {"0": "0", "i": "1", "ii": "2", "iii": "3", "iv": "4"}


@dataclass(frozen=True)
class StagePart:
    """One staging value read from a stage answer item.

    Attributes:
        kind: ``"T"``, ``"N"``, ``"M"``, ``"group"`` (a stage group) or ``"unknown"``.
        text: the part as written (``"pT2"``, ``"N0 (i-)"``, ``"Stage IIA"``).
        timing: ``"pathologic"``, ``"clinical"`` or ``"other"`` (recurrence ``r`` / autopsy ``a`` prefixes).
        ajcc: the AJCC category code (``"pT2"``, ``"cM0"``, ``"2A"``), or None when the part is not a
            well-formed AJCC category (``MX``, ``pM0``, an unknown text).
    """

    kind: Literal["T", "N", "M", "group", "unknown"]
    text: str
    timing: Literal["pathologic", "clinical", "other"]
    ajcc: str | None


def _tnm_part(m: re.Match[str]) -> StagePart:
    prefix = (m.group("prefix") or "").lower()
    cat = m.group("cat").upper()
    val = m.group("val").lower()
    val = "X" if val == "x" else val
    text = m.group(0).strip()
    if prefix in ("r", "a"):
        return StagePart(cat, text, "other", None)  # type: ignore[arg-type]
    if cat == "M":
        # AJCC 8: M0 is a clinical category (no pM0); pM1 is pathologic.  An M without prefix is clinical, as
        # in mCODE's example (text "M0", code cM0, Observation code 21907-1).
        if prefix in ("p", "yp"):
            ajcc = f"{prefix}M{val}" if val.startswith("1") and _M_VALID.match(val) else None
            return StagePart("M", text, "pathologic", ajcc)
        ajcc = f"cM{val}" if prefix in ("", "c") and _M_VALID.match(val) else None
        return StagePart("M", text, "clinical", ajcc)
    valid = (_T_VALID if cat == "T" else _N_VALID).match(val)
    if prefix in ("c", "yc"):
        return StagePart(cat, text, "clinical", f"{prefix}{cat}{val}" if valid else None)  # type: ignore[arg-type]
    return StagePart(cat, text, "pathologic",  # type: ignore[arg-type]
                     f"{prefix or 'p'}{cat}{val}" if valid else None)


def split_stage(value: str) -> list[StagePart]:
    """The staging values in one stage answer item: T/N/M categories and/or a stage group.

    ``"Stage IIA"`` -> one group part (AJCC code ``2A``, pathologic unless the item says "clinical");
    ``"pT2 pN0 M0"`` -> T, N, M parts (``pT2``, ``pN0``, ``cM0``); ``"Stage IIA (pT2 N0)"`` -> all three;
    anything else -> one ``"unknown"`` part holding the text.

    Example:
        >>> [p.ajcc for p in split_stage("ypT1c pN1a cM0")]
        ['ypT1c', 'pN1a', 'cM0']
    """
    parts = [_tnm_part(m) for m in _TNM_RE.finditer(value)]
    rest = _TNM_RE.sub(" ", value)
    group = normalize_stage(re.sub(r"[()\[\],;]", " ", rest)) if re.search(r"[A-Za-z0-9]", rest) else ""
    g = _GROUP_RE.match(group)
    if g:
        timing = "clinical" if re.search(r"\bclinical\b|\bc\s*stage\b", value, re.I) else "pathologic"
        code = _ARABIC[g.group("num")] + (g.group("suf") or "").upper()
        text = " ".join(re.sub(r"[()\[\],;]+", " ", rest).split()) if parts else value.strip()
        parts.insert(0, StagePart("group", text, timing, code))  # type: ignore[arg-type]
    if not parts:
        parts.append(StagePart("unknown", value.strip(), "pathologic", None))
    return parts


# --------------------------------------------------------------------------------------------- receptors
RECEPTORS = ("er", "pr", "her2")


def parse_receptor_status(value: str) -> tuple[str | None, str | None]:
    """``(receptor, status)`` of a receptor-status item: receptor ``er``/``pr``/``her2`` or None, status
    ``positive``/``negative``/``equivocal`` or None (reusing the benchmark's normalisation).

    Example:
        >>> parse_receptor_status("HER2/neu: negative"), parse_receptor_status("positive")
        (('her2', 'negative'), (None, 'positive'))
    """
    norm = normalize_receptor_status(value)
    words = norm.split()
    status = words[-1] if words and words[-1] in ("positive", "negative", "equivocal") else None
    receptor = normalize_receptor(value)
    return (receptor if receptor in RECEPTORS else None), status


def receptor_name(value: str) -> str | None:
    """``er``/``pr``/``her2`` for a receptor item, or None."""
    r = normalize_receptor(value)
    return r if r in RECEPTORS else None


# --------------------------------------------------------------------------------------------- size, grade, side
def parse_size(value: str) -> tuple[float, str] | None:
    """The greatest dimension of a tumour-size item and its UCUM unit (``"cm"`` or ``"mm"``), or None when the
    item states no number with a unit.  All dimensions in mm give mm; otherwise cm (the benchmark's rule).

    Example:
        >>> parse_size("1.3 x 1.3 x 1.2 cm"), parse_size("25 x 20 mm"), parse_size("large")
        ((1.3, 'cm'), (25.0, 'mm'), None)
    """
    low = value.lower()
    units = re.findall(r"\d\s*(cm|mm|centimet(?:er|re)s?|millimet(?:er|re)s?)(?![a-z])", low)
    if not units:
        return None
    try:
        cm = float(normalize_tumor_size(value))
    except ValueError:
        return None
    if all(u.startswith(("mm", "milli")) for u in units):
        return round(cm * 10, 3), "mm"
    return cm, "cm"


def grade_key(value: str) -> str | None:
    """``g1``..``g4``, ``high`` or ``low`` for a grade item, or None (:func:`normalize_grade`)."""
    g = normalize_grade(value)
    return g if g in ("g1", "g2", "g3", "g4", "high", "low") else None


def laterality_key(value: str) -> str | None:
    """``left``, ``right``, ``bilateral`` or ``midline`` for a laterality item, or None."""
    side = normalize_laterality(value)
    return side if side in ("left", "right", "bilateral", "midline") else None


BUILTIN = frozenset(p.value for p in Phenotype)
