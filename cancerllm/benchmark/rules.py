"""A rule-based phenotype extractor: the regular expressions a hospital team would otherwise write.

:class:`RuleBasedExtractor` finds TNM categories and stage group, laterality, grade, ER/PR/HER2 status and
tumor size in a pathology report and returns a :class:`~cancerllm.schema.PhenotypeResult`, the same type as
the model extractor, so both can be scored side by side with :func:`~cancerllm.benchmark.answers_match`.

It answers at most one value per single-valued phenotype (no free credit from listing alternatives) and
leaves histological type and tumor location as None (not attempted).  The rules are in ``docs/benchmark.md``.

Example:
    >>> r = RuleBasedExtractor().extract("Left breast. Nottingham grade II. pT1c pN0. Tumor size: 1.3 x 1.2 cm.")
    >>> r.laterality, r.grade, r.stage, r.tumor_size
    (['Left'], ['G2'], ['pT1c', 'pN0'], ['1.3 cm'])
"""

from __future__ import annotations

import re
from collections import Counter

from ..prompts import format_answer
from ..schema import Phenotype, PhenotypeResult

__all__ = ["RuleBasedExtractor"]

_ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV", "0": "0"}

# ------------------------------------------------------------------------------------------------ stage / TNM
_STAGE_RE = re.compile(
    r"(?<![TNM] )(?<!ishak )(?<!fibrosis )\bstage(?:\s+group(?:ing)?)?\s*(?:\((?!fibrosis)[^)]{0,20}\))?\s*[:\-]?\s*"
    r"(?P<num>IV|III|II|I|[0-4])(?:\s?(?P<suf>[ABC][12]?))?(?![\w+])(?!\s*(?:-|/|of)\s*\d)",
    re.I,
)
_TNM_BLOCK_RE = re.compile(
    r"(?<![A-Za-z0-9])(?P<t>(?:y?p|y?c|r)?T(?:is|[0-4](?:[a-d][12]?)?|x))"
    r"(?:\s*\(m\))?\s*(?P<n>(?:y?p|y?c)?N(?:[0-3](?:mi|[a-c])?|x))?"
    r"(?:\s*\((?:i|mol)[+-]\)|\s*\(sn\))?\s*(?P<m>(?:y?p|y?c)?M(?:[01][a-d]?|x))?(?![A-Za-z0-9])",
    re.I,
)
_N_RE = re.compile(r"(?<![A-Za-z0-9])(?P<tok>(?:y?p|y?c)?N(?:[0-3](?:mi|[a-c])?|x))(?![A-Za-z0-9])", re.I)
_M_RE = re.compile(r"(?<![A-Za-z0-9])(?P<tok>(?:y?p|y?c)?M(?:[01][a-d]?|x))(?![A-Za-z0-9])", re.I)

# ------------------------------------------------------------------------------------------------ laterality
_ORGANS = (
    r"breast|axilla|axillary|lung|upper\s+lobe|lower\s+lobe|middle\s+lobe|lobe|kidney|renal|adrenal|ovary|"
    r"ovaries|fallopian|tube|salpingo|testis|testicle|thyroid|hemithyroid|parotid|eye|orbit|nephrectomy|"
    r"mastectomy|lumpectomy|orchiectomy|oophorectomy|lobectomy|pneumonectomy|colon|hemicolectomy"
)
_SIDE_RE = re.compile(rf"\b(?P<side>left|right|lt\.?|rt\.?)\s+(?:[a-z\-]+\s+){{0,3}}?(?:{_ORGANS})\b", re.I)
_SIDE_AFTER_RE = re.compile(rf"\b(?:{_ORGANS})\s*[,:]\s*(?P<side>left|right)\b", re.I)
_BILATERAL_RE = re.compile(rf"\bbilateral\s+(?:[a-z\-]+\s+){{0,2}}?(?:{_ORGANS})\b", re.I)

# ------------------------------------------------------------------------------------------------ grade
_GRADE_SYSTEMS = r"(?:nottingham|histologic(?:al)?|combined|overall|fnclcc|fuhrman|nuclear|who|tumou?r|sbr)"
_GRADE_NUM_RE = re.compile(
    rf"(?<!gleason )(?<!gleason's )\b(?:{_GRADE_SYSTEMS}\s+)*grade\s*(?:\([^)]{{0,30}}\))?\s*[:\-]?\s*(?:is\s+)?(?P<g>IV|III|II|I|[1-4])(?![\w+])"
    r"|(?<![A-Za-z0-9])G(?P<g2>[1-4]|X)(?![A-Za-z0-9])",
    re.I,
)
_GRADE_TIER_RE = re.compile(
    r"\b(?P<tier>high|low)[\s-]+grade\b(?!\s+(?:dysplasia|squamous\s+intraepithelial|pin)\b)", re.I
)
_DIFF_RE = re.compile(r"\b(?P<d>well|moderately|poorly|un)[\s-]*differentiated\b", re.I)
_DIFF_GRADE = {"well": "G1", "moderately": "G2", "poorly": "G3", "un": "G4"}

# ------------------------------------------------------------------------------------------------ receptors
# Full names are case-insensitive; the abbreviations ER, PR, PgR are matched in capitals only.
_RECEPTORS = (
    ("er", r"(?i:o?estrogen\s+receptors?)(?:\s*\(ER\))?|ER(?:-?alpha)?"),
    ("pr", r"(?i:progesterone\s+receptors?)(?:\s*\(PR\))?|PgR|PR"),
    ("her2", r"(?i:HER[\s-]*2(?:\s*/\s*neu)?(?:\s*\(ERBB2\))?|c-?erbB-?2|ERBB2)"),
)
_STATUS = r"(?i:(?P<status>positive|negative|equivocal|borderline|pos\b|neg\b|[0-3]\s*\+|\+|-(?!\w)))"
_GAP = r"[^.\n;]{0,40}?"
_RECEPTOR_STATUS_RES = [
    (name, re.compile(rf"(?<![A-Za-z0-9])(?:{pat})(?![A-Za-z0-9]){_GAP}{_STATUS}"))
    for name, pat in _RECEPTORS
]
_STATUS_FIRST_RES = [
    (
        name,
        re.compile(rf"(?i:\b(?P<status>positive|negative)\s+for\s+(?:the\s+)?)(?:{pat})(?![A-Za-z0-9])"),
    )
    for name, pat in _RECEPTORS
]
_RECEPTOR_MENTION_RES = [
    (name, re.compile(rf"(?<![A-Za-z0-9])(?:{pat})(?![A-Za-z0-9])")) for name, pat in _RECEPTORS
]
_JOINT_RE = re.compile(rf"(?<![A-Za-z0-9])ER\s*(?:/|and|&)\s*PR(?![A-Za-z0-9]){_GAP}{_STATUS}")

# ------------------------------------------------------------------------------------------------ tumor size
_NUM = r"\d+(?:\.\d+)?|\.\d+"
_DIMS = rf"(?P<dims>(?:{_NUM})(?:\s*(?:cm|mm))?(?:\s*[x×]\s*(?:{_NUM})(?:\s*(?:cm|mm))?){{0,2}})\s*(?P<unit>cm|mm)\b"
_SIZE_LABELLED_RE = re.compile(
    rf"\b(?:(?:tumou?r|lesion|mass)\s+size|size\s+of\s+(?:the\s+)?(?:largest\s+|invasive\s+)?(?:tumou?r|lesion|mass|invasive\s+(?:component|carcinoma))"
    rf"|(?:greatest|maximum|largest)\s+(?:tumou?r\s+)?(?:dimension|diameter|size))\s*(?:\([^)]{{0,30}}\))?\s*[:\-]?\s*"
    rf"(?:is\s+|of\s+)?(?:at\s+least\s+)?{_DIMS}",
    re.I,
)
_SIZE_MEASURING_RE = re.compile(
    rf"\b(?:tumou?r|mass|lesion|carcinoma|nodule|neoplasm)\b[^.\n;]{{0,40}}?\bmeasur(?:es|ing)\s*(?:up\s+to\s+)?{_DIMS}",
    re.I,
)
_SIZE_DIMENSION_RE = re.compile(rf"{_DIMS}\s+in\s+(?:greatest|maximum|largest)\s+dimension", re.I)


def _status_word(raw: str) -> str:
    s = raw.lower().replace(" ", "")
    if s.startswith("pos") or s in ("+", "3+"):
        return "positive"
    if s.startswith("neg") or s in ("-", "0+", "1+"):
        return "negative"
    return "equivocal"  # equivocal, borderline, 2+


class RuleBasedExtractor:
    """Regular-expression phenotype extractor for pathology reports (a non-LLM baseline).

    Answers, in report spelling where one exists (normalise with :func:`~cancerllm.benchmark.normalize`):

    * ``stage``: the first stage group (``"Stage IIA"``; arabic numerals written as roman), then the first
      T, N and M categories as written (``"pT1c"``, ``"pN0"``, ``"M0"``); a combined ``"pT2N0M0"`` is split.
    * ``laterality``: ``"Bilateral"`` when "bilateral <organ>" is written or both sides are named equally
      often next to an organ word; otherwise the side (``"Left"``/``"Right"``) named most often next to an
      organ or procedure word (breast, lung, lobe, kidney, ovary, mastectomy, ...).
    * ``grade``: the first numeric grade (``"Nottingham grade II"``, ``"grade 3"``, ``"G2"`` -> ``"G2"``), else a
      two-tier grade (``"High Grade"``/``"Low Grade"``, not "high grade dysplasia"/"PIN"), else the worst
      differentiation term (well -> G1, moderately -> G2, poorly -> G3, undifferentiated -> G4).
    * ``receptor_status``: ``"<receptor> <status>"`` for ER, PR and HER2, first status found near the
      receptor (``"Estrogen receptor: POSITIVE"``, ``"Her2/neu: negative"``, ``"HER2 (IHC): 2+"`` -> equivocal,
      ``"negative for estrogen receptor"``, ``"ER/PR: positive"``); ``receptors``: the receptors mentioned.
    * ``tumor_size``: the greatest dimension of the first labelled size (``"tumor size: 1.3 x 1.3 x 1.2 cm"``,
      ``"greatest dimension: 2.5 cm"``), else of "tumor ... measuring ...", else "<size> in greatest
      dimension", as ``"<n> cm"`` or ``"<n> mm"`` as written.

    ``histological_type`` and ``tumor_location`` are not attempted (None).  ``raw`` holds each answer as the
    model extractor would print it (``"{...}"`` or ``"Not relevant"``).
    """

    #: The phenotypes this extractor attempts.
    PHENOTYPES: tuple[str, ...] = (
        Phenotype.TUMOR_SIZE.value,
        Phenotype.RECEPTORS.value,
        Phenotype.RECEPTOR_STATUS.value,
        Phenotype.LATERALITY.value,
        Phenotype.STAGE.value,
        Phenotype.GRADE.value,
    )

    def extract(self, text: str, *, id: str | None = None) -> PhenotypeResult:
        """Extract the phenotypes of one report.

        Args:
            text: the report text.
            id: optional identifier copied into the result.

        Returns:
            A :class:`~cancerllm.schema.PhenotypeResult`; a phenotype not found is None.
        """
        text = text or ""
        receptors, statuses = self.receptors(text)
        answers: dict[str, list[str] | None] = {
            Phenotype.TUMOR_SIZE.value: self.tumor_size(text),
            Phenotype.RECEPTORS.value: receptors,
            Phenotype.RECEPTOR_STATUS.value: statuses,
            Phenotype.LATERALITY.value: self.laterality(text),
            Phenotype.STAGE.value: self.stage(text),
            Phenotype.GRADE.value: self.grade(text),
        }
        raw = {k: format_answer(v) for k, v in answers.items()}
        return PhenotypeResult(**answers, raw=raw, id=id)

    def extract_many(self, texts: list[str]) -> list[PhenotypeResult]:
        """:meth:`extract` for each text, in order."""
        return [self.extract(t) for t in texts]

    # -------------------------------------------------------------------------------------------- fields
    @staticmethod
    def stage(text: str) -> list[str] | None:
        """Stage group then T, N, M categories, e.g. ``["Stage IIA", "pT2", "pN0", "M0"]``; None if none found."""
        out: list[str] = []
        m = _STAGE_RE.search(text)
        if m:
            num = m.group("num").upper()
            out.append(f"Stage {_ROMAN.get(num, num)}{(m.group('suf') or '').upper()}")
        t = n = mm = None
        block = _TNM_BLOCK_RE.search(text)
        if block:
            t, n, mm = block.group("t"), block.group("n"), block.group("m")
        if n is None:
            found = _N_RE.search(text)
            n = found.group("tok") if found else None
        if mm is None:
            found = _M_RE.search(text)
            mm = found.group("tok") if found else None
        out.extend(x for x in (t, n, mm) if x)
        return out or None

    @staticmethod
    def laterality(text: str) -> list[str] | None:
        """``["Left"]``, ``["Right"]`` or ``["Bilateral"]``; None when no side is named next to an organ word."""
        if _BILATERAL_RE.search(text):
            return ["Bilateral"]
        matches = [*_SIDE_RE.finditer(text), *_SIDE_AFTER_RE.finditer(text)]
        counts = Counter("Left" if m.group("side").lower().startswith("l") else "Right" for m in matches)
        if not counts:
            return None
        if counts["Left"] == counts["Right"]:
            return ["Bilateral"]
        return [counts.most_common(1)[0][0]]

    @staticmethod
    def grade(text: str) -> list[str] | None:
        """One grade: ``"G1"``..``"G4"``/``"GX"``, ``"High Grade"``/``"Low Grade"``, or None."""
        m = _GRADE_NUM_RE.search(text)
        if m:
            g = (m.group("g") or m.group("g2")).upper()
            arabic = {"I": "1", "II": "2", "III": "3", "IV": "4"}.get(g, g)
            return [f"G{arabic}"]
        m = _GRADE_TIER_RE.search(text)
        if m:
            return [f"{m.group('tier').capitalize()} Grade"]
        grades = [_DIFF_GRADE[m.group("d").lower()] for m in _DIFF_RE.finditer(text)]
        return [max(grades)] if grades else None

    @staticmethod
    def receptors(text: str) -> tuple[list[str] | None, list[str] | None]:
        """``(receptors mentioned, ["<receptor> <status>", ...])`` for ER, PR, HER2 (each None when empty)."""
        status: dict[str, tuple[int, str]] = {}

        def put(name: str, pos: int, word: str) -> None:
            if name not in status or pos < status[name][0]:
                status[name] = (pos, word)

        for name, regex in _RECEPTOR_STATUS_RES:
            m = regex.search(text)
            if m:
                put(name, m.start(), _status_word(m.group("status")))
        for name, regex in _STATUS_FIRST_RES:
            m = regex.search(text)
            if m:
                put(name, m.start(), _status_word(m.group("status")))
        m = _JOINT_RE.search(text)
        if m:
            word = _status_word(m.group("status"))
            for name in ("er", "pr"):
                put(name, m.start(), word)
        mentioned: list[tuple[int, str]] = []
        for name, regex in _RECEPTOR_MENTION_RES:
            found = regex.search(text)
            if found or name in status:
                mentioned.append((found.start() if found else status[name][0], name))
        order = [n for _, n in sorted(mentioned)]
        statuses = [f"{n} {status[n][1]}" for n in order if n in status]
        return (order or None), (statuses or None)

    @staticmethod
    def tumor_size(text: str) -> list[str] | None:
        """The greatest dimension of the first tumor size found, e.g. ``["1.3 cm"]``; None if none found."""
        for regex in (_SIZE_LABELLED_RE, _SIZE_MEASURING_RE, _SIZE_DIMENSION_RE):
            m = regex.search(text)
            if m:
                numbers = [float(x) for x in re.findall(_NUM, m.group("dims"))]
                return [f"{max(numbers):g} {m.group('unit').lower()}"]
        return None
