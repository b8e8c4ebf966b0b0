"""Ray Data: phenotype extraction / diagnosis over a dataset with an actor pool (one model per actor),
written exactly once to a folder of Parquet part files and resumable after a kill.

Example:
    >>> from cancerllm.scale import ray as cray
    >>> cray.extract("reports.jsonl", "out/", workers=2, batch_size=32)      # doctest: +SKIP
    {'output': 'out', 'rows': 1000, 'skipped': 0, 'parts': 1}
    >>> import pandas as pd; pd.read_parquet("out/")                         # doctest: +SKIP

The plain Ray idiom works as well (no helper)::

    ds.map_batches(BatchExtractor, fn_constructor_kwargs={"model": "cancerllm-smol"}, concurrency=2,
                   batch_size=16, batch_format="pandas")

**Output.** ``output`` is a *folder* (created when missing) of ``part-<n>-<uuid>.parquet`` files, all with
the same Arrow schema (:meth:`BatchExtractor.arrow_schema`); ``pandas.read_parquet(output)`` or
``ray.data.read_parquet(output)`` read it whole.  A ``_SUCCESS`` file is written when every input has a row.

**Exactly once.** Results stream back to the driver, which commits them ``rows_per_file`` rows at a time:
each part is written to a hidden temporary name (``.part-….tmp``, ignored by Parquet readers) and then
``os.replace``-d into place, so a part file is either whole or absent.  On (re)start (``resume=True``) the
ids in the committed part files are read and those inputs are filtered out before mapping; a run killed
part-way therefore loses at most the rows not yet committed and the rerun computes exactly those.  Ray's own
retries (a task retried, an actor restarted and its batch re-run) happen before a batch's rows reach the
driver, so they cannot duplicate rows; the driver also drops any row whose id was already committed, so
the output holds exactly one row per id (inputs with a repeated id give one row, the first).

Ray usage statistics are switched off (``RAY_USAGE_STATS_ENABLED=0`` unless set) and Ray is started without
the dashboard when this module starts it; a Ray the caller already initialised (``ray.init(address=...)``)
is used as it is.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .predictor import BatchDiagnoser, BatchExtractor, _BatchPredictor

__all__ = ["completed_ids", "diagnose", "extract", "init"]

_SUCCESS = "_SUCCESS"

#: Called after each part file is committed, with its path and row count (tests inject failures here).
_after_part: Callable[[Path, int], None] | None = None


def init(**kwargs: Any) -> Any:
    """The ``ray`` module, initialised: an existing Ray as it is, else ``ray.init(include_dashboard=False,
    **kwargs)`` with usage statistics off (``RAY_USAGE_STATS_ENABLED=0`` unless already set)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the environment
        raise InputError("Ray is not installed: pip install 'cancerllm[ray]'") from None
    if not ray.is_initialized():
        kwargs.setdefault("include_dashboard", False)
        ray.init(**kwargs)
    return ray


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def completed_ids(output: str | os.PathLike[str]) -> set[str]:
    """The ids already in the committed part files of ``output`` (an empty set when there are none)."""
    import pyarrow.parquet as pq

    done: set[str] = set()
    for p in _parts(Path(output)):
        done.update(str(i) for i in pq.read_table(p, columns=["id"]).column("id").to_pylist())
    return done


def _folder(output: str | os.PathLike[str], resume: bool) -> Path:
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: output must be a folder (of Parquet part files), not a file")
    folder.mkdir(parents=True, exist_ok=True)
    for tmp in folder.glob(".part-*.tmp"):  # left by a killed run: never committed
        tmp.unlink()
    if not resume:
        for p in [*_parts(folder), folder / _SUCCESS]:
            p.unlink(missing_ok=True)
    return folder


def _dataset(ray: Any, source: Any, id_column: str, text_column: str, done: set[str],
             batch_size: int) -> tuple[Any, int | None]:
    """The remaining inputs as a Dataset (columns ``id_column``/``text_column``) and their count when known."""
    if isinstance(source, (str, os.PathLike)):
        p, remote = Path(source), "://" in str(source)  # s3://, gs://, ...: Parquet, read by the cluster
        if remote or p.suffix.lower() == ".parquet" or (p.is_dir() and any(p.glob("*.parquet"))):
            ds = ray.data.read_parquet(os.fspath(source)).select_columns([id_column, text_column])
        else:
            import pandas as pd

            from ..data import read_inputs

            recs = [r for r in read_inputs(p, text_column=text_column,
                                           id_column=None if id_column == "id" else id_column)
                    if r.id not in done]
            if not recs:
                return None, 0
            step = max(batch_size, -(-len(recs) // 64))  # a few blocks, so that every actor gets work
            frames = [pd.DataFrame({id_column: pd.Series([r.id for r in recs[k:k + step]], dtype=object),
                                    text_column: pd.Series([r.text for r in recs[k:k + step]], dtype=object)})
                      for k in range(0, len(recs), step)]
            return ray.data.from_pandas(frames), len(recs)
    elif hasattr(source, "map_batches"):
        ds = source
    else:
        raise InputError(f"source must be a ray.data.Dataset or a path, got {type(source).__name__}")
    if done:
        ds = ds.map_batches(_NotDone(done, id_column), batch_format="pandas")
    return ds, None


class _NotDone:
    """Drops the rows whose id is in ``done`` (a picklable function for ``map_batches``)."""

    def __init__(self, done: set[str], id_column: str) -> None:
        self.done, self.id_column = frozenset(done), id_column

    def __call__(self, batch: Any) -> Any:
        keep = [str(i) not in self.done for i in batch[self.id_column].tolist()]
        return batch[keep]


def _run(cls: type[_BatchPredictor], source: Any, output: str | os.PathLike[str], *, model: str, workers: int,
         batch_size: int, num_gpus: float, id_column: str, text_column: str, resume: bool,
         rows_per_file: int | None, num_cpus: float | None, **predictor_kwargs: Any) -> dict[str, Any]:
    if int(workers) < 1:
        raise InputError(f"workers must be at least 1, got {workers!r}")
    rows_per_file = int(rows_per_file or max(batch_size * 4, 256))
    ctor = {"model": str(model), "batch_size": int(batch_size), "id_column": id_column,
            "text_column": text_column, **predictor_kwargs}
    predictor = cls(**ctor)  # validates the settings here, before any cluster work (no model is loaded)
    schema = predictor.arrow_schema()
    folder = _folder(output, resume)
    done = completed_ids(folder) if resume else set()
    skipped = len(done)
    ray = init()
    ds, _ = _dataset(ray, source, id_column, text_column, done, int(batch_size))
    written, parts = 0, 0
    if ds is not None:
        opts: dict[str, Any] = {"num_gpus": num_gpus} if num_gpus else {}
        if num_cpus is not None:
            opts["num_cpus"] = num_cpus
        try:  # Ray >= 2.51 asks for an actor-pool strategy; older ones for ``concurrency``
            opts["compute"] = ray.data.ActorPoolStrategy(size=int(workers))
        except (AttributeError, TypeError):  # pragma: no cover - old Ray
            opts["concurrency"] = int(workers)
        out = ds.map_batches(cls, fn_constructor_kwargs=ctor, batch_size=int(batch_size), batch_format="pandas",
                             **opts)
        batches = iter(out.iter_batches(batch_size=rows_per_file, batch_format="pyarrow"))
        try:
            for table in batches:
                n = _commit(folder, table, schema, done)
                if n:
                    written, parts = written + n, parts + 1
        finally:  # an error or an interrupt here: stop the dataset's execution (and free its actors) now
            close = getattr(batches, "close", None)
            if close is not None:
                close()
    (folder / _SUCCESS).write_text("")
    return {"output": str(folder), "rows": written, "skipped": skipped, "parts": parts}


def _commit(folder: Path, table: Any, schema: Any, done: set[str]) -> int:
    """Write the new rows of ``table`` as one part file (atomically); returns how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [str(i) for i in table.column("id").to_pylist()]
    keep, seen = [], set()
    for k, i in enumerate(ids):
        if i not in done and i not in seen:
            keep.append(k)
            seen.add(i)
    if not keep:
        return 0
    if len(keep) < len(ids):
        table = table.take(pa.array(keep))
    table = pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)
    name = f"part-{len(_parts(folder)):05d}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = folder / f".{name}.tmp"
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, folder / name)
    done.update(seen)
    if _after_part is not None:
        _after_part(folder / name, len(keep))
    return len(keep)


def extract(source: Any, output: str | os.PathLike[str], *, model: str = "cancerllm-smol",
            phenotypes: Sequence[str] | None = None, workers: int = 1, batch_size: int = 32, num_gpus: float = 0,
            id_column: str = "id", text_column: str = "text", resume: bool = True,
            rows_per_file: int | None = None, num_cpus: float | None = None,
            **predictor_kwargs: Any) -> dict[str, Any]:
    """Extract phenotypes from ``source`` with Ray Data and write them to the Parquet folder ``output``.

    Args:
        source: a ``ray.data.Dataset`` with ``id_column``/``text_column``, or a path: JSONL/JSON/CSV (read on
            the driver by :func:`cancerllm.data.read_inputs`, ids exact strings), a ``.parquet`` file, a
            folder of them, or a ``scheme://`` URI (read as Parquet by ``ray.data.read_parquet``).
        output: the output folder (see the module docs); it must not be a file.
        model, phenotypes, predictor_kwargs: as :class:`~cancerllm.scale.BatchExtractor` (``backend="vllm"``,
            ``dtype``, ``adapter``, ``min_confidence``, ...).
        workers: actors in the pool (each loads the model once).
        batch_size: rows per actor call (also the engine's decoding batch).
        num_gpus: GPUs per actor (1 to give each actor a GPU).
        resume: skip the ids already committed in ``output`` (False: start over, deleting its part files).
        rows_per_file: rows per committed part file (the most a kill can lose); ``max(4 * batch_size, 256)``.
        num_cpus: CPUs per actor (Ray's default when None).

    Returns:
        ``{"output", "rows" (written by this run), "skipped" (already done), "parts" (written by this run)}``.
    """
    return _run(BatchExtractor, source, output, model=model, workers=workers, batch_size=batch_size,
                num_gpus=num_gpus, id_column=id_column, text_column=text_column, resume=resume,
                rows_per_file=rows_per_file, num_cpus=num_cpus, phenotypes=phenotypes, **predictor_kwargs)


def diagnose(source: Any, output: str | os.PathLike[str], *, model: str = "cancerllm-smol", workers: int = 1,
             batch_size: int = 32, num_gpus: float = 0, id_column: str = "id", text_column: str = "text",
             resume: bool = True, rows_per_file: int | None = None, num_cpus: float | None = None,
             **predictor_kwargs: Any) -> dict[str, Any]:
    """Generate diagnoses from ``source`` with Ray Data into the Parquet folder ``output``; arguments as
    :func:`extract` (``max_new_tokens`` and the other :class:`~cancerllm.scale.BatchDiagnoser` settings in
    ``predictor_kwargs``)."""
    return _run(BatchDiagnoser, source, output, model=model, workers=workers, batch_size=batch_size,
                num_gpus=num_gpus, id_column=id_column, text_column=text_column, resume=resume,
                rows_per_file=rows_per_file, num_cpus=num_cpus, **predictor_kwargs)
