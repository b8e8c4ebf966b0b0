"""Batch inputs for the command line, batch jobs and Python: a text file, a folder of text files, JSONL, JSON
or CSV.

Every input gets an id (file name, an id field/column, or the 1-based record number) that the output carries,
so results can be joined back and interrupted runs resumed.  The records are read by the one lossless reader
of :mod:`cancerllm.data.io` (:func:`~cancerllm.data.iter_records`): a BOM is dropped, quoted CSV cells keep
their line breaks byte for byte, JSONL is split on ``\\n`` only, and ids are kept as the exact strings of the
file.

Example:
    >>> from cancerllm.data import read_inputs
    >>> [(r.id, r.where) for r in read_inputs("reports.csv", text_column="report")]   # doctest: +SKIP
    [('TCGA-A1', 'reports.csv:2'), ('TCGA-A2', 'reports.csv:5')]
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, InputError
from .io import _decode, _iter_csv, _read_bytes, infer_format, iter_records

__all__ = ["ID_FIELDS", "InputRecord", "read_inputs"]

#: Fields/columns taken as the id, in this order, when no id column is named.
ID_FIELDS: tuple[str, ...] = ("id", "patient_id", "report_id", "note_id")
_TEXT_SUFFIXES = (".txt", ".text", "")


@dataclass(frozen=True)
class InputRecord:
    """One input and its id; ``where`` names its place (file and line) for error messages.

    ``text`` is the text exactly as read.  A JSON value that is not a string (``null``, a number) is kept
    as it is, so that the job runner can give that row an error record instead of stopping the batch.
    """

    id: str
    text: Any
    where: str


def _id_of(value: Any, field: str, path: str, line: int) -> str:
    """The id in ``value`` as an exact string: strings as they are, JSON integers in decimal."""
    if isinstance(value, str):
        if value == "":
            raise DataFormatError(f"empty id in {field!r}; every record needs an id (or drop the id column "
                                  "to number the records)", path=path, line=line)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None:
        raise DataFormatError(f"null id in {field!r}; every record needs an id (or drop the id field to "
                              "number the records)", path=path, line=line)
    raise DataFormatError(f"id {field!r} is a {type(value).__name__}; ids must be strings or integers "
                          "(write it as a string)", path=path, line=line)


def _table_records(p: Path, text_column: str, id_column: str | None) -> Iterator[tuple[int, InputRecord]]:
    path = str(p)
    header, rows = _iter_csv(p)
    if text_column not in header:
        raise DataFormatError(f"no column {text_column!r}; columns are: {', '.join(header) or '(none)'}; "
                              "pass --text-column", path=path, line=1)
    if id_column is not None and id_column not in header:
        raise DataFormatError(f"no id column {id_column!r}; columns are: {', '.join(header)}", path=path, line=1)
    id_col = id_column if id_column is not None else next((k for k in ID_FIELDS if k in header), None)
    for n, (line, row) in enumerate(rows, 1):
        where = f"{path}:{line}"
        rid = _id_of(row[id_col], id_col, path, line) if id_col is not None else str(n)
        yield line, InputRecord(rid, row[text_column], where)


def _json_records(
    p: Path, fmt: str, text_column: str, id_column: str | None
) -> Iterator[tuple[int, InputRecord]]:
    path = str(p)
    for n, (line, rec) in enumerate(iter_records(p, format=fmt), 1):
        where = f"{path}:{line}"
        if text_column not in rec:
            raise DataFormatError(f"no {text_column!r} field (fields: {', '.join(map(str, rec)) or '(none)'}); "
                                  "pass --text-column", path=path, line=line)
        if id_column is not None:
            if id_column not in rec:
                raise DataFormatError(f"no id field {id_column!r}", path=path, line=line)
            rid = _id_of(rec[id_column], id_column, path, line)
        else:
            key = next((k for k in ID_FIELDS if k in rec), None)
            rid = _id_of(rec[key], key, path, line) if key is not None else str(n)
        yield line, InputRecord(rid, rec[text_column], where)


def read_inputs(
    path: str | os.PathLike[str], *, text_column: str = "text", id_column: str | None = None
) -> list[InputRecord]:
    """Read inputs from ``path``.

    * a ``.txt`` file: one input, id = the file stem;
    * a folder: each ``*.txt`` file one input, id = its stem, in name order;
    * ``.jsonl`` / ``.ndjson`` / ``.json`` (array of objects): the ``text_column`` field of each record;
    * ``.csv``: the ``text_column`` column of each row.

    Ids come from ``id_column`` when given, else from the first of :data:`ID_FIELDS` present (a CSV column
    of the header; a field of each JSON record), else the 1-based record number.  Ids are exact strings
    (CSV cells as written, never stripped; JSON strings, or integers in decimal); an empty or null id, or
    a repeated one, is an error.  Texts are returned exactly as stored.

    Raises:
        InputError: the path does not exist, cannot be read or has an unknown suffix.
        DataFormatError: malformed content, a missing column/field, a bad or duplicate id, naming the file
            and line.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() == ".txt" and f.is_file())
        if not files:
            raise InputError(f"{p}: the folder holds no .txt files")
        return [InputRecord(f.stem, _decode(_read_bytes(f), str(f)), str(f)) for f in files]
    suffix = p.suffix.lower()
    if suffix in _TEXT_SUFFIXES:
        return [InputRecord(p.stem, _decode(_read_bytes(p), str(p)), str(p))]
    try:
        fmt = infer_format(p)
    except InputError:
        raise InputError(f"{p}: unknown input type {suffix!r}; use .txt, a folder of .txt files, .jsonl, "
                         ".json or .csv") from None
    records = _table_records(p, text_column, id_column) if fmt == "csv" else _json_records(
        p, fmt, text_column, id_column)
    out: list[InputRecord] = []
    seen: dict[str, str] = {}
    for line, r in records:
        if r.id in seen:
            raise DataFormatError(f"duplicate id {r.id!r} (first at {seen[r.id]}); ids must be unique "
                                  "(pass --id-column)", path=str(p), line=line)
        seen[r.id] = r.where
        out.append(r)
    return out
