"""Baselines around an extractor: the most frequent training value fills every answer it leaves empty.

:class:`MostFrequentFill` learns, from the registry gold of training reports, the most frequent value of each
value-bearing field per cancer type (and over all types, for a type or field it has not seen).
:meth:`MostFrequentFill.fill` then answers, in a :class:`~cancerllm.schema.PhenotypeResult`, every field the
extractor abstained on with that value; what the extractor found is kept.  :class:`FilledExtractor` wraps an
extractor (:class:`~cancerllm.benchmark.RuleBasedExtractor` or a model's) with a fill.

The fill is the floor a system has to beat once it answers everything: "rules + most frequent" shows how much
of a rules score is the rules' and how much the registry's skew (most breast cancers are ER positive).

Example:
    >>> from cancerllm.benchmark import RuleBasedExtractor
    >>> recs = [{"patient_id": f"P{i}", "cancer_type": "KIRC", "text": "",
    ...          "labels": {"laterality": "Left" if i < 2 else "Right", "grade": "G2", "pT": "T1a"}}
    ...         for i in range(3)]
    >>> fill = MostFrequentFill.from_records(recs)
    >>> r = fill.fill(RuleBasedExtractor().extract("Grade: G3. pT3a N0 MX"), "KIRC")
    >>> r.laterality, r.grade, r.stage
    (['Left'], ['G3'], ['pT3a', 'N0', 'MX'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data.convert import RECEPTOR_CANCER_TYPES
from ..data.io import TCGARecord
from ..errors import InputError
from ..prompts import format_answer
from ..schema import AnswerDetail, ItemDetail, Phenotype, PhenotypeResult
from ..tnm import parse_tnm, tnm_group
from .fields import predicted_stage, receptor_statuses, stage_i_iv
from .normalize import normalize
from .tasks import build_tasks

__all__ = ["FILL_MARK", "FieldLabel", "FilledExtractor", "MostFrequentFill", "field_labels"]

#: Appended to the raw text of an answer that the fill completed: ``"{G2} (most frequent)"``, or with the
#: filled items named when the extractor answered part of it: ``"{pT2, N0, Stage IIA} (most frequent: N0,
#: Stage IIA)"``.  :func:`~cancerllm.prompts.parse_answer` still reads the items.
FILL_MARK = "most frequent"

#: Single-valued phenotypes filled with one value.
_SINGLE = (
    Phenotype.TUMOR_SIZE.value,
    Phenotype.HISTOLOGICAL_TYPE.value,
    Phenotype.LATERALITY.value,
    Phenotype.TUMOR_LOCATION.value,
    Phenotype.GRADE.value,
)
_TNM_FIELDS = (("T", "pT"), ("N", "pN"), ("M", "pM"))
_RECEPTORS = (("er", "ER"), ("pr", "PR"), ("her2", "HER2"))
_ALL = "*"


@dataclass(frozen=True)
class FieldLabel:
    """The registry value of one field in one report of a task set, as the baselines learn it.

    ``name``: a phenotype with a single value (``"grade"``, ...), ``"T"``/``"N"``/``"M"``, ``"stage_group"``,
    ``"er"``/``"pr"``/``"her2"`` or ``"receptors"``; ``report``: the index of the report; ``category``: the
    main category (``"T2"``, ``"Stage II"``; the key itself for fields without one); ``key``: the normalised
    value (``"T2a"``, ``"Stage IIA"``, ``"positive"``, :func:`~cancerllm.benchmark.normalize` of a single
    value); ``value``: the value as the registry spells it (a list for ``receptors``)."""

    name: str
    report: int
    cancer_type: str
    category: str
    key: str
    value: Any


def field_labels(tasks: Any, receptor_types: Iterable[str] = RECEPTOR_CANCER_TYPES) -> Iterator[FieldLabel]:
    """Every value-bearing field's registry value in ``tasks`` (a :class:`~cancerllm.benchmark.BenchmarkTasks`),
    receptor fields only for the ``receptor_types`` cancer types; the one reading of the labels that the
    most-frequent fill and the text classifier learn from."""
    receptor_types = {c.upper() for c in receptor_types}
    for case in tasks.phenotype_cases:
        if case.gold is None:  # "Not relevant"
            continue
        ph, i, ctype = case.phenotype, case.report, case.cancer_type
        if ph in _SINGLE:
            key = normalize(ph, case.gold[0])
            yield FieldLabel(ph, i, ctype, key, key, case.gold[0])
        elif ph == Phenotype.STAGE.value:
            for letter, label in _TNM_FIELDS:
                items = [t for t in parse_tnm(case.labels.get(label) or "") if t.letter == letter]
                if items:
                    yield FieldLabel(letter, i, ctype, items[0].category, items[0].full, items[0].full)
            group = tnm_group(case.labels.get("stage"))
            if group:
                yield FieldLabel("stage_group", i, ctype, stage_i_iv(group) or group, group, group)
        elif ctype.upper() in receptor_types:
            if ph == Phenotype.RECEPTOR_STATUS.value:
                for short, label in _RECEPTORS:
                    status = case.labels.get(label)
                    if status:
                        word = normalize(ph, f"{short} {status}").split()[-1]
                        yield FieldLabel(short, i, ctype, word, word, word)
            elif ph == Phenotype.RECEPTORS.value:
                key = " ".join(case.gold)
                yield FieldLabel("receptors", i, ctype, key, key, list(case.gold))


def _most_frequent(values: Sequence[tuple[str, Any]]) -> Any:
    """The most frequent value by normalised key, in its most frequent spelling; ties go to the key seen
    first (the input order is the records' order, so the result is deterministic)."""
    keys = Counter(k for k, _ in values)
    best = max(keys, key=lambda k: (keys[k], -next(i for i, (kk, _) in enumerate(values) if kk == k)))
    spellings = Counter(repr(v) for k, v in values if k == best)
    top = spellings.most_common(1)[0][0]
    return next(v for k, v in values if k == best and repr(v) == top)


@dataclass
class MostFrequentFill:
    """Per cancer type, the most frequent training value of each value-bearing field.

    ``values[field][cancer_type]`` is the value, ``values[field]["*"]`` the one over all types (over the
    receptor cancer types for the receptor fields).  Fields: ``tumor_size``, ``histological_type``,
    ``laterality``, ``tumor_location``, ``grade`` (a string each, as the registry spells it), ``T``, ``N``,
    ``M`` (the main category, ``"T2"``, ``"N0"``, ``"M0"``), ``stage_group`` (``"Stage IIA"``), ``er``,
    ``pr``, ``her2`` (``"positive"``, ...) and ``receptors`` (the list of receptors with a status,
    ``["er", "pr", "her2"]``).  Build it with :meth:`from_records`; it holds only plain dicts (picklable).

    Attributes:
        values: field -> cancer type (upper case) or ``"*"`` -> value.
        receptor_cancer_types: the cancer types whose reports get receptor answers.
    """

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    receptor_cancer_types: frozenset[str] = RECEPTOR_CANCER_TYPES

    @classmethod
    def from_records(
        cls,
        records: Iterable[TCGARecord | Mapping[str, Any]],
        *,
        receptor_cancer_types: Iterable[str] = RECEPTOR_CANCER_TYPES,
        by_cancer_type: bool = True,
    ) -> MostFrequentFill:
        """Learn the most frequent values from training records (their registry labels, through
        :func:`~cancerllm.benchmark.build_tasks`); pass only the training side of a split.

        Args:
            records: :class:`~cancerllm.data.io.TCGARecord` objects or dicts of the shared TCGA format.
            receptor_cancer_types: cancer types where ER/PR/HER2 apply (default ``{"BRCA"}``).
            by_cancer_type: learn one value per cancer type (falling back to all types); False: one value
                over all types (receptor values still from the receptor types only).  Per type is the
                stronger bar, but it reads the registry's cancer type, which a text-only system is not given.
        """
        receptor_types = frozenset(c.upper() for c in receptor_cancer_types)
        tasks = build_tasks(list(records), receptor_cancer_types=receptor_types)
        seen: dict[str, dict[str, list[tuple[str, Any]]]] = {}

        def add(name: str, ctype: str, key: str, value: Any) -> None:
            per_type = seen.setdefault(name, {})
            if by_cancer_type:
                per_type.setdefault(ctype.upper(), []).append((key, value))
            per_type.setdefault(_ALL, []).append((key, value))

        for lab in field_labels(tasks, receptor_types):
            if lab.name in ("T", "N", "M"):  # the fill answers the main category
                add(lab.name, lab.cancer_type, lab.category, lab.category)
            else:
                add(lab.name, lab.cancer_type, lab.key, lab.value)
        values = {name: {ct: _most_frequent(v) for ct, v in per_type.items()} for name, per_type in seen.items()}
        return cls(values=values, receptor_cancer_types=receptor_types)

    def value(self, name: str, cancer_type: str) -> Any:
        """The most frequent value of field ``name`` for ``cancer_type`` (over all types when that type has
        none), or None when no training record had one.  Receptor fields are None outside the receptor
        cancer types."""
        if name in ("er", "pr", "her2", "receptors") and cancer_type.upper() not in self.receptor_cancer_types:
            return None
        per_type = self.values.get(name, {})
        return per_type.get(cancer_type.upper(), per_type.get(_ALL))

    def fill(self, result: PhenotypeResult, cancer_type: str) -> PhenotypeResult:
        """A copy of ``result`` in which every field it abstains on has the most frequent value.

        * tumor size, histological type, laterality, tumor location, grade: filled when empty;
        * stage: each missing component (T, N, M, stage group) filled on its own; the items found are kept;
        * receptor status: each receptor without a status gets the most frequent one; receptors mentioned:
          filled when empty; both only for the receptor cancer types (elsewhere they stay as they are,
          "Not relevant" when the extractor gave nothing).

        Nothing the extractor answered is changed or removed.  A filled answer's ``raw`` text ends with
        ``" (most frequent)"`` (:data:`FILL_MARK`); when ``result`` has :attr:`~PhenotypeResult.details`
        for that question, the filled items are added to them as items without evidence
        (``match="not_found"``, ``needs_review=True``).
        """
        out = result.model_copy(deep=True)
        for ph in _SINGLE:
            value = self.value(ph, cancer_type)
            if not out.get(ph) and value is not None:
                self._put(out, ph, [], [value])
        self._fill_stage(out, cancer_type)
        self._fill_receptors(out, cancer_type)
        return out

    # -------------------------------------------------------------------------------------------- parts
    def _fill_stage(self, out: PhenotypeResult, cancer_type: str) -> None:
        ph = Phenotype.STAGE.value
        items = list(out.get(ph) or [])
        have = predicted_stage(items)
        added_tnm = [v for letter, _ in _TNM_FIELDS
                     if have[letter] is None and (v := self.value(letter, cancer_type)) is not None]
        group = self.value("stage_group", cancer_type) if have["group"] is None else None
        if not added_tnm and group is None:
            return
        # filled T/N/M items go before the first group item, a filled group at the end
        first_group = next((i for i, it in enumerate(items) if predicted_stage([it])["group"] is not None
                            and all(predicted_stage([it])[x] is None for x in "TNM")), len(items))
        new = items[:first_group] + added_tnm + items[first_group:] + ([group] if group else [])
        self._put(out, ph, items, new)

    def _fill_receptors(self, out: PhenotypeResult, cancer_type: str) -> None:
        if cancer_type.upper() not in self.receptor_cancer_types:
            return
        ph = Phenotype.RECEPTOR_STATUS.value
        items = list(out.get(ph) or [])
        have = receptor_statuses(items)
        added = [f"{short} {v}" for short, _ in _RECEPTORS
                 if short not in have and (v := self.value(short, cancer_type)) is not None]
        if added:
            self._put(out, ph, items, items + added)
        mentioned = self.value("receptors", cancer_type)
        if not out.get(Phenotype.RECEPTORS.value) and mentioned:
            self._put(out, Phenotype.RECEPTORS.value, [], list(mentioned))

    @staticmethod
    def _put(out: PhenotypeResult, name: str, old: list[str], new: list[str]) -> None:
        """Set ``name`` to ``new`` (``old`` plus filled items), marking the filled items in raw and details."""
        filled = [v for v in new if v not in old]
        out.set(name, new)
        mark = f" ({FILL_MARK})" if not old else f" ({FILL_MARK}: {', '.join(filled)})"
        out.raw[name] = format_answer(new) + mark
        detail = out.details.get(name)
        if detail is not None:
            extra = [ItemDetail(value=v, raw=f"({FILL_MARK})", match="not_found", needs_review=True) for v in filled]
            out.details[name] = AnswerDetail(status="answered", items=[*detail.items, *extra],
                                             alternatives=detail.alternatives, confidence=detail.confidence,
                                             needs_review=True)


class FilledExtractor:
    """An extractor whose empty answers are completed by a :class:`MostFrequentFill`.

    Args:
        extractor: anything with ``extract_many(texts) -> list[PhenotypeResult]`` (the rules, a model's
            phenotype extractor).
        fill: the learned fill.

    Example:
        >>> from cancerllm.benchmark import RuleBasedExtractor
        >>> fill = MostFrequentFill(values={"grade": {"*": "G2"}})
        >>> FilledExtractor(RuleBasedExtractor(), fill).extract_many(["no grade here"], ["LIHC"])[0].grade
        ['G2']
    """

    def __init__(self, extractor: Any, fill: MostFrequentFill) -> None:
        self.extractor = extractor
        self.fill = fill

    @property
    def PHENOTYPES(self) -> tuple[str, ...]:  # noqa: N802 - the extractors' attribute name
        """The phenotypes answered: the extractor's and the filled ones."""
        own = tuple(getattr(self.extractor, "PHENOTYPES", ()))
        return own + tuple(p.value for p in Phenotype if p.value not in own)

    def extract(self, text: str, cancer_type: str, *, id: str | None = None) -> PhenotypeResult:
        """The extractor's result for ``text``, filled for ``cancer_type``."""
        result = self.extractor.extract(text, id=id) if hasattr(self.extractor, "extract") else (
            self.extractor.extract_many([text])[0])
        return self.fill.fill(result, cancer_type)

    def extract_many(self, texts: Sequence[str], cancer_types: Sequence[str], **kwargs: Any) -> list[PhenotypeResult]:
        """The extractor's results for ``texts`` (``kwargs`` passed on), each filled for its cancer type."""
        texts = list(texts)
        cancer_types = list(cancer_types)
        if len(texts) != len(cancer_types):
            raise InputError(f"{len(texts)} texts but {len(cancer_types)} cancer types; pass one type per text")
        results = self.extractor.extract_many(texts, **kwargs)
        return [self.fill.fill(r, ct) for r, ct in zip(results, cancer_types)]
