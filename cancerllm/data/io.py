"""Reading and writing examples and records: JSONL, JSON, CSV and pandas DataFrames.

Every reader validates what it reads.  A malformed line, a record with a missing or wrongly typed field, a
CSV without a required column or bytes that are not UTF-8 raise :class:`~cancerllm.errors.DataFormatError`
naming the file and the 1-based line; nothing is skipped silently.  Blank lines in JSONL files are not
data and are skipped.

Reading is lossless: this module holds the one record reader that the Python API, the command line and
the batch jobs share (:func:`iter_records`).  Files are UTF-8 with an optional byte-order mark (Excel's
"CSV UTF-8"); CSV is parsed from the exact text (quoted cells keep their line breaks, ``\r\n``
included, byte for byte); JSONL is split on ``\n`` only, so a U+2028 or a lone ``\r`` inside a string
stays part of its line (the ``\r`` of a CRLF line end is JSON whitespace and ignored by the parser).

Writers are atomic: the data goes to a temporary file in the target folder, which then replaces the target
(``os.replace``), so an interrupted write never leaves a half-written file behind.

Example:
    >>> from cancerllm.data import read_examples, write_examples
    >>> write_examples(examples, "train.jsonl")          # doctest: +SKIP
    >>> read_examples("train.jsonl") == examples          # doctest: +SKIP
    True
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .._optional import require
from ..errors import DataFormatError, InputError
from ..schema import Example

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "EXAMPLE_FIELDS",
    "FORMATS",
    "TCGARecord",
    "examples_from_dataframe",
    "examples_to_dataframe",
    "infer_format",
    "iter_records",
    "read_examples",
    "read_jsonl",
    "read_records",
    "read_tcga",
    "write_examples",
    "write_jsonl",
    "write_records",
]

Format = Literal["jsonl", "json", "csv"]
PathLike = str | os.PathLike
#: The file formats understood by the readers and writers.
FORMATS: tuple[str, ...] = ("jsonl", "json", "csv")
#: Columns of an example table, in the order they are written.
EXAMPLE_FIELDS: tuple[str, ...] = ("instruction", "context", "response", "question", "id", "meta")
_REQUIRED_FIELDS: tuple[str, ...] = ("instruction",)
_SUFFIXES: dict[str, str] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}


# --------------------------------------------------------------------------------------------- helpers
def infer_format(path: PathLike, format: str | None = None) -> str:
    """The file format of ``path``: ``format`` when given, else from the suffix.

    Args:
        path: file path; ``.jsonl``/``.ndjson`` -> ``"jsonl"``, ``.json`` -> ``"json"``, ``.csv`` -> ``"csv"``.
        format: explicit format, overrides the suffix.

    Raises:
        InputError: unknown format or suffix.
    """
    if format is not None:
        fmt = format.lower().lstrip(".")
        if fmt not in FORMATS:
            raise InputError(f"unknown data format {format!r}; use one of: {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise InputError(
            f"cannot infer the data format of {os.fspath(path)!r} from its suffix {suffix or '(none)'!r}; "
            f"use a .jsonl, .json or .csv file or pass format= ({', '.join(FORMATS)})"
        )
    return _SUFFIXES[suffix]


def _decode(data: bytes, path: str) -> str:
    """UTF-8 text of ``data`` (a leading BOM is dropped); invalid bytes raise naming the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFormatError(
            f"invalid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the file as UTF-8",
            path=path,
            line=line,
        ) from None


def _read_bytes(path: PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"data file not found: {os.fspath(path)}") from None
    except IsADirectoryError:
        raise InputError(f"expected a data file but {os.fspath(path)} is a directory") from None
    except OSError as exc:
        raise InputError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None


def _atomic_write(path: PathLike, write: Callable[[io.TextIOBase], None]) -> Path:
    """Write text through ``write(fh)`` into a temporary file next to ``path``, then rename it onto ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def _describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(record)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "missing":
            parts.append(f"missing required field {loc!r}")
        elif err.get("type") == "extra_forbidden":
            parts.append(f"unknown field {loc!r}")
        else:
            parts.append(f"field {loc!r}: {msg}")
    return "; ".join(parts)


def _example_from_record(record: Any, path: str | None, line: int | None) -> Example:
    if not isinstance(record, Mapping):
        raise DataFormatError(
            f"expected a JSON object with fields {', '.join(EXAMPLE_FIELDS)}, got {type(record).__name__}",
            path=path,
            line=line,
        )
    try:
        return Example.model_validate(dict(record))
    except ValidationError as exc:
        raise DataFormatError(
            f"invalid example: {_describe_validation(exc)} (allowed fields: {', '.join(EXAMPLE_FIELDS)}; "
            f"required: {', '.join(_REQUIRED_FIELDS)})",
            path=path,
            line=line,
        ) from None


# --------------------------------------------------------------------------------------------- JSONL
def _iter_jsonl(path: PathLike) -> Iterator[tuple[int, Any]]:
    """``(line_number, value)`` for every non-blank line of a JSONL file.

    Lines are split on ``b"\n"`` only (never on U+2028, U+0085 or a lone ``\r`` inside a string); the
    ``\r`` of a CRLF line end is JSON whitespace and ignored by the parser; a BOM on line 1 is dropped.
    """
    p = os.fspath(path)
    data = _read_bytes(path)
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        try:
            text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise DataFormatError(
                f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); save the file as UTF-8",
                path=p,
                line=lineno,
            ) from None
        if not text.strip():
            continue
        try:
            yield lineno, json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"malformed JSON at column {exc.colno}: {exc.msg}; each line must be one JSON object",
                path=p,
                line=lineno,
            ) from None


def read_jsonl(path: PathLike) -> list[dict[str, Any]]:
    """Read a JSON Lines file: one JSON object per line (blank lines are skipped).

    Args:
        path: the ``.jsonl`` file.

    Returns:
        The objects, in file order.

    Raises:
        DataFormatError: malformed JSON, a line that is not an object, or invalid UTF-8 (names the line).
    """
    out: list[dict[str, Any]] = []
    for lineno, value in _iter_jsonl(path):
        if not isinstance(value, dict):
            raise DataFormatError(
                f"expected a JSON object, got {type(value).__name__}", path=os.fspath(path), line=lineno
            )
        out.append(value)
    return out


def write_jsonl(records: Iterable[Mapping[str, Any]], path: PathLike) -> Path:
    """Write ``records`` as JSON Lines (UTF-8, non-ASCII kept as is), atomically.

    Args:
        records: JSON-serialisable mappings.
        path: target file; parent folders are created.

    Returns:
        The path written.
    """

    def write(fh: io.TextIOBase) -> None:
        for rec in records:
            fh.write(json.dumps(dict(rec), ensure_ascii=False) + "\n")

    return _atomic_write(path, write)


# --------------------------------------------------------------------------------------------- JSON
def _iter_json_array(path: PathLike) -> Iterator[tuple[int, Any]]:
    """``(line_number, element)`` for each element of a top-level JSON array (line where it starts)."""
    p = os.fspath(path)
    text = _decode(_read_bytes(path), p)
    decoder = json.JSONDecoder()
    n = len(text)

    def skip_ws(i: int) -> int:
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    def line_of(i: int) -> int:
        return text.count("\n", 0, i) + 1

    i = skip_ws(0)
    if i >= n or text[i] != "[":
        raise DataFormatError(
            "expected a JSON array of objects ([{...}, {...}]); for one object per line use a .jsonl file",
            path=p,
            line=line_of(i),
        )
    i = skip_ws(i + 1)
    if i < n and text[i] == "]":
        i = skip_ws(i + 1)
        if i < n:
            raise DataFormatError("unexpected data after the JSON array", path=p, line=line_of(i))
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"malformed JSON at column {exc.colno}: {exc.msg}", path=p, line=exc.lineno
            ) from None
        yield line_of(i), value
        i = skip_ws(end)
        if i < n and text[i] == ",":
            i = skip_ws(i + 1)
            continue
        if i < n and text[i] == "]":
            i = skip_ws(i + 1)
            if i < n:
                raise DataFormatError("unexpected data after the JSON array", path=p, line=line_of(i))
            return
        raise DataFormatError(
            "malformed JSON: expected ',' or ']' after an array element", path=p, line=line_of(i)
        )


def _write_json(records: Iterable[Mapping[str, Any]], path: PathLike) -> Path:
    def write(fh: io.TextIOBase) -> None:
        json.dump([dict(r) for r in records], fh, ensure_ascii=False, indent=1)
        fh.write("\n")

    return _atomic_write(path, write)


# --------------------------------------------------------------------------------------------- CSV
def _iter_csv(path: PathLike) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Header and ``(line_number, row)`` pairs of a CSV file (line where the row starts).

    The file is decoded whole (BOM dropped) and parsed with ``newline=""`` semantics, so quoted cells keep
    their line breaks exactly (``\r\n``, ``\n`` or ``\r``); cells are returned unstripped.  Quoting is
    strict: a quote that is never closed, or text after a closing quote, is an error.  Empty lines
    are skipped; in a file with more than one column, a line holding only whitespace is skipped too (in a
    one-column file it is a record whose cell is that whitespace).
    """
    p = os.fspath(path)
    text = _decode(_read_bytes(path), p)
    # strict: a quote left open or text after a closing quote is an error, never silently re-read
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise DataFormatError("empty CSV file: expected a header row", path=p, line=1) from None
    except csv.Error as exc:
        raise DataFormatError(f"malformed CSV: {exc}", path=p, line=reader.line_num) from None
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataFormatError(f"duplicate CSV column(s): {', '.join(dupes)}", path=p, line=1)

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        prev = reader.line_num
        while True:
            start = prev + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataFormatError(f"malformed CSV: {exc}", path=p, line=start) from None
            prev = reader.line_num
            if not row or (len(header) > 1 and len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != len(header):
                raise DataFormatError(
                    f"row has {len(row)} field(s) but the header has {len(header)} ({', '.join(header)})",
                    path=p,
                    line=start,
                )
            yield start, dict(zip(header, row, strict=True))

    return header, rows()


def _write_csv(
    records: Sequence[Mapping[str, Any]], path: PathLike, fields: Sequence[str] | None = None
) -> Path:
    if fields is None:
        cols: list[str] = []
        for r in records:
            for k in r:
                if k not in cols:
                    cols.append(k)
        fields = cols

    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, (dict, list)):
            return json.dumps(v, ensure_ascii=False)
        return str(v)

    def write(fh: io.TextIOBase) -> None:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(list(fields))
        for r in records:
            w.writerow([cell(r.get(f)) for f in fields])

    return _atomic_write(path, write)


# --------------------------------------------------------------------------------------------- records
def iter_records(path: PathLike, *, format: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, record)`` for each record of a JSONL, JSON (array of objects) or CSV file, read losslessly.

    ``line`` is the 1-based line where the record starts (for error messages).  CSV cells are strings,
    exactly as in the file (not stripped, line breaks inside quoted cells kept); JSON values keep their
    types.  This is the one reader behind :func:`read_records`, :func:`cancerllm.data.read_inputs` and the
    command line.

    Args:
        path: the data file.
        format: ``"jsonl"``, ``"json"`` or ``"csv"``; inferred from the suffix when None.

    Raises:
        DataFormatError: malformed content or a record that is not an object (names the file and line).
        InputError: missing file or unknown format.

    Example:
        >>> for line, rec in iter_records("reports.csv"):   # doctest: +SKIP
        ...     print(line, rec["id"])
    """
    fmt = infer_format(path, format)
    if fmt == "csv":
        _, rows = _iter_csv(path)
        yield from rows
        return
    p = os.fspath(path)
    for lineno, value in _iter_jsonl(path) if fmt == "jsonl" else _iter_json_array(path):
        if not isinstance(value, dict):
            raise DataFormatError(f"expected a JSON object, got {type(value).__name__}", path=p, line=lineno)
        yield lineno, value


def read_records(path: PathLike, *, format: str | None = None) -> list[dict[str, Any]]:
    """Read the records of a JSONL, JSON (array of objects) or CSV file as dicts.

    CSV cells are returned as strings, unconverted.

    Args:
        path: the data file.
        format: ``"jsonl"``, ``"json"`` or ``"csv"``; inferred from the suffix when None.

    Returns:
        One dict per record, in file order.

    Raises:
        DataFormatError: malformed content (names the file and line).
        InputError: missing file or unknown format.
    """
    return [rec for _, rec in iter_records(path, format=format)]


def write_records(records: Iterable[Mapping[str, Any]], path: PathLike, *, format: str | None = None) -> Path:
    """Write dict records as JSONL, JSON or CSV (format from ``format`` or the suffix), atomically.

    In CSV, ``None`` becomes an empty cell and dicts/lists are JSON-encoded.

    Returns:
        The path written.
    """
    fmt = infer_format(path, format)
    if fmt == "jsonl":
        return write_jsonl(records, path)
    if fmt == "json":
        return _write_json(records, path)
    return _write_csv(list(records), path)


# --------------------------------------------------------------------------------------------- examples
def _csv_examples(path: PathLike) -> list[Example]:
    p = os.fspath(path)
    header, rows = _iter_csv(path)
    missing = [c for c in _REQUIRED_FIELDS if c not in header]
    unknown = [c for c in header if c not in EXAMPLE_FIELDS]
    if missing or unknown:
        what = f"missing required column(s) {', '.join(missing)}" if missing else ""
        if unknown:
            what += ("; " if what else "") + f"unknown column(s) {', '.join(unknown)}"
        raise DataFormatError(
            f"{what}; found columns: {', '.join(header) or '(none)'}; required: {', '.join(_REQUIRED_FIELDS)}; "
            f"allowed: {', '.join(EXAMPLE_FIELDS)}",
            path=p,
            line=1,
        )
    out = []
    for lineno, row in rows:
        rec: dict[str, Any] = {}
        for key, val in row.items():
            if key in ("question", "id"):
                rec[key] = val if val != "" else None
            elif key == "meta":
                if val.strip():
                    try:
                        rec[key] = json.loads(val)
                    except json.JSONDecodeError as exc:
                        raise DataFormatError(
                            f"field 'meta' is not valid JSON ({exc.msg}); write it as a JSON object",
                            path=p,
                            line=lineno,
                        ) from None
            else:
                rec[key] = val
        out.append(_example_from_record(rec, p, lineno))
    return out


def read_examples(source: PathLike | pd.DataFrame, *, format: str | None = None) -> list[Example]:
    """Read examples from a JSONL, JSON or CSV file, or from a pandas DataFrame.

    Records have the fields of :class:`~cancerllm.schema.Example` (``instruction`` required; ``context``,
    ``response``, ``question``, ``id``, ``meta`` optional).  The official CancerLLM form
    ``{instruction, context, response}``, whose phenotype contexts already read
    ``"In the text: ... <question>"``, is kept as is (``question=None``).

    Args:
        source: a file path or a ``pandas.DataFrame``.
        format: ``"jsonl"``, ``"json"`` or ``"csv"``; inferred from the suffix when None.

    Returns:
        The examples, in file order.

    Raises:
        DataFormatError: malformed JSON, invalid UTF-8, a missing/unknown/wrongly typed field or a missing CSV
            column; the message names the file and the 1-based line.
        InputError: missing file or unknown format.
    """
    if not isinstance(source, (str, os.PathLike)) and type(source).__name__ == "DataFrame":
        return examples_from_dataframe(source)
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(
            f"read_examples expects a file path or a pandas DataFrame, got {type(source).__name__}"
        )
    fmt = infer_format(source, format)
    p = os.fspath(source)
    if fmt == "csv":
        return _csv_examples(source)
    it = _iter_jsonl(source) if fmt == "jsonl" else _iter_json_array(source)
    return [_example_from_record(value, p, lineno) for lineno, value in it]


def _check(ex: Any) -> Example:
    if not isinstance(ex, Example):
        raise InputError(f"expected Example objects, got {type(ex).__name__}")
    return ex


def _example_record(ex: Example) -> dict[str, Any]:
    return _check(ex).model_dump(mode="json")


def write_examples(
    examples: Iterable[Example], path: PathLike, *, format: str | None = None, official: bool = False
) -> Path:
    """Write examples as JSONL, JSON or CSV, atomically.

    Args:
        examples: the examples.
        path: target file; parent folders are created.
        format: ``"jsonl"``, ``"json"`` or ``"csv"``; inferred from the suffix when None.
        official: write the official three-field form (``Example.to_official()``: question folded into the
            context) instead of all fields.

    Returns:
        The path written.

    Note:
        In CSV, ``meta`` is a JSON-encoded cell, and an empty ``question``/``id`` cell reads back as None.
    """
    exs = list(examples)
    fmt = infer_format(path, format)
    if official:
        records: list[dict[str, Any]] = [_check(ex).to_official() for ex in exs]
        fields: Sequence[str] = ("instruction", "context", "response")
    else:
        records = [_example_record(ex) for ex in exs]
        fields = EXAMPLE_FIELDS
    if fmt == "csv":
        return _write_csv(records, path, fields)
    return write_records(records, path, format=fmt)


# --------------------------------------------------------------------------------------------- pandas
def examples_to_dataframe(examples: Iterable[Example]) -> pd.DataFrame:
    """A ``pandas.DataFrame`` with one row per example and the columns of :data:`EXAMPLE_FIELDS`.

    ``meta`` holds dicts; ``question``/``id`` hold None when unset.  Needs the ``pandas`` extra.
    """
    pd = require("pandas", feature="DataFrame conversion")
    records = [_example_record(ex) for ex in examples]
    return pd.DataFrame.from_records(records, columns=list(EXAMPLE_FIELDS))


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def examples_from_dataframe(df: pd.DataFrame) -> list[Example]:
    """Examples from a ``pandas.DataFrame`` with (a subset of) the columns of :data:`EXAMPLE_FIELDS`.

    Missing values (None/NaN) become ``""`` for ``context``/``response``, None for ``question``/``id`` and
    ``{}`` for ``meta``; ``meta`` may hold dicts or JSON strings.

    Raises:
        DataFormatError: a missing ``instruction`` column, an unknown column, or an invalid row (the message
            names the row position and index label).
    """
    require("pandas", feature="DataFrame conversion")
    cols = [str(c) for c in df.columns]
    missing = [c for c in _REQUIRED_FIELDS if c not in cols]
    unknown = [c for c in cols if c not in EXAMPLE_FIELDS]
    if missing or unknown:
        raise DataFormatError(
            f"DataFrame columns do not fit: missing {', '.join(missing) or '(none)'}, unknown "
            f"{', '.join(unknown) or '(none)'}; found columns: {', '.join(cols)}; required: "
            f"{', '.join(_REQUIRED_FIELDS)}; allowed: {', '.join(EXAMPLE_FIELDS)}"
        )
    out = []
    for pos, (label, row) in enumerate(zip(df.index, df.to_dict(orient="records"), strict=True)):
        rec: dict[str, Any] = {}
        for key, val in row.items():
            key = str(key)
            if _is_missing(val):
                if key in ("context", "response"):
                    rec[key] = ""
                continue
            if key == "meta" and isinstance(val, str):
                try:
                    val = json.loads(val) if val.strip() else {}
                except json.JSONDecodeError as exc:
                    raise DataFormatError(
                        f"DataFrame row {pos} (index {label!r}): meta is not JSON ({exc.msg})"
                    ) from None
            rec[key] = val
        try:
            out.append(Example.model_validate(rec))
        except ValidationError as exc:
            raise DataFormatError(
                f"DataFrame row {pos} (index {label!r}): invalid example: {_describe_validation(exc)}"
            ) from None
    return out


# --------------------------------------------------------------------------------------------- TCGA
class TCGARecord(BaseModel):
    """One record of the shared TCGA pathology-report file (see ``docs/data.md``).

    Attributes:
        patient_id: 12-character TCGA patient barcode, e.g. ``"TCGA-BH-A0HA"``.
        cancer_type: TCGA project code, e.g. ``"BRCA"``.
        text: the pathology report.
        labels: registry labels (``stage``, ``pT``, ``histology``, ``ER``, ...); None = not recorded.
            Numbers (e.g. a tumour size written as ``4.5``) are kept as their string form.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    patient_id: str
    cancer_type: str
    text: str
    labels: dict[str, str | None]

    @field_validator("patient_id", "cancer_type")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @field_validator("labels", mode="before")
    @classmethod
    def _numbers_as_text(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            return {
                k: (str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x)
                for k, x in v.items()
            }
        return v

    def label(self, name: str) -> str | None:
        """The label ``name``, stripped; None when absent, null or blank."""
        v = self.labels.get(name)
        if v is None or not v.strip():
            return None
        return v.strip()


def read_tcga(path: PathLike) -> list[TCGARecord]:
    """Read and validate a TCGA reports JSONL file (``patient_id``, ``cancer_type``, ``text``, ``labels``).

    Args:
        path: the ``.jsonl`` file, e.g. ``../shared/data/tcga/tcga_reports_dev.jsonl``.

    Returns:
        The records, in file order.

    Raises:
        DataFormatError: malformed JSON, invalid UTF-8, or a record with missing/unknown/wrongly typed fields
            (names the file, the line and the field).
    """
    p = os.fspath(path)
    out = []
    for lineno, value in _iter_jsonl(path):
        if not isinstance(value, dict):
            raise DataFormatError(f"expected a JSON object, got {type(value).__name__}", path=p, line=lineno)
        try:
            out.append(TCGARecord.model_validate(value))
        except ValidationError as exc:
            raise DataFormatError(
                f"invalid TCGA record: {_describe_validation(exc)} (fields: patient_id, cancer_type, text, labels)",
                path=p,
                line=lineno,
            ) from None
    return out
