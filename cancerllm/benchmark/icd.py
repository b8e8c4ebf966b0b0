"""Map a generated diagnosis text to an ICD-10-CM neoplasm code, and compare codes.

:class:`IcdMapper` scores every code title of a ``code / category / title`` TSV (such as the shared
``icd10cm_neoplasms_C00-D49.tsv``) by IDF-weighted token overlap with the diagnosis text and returns the
best code.  :func:`icd_match` compares a predicted with a gold code at the full code or the 3-character
category.  The rules are in ``docs/benchmark.md``.

Example:
    >>> icd_match("C50.411", "C50.9", level="category")
    True
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..errors import DataFormatError, InputError

__all__ = ["IcdCode", "IcdMapper", "icd_match", "normalize_code"]

#: Words that carry no site or behaviour information in code titles.
STOPWORDS: frozenset[str] = frozenset(
    {
        "of",
        "the",
        "and",
        "or",
        "with",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "other",
        "nos",
        "unspecified",
        "site",
        "sites",
        "part",
        "parts",
        "neoplasm",
        "neoplasms",
        "specified",
        "lesion",
        "a",
        "an",
    }
)
#: Behaviour words: they help to choose among codes but never make a match on their own.
BEHAVIOUR_WORDS: frozenset[str] = frozenset(
    {"malignant", "benign", "situ", "uncertain", "behavior", "carcinoma"}
)
#: Title words that state a behaviour the text must also state: a title with one of them that the text
#: lacks ranks below every title without such a conflict (``"Secondary malignant neoplasm of lung"`` is
#: not chosen for "lung adenocarcinoma").
CONFLICT_WORDS: frozenset[str] = frozenset({"secondary", "situ", "benign", "uncertain"})
#: Diagnosis-text words -> extra query tokens (histology words imply behaviour; adjectives imply the organ).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "carcinoma": ("malignant",),
    "adenocarcinoma": ("malignant",),
    "sarcoma": ("malignant",),
    "cancer": ("malignant",),
    "lymphoma": ("malignant", "lymphoma"),
    "glioblastoma": ("malignant", "brain"),
    "glioma": ("malignant", "brain"),
    "mesothelioma": ("malignant", "mesothelioma"),
    "seminoma": ("malignant", "testis"),
    "melanoma": ("malignant", "melanoma"),
    "adenoma": ("benign",),
    "metastatic": ("secondary",),
    "metastasis": ("secondary",),
    "hepatocellular": ("liver",),
    "hepatic": ("liver",),
    "renal": ("kidney",),
    "pulmonary": ("lung",),
    "gastric": ("stomach",),
    "colonic": ("colon",),
    "rectal": ("rectum",),
    "urothelial": ("bladder",),
    "cervical": ("cervix",),
    "endometrial": ("endometrium", "corpus", "uteri"),
    "ovarian": ("ovary",),
    "pancreatic": ("pancreas",),
    "esophageal": ("esophagus",),
    "cholangiocarcinoma": ("malignant", "bile", "duct"),
    "testicular": ("testis",),
    "thymoma": ("malignant", "thymus"),
    "ductal": ("breast",),
    "lobular": ("breast",),
}


@dataclass(frozen=True)
class IcdCode:
    """One row of the code list.

    Attributes:
        code: the ICD-10-CM code, e.g. ``"C50.911"``.
        category: its 3-character category, e.g. ``"C50"``.
        title: the code title.
    """

    code: str
    category: str
    title: str


def _stem(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def _tokens(text: str) -> list[str]:
    return [_stem(t) for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in STOPWORDS]


def normalize_code(code: str | None) -> str:
    """Upper-case a code and drop whitespace and dots: ``" c50.9 "`` -> ``"C509"``; ``""`` for None.

    Example:
        >>> normalize_code("c50.9")
        'C509'
    """
    if code is None:
        return ""
    return re.sub(r"[\s.]", "", str(code)).upper()


def icd_match(
    pred_code: str | None, gold_code: str | None, level: Literal["full", "category"] = "full"
) -> bool:
    """Whether a predicted ICD-10 code matches the gold code.

    Codes are compared after :func:`normalize_code` (case, dots and spaces ignored).  ``level="full"`` needs
    the whole code to be equal; ``level="category"`` the first three characters (``"C50.411"`` matches
    ``"C50.9"``).  A missing code (None or empty) never matches.

    Args:
        pred_code: the predicted code.
        gold_code: the gold code.
        level: ``"full"`` or ``"category"``.

    Raises:
        InputError: an unknown ``level``.

    Example:
        >>> icd_match("C50.9", "c509")
        True
    """
    if level not in ("full", "category"):
        raise InputError(f"level={level!r}; use 'full' or 'category'")
    p, g = normalize_code(pred_code), normalize_code(gold_code)
    if not p or not g:
        return False
    return p == g if level == "full" else p[:3] == g[:3]


class IcdMapper:
    """Token-overlap mapper from diagnosis text to an ICD-10-CM code.

    Scoring: the diagnosis text and every title are lower-cased, split into alphanumeric tokens, stop words
    (:data:`STOPWORDS`) dropped and plurals crudely singularised; the text gains the tokens implied by
    :data:`SYNONYMS` (``"adenocarcinoma"`` -> ``malignant``, ``"renal"`` -> ``kidney``).  A title's score is
    the sum of the IDF weights (``log(1 + N / df)`` over the titles) of the tokens it shares with the text.
    Titles are ranked by the number of :data:`CONFLICT_WORDS` they hold that the text lacks (fewest first),
    then by score, then by the least unmatched weight (the most general code, e.g. "..., unspecified" before
    "overlapping sites of ..."), then by file order.  A title must share at least one token that is not a behaviour word (:data:`BEHAVIOUR_WORDS`),
    otherwise there is no match (None).

    Args:
        codes: the code rows.

    Raises:
        InputError: an empty code list.
    """

    def __init__(self, codes: Iterable[IcdCode]) -> None:
        self.codes: list[IcdCode] = list(codes)
        if not self.codes:
            raise InputError("IcdMapper needs at least one code")
        self._title_tokens = [set(_tokens(c.title)) for c in self.codes]
        df = Counter(t for toks in self._title_tokens for t in toks)
        n = len(self.codes)
        self._idf = {t: math.log(1.0 + n / c) for t, c in df.items()}

    @classmethod
    def from_tsv(cls, path: str | os.PathLike[str]) -> IcdMapper:
        """Load a tab-separated code list with a header row holding ``code``, ``category`` and ``title``.

        A missing ``category`` value is taken as the first three characters of the code.

        Raises:
            InputError: the file does not exist.
            DataFormatError: a missing column or an empty code/title (names the file and line).
        """
        p = os.fspath(path)
        try:
            fh = open(p, encoding="utf-8-sig", newline="")
        except FileNotFoundError:
            raise InputError(f"ICD code list not found: {p}") from None
        with fh:
            reader = csv.DictReader(fh, delimiter="\t")
            missing = {"code", "title"} - set(reader.fieldnames or [])
            if missing:
                raise DataFormatError(
                    f"missing column(s) {', '.join(sorted(missing))}; expected code, category, title",
                    path=p,
                    line=1,
                )
            rows = []
            for i, row in enumerate(reader, 2):
                code, title = (row.get("code") or "").strip(), (row.get("title") or "").strip()
                if not code or not title:
                    raise DataFormatError("empty code or title", path=p, line=i)
                category = (row.get("category") or "").strip() or code[:3]
                rows.append(IcdCode(code=code, category=category, title=title))
        return cls(rows)

    @classmethod
    def default(cls) -> IcdMapper:
        """The 1,631 billable ICD-10-CM neoplasm codes (C00-D49) shipped with the package
        (``cancerllm/_resources/icd10cm_neoplasms_C00-D49.tsv``; sources in ``SAMPLE_DATA.md`` there)."""
        from importlib import resources

        path = resources.files("cancerllm").joinpath("_resources", "icd10cm_neoplasms_C00-D49.tsv")
        with resources.as_file(path) as p:
            return cls.from_tsv(p)

    def __len__(self) -> int:
        return len(self.codes)

    def _query(self, text: str) -> set[str]:
        toks = set(_tokens(text))
        for t in list(toks):
            toks.update(SYNONYMS.get(t, ()))
        return toks

    def scores(self, text: str, top_k: int = 5) -> list[tuple[IcdCode, float]]:
        """The ``top_k`` best codes for ``text`` with their scores, best first (only codes that can match)."""
        query = self._query(text)
        ranked: list[tuple[int, float, float, int]] = []
        for i, toks in enumerate(self._title_tokens):
            shared = toks & query
            if not shared - BEHAVIOUR_WORDS:
                continue
            score = sum(self._idf[t] for t in shared)
            unmatched = sum(self._idf[t] for t in toks - shared)
            conflicts = len((toks & CONFLICT_WORDS) - query)
            ranked.append((conflicts, -score, unmatched, i))
        ranked.sort()
        return [(self.codes[i], -neg) for _, neg, _, i in ranked[:top_k]]

    def consistent(self, text: str | None, code: str | None, top_k: int = 3) -> bool | None:
        """Whether ``code``'s 3-character category is among those of the ``top_k`` codes this mapper finds
        for ``text`` - a check that a model's written code agrees with its own words.

        Returns None when it cannot tell: no code, or no title shares a site word with the text.  On
        CancerLLM-Smol v3's 398 validation diagnoses, codes that pass were in the registry's category
        91.7% of the time (n = 242) and codes that fail 28.3% (n = 138): see docs/checking.md.

        Example:
            >>> m = IcdMapper.default()
            >>> m.consistent("Colon Adenocarcinoma, Sigmoid Colon", "C18.7"), m.consistent("Colon Adenocarcinoma", "C50.9")
            (True, False)
        """
        if not normalize_code(code) or not text or not text.strip():
            return None
        cats = {c.category.upper() for c, _ in self.scores(text, top_k=top_k)}
        if not cats:
            return None
        return normalize_code(code)[:3].upper() in cats

    def map(self, text: str | None) -> str | None:
        """The best-matching code for a diagnosis text, or None when no title shares a site word.

        Example:
            ``"Infiltrating ductal carcinoma, left breast"`` -> a ``C50`` code with the shared list.
        """
        if not text or not text.strip():
            return None
        best = self.scores(text, top_k=1)
        return best[0][0].code if best else None
