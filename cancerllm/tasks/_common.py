"""Shared input handling for the task objects: validation, truncation, chunking and batch inputs.

Bad rows follow one policy in Python and on the command line: :func:`check_text` decides what is bad (a
missing value such as None/NaN, a non-string, an empty or whitespace-only text, NUL bytes), and
``errors="record"`` (:func:`split_bad_rows`) gives such a row an error result while the rest of the batch is
processed, as the command line's job runner does; ``errors="raise"`` (the Python default) stops at the first
bad row with an :class:`~cancerllm.errors.InputError` naming it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal

from ..errors import InputError

__all__ = [
    "ERRORS",
    "LOG_TEXT_ENV",
    "TruncationWarning",
    "as_text_list",
    "check_errors",
    "check_text",
    "excerpt",
    "in_order",
    "row_names",
    "split_bad_rows",
    "split_tokens",
]

#: The bad-row policies of ``extract_many`` / ``generate_many``.
ERRORS: tuple[str, ...] = ("raise", "record")
Errors = Literal["raise", "record"]

#: Set this environment variable to ``1`` to let warnings and errors quote up to 60 characters of the
#: offending text (debugging only: the text is protected health information). Off by default.
LOG_TEXT_ENV = "CANCERLLM_LOG_TEXT"


def excerpt(text: str) -> str:
    """``' (text: "...")'`` when the user opted in with ``CANCERLLM_LOG_TEXT=1``, else the empty string."""
    if os.environ.get(LOG_TEXT_ENV) != "1" or not isinstance(text, str):
        return ""
    short = text[:60].replace("\n", " ")
    more = "..." if len(text) > 60 else ""
    return f' (text: "{short}{more}")'


class TruncationWarning(UserWarning):
    """An input was longer than the model's input limit and was cut (the warning says how much, never what)."""


def _is_missing(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return type(value).__name__ in ("NAType", "NaTType")  # pandas.NA / pandas.NaT, without importing pandas


def check_text(text: Any, where: str) -> str:
    """Validate one input text; ``where`` names it in the error (e.g. ``"row 3"``), never its content."""
    if _is_missing(text):
        raise InputError(f"{where}: the text is missing (None/NaN); drop the row or supply the report text")
    if not isinstance(text, str):
        raise InputError(f"{where}: expected a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError(f"{where}: the text is empty or whitespace only; drop the row or supply the report text")
    if "\x00" in text:
        raise InputError(
            f"{where}: the text contains NUL bytes; decode the file correctly before extraction{excerpt(text)}"
        )
    return text


def as_text_list(texts: Any, column: str | None) -> tuple[list[Any], list[str] | None]:
    """Accept a list of strings, a pandas Series, or a DataFrame plus ``column``; return (texts, ids)."""
    ids = None
    if hasattr(texts, "columns"):  # DataFrame
        if column is None:
            raise InputError("pass column=<name of the text column> when giving a DataFrame")
        if column not in texts.columns:
            raise InputError(f"column {column!r} not in the DataFrame; columns are: {', '.join(map(str, texts.columns))}")
        ids = [str(i) for i in texts.index]
        return list(texts[column]), ids
    if hasattr(texts, "index") and hasattr(texts, "tolist") and not isinstance(texts, (list, tuple)):
        ids = [str(i) for i in texts.index]
        return list(texts.tolist()), ids
    if isinstance(texts, str):
        raise InputError("expected a list of texts; for a single text use extract()/generate()")
    if not isinstance(texts, Iterable):
        raise InputError(f"expected a list of texts, got {type(texts).__name__}")
    return list(texts), ids


def check_errors(errors: str) -> Errors:
    """``errors`` if it is a known bad-row policy (:data:`ERRORS`), else :class:`InputError`."""
    if errors not in ERRORS:
        raise InputError(f"errors={errors!r}; use 'raise' (stop at the first bad row) or 'record' (give a bad "
                         "row an error result and process the others)")
    return errors  # type: ignore[return-value]


def row_names(n: int, ids: Sequence[str] | None) -> list[str]:
    """``"row <index label>"`` (pandas input) or ``"row <position>"`` for each of ``n`` inputs."""
    return [f"row {ids[i] if ids else i}" for i in range(n)]


def split_bad_rows(
    items: Sequence[Any], names: Sequence[str], check: Callable[[Any, str], Any], errors: str
) -> tuple[list[int], list[Any], dict[int, str]]:
    """Validate every input with ``check(item, name)``.

    Returns:
        ``(good positions, their checked values, {bad position: error message})``.  With
        ``errors="raise"`` the first bad row raises instead (the dict is then always empty).
    """
    mode = check_errors(errors)
    good: list[int] = []
    values: list[Any] = []
    bad: dict[int, str] = {}
    for i, item in enumerate(items):
        try:
            values.append(check(item, names[i]))
        except InputError as exc:
            if mode == "raise":
                raise
            bad[i] = str(exc)
            continue
        good.append(i)
    return good, values, bad


def in_order(n: int, *parts: tuple[Sequence[int], Sequence[Any]]) -> list[Any]:
    """Merge ``(positions, values)`` parts (e.g. good and bad rows) back into one list of ``n`` in input order."""
    out: list[Any] = [None] * n
    for positions, values in parts:
        for i, v in zip(positions, values, strict=True):
            out[i] = v
    return out


def split_tokens(ids: Sequence[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Windows ``[start, end)`` of at most ``budget`` tokens covering ``ids``, consecutive windows sharing
    ``overlap`` tokens."""
    if budget <= 0:
        raise InputError("the prompt template alone exceeds max_input_tokens; raise max_input_tokens")
    n = len(ids)
    if n <= budget:
        return [(0, n)]
    overlap = max(0, min(overlap, budget // 2))
    step = budget - overlap
    spans = []
    start = 0
    while True:
        end = min(start + budget, n)
        spans.append((start, end))
        if end >= n:
            return spans
        start += step


def warn_truncated(where: str, before: int, after: int, limit: int) -> None:
    warnings.warn(
        f"{where}: input truncated from {before:,} to {after:,} report tokens to fit max_input_tokens={limit:,}; "
        f"{before - after:,} tokens at the end of the report were not seen by the model",
        TruncationWarning,
        stacklevel=3,
    )


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of ``size`` consecutive items of any iterable (the last one shorter), read lazily."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
