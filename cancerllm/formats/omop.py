"""OMOP CDM v5.4 ``NOTE_NLP`` rows of extraction results: one row per extracted item, with its evidence.

:func:`to_note_nlp_rows` gives the rows as dicts with exactly the CDM v5.4 columns (:data:`NOTE_NLP_COLUMNS`,
in table order); :func:`write_note_nlp` writes them as CSV (standard library) or Parquet (``pandas`` and
``pyarrow``).  The column rules, from the CDM v5.4 field definitions:

* ``offset`` (varchar(50), "character offset of the extracted term in the input note"): the start of the
  evidence, ``str(start)``; ``lexical_variant`` is ``text[start:end]``, so ``start + len(lexical_variant)`` is
  the end.  An item without evidence (``not_found``) has no offset and its answer as ``lexical_variant``.
* ``snippet`` (varchar(250)): the evidence with up to ``context`` characters either side (line breaks and
  tabs shown as spaces, one for one).
* ``note_nlp_concept_id``, ``note_nlp_source_concept_id``, ``section_concept_id``: ``0`` ("no matching
  concept"): the package ships no OMOP vocabulary, so it maps no value to a concept id.
* ``nlp_system``: ``"<model> (cancerllm <version>)"``; ``nlp_date`` / ``nlp_datetime``: when the result was
  made (``provenance.created``, UTC), as ISO strings.
* ``term_exists`` ``"Y"``; ``term_temporal`` NULL; ``term_modifiers``: ``key=value`` pairs joined by ``;``:
  ``phenotype``, ``value``, ``match``, ``confidence``, ``needs_review`` and, with an ICD-O-3 lookup, ``icdo3``.

Example:
    >>> from cancerllm.schema import PhenotypeResult
    >>> rows = to_note_nlp_rows([PhenotypeResult(grade=["G2"])], ["Fuhrman grade G2."], note_ids=[7])
    >>> rows[0]["note_id"], rows[0]["offset"], rows[0]["lexical_variant"]
    (7, '14', 'G2')
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import InputError
from ..schema import Phenotype, PhenotypeResult
from ._icdo3 import IcdO3Lookup, resolve_lookup
from ._items import EvidenceItem, check_result, evidence_items, nlp_system

__all__ = ["NOTE_NLP_COLUMNS", "to_note_nlp_rows", "write_note_nlp"]

#: The NOTE_NLP columns of OMOP CDM v5.4, in table order, with their CDM data types.
NOTE_NLP_COLUMNS: dict[str, str] = {
    "note_nlp_id": "integer",
    "note_id": "integer",
    "section_concept_id": "integer",
    "snippet": "varchar(250)",
    "offset": "varchar(50)",
    "lexical_variant": "varchar(250)",
    "note_nlp_concept_id": "integer",
    "note_nlp_source_concept_id": "integer",
    "nlp_system": "varchar(250)",
    "nlp_date": "date",
    "nlp_datetime": "datetime",
    "term_exists": "varchar(1)",
    "term_temporal": "varchar(50)",
    "term_modifiers": "varchar(2000)",
}
_MAX = {name: int(t[8:-1]) for name, t in NOTE_NLP_COLUMNS.items() if t.startswith("varchar(")}
_WS = re.compile(r"[\r\n\t\f\v]")


def _note_ids(results: Sequence[PhenotypeResult], note_ids: Sequence[int] | None) -> list[int]:
    if note_ids is None:
        ids = [r.id for r in results]
        if ids and all(isinstance(i, str) and re.fullmatch(r"[0-9]{1,18}", i) for i in ids):
            return [int(i) for i in ids]  # type: ignore[arg-type]
        return list(range(1, len(results) + 1))
    ids = list(note_ids)
    if len(ids) != len(results):
        raise InputError(f"Mismatch in the number of note_ids ({len(ids)}) and results ({len(results)})")
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int):
            raise InputError(f"note_ids must be integers (NOTE.note_id is an integer); got {type(i).__name__}")
    return ids


def _when(result: PhenotypeResult, override: datetime | None) -> datetime:
    if override is not None:
        when = override
    elif result.provenance is not None:
        when = datetime.fromisoformat(result.provenance.created.replace("Z", "+00:00"))
    else:
        when = datetime.now(timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when.replace(microsecond=0)


def _clip(value: str | None, column: str) -> str | None:
    return None if value is None else value[: _MAX[column]]


def _snippet(text: str, span: tuple[int, int], context: int) -> str:
    start, end = span
    room = max(0, (_MAX["snippet"] - (end - start)) // 2)
    side = min(context, room)
    return _WS.sub(" ", text[max(0, start - side): end + side])[: _MAX["snippet"]]


def _modifiers(item: EvidenceItem, lookup: IcdO3Lookup | None) -> str:
    pairs = [("phenotype", item.phenotype), ("value", item.value), ("match", item.match or "unknown")]
    if item.confidence is not None:
        pairs.append(("confidence", f"{item.confidence:.4f}"))
    pairs.append(("needs_review", "true" if item.needs_review else "false"))
    if lookup is not None:
        if item.phenotype == Phenotype.HISTOLOGICAL_TYPE.value:
            code = lookup.morphology(item.value)
        elif item.phenotype == Phenotype.TUMOR_LOCATION.value:
            code = lookup.topography(item.value)
        else:
            code = None
        if code:
            pairs.append(("icdo3", code))
    text = ";".join(f"{k}={' '.join(v.replace(';', ',').split())}" for k, v in pairs)
    return text[: _MAX["term_modifiers"]]


def to_note_nlp_rows(
    results: Sequence[PhenotypeResult] | PhenotypeResult,
    texts: Sequence[str | None] | str | None,
    note_ids: Sequence[int] | None = None,
    *,
    start_id: int = 1,
    context: int = 60,
    icdo3: IcdO3Lookup | bool = True,
    nlp_datetime: datetime | None = None,
) -> list[dict[str, Any]]:
    """``NOTE_NLP`` rows (dicts with exactly :data:`NOTE_NLP_COLUMNS`), one per extracted item.

    Args:
        results: the extraction results (or one result).
        texts: the report text of each result, in the same order (the NOTE rows' ``note_text``); evidence
            offsets refer to them.  None for a result gives rows without snippets (offsets only when the
            result's details have spans).
        note_ids: the ``NOTE.note_id`` of each result (integers).  Default: the results' ids when all are
            integer strings, else 1, 2, ... in order.
        start_id: the first ``note_nlp_id``; rows are numbered consecutively.
        context: characters of text either side of the evidence in ``snippet`` (the column holds 250).
        icdo3: ICD-O-3 codes for histology / site items in ``term_modifiers`` (see
            :func:`~cancerllm.formats.to_fhir_bundle`).
        nlp_datetime: the processing time to record (default: each result's ``provenance.created``, else now).

    Returns:
        The rows, in result order and, within a result, in phenotype order.  Results with an ``error`` and
        "Not relevant" answers give no rows.

    Raises:
        InputError: a result that is not a :class:`~cancerllm.schema.PhenotypeResult`; ``texts`` or
            ``note_ids`` of another length, or non-integer note ids; a text that is not the result's input
            (hash check) or a span outside it; a negative ``start_id`` or ``context``.
    """
    if isinstance(results, PhenotypeResult):
        results = [results]
        texts = [texts] if texts is None or isinstance(texts, str) else texts
    if isinstance(texts, str) or texts is None:
        raise InputError("texts must be a sequence with one report text (or None) per result")
    results, texts = list(results), list(texts)
    if len(texts) != len(results):
        raise InputError(f"Mismatch in the number of texts ({len(texts)}) and results ({len(results)})")
    if isinstance(start_id, bool) or not isinstance(start_id, int) or start_id < 0:
        raise InputError(f"start_id={start_id!r}; use a non-negative integer")
    if context < 0:
        raise InputError(f"context={context!r}; use a non-negative number of characters")
    for i, (r, t) in enumerate(zip(results, texts)):
        check_result(r, t, where=f"results[{i}]")
    ids = _note_ids(results, note_ids)
    lookup = resolve_lookup(icdo3)

    rows: list[dict[str, Any]] = []
    for result, text, note_id in zip(results, texts, ids):
        when = _when(result, nlp_datetime)
        system = _clip(nlp_system(result), "nlp_system")
        for item in evidence_items(result, text):
            evidence = item.evidence(text)
            found = item.span is not None and item.match != "not_found"
            rows.append({
                "note_nlp_id": start_id + len(rows),
                "note_id": note_id,
                "section_concept_id": 0,
                "snippet": _snippet(text, item.span, context) if found and text is not None else None,  # type: ignore[arg-type]
                "offset": str(item.span[0]) if found else None,  # type: ignore[index]
                "lexical_variant": _clip(evidence if found and evidence else item.value, "lexical_variant"),
                "note_nlp_concept_id": 0,
                "note_nlp_source_concept_id": 0,
                "nlp_system": system,
                "nlp_date": when.date().isoformat(),
                "nlp_datetime": when.isoformat(timespec="seconds"),
                "term_exists": "Y",
                "term_temporal": None,
                "term_modifiers": _modifiers(item, lookup),
            })
    return rows


def _check_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = list(rows)
    expected = list(NOTE_NLP_COLUMNS)
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or list(row) != expected:
            got = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise InputError(f"rows[{i}] does not have the NOTE_NLP columns in order; expected {expected}, "
                             f"got {got}; build rows with to_note_nlp_rows")
    return rows


def write_note_nlp(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write ``NOTE_NLP`` rows to ``path``: CSV for ``.csv`` (header = the column names, NULL = empty field),
    Parquet for ``.parquet`` / ``.pq`` (integer columns int64, ``nlp_date`` date32, ``nlp_datetime``
    timestamp, the others strings; NULL = null).

    Returns:
        The path written.

    Raises:
        InputError: rows without exactly the NOTE_NLP columns, or another file suffix.
        MissingDependencyError: Parquet without ``pandas`` or ``pyarrow``.
    """
    rows = _check_rows(rows)
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        with open(out, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(NOTE_NLP_COLUMNS)
            for row in rows:
                writer.writerow(["" if v is None else v for v in row.values()])
        return out
    if suffix in (".parquet", ".pq"):
        pd = require("pandas", feature="writing NOTE_NLP as Parquet")
        require("pyarrow", feature="writing NOTE_NLP as Parquet")
        frame = pd.DataFrame(rows, columns=list(NOTE_NLP_COLUMNS))
        for name, kind in NOTE_NLP_COLUMNS.items():
            if kind == "integer":
                frame[name] = frame[name].astype("int64")
            elif kind == "date":
                frame[name] = pd.to_datetime(frame[name]).dt.date
            elif kind == "datetime":
                frame[name] = pd.to_datetime(frame[name])
            else:
                frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
        frame.to_parquet(out, engine="pyarrow", index=False)
        return out
    raise InputError(f"unknown NOTE_NLP file type {suffix!r} for {out.name}; use .csv, .parquet or .pq")
