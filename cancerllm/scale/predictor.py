"""Picklable batch predictors: settings in, a model loaded lazily once per worker process, batches of
``id``/``text`` rows in, one result row per input out (a bad row never fails its batch).

Ray Data and Spark both call them the way their users expect::

    ds.map_batches(BatchExtractor, fn_constructor_kwargs={"model": "cancerllm-smol"}, concurrency=2,
                   batch_size=64, batch_format="pandas")
    df.mapInPandas(lambda it: (BatchExtractor(...)(b) for b in it), schema=BatchExtractor(...).spark_schema())

Rows are the same whichever engine runs them (and the same as ``extract_many``, and as ``cancerllm extract
-o OUT.parquet`` writes locally): ``id``, one column per phenotype (a list of strings, None for "Not
relevant"), ``raw_<phenotype>`` (the raw answers), ``error`` (None, or why the row could not be processed,
without the row's place), ``needs_review``, ``model``, ``adapter_sha256``, ``library_version`` and
``input_sha256``.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputError

__all__ = ["BatchDiagnoser", "BatchExtractor", "arrow_schema", "error_reason"]

# one loaded model per worker process and settings, shared by every predictor object there
_MODELS: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


_WHERE = re.compile(r"^(?:row \S+|\S*:\d+): ")


def error_reason(message: str | None) -> str | None:
    """An error message without the place it names (``row 3: ``, ``reports.csv:7: ``), so that the same bad
    input gives the same text whichever engine, batch or file position it came through."""
    return _WHERE.sub("", message, count=1) if message else message


def arrow_schema(columns: Sequence[str], lists: Sequence[str] = ()) -> Any:
    """The Arrow schema of result rows: ``lists`` (the answer columns) ``list<string>``, ``needs_review``
    boolean, every other column a string; the one schema of every Parquet output (local, Ray, Spark)."""
    import pyarrow as pa

    return pa.schema([pa.field(c, pa.list_(pa.string()) if c in lists else
                               pa.bool_() if c == "needs_review" else pa.string()) for c in columns])


def _version() -> str:
    from .. import __version__

    return __version__


class _BatchPredictor:
    """Settings (picklable) and the lazily loaded model; subclasses define the columns and the task."""

    def __init__(self, model: str = "cancerllm-smol", *, adapter: str | None = None, dtype: str | None = None,
                 device: str | None = None, quantization: str | None = None, backend: str = "hf",
                 batch_size: int = 32, id_column: str = "id", text_column: str = "text",
                 load_kwargs: Mapping[str, Any] | None = None) -> None:
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size!r}")
        self.model = str(model)
        self.adapter = None if adapter is None else str(adapter)
        self.dtype, self.device, self.quantization, self.backend = dtype, device, quantization, backend
        self.batch_size = int(batch_size)
        self.id_column, self.text_column = id_column, text_column
        self.load_kwargs = dict(load_kwargs or {})

    # -- the model, once per process ---------------------------------------------------------------------
    #: the task this predictor runs: only its adapter is loaded (``tasks=`` of ``from_pretrained``)
    TASK = "phenotype"

    def _key(self) -> tuple[Any, ...]:
        return (self.model, self.adapter, self.dtype, self.device, self.quantization, self.backend, self.TASK,
                tuple(sorted((k, repr(v)) for k, v in self.load_kwargs.items())))

    def llm(self) -> Any:
        """The loaded :class:`~cancerllm.CancerLLM` (loaded on first use in this process, then shared)."""
        key = self._key()
        with _LOCK:
            if key not in _MODELS:
                from ..model import CancerLLM

                opts = {"adapter": self.adapter, "dtype": self.dtype, "device": self.device,
                        "quantization": self.quantization}
                kwargs = {"tasks": [self.TASK], **self.load_kwargs}
                _MODELS[key] = CancerLLM.from_pretrained(
                    self.model, backend=self.backend, **{k: v for k, v in opts.items() if v is not None}, **kwargs)
            return _MODELS[key]

    def __getstate__(self) -> dict[str, Any]:  # settings only: the model is loaded where the object runs
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_task")}

    # -- batches -------------------------------------------------------------------------------------------
    def _columns_in(self, batch: Any) -> tuple[list[str], list[Any], str]:
        kind = "pandas" if hasattr(batch, "iloc") else "dict"
        try:
            ids, texts = batch[self.id_column], batch[self.text_column]
        except (KeyError, TypeError):
            raise InputError(f"a batch needs the columns {self.id_column!r} and {self.text_column!r}") from None
        ids = [str(i) for i in (ids.tolist() if hasattr(ids, "tolist") else list(ids))]
        texts = texts.tolist() if hasattr(texts, "tolist") else list(texts)
        if len(ids) != len(texts):
            raise InputError(f"{len(ids)} ids for {len(texts)} texts in a batch")
        return ids, texts, kind

    @staticmethod
    def _as(kind: str, rows: dict[str, list[Any]]) -> Any:
        if kind == "pandas":
            import pandas as pd

            # object columns: None stays None (pandas >= 3 would make string columns NaN-filled str dtype)
            return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in rows.items()})
        return rows

    def __call__(self, batch: Any) -> Any:
        """Results of a batch (a pandas DataFrame, or a dict of arrays as Ray's ``"numpy"`` format gives),
        in the same form: one row per input, in order."""
        ids, texts, kind = self._columns_in(batch)
        return self._as(kind, self.predict(ids, texts))

    def predict(self, ids: Sequence[str], texts: Sequence[Any]) -> dict[str, list[Any]]:
        """The result columns of ``texts`` (ids kept), as a dict of lists."""
        raise NotImplementedError

    def columns(self) -> list[str]:
        """The output columns, in order."""
        raise NotImplementedError

    def arrow_schema(self) -> Any:
        """The output columns as an Arrow schema (see :func:`arrow_schema`)."""
        return arrow_schema(self.columns(), getattr(self, "phenotypes", ()))

    @staticmethod
    def _hash(text: Any) -> str | None:
        return hashlib.sha256(text.encode("utf-8")).hexdigest() if isinstance(text, str) else None


class BatchExtractor(_BatchPredictor):
    """Phenotype extraction over batches (see the module docs).

    Args:
        model: a model name or path (``"cancerllm-smol"``, a saved folder, a hub id).
        adapter, dtype, device, quantization, backend: as :meth:`cancerllm.CancerLLM.from_pretrained`.
        phenotypes: names of the phenotypes to extract (all eight when None).
        batch_size: sequences the engine decodes together.
        min_confidence: answers below it get ``needs_review``.
        id_column, text_column: the input columns.
        load_kwargs: further ``from_pretrained`` arguments.
    """

    def __init__(self, model: str = "cancerllm-smol", *, phenotypes: Sequence[str] | None = None,
                 min_confidence: float | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        from ..schema import resolve_phenotypes

        self.phenotypes = [q.name for q in resolve_phenotypes(list(phenotypes) if phenotypes else None)]
        self.min_confidence = min_confidence

    def columns(self) -> list[str]:
        """The output columns, in order."""
        return (["id", *self.phenotypes, *[f"raw_{p}" for p in self.phenotypes], "error", "needs_review",
                 "model", "adapter_sha256", "library_version", "input_sha256"])

    def spark_schema(self) -> str:
        """The output columns as a Spark DDL schema (phenotypes as ``array<string>``)."""
        types = {"needs_review": "boolean"}
        types.update({p: "array<string>" for p in self.phenotypes})
        return ", ".join(f"`{c}` {types.get(c, 'string')}" for c in self.columns())

    def _task(self) -> Any:
        if getattr(self, "_task_extractor", None) is None:
            self._task_extractor = self.llm().phenotype_extractor(
                self.phenotypes, batch_size=self.batch_size, progress=False, min_confidence=self.min_confidence)
        return self._task_extractor

    def predict(self, ids: Sequence[str], texts: Sequence[Any]) -> dict[str, list[Any]]:
        llm = self.llm()
        results = self._task().extract_many(list(texts), as_dataframe=False, errors="record") if texts else []
        rows: dict[str, list[Any]] = {c: [] for c in self.columns()}
        for rid, text, r in zip(ids, texts, results):
            rows["id"].append(rid)
            for p in self.phenotypes:
                rows[p].append(r.get(p))
                rows[f"raw_{p}"].append(r.raw.get(p))
            rows["error"].append(error_reason(r.error))
            rows["needs_review"].append(None if r.error else r.needs_review)
            rows["model"].append(llm.base_model or self.model)
            rows["adapter_sha256"].append(llm.adapter_sha256_for("phenotype"))
            rows["library_version"].append(_version())
            rows["input_sha256"].append(self._hash(text))
        return rows


class BatchDiagnoser(_BatchPredictor):
    """Diagnosis generation over batches: columns ``id``, ``diagnosis``, ``icd_10`` (the code the model wrote,
    if any), ``raw``, ``error``, ``needs_review`` (the written code contradicts the diagnosis text:
    :attr:`~cancerllm.schema.Diagnosis.code_consistent` False), ``model``, ``adapter_sha256``,
    ``library_version``, ``input_sha256``.  ``max_new_tokens``: the generation budget (the task's default
    when None); other arguments as :class:`BatchExtractor`."""

    TASK = "diagnosis"

    def __init__(self, model: str = "cancerllm-smol", *, max_new_tokens: int | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.max_new_tokens = max_new_tokens

    def columns(self) -> list[str]:
        """The output columns, in order."""
        return ["id", "diagnosis", "icd_10", "raw", "error", "needs_review", "model", "adapter_sha256",
                "library_version", "input_sha256"]

    def spark_schema(self) -> str:
        """The output columns as a Spark DDL schema."""
        return ", ".join(f"`{c}` {'boolean' if c == 'needs_review' else 'string'}" for c in self.columns())

    def _task(self) -> Any:
        if getattr(self, "_task_generator", None) is None:
            kw = {"max_new_tokens": self.max_new_tokens} if self.max_new_tokens else {}
            self._task_generator = self.llm().diagnosis_generator(batch_size=self.batch_size, progress=False, **kw)
        return self._task_generator

    def predict(self, ids: Sequence[str], texts: Sequence[Any]) -> dict[str, list[Any]]:
        llm = self.llm()
        results = self._task().generate_many(list(texts), as_dataframe=False, errors="record") if texts else []
        rows: dict[str, list[Any]] = {c: [] for c in self.columns()}
        for rid, text, d in zip(ids, texts, results):
            rows["id"].append(rid)
            rows["diagnosis"].append(None if d.error else d.text)
            rows["icd_10"].append(None if d.error else d.icd_10)
            rows["raw"].append(None if d.error else d.raw)
            rows["error"].append(error_reason(d.error))
            rows["needs_review"].append(None if d.error else d.needs_review)
            rows["model"].append(llm.base_model or self.model)
            rows["adapter_sha256"].append(llm.adapter_sha256_for("diagnosis"))
            rows["library_version"].append(_version())
            rows["input_sha256"].append(self._hash(text))
        return rows
