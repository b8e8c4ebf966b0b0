"""TNM items (AJCC/UICC ``T``, ``N``, ``M`` categories) as written in reports, registries and answers.

One parser for the whole library: the stage answers of training data, the rules baseline, the benchmark's
normaliser and the per-field scoring all read TNM through :func:`parse_tnm`.

A TNM item is an optional prefix (``p``, ``c``, ``yp``, ``yc``, ``r``, ``a``), the letter, a value
(``0``-``4`` with optional sub-letters and digits, ``is``, ``X``; ``mi`` for micro-metastases) and an optional
parenthesised modifier (``(i-)``, ``(i+)``, ``(mol+)``, ``(sn)``, ``(m)``, ``(f)``).  Items may be run
together (``pT2N0M0``) and are found case-insensitively (OCR'd reports are often upper case).

Example:
    >>> [i.canonical for i in parse_tnm("Stage: pT2a pN0(i-) MX")]
    ['pT2a', 'pN0 (i-)', 'MX']
    >>> parse_tnm("ypT1b")[0].category
    'T1'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["TNMItem", "parse_tnm", "tnm_category", "tnm_group"]

# An item starts at a word boundary or right after the end of another item (a digit, a sub-letter, "x", the
# "is" of Tis or the "mi" of N1mi); it ends at a non-alphanumeric character or where the next item starts.
_TNM_RE = re.compile(
    r"(?:(?<![a-z0-9])|(?<=[0-9a-dx])|(?<=tis)|(?<=[0-4]mi))"
    r"(?P<prefix>y?p|y?c|r|a)?(?P<letter>[tnm])(?P<value>is|x|[0-4](?:mi|[a-d](?:[12](?![0-9]))?)?)"
    r"(?P<mod>\s?\((?:i|mol|sn|m|f)[+-]?\))?"
    r"(?=$|[^a-z0-9]|[tnmpycra])",
    re.I,
)
#: The highest main category of each letter (AJCC): N0-N3, M0-M1; "N4" or "M2" are block labels, not TNM.
_MAX_MAIN = {"T": "4", "N": "3", "M": "1"}


@dataclass(frozen=True)
class TNMItem:
    """One T, N or M item: ``prefix`` (lower case, may be ``""``), ``letter`` (``"T"``, ``"N"`` or ``"M"``),
    ``value`` (``"2a"``, ``"is"``, ``"x"``, ``"1mi"``), ``modifier`` (``"(i-)"`` or ``""``), and where it
    was found (``start``/``end`` character offsets into the parsed text)."""

    prefix: str
    letter: str
    value: str
    modifier: str = ""
    start: int = 0
    end: int = 0

    @property
    def category(self) -> str:
        """The main category: ``"T1"``..``"T4"``, ``"T0"``, ``"Tis"``, ``"TX"``, ``"N0"``..``"N3"``, ``"NX"``,
        ``"M0"``, ``"M1"``, ``"MX"``."""
        v = self.value
        main = v[0] if v[0].isdigit() else v
        return self.letter + ("X" if main == "x" else main)

    @property
    def full(self) -> str:
        """The full value without prefix or modifier: ``"T2a"``, ``"N1mi"``, ``"TX"``."""
        return self.letter + ("X" if self.value == "x" else self.value)

    @property
    def canonical(self) -> str:
        """Prefix, full value and modifier in the usual casing: ``"ypT2a"``, ``"pN0 (i-)"``, ``"MX"``."""
        return self.prefix + self.full + (f" {self.modifier}" if self.modifier else "")


def _item(m: re.Match[str]) -> TNMItem:
    mod = (m.group("mod") or "").strip().lower()
    return TNMItem((m.group("prefix") or "").lower(), m.group("letter").upper(), m.group("value").lower(),
                   mod, m.start(), m.end())


def parse_tnm(text: str) -> list[TNMItem]:
    """Every TNM item in ``text``, in order of appearance (``"is"`` is a T value only; N goes to N3 and M to
    M1; a digit after the main category only follows a sub-letter, as in ``T1b1``, so ``"T12"`` is no item)."""
    out = []
    for m in _TNM_RE.finditer(text or ""):
        item = _item(m)
        if item.value == "is" and item.letter != "T":
            continue
        if item.value[0].isdigit() and item.value[0] > _MAX_MAIN[item.letter]:
            continue
        out.append(item)
    return out


def tnm_category(value: str | None, letter: str) -> str | None:
    """The main category of the first ``letter`` item of ``value`` (``"pT2a pN0"``, ``"T"`` -> ``"T2"``)."""
    letter = letter.upper()
    for item in parse_tnm(value or ""):
        if item.letter == letter:
            return item.category
    return None


_GROUP_RE = re.compile(r"\b(?:stage\s*(?:group(?:ing)?)?\s*[:\-]?\s*)(?P<num>iv|iii|ii|i|0|[1-4]|x)(?P<suf>s|[a-c][12]?)?\b",
                       re.I)
_BARE_GROUP_RE = re.compile(r"^\s*(?P<num>iv|iii|ii|i|[1-4])(?P<suf>s|[a-c][12]?)?\s*$", re.I)
_ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV", "0": "0"}


def tnm_group(value: str | None) -> str | None:
    """The stage group of a text as ``"Stage IIA"`` (``"stage 2a"``, ``"Stage IIA"``, ``"IIa"`` all give
    ``"Stage IIA"``); None when there is none."""
    if not value:
        return None
    m = _GROUP_RE.search(value) or _BARE_GROUP_RE.match(value)
    if not m:
        return None
    num = m.group("num").upper()
    num = _ROMAN.get(num, num)
    return f"Stage {num}{(m.group('suf') or '').upper()}"
