"""ICD-O-3 morphology and topography codes for histology and site answers, when the code lists are at hand.

The lists are not shipped with the package (ICD-O-3 is a WHO classification; see ``docs/formats.md``), so a
lookup is built from files the user has, in the tab-separated layout of the CANTEMIST 2020 lists
(``Morphenglish.txt``: ``Code  Struct  Label``; ``Topoenglish.txt``: ``Kode  Lvl  Title``).  A label matches
when it equals the answer after :func:`~cancerllm.benchmark.normalize.normalize_histology` (case,
punctuation and the word "NOS" ignored); a normalised label that names two different codes is dropped, so
an answer never gets a code by chance.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources

from ..benchmark.normalize import normalize_histology
from ..errors import DataFormatError, InputError

__all__ = ["IcdO3Lookup"]

_MORPH_CODE = re.compile(r"^\d{4}/\d$")
_TOPO_CODE = re.compile(r"^C\d\d\.\d$")
#: Rows used: morphology titles and synonyms; topography four-character sites and their "includes" terms
#: (not the three-character headings, nor the "Skin of: ..." sub-lists, whose labels are fragments).
_MORPH_KINDS = frozenset({"title", "sub"})
_TOPO_KINDS = frozenset({"4", "incl"})
#: Where :meth:`IcdO3Lookup.default` looks for lists shipped with the package (none are shipped today).
RESOURCE_DIR = ("_resources", "icdo3")


def _read(path: str | os.PathLike[str], kinds: frozenset[str], code_re: re.Pattern[str]) -> list[tuple[str, str]]:
    p = os.fspath(path)
    try:
        fh = open(p, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise InputError(f"ICD-O-3 code list not found: {p}") from None
    rows: list[tuple[str, str]] = []
    with fh:
        reader = csv.reader(fh, delimiter="\t", quotechar='"')
        for line, row in enumerate(reader, 1):
            if line == 1 or not row or not any(c.strip() for c in row):
                continue  # header, blank lines
            if len(row) < 3:
                raise DataFormatError("expected 3 tab-separated columns (code, kind, label)", path=p, line=line)
            code, kind, label = row[0].strip(), row[1].strip(), row[2].strip()
            if kind not in kinds:
                continue
            if not code_re.match(code):
                # a code quoted across a line break ("8634/3\r\n8634/3" in the CANTEMIST list) is kept when it
                # repeats one well-formed code
                found = {c for c in re.split(r'[\s"]+', code) if c}
                if len(found) != 1 or not code_re.match(next(iter(found))):
                    raise DataFormatError(f"malformed ICD-O-3 code {code!r}", path=p, line=line)
                code = found.pop()
            rows.append((code, re.sub(r"\s+Note:$", "", label)))
    return rows


def _index(rows: Iterable[tuple[str, str]]) -> dict[str, str]:
    seen: dict[str, set[str]] = {}
    for code, label in rows:
        key = normalize_histology(label)
        if key:
            seen.setdefault(key, set()).add(code)
    return {k: next(iter(v)) for k, v in seen.items() if len(v) == 1}


class IcdO3Lookup:
    """Exact-label look-up of ICD-O-3 morphology (``8500/3``) and topography (``C50.9``) codes.

    Args:
        morphology: normalised label -> morphology code.
        topography: normalised label -> topography code.

    Example:
        >>> lookup = IcdO3Lookup({"infiltrating duct carcinoma": "8500/3"}, {"breast": "C50.9"})
        >>> lookup.morphology("Infiltrating duct carcinoma, NOS"), lookup.topography("Breast, NOS")
        ('8500/3', 'C50.9')
    """

    def __init__(self, morphology: Mapping[str, str] | None = None,
                 topography: Mapping[str, str] | None = None) -> None:
        self._morph = {normalize_histology(k): v for k, v in (morphology or {}).items()}
        self._topo = {normalize_histology(k): v for k, v in (topography or {}).items()}

    @classmethod
    def from_files(cls, morphology: str | os.PathLike[str] | None = None,
                   topography: str | os.PathLike[str] | None = None) -> IcdO3Lookup:
        """Build a lookup from CANTEMIST-layout lists (either may be omitted).

        Raises:
            InputError: a file does not exist.
            DataFormatError: a row without three columns, or a malformed code (names the file and line).
        """
        morph = _index(_read(morphology, _MORPH_KINDS, _MORPH_CODE)) if morphology is not None else {}
        topo = _index(_read(topography, _TOPO_KINDS, _TOPO_CODE)) if topography is not None else {}
        return cls(morph, topo)

    @classmethod
    def default(cls) -> IcdO3Lookup | None:
        """The lists shipped in ``cancerllm/_resources/icdo3/`` (``Morphenglish.txt``, ``Topoenglish.txt``), or
        None when the package ships none (the case today): then no ICD-O-3 code is written."""
        return _default()

    def morphology(self, text: str) -> str | None:
        """The morphology code whose label equals ``text`` (normalised), or None."""
        return self._morph.get(normalize_histology(text))

    def topography(self, text: str) -> str | None:
        """The topography code whose label equals ``text`` (normalised), or None."""
        return self._topo.get(normalize_histology(text))

    def __len__(self) -> int:
        return len(self._morph) + len(self._topo)


@lru_cache(maxsize=1)
def _default() -> IcdO3Lookup | None:
    base = resources.files("cancerllm").joinpath(*RESOURCE_DIR)
    morph, topo = base.joinpath("Morphenglish.txt"), base.joinpath("Topoenglish.txt")
    if not (morph.is_file() or topo.is_file()):
        return None
    with resources.as_file(morph) as m, resources.as_file(topo) as t:
        return IcdO3Lookup.from_files(m if morph.is_file() else None, t if topo.is_file() else None)


def resolve_lookup(icdo3: IcdO3Lookup | bool) -> IcdO3Lookup | None:
    """``True`` -> the shipped lists (or None), ``False`` -> None, a lookup -> itself.

    Raises:
        InputError: anything else.
    """
    if isinstance(icdo3, IcdO3Lookup):
        return icdo3
    if icdo3 is True:
        return _default()
    if icdo3 is False:
        return None
    raise InputError(f"icdo3={icdo3!r}; pass True (shipped lists), False, or an IcdO3Lookup")
