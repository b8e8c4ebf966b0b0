"""Apache Spark: phenotype extraction / diagnosis over a Spark DataFrame, and an exactly-once, resumable
Parquet job.

:func:`extract` and :func:`diagnose` are ``df.mapInPandas`` over the picklable batch predictors of
:mod:`cancerllm.scale.predictor`: the predictor (settings only) is shipped to the executors, and each Spark
Python worker loads the model once (the predictor's module-level cache; ``spark.python.worker.reuse``, true by
default, keeps the worker and so the model between tasks).  The result columns are typed: ``id`` string, one
``array<string>`` column per phenotype, ``raw_<phenotype>`` strings, ``error`` string, ``needs_review``
boolean, ``model``, ``library_version``, ``input_sha256`` strings.  A bad row (null or empty text) is an
error row; it never fails its task.

Example::

    from pyspark.sql import SparkSession
    from cancerllm.scale.spark import extract

    spark = SparkSession.builder.master("local[2]").getOrCreate()
    df = spark.read.parquet("reports.parquet")            # columns: report_id, body
    out = extract(df, id_col="report_id", text_col="body", model="cancerllm-smol")
    out.write.parquet("phenotypes.parquet")

:func:`run` is the batch job (``input`` file → Parquet folder) with exactly-once, resumable output: the ids
still to do are cut into slices; each slice is computed by Spark, collected, written to a temporary file in
the output folder and renamed (``os.replace``, atomic) to ``part-<n>.parquet``.  A restarted run reads the
ids of the complete part files and skips them, so a run killed at any point and restarted gives exactly
one row per input id.  Spark task retries (a failed or lost task re-runs its partition) cannot duplicate
rows: nothing is committed until the whole slice has been collected on the driver, and a retried task's
rows replace the failed attempt's inside Spark's own result, never in the output folder.

Importing this module does not import pyspark; the functions do.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .predictor import BatchDiagnoser, BatchExtractor

__all__ = ["diagnose", "extract", "run"]

_PART_PREFIX = "part-"
_PART_SUFFIX = ".parquet"


def _predictor_fn(predictor: Any):
    """The ``mapInPandas`` function: every pandas batch of a partition through ``predictor``."""

    def fn(batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            if len(batch):
                yield predictor(batch)

    return fn


def _map(df: Any, predictor: Any, id_col: str, text_col: str) -> Any:
    from pyspark.sql import functions as F

    missing = [c for c in (id_col, text_col) if c not in df.columns]
    if missing:
        raise InputError(f"the DataFrame has no column(s) {missing!r} (columns: {df.columns!r})")
    # ids as strings, texts as they are (a non-string text column is cast, nulls stay null)
    slim = df.select(F.col(id_col).cast("string").alias("id"), F.col(text_col).cast("string").alias("text"))
    return slim.mapInPandas(_predictor_fn(predictor), schema=predictor.spark_schema())


def extract(df: Any, *, text_col: str = "text", id_col: str = "id", model: str = "cancerllm-smol",
            phenotypes: Sequence[str] | None = None, batch_size: int = 32, **predictor_kwargs: Any) -> Any:
    """Phenotypes of every row of the Spark DataFrame ``df`` (lazy: a Spark DataFrame, one row per input).

    Args:
        df: a pyspark DataFrame with an id column and a text column.
        text_col, id_col: the input columns (ids are cast to strings).
        model: a model name or path every executor can read (``"cancerllm-smol"``, a folder on shared storage).
        phenotypes: the phenotypes to extract (all eight when None).
        batch_size: sequences decoded together inside a worker.
        predictor_kwargs: further :class:`~cancerllm.scale.BatchExtractor` arguments (``adapter``, ``dtype``,
            ``device``, ``quantization``, ``backend``, ``min_confidence``, ``load_kwargs``).

    Returns:
        A Spark DataFrame with the columns of :meth:`BatchExtractor.columns` (schema
        :meth:`BatchExtractor.spark_schema`).
    """
    predictor = BatchExtractor(model, phenotypes=phenotypes, batch_size=batch_size, **predictor_kwargs)
    return _map(df, predictor, id_col, text_col)


def diagnose(df: Any, *, text_col: str = "text", id_col: str = "id", model: str = "cancerllm-smol",
             batch_size: int = 32, **predictor_kwargs: Any) -> Any:
    """Diagnoses of every row of ``df`` (columns of :meth:`BatchDiagnoser.columns`); arguments as
    :func:`extract` (``max_new_tokens`` among ``predictor_kwargs``)."""
    predictor = BatchDiagnoser(model, batch_size=batch_size, **predictor_kwargs)
    return _map(df, predictor, id_col, text_col)


# -- the resumable job -------------------------------------------------------------------------------------
def _after_slice(part: Path) -> None:
    """Called after each slice is committed (tests monkeypatch it to kill a run part-way)."""


def _done_ids(out: Path) -> tuple[set[str], int]:
    """Ids in the complete part files of ``out`` and the next part number (temp files are ignored)."""
    import pyarrow.parquet as pq

    done: set[str] = set()
    last = -1
    for f in sorted(out.glob(f"{_PART_PREFIX}*{_PART_SUFFIX}")):
        try:
            last = max(last, int(f.name[len(_PART_PREFIX):-len(_PART_SUFFIX)]))
        except ValueError:
            continue
        done.update(str(i) for i in pq.read_table(f, columns=["id"]).column("id").to_pylist())
    for tmp in out.glob(".tmp-*"):  # left by a run killed while writing: never complete, never read
        tmp.unlink(missing_ok=True)
    return done, last + 1


def _read(spark: Any, input_path: Path, id_col: str, text_col: str) -> Any:
    """The input as a Spark DataFrame of ``id``/``text`` (strings)."""
    from pyspark.sql import functions as F

    if input_path.suffix.lower() == ".parquet" or (input_path.is_dir() and any(input_path.glob("*.parquet"))):
        df = spark.read.parquet(str(input_path))
        missing = [c for c in (id_col, text_col) if c not in df.columns]
        if missing:
            raise InputError(f"{input_path}: no column(s) {missing!r} (columns: {df.columns!r})")
        df = df.select(F.col(id_col).cast("string").alias("id"), F.col(text_col).cast("string").alias("text"))
        if df.filter(F.col("id").isNull()).limit(1).count():
            raise InputError(f"{input_path}: a null id in column {id_col!r}")
        dup = df.groupBy("id").count().filter("count > 1").limit(1).collect()
        if dup:
            raise InputError(f"{input_path}: the id {dup[0]['id']!r} is repeated")
        return df
    import pandas as pd

    from ..data import read_inputs

    recs = read_inputs(input_path, text_column=text_col, id_column=None if id_col == "id" else id_col)
    # a JSON value that is not a string (null, a number) becomes a null text: an error row
    pdf = pd.DataFrame({"id": pd.Series([r.id for r in recs], dtype=object),
                        "text": pd.Series([r.text if isinstance(r.text, str) else None for r in recs],
                                          dtype=object)})
    return spark.createDataFrame(pdf, schema="id string, text string")


def run(input_path: str | os.PathLike[str], output: str | os.PathLike[str], *, task: str = "extract",
        spark: Any = None, text_col: str = "text", id_col: str = "id", model: str = "cancerllm-smol",
        phenotypes: Sequence[str] | None = None, batch_size: int = 32, slice_size: int = 10_000,
        partitions: int | None = None, **predictor_kwargs: Any) -> dict[str, Any]:
    """Run ``task`` (``"extract"`` or ``"diagnose"``) over ``input_path`` (JSONL/JSON/CSV through
    :func:`cancerllm.data.read_inputs`, or Parquet) into the Parquet folder ``output``, exactly once per id.

    The output folder holds ``part-<n>.parquet`` files, each committed atomically (temporary name, then
    ``os.replace``) after its whole slice of ids was computed.  Restarting after a crash or kill skips the ids
    already in complete part files, so the folder ends with exactly one row per input id.  Read it with
    ``spark.read.parquet(output)`` or ``pandas.read_parquet(output)``.

    Args:
        task: ``"extract"`` (:func:`extract`) or ``"diagnose"`` (:func:`diagnose`).
        spark: the SparkSession (the active one, else a new local one, when None).
        slice_size: ids per committed part file (the work lost to a kill is at most one slice).
        partitions: Spark partitions per slice (default: the session's default parallelism).
        the rest: as :func:`extract`.

    Returns:
        ``{"output", "total", "skipped", "written", "parts"}``: input rows, ids already done, rows written by
        this run, part files written by this run.
    """
    if task not in ("extract", "diagnose"):
        raise InputError(f"task must be 'extract' or 'diagnose', got {task!r}")
    if int(slice_size) < 1:
        raise InputError(f"slice_size must be at least 1, got {slice_size!r}")
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    if spark is None:
        spark = SparkSession.getActiveSession() or SparkSession.builder.appName("cancerllm").getOrCreate()
    src, out = Path(input_path), Path(output)
    out.mkdir(parents=True, exist_ok=True)
    done, next_part = _done_ids(out)
    df = _read(spark, src, id_col, text_col)
    total = df.count()
    todo = df
    if done:
        done_df = spark.createDataFrame([(i,) for i in sorted(done)], schema="id string")
        todo = df.join(F.broadcast(done_df), on="id", how="left_anti")
    todo = todo.persist()
    try:
        remaining = todo.count()
        n_slices = max(1, math.ceil(remaining / int(slice_size))) if remaining else 0
        parts = partitions or spark.sparkContext.defaultParallelism
        if task == "extract":
            predictor: Any = BatchExtractor(model, phenotypes=phenotypes, batch_size=batch_size, **predictor_kwargs)
        else:
            predictor = BatchDiagnoser(model, batch_size=batch_size, **predictor_kwargs)
        schema = predictor.spark_schema()
        arrow_schema = predictor.arrow_schema()
        # slices by a hash of the id: deterministic, and any split of the remaining ids is correct
        sliced = todo.withColumn("_slice", F.pmod(F.xxhash64("id"), F.lit(max(n_slices, 1))))
        written, new_parts = 0, 0
        for k in range(n_slices):
            chunk = sliced.filter(F.col("_slice") == k).drop("_slice").repartition(parts)
            pdf = chunk.mapInPandas(_predictor_fn(predictor), schema=schema).toPandas()
            if not len(pdf):
                continue
            table = pa.Table.from_pandas(pdf[arrow_schema.names], schema=arrow_schema, preserve_index=False)
            final = out / f"{_PART_PREFIX}{next_part:05d}{_PART_SUFFIX}"
            tmp = out / f".tmp-{uuid.uuid4().hex}{_PART_SUFFIX}"
            pq.write_table(table, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)  # the commit: the slice is in the output whole, or not at all
            next_part += 1
            new_parts += 1
            written += len(pdf)
            _after_slice(final)
    finally:
        todo.unpersist()
    return {"output": str(out), "total": total, "skipped": total - remaining, "written": written,
            "parts": new_parts}
