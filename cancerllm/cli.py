"""The ``cancerllm`` command line.  Thin: every command calls the Python API.

Errors print one line and a hint, never a traceback unless ``--debug`` is given.  Exit codes: 0 success;
2 bad arguments or input (an unknown option value or name such as a phenotype, retriever or preset, an
invalid configuration, a missing or malformed input file); 1 any other failure (a model or adapter that
cannot be loaded, a missing optional dependency, a failure while running).  ``--json`` prints a
machine-readable summary; ``--quiet`` hides progress.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from .errors import CancerLLMError, ConfigError, InputError, UnknownBackendError

app = typer.Typer(
    name="cancerllm",
    help="Cancer phenotype extraction and diagnosis generation with LLMs (CancerLLM), offline by default.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_STATE: dict[str, bool] = {"debug": False}

EXIT_INPUT = 2
EXIT_FAILURE = 1
#: Errors that mean "the command line or its input is wrong" (exit code 2); everything else exits 1.
_INPUT_ERRORS: tuple[type[BaseException], ...] = (InputError, ConfigError, UnknownBackendError, FileNotFoundError)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="show full tracebacks on errors")) -> None:
    _STATE["debug"] = debug


def _fail(exc: BaseException) -> None:
    if _STATE["debug"]:
        raise exc
    code = EXIT_INPUT if isinstance(exc, _INPUT_ERRORS) else EXIT_FAILURE
    hint = {
        "InputError": "check the input file and options (see --help)",
        "DataFormatError": "fix the named line of the file, or pass --text-column / --id-column",
        "UnknownBackendError": "use one of the names listed",
        "MissingDependencyError": "install the missing extra with the command shown",
        "ModelLoadError": "check the model path; use --model cancerllm-smol for the embedded default",
        "ConfigError": "fix the configuration value named",
    }.get(type(exc).__name__, "rerun with --debug for details")
    typer.echo(f"error: {exc}", err=True)
    typer.echo(f"hint: {hint}", err=True)
    raise typer.Exit(code)


def _emit(summary: dict[str, Any], as_json: bool, quiet: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary))
    elif not quiet:
        for k, v in summary.items():
            typer.echo(f"{k}: {v}")


def _quiet_loading(quiet: bool) -> None:
    if quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the CLI owns its process: keep machine-readable output clean


# ------------------------------------------------------------------------------- model-loading options
# Defined once, reused by every command that loads a model (extract, diagnose, benchmark): the same names,
# values and help everywhere, turned into CancerLLM.from_pretrained arguments by _load_options.
_DEVICE_OPTION = typer.Option(None, "--device", help="cpu, cuda, cuda:1 or auto (default: the first GPU when "
                              "there is one, else the CPU)")
_DTYPE_OPTION = typer.Option("auto", "--dtype", help="auto (bfloat16 on recent GPUs, float16 on older ones, "
                             "bfloat16 on CPUs with native bf16, else float32), float32, bfloat16 or float16")
_QUANTIZATION_OPTION = typer.Option("none", "--quantization", help="none, 8bit or 4bit (bitsandbytes: saves "
                                    "memory; on a CPU often slower than float32)")
_ADAPTER_OPTION = typer.Option(None, "--adapter", help="a LoRA adapter folder (or hub id) to load on top of "
                               "the model")


def _load_options(device: str | None, dtype: str, quantization: str, adapter: str | None) -> dict[str, Any]:
    """The model-loading options as ``CancerLLM.from_pretrained`` keyword arguments (unset ones left out)."""
    q = quantization.strip().lower()
    if q not in ("none", "8bit", "4bit"):
        raise InputError(f"--quantization {quantization!r}: use none, 8bit or 4bit")
    opts = {"device": device, "dtype": None if dtype.strip().lower() == "auto" else dtype,
            "quantization": None if q == "none" else q, "adapter": adapter}
    return {k: v for k, v in opts.items() if v is not None}


def _write_csv_from_jsonl(jsonl: Path, out: Path, columns: list[str]) -> None:
    import csv
    import os

    from .jobs import read_results

    recs = read_results(jsonl)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", *columns, "error"])
        for rid, rec in recs.items():
            res = rec.get("result") or {}
            cells = []
            for c in columns:
                v = res.get(c)
                cells.append("; ".join(v) if isinstance(v, list) else ("" if v is None else str(v)))
            w.writerow([rid, *cells, (rec.get("error") or {}).get("message", "")])
    os.replace(tmp, out)


def _run_batch(kind: str, input_path: Path, output: Path, model: str, text_column: str, id_column: str | None,
               batch_size: int, resume: bool, quiet: bool, as_json: bool, build: Any,
               load: dict[str, Any] | None = None, fmt: str | None = None, chunk_size: int | None = None,
               retry_errors: bool = False, settings: dict[str, Any] | None = None) -> None:
    from .data.inputs import read_inputs
    from .jobs import ResultWriter, read_results, run_job
    from .tasks._common import check_text

    inputs = read_inputs(input_path, text_column=text_column, id_column=id_column)
    if kind == "extract":
        from .formats.results import format_for

        fmt = format_for(output, fmt)
    else:
        suffix = output.suffix.lower()
        if suffix not in (".jsonl", ".csv"):
            raise InputError(f"{output}: output must end in .jsonl or .csv")
        fmt = "jsonl" if suffix == ".jsonl" else "csv"
    # the job file: crash-safe and resumable, one JSON line per input id; other formats are written from it
    jsonl = output if fmt == "jsonl" else output.with_name(output.name + ".partial.jsonl")
    from . import __version__
    from .model import CancerLLM

    _quiet_loading(quiet or as_json)
    task = "phenotype" if kind == "extract" else "diagnosis"
    llm = CancerLLM.from_pretrained(model, tasks=[task], **(load or {}))  # only the adapter this task runs with
    # what the results depend on: a resumed run with other settings must not add to the same file
    run = {"task": kind, "model": model, "base_model": llm.base_model, "adapter_sha256": llm.adapter_sha256_for(task),
           "load": {k: str(v) for k, v in (load or {}).items()}, **(settings or {}),
           "library_version": __version__}
    writer = ResultWriter(jsonl, resume=resume, overwrite=not resume, retry_errors=retry_errors, run=run)
    process, columns = build(llm, batch_size)
    counts = run_job(inputs, process, writer, chunk_size=max(chunk_size or batch_size, 1), validate=check_text,
                     progress=not quiet and not as_json)
    if counts.pop("interrupted"):
        _emit({"task": kind, "inputs": len(inputs), **counts, "output": str(jsonl), "interrupted": True},
              as_json, quiet)
        typer.echo(f"interrupted: the results so far are in {jsonl}; run the same command again to continue",
                   err=True)
        raise typer.Exit(130)
    if fmt != "jsonl":
        if kind == "extract":
            from .formats.results import write_results

            write_results(output, fmt, read_results(jsonl), {r.id: r.text for r in inputs}, columns, run=run)
        else:
            _write_csv_from_jsonl(jsonl, output, columns)
        jsonl.unlink()
        jsonl.with_name(jsonl.name + ".run.json").unlink(missing_ok=True)
    _emit({"task": kind, "inputs": len(inputs), **counts, "output": str(output), "format": fmt}, as_json, quiet)


def _run_distributed(kind: str, engine: str, workers: int, input_path: Path, output: Path, model: str,
                     text_column: str, id_column: str | None, batch_size: int, resume: bool, quiet: bool,
                     as_json: bool, load: dict[str, Any], fmt: str | None = None, chunk_size: int | None = None,
                     retry_errors: bool = False, **task: Any) -> None:
    """``extract``/``diagnose`` on Ray or Spark: OUT is a folder of Parquet part files, exactly once per id."""
    if engine not in ("ray", "spark"):
        raise UnknownBackendError("engine", engine, ["local", "ray", "spark"])
    if fmt not in (None, "parquet") or retry_errors or chunk_size is not None:
        raise InputError(f"--format, --chunk-size and --retry-errors apply to --engine local; with --engine {engine} "
                         "the output is a folder of Parquet part files, resumed by id")
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: with --engine {engine} the output is a folder of Parquet files; name a "
                         "folder (e.g. out.parquet/)")
    if not resume and output.exists():
        import shutil

        shutil.rmtree(output)
    kw = {**task, **load, "batch_size": batch_size, "model": model}
    if engine == "ray":
        from .scale import ray as scale_ray

        fn = scale_ray.extract if kind == "extract" else scale_ray.diagnose
        summary = fn(input_path, output, workers=workers, id_column=id_column or "id", text_column=text_column,
                     **kw)
    else:
        from .scale import spark as scale_spark

        if id_column is not None:
            kw["id_col"] = id_column
        summary = scale_spark.run(input_path, output, task=kind, spark=_spark_session(workers),
                                  text_col=text_column, **kw)
    _emit({"task": kind, "engine": engine, **{k: str(v) if isinstance(v, Path) else v for k, v in summary.items()}},
          as_json, quiet)


def _spark_session(workers: int) -> Any:
    """The active Spark session, or a local one with ``workers`` cores (UI off, offline)."""
    import os

    from ._optional import require

    require("pyspark", feature="--engine spark")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    import sys

    # the Python workers: this interpreter (its packages), offline
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    builder = SparkSession.builder.master(f"local[{workers}]").appName("cancerllm").config("spark.ui.enabled", "false")
    for k, v in env.items():
        os.environ.setdefault(k, v)
        builder = builder.config(f"spark.executorEnv.{k}", os.environ[k])
    return builder.getOrCreate()


_INPUT_HELP = "a .txt file, a folder of .txt files, or a .jsonl, .json or .csv file"


@app.command()
def extract(
    input_path: Path = typer.Argument(..., metavar="INPUT", help=_INPUT_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="results file: .jsonl (answers, evidence, "
                                "confidence, provenance), .csv or .parquet (a row per report); .ndjson with "
                                "--format fhir; .csv/.parquet with --format omop"),
    fmt: str | None = typer.Option(None, "--format", help="jsonl, csv, parquet, fhir (a FHIR R4 Bundle per "
                                   "report, mCODE Observations) or omop (OMOP CDM NOTE_NLP rows); default: from "
                                   "the output's suffix"),
    min_confidence: float | None = typer.Option(None, "--min-confidence", min=0.0, max=1.0,
                                                help="mark answers below this confidence for review"),
    engine: str = typer.Option("local", "--engine", help="local (this process, crash-safe JSONL job), ray (Ray "
                               "Data actors) or spark (Spark mapInPandas); ray and spark write OUT as a folder "
                               "of Parquet part files, exactly once per id"),
    workers: int = typer.Option(1, "--workers", min=1, help="with --engine ray: actors; spark: local[N] cores "
                                "when no Spark session is running"),
    model: str = typer.Option("cancerllm-smol", help="model name or path"),
    device: str | None = _DEVICE_OPTION,
    dtype: str = _DTYPE_OPTION,
    quantization: str = _QUANTIZATION_OPTION,
    adapter: str | None = _ADAPTER_OPTION,
    phenotype: list[str] | None = typer.Option(None, "--phenotype", "-p", help="phenotype to extract (repeat); all eight by default"),
    text_column: str = typer.Option("text", help="JSONL field / CSV column holding the text"),
    id_column: str | None = typer.Option(None, help="JSONL field / CSV column holding the id"),
    batch_size: int = typer.Option(32, min=1, help="sequences decoded together"),
    chunk_size: int | None = typer.Option(None, "--chunk-size", min=1, help="inputs per written chunk (a crash "
                                          "or Ctrl-C loses at most the chunk in flight; default: the batch size)"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="continue an existing results file"),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="when resuming, try the inputs that "
                                      "failed before again"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON summary"),
) -> None:
    """Extract cancer phenotypes from reports."""
    try:
        from .schema import resolve_phenotypes

        questions = resolve_phenotypes(phenotype or None)
        if engine != "local":
            _run_distributed("extract", engine, workers, input_path, output, model, text_column, id_column,
                             batch_size, resume, quiet, as_json, _load_options(device, dtype, quantization, adapter),
                             fmt=fmt, chunk_size=chunk_size, retry_errors=retry_errors,
                             phenotypes=[q.name for q in questions], min_confidence=min_confidence)
            return

        def build(llm: Any, bs: int) -> tuple[Any, list[str]]:
            from .formats.results import result_record

            ex = llm.phenotype_extractor(phenotypes=questions, batch_size=bs, progress=False,
                                         min_confidence=min_confidence)
            names = [q.name for q in questions]
            return (lambda texts: [result_record(r, names) for r in ex.extract_many(texts, as_dataframe=False)]), names

        _run_batch("extract", input_path, output, model, text_column, id_column, batch_size, resume, quiet,
                   as_json, build, load=_load_options(device, dtype, quantization, adapter), fmt=fmt,
                   chunk_size=chunk_size, retry_errors=retry_errors,
                   settings={"phenotypes": [q.name for q in questions], "min_confidence": min_confidence})
    except (CancerLLMError, OSError) as exc:
        _fail(exc)


@app.command()
def diagnose(
    input_path: Path = typer.Argument(..., metavar="INPUT", help=_INPUT_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="results file (.jsonl or .csv)"),
    model: str = typer.Option("cancerllm-smol", help="model name or path"),
    device: str | None = _DEVICE_OPTION,
    dtype: str = _DTYPE_OPTION,
    quantization: str = _QUANTIZATION_OPTION,
    adapter: str | None = _ADAPTER_OPTION,
    text_column: str = typer.Option("text", help="JSONL field / CSV column holding the text"),
    id_column: str | None = typer.Option(None, help="JSONL field / CSV column holding the id"),
    batch_size: int = typer.Option(8, min=1, help="notes decoded together"),
    max_new_tokens: int = typer.Option(500, min=1, help="the paper's 500"),
    engine: str = typer.Option("local", "--engine", help="local, ray or spark (as for extract; ray and spark write "
                               "OUT as a folder of Parquet part files)"),
    workers: int = typer.Option(1, "--workers", min=1, help="with --engine ray: actors; spark: local[N] cores"),
    chunk_size: int | None = typer.Option(None, "--chunk-size", min=1, help="inputs per written chunk (default: "
                                          "the batch size)"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="continue an existing results file"),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="when resuming, try the inputs that "
                                      "failed before again"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON summary"),
) -> None:
    """Generate cancer diagnoses from notes or reports."""
    try:
        if engine != "local":
            _run_distributed("diagnose", engine, workers, input_path, output, model, text_column, id_column,
                             batch_size, resume, quiet, as_json, _load_options(device, dtype, quantization, adapter),
                             chunk_size=chunk_size, retry_errors=retry_errors, max_new_tokens=max_new_tokens)
            return

        def build(llm: Any, bs: int) -> tuple[Any, list[str]]:
            gen = llm.diagnosis_generator(batch_size=bs, max_new_tokens=max_new_tokens, progress=False)
            return (lambda texts: [{"diagnosis": d.text, "icd_10": d.icd_10, "needs_review": d.needs_review}
                                   for d in gen.generate_many(texts, as_dataframe=False)]), [
                "diagnosis", "icd_10", "needs_review"]

        _run_batch("diagnose", input_path, output, model, text_column, id_column, batch_size, resume, quiet,
                   as_json, build, load=_load_options(device, dtype, quantization, adapter),
                   chunk_size=chunk_size, retry_errors=retry_errors, settings={"max_new_tokens": max_new_tokens})
    except (CancerLLMError, OSError) as exc:
        _fail(exc)


@app.command()
def evaluate(
    predictions: Path = typer.Argument(..., help="JSONL/JSON/CSV with 'id' and 'prediction' (or a results file of "
                                       "`extract`/`diagnose`)"),
    references: Path = typer.Argument(..., help="JSONL/JSON/CSV with 'id' and 'reference'"),
    field: str | None = typer.Option(None, help="with a results file: the result field to score (a phenotype; "
                                     "'diagnosis' by default with --task diagnosis)"),
    task: str = typer.Option("phenotype", help="phenotype: set-valued answers such as {pr, er}; diagnosis: "
                             "free text scored whole (never split on commas or cut at a line break)"),
    official: bool = typer.Option(False, help="also score with the official CancerLLM evaluation code's rules"),
    ci: bool = typer.Option(False, help="bootstrap 95% confidence intervals"),
    as_json: bool = typer.Option(False, "--json", help="print the scores as JSON"),
) -> None:
    """Score predictions against gold answers: EM, BLEU-2, ROUGE-L (P/R/F1) and average F1."""
    try:
        from .metrics import evaluate as ev
        from .metrics import official_evaluate, results_table_markdown
        from .metrics._core import check_task

        check_task(task)
        score_field = field if field is not None else ("diagnosis" if task == "diagnosis" else None)
        pred_rows = _rows_by_id(predictions, None)
        gold_rows = _rows_by_id(references, "reference")
        missing = [i for i in gold_rows if i not in pred_rows]
        if missing:
            raise InputError(f"{len(missing)} reference ids have no prediction (first: {missing[0]!r})")
        ids = list(gold_rows)

        def pred_of(r: dict[str, Any]) -> Any:
            if "prediction" in r:
                return r["prediction"]
            if "result" not in r and "error" in r:
                return None  # an input that failed in `extract`/`diagnose` counts as no answer
            if score_field is None:
                raise InputError("predictions have no 'prediction' field; pass --field <phenotype>")
            return (r.get("result") or {}).get(score_field)

        preds = [pred_of(pred_rows[i]) for i in ids]
        golds = [gold_rows[i]["reference"] for i in ids]
        results = {"cancerllm": ev(predictions=preds, references=golds, task=task, ci=ci)}
        if official:
            results["official code"] = official_evaluate(predictions=preds, references=golds, ci=ci)
        if as_json:
            typer.echo(json.dumps({k: v.model_dump(mode="json") for k, v in results.items()}))
        else:
            typer.echo(results_table_markdown(results))
    except (CancerLLMError, OSError) as exc:
        _fail(exc)


def _rows_by_id(path: Path, required: str | None) -> dict[str, dict[str, Any]]:
    """Records of a JSONL/JSON/CSV file by their exact string ``id``; every record needs an ``id`` (and
    ``required``), and ids must be unique."""
    from .data import iter_records
    from .errors import DataFormatError

    rows: dict[str, dict[str, Any]] = {}
    for line, rec in iter_records(path):
        if "id" not in rec or rec["id"] is None:
            raise DataFormatError("record without an 'id'", path=str(path), line=line)
        if required is not None and required not in rec:
            raise DataFormatError(f"record without a {required!r} field", path=str(path), line=line)
        rid = str(rec["id"])
        if rid in rows:
            raise DataFormatError(f"duplicate id {rid!r}", path=str(path), line=line)
        rows[rid] = rec
    return rows


@app.command()
def review(
    results: Path = typer.Argument(..., metavar="RESULTS", help="results of `cancerllm extract` (.jsonl)"),
    reports: Path = typer.Argument(..., metavar="REPORTS", help="the reports they were extracted from: "
                                   + _INPUT_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="the review page to write (.html)"),
    min_confidence: float | None = typer.Option(None, "--min-confidence", min=0.0, max=1.0,
                                                help="also mark answers below this confidence (0-1) for review"),
    text_column: str = typer.Option("text", help="JSONL field / CSV column holding the text"),
    id_column: str | None = typer.Option(None, help="JSONL field / CSV column holding the id"),
    title: str = typer.Option("cancerllm review", help="the page title"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no summary output"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON summary"),
) -> None:
    """Write a self-contained HTML page to check extracted answers against the reports' evidence."""
    try:
        from .data.inputs import read_inputs
        from .formats.review import write_review
        from .jobs import read_results

        if output.suffix.lower() not in (".html", ".htm"):
            raise InputError(f"{output}: the review page must end in .html")
        if results.suffix.lower() not in (".jsonl", ".ndjson"):
            raise InputError(f"{results}: results must be the .jsonl file of `cancerllm extract` (a .csv loses "
                             "the answers' structure; rerun extract with -o results.jsonl)")
        if not results.is_file():
            raise InputError(f"{results}: no such file")
        recs = read_results(results)
        texts = {r.id: r.text for r in read_inputs(reports, text_column=text_column, id_column=id_column)}
        stats = write_review(list(recs.values()), texts, output, title=title, min_confidence=min_confidence)
        _emit({"task": "review", "reports": stats.reports, "needs_review": stats.needs_review,
               "not_found": stats.not_found, "reports_without_results": len(texts.keys() - recs.keys()),
               "output": str(stats.path)}, as_json, quiet)
    except (CancerLLMError, OSError) as exc:
        _fail(exc)


@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", help="YAML training config (see docs/training.md)"),
    resume: bool = typer.Option(False, "--resume", help="continue from the newest checkpoint"),
    nproc: int = typer.Option(1, min=1, help="processes (GPUs) per node"),
    nnodes: int = typer.Option(1, min=1, help="number of nodes"),
    node_rank: int = typer.Option(0, min=0, help="this node's rank"),
    master_addr: str = typer.Option("127.0.0.1", help="address of node 0"),
    master_port: int = typer.Option(29500, help="port on node 0"),
    preset: str | None = typer.Option(None, help="accelerate preset: ddp, deepspeed-zero2, deepspeed-zero3, fsdp"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the launch command and exit"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON summary"),
) -> None:
    """LoRA continued pre-training or instruction tuning (the config's `stage`), on one or many GPUs/nodes."""
    try:
        from . import training

        if not config.is_file():
            raise InputError(f"{config}: no such training config")
        cfg = training.TrainingConfig.from_yaml(config)
        multi = nproc > 1 or nnodes > 1 or preset is not None
        if preset is not None and preset not in training.PRESETS:
            from .errors import UnknownBackendError

            raise UnknownBackendError("preset", preset, list(training.PRESETS))
        kw = dict(nproc=nproc, nnodes=nnodes, node_rank=node_rank, master_addr=master_addr,
                  master_port=master_port, preset=preset, resume=resume)
        if dry_run:
            typer.echo(" ".join(training.build_command(config, **kw)))
            return
        if multi:
            training.launch(config, **kw)
            out = cfg.output_dir if hasattr(cfg, "output_dir") else None
        else:
            out = training.train(cfg, resume=True if resume else None)
        _emit({"task": "train", "stage": getattr(cfg, "stage", None), "output": str(out)}, as_json, False)
    except (CancerLLMError, OSError) as exc:
        _fail(exc)


@app.command()
def index(
    corpus: Path = typer.Argument(..., help="corpus: .jsonl of examples/records with text, .csv, a folder of .txt"),
    output: Path = typer.Option(..., "--output", "-o", help="folder for the index (safetensors + JSON)"),
    retriever: str = typer.Option("default", help="retriever backend: default, random, medcpt, contriever, sgpt, specter2"),
    model_path: str | None = typer.Option(None, "--model-path", help="local model folder for the retriever"),
    text_column: str = typer.Option("text", help="JSONL field / CSV column holding the text"),
    id_column: str | None = typer.Option(None, help="JSONL field / CSV column holding the id"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON summary"),
) -> None:
    """Build and save a retriever index over a corpus (e.g. the training examples)."""
    try:
        from .data.inputs import read_inputs
        from .retrieval import get_retriever

        items = read_inputs(corpus, text_column=text_column, id_column=id_column)
        kwargs = {"model": model_path} if model_path else {}
        r = get_retriever(retriever, **kwargs)
        r.build_index([i.text for i in items], ids=[i.id for i in items])
        path = r.save_index(output)
        _emit({"task": "index", "retriever": retriever, "documents": len(items), "output": str(path)}, as_json, False)
    except (CancerLLMError, OSError) as exc:
        _fail(exc)


def _rates(text: str, what: str) -> list[float]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{what}: expected comma-separated fractions such as 0.02,0.04, got {text!r}") from None


def _command_line() -> str:
    import shlex

    return "cancerllm " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@app.command()
def benchmark(
    data: Path = typer.Option(..., "--data", help="a JSONL file in the shared TCGA format"),
    model: list[str] = typer.Option(["cancerllm-smol"], "--model", "-m", help="model name or path (repeatable)"),
    device: str | None = _DEVICE_OPTION,
    dtype: str = _DTYPE_OPTION,
    quantization: str = _QUANTIZATION_OPTION,
    adapter: str | None = _ADAPTER_OPTION,
    retriever: list[str] = typer.Option([], "--retriever", "-r",
                                        help="also run each model with this retriever (repeatable)"),
    k: int = typer.Option(2, min=1, help="retrieved examples per prompt"),
    out: Path = typer.Option(Path("benchmark-out"), "--out", "-o", help="output folder"),
    limit: int | None = typer.Option(None, min=1, help="score this many reports (a deterministic subset)"),
    split: str = typer.Option("validation", help="validation (default), train or all"),
    rules: bool = typer.Option(True, "--rules/--no-rules", help="include the rule-based baseline"),
    staging: bool = typer.Option(True, "--staging/--no-staging",
                                 help="also score each model with the stage group derived from its T, N, M"),
    classifier: bool = typer.Option(True, "--classifier/--no-classifier",
                                    help="include the TF-IDF + linear SVM classifier and each model's hybrid "
                                         "with it (needs scikit-learn)"),
    diagnosis: bool = typer.Option(True, "--diagnosis/--no-diagnosis", help="also generate diagnoses"),
    misspelling: str = typer.Option("0.02,0.04,0.06,0.08",
                                    help="misspelling rates at inference, comma-separated; 'none' to skip"),
    batch_size: int = typer.Option(32, min=1, help="sequences decoded together"),
    ci: bool = typer.Option(True, "--ci/--no-ci", help="bootstrap 95% confidence intervals"),
    seed: int = typer.Option(0, help="seed of the bootstrap and the misspellings"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON summary"),
) -> None:
    """Benchmark models (alone and with retrieval) and the rule-based baseline on TCGA-format reports:
    tables in the paper's layouts with bootstrap CIs, time and memory, misspelling robustness, plots and
    report.md."""
    try:
        if not data.is_file():
            raise InputError(f"{data}: no such file")
        if split not in ("validation", "train", "all"):
            raise InputError(f"--split {split!r}: use validation, train or all")
        from .benchmark import run_benchmark

        _quiet_loading(quiet or as_json)
        load = _load_options(device, dtype, quantization, adapter)
        models: list[Any] = list(model)
        if load:  # the runner loads names with the defaults: load each model here with the options given
            from .model import CancerLLM

            models = [CancerLLM.from_pretrained(m, **load) for m in model]
            for name, llm in zip(model, models):
                llm.display_name = name
        res = run_benchmark(data, models=models, retrievers=retriever, k=k, rules=rules, staging=staging,
                            classifier=classifier, split=split,  # type: ignore[arg-type]
                            limit=limit, diagnosis=diagnosis,
                            misspelling_rates=_rates(misspelling, "--misspelling"), ci=ci, seed=seed,
                            batch_size=batch_size, out_dir=out, command=_command_line(), progress=not quiet)
        summary: dict[str, Any] = {"task": "benchmark", "reports": res["meta"]["n_reports"],
                                   "report": str(out / "report.md")}
        for name, s in res["systems"].items():
            acc = s["phenotype_accuracy"]
            summary[f"{name}: phenotype macro acc. (value-bearing fields)"] = acc["macro"]["value"]
            summary[f"{name}: Not relevant acc."] = acc["not_relevant"]["value"]
        _emit(summary, as_json, quiet)
    except (CancerLLMError, OSError) as exc:
        _fail(exc)


@app.command()
def robustness(
    data: Path = typer.Option(..., "--data", help="a JSONL file in the shared TCGA format"),
    config: Path = typer.Option(..., "--config", "-c", help="instruction-tuning YAML config (its base model)"),
    out: Path = typer.Option(Path("robustness-out"), "--out", "-o", help="output folder"),
    rates: str = typer.Option("0.2,0.4,0.6,0.8", help="counterfactual label rates, comma-separated"),
    limit: int | None = typer.Option(None, min=1, help="validation reports scored (deterministic subset)"),
    train_limit: int | None = typer.Option(None, min=1, help="training reports used (deterministic subset)"),
    seed: int = typer.Option(0, help="seed of the label corruption and the bootstrap"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON summary"),
) -> None:
    """Counterfactual-label robustness: one instruction-tuning run per rate (plus clean labels), each scored
    on the validation split."""
    try:
        if not data.is_file():
            raise InputError(f"{data}: no such file")
        if not config.is_file():
            raise InputError(f"{config}: no such training config")
        from .benchmark import run_counterfactual_robustness

        _quiet_loading(as_json)
        parsed = _rates(rates, "--rates")
        if not parsed:
            raise InputError("--rates: give at least one rate")
        res = run_counterfactual_robustness(data, config=config, out_dir=out, rates=parsed, limit=limit,
                                            train_limit=train_limit, seed=seed, command=_command_line())
        summary: dict[str, Any] = {"task": "robustness", "report": str(out / "report.md")}
        for p in res["rates"]:
            summary[f"rate {p['rate']:.2f}: macro acc."] = p["accuracy"]["value"]
        _emit(summary, as_json, False)
    except (CancerLLMError, OSError) as exc:
        _fail(exc)


@app.command()
def demo(
    model: str = typer.Option("cancerllm-smol", help="model name or path"),
    limit: int = typer.Option(4, min=1, help="number of sample reports"),
) -> None:
    """Run extraction and diagnosis on the sample TCGA reports shipped with the package."""
    try:
        from .demo import main as demo_main

        raise typer.Exit(demo_main(["--model", model, "--limit", str(limit)]))
    except CancerLLMError as exc:
        _fail(exc)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
