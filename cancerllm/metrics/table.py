"""Results tables in the paper's layout: rows are systems, columns metric x P/R/F1 and the average F1."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._optional import require
from ..errors import InputError
from .results import TABLE_COLUMNS, EvaluationResult

__all__ = ["TABLE_COLUMNS", "results_table", "results_table_markdown"]


def _rows(
    results: Mapping[str, EvaluationResult], phenotype: str | None
) -> list[tuple[str, dict[str, float]]]:
    if not isinstance(results, Mapping):
        raise InputError("results must be a mapping {system name: EvaluationResult}")
    if not results:
        raise InputError("results is empty; pass at least one {system name: EvaluationResult}")
    rows = []
    for system, result in results.items():
        if not isinstance(result, EvaluationResult):
            raise InputError(
                f"results[{system!r}] is a {type(result).__name__}, not an EvaluationResult; "
                "pass what evaluate() or official_evaluate() returned"
            )
        if phenotype is not None:
            if phenotype not in result.per_phenotype:
                known = ", ".join(result.per_phenotype) or "(none: evaluate was called without phenotypes)"
                raise InputError(f"results[{system!r}] has no phenotype {phenotype!r}; known: {known}")
            result = result.per_phenotype[phenotype]
        rows.append((str(system), result.as_row()))
    return rows


def results_table(
    results: Mapping[str, EvaluationResult], *, percent: bool = True, phenotype: str | None = None
) -> Any:
    """A pandas DataFrame in the paper's layout (needs ``pandas``: ``pip install "cancerllm[pandas]"``).

    Rows are the systems in the mapping's order (index named ``"System"``); columns are
    :data:`TABLE_COLUMNS`: ``"EM P", "EM R", "EM F1", "BLEU-2 P", ..., "ROUGE-L F1", "Avg F1"``.

    Args:
        results: ``{system name: EvaluationResult}``; library and official results may be mixed.
        percent: values in percent (the paper's unit) instead of fractions.
        phenotype: tabulate that phenotype's breakdown instead of the overall scores.

    Returns:
        ``pandas.DataFrame`` of floats (not rounded).

    Raises:
        MissingDependencyError: pandas is not installed.
        InputError: empty mapping, a value that is not an EvaluationResult, unknown phenotype.
    """
    pd = require("pandas", feature="results_table")
    rows = _rows(results, phenotype)
    scale = 100.0 if percent else 1.0
    data = [[row[c] * scale for c in TABLE_COLUMNS] for _, row in rows]
    index = pd.Index([name for name, _ in rows], name="System")
    return pd.DataFrame(data, index=index, columns=list(TABLE_COLUMNS))


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def results_table_markdown(
    results: Mapping[str, EvaluationResult],
    *,
    decimals: int = 2,
    percent: bool = True,
    phenotype: str | None = None,
) -> str:
    """The same table as :func:`results_table` as a Markdown (GitHub pipe) table; pandas is not needed.

    Values are percentages with ``decimals`` decimals, like the paper (fractions when ``percent=False``).

    Example:
        >>> from cancerllm.metrics import evaluate
        >>> r = evaluate(predictions=["{pr, er}"], references=["{pr, her2, er}"])
        >>> print(results_table_markdown({"Model A": r}).splitlines()[0])
        | System | EM P | EM R | EM F1 | BLEU-2 P | BLEU-2 R | BLEU-2 F1 | ROUGE-L P | ROUGE-L R | ROUGE-L F1 | Avg F1 |
    """
    if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
        raise InputError(f"decimals must be a non-negative integer, got {decimals!r}")
    rows = _rows(results, phenotype)
    scale = 100.0 if percent else 1.0
    lines = [
        "| System | " + " | ".join(TABLE_COLUMNS) + " |",
        "|---|" + "---:|" * len(TABLE_COLUMNS),
    ]
    for name, row in rows:
        cells = [f"{row[c] * scale:.{decimals}f}" for c in TABLE_COLUMNS]
        lines.append(f"| {_cell(name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
