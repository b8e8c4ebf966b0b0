"""Answer normalisation for comparing model answers with registry gold values.

One small function per phenotype turns an answer item (a model's or the registry's) into a canonical
lower-case form; :func:`normalize` dispatches on the phenotype name and :func:`answers_match` decides
whether a list of predicted items matches a gold value.  Every rule, with examples, is listed in
``docs/benchmark.md``.

Example:
    >>> normalize("stage", "Stage 2A")
    'iia'
    >>> normalize("tnm", "ypT2a")
    't2a'
    >>> answers_match("receptor_status", ["ER+", "HER2/neu: negative"], ["er positive", "her2 negative"])
    True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from ..prompts import is_not_relevant
from ..schema import Phenotype
from ..tnm import parse_tnm

__all__ = [
    "NORMALIZERS",
    "SET_PHENOTYPES",
    "answers_match",
    "normalize",
    "normalize_generic",
    "normalize_grade",
    "normalize_histology",
    "normalize_laterality",
    "normalize_location",
    "normalize_receptor",
    "normalize_receptor_status",
    "normalize_stage",
    "normalize_tnm",
    "normalize_tumor_size",
    "tnm_components",
]

_ROMAN = {"0": "0", "1": "i", "2": "ii", "3": "iii", "4": "iv"}
_ROMAN_TO_ARABIC = {"i": "1", "ii": "2", "iii": "3", "iv": "4"}


def normalize_generic(value: str) -> str:
    """Lower-case, turn punctuation into spaces and collapse whitespace; ``""`` for a "Not relevant" answer.

    Example:
        >>> normalize_generic("  Right Upper-Outer   Quadrant. ")
        'right upper outer quadrant'
    """
    if is_not_relevant(value):
        return ""
    return " ".join(re.sub(r"[^\w/+%.]+|(?<!\d)\.|\.(?!\d)", " ", value.lower()).split())


# --------------------------------------------------------------------------------------------- stage / TNM
_STAGE_RE = re.compile(
    r"^(?:(?:ajcc|figo|pathologic(?:al)?|clinical|overall|tnm)\s+)*(?:stage(?:\s+group(?:ing)?)?)?\s*[:\-]?\s*"
    r"(?P<num>iv|iii|ii|i|[0-4]|x)(?P<suf>s|[a-c][12]?)?$",
    re.I,
)
_STAGE_SEARCH_RE = re.compile(
    r"\bstage(?:\s+group(?:ing)?)?\s*[:\-]?\s*(?P<num>iv|iii|ii|i|[0-4]|x)(?P<suf>s|[a-c][12]?)?\b", re.I
)


def normalize_stage(value: str) -> str:
    """Stage group -> lower-case roman numeral plus suffix; arabic numerals are mapped to roman.

    ``"Stage IIA"``, ``"stage iia"``, ``"IIA"``, ``"Stage 2A"`` and ``"AJCC stage: IIA"`` all give ``"iia"``;
    ``"Stage IB1"`` -> ``"ib1"``; ``"Stage X"`` -> ``"x"``; ``"Stage 0"`` -> ``"0"``.  A TNM answer (``"pT2"``)
    is normalised with :func:`normalize_tnm`; anything else falls back to :func:`normalize_generic`.

    Example:
        >>> normalize_stage("Stage 3C")
        'iiic'
    """
    if is_not_relevant(value):
        return ""
    text = " ".join(value.strip().strip(".").split())
    m = _STAGE_RE.match(text) or _STAGE_SEARCH_RE.search(text)
    if m:
        num = m.group("num").lower()
        return _ROMAN.get(num, num) + (m.group("suf") or "").lower()
    if tnm_components(text):
        return normalize_tnm(text)
    return normalize_generic(text)


def tnm_components(value: str) -> list[str]:
    """The T, N and M components of a TNM text, normalised: ``"pT2 pN0 (i-) MX"`` -> ``["t2", "n0", "mx"]``.

    Prefixes (``p``, ``yp``, ``c``, ``yc``, ``r``, ``a``) are dropped; suffix letters and digits are kept
    (``"T1b1"`` -> ``"t1b1"``, ``"N1mi"`` -> ``"n1mi"``); parenthesised modifiers such as ``(i-)``, ``(i+)``,
    ``(sn)`` or ``(m)`` are dropped.

    Example:
        >>> tnm_components("T2N0M0")
        ['t2', 'n0', 'm0']
    """
    return [item.full.lower() for item in parse_tnm(value)]  # the one TNM parser (cancerllm.tnm)


def normalize_tnm(value: str) -> str:
    """A T, N or M category (or several, space-joined): ``"pT2"`` -> ``"t2"``, ``"ypT2a"`` -> ``"t2a"``,
    ``"N0 (i-)"`` -> ``"n0"``, ``"cM0 (i+)"`` -> ``"m0"``, ``"pT1c pN0"`` -> ``"t1c n0"``.

    Falls back to :func:`normalize_generic` when no TNM category is found.

    Example:
        >>> normalize_tnm("pN1mi")
        'n1mi'
    """
    if is_not_relevant(value):
        return ""
    parts = tnm_components(value)
    return " ".join(parts) if parts else normalize_generic(value)


# --------------------------------------------------------------------------------------------- grade
_DIFFERENTIATION = (
    (re.compile(r"\bundifferentiated\b|\banaplastic\b"), "g4"),
    (re.compile(r"\bpoorly\s+differentiated\b"), "g3"),
    (re.compile(r"\bmoderately\s+differentiated\b"), "g2"),
    (re.compile(r"\bwell\s+differentiated\b"), "g1"),
)
_GRADE_NUM_RE = re.compile(r"\bg(?:rade)?\s*[:\-]?\s*(?P<g>iv|iii|ii|i|[1-4]|x|b)\b")
_GRADE_BARE_RE = re.compile(r"^(?P<g>iv|iii|ii|i|[1-4])(?:\s*(?:/|of)\s*(?:3|4|iii|iv))?$")


def normalize_grade(value: str) -> str:
    """Grade -> ``"g1"``..``"g4"``, ``"gx"``, ``"gb"`` (borderline), or the two-tier ``"high"`` / ``"low"``.

    ``"G3"``, ``"grade 3"``, ``"Grade III"``, ``"Nottingham grade III"``, ``"3/3"`` and ``"grade 3 of 3"`` give
    ``"g3"``.  ``"high grade"`` -> ``"high"``, ``"low grade"`` -> ``"low"``: two-tier systems (urothelial, serous
    ovarian) are a different scale from G1-G4, so they are kept as their own categories and never mapped to
    a number (``"high"`` does not match ``"g3"``).  The AJCC differentiation terms map to numbers: well -> g1,
    moderately -> g2, poorly -> g3, undifferentiated -> g4 (the worst one wins in "moderately to poorly").

    Example:
        >>> normalize_grade("Grade II")
        'g2'
        >>> normalize_grade("High Grade")
        'high'
    """
    if is_not_relevant(value):
        return ""
    text = normalize_generic(value)
    text = re.sub(
        r"\b(?:nottingham|histologic(?:al)?|nuclear|fuhrman|who|fnclcc|combined|overall|tumor)\s+", "", text
    )
    if re.search(r"\bhigh[\s-]*grade\b|^high$", text):
        return "high"
    if re.search(r"\blow[\s-]*grade\b|^low$", text):
        return "low"
    m = _GRADE_NUM_RE.search(text) or _GRADE_BARE_RE.match(text)
    if m:
        g = m.group("g")
        return "g" + _ROMAN_TO_ARABIC.get(g, g)
    for pattern, grade in _DIFFERENTIATION:
        if pattern.search(text):
            return grade
    return text


# --------------------------------------------------------------------------------------------- laterality
_SIDES = {"left": "left", "l": "left", "lt": "left", "right": "right", "r": "right", "rt": "right"}


def normalize_laterality(value: str) -> str:
    """Laterality -> the side only: ``"left"``, ``"right"``, ``"bilateral"``, ``"midline"`` or ``"isthmus"``.

    ``"Right"``, ``"R"``, ``"rt."``, ``"right breast"`` and ``"Right lobe"`` all give ``"right"`` (the organ
    or lobe word is location, not laterality); ``"both"`` and ``"left and right"`` give ``"bilateral"``.

    Example:
        >>> normalize_laterality("Left lobe")
        'left'
    """
    if is_not_relevant(value):
        return ""
    words = normalize_generic(value).replace(".", " ").split()
    if "bilateral" in words or "both" in words:
        return "bilateral"
    sides = {_SIDES[w] for w in words if w in _SIDES}
    if len(sides) == 2:
        return "bilateral"
    if sides:
        return sides.pop()
    for w in ("midline", "isthmus"):
        if w in words:
            return w
    return " ".join(words)


# --------------------------------------------------------------------------------------------- receptors
_RECEPTOR_PATTERNS = (
    ("her2", re.compile(r"\bher[\s-]*2\b(?:\s*/\s*neu)?|\bc-?erb\s*b-?2\b|\bneu\b|\berbb2\b")),
    ("er", re.compile(r"\bestrogen\s+receptors?\b|\boestrogen\s+receptors?\b|\ber\b|\bera\b")),
    ("pr", re.compile(r"\bprogesterone\s+receptors?\b|\bpr\b|\bpgr\b")),
)
_STATUS_PATTERNS = (
    ("equivocal", re.compile(r"\bequivocal\b|\bborderline\b|\bindeterminate\b|\b2\+")),
    ("negative", re.compile(r"\bnegative\b|\bneg\b|(?<![\w+])-(?!\w)|\b[01]\+")),
    ("positive", re.compile(r"\bpositive\b|\bpos\b|\+|\b3\+")),
)


def normalize_receptor(value: str) -> str:
    """Receptor name -> ``"er"``, ``"pr"`` or ``"her2"`` (``"estrogen receptor"``, ``"PgR"``, ``"HER2/neu"``,
    ``"c-erbB-2"``); other text falls back to :func:`normalize_generic`.

    Example:
        >>> normalize_receptor("Estrogen Receptor")
        'er'
    """
    if is_not_relevant(value):
        return ""
    text = value.lower()
    for name, pattern in _RECEPTOR_PATTERNS:
        if pattern.search(text):
            return name
    return normalize_generic(value)


def normalize_receptor_status(value: str) -> str:
    """Receptor status -> ``"<receptor> <status>"`` with status ``positive``, ``negative`` or ``equivocal``.

    ``"ER positive"``, ``"estrogen receptor positive"``, ``"ER+"`` and ``"Estrogen receptor: POSITIVE"`` give
    ``"er positive"``; ``"HER2/neu: negative"`` -> ``"her2 negative"``; ``"HER2 2+"`` -> ``"her2 equivocal"``;
    ``"pos"``/``"neg"``/``"+"``/``"-"`` are accepted.  Without a status only the receptor name is returned.

    Example:
        >>> normalize_receptor_status("PR-")
        'pr negative'
    """
    if is_not_relevant(value):
        return ""
    text = value.lower()
    receptor = normalize_receptor(value)
    rest = text
    for _, pattern in _RECEPTOR_PATTERNS:
        rest = pattern.sub(" ", rest)
    for status, pattern in _STATUS_PATTERNS:
        if pattern.search(rest):
            return f"{receptor} {status}".strip()
    return receptor


# --------------------------------------------------------------------------------------------- tumor size
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(cm|mm)?(?![a-z])")


def normalize_tumor_size(value: str) -> str:
    """Tumor size -> the greatest dimension in centimetres (the registry's unit), as a plain number.

    ``"2.5 cm"``, ``"25 mm"``, ``"2.5"`` -> ``"2.5"``; ``"2.0"`` -> ``"2"``; ``"1.3 x 1.3 x 1.2 cm"`` -> ``"1.3"``;
    a number without its own unit takes the last unit written (``"25 x 20 mm"``: both mm), else cm; ``mm`` is
    divided by 10 (``"2.5 cm x 20 mm"`` -> ``"2.5"``); values are rounded to 3 decimals and
    printed without trailing zeros.  Text without a number falls back to :func:`normalize_generic`.

    Example:
        >>> normalize_tumor_size("45 x 30 mm")
        '4.5'
    """
    if is_not_relevant(value):
        return ""
    text = (
        value.lower().replace("millimeters", "mm").replace("millimetres", "mm").replace("centimeters", "cm")
    )
    text = text.replace("centimetres", "cm")
    pairs = _SIZE_RE.findall(text)
    if not pairs:
        return normalize_generic(value)
    last_unit = next((u for _, u in reversed(pairs) if u), "cm")
    size = max(float(n) / (10.0 if (u or last_unit) == "mm" else 1.0) for n, u in pairs)
    return f"{round(size, 3):g}"


# --------------------------------------------------------------------------------------------- histology / site
def normalize_histology(value: str) -> str:
    """Histological type: :func:`normalize_generic` and the word ``nos`` dropped; word order is kept.

    ``"Infiltrating Ductal Carcinoma"`` -> ``"infiltrating ductal carcinoma"``; ``"Adenocarcinoma, NOS"`` ->
    ``"adenocarcinoma"``; ``"Carcinoma, ductal"`` -> ``"carcinoma ductal"`` (not reordered).

    Example:
        >>> normalize_histology("Squamous  cell carcinoma, NOS")
        'squamous cell carcinoma'
    """
    return " ".join(w for w in normalize_generic(value).split() if w != "nos")


def normalize_location(value: str) -> str:
    """Tumor location: the same rules as :func:`normalize_histology`.

    Example:
        >>> normalize_location("Right Upper Outer Quadrant")
        'right upper outer quadrant'
    """
    return normalize_histology(value)


#: Phenotype name -> normaliser.  ``"tnm"``, ``"pt"``, ``"pn"`` and ``"pm"`` compare single TNM categories;
#: ``"histology"`` and ``"site"`` are the registry field names of the histology and location phenotypes.
NORMALIZERS: dict[str, Callable[[str], str]] = {
    Phenotype.TUMOR_SIZE.value: normalize_tumor_size,
    Phenotype.HISTOLOGICAL_TYPE.value: normalize_histology,
    "histology": normalize_histology,
    Phenotype.RECEPTORS.value: normalize_receptor,
    Phenotype.RECEPTOR_STATUS.value: normalize_receptor_status,
    Phenotype.LATERALITY.value: normalize_laterality,
    Phenotype.STAGE.value: normalize_stage,
    "tnm": normalize_tnm,
    "pt": normalize_tnm,
    "pn": normalize_tnm,
    "pm": normalize_tnm,
    Phenotype.TUMOR_LOCATION.value: normalize_location,
    "site": normalize_location,
    Phenotype.GRADE.value: normalize_grade,
}

#: Phenotypes whose answer is a set: predicted and gold must match as whole sets (the stage answer is the
#: set of T, N, M items and the group, as in the CancerLLM paper; its parts are scored one by one in
#: :mod:`cancerllm.benchmark.fields`).
SET_PHENOTYPES: frozenset[str] = frozenset(
    {Phenotype.RECEPTORS.value, Phenotype.RECEPTOR_STATUS.value, Phenotype.STAGE.value})


def _key(phenotype: Phenotype | str) -> str:
    return (phenotype.value if isinstance(phenotype, Phenotype) else str(phenotype)).strip().lower()


def normalize(phenotype: Phenotype | str, value: str | None) -> str:
    """Normalise one answer item of ``phenotype`` (see :data:`NORMALIZERS`); ``""`` for None / "Not relevant".

    Unknown (custom) phenotype names use :func:`normalize_generic`.

    Example:
        >>> normalize("grade", "Nottingham grade III")
        'g3'
    """
    if value is None:
        return ""
    return NORMALIZERS.get(_key(phenotype), normalize_generic)(str(value))


def _norm_set(phenotype: str, values: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for v in values:
        if phenotype in ("tnm", "pt", "pn", "pm"):
            out.update(tnm_components(v) or [normalize(phenotype, v)])
        else:
            out.add(normalize(phenotype, v))
    out.discard("")
    return out


def answers_match(
    phenotype: Phenotype | str,
    predicted_items: Sequence[str] | str | None,
    gold_value: Sequence[str] | str | None,
) -> bool:
    """Whether the predicted answer items match the gold value after normalisation.

    * Set phenotypes (:data:`SET_PHENOTYPES`: receptors, receptor status): the normalised sets must be equal.
    * All others: True when any normalised predicted item equals any normalised gold item (extra predicted
      items are not penalised; score over-generation separately if it matters).  For ``"tnm"``/``"pt"``/
      ``"pn"``/``"pm"`` each item is split into its T/N/M components first (``"pT2 pN0"`` matches ``"N0"``).
    * An empty gold (None, ``[]`` or "Not relevant") matches only an empty prediction.

    Args:
        phenotype: a :class:`~cancerllm.schema.Phenotype`, its value, or ``"tnm"``/``"pt"``/``"pn"``/``"pm"``,
            ``"histology"``, ``"site"``, or a custom name (generic normalisation).
        predicted_items: the parsed model answer items (a single string counts as one item).
        gold_value: the gold value or items.

    Returns:
        True when the answers match.

    Example:
        >>> answers_match("stage", ["Stage 2B"], "Stage IIB")
        True
    """
    key = _key(phenotype)
    pred = [predicted_items] if isinstance(predicted_items, str) else list(predicted_items or [])
    gold = [gold_value] if isinstance(gold_value, str) else list(gold_value or [])
    p, g = _norm_set(key, pred), _norm_set(key, gold)
    if not g:
        return not p
    if key in SET_PHENOTYPES:
        return p == g
    return bool(p & g)
