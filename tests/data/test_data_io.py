"""Reading and writing examples and records: round trips and error messages that name file and line."""

from __future__ import annotations

import json
import sys

import pytest

from cancerllm.data import (
    TCGARecord,
    examples_from_dataframe,
    examples_to_dataframe,
    infer_format,
    read_examples,
    read_jsonl,
    read_records,
    read_tcga,
    write_examples,
    write_jsonl,
    write_records,
)
from cancerllm.errors import DataFormatError, InputError
from cancerllm.schema import DIAGNOSIS_INSTRUCTION, PHENOTYPE_INSTRUCTION, Example, Phenotype

EXAMPLES = [
    Example(
        instruction=PHENOTYPE_INSTRUCTION,
        context="Left breast, invasive ductal carcinoma, grade 2.",
        question=Phenotype.GRADE.question,
        response="{grade 2}",
        id="r1-grade",
        meta={"phenotype": "grade", "doc": 0},
    ),
    Example(
        instruction=PHENOTYPE_INSTRUCTION,
        context='Résumé: "quoted", comma,\nsecond line',
        question=Phenotype.STAGE.question,
        response="Not relevant",
        id="r1-stage",
    ),
    Example(instruction=DIAGNOSIS_INSTRUCTION, context="Report text.", response="Lung Adenocarcinoma, Lung"),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_round_trip_every_format(tmp_path, suffix):
    path = tmp_path / f"train{suffix}"
    write_examples(EXAMPLES, path)
    assert read_examples(path) == EXAMPLES


def test_round_trip_dataframe():
    df = examples_to_dataframe(EXAMPLES)
    assert list(df.columns) == ["instruction", "context", "response", "question", "id", "meta"]
    assert df.loc[0, "response"] == "{grade 2}"
    assert examples_from_dataframe(df) == EXAMPLES
    assert read_examples(df) == EXAMPLES


def test_dataframe_from_csv_with_nan_cells(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "t.csv"
    path.write_text("instruction,context,response,question\nI,,{x},\n", encoding="utf-8")
    exs = examples_from_dataframe(pd.read_csv(path))
    assert exs == [Example(instruction="I", context="", response="{x}", question=None)]


def test_official_form_is_kept_as_is(tmp_path):
    official = {
        "instruction": PHENOTYPE_INSTRUCTION,
        "context": "In the text: Right breast mass. " + Phenotype.LATERALITY.question,
        "response": "{right}",
    }
    path = tmp_path / "official.jsonl"
    path.write_text(json.dumps(official) + "\n", encoding="utf-8")
    (ex,) = read_examples(path)
    assert ex.question is None
    assert ex.to_official() == official


def test_write_official_flag(tmp_path):
    path = write_examples(EXAMPLES[:1], tmp_path / "o.jsonl", official=True)
    assert read_jsonl(path) == [
        {
            "instruction": PHENOTYPE_INSTRUCTION,
            "context": "In the text: Left breast, invasive ductal carcinoma, grade 2. "
            "What is the grade of cancer in the given context?",
            "response": "{grade 2}",
        }
    ]


def test_jsonl_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text(
        '\n{"instruction": "I", "response": "a"}\n   \n{"instruction": "J"}\n\n', encoding="utf-8"
    )
    assert [e.instruction for e in read_examples(path)] == ["I", "J"]


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "I"}\n\n{"instruction": "J",\n', encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        read_examples(path)
    assert "bad.jsonl:3" in str(info.value)
    assert info.value.line == 3 and info.value.path == str(path)


def test_missing_instruction_names_line_and_field(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"instruction": "I"}\n{"context": "c", "response": "r"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"m\.jsonl:2: .*'instruction'"):
        read_examples(path)


def test_wrong_type_names_field(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_text('{"instruction": "I", "context": 5}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"w\.jsonl:1: .*'context'"):
        read_examples(path)


def test_unknown_field_is_an_error_not_a_silent_drop(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_text('{"instruction": "I", "input": "x", "output": "y"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"u\.jsonl:1: .*unknown field 'input'"):
        read_examples(path)


def test_non_object_line(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text('{"instruction": "I"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"n\.jsonl:2: "):
        read_jsonl(path)


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "enc.jsonl"
    path.write_bytes(b'{"instruction": "I"}\n{"instruction": "caf\xe9"}\n')
    with pytest.raises(DataFormatError, match=r"enc\.jsonl:2: invalid UTF-8"):
        read_examples(path)
    csv_path = tmp_path / "enc.csv"
    csv_path.write_bytes(b"instruction\nok\nbad \xff\n")
    with pytest.raises(DataFormatError, match=r"enc\.csv:3: invalid UTF-8"):
        read_examples(csv_path)


def test_csv_missing_required_column_lists_columns(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("context,response\nsome text,{x}\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        read_examples(path)
    msg = str(info.value)
    assert "c.csv:1" in msg
    assert "missing required column(s) instruction" in msg
    assert "found columns: context, response" in msg
    assert "required: instruction" in msg


def test_csv_bad_row_names_its_line(tmp_path):
    path = tmp_path / "r.csv"
    # the second record spans lines 2-3 (quoted newline); the bad one starts on line 4
    path.write_text('instruction,context\nI,"two\nlines"\nJ,x,extra\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"r\.csv:4: row has 3 field"):
        read_examples(path)


def test_csv_meta_must_be_json(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text("instruction,meta\nI,{not json\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"meta\.csv:2: field 'meta'"):
        read_examples(path)


def test_json_array_error_names_element_line(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n  {"instruction": "I"},\n  {"instruction": 3}\n]\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"a\.json:3: .*'instruction'"):
        read_examples(path)
    path.write_text('[\n  {"instruction": "I"},\n  {"instruction": \n]\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"a\.json:4: malformed JSON"):
        read_examples(path)
    path.write_text('{"instruction": "I"}', encoding="utf-8")
    with pytest.raises(DataFormatError, match="expected a JSON array"):
        read_examples(path)


def test_records_round_trip_and_atomic_write(tmp_path):
    recs = [{"a": 1, "b": "x"}, {"a": 2, "b": "ü"}]
    path = write_jsonl(recs, tmp_path / "sub" / "r.jsonl")
    assert read_jsonl(path) == recs
    assert read_records(write_records(recs, tmp_path / "r.json")) == recs
    assert read_records(write_records(recs, tmp_path / "r.csv")) == [
        {"a": "1", "b": "x"},
        {"a": "2", "b": "ü"},
    ]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["r.jsonl"]  # no temp file left


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "keep.jsonl"
    write_jsonl([{"a": 1}], path)
    with pytest.raises(TypeError):
        write_jsonl([{"a": 2}, {"b": object()}], path)
    assert read_jsonl(path) == [{"a": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.jsonl"]


def test_format_inference():
    assert infer_format("x.JSONL") == "jsonl"
    assert infer_format("x.txt", "csv") == "csv"
    with pytest.raises(InputError, match="suffix '.txt'"):
        infer_format("x.txt")
    with pytest.raises(InputError, match="unknown data format 'xml'"):
        infer_format("x.json", "xml")


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_examples(tmp_path / "nope.jsonl")


TCGA_LINE = {
    "patient_id": "TCGA-AA-0001",
    "cancer_type": "BRCA",
    "text": "Left breast.",
    "labels": {"stage": "Stage I", "tumor_size": 2.5, "grade": None},
}


def test_read_tcga_validates_and_names_line(tmp_path):
    path = tmp_path / "tcga.jsonl"
    bad = dict(TCGA_LINE, labels=["not", "a", "dict"])
    path.write_text(json.dumps(TCGA_LINE) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"tcga\.jsonl:2: invalid TCGA record: field 'labels'"):
        read_tcga(path)
    path.write_text(json.dumps(TCGA_LINE) + "\n", encoding="utf-8")
    (rec,) = read_tcga(path)
    assert isinstance(rec, TCGARecord)
    assert rec.label("tumor_size") == "2.5" and rec.label("grade") is None and rec.label("absent") is None


def test_read_tcga_missing_field(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({k: v for k, v in TCGA_LINE.items() if k != "text"}) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"t\.jsonl:1: .*missing required field 'text'"):
        read_tcga(path)


def test_import_is_light():
    import subprocess

    code = (
        "import sys, cancerllm.data, cancerllm.robustness; "
        "print(sorted(m for m in ('torch', 'transformers', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
