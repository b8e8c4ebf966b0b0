"""Results tables: column layout, row order, values, Markdown, and pandas being optional."""

from __future__ import annotations

import sys

import pytest

from cancerllm.errors import InputError, MissingDependencyError
from cancerllm.metrics import (
    TABLE_COLUMNS,
    evaluate,
    official_evaluate,
    results_table,
    results_table_markdown,
)

EXPECTED_COLUMNS = [
    "EM P", "EM R", "EM F1",
    "BLEU-2 P", "BLEU-2 R", "BLEU-2 F1",
    "ROUGE-L P", "ROUGE-L R", "ROUGE-L F1",
    "Avg F1",
]  # fmt: skip
HEADER = "| System | " + " | ".join(EXPECTED_COLUMNS) + " |"


@pytest.fixture(scope="module")
def results():
    # "A": pred {pr, er} vs gold {pr, her2, er}: for EM, BLEU-2 and ROUGE-L alike the item scores are
    #      pr/pr = er/er = 1 and 0 against her2 -> P = 1, R = 2/3, F1 = 0.8; Avg F1 = 0.8
    # "B": perfect
    a = evaluate(predictions=["{pr, er}"], references=["{pr, her2, er}"], phenotypes=["receptors"])
    b = evaluate(predictions=["{pr, her2, er}"], references=["{pr, her2, er}"], phenotypes=["receptors"])
    return {"System B": b, "System A": a}


def test_columns_are_the_paper_layout():
    assert list(TABLE_COLUMNS) == EXPECTED_COLUMNS


def test_dataframe_layout_and_values(results):
    pytest.importorskip("pandas")
    df = results_table(results)
    assert list(df.columns) == EXPECTED_COLUMNS
    assert list(df.index) == ["System B", "System A"]  # mapping order, not sorted
    assert df.index.name == "System"
    assert df.loc["System A", "EM P"] == pytest.approx(100.0)
    assert df.loc["System A", "BLEU-2 R"] == pytest.approx(200 / 3)
    assert df.loc["System A", "Avg F1"] == pytest.approx(80.0)
    assert results_table(results, percent=False).loc["System A", "ROUGE-L F1"] == pytest.approx(0.8)


def test_markdown_table(results):
    lines = results_table_markdown(results).splitlines()
    assert lines[0] == HEADER
    assert lines[1] == "|---|" + "---:|" * 10
    assert lines[2] == "| System B | " + " | ".join(["100.00"] * 10) + " |"
    assert lines[3] == "| System A | " + " | ".join(["100.00", "66.67", "80.00"] * 3 + ["80.00"]) + " |"
    assert len(lines) == 4
    assert "| 0.667 |" in results_table_markdown(results, percent=False, decimals=3)


def test_markdown_escapes_pipes_in_system_names(results):
    md = results_table_markdown({"GPT|4": results["System A"]})
    assert md.splitlines()[2].startswith("| GPT\\|4 | 100.00 |")


def test_markdown_works_without_pandas_and_dataframe_says_how_to_install(results, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    assert results_table_markdown(results).splitlines()[0] == HEADER
    with pytest.raises(MissingDependencyError, match=r"pip install \"cancerllm\[pandas\]\""):
        results_table(results)


def test_official_and_library_results_mix(results):
    off = official_evaluate(predictions=["{pr, er}"], references=["{pr, her2, er}"], split_gold=True)
    lines = results_table_markdown({"library": results["System A"], "official": off}).splitlines()
    # official EM with split gold: P 1, R 2/3, F1 0.8
    assert lines[3].startswith("| official | 100.00 | 66.67 | 80.00 |")


def test_per_phenotype_table(results):
    md = results_table_markdown(results, phenotype="receptors")
    assert md.splitlines()[3].startswith("| System A | 100.00 | 66.67 | 80.00 |")
    with pytest.raises(InputError, match="no phenotype 'stage'"):
        results_table_markdown(results, phenotype="stage")


def test_bad_tables():
    with pytest.raises(InputError, match="empty"):
        results_table_markdown({})
    with pytest.raises(InputError, match="not an EvaluationResult"):
        results_table_markdown({"x": {"EM P": 1.0}})
