"""Run the real-data benchmark: models (alone and with retrieval) and the rule-based baseline on the
benchmark tasks, with scores, bootstrap intervals, time, peak memory and misspelling robustness.

    >>> from cancerllm.benchmark import run_benchmark                                    # doctest: +SKIP
    >>> res = run_benchmark("tcga_reports_dev.jsonl", models=["cancerllm-smol"], retrievers=["random"],
    ...                     limit=50, out_dir="bench-out")                              # doctest: +SKIP
    >>> res["systems"]["cancerllm-smol"]["phenotype_accuracy"]["macro"]["value"]        # doctest: +SKIP

What is scored and how is in ``docs/benchmark.md``.  The returned dict is what ``results.json`` holds.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._hashing import file_sha256
from ..errors import InputError
from ..schema import Phenotype, PhenotypeResult
from ..tasks._common import TruncationWarning
from .normalize import answers_match, normalize
from .tasks import BenchmarkTasks, Split, build_tasks, select_records

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MISSPELLING_RATES", "System", "run_benchmark", "score_diagnoses", "score_phenotypes"]

#: The paper's misspelling rates, applied to the report texts at inference.
DEFAULT_MISSPELLING_RATES: tuple[float, ...] = (0.02, 0.04, 0.06, 0.08)
#: Diagnosis answers are short (histology and site); the paper's 500 tokens only cost time here.
DIAGNOSIS_MAX_NEW_TOKENS = 128


@dataclass
class System:
    """One row of the tables: a model (name, path or loaded :class:`~cancerllm.CancerLLM`), optionally with a
    retriever and ``k`` retrieved examples, or the rule-based baseline (``kind="rules"``; ``"rules+fill"`` /
    ``"rules+fill-type"`` with the most frequent training value where the rules abstain), or the text
    classifier (``kind="classifier"``, :class:`~cancerllm.benchmark.classifier.TextClassifier`)."""

    name: str
    kind: str = "model"
    model: Any = None
    retriever: str | None = None
    k: int = 0


# ------------------------------------------------------------------------------------------ measuring
def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil  # type: ignore[import-not-found]

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - memory figures are optional
        return None


class PeakMemory:
    """Peak resident memory of this process while the block runs (sampled every 10 ms), and the peak
    CUDA memory allocated by torch when a GPU is in use."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak_rss: int | None = None
        self.peak_cuda: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = _rss_bytes()
            if rss is not None:
                self.peak_rss = max(self.peak_rss or 0, rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        import sys

        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        import sys

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        rss = _rss_bytes()
        if rss is not None:
            self.peak_rss = max(self.peak_rss or 0, rss)
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            self.peak_cuda = int(torch.cuda.max_memory_allocated())


def _mb(n: int | None) -> float | None:
    return round(n / 2**20, 1) if n is not None else None


# ------------------------------------------------------------------------------------------ scoring
def _accuracy(flags: Sequence[bool], *, ci: bool, seed: int) -> dict[str, Any]:
    from ..metrics import bootstrap_ci

    n = len(flags)
    if n == 0:
        return {"value": None, "ci": None, "n": 0}
    value = sum(flags) / n
    interval = [round(x, 4) for x in bootstrap_ci([float(f) for f in flags], seed=seed)] if ci else None
    return {"value": round(value, 4), "ci": interval, "n": n}


def score_phenotypes(tasks: BenchmarkTasks, predictions: Sequence[PhenotypeResult], *, ci: bool = True,
                     seed: int = 0) -> dict[str, Any]:
    """Score phenotype predictions (one :class:`~cancerllm.schema.PhenotypeResult` per report).

    Returns ``{"accuracy": {"macro", "value_bearing", "not_relevant", "overall", "per_phenotype"}, "fields":
    {...}, "evaluation": EvaluationResult dump, "cases": [per-case records], "checking": {...}}``.  The headline
    is ``macro``: the mean over the value-bearing fields of :mod:`cancerllm.benchmark.fields` (stage split into
    pT/pN/pM/group, receptor status into ER/PR/HER2).  ``value_bearing`` is the question-level match accuracy
    (:func:`~cancerllm.benchmark.answers_match`) over questions with a registry value, ``not_relevant`` over
    the receptor questions outside breast, ``overall`` over both (kept for comparison with 0.1 reports; it is
    inflated by the Not-relevant questions).  ``per_phenotype`` and the EM/BLEU-2/ROUGE-L evaluation cover the
    value-bearing questions only.
    """
    from ..metrics import evaluate

    if len(predictions) != len(tasks.records):
        raise InputError(f"got {len(predictions)} predictions for {len(tasks.records)} reports")
    if not tasks.phenotype_cases:
        empty = _accuracy([], ci=False, seed=seed)
        return {"accuracy": {"macro": {"value": None, "ci": None, "fields": []}, "value_bearing": empty,
                             "not_relevant": empty, "overall": empty, "per_phenotype": {}},
                "fields": {"fields": {}, "macro": {"value": None, "ci": None, "fields": []}, "not_relevant": None},
                "evaluation": None, "cases": [], "checking": None}
    names, preds, golds, flags, rows = [], [], [], [], []
    for c in tasks.phenotype_cases:
        pred = predictions[c.report].get(c.phenotype)
        ok = answers_match(c.phenotype, pred, c.gold)
        norm_pred = [v for v in (normalize(c.phenotype, x) for x in pred or []) if v]
        norm_gold = [v for v in (normalize(c.phenotype, x) for x in c.gold or []) if v]
        names.append(c.phenotype)
        preds.append(norm_pred or None)
        golds.append(norm_gold or None)
        flags.append(ok)
        rows.append({"patient_id": c.patient_id, "phenotype": c.phenotype, "gold": c.gold, "prediction": pred,
                     "match": ok})
    # value-bearing questions and "Not relevant" ones apart: the latter are right for any system that
    # answers nothing, and would inflate every average they entered
    vb = [i for i, c in enumerate(tasks.phenotype_cases) if c.gold is not None]
    result = evaluate(predictions=[preds[i] for i in vb], references=[golds[i] for i in vb],
                      phenotypes=[names[i] for i in vb], ci=ci, seed=seed) if vb else None
    per = {ph: _accuracy([flags[i] for i in vb if names[i] == ph], ci=ci, seed=seed)
           for ph in tasks.phenotypes if any(names[i] == ph for i in vb)}
    from .checking import score_checking
    from .fields import score_fields

    fields = score_fields(tasks.phenotype_cases, [r["prediction"] for r in rows], ci=ci, seed=seed)
    not_relevant = [f for f, c in zip(flags, tasks.phenotype_cases) if c.gold is None]
    return {"accuracy": {"macro": fields["macro"],
                         "value_bearing": _accuracy([flags[i] for i in vb], ci=ci, seed=seed),
                         "not_relevant": _accuracy(not_relevant, ci=ci, seed=seed),
                         "overall": _accuracy(flags, ci=ci, seed=seed), "per_phenotype": per},
            "fields": fields, "evaluation": result.model_dump(mode="json") if result else None, "cases": rows,
            "checking": score_checking(tasks, predictions, flags)}


def score_diagnoses(tasks: BenchmarkTasks, texts: Sequence[str | None], *, mapper: Any = None, ci: bool = True,
                    seed: int = 0) -> dict[str, Any]:
    """Score generated diagnosis texts (one per report) against ``"<histology>, <site>"`` (EM/BLEU-2/ROUGE-L)
    and, mapped to ICD-10-CM with ``mapper`` (:meth:`IcdMapper.default` when None), against ``icd_10`` at the
    full code and the 3-character category."""
    from ..metrics import evaluate
    from ..schema import Diagnosis
    from .icd import IcdMapper, icd_match

    if len(texts) != len(tasks.records):
        raise InputError(f"got {len(texts)} diagnoses for {len(tasks.records)} reports")
    mapper = mapper or IcdMapper.default()
    parsed = [Diagnosis(text=t or "") for t in texts]
    words = [d.description or None for d in parsed]  # the text without a generated code
    generated = [d.icd_10 for d in parsed]
    text_cases = [c for c in tasks.diagnosis_cases if c.text]
    evaluation = None
    if text_cases:
        evaluation = evaluate(predictions=[words[c.report] for c in text_cases],
                              references=[c.text for c in text_cases], task="diagnosis", ci=ci,
                              seed=seed).model_dump(mode="json")
    icd_cases = [c for c in tasks.diagnosis_cases if c.icd_10]
    mapped = [mapper.map(t) for t in words]  # one mapping per report
    checked = [mapper.consistent(w, g) if g else None for w, g in zip(words, generated)]
    rows = [{"patient_id": c.patient_id, "gold": c.text, "prediction": texts[c.report], "icd_10": c.icd_10,
             "predicted_code": mapped[c.report], "generated_code": generated[c.report],
             "code_consistent": checked[c.report]}
            for c in tasks.diagnosis_cases]

    def levels(codes: Sequence[str | None]) -> dict[str, Any]:
        return {lvl: _accuracy([icd_match(codes[c.report], c.icd_10, lvl) for c in icd_cases], ci=ci, seed=seed)
                for lvl in ("full", "category")}

    out = {"evaluation": evaluation, "icd": levels(mapped), "cases": rows}
    if any(generated):  # a model that writes its own code: score that code directly
        out["icd_generated"] = levels(generated)
        # ... and split by the check of the code against the model's own words (Diagnosis.code_consistent)
        by_check: dict[str, Any] = {}
        for label, want in (("consistent", True), ("inconsistent", False), ("unchecked", None)):
            part = [c for c in icd_cases if checked[c.report] is want]
            by_check[label] = {**_accuracy([icd_match(generated[c.report], c.icd_10, "category") for c in part],
                                           ci=ci, seed=seed),
                               "share": round(len(part) / len(icd_cases), 4) if icd_cases else None}
        out["icd_generated_by_check"] = by_check
    return out


# ------------------------------------------------------------------------------------------ running
#: The name of the text-classifier baseline in the tables.
CLASSIFIER_NAME = "classifier (tf-idf + linear SVM)"


def _systems(models: Sequence[Any], retrievers: Sequence[str], k: int, rules: bool,
             classifier: bool = False) -> list[System]:
    out: list[System] = []
    seen: set[str] = set()
    for i, m in enumerate(models):
        base = m if isinstance(m, str) else getattr(m, "display_name", None) or f"model-{i + 1}"
        name = base if base not in seen else f"{base} ({i + 1})"
        seen.add(name)
        out.append(System(name=name, model=m))
        for r in retrievers:
            out.append(System(name=f"{name} + {r} (k={k})", model=m, retriever=r, k=k))
    if rules:
        out.append(System(name="rules (regex)", kind="rules"))
        out.append(System(name="rules + most frequent", kind="rules+fill"))
        out.append(System(name="rules + most frequent per cancer type", kind="rules+fill-type"))
    if classifier:
        out.append(System(name=CLASSIFIER_NAME, kind="classifier"))
    return out


def _load(model: Any) -> Any:
    from ..model import CancerLLM

    if isinstance(model, CancerLLM):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise InputError(f"models must be names, paths or CancerLLM objects, got {type(model).__name__}")
    return CancerLLM.from_pretrained(os.fspath(model))


def _corpus(records: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    from ..data import tcga_to_diagnosis_examples, tcga_to_phenotype_examples

    return tcga_to_phenotype_examples(records), tcga_to_diagnosis_examples(records)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, PeakMemory]:
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
    return out, seconds, mem


def _adapters(model: Any) -> dict[str, dict[str, Any]]:
    """The adapter each task ran with: its folder's name (never the machine's path) and weights hash; None
    without an adapter folder."""
    out: dict[str, dict[str, Any]] = {}
    for task in ("phenotype", "diagnosis"):
        folder = model.adapter_path_for(task) if hasattr(model, "adapter_path_for") else None
        sha = model.adapter_sha256_for(task) if hasattr(model, "adapter_sha256_for") else None
        out[task] = {"adapter": folder.name if folder is not None else None, "sha256": sha}
    return out


def _device(model: Any) -> str:
    try:
        return str(next(model.model.parameters()).device)
    except Exception:  # noqa: BLE001
        return "cpu"


def _training_side(all_records: Sequence[Any], records: Sequence[Any], split: str) -> list[Any]:
    """The reports learned from (the fills, the staging table): the training side of the split; with
    ``split="train"``/``"all"``, the reports not scored."""
    if split == "validation":
        return select_records(all_records, split="train")
    scored = {x.patient_id for x in records}
    return [r for r in select_records(all_records, split="all") if r.patient_id not in scored]


def run_benchmark(
    data: str | os.PathLike[str] | Sequence[Any],
    *,
    models: Sequence[Any] = ("cancerllm-smol",),
    retrievers: Sequence[str] = (),
    k: int = 2,
    rules: bool = True,
    staging: bool = True,
    classifier: bool = True,
    split: Split = "validation",
    limit: int | None = None,
    phenotypes: Iterable[str] | None = None,
    diagnosis: bool = True,
    misspelling_rates: Sequence[float] = DEFAULT_MISSPELLING_RATES,
    ci: bool = True,
    seed: int = 0,
    batch_size: int = 32,
    diagnosis_max_new_tokens: int = DIAGNOSIS_MAX_NEW_TOKENS,
    out_dir: str | os.PathLike[str] | None = None,
    command: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Benchmark models and baselines on a file in the shared TCGA format.

    Args:
        data: the JSONL file (or TCGA records).
        models: model names/paths (``"cancerllm-smol"``, a saved CancerLLM or adapter directory, a hub id) or
            loaded :class:`~cancerllm.CancerLLM` objects; each is a system of its own.
        retrievers: retriever names; each model is also run with each retriever (``k`` examples per prompt,
            retrieved from the *training* part of the split, never from the reports being scored).
        rules: add the rule-based baseline (:class:`~cancerllm.benchmark.RuleBasedExtractor`) and the rules
            with every abstention filled by the most frequent training value
            (:class:`~cancerllm.benchmark.baselines.MostFrequentFill`), over all types and per cancer type
            (the fill is learned from the training side; with ``split="train"``/``"all"``, from the reports
            not scored); and each model without retrieval as a hybrid with the rules
            (:mod:`cancerllm.benchmark.hybrid`: the rules answer the fields where they are near-certain).
        classifier: add the supervised text classifier (:class:`~cancerllm.benchmark.classifier.TextClassifier`:
            TF-IDF n-grams and a linear SVM per field, learned from the training side like the fills, with
            its diagnosis ``"<histology>, <site> (<code>)"``), and each model without retrieval arbitrated
            with it (``"<model> + classifier (hybrid)"``: the classifier's answer where its calibrated
            probability beats the model's confidence, and its ICD-10 code where the model's contradicts the
            model's own words; :mod:`cancerllm.benchmark.classifier`), also with the rules on top when
            ``rules`` (``"<model> + rules + classifier (hybrid)"``).  Needs scikit-learn; skipped with a
            warning (and ``meta["classifier"]`` saying so) when it is not installed.
        staging: add each model without retrieval (and its fullest hybrid: with the rules and the classifier,
            or the rules) with the stage group derived from its own
            T, N, M answers (:mod:`cancerllm.benchmark.staging`, the table learned from the same reports as
            the fills), each a system of its own (``"<model> + staging table"``).
        split: ``"validation"`` (default; the part CancerLLM-Smol never saw), ``"train"`` or ``"all"``.
        limit: score only this many reports, a deterministic subset (:func:`select_records`).
        phenotypes: restrict the phenotype questions (all eight by default).
        diagnosis: also generate diagnoses (and map them to ICD-10).
        misspelling_rates: re-run phenotype extraction of each model (without retrieval) on report texts
            with this share of words misspelled (the paper's 2-8%); ``()`` to skip.
        ci: bootstrap 95% intervals.
        seed: seed of the bootstrap and of the misspellings.
        batch_size: sequences decoded together.
        diagnosis_max_new_tokens: generation budget of a diagnosis.
        out_dir: write ``results.json``, ``report.md``, tables, plots and predictions there.
        command: the command line to record in the report.
        progress: progress bars.

    Returns:
        The results (``meta``, ``coverage``, ``systems``, ``robustness``), as written to ``results.json``.
    """
    from ..data import read_tcga
    from ..robustness import misspell
    from .rules import RuleBasedExtractor

    if k < 1 and retrievers:
        raise InputError(f"k must be at least 1 with retrievers, got {k}")
    for rate in misspelling_rates:
        if not 0 < float(rate) <= 1:
            raise InputError(f"misspelling rates must be in (0, 1], got {rate}")
    meta: dict[str, Any] = {}
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        all_records = read_tcga(path)
        meta.update(data=str(path), data_sha256=file_sha256(path)[:16])
    else:
        all_records = list(data)
        meta.update(data="(records)", data_sha256=None)
    records = select_records(all_records, split=split, limit=limit)
    tasks = build_tasks(records, phenotypes=phenotypes)
    corpus_records: list[Any] = []
    if retrievers:
        if split == "validation":
            corpus_records = select_records(all_records, split="train")
        else:
            corpus_records = records  # the input itself is never retrieved
    # one corpus (phenotype and diagnosis examples of the same reports) and one retriever object per name,
    # so the corpus reports are embedded once per retriever, not once per system and task
    corpus = [ex for part in _corpus(corpus_records) for ex in part] if retrievers else []
    retriever_objs: dict[str, Any] = {}

    from .. import __version__

    meta.update(
        split=split, limit=limit, n_reports=len(records), n_phenotype_cases=len(tasks.phenotype_cases),
        n_retrieval_corpus_reports=len(corpus_records), phenotypes=tasks.phenotypes, k=k if retrievers else 0,
        diagnosis=diagnosis, diagnosis_max_new_tokens=diagnosis_max_new_tokens, batch_size=batch_size,
        misspelling_rates=list(misspelling_rates), seed=seed, ci=ci, cancerllm_version=__version__,
        python=platform.python_version(), machine=f"{platform.machine()}, {os.cpu_count()} CPU threads",
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), command=command,
        patient_ids=[r.patient_id for r in records],
    )
    texts = tasks.texts
    if classifier:
        from .._optional import is_available

        if not is_available("sklearn"):
            warnings.warn('the text-classifier baseline needs scikit-learn (pip install "cancerllm[benchmark]");'
                          " skipped", RuntimeWarning, stacklevel=2)
            meta["classifier"] = "skipped: scikit-learn is not installed"
            classifier = False
    systems = _systems(list(models), list(retrievers), k, rules, classifier)
    results: dict[str, Any] = {"meta": meta, "coverage": tasks.coverage(), "systems": {},
                               "robustness": {"misspelling": {}}}
    from .icd import IcdMapper

    mapper = IcdMapper.default()
    loaded: dict[int, tuple[Any, float]] = {}
    fill_records: list[Any] | None = None
    rules_preds: list[PhenotypeResult] | None = None
    rules_s = 0.0
    grouper: Any = None
    clf_obj: Any = None
    clf_preds: list[Any] | None = None
    clf_s = 0.0
    clf_rss: int | None = None

    def fitted_classifier() -> tuple[Any, list[Any], float]:
        """The classifier, learned from the training side once, and its predictions for ``texts``."""
        nonlocal clf_obj, clf_preds, clf_s, clf_rss, fill_records
        if clf_obj is None:
            from .classifier import TextClassifier

            if fill_records is None:
                fill_records = _training_side(all_records, records, split)
            clf_obj, fit_s, fit_mem = _timed(lambda: TextClassifier.from_records(fill_records, seed=seed))
            clf_preds, clf_s, mem = _timed(lambda: clf_obj.predict(texts))
            clf_rss = max(m.peak_rss or 0 for m in (fit_mem, mem)) or None
            meta.update(classifier_fit_s=round(fit_s, 3), classifier_reports=clf_obj.n_records)
        return clf_obj, clf_preds, clf_s

    for sys_ in systems:
        logger.info("benchmark: %s", sys_.name)
        entry: dict[str, Any] = {"kind": sys_.kind, "retriever": sys_.retriever, "k": sys_.k,
                                 "model": sys_.model if isinstance(sys_.model, str) else None}
        timing: dict[str, Any] = {}
        if sys_.kind.startswith("rules"):
            extractor = RuleBasedExtractor()
            if sys_.kind != "rules":  # the fill is learned from the training side, never the scored reports
                from .baselines import FilledExtractor, MostFrequentFill

                if fill_records is None:
                    fill_records = _training_side(all_records, records, split)
                fill = MostFrequentFill.from_records(fill_records, by_cancer_type=sys_.kind == "rules+fill-type")
                filled = FilledExtractor(extractor, fill)
                types = [r.cancer_type for r in records]
                preds, secs, mem = _timed(lambda ex=filled, ct=types: ex.extract_many(texts, ct))
                entry["fill_reports"] = len(fill_records)
            else:
                preds, secs, mem = _timed(lambda ex=extractor: ex.extract_many(texts))
            timing.update(phenotype_s=round(secs, 3), reports_per_s=round(len(texts) / max(secs, 1e-9), 3),
                          device="cpu", peak_rss_mb=_mb(mem.peak_rss))
            if sys_.kind == "rules":
                entry["not_extracted"] = [p for p in tasks.phenotypes if p not in RuleBasedExtractor.PHENOTYPES]
            diag_texts = None
        elif sys_.kind == "classifier":
            clf_fit, cpreds, secs = fitted_classifier()
            preds = [clf_fit.to_result(p) for p in cpreds]
            timing.update(phenotype_s=round(secs, 3), reports_per_s=round(len(texts) / max(secs, 1e-9), 3),
                          device="cpu", fit_s=meta.get("classifier_fit_s"), peak_rss_mb=_mb(clf_rss))
            entry.update(fit_reports=clf_fit.n_records, not_extracted=[Phenotype.TUMOR_SIZE.value])
            diag_texts = [clf_fit.diagnosis_for(p) for p in cpreds] if diagnosis else None
        else:
            key = id(sys_.model)
            if key not in loaded:
                m, load_s, _ = _timed(lambda m=sys_.model: _load(m))
                loaded[key] = (m, load_s)
            model, load_s = loaded[key]
            timing.update(load_s=round(load_s, 3), device=_device(model))
            entry["adapters"] = _adapters(model)
            kw: dict[str, Any] = {}
            if sys_.retriever:
                if sys_.retriever not in retriever_objs:
                    from ..retrieval import get_retriever

                    retriever_objs[sys_.retriever] = get_retriever(sys_.retriever)
                kw = {"retriever": retriever_objs[sys_.retriever], "k": sys_.k, "corpus": corpus}
            extractor = model.phenotype_extractor(tasks.phenotypes, batch_size=batch_size, progress=progress, **kw)
            preds, secs, mem = _timed(lambda ex=extractor: ex.extract_many(texts, progress=progress))
            n_prompts = len(texts) * len(tasks.phenotypes)
            timing.update(phenotype_s=round(secs, 3), reports_per_s=round(len(texts) / secs, 3),
                          prompts_per_s=round(n_prompts / secs, 3), peak_rss_mb=_mb(mem.peak_rss),
                          peak_cuda_mb=_mb(mem.peak_cuda))
            diag_texts = None
            diag_out: list[Any] | None = None
            if diagnosis:
                gen = model.diagnosis_generator(max_new_tokens=diagnosis_max_new_tokens, batch_size=batch_size,
                                                progress=progress, **kw)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", TruncationWarning)
                    out, dsecs, dmem = _timed(lambda g=gen: g.generate_many(texts, progress=progress))
                for w in caught:  # one count instead of a warning per long report; others pass on
                    if not issubclass(w.category, TruncationWarning):
                        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                entry["diagnosis_inputs_truncated"] = sum(issubclass(w.category, TruncationWarning) for w in caught)
                diag_out = list(out)
                diag_texts = [d.text for d in out]
                timing.update(diagnosis_s=round(dsecs, 3), diagnosis_reports_per_s=round(len(texts) / dsecs, 3),
                              diagnosis_peak_rss_mb=_mb(dmem.peak_rss), diagnosis_peak_cuda_mb=_mb(dmem.peak_cuda))
        ph = score_phenotypes(tasks, preds, ci=ci, seed=seed)
        entry.update(phenotype=ph["evaluation"], phenotype_accuracy=ph["accuracy"], fields=ph["fields"],
                     phenotype_cases=ph["cases"], checking=ph["checking"], timing=timing)
        if diag_texts is not None:
            dg = score_diagnoses(tasks, diag_texts, mapper=mapper, ci=ci, seed=seed)
            entry.update(diagnosis=dg["evaluation"], icd=dg["icd"], diagnosis_cases=dg["cases"])
            if "icd_generated" in dg:
                entry["icd_generated"] = dg["icd_generated"]
                entry["icd_generated_by_check"] = dg["icd_generated_by_check"]
        results["systems"][sys_.name] = entry
        if (rules or staging or classifier) and sys_.kind == "model" and not sys_.retriever:
            # systems of their own around the model's answers: the hybrids (the rules answer the fields where
            # they are near-certain; the classifier where it is likelier right than the model) and the stage
            # group derived from T, N, M (learned from the training side)
            derived: list[tuple[str, str, list[PhenotypeResult], float, dict[str, Any]]] = []
            derived_diag: dict[str, list[str]] = {}
            if rules:
                from .hybrid import RULE_FIELDS, combine

                if rules_preds is None:
                    rules_preds, rules_s, _ = _timed(lambda: RuleBasedExtractor().extract_many(texts))
                hyb = [combine(m, r) for m, r in zip(preds, rules_preds)]
                derived.append((f"{sys_.name} + rules (hybrid)", "hybrid", hyb, rules_s,
                                {"rule_fields": list(RULE_FIELDS)}))
            if classifier:
                from .classifier import arbitrate, arbitrate_diagnosis

                _, cpreds, c_s = fitted_classifier()
                arb, arb_s, _ = _timed(lambda mp=preds, cp=cpreds: [arbitrate(m, p) for m, p in zip(mp, cp)])
                name = f"{sys_.name} + classifier (hybrid)"
                derived.append((name, "classifier-hybrid", arb, c_s + arb_s, {}))
                if diag_out is not None:
                    derived_diag[name] = [arbitrate_diagnosis(d, p) for d, p in zip(diag_out, cpreds)]
                if rules:
                    both = [combine(a, r) for a, r in zip(arb, rules_preds or [])]
                    name2 = f"{sys_.name} + rules + classifier (hybrid)"
                    derived.append((name2, "rules-classifier-hybrid", both, c_s + arb_s + rules_s,
                                    {"rule_fields": list(RULE_FIELDS)}))
                    if name in derived_diag:
                        derived_diag[name2] = derived_diag[name]
            if staging:
                from .staging import StageGrouper

                if grouper is None:
                    if fill_records is None:
                        fill_records = _training_side(all_records, records, split)
                    grouper = StageGrouper.from_records(fill_records)
                # the model alone and its fullest hybrid (the last one: rules + classifier, or rules)
                for name, kind, base, extra_s, info in [(sys_.name, "model", preds, 0.0, {}), *derived[-1:]]:
                    staged, st_s, _ = _timed(lambda b=base, g=grouper: [g.apply(p, text=t) for p, t in zip(b, texts)])
                    derived.append((f"{name} + staging table", f"{kind}+staging", staged, extra_s + st_s,
                                    {**info, "staging_reports": grouper.n_records}))
            for name, kind, dpreds, extra_s, info in derived:
                hs = score_phenotypes(tasks, dpreds, ci=ci, seed=seed)
                results["systems"][name] = {
                    "kind": kind, "retriever": None, "k": 0, "model": entry["model"], **info,
                    "phenotype": hs["evaluation"], "phenotype_accuracy": hs["accuracy"], "fields": hs["fields"],
                    "phenotype_cases": hs["cases"], "checking": None,
                    "timing": {"phenotype_s": round(timing["phenotype_s"] + extra_s, 3),
                               "device": timing.get("device"), "peak_rss_mb": timing.get("peak_rss_mb")},
                }
                base_name = name[: -len(" + staging table")] if name.endswith(" + staging table") else name
                if base_name in derived_diag:
                    dg = score_diagnoses(tasks, derived_diag[base_name], mapper=mapper, ci=ci, seed=seed)
                    results["systems"][name].update(diagnosis=dg["evaluation"], icd=dg["icd"],
                                                    diagnosis_cases=dg["cases"])
                    if "icd_generated" in dg:
                        results["systems"][name]["icd_generated"] = dg["icd_generated"]
                        results["systems"][name]["icd_generated_by_check"] = dg["icd_generated_by_check"]

        if sys_.kind == "model" and not sys_.retriever and misspelling_rates:
            curve = []
            for rate in misspelling_rates:
                noisy, changes = misspell(texts, rate=float(rate), seed=seed)
                npreds = extractor.extract_many(noisy, progress=progress)
                sc = score_phenotypes(tasks, npreds, ci=ci, seed=seed)
                ev = sc["evaluation"]
                curve.append({"rate": float(rate), "n_misspelled_words": len(changes),
                              "accuracy": sc["accuracy"]["macro"],
                              "average_f1": ev["average_f1"] if ev else None,
                              "average_f1_ci": ev["average_f1_ci"] if ev else None})
            results["robustness"]["misspelling"][sys_.name] = curve

    # the gold text through the ICD mapper: the ceiling of the ICD-coded diagnosis scores
    if diagnosis:
        gold = score_diagnoses(tasks, [c.text for c in tasks.diagnosis_cases], mapper=mapper, ci=ci, seed=seed)
        results["icd_mapper_on_gold_text"] = gold["icd"]
    if out_dir is not None:
        from .report import write_report

        write_report(results, out_dir)
    return results
