"""Crash-safe, resumable batch jobs: results written incrementally, one JSON line per input id.

A long extraction over a hospital's reports must survive a crash without losing or duplicating a row.
:class:`ResultWriter` appends each finished batch to a JSONL file and fsyncs it; on restart it reads the
file back, drops a torn last line (a kill in the middle of a write), and reports which ids are done, so the
job continues with the rest.  Each input gets exactly one line: ``{"id": ..., "result": {...}}`` or, for an
input that could not be processed, ``{"id": ..., "error": {"type": ..., "message": ...}}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import DataFormatError, InputError

__all__ = ["ResultWriter", "read_results", "run_job"]


def _scan(path: Path) -> tuple[dict[str, dict[str, Any]], int]:
    """Complete records by id, and the byte length of the valid part of the file."""
    data = path.read_bytes()
    records: dict[str, dict[str, Any]] = {}
    good = 0
    pos = 0
    line_no = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:  # torn last line: no newline was written
            break
        line_no += 1
        raw = data[pos:end]
        pos = end + 1
        if not raw.strip():
            good = pos
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if pos >= len(data):  # only the very last line may be damaged (torn by a crash)
                break
            raise DataFormatError("damaged result line (not valid JSON) before the end of the file",
                                  path=str(path), line=line_no) from None
        if not isinstance(rec, dict) or "id" not in rec:
            raise DataFormatError("result line without an 'id'", path=str(path), line=line_no)
        rid = str(rec["id"])
        if rid in records:
            raise DataFormatError(f"duplicate result for id {rid!r}", path=str(path), line=line_no)
        records[rid] = rec
        good = pos
    return records, good


def read_results(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The complete records of a result file, by id (a torn last line is ignored)."""
    return _scan(Path(path))[0]


class ResultWriter:
    """Append-only, fsync'ed JSONL result file with resume.

    Args:
        path: the output file.
        resume: continue an existing file (its ids count as done); when False an existing file is an error
            unless ``overwrite``.
        overwrite: start afresh, replacing an existing file.
    """

    def __init__(self, path: str | os.PathLike[str], *, resume: bool = True, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.done: dict[str, dict[str, Any]] = {}
        if self.path.exists() and not overwrite:
            if not resume:
                raise InputError(f"{self.path} exists; pass resume=True to continue it or overwrite=True to replace it")
            self.done, good = _scan(self.path)
            if good < self.path.stat().st_size:  # cut a torn last line
                with open(self.path, "r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as f:
                os.fsync(f.fileno())

    def is_done(self, rid: str) -> bool:
        """Whether a record with id ``rid`` is already in the output file."""
        return str(rid) in self.done

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records (each with an ``id``) and fsync; ids already written are refused."""
        lines = []
        batch: dict[str, dict[str, Any]] = {}
        for rec in records:
            rid = str(rec["id"])
            if rid in self.done or rid in batch:
                raise InputError(f"result for id {rid!r} written twice; input ids must be unique")
            batch[rid] = dict(rec)
            lines.append(json.dumps(rec, ensure_ascii=False) + "\n")
        if not lines:
            return
        with open(self.path, "ab") as f:
            f.write("".join(lines).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        self.done.update(batch)


def run_job(
    inputs: Iterable[Any],
    process: Any,
    writer: ResultWriter,
    *,
    chunk_size: int = 32,
    validate: Any = None,
    progress: bool = False,
) -> dict[str, int]:
    """Process the inputs not yet in ``writer`` in chunks, appending one record per input.

    Args:
        inputs: records with ``.id`` and ``.text`` (e.g. :class:`~cancerllm.data.inputs.InputRecord`).
        process: ``list[str] -> list[dict]``, one JSON-able result per text, in order.
        writer: where results go; ids it already holds are skipped (resume).
        chunk_size: inputs per written chunk (a crash loses at most one chunk of work).
        validate: optional ``(text, where) -> text`` raising :class:`InputError` for a bad row; such rows get
            an error record and the rest of the batch goes on.

    Returns:
        counts: ``{"done_before", "processed", "errors"}``.
    """
    todo = [r for r in inputs if not writer.is_done(r.id)]
    counts = {"done_before": len(writer.done), "processed": 0, "errors": 0}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="reports", unit="report")
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        good, records = [], {}
        for r in chunk:
            try:
                if validate is not None:
                    validate(r.text, getattr(r, "where", r.id))
                good.append(r)
            except InputError as exc:
                records[r.id] = {"id": r.id, "error": {"type": type(exc).__name__, "message": str(exc)}}
                counts["errors"] += 1
        if good:
            for r, res in zip(good, process([r.text for r in good])):
                records[r.id] = {"id": r.id, "result": res}
        writer.write([records[r.id] for r in chunk])
        counts["processed"] += len(chunk)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return counts
