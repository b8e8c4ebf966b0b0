"""A rule-based phenotype extractor: the regular expressions a hospital team would otherwise write.

:class:`RuleBasedExtractor` finds the TNM categories and stage group, laterality, grade, ER/PR/HER2 status and
tumor size in a pathology report and returns a :class:`~cancerllm.schema.PhenotypeResult`, the same type as
the model extractor, so both can be scored side by side (:mod:`cancerllm.benchmark.fields`).

It answers at most one value per single-valued phenotype (no free credit from listing alternatives) and
leaves histological type and tumor location as None (not attempted).  The rules are written for OCR'd
reports: upper-case text, ``O`` for ``0`` and ``l`` for ``1`` inside TNM codes (``pNO``, ``pTla``), and line
breaks turned into ``". "``.  They are listed, with examples, on :class:`RuleBasedExtractor` and in
``docs/benchmark.md``.

Example:
    >>> r = RuleBasedExtractor().extract("Left breast. Nottingham grade II. pT1c pN0. Tumor size: 1.3 x 1.2 cm.")
    >>> r.laterality, r.grade, r.stage, r.tumor_size
    (['Left'], ['G2'], ['pT1c', 'pN0'], ['1.3 cm'])
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from ..prompts import format_answer
from ..schema import Phenotype, PhenotypeResult
from ..tnm import TNMItem, parse_tnm, tnm_group

__all__ = ["RuleBasedExtractor", "repair_tnm_ocr"]

# ================================================================================================ stage / TNM
# OCR repairs inside TNM codes, each keeping the text's length (offsets stay valid):
# * a prefixed code (p, yp, c, yc; letter in capitals) with O/o for 0 or l/I for 1: "pNO", "pTla", "pNIa";
# * a prefixed code with a space before its value: "pT 1" -> "pT1 ";
# * a capital "NO"/"MO" run on to a T or N item ("pT2 NO MX", "pT3aNOMX").
_OCR_VALUE = {"O": "0", "o": "0", "I": "1", "l": "1"}
_PREFIXED_OCR_RE = re.compile(
    r"(?<![A-Za-z0-9])(?P<head>(?:[yY]?[pP]|[yY]?[cC])[TNM])(?:(?P<ocr>[OoIl])|(?P<sp> )(?P<digit>[0-4xX]))"
    r"(?P<tail>(?:mi|[a-dA-D])?[12]?)(?=$|[^A-Za-z0-9]|[TNMpP(])"
)
_RUN_OCR_RE = re.compile(r"(?P<gap>\s{0,2}[,;]?\s{0,2})(?P<let>[NM])O(?=$|[^A-Za-z0-9]|[MpP(])")


def repair_tnm_ocr(text: str) -> str:
    """``text`` with OCR slips inside TNM codes repaired, same length: ``"pT2 pNO MX"`` -> ``"pT2 pN0 MX"``,
    ``"pTla"`` -> ``"pT1a"``, ``"pT 1"`` -> ``"pT1 "``, ``"pT3aNOMX"`` -> ``"pT3aN0MX"``.

    Only codes that are TNM codes beyond doubt are touched: those with a prefix (``p``, ``yp``, ``c``) and a
    capital letter, and a capital ``NO``/``MO`` that directly follows a T or N item (``"T2 NO MX"``); a
    bare ``"No"`` or ``"NO"`` elsewhere stays as it is.

    Example:
        >>> repair_tnm_ocr("AJCC: pTlb NO MX")
        'AJCC: pT1b N0 MX'
    """
    chars = list(text)

    def fix(m: re.Match[str]) -> None:
        if m.group("ocr"):
            chars[m.start("ocr")] = _OCR_VALUE[m.group("ocr")]
        else:  # "pT 1" -> "pT1 "
            chars[m.start("sp")] = m.group("digit")
            chars[m.start("digit")] = " "

    for m in _PREFIXED_OCR_RE.finditer(text):
        fix(m)
    out = "".join(chars)
    for _ in range(2):  # "pT3aNOMO": N first, then M
        ends = {i.end for i in parse_tnm(out)}
        chars = list(out)
        for m in _RUN_OCR_RE.finditer(out):
            if m.start() in ends:
                chars[m.end() - 1] = "0"
        out = "".join(chars)
    return out


# Words that announce a staging statement; an item up to _LABEL_REACH characters after one is "labelled".
_STAGE_LABEL_RE = re.compile(
    r"stag(?:e|ing)|\bp?tnm\b|\bajcc\b|\buicc\b|classification|primary\s+tumou?r|regional\s+lymph\s+nodes?"
    r"|distant\s+metasta\w*|\b[tnm]\s+(?:stage|category)|(?:patholog\w*|clinical)\s+[tnm]\b|\(p?[tnm]\)"
    r"|extent\s+of\s+(?:invasion|tumou?r)|tumou?r\s+extent|\bextension\s*:",
    re.I,
)
_LABEL_REACH = 80
_RUN_GAP = 16  # characters between two items of a run ("pT2 (m) pN0 (sn) (0/2) MX")
# "T stage: 2", "M Stage: 0" (value without its letter)
_LETTER_STAGE_RE = re.compile(
    r"\b(?P<let>[TNM])\.?\s*(?:stage|category)\s*(?:,\s*patholog\w*)?\s*[:\-]\s*(?P<val>[0-4][a-d]?|x)\b", re.I
)
# the stage group: "Stage IIA", "AJCC stage: 2B", "stage group IIIC", "Stage IV A"; not fibrosis or hepatitis
# stages ("Ishak stage 3 of 4", "Stage (fibrosis): 2", "stage 4 fibrosis", "grade 1, stage 2") nor ranges.
_GROUP_RE = re.compile(
    r"(?<![TNM] )(?<![TNM]\. )(?<!ishak )(?<!fibrosis )(?<!fibrosis \()\bstage(?:\s+group(?:ing)?)?\s*(?:\((?!fibrosis)[^)]{0,20}\))?"
    r"\s*[:\-]?\s*(?P<num>IV|III|II|I|[0-4])(?:\s?(?P<suf>[ABC][12]?))?(?![\w+])"
    r"(?!\s*(?:-|/|of|to)\s*\d)(?!\s*(?:\(|,)?\s*fibrosis)(?![^.]{0,40}\bpatients\b)",
    re.I,
)
_GROUP_GOOD_RE = re.compile(r"(?:patholog\w*|ajcc|tnm|final|overall|summary|figo|grouping|categories)\W*(?:\w+\W+){0,3}$", re.I)
_GROUP_WEAK_RE = re.compile(r"(?:clinical\w*|history|grade\s+\w+\s*,?)\W*(?:\w+\W+){0,3}$", re.I)
_ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV", "0": "0"}


def _tnm_candidates(text: str) -> list[tuple[int, TNMItem]]:
    """Every TNM item of the (OCR-repaired) text with its score: labelled +2, in a run of items of other
    letters +2, prefixed (``p``, ``yp``, ``c``) +1.  A bare lone item (``"T1"``, ``"M1"``) scores 0."""
    fixed = repair_tnm_ocr(text)
    items = parse_tnm(fixed)
    labels = [m.end() for m in _STAGE_LABEL_RE.finditer(fixed)]
    out = []
    for k, it in enumerate(items):
        labelled = any(0 <= it.start - e <= _LABEL_REACH for e in labels)
        neighbours = [j for j in (k - 1, k + 1) if 0 <= j < len(items)]
        in_run = any(
            items[j].letter != it.letter
            and (items[j].start - it.end if j > k else it.start - items[j].end) <= _RUN_GAP
            for j in neighbours
        )
        out.append((2 * labelled + 2 * in_run + bool(it.prefix), it))
    for m in _LETTER_STAGE_RE.finditer(fixed):
        parsed = parse_tnm(m.group("let") + m.group("val"))
        if parsed:
            out.append((3, parsed[0]))
    return out


def _stage_items(text: str) -> list[str]:
    """The chosen T, N and M items (canonical spelling), in that order."""
    best: dict[str, tuple[int, int, TNMItem]] = {}
    for order, (score, it) in enumerate(_tnm_candidates(text)):
        if score < 1:
            continue
        if it.letter not in best or score > best[it.letter][0]:
            best[it.letter] = (score, order, it)
    return [best[x][2].canonical for x in "TNM" if x in best]


def _stage_group(text: str) -> str | None:
    """The best-supported stage group (see :class:`RuleBasedExtractor`; the last among equals), as
    :func:`~cancerllm.tnm.tnm_group` writes it (``"Stage IIA"``)."""
    best: tuple[int, str] | None = None
    for m in _GROUP_RE.finditer(text):
        before = text[max(0, m.start() - 40):m.start()]
        score = 1 + bool(_GROUP_GOOD_RE.search(before)) - 2 * bool(_GROUP_WEAK_RE.search(before))
        num = m.group("num").upper()
        group = f"Stage {_ROMAN.get(num, num)}{(m.group('suf') or '').upper()}"
        if best is None or score >= best[0]:
            best = (score, group)
    return tnm_group(best[1]) if best else None


# ================================================================================================ laterality
# Organ, site and procedure words that make "left"/"right" a laterality ("left breast", "right frontal
# tumor", "Rt. kidney"), and words that make it something else ("right margin", "left lymph nodes").
_ORGANS = (
    r"breasts?|axilla|axillary|lungs?|lobes?|lobectomy|pneumonectomy|kidneys?|renal|nephrectomy|adrenal\w*|"
    r"ovary|ovaries|ovarian|adnexa\w*|fallopian|tube|salpingo\w*|oophorectomy|testis|testes|testicle|testicular|"
    r"spermatic|orchiectomy|thyroid\w*|hemithyroid\w*|parotid\w*|submandibular|eye|orbit|globe|enucleation|"
    r"mastectomy|lumpectomy|frontal|temporal|parietal|occipital|cerebral|cerebellar|hemisphere|brain|insula\w*|"
    r"tongue|glossectomy|tonsils?|tonsillar|tonsillectomy|mandible|mandibul\w*|maxilla\w*|jaw|palate|larynx|"
    r"laryn\w*|vocal|glottic|supraglottic|pyriform|piriform|buccal|cheek|lip|floor\s+of\s+(?:the\s+)?mouth|"
    r"pleura|pleural|pleurectomy|hemithorax|chest|diaphragm\w*|tumou?r|mass|lesion|carcinoma|neoplasm|"
    r"prostate|peripheral\s+zone|apex|base|mid[\s-]?gland|seminoma|\w+ectomy"
)
_NOT_LATERALITY = (
    r"margins?|lymph|nodes?|ln|neck\s+(?:level|dissection)|level|seminal|vas|vasa|pelvic|iliac|obturator|"
    r"ureter\w*|surface|side|aspect|ink\w*|nerve|neurovascular"
)
_SIDE_RE = re.compile(
    rf"\b(?P<side>left|right|lt\.?|rt\.?)(?P<gap>\W+(?:[a-z\-]+\W+){{0,3}}?)(?:{_ORGANS})\b", re.I
)
_SIDE_AFTER_RE = re.compile(
    rf"\b(?:{_ORGANS})(?:\s*[,:]\s*(?P<side>left|right)\b(?!\s+(?:{_NOT_LATERALITY})\b)"
    rf"|[^.;]{{0,20}}\bon\s+the\s+(?P<side2>left|right)\s+side\b)",
    re.I,
)
_NOT_LAT_RE = re.compile(rf"\b(?:{_NOT_LATERALITY})\b", re.I)
_BILATERAL_RE = re.compile(
    r"\bbilateral\s+(?:[a-z\-]+\s+){0,2}?(?:tumou?rs?|masses|carcinomas?|neoplasms?|disease|involvement)\b"
    r"|\b(?:both|right\s+and\s+left|left\s+and\s+right)\s+(?:[a-z\-]+\s+){0,1}?(?:lobes|ovaries|sides\s+of\s+the\s+prostate)\b"
    r"|\btumou?r\s+involves\s+both\s+lobes\b",
    re.I,
)
# explicit fields: "Laterality: Left", "Lobe laterality: Right and Left Lobes", "Tumor site: left and right prostate"
# a field value may run on over ". " when what follows is another side ("Tumor Location: Left lobe. Right lobe.")
_FIELD_MORE = r"(?:\.\s*(?:left|right|isthmus|bilateral)\b[^.]{0,30})*"
_LAT_FIELD_RE = re.compile(
    rf"(?<!/)\bl?aterality(?:\s*\([^)]{{0,20}}\))?\s*(?:[:\-]\s*|\.\s+(?=\w+\.))?(?P<v>[^.;]{{0,40}}{_FIELD_MORE})", re.I
)
_SITE_FIELD_RE = re.compile(
    r"\b(?:(?:tumou?r\s+)?(?:site|location|focality)s?(?:\s*\(s\))?(?:\s+of\s+(?:the\s+)?tumou?r)?\s*[:\-]"
    rf"|site\s+of\s+(?:the\s+)?primary(?:\s*\([^)]{{0,20}}\))?\s*[:.\-])\s*(?P<v>[^.]{{0,100}}{_FIELD_MORE})",
    re.I,
)
# lobed midline organs: a tumour in both lobes is "Bilateral" (paired organs: the side of the main tumour)
_LOBED_ORGAN_RE = re.compile(r"\bprostat(?:e|ic|ectomy)\b|\bthyroid(?!\s+cartilage)", re.I)
_TUMOUR_NEAR_RE = re.compile(
    r"carcinoma|tumou?r|neoplasm|malignan|cancer|sarcoma|melanoma|glioma|astrocytoma|seminoma|mass\b|"
    r"invasive|infiltrating",
    re.I,
)
# a side whose specimen is reported free of tumour does not count ("Left tonsil: negative for tumor")
_NO_TUMOUR_RE = re.compile(
    r"negative\s+for|no\s+(?:evidence|tumou?r|carcinoma|malignan\w*|residual|pathologic)|free\s+of|benign|"
    r"unremarkable|without\s+(?:tumou?r|carcinoma)|not\s+identified",
    re.I,
)
_PROSTATE_RE = re.compile(r"\bprostat(?:e|ic|ectomy)\b", re.I)


def _sides_of(value: str) -> str | None:
    """The laterality a short field value states: ``"Left"``, ``"Right"``, ``"Bilateral"`` or None."""
    v = value.lower()
    if re.search(r"\b(?:bilateral|both)\b", v):
        return "Bilateral"
    left, right = bool(re.search(r"\bleft\b", v)), bool(re.search(r"\bright\b", v))
    if left and right:
        return "Bilateral"
    if left or right:
        return "Left" if left else "Right"
    m = re.match(r"\W*(isthmus|midline)\b", v)
    return m.group(1).capitalize() if m else None


def _field_sides(text: str) -> list[list[str]]:
    """The sides stated by explicit laterality fields and by site/location/focality fields, in text order."""
    return [[s for s in (_sides_of(m.group("v")) for m in regex.finditer(text)) if s]
            for regex in (_LAT_FIELD_RE, _SITE_FIELD_RE)]


# ================================================================================================ grade
# A grade value: arabic or roman numeral (OCR "Il", "111" for II, III), optionally a range or "of n"
# ("2-3", "II/IV", "3 of 4" -> the highest), "G2", "X"; or a differentiation word ("poorly differentiated").
_ROMAN_GRADE = r"IV|I{1,3}|[Il1]{2,3}|1V"
_GRADE_VALUE = (
    rf"(?P<val>(?:G\s?)?(?:{_ROMAN_GRADE}|[1-4]|X)(?![\w+])(?:\s*(?:-|to|/|and)\s*(?:G\s?)?(?:{_ROMAN_GRADE}|[1-4])(?![\w+]))?"
    r"(?:\s*(?:/|of)\s*(?:3|4|III|IV))?(?![\w+])"
    r"|(?:well|moderately?|poorly|poor|un)[\s.,-]*(?:(?:to|and|-)\s*(?:well|moderately?|poorly|poor)[\s.,-]*)?differentiated"
    r"|(?:well|moderate|poor)\b)"
)
_GRADE_SYSTEMS = (
    r"nottingham|histologic(?:al)?|combined|overall|fnclcc|fuhrman|nuclear|who|tumou?r|sbr|edmondson(?:[\s-]+steiner)?"
    r"|elston|bloom[\s-]+richardson|modified|final|isup|figo|architectural"
)
# "Histologic grade: 3", "Fuhrman nuclear grade 2 of 4", "Grade/Differentiation. II", "Grade of tumor: High grade",
# "Differentiation: poorly differentiated"; not Gleason grades, hepatitis activity ("Grade, lobular: minimal")
# or dysplasia grades.
_GRADE_LABEL_RE = re.compile(
    rf"(?<!gleason )(?<!gleason's )(?<!primary )(?<!secondary )\b(?:(?:{_GRADE_SYSTEMS})\s*)*(?:grade|grading)"
    rf"(?:\s*/\s*differentiation|\s+of\s+(?:the\s+)?tumou?r)?\s*(?:\([^)]{{0,40}}\))?\s*(?P<sep>[:.\-]|is)?\s*"
    rf"(?:grade\s*)?{_GRADE_VALUE}",
    re.I,
)
_WORST_RE = re.compile(rf"\bworst\s*(?:differentiation)?\s*[:.\-]?\s*(?:(?:edmondson\w*\s+)?grade\s*)?{_GRADE_VALUE}", re.I)
# grades of something other than the tumour: hepatitis activity, dysplasia, in-situ components
_NOT_TUMOUR_GRADE_RE = re.compile(
    r"hepatitis|inflammat\w*|activity|fibrosis|steatosis|dysplasia|intraepithelial|\bpin\b|\bdcis\b|in[\s-]situ",
    re.I,
)
_DIFF_LABEL_RE = re.compile(rf"\bdifferentiation\s*(?:\([^)]{{0,30}}\))?\s*[:.\-]\s*{_GRADE_VALUE}", re.I)
# bare G1-G4/GX in a classification run ("G2, L0, V0", "(G3, pT3", "G3 pT2"), not block labels ("G1-G5:")
_GRADE_BARE_RE = re.compile(
    r"(?<![A-Za-z0-9/-])G(?P<g>[1-4]|X)(?=\s*[,;)]|\s+p?T[0-4isx])(?!\s*-)|\b(?:is|are)\s+G(?P<g2>[1-4]|X)(?![\w-])"
)
_GRADE_TIER_RE = re.compile(
    r"\b(?P<tier>high|low)[\s.-]+(?:histologic(?:al)?[\s.-]+)?grade\b(?!\s*(?:\(?\s*(?:squamous\s+)?(?:dysplasia|intraepithelial|pin|panin|sil)|"
    r"columnar|glandular|ductal\s+carcinoma\s+in\s+situ|dcis|chronic|acute|inflammation))",
    re.I,
)
_DIFF_RE = re.compile(
    r"\b(?P<d>well|moderately|moderate|poorly|p?oor\w*|un)[\s.-]*(?:to\s+\w+[\s.-]*)?differentiated\b", re.I
)
_UROTHELIAL_RE = re.compile(r"urothelial|transitional[\s-]+cell", re.I)
_GRADE_NUMBER = {"I": 1, "II": 2, "III": 3, "IV": 4}


def _grade_number(token: str) -> int | None:
    """``"II"``, ``"2"``, ``"G2"``, OCR ``"Il"``/``"11"`` -> 2; ``"X"`` -> 0 (GX); None otherwise."""
    t = token.upper().replace(" ", "").removeprefix("G")
    if t == "X":
        return 0
    if t.isdigit() and len(t) == 1:
        return int(t) if 1 <= int(t) <= 4 else None
    t = t.replace("1", "I").replace("L", "I")
    return _GRADE_NUMBER.get(t)


def _tumour_grade(text: str, m: re.Match[str]) -> bool:
    """Whether a grade match grades the tumour: not hepatitis activity ("grade 1 of 4, stage 4"), dysplasia,
    PIN or an in-situ component (judged from the 40 characters before and the words after)."""
    if _NOT_TUMOUR_GRADE_RE.search(text, max(0, m.start() - 40), m.start()):
        return False
    return not re.match(r"\s*,?\s*stage\b", text[m.end():m.end() + 12], re.I)


_OVERALL_GRADE_RE = re.compile(r"figo|histolog|overall|combined|final|nottingham|who|fuhrman|edmondson|steiner", re.I)
_PARTIAL_GRADE_RE = re.compile(r"nuclear|architectural", re.I)


def _grade_rank(label: str) -> int:
    """How much a grade statement is the tumour's overall grade: 2 for FIGO, histologic, WHO, Nottingham,
    Fuhrman, Edmondson; 0 for a nuclear or architectural component grade alone; 1 otherwise."""
    if _OVERALL_GRADE_RE.search(label):
        return 2
    return 0 if _PARTIAL_GRADE_RE.search(label) else 1


def _grade_of(value: str) -> str | None:
    """The grade a matched value gives: the highest numeral of a range, or the worst differentiation word."""
    v = value.lower()
    if "differentiated" in v or re.fullmatch(r"(?:well|moderate|poor)", v):
        words = re.findall(r"\bun|well|moderate|poor|oor", v)
        rank = {"well": 1, "moderate": 2, "poor": 3, "oor": 3, "un": 4}
        return f"G{max(rank[w] for w in words)}" if words else None
    head = re.split(r"\s*(?:/|of)\s*(?:3|4|iii|iv)\s*$", v)[0]
    numbers = [n for n in (_grade_number(x) for x in re.split(r"\s*(?:-|to|/|and)\s*", head)) if n is not None]
    if not numbers:
        return None
    top = max(numbers)
    return "GX" if top == 0 else f"G{top}"


# ================================================================================================ receptors
# Receptor names: full names in any case (OCR slips "PROGESTERONI" included); the abbreviations ER, PR, PgR in
# capitals only (as "ER-ICA"); HER2 as "HER2", "HER-2/neu", "Her 2", "c-erbB-2", "HercepTest".
_RECEPTOR_MENTION_RE = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"(?P<er>(?i:o?estrogen)(?:\s+(?i:receptors?))?|ER(?:-?ICA|-?alpha)?)"
    r"|(?P<pr>(?i:progester\w*)(?:\s+(?i:receptors?))?|PgR|PR(?:-?ICA)?)"
    r"|(?P<her2>(?i:her[\s-]*2(?:[\s/-]*neu)?|her2neu|c-?erb-?b-?2|c-?erb82|erbb-?2|herceptest))"
    r")(?![A-Za-z0-9])"
)
_JOIN_RE = re.compile(r"\s*(?:/|,|and|&|or)?\s*(?:receptors?\s*)?(?:,|/|and|&)?\s*", re.I)
# a test requested, not reported: "please obtain ER, PR, HER2 by immunohistochemistry"
_REQUEST_BEFORE_RE = re.compile(r"(?:obtain|order|request|please|perform)\w*\s+(?:(?:the\s+)?\w+[\s,/]+){0,4}$", re.I)
# "negative for ER and PR", "positive. for estrogen receptor", "no expression of ER"
_STATUS_BEFORE_RE = re.compile(
    r"(?:(?P<status>positive|negative)[\s.]+for[\s.]+(?:the\s+)?(?:\w+\s+){0,2}|\b(?P<no>no)\s+(?:expression\s+of\s+)?(?:the\s+)?)$",
    re.I,
)
# the first of these after a receptor decides its status; a "stop" (pending, performed elsewhere, method text)
# before any of them leaves it undecided.
_STATUS_CUE_RE = re.compile(
    r"(?P<stop>pending|to\s+follow|will\s+be|ordered|requested|not\s+(?:performed|done|tested)|"
    r"\bsee\b|please|obtain|\bif\b|were\s+performed|(?:was|were|is|are)\s+(?:assessed|determined|evaluated)|using|antibod|clone|studies)"
    r"|(?P<fishneg>non-?amplified|not\s+amplified|no\s+amplification|without\s+amplification|negative\s+for\s+amplification)"
    r"|(?P<fishpos>(?<!non-)(?<!non)amplified(?!\s+control)|amplification\s+(?:is\s+)?(?:present|detected))"
    r"|(?P<equivocal>equivocal|borderline|indeterminate)"
    r"|(?P<neg>negative|\bneg\b|not\s+(?:found|detected|identified|expressed|seen)|absent|"
    r"\bno\s+(?:\w+\s+){0,2}(?:staining|expression|immunoreactiv\w*|reactivity)|(?<![\d.])0(?:\.0)?\s*%|<\s*1\s*%|zero\s+or\s+1\s*\+)"
    r"|(?P<score>(?<![\d.])[0-3]\s*\+)"
    r"|(?P<allred>allred\s*(?:score)?\s*[:=]?\s*(?P<allred_n>[0-8]))"
    r"|(?P<pos>positive|\bpos\b|immunoreactive|(?:found|expression|staining|expressed)\s+in|(?<![\d.])(?:[1-9]\d?|100)(?:\.\d+)?\s*%)"
    r"|(?P<sign>\A\s?\(?(?:\+(?!\s*\d)|-(?!\s*(?:pos|neg|equiv|\d|-)))\)?(?=[\s,;.)/]|\Z))",
    re.I,
)
_STATUS_REACH = 90


def _cue_status(m: re.Match[str], receptor: str) -> str | None:
    """The status a cue gives (``"positive"``, ``"negative"``, ``"equivocal"``), or None for a stop.

    An IHC score is read per receptor: HER2 0/1+ negative, 2+ equivocal, 3+ positive; ER/PR any 1+-3+
    staining positive, 0 negative.  An Allred score of 3 or more is positive; a FISH result (amplified, not
    amplified) gives HER2 positive / negative."""
    kind = m.lastgroup
    if kind in (None, "stop"):
        return None
    if kind in ("fishneg", "fishpos"):
        return "negative" if kind == "fishneg" else "positive"
    if kind == "score":
        n = int(m.group("score")[0])
        if receptor == "her2":
            return {0: "negative", 1: "negative", 2: "equivocal", 3: "positive"}[n]
        return "positive" if n else "negative"
    if kind in ("allred", "allred_n"):
        return "positive" if int(m.group("allred_n")) >= 3 else "negative"
    if kind == "sign":
        return "positive" if "+" in m.group("sign") else "negative"
    return {"pos": "positive", "neg": "negative"}.get(kind, kind)


# ================================================================================================ tumor size
_NUM = r"\d+(?:\.\d+)?|\.\d+"
_DIMS = rf"(?P<dims>(?:{_NUM})(?:\s*(?:cm|mm))?(?:\s*[x×]\s*(?:{_NUM})(?:\s*(?:cm|mm))?){{0,2}})\s*(?P<unit>cm|mm)\b"
# "Tumor size: 2.5 x 2 x 1.5 cm", "TUMOR SIZE: Invasive: 4.0 cm", "Size of largest primary tumor: 1.5 cm",
# "Greatest dimension: 2.5 cm", "Size = 1.3 cm" (not specimen, lobe or lymph node sizes)
_SIZE_LABELLED_RE = re.compile(
    rf"\b(?:(?:tumou?r|lesion|mass|carcinoma)\s+size|size\s+of\s+(?:the\s+)?(?:\w+\s+){{0,2}}?(?:tumou?r|lesion|mass|carcinoma|invasive\s+component)"
    rf"|(?:greatest|maximum|largest)\s+(?:tumou?r\s+)?(?:dimension|diameter|size)|(?<!specimen )(?<!lobe )(?<!node )size\s*(?==|-))"
    rf"\s*(?:\([^)]{{0,30}}\))?\s*[:=\-]?\s*(?:(?:invasive|greatest\s+dimension|dominant\s+tumou?r)\s*[:\-]?\s*)?"
    rf"(?:is\s+|of\s+)?(?:at\s+least\s+|approximately\s+)?{_DIMS}",
    re.I,
)
# "papillary thyroid carcinoma (1.5 cm)", "solid mass (5.0 cm)"
_SIZE_PAREN_RE = re.compile(
    rf"\b(?:carcinoma|tumou?r|neoplasm|mass)\b[^;()]{{0,60}}?\(\s*(?P<dims>{_NUM})\s*(?P<unit>cm|mm)\s*\)", re.I
)
_SIZE_MEASURING_RE = re.compile(
    rf"\b(?:tumou?r|mass|lesion|carcinoma|nodule|neoplasm)\b[^.\n;]{{0,40}}?\bmeasur(?:es|ing)\s*"
    rf"(?:up\s+to\s+|maximally\s+|approximately\s+)?{_DIMS}",
    re.I,
)
_SIZE_DIMENSION_RE = re.compile(rf"{_DIMS}\s+in\s+(?:greatest|maximum|largest)[\s.]+(?:dimension|diameter)", re.I)
# sizes of other things: lymph nodes, metastatic foci, the specimen
_NOT_TUMOUR_SIZE_RE = re.compile(r"lymph\s+node|metastatic\s+focus|\bnodes?\b|specimen|parathyroid", re.I)


class RuleBasedExtractor:
    """Regular-expression phenotype extractor for pathology reports (a non-LLM baseline).

    Answers, in report spelling where one exists (normalise with :mod:`~cancerllm.benchmark.normalize`):

    * ``stage``: the T, N and M items as :attr:`~cancerllm.tnm.TNMItem.canonical` (``"pT1c"``,
      ``"pN0 (sn)"``, ``"MX"``), then the stage group as :func:`~cancerllm.tnm.tnm_group` writes it
      (``["pT2", "pN0", "MX", "Stage IIA"]``).  Items are read with :func:`~cancerllm.tnm.parse_tnm` after
      :func:`repair_tnm_ocr` (``pNO``, ``pTla``, ``pT 1``, ``T2 NO MX``).  Each item scores: +2 within 80
      characters after a staging label ("pathologic stage", "TNM", "AJCC", "classification", "primary
      tumor (pT)", "regional lymph nodes", "distant metastasis", "Pathological T", "extent of invasion"),
      +2 in a run with an item of another letter (``pT2 N0 MX``, ``pT2N0M0``, ``pT2 (m) pN0 (sn)``), +1 for
      a prefix (``p``, ``yp``, ``c``); per letter the highest-scoring item wins, the first among equals.  A
      lone bare item (``"T1"`` as a block label, ``"M1"`` as a cassette) scores 0 and is never used.
      ``"M stage: 0"`` gives ``M0``.  The group is the best-supported "stage <numeral>" (roman or arabic,
      suffix A-C with optional 1/2): after "pathologic", "AJCC", "TNM", "FIGO", "final", "grouping" beats
      plain, plain beats "clinical stage" or a clinical history; the last among equals.  Fibrosis and
      hepatitis stages ("Ishak stage 3 of 4", "stage 4 fibrosis", "grade 1, stage 2"), ranges and
      boilerplate ("stage II, node-positive ... patients") are skipped.
    * ``laterality``: ``"Left"``, ``"Right"``, ``"Bilateral"``, ``"Isthmus"`` or ``"Midline"``.  First an
      explicit field: "Laterality: Left" (also OCR "aterality", "Specimen laterality", not
      "Sites/laterality" of lymph nodes), else a site field ("Tumor site: left and right prostate",
      "Location of tumor: Unilateral, left ovary", "Site of Primary. Right breast", "Focality: bilateral");
      the most frequent value wins; a value naming both sides is Bilateral.  In a lobed midline organ
      (thyroid, prostate) fields naming both lobes give Bilateral.  Else "bilateral tumors/carcinoma",
      "both lobes/ovaries", "tumor involves both lobes" give Bilateral.  Else left/right (also ``Lt.``,
      ``Rt.``) within three words before an organ, site, procedure or tumour word (breast, kidney, lobe,
      frontal, tongue, tonsil, pleura, testis, mastectomy, any "-ectomy", tumor, mass, ...) or after one
      ("BREAST, LEFT", "testis on the right side") are counted, three times when a tumour word follows
      within 60 characters, never when the words between are "margin", "lymph node", "neck level",
      "seminal vesicle", "surface", "ink", ... or when the 60 characters after report no tumour ("negative
      for", "benign", "unremarkable"); the majority side wins, a tie (or, in a prostate report, both sides)
      is Bilateral.
    * ``grade``: ``"G1"``-``"G4"``, ``"GX"``, or two-tier ``"High Grade"``/``"Low Grade"`` for urothelial
      (transitional cell) carcinoma, where the registry keeps the two-tier scale.  In order: the "worst
      differentiation" of a liver synoptic report; a labelled grade ("Nottingham grade II", "Histologic
      grade: 3", "Fuhrman nuclear grade 2 of 4", "WHO grade II", "Grade/Differentiation. II", "FIGO grade
      1", "Edmondson grade 111" as OCR of III, "Histologic grade: Poorly differentiated"), overall grades
      (FIGO, histologic, WHO, Nottingham, Fuhrman, Edmondson) before component ones (nuclear,
      architectural), the highest of them and of a range ("2-3" -> G3); then differentiation words
      anywhere (the worst: well G1, moderately G2, poorly G3, undifferentiated G4); then a bare ``G2`` in a
      classification run ("G2, L0, V0", "G3 pT2", not block labels "G1-G5"); then "high grade" -> G3 and
      "low grade" -> G1 outside urothelial carcinoma.  Gleason grades, hepatitis activity, dysplasia, PIN
      and in-situ components are skipped.
    * ``receptor_status``: ``"<receptor> <status>"`` (``"er positive"``, ``"her2 equivocal"``) for ER, PR and
      HER2; ``receptors``: the receptors mentioned, in order of first mention.  Names: "estrogen
      receptor", "ER", "ER-ICA", "progesterone receptor", "PR", "PgR", "HER2", "HER-2/neu", "c-erbB-2",
      "HercepTest"; coordinated names ("ER/PR", "estrogen and progesterone receptors") share a status.
      The status comes from "positive/negative for <receptor>" or "no expression of <receptor>" before
      it, else from the first cue within 90 characters after it (and before the next receptor): a word
      (positive, negative, equivocal, "not found", "no staining", "immunoreactive tumor cells"), a sign
      (``ER+``, ``PR-``), a percentage (0 % or <1 % negative, 1-100 % positive), an IHC score (HER2 0/1+
      negative, 2+ equivocal, 3+ positive; ER/PR 1+-3+ positive), an Allred score (>= 3 positive) or a FISH
      result (amplified positive, not amplified negative).  "Pending", "will be performed", "see",
      "please obtain", method text ("assessed by", "antibody", "clone") before any cue leave the receptor
      without status.  The first status found per receptor is kept.
    * ``tumor_size``: the greatest dimension, ``"<n> cm"`` or ``"<n> mm"`` as written, of the first of: a
      labelled size ("Tumor size: 2.5 x 2 x 1.5 cm", "TUMOR SIZE: Invasive: 4.0 cm", "Size of largest
      primary tumor: 1.5 cm", "Greatest dimension: 2.5 cm", "Size = 1.3 cm"); a size in brackets after a
      tumour word ("papillary carcinoma (2.7 cm)"); "tumor/mass ... measuring 25 mm"; "3.2 cm in greatest
      dimension".  Sizes of lymph nodes, metastatic foci, parathyroid glands or the specimen are skipped.

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

    def extract_many(self, texts: Iterable[str]) -> list[PhenotypeResult]:
        """:meth:`extract` for each text, in order."""
        return [self.extract(t) for t in texts]

    # -------------------------------------------------------------------------------------------- fields
    @staticmethod
    def stage(text: str) -> list[str] | None:
        """T, N, M items then the stage group, e.g. ``["pT2", "pN0", "MX", "Stage IIA"]``; None if none found."""
        out = _stage_items(text)
        group = _stage_group(text)
        if group:
            out.append(group)
        return out or None

    @staticmethod
    def laterality(text: str) -> list[str] | None:
        """``["Left"]``, ``["Right"]`` or ``["Bilateral"]``; None when no side is named next to an organ word."""
        for sides in _field_sides(text):  # laterality fields first, else site fields
            if not sides:
                continue
            if _LOBED_ORGAN_RE.search(text) and ("Bilateral" in sides or {"Left", "Right"} <= set(sides)):
                return ["Bilateral"]
            return [max(sides, key=sides.count)]  # the most frequent value, the first among equals
        if _BILATERAL_RE.search(text):
            return ["Bilateral"]
        matches = [m for m in _SIDE_RE.finditer(text) if not _NOT_LAT_RE.search(m.group("gap"))]
        matches += list(_SIDE_AFTER_RE.finditer(text))
        counts: Counter[str] = Counter()
        for m in matches:
            side = "Left" if (m.group("side") or m.group("side2")).lower().startswith("l") else "Right"
            if _NO_TUMOUR_RE.search(text, m.end(), m.end() + 60):
                continue
            counts[side] += 1 + 2 * bool(_TUMOUR_NEAR_RE.search(text, m.end(), m.end() + 60))
        if not counts:
            return None
        if counts["Left"] == counts["Right"] or (_PROSTATE_RE.search(text) and len(counts) == 2):
            return ["Bilateral"]
        return [counts.most_common(1)[0][0]]

    @staticmethod
    def grade(text: str) -> list[str] | None:
        """One grade: ``"G1"``..``"G4"``/``"GX"``, ``"High Grade"``/``"Low Grade"`` (urothelial carcinoma), or None."""
        tier = next((m for m in _GRADE_TIER_RE.finditer(text)), None)
        if tier and _UROTHELIAL_RE.search(text):
            return [f"{tier.group('tier').capitalize()} Grade"]
        for regex in (_WORST_RE, _GRADE_LABEL_RE, _DIFF_LABEL_RE):
            found = [(_grade_rank(m.group(0)), g) for m in regex.finditer(text)
                     if _tumour_grade(text, m) and (g := _grade_of(m.group("val")))]
            if found:
                top = max(rank for rank, _ in found)
                return [max((g for rank, g in found if rank == top), key=lambda g: (g != "GX", g))]
        grades = [_grade_of(m.group(0)) or "" for m in _DIFF_RE.finditer(text)]
        grades = [g for g in grades if g]
        if grades:
            return [max(grades)]
        bare = [(m.group("g") or m.group("g2")).upper() for m in _GRADE_BARE_RE.finditer(text)]
        if bare:
            return [f"G{max(bare, key=lambda g: (g != 'X', g))}"]
        if tier:  # a two-tier grade outside urothelial carcinoma: high -> G3, low -> G1
            return ["G3" if tier.group("tier").lower() == "high" else "G1"]
        return None

    @staticmethod
    def receptors(text: str) -> tuple[list[str] | None, list[str] | None]:
        """``(receptors mentioned, ["<receptor> <status>", ...])`` for ER, PR, HER2 (each None when empty)."""
        mentions = [(m.lastgroup or "", m.start(), m.end()) for m in _RECEPTOR_MENTION_RE.finditer(text)]
        # coordinated mentions ("ER/PR", "estrogen and progesterone receptors") share one status
        groups: list[tuple[list[str], int, int]] = []
        for name, start, end in mentions:
            if groups and _JOIN_RE.fullmatch(text, groups[-1][2], start):
                names, gstart, _ = groups[-1]
                groups[-1] = (names + [name], gstart, end)
            else:
                groups.append(([name], start, end))
        found: dict[str, list[tuple[str, str]]] = {}
        for k, (names, start, end) in enumerate(groups):
            if _REQUEST_BEFORE_RE.search(text, max(0, start - 40), start):
                continue
            before = _STATUS_BEFORE_RE.search(text, max(0, start - 30), start)
            stop = min(groups[k + 1][1] if k + 1 < len(groups) else len(text), end + _STATUS_REACH)
            for name in dict.fromkeys(names):
                if before:
                    status: str | None = (before.group("status") or "negative").lower()
                else:
                    cue = _STATUS_CUE_RE.search(text[end:stop])
                    status = _cue_status(cue, name) if cue else None
                if status:
                    found.setdefault(name, []).append(status)
        order = list(dict.fromkeys(name for name, _, _ in mentions))
        statuses = []
        for name in order:
            if name in found:
                statuses.append(f"{name} {found[name][0]}")
        return (order or None), (statuses or None)

    @staticmethod
    def tumor_size(text: str) -> list[str] | None:
        """The greatest dimension of the first tumor size found, e.g. ``["1.3 cm"]``; None if none found."""
        for regex in (_SIZE_LABELLED_RE, _SIZE_PAREN_RE, _SIZE_MEASURING_RE, _SIZE_DIMENSION_RE):
            for m in regex.finditer(text):
                if _NOT_TUMOUR_SIZE_RE.search(text, max(0, m.start() - 40), m.start("dims")):
                    continue
                numbers = [float(x) for x in re.findall(_NUM, m.group("dims"))]
                return [f"{max(numbers):g} {m.group('unit').lower()}"]
        return None
