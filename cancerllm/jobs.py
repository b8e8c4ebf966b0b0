"""Crash-safe, resumable batch jobs: results written incrementally, one JSON line per input id.

A long extraction over a hospital's reports must survive a crash without losing or duplicating a row.
:class:`ResultWriter` appends each finished batch to a JSONL file and fsyncs it; on restart it reads the
file back, drops a torn last line (a kill in the middle of a write), and reports which ids are done, so the
job continues with the rest.  Each input gets exactly one line: ``{"id": ..., "result": {...}}`` or, for an
input that could not be processed, ``{"id": ..., "error": {"type": ..., "message": ...}}`` -- except that a
resumed run with ``retry_errors=True`` may append a new line for an id whose line was an error; the last line
of an id counts (:func:`read_results`).

``run`` settings (model, adapter hash, task settings) can be recorded beside the file (``<file>.run.json``):
a resumed run with different settings is refused, so one file never mixes results of two models.  SIGINT and
SIGTERM stop a :func:`run_job` gracefully: the chunk in flight is finished and written, then the job returns
with ``interrupted`` set (a second signal stops at once, as usual).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import DataFormatError, InputError
from .tasks._common import chunked

__all__ = ["ResultWriter", "read_results", "run_job"]


def _scan(path: Path, *, keep: bool = True) -> tuple[dict[str, dict[str, Any] | None], int]:
    """Complete records by id (the last line of an id; only whether it is an error, ``{"error": True}``,
    when not ``keep``), and the byte length of the valid part of the file.  The file is read line by line:
    memory holds one line (and the ids) at a time.  A second line for an id is allowed only after an error
    line (a retried error)."""
    records: dict[str, dict[str, Any] | None] = {}
    good = 0
    pos = 0
    line_no = 0
    size = path.stat().st_size
    with open(path, "rb") as fh:
        for raw_line in fh:
            line_no += 1
            if not raw_line.endswith(b"\n"):  # torn last line: no newline was written
                break
            pos += len(raw_line)
            raw = raw_line[:-1]
            if not raw.strip():
                good = pos
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                if pos >= size:  # only the very last line may be damaged (torn by a crash)
                    break
                raise DataFormatError("damaged result line (not valid JSON) before the end of the file",
                                      path=str(path), line=line_no) from None
            if not isinstance(rec, dict) or "id" not in rec:
                raise DataFormatError("result line without an 'id'", path=str(path), line=line_no)
            rid = str(rec["id"])
            if rid in records and not (records[rid] or {}).get("error"):
                raise DataFormatError(f"duplicate result for id {rid!r}", path=str(path), line=line_no)
            records[rid] = rec if keep else ({"error": True} if "error" in rec else None)
            good = pos
    return records, good


def read_results(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The complete records of a result file, by id (a torn last line is ignored)."""
    return _scan(Path(path))[0]  # type: ignore[return-value]


class ResultWriter:
    """Append-only, fsync'ed JSONL result file with resume.

    Args:
        path: the output file.
        resume: continue an existing file (its ids count as done); when False an existing file is an error
            unless ``overwrite``.
        overwrite: start afresh, replacing an existing file.
    """

    def __init__(self, path: str | os.PathLike[str], *, resume: bool = True, overwrite: bool = False,
                 retry_errors: bool = False, run: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        #: the ids already in the file (only ids are kept: memory grows with the number of ids, not results)
        self.done: set[str] = set()
        #: ids whose line is an error, to be tried again (``retry_errors``)
        self.retry: set[str] = set()
        meta = self.path.with_name(self.path.name + ".run.json")
        if self.path.exists() and not overwrite:
            if not resume:
                raise InputError(f"{self.path} exists; pass resume=True to continue it or overwrite=True to replace it")
            if run is not None and meta.exists():
                saved = json.loads(meta.read_text(encoding="utf-8"))
                changed = sorted(k for k in set(saved) | set(run) if saved.get(k) != run.get(k))
                if changed:
                    raise InputError(f"{self.path} holds results of other settings ({', '.join(changed)} differ); "
                                     "write to another file, or start afresh with --no-resume")
            ids, good = _scan(self.path, keep=False)
            self.done = set(ids)
            if retry_errors:
                self.retry = {rid for rid, flag in ids.items() if flag}
                self.done -= self.retry
            if good < self.path.stat().st_size:  # cut a torn last line
                with open(self.path, "r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as f:
                os.fsync(f.fileno())
        if run is not None:
            tmp = meta.with_name(meta.name + ".tmp")
            tmp.write_text(json.dumps(dict(run), indent=2, sort_keys=True, default=str), encoding="utf-8")
            os.replace(tmp, meta)

    def is_done(self, rid: str) -> bool:
        """Whether a record with id ``rid`` is already in the output file."""
        return str(rid) in self.done

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records (each with an ``id``) and fsync; ids already written are refused."""
        lines = []
        batch: set[str] = set()
        for rec in records:
            rid = str(rec["id"])
            if rid in self.done or rid in batch:
                raise InputError(f"result for id {rid!r} written twice; input ids must be unique")
            batch.add(rid)
            self.retry.discard(rid)
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
        inputs: records with ``.id`` and ``.text`` (e.g. :class:`~cancerllm.data.inputs.InputRecord`): a list
            or any iterable, a generator included; it is consumed ``chunk_size`` records at a time, so inputs
            are never all in memory and results are written as they come.
        process: ``list[str] -> list[dict]``, one JSON-able result per text, in order.
        writer: where results go; ids it already holds are skipped (resume).
        chunk_size: inputs per written chunk (a crash loses at most one chunk of work).
        validate: optional ``(text, where) -> text`` raising :class:`InputError` for a bad row; such rows get
            an error record and the rest of the batch goes on.

    Returns:
        counts: ``{"done_before", "processed", "errors", "interrupted"}`` (``interrupted``: 1 when a SIGINT or
        SIGTERM stopped the job after writing the chunk in flight).
    """
    counts = {"done_before": len(writer.done), "processed": 0, "errors": 0, "interrupted": 0}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = len(inputs) - len(writer.done) if hasattr(inputs, "__len__") else None
        bar = tqdm(total=total, desc="reports", unit="report")
    with _graceful_stop() as stop:
        for chunk in chunked((r for r in inputs if not writer.is_done(r.id)), max(1, int(chunk_size))):
            _run_chunk(chunk, process, writer, validate, counts)
            if bar is not None:
                bar.update(len(chunk))
            if stop.is_set():  # a signal came while the chunk ran: its results are written; stop here
                counts["interrupted"] = 1
                break
    if bar is not None:
        bar.close()
    return counts


def _run_chunk(chunk: list[Any], process: Any, writer: ResultWriter, validate: Any, counts: dict[str, int]) -> None:
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


@contextlib.contextmanager
def _graceful_stop() -> Iterator[threading.Event]:
    """While active (main thread only), the first SIGINT/SIGTERM sets the event instead of stopping the
    process; a second one stops it as usual.  Handlers are restored on exit."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():  # second signal: the usual behaviour
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))
            signal.raise_signal(signum)
            return
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
