"""Evidence for extracted answers: where in the caller's text an answer is supported.

:func:`find_span` looks an answer item up in the report: first literally (``exact``: ``text[start:end]`` is the
item, character for character), then in a normalised view of both (``fuzzy``: case, runs of whitespace and
line breaks, a space between a number and its unit - ``2.5 cm`` / ``2.5cm`` -, a TNM prefix - ``pT2`` / ``T2``
/ ``ypT2`` -, and punctuation around the item do not matter).  An item found neither way is ``not_found``:
the model said something the report does not contain, the flag for a hallucinated value.

Offsets are Python string indices into the text exactly as the caller passed it (non-ASCII characters, CRLF
line ends and all), so ``text[span.start:span.end]`` is the evidence.  Matches respect word boundaries
(``G2`` is not found inside ``HG2``, ``left`` not inside ``cleft``).  An :class:`EvidenceIndex` normalises a
report once and then looks up any number of items; a report of a few thousand characters takes well under
a millisecond per item (``benchmarks/bench_evidence.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["EvidenceIndex", "MatchKind", "Span", "find_span"]

MatchKind = Literal["exact", "fuzzy", "not_found"]

_WORD = r"0-9A-Za-z\u00C0-\u024F"  # letters (Latin, with accents) and digits: what a match may not touch
_TNM = re.compile(r"^(?:[ypcra]{1,3})?([TNM](?:is|[0-9X])[0-9a-dA-D()]*(?:\s*\(?(?:sn|i[+-]|mol[+-]|f)\)?)?)$",
                  re.I)

_SPACE = re.compile(r"\s+")
_GAP = r"[ :;,/()\-]{0,3}"  # between two words of an answer: a space, or a little punctuation, in the report
_UNIT_AFTER_NUMBER = re.compile(r"(\d)((?:cm|mm|um|\u00b5m|\u03bcm|nm|mg|kg|g|ml|cc|hpf|%)(?![0-9a-z]))")


@dataclass(frozen=True)
class Span:
    """Where an answer item is supported: ``text[start:end]`` (``match != "not_found"``), or nowhere."""

    start: int | None
    end: int | None
    match: MatchKind

    @property
    def found(self) -> bool:
        """Whether the item was found in the text (exactly or fuzzily)."""
        return self.match != "not_found"

    def text(self, source: str) -> str:
        """The evidence: ``source[start:end]`` (empty when not found)."""
        return source[self.start:self.end] if self.found else ""


NOT_FOUND = Span(None, None, "not_found")


def _normalise(text: str) -> tuple[str, list[int]]:
    """Lowercased text with whitespace runs collapsed to one space; and, for each character of it, its index
    in ``text``."""
    low = text.lower()
    if len(low) != len(text):  # e.g. 'İ' lowercases to two characters: keep offsets one to one
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    parts: list[str] = []
    idx: list[int] = []
    pos = 0
    for m in _SPACE.finditer(low):
        start, end = m.span()
        parts.append(low[pos:start])
        idx.extend(range(pos, start))
        pos = end
        if start == 0 or end == len(low):
            continue  # leading / trailing whitespace
        parts.append(" ")
        idx.append(start)
    parts.append(low[pos:])
    idx.extend(range(pos, len(low)))
    return "".join(parts), idx


def _pattern(item: str) -> re.Pattern[str] | None:
    norm, _ = _normalise(item.strip())
    norm = norm.strip(" .,;:[]{}\"'")
    while norm.startswith("(") and norm.count("(") > norm.count(")"):
        norm = norm[1:].strip()
    while norm.endswith(")") and norm.count(")") > norm.count("("):
        norm = norm[:-1].strip()
    if not norm:
        return None
    tnm = _TNM.match(norm)
    if tnm:  # pT2 / T2 / ypT2: any clinical/pathologic/post-therapy prefix
        core = re.escape(tnm.group(1)).replace(r"\ ", r" ?")
        body = rf"(?:[ypcra]{{1,3}})?{core}"
    else:
        body = re.escape(norm).replace(r"\ ", _GAP)  # "er positive" finds "ER: positive", "left-breast" too
        body = _UNIT_AFTER_NUMBER.sub(r"\1 ?\2", body)  # "2.5cm" finds "2.5 cm" and the other way round
    return re.compile(rf"(?<![{_WORD}]){body}(?![{_WORD}])", re.I)


class EvidenceIndex:
    """A report prepared for many look-ups: normalised once.

    Args:
        text: the report, exactly as the caller has it (offsets refer to it).

    Example:
        >>> idx = EvidenceIndex("Tumor size: 2.5cm.\\r\\nGrade: G3; margins clear.")
        >>> idx.find("2.5 cm")
        Span(start=12, end=17, match='fuzzy')
        >>> idx.find("G3")
        Span(start=27, end=29, match='exact')
        >>> idx.find("G2").match
        'not_found'
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._norm, self._idx = _normalise(text)

    def find(self, item: str, *, within: tuple[int, int] | None = None) -> Span:
        """The span of ``item``; with ``within=(start, end)`` (e.g. the chunk the answer came from), a match
        inside that range is preferred over an earlier one outside it."""
        item = (item or "").strip()
        if not item:
            return NOT_FOUND
        exact = self._exact(item, within)
        if exact is not None:
            return exact
        pattern = _pattern(item)
        if pattern is None:
            return NOT_FOUND
        matches = list(pattern.finditer(self._norm))
        if not matches:
            return NOT_FOUND
        if within is not None:
            inside = [m for m in matches if within[0] <= self._idx[m.start()] < within[1]]
            matches = inside or matches
        m = matches[0]
        return Span(self._idx[m.start()], self._idx[m.end() - 1] + 1, "fuzzy")

    def _exact(self, item: str, within: tuple[int, int] | None) -> Span | None:
        return self._first(re.compile(rf"(?<![{_WORD}]){re.escape(item)}(?![{_WORD}])"), within, "exact")

    def _first(self, rx: re.Pattern[str], within: tuple[int, int] | None, kind: MatchKind) -> Span | None:
        first = None
        for m in rx.finditer(self.text):
            if within is None or within[0] <= m.start() < within[1]:
                return Span(m.start(), m.end(), kind)
            first = first or m
        return Span(first.start(), first.end(), kind) if first else None


def find_span(text: str, item: str, *, within: tuple[int, int] | None = None) -> Span:
    """Where ``item`` is supported in ``text`` (see :class:`EvidenceIndex`; build one to look up many items).

    Example:
        >>> text = "Right breast, invasive ductal carcinoma, pT2 N0."
        >>> span = find_span(text, "T2")
        >>> span.match, text[span.start:span.end]
        ('fuzzy', 'pT2')
    """
    return EvidenceIndex(text).find(item, within=within)
