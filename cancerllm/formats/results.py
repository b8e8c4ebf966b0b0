"""Extraction results written in the format asked: JSONL (everything: answers, details, raw answers,
provenance), CSV and Parquet (one row per report), FHIR (one Bundle per report, NDJSON) or OMOP
``NOTE_NLP`` (CSV or Parquet).

The command line writes every run as JSONL first (the crash-safe, resumable job file, one line per input id)
and converts it here; results can be rebuilt from those lines with :func:`results_from_records`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schema import Phenotype, PhenotypeResult

__all__ = ["FORMATS", "format_for", "result_record", "results_from_records", "write_results"]

#: output formats by name
FORMATS = ("jsonl", "csv", "parquet", "fhir", "omop")
_BY_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_SUFFIXES = {"jsonl": (".jsonl", ".ndjson"), "csv": (".csv",), "parquet": (".parquet", ".pq"),
             "fhir": (".ndjson", ".jsonl"), "omop": (".csv", ".parquet", ".pq")}


def format_for(path: str | os.PathLike[str], fmt: str | None) -> str:
    """The output format: ``fmt`` if given (checked against the file suffix), else inferred from it."""
    suffix = Path(path).suffix.lower()
    if fmt is None:
        if suffix not in _BY_SUFFIX:
            raise InputError(f"{path}: cannot tell the format from {suffix or 'no suffix'!r}; end the file in "
                             ".jsonl, .csv or .parquet, or pass --format (fhir, omop)")
        return _BY_SUFFIX[suffix]
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")
    if suffix not in _SUFFIXES[fmt]:
        raise InputError(f"{path}: a {fmt} output must end in {' or '.join(_SUFFIXES[fmt])}")
    return fmt


def result_record(result: PhenotypeResult, names: Sequence[str]) -> dict[str, Any]:
    """The JSON record of one result: the answers (``names``), ``needs_review``, and ``details``, ``raw``
    and ``provenance`` (the audit trail)."""
    rec: dict[str, Any] = dict(result.as_dict(names))
    dumped = result.model_dump(mode="json", include={"details", "raw", "provenance"})
    rec.update(needs_review=result.needs_review, **dumped)
    return rec


def results_from_records(records: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[PhenotypeResult]]:
    """Rebuild results from job lines ``{id: {"result": record} | {"error": {...}}}`` (see
    :func:`cancerllm.jobs.read_results`): ``(ids, results)``; an error line gives a result with ``error``."""
    builtin = {p.value for p in Phenotype}
    ids, out = [], []
    for rid, line in records.items():
        rec = line.get("result")
        if rec is None:
            msg = (line.get("error") or {}).get("message") or "failed"
            out.append(PhenotypeResult(id=rid, error=msg))
        else:
            known = {"details", "raw", "provenance", "needs_review", "error", "id"}
            fields = {k: v for k, v in rec.items() if k in builtin}
            custom = {k: v for k, v in rec.items() if k not in builtin and k not in known}
            out.append(PhenotypeResult(id=rid, custom=custom, raw=rec.get("raw") or {},
                                       details=rec.get("details") or {}, provenance=rec.get("provenance"),
                                       **fields))
        ids.append(rid)
    return ids, out


def _flat_rows(ids: Sequence[str], results: Sequence[PhenotypeResult], names: Sequence[str],
               texts: Mapping[str, str], run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per result with the columns of :class:`cancerllm.scale.BatchExtractor` (the same rows whichever
    engine ran the job); rows that failed get the model and input hash from ``run`` and ``texts``."""
    import hashlib

    from ..scale.predictor import error_reason

    rows = []
    for rid, r in zip(ids, results):
        p = r.provenance
        text = texts.get(rid)
        row: dict[str, Any] = {"id": rid, **r.as_dict(names)}
        row.update({f"raw_{n}": r.raw.get(n) for n in names})
        row.update(error=error_reason(r.error), needs_review=None if r.error else r.needs_review,
                   model=p.model if p else run.get("base_model"),
                   adapter_sha256=p.adapter_sha256 if p else run.get("adapter_sha256"),
                   library_version=p.library_version if p else run.get("library_version"),
                   input_sha256=p.input_sha256 if p else (
                       hashlib.sha256(text.encode("utf-8")).hexdigest() if isinstance(text, str) else None))
        rows.append(row)
    return rows


def write_results(path: str | os.PathLike[str], fmt: str, records: Mapping[str, Mapping[str, Any]],
                  texts: Mapping[str, str], names: Sequence[str], run: Mapping[str, Any] | None = None) -> Path:
    """Write job lines ``records`` (by id) as ``fmt`` to ``path`` (atomically); ``texts`` are the reports by
    id (FHIR and OMOP quote the evidence from them); ``run`` (``base_model``, ``adapter_sha256``,
    ``library_version``) fills those columns of rows that failed."""
    run = run or {}
    out = Path(path)
    tmp = out.with_name(f"{out.stem}.tmp{out.suffix}")  # the same suffix: writers choose by it
    ids, results = results_from_records(records)
    if fmt == "csv":
        import csv

        with open(tmp, "w", newline="", encoding="utf-8") as f:
            rows = _flat_rows(ids, results, names, texts, run)
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["id", *names, "error"])
            w.writeheader()
            for row in rows:
                w.writerow({k: "; ".join(v) if isinstance(v, list) else ("" if v is None else v)
                            for k, v in row.items()})
    elif fmt == "parquet":
        from .._optional import require

        pd = require("pandas", feature="Parquet output")
        require("pyarrow", feature="Parquet output")
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ..scale.predictor import arrow_schema

        rows = _flat_rows(ids, results, names, texts, run)
        cols = list(rows[0]) if rows else ["id", *names]
        schema = arrow_schema(cols, names)  # the schema of the Ray and Spark outputs
        frame = pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object) for c in cols})
        pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), tmp)
    elif fmt == "fhir":
        from .fhir import to_fhir_bundle

        with open(tmp, "w", encoding="utf-8") as f:
            for rid, r in zip(ids, results):
                if r.error:
                    continue  # nothing was extracted: no Bundle (the JSONL keeps the error)
                f.write(json.dumps(to_fhir_bundle(r, texts.get(rid), report_id=rid), ensure_ascii=False) + "\n")
    elif fmt == "omop":
        from .omop import to_note_nlp_rows, write_note_nlp

        good = [(rid, r) for rid, r in zip(ids, results) if not r.error]
        note_ids = [int(rid) if rid.isdigit() else None for rid, _ in good]
        if any(n is None for n in note_ids):
            note_ids = list(range(1, len(good) + 1))  # NOTE ids must be integers: number the reports
        rows = to_note_nlp_rows([r for _, r in good], [texts.get(rid) for rid, _ in good], note_ids)
        write_note_nlp(rows, tmp)
    elif fmt == "jsonl":
        with open(tmp, "w", encoding="utf-8") as f:
            for line in records.values():
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
    else:  # pragma: no cover - checked by format_for
        raise InputError(f"unknown output format {fmt!r}")
    os.replace(tmp, out)
    return out
