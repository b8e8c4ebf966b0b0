"""A supervised text-classifier baseline, and a hybrid in which it answers a model's field where it is more
likely right than the model.

:class:`TextClassifier` is the classical bar a fine-tuned LLM has to clear besides the rules: TF-IDF word
1-2-grams and character 3-5-grams of the report, and one linear SVM per field (scikit-learn's
``LinearSVC`` with its default ``C=1``, not tuned), learned from the registry labels of the *training* side
(about three minutes for the shared file's 1,494 training reports on two cores, most of it the calibration).  It answers the closed-vocabulary fields - histological type, tumour site,
laterality, grade, pT/pN/pM, the stage group, ER/PR/HER2 status and the receptors mentioned (on the reports
it judges to be breast), and the ICD-10-CM code - and abstains on tumour size.  Fields with a main category
(T/N/M, the stage group's I-IV, the code's 3-character category) are learned at that level, then the full
value within it.

Every answer carries a calibrated probability of being right: the margin of the SVM mapped through an
isotonic regression fitted on out-of-fold predictions (``folds``-fold cross-validation over the training
side, grouped by patient).  :func:`arbitrate` uses it against the model's own confidence (the probability of
its answer, :attr:`~cancerllm.schema.AnswerDetail.confidence`): the classifier's answer replaces the model's
for a field only where its calibrated probability is higher.  Both are separate systems in the benchmark
(``"classifier (tf-idf + linear SVM)"``, ``"<model> + classifier (hybrid)"``), never a silent change of
the model's answers.

Needs scikit-learn (``pip install "cancerllm[benchmark]"``).

Example:
    >>> from cancerllm.benchmark.classifier import TextClassifier
    >>> recs = [{"patient_id": f"P{i}", "cancer_type": "KIRC", "text": f"{side} kidney, grade {g}",
    ...          "labels": {"laterality": side, "grade": f"G{g}"}}
    ...         for i, (side, g) in enumerate([("Left", 1), ("Right", 2)] * 10)]
    >>> clf = TextClassifier.from_records(recs, folds=2)
    >>> result = clf.extract_many(["right kidney, grade 2"])[0]
    >>> result.laterality, result.grade
    (['Right'], ['G2'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._optional import require
from ..data.convert import RECEPTOR_CANCER_TYPES, diagnosis_text
from ..data.io import TCGARecord
from ..errors import InputError
from ..prompts import format_answer
from ..schema import Diagnosis, Phenotype, PhenotypeResult
from ..tnm import parse_tnm, tnm_group
from .baselines import field_labels
from .fields import predicted_stage, receptor_statuses, stage_i_iv
from .hybrid import merge_receptor_status, replace_answer
from .normalize import normalize
from .tasks import build_tasks

__all__ = ["CLASSIFIER_MARK", "FIELDS", "ClassifierHybrid", "FieldPrediction", "TextClassifier", "arbitrate",
           "arbitrate_diagnosis"]

#: Appended to the raw text of an answer the classifier gave: ``"{G2} (classifier p=0.91)"``.
CLASSIFIER_MARK = "classifier"

#: Single-valued phenotypes, one class per normalised registry value.
_SINGLE = (Phenotype.HISTOLOGICAL_TYPE.value, Phenotype.TUMOR_LOCATION.value, Phenotype.LATERALITY.value,
           Phenotype.GRADE.value)
_RECEPTORS = (("er", "ER"), ("pr", "PR"), ("her2", "HER2"))
#: The fields, in the order they are learned.
FIELDS: tuple[str, ...] = (*_SINGLE, "T", "N", "M", "stage_group", "er", "pr", "her2", "receptors", "breast",
                           "icd_10")
#: The fields learned from :func:`~cancerllm.benchmark.baselines.field_labels` (the others from the record).
_LEARNED = frozenset(FIELDS) - {"breast", "icd_10"}


@dataclass(frozen=True)
class FieldPrediction:
    """The classifier's answer for one field of one report: ``value`` (as the registry spells it; a list for
    the receptors mentioned, a bool for ``breast``), its main ``category`` (``"T2"``, ``"Stage II"``,
    ``"C50"``; the value itself for fields without one) and the calibrated ``probability`` that the category
    is right (None when the training side was too small to calibrate)."""

    value: Any
    category: str
    probability: float | None


@dataclass
class _FieldModel:
    """One field: a category classifier, a full-value classifier per category with more than one value, the
    spelling of each full value, and the calibration of the category margin."""

    category_clf: Any  # a fitted LinearSVC, or None with a single category
    categories: list[str]
    full_clf: dict[str, Any]  # category -> fitted LinearSVC over its full values (only categories with > 1)
    full_values: dict[str, list[str]]  # category -> its full values (keys), most frequent first
    spelling: dict[str, Any]  # full value key -> the value as returned
    calibration: Any = None  # IsotonicRegression over the top margin, or None


@dataclass
class _Labels:
    """Per field, the (record index, category, full key, value) of the training reports that have one."""

    rows: dict[str, list[tuple[int, str, str, Any]]] = field(default_factory=dict)

    def add(self, name: str, i: int, category: str, key: str, value: Any) -> None:
        self.rows.setdefault(name, []).append((i, category, key, value))


def _labels(tasks: Any, receptor_types: frozenset[str]) -> _Labels:
    out = _Labels()
    for i, rec in enumerate(tasks.records):
        breast = rec.cancer_type.upper() in receptor_types
        out.add("breast", i, str(breast), str(breast), breast)
        code = rec.label("icd_10")
        if code:
            code = str(code).strip().upper()
            out.add("icd_10", i, code.split(".")[0], code, code)
    for lab in field_labels(tasks, receptor_types):
        if lab.name in _LEARNED:
            out.add(lab.name, lab.report, lab.category, lab.key, lab.value)
    return out


def _svc() -> Any:
    return require("sklearn.svm", feature="the text-classifier baseline").LinearSVC(C=1.0)


def _scores(clf: Any, X: Any) -> Any:
    """Decision scores of shape (n, classes), also for a binary classifier."""
    import numpy as np

    s = clf.decision_function(X)
    return np.stack([-s, s], axis=1) if s.ndim == 1 else s


def _margin(scores: Any) -> Any:
    """The top score minus the runner-up's, per row (the SVM's confidence, before calibration)."""
    import numpy as np

    top2 = np.sort(scores, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _fit_field(X: Any, rows: Sequence[tuple[int, str, str, Any]]) -> _FieldModel:
    idx = [r[0] for r in rows]
    cats = [r[1] for r in rows]
    counts = Counter(cats)
    categories = sorted(counts)
    clf = _svc().fit(X[idx], cats) if len(categories) > 1 else None
    full_values: dict[str, list[str]] = {}
    full_clf: dict[str, Any] = {}
    spelling_counts: dict[str, Counter[str]] = {}
    originals: dict[tuple[str, str], Any] = {}
    for _, _cat, key, value in rows:
        spelling_counts.setdefault(key, Counter())[repr(value)] += 1
        originals[(key, repr(value))] = value
    spelling = {k: originals[(k, c.most_common(1)[0][0])] for k, c in spelling_counts.items()}
    for cat in categories:
        members = [(i, key) for i, c, key, _ in rows if c == cat]
        keys = Counter(k for _, k in members)
        full_values[cat] = [k for k, _ in keys.most_common()]
        if len(keys) > 1:
            full_clf[cat] = _svc().fit(X[[i for i, _ in members]], [k for _, k in members])
    return _FieldModel(clf, categories, full_clf, full_values, spelling)


def _predict_field(model: _FieldModel, X: Any) -> list[tuple[str, str, float]]:
    """(category, full key, top margin) per row."""
    n = X.shape[0]
    if model.category_clf is None:
        cats, margins = [model.categories[0]] * n, [float("inf")] * n
    else:
        s = _scores(model.category_clf, X)
        classes = list(model.category_clf.classes_)
        cats = [classes[j] for j in s.argmax(axis=1)]
        margins = [float(m) for m in _margin(s)]
    out = []
    for row, (cat, margin) in enumerate(zip(cats, margins)):
        sub = model.full_clf.get(cat)
        key = sub.predict(X[row])[0] if sub is not None else model.full_values[cat][0]
        out.append((cat, str(key), margin))
    return out


class TextClassifier:
    """TF-IDF n-grams and a linear SVM per field, learned from registry labels (see the module docstring).

    Build it with :meth:`from_records` from the training side of a split; it holds fitted scikit-learn
    objects (picklable).

    Attributes:
        fields: the fields learned (those with at least one labelled training report).
        n_records: training reports it was learned from.
        folds: cross-validation folds of the calibration (0: not calibrated).
    """

    def __init__(self, vectorizer: Any, models: dict[str, _FieldModel], *, n_records: int, folds: int,
                 receptor_cancer_types: frozenset[str] = RECEPTOR_CANCER_TYPES) -> None:
        self.vectorizer = vectorizer
        self.models = models
        self.n_records = n_records
        self.folds = folds
        self.receptor_cancer_types = receptor_cancer_types

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields learned, in :data:`FIELDS` order."""
        return tuple(f for f in FIELDS if f in self.models)

    @staticmethod
    def _vectorizer() -> Any:
        text = require("sklearn.feature_extraction.text", feature="the text-classifier baseline")
        pipeline = require("sklearn.pipeline", feature="the text-classifier baseline")
        return pipeline.make_union(
            text.TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=100_000),
            text.TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=3, sublinear_tf=True,
                                 max_features=100_000),
        )

    @classmethod
    def from_records(
        cls,
        records: Iterable[TCGARecord | Mapping[str, Any]],
        *,
        folds: int = 5,
        receptor_cancer_types: Iterable[str] = RECEPTOR_CANCER_TYPES,
        seed: int = 0,
    ) -> TextClassifier:
        """Learn every field from training records (their registry labels, through
        :func:`~cancerllm.benchmark.build_tasks`); pass only the training side of a split.

        Args:
            records: :class:`~cancerllm.data.io.TCGARecord` objects or dicts of the shared TCGA format.
            folds: folds of the cross-validation that calibrates the probabilities (grouped by patient);
                ``0`` skips it (probabilities are then None).  A field with fewer labelled reports than
                ``2 * folds`` is not calibrated.
            receptor_cancer_types: cancer types where ER/PR/HER2 apply (default ``{"BRCA"}``).
            seed: seed of the fold assignment.

        Raises:
            InputError: no records, or ``folds`` is 1 or negative.
        """
        if folds < 0 or folds == 1:
            raise InputError(f"folds must be 0 (no calibration) or at least 2, got {folds}")
        receptor_types = frozenset(c.upper() for c in receptor_cancer_types)
        tasks = build_tasks(list(records), receptor_cancer_types=receptor_types)
        if not tasks.records:
            raise InputError("the classifier needs at least one training record")
        labels = _labels(tasks, receptor_types)
        vectorizer = cls._vectorizer()
        # the vocabulary and IDF are learned from the training texts only (no labels: the folds share them)
        X = vectorizer.fit_transform([r.text for r in tasks.records])
        models = {name: _fit_field(X, labels.rows[name]) for name in FIELDS if name in labels.rows}
        if folds:
            groups = [r.patient_id for r in tasks.records]
            for name, model in models.items():
                model.calibration = _calibrate(X, labels.rows[name], groups, folds, seed)
        return cls(vectorizer, models, n_records=len(tasks.records), folds=folds,
                   receptor_cancer_types=receptor_types)

    # -------------------------------------------------------------------------------------------- predict
    def predict(self, texts: Sequence[str]) -> list[dict[str, FieldPrediction]]:
        """Per text, field -> :class:`FieldPrediction` (every field learned)."""
        texts = [t if isinstance(t, str) else "" for t in texts]
        if not texts:
            return []
        X = self.vectorizer.transform(texts)
        out: list[dict[str, FieldPrediction]] = [{} for _ in texts]
        for name, model in self.models.items():
            preds = _predict_field(model, X)
            probs = _probabilities(model, [m for _, _, m in preds])
            for row, ((cat, key, _), p) in enumerate(zip(preds, probs)):
                out[row][name] = FieldPrediction(model.spelling.get(key, key), cat, p)
        return out

    def to_result(self, pred: Mapping[str, FieldPrediction]) -> PhenotypeResult:
        """A :class:`~cancerllm.schema.PhenotypeResult` from one report's predictions: the receptor questions
        are answered only on a report judged breast ("Not relevant" elsewhere), tumour size never."""
        out = PhenotypeResult()
        for ph in _SINGLE:
            if ph in pred:
                _put(out, ph, [str(pred[ph].value)], [pred[ph]])
        stage: list[str] = []
        used: list[FieldPrediction] = []
        for name in ("T", "N", "M", "stage_group"):
            if name in pred:
                stage.append(str(pred[name].value))
                used.append(pred[name])
        if stage:
            _put(out, Phenotype.STAGE.value, stage, used)
        breast = pred.get("breast")
        if breast is not None and breast.value:
            status = [(f"{short.upper()} {pred[short].value}", pred[short]) for short, _ in _RECEPTORS
                      if short in pred]
            if status:
                _put(out, Phenotype.RECEPTOR_STATUS.value, [s for s, _ in status], [p for _, p in status])
            if "receptors" in pred:
                _put(out, Phenotype.RECEPTORS.value, list(pred["receptors"].value), [pred["receptors"]])
        return out

    def extract_many(self, texts: Sequence[str], **_: Any) -> list[PhenotypeResult]:
        """Phenotype results for ``texts`` (keyword arguments of the model extractors are accepted and
        ignored)."""
        return [self.to_result(p) for p in self.predict(texts)]

    def extract(self, text: str, **_: Any) -> PhenotypeResult:
        """One report."""
        return self.extract_many([text])[0]

    @staticmethod
    def diagnosis_for(pred: Mapping[str, FieldPrediction]) -> str:
        """``"<histology>, <site> (<ICD-10-CM code>)"``, the benchmark's diagnosis format
        (:func:`~cancerllm.data.convert.diagnosis_text`), from the predicted histological type, site and
        code."""
        hist, site = (pred.get(f) for f in (Phenotype.HISTOLOGICAL_TYPE.value, Phenotype.TUMOR_LOCATION.value))
        words = diagnosis_text(str(hist.value) if hist else None, str(site.value) if site else None) or ""
        code = pred.get("icd_10")
        return f"{words} ({code.value})".strip() if code is not None else words

    def diagnose_many(self, texts: Sequence[str]) -> list[str]:
        """Diagnosis texts for ``texts`` (:meth:`diagnosis_for`)."""
        return [self.diagnosis_for(p) for p in self.predict(texts)]


def _probabilities(model: _FieldModel, margins: Sequence[float]) -> list[float | None]:
    if model.category_clf is None:
        return [1.0] * len(margins)
    if model.calibration is None:
        return [None] * len(margins)
    return [float(p) for p in model.calibration.predict([min(m, 1e6) for m in margins])]


def _calibrate(X: Any, rows: Sequence[tuple[int, str, str, Any]], groups: Sequence[str], folds: int,
               seed: int) -> Any:
    """An isotonic map from the category margin to P(category right), fitted on out-of-fold predictions;
    None when there are too few labelled reports or a single category."""
    import numpy as np

    model_selection = require("sklearn.model_selection", feature="the text-classifier baseline")
    isotonic = require("sklearn.isotonic", feature="the text-classifier baseline")
    cats = np.array([r[1] for r in rows])
    idx = np.array([r[0] for r in rows])
    if len(set(cats.tolist())) < 2 or len(rows) < 2 * folds:
        return None
    g = np.array([groups[i] for i in idx])
    n_groups = len(set(g.tolist()))
    if n_groups < folds:
        return None
    splitter = model_selection.GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    margins, correct = [], []
    for train, test in splitter.split(idx, cats, g):
        if len(set(cats[train].tolist())) < 2:
            continue
        clf = _svc().fit(X[idx[train]], cats[train])
        s = _scores(clf, X[idx[test]])
        classes = np.array(clf.classes_)
        margins += _margin(s).tolist()
        correct += (classes[s.argmax(axis=1)] == cats[test]).astype(float).tolist()
    if len(set(correct)) < 2:  # always right (or always wrong) out of fold: a constant probability
        p = correct[0] if correct else None
        return None if p is None else _Constant(p)
    return isotonic.IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(margins, correct)


@dataclass(frozen=True)
class _Constant:
    p: float

    def predict(self, xs: Sequence[float]) -> list[float]:
        return [self.p] * len(xs)


def _mark(preds: Sequence[FieldPrediction]) -> str:
    ps = [p.probability for p in preds if p.probability is not None]
    return f"{CLASSIFIER_MARK} p={min(ps):.2f}" if ps else CLASSIFIER_MARK


def _put(out: PhenotypeResult, name: str, items: list[str], preds: Sequence[FieldPrediction]) -> None:
    out.set(name, items or None)
    out.raw[name] = f"{format_answer(items or None)} ({_mark(preds)})"
    out.details.pop(name, None)


# ------------------------------------------------------------------------------------------------ hybrid
def _model_confidence(result: PhenotypeResult, name: str, match: Any = None) -> float | None:
    """The model's confidence in its answer to ``name`` (``match``: of the first item it accepts)."""
    detail = result.details.get(name)
    if detail is None:
        return None
    if match is None:
        return detail.confidence
    for item in detail.items:
        if match(item.value):
            return item.confidence if item.confidence is not None else detail.confidence
    return None


def _beats(p: float | None, model_p: float | None, answered: bool, fallback: float) -> bool:
    """The classifier's calibrated probability beats the model's confidence (or ``fallback`` where the
    model's is unknown); an empty model answer is always replaced."""
    if p is None:
        return False
    if not answered:
        return True
    return p > (model_p if model_p is not None else fallback)


def arbitrate(model: PhenotypeResult, pred: Mapping[str, FieldPrediction], *, fallback: float = 0.9,
              fields: Iterable[str] = FIELDS) -> PhenotypeResult:
    """The model's result with the classifier's answer wherever its calibrated probability is higher than
    the model's confidence in that answer.

    * histological type, site, laterality, grade: the whole answer; ``T``/``N``/``M``/``stage_group``: that
      item of the stage answer (the model's confidence in that item); ``er``/``pr``/``her2``: that
      receptor's status, only where the model answered the receptor-status question ("Not relevant" kept);
    * where both agree (the same normalised value; for T/N/M and the stage group the same main category,
      whose finer value the model keeps), nothing changes;
    * the classifier's probability is that of its main category, the model's that of its whole item (a
      lower bound on the model's probability of the category);
    * where the model did not answer a field (empty, or no item of that letter), the classifier's answer
      is taken; where the model's confidence is unknown (no :attr:`~PhenotypeResult.details`), the
      classifier answers only above ``fallback``.

    ``raw`` of a changed answer ends with ``"(classifier: <items>)"`` and its ``details`` are dropped.
    """
    wanted = set(fields)
    out = model.model_copy(deep=True)
    for ph in _SINGLE:
        p = pred.get(ph)
        mine = model.get(ph)
        if mine and p is not None and normalize(ph, mine[0]) == normalize(ph, str(p.value)):
            continue  # they agree: the model's answer (and its evidence) stays
        if ph in wanted and p is not None and _beats(p.probability, _model_confidence(model, ph), bool(mine),
                                                     fallback):
            replace_answer(out, ph, [str(p.value)], [str(p.value)], CLASSIFIER_MARK)
    st = Phenotype.STAGE.value
    have = predicted_stage(model.get(st))
    parts, taken = [], []
    for letter in ("T", "N", "M"):
        p = pred.get(letter)
        mine = have[letter]
        conf = _model_confidence(model, st, lambda v, L=letter: any(t.letter == L for t in parse_tnm(v)))
        agree = mine is not None and p is not None and mine.category == p.category  # keep the finer value
        if letter in wanted and p is not None and not agree and _beats(p.probability, conf, mine is not None,
                                                                        fallback):
            parts.append(str(p.value))
            taken.append(str(p.value))
        elif mine is not None:
            parts.append(mine.canonical)
    p = pred.get("stage_group")
    conf = _model_confidence(model, st, lambda v: not parse_tnm(v) and tnm_group(v) is not None)
    agree = have["group"] is not None and p is not None and stage_i_iv(have["group"]) == p.category
    if "stage_group" in wanted and p is not None and not agree and _beats(p.probability, conf,
                                                                           have["group"] is not None, fallback):
        parts.append(str(p.value))
        taken.append(str(p.value))
    elif have["group"] is not None:
        parts.append(have["group"])
    if taken:
        replace_answer(out, st, parts, taken, CLASSIFIER_MARK)
    rs = Phenotype.RECEPTOR_STATUS.value
    if model.get(rs):
        mine_rec = receptor_statuses(model.get(rs))
        chosen = {}
        for short, _ in _RECEPTORS:
            p = pred.get(short)
            conf = _model_confidence(model, rs, lambda v, s=short: s in receptor_statuses([v]))
            agree = p is not None and mine_rec.get(short) == {p.value}
            if short in wanted and p is not None and not agree and _beats(
                    p.probability, conf, len(mine_rec.get(short, ())) == 1, fallback):
                chosen[short] = str(p.value)
        items, taken = merge_receptor_status(model.get(rs), chosen)
        if taken:
            replace_answer(out, rs, items, taken, CLASSIFIER_MARK)
    return out


def arbitrate_diagnosis(diagnosis: Diagnosis | str, pred: Mapping[str, FieldPrediction]) -> str:
    """The model's diagnosis text with the classifier's ICD-10-CM code where the model wrote none or one that
    contradicts its own words (:attr:`~cancerllm.schema.Diagnosis.code_consistent` False); otherwise
    unchanged.  A plain string counts as consistent when it has a code."""
    code = pred.get("icd_10")
    d = diagnosis if isinstance(diagnosis, Diagnosis) else Diagnosis(text=str(diagnosis or ""))
    if code is None or (d.icd_10 is not None and d.code_consistent is not False):
        return d.text
    return f"{d.description} ({code.value})".strip()


class ClassifierHybrid:
    """A model's phenotype extractor arbitrated with a :class:`TextClassifier` (:func:`arbitrate`).

    Args:
        extractor: the model's extractor (``model.phenotype_extractor()``), or anything with ``extract_many``;
            its results need :attr:`~cancerllm.schema.PhenotypeResult.details` (the default) for the model's
            confidence.
        classifier: the fitted classifier.
        fallback: the classifier's probability needed where the model's confidence is unknown.
    """

    def __init__(self, extractor: Any, classifier: TextClassifier, *, fallback: float = 0.9) -> None:
        self.extractor = extractor
        self.classifier = classifier
        self.fallback = fallback

    def extract_many(self, texts: Sequence[str], **kwargs: Any) -> list[PhenotypeResult]:
        """The model's results for ``texts`` (``kwargs`` passed on), arbitrated with the classifier's."""
        texts = list(texts)
        model = self.extractor.extract_many(texts, **kwargs)
        return [arbitrate(m, p, fallback=self.fallback) for m, p in zip(model, self.classifier.predict(texts))]

    def extract(self, text: str, **kwargs: Any) -> PhenotypeResult:
        """One report."""
        return self.extract_many([text], **kwargs)[0]
