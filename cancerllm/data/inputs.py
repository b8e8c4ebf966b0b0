"""Batch inputs for the command line and batch jobs: a text file, a folder of text files, JSONL or CSV.

Every input gets an id (file name, an id column, or the 1-based row/line number) that the output carries, so
results can be joined back and interrupted runs resumed.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFormatError, InputError

__all__ = ["InputRecord", "read_inputs"]

_ID_KEYS = ("id", "patient_id", "report_id", "note_id")


@dataclass(frozen=True)
class InputRecord:
    """One input text and its id; ``where`` names its place (file and line) for error messages."""

    id: str
    text: str
    where: str


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not valid UTF-8 at byte {exc.start}; re-encode the file as UTF-8",
                              path=where) from None


def read_inputs(
    path: str | os.PathLike[str], *, text_column: str = "text", id_column: str | None = None
) -> list[InputRecord]:
    """Read inputs from ``path``: a ``.txt`` file (one input), a folder (each ``*.txt`` one input, id = file
    stem), ``.jsonl`` (``text_column`` field per line) or ``.csv`` (``text_column`` column).

    Raises:
        InputError: the path does not exist or has an unknown suffix.
        DataFormatError: malformed content, naming the file and line.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() == ".txt" and f.is_file())
        if not files:
            raise InputError(f"{p}: the folder holds no .txt files")
        return [InputRecord(f.stem, _decode(f.read_bytes(), str(f)), str(f)) for f in files]
    suffix = p.suffix.lower()
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read the file ({exc.strerror})") from None
    text = _decode(raw, str(p))
    if suffix in (".txt", ".text", ""):
        return [InputRecord(p.stem, text, str(p))]
    out: list[InputRecord] = []
    if suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"invalid JSON ({exc.msg})", path=str(p), line=n) from None
            if not isinstance(rec, dict) or text_column not in rec:
                raise DataFormatError(f"no {text_column!r} field; pass --text-column", path=str(p), line=n)
            rid = rec.get(id_column) if id_column else next((rec[k] for k in _ID_KEYS if k in rec), n)
            out.append(InputRecord(str(rid), rec[text_column], f"{p}:{n}"))
    elif suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        cols = reader.fieldnames or []
        if text_column not in cols:
            raise DataFormatError(f"no column {text_column!r}; columns are: {', '.join(cols) or '(none)'}; "
                                  "pass --text-column", path=str(p))
        if id_column and id_column not in cols:
            raise DataFormatError(f"no id column {id_column!r}; columns are: {', '.join(cols)}", path=str(p))
        for n, row in enumerate(reader, 2):
            rid = row[id_column] if id_column else next((row[k] for k in _ID_KEYS if k in row and row[k]), n - 1)
            out.append(InputRecord(str(rid), row[text_column] or "", f"{p}:{n}"))
    else:
        raise InputError(f"{p}: unknown input type {suffix!r}; use .txt, a folder, .jsonl or .csv")
    seen: set[str] = set()
    for r in out:
        if r.id in seen:
            raise DataFormatError(f"duplicate id {r.id!r}; ids must be unique (pass --id-column)", path=r.where)
        seen.add(r.id)
    return out
