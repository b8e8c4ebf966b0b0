"""OMOP CDM v5.4 NOTE_NLP rows: exactly the CDM columns with their types, offsets that point at the evidence,
rows for items without evidence, CSV and Parquet files, and clear errors for bad input."""

from __future__ import annotations

import csv
import sys
from datetime import date, datetime

import pytest

import cancerllm
from cancerllm.errors import InputError, MissingDependencyError
from cancerllm.formats import NOTE_NLP_COLUMNS, IcdO3Lookup, to_note_nlp_rows, write_note_nlp
from cancerllm.schema import PhenotypeResult

from . import CREATED, SAMPLES, sample_result, scripted_result

#: OMOP CDM v5.4 NOTE_NLP (OHDSI/CommonDataModel inst/csv/OMOP_CDMv5.4_Field_Level.csv), in table order.
CDM54 = [
    ("note_nlp_id", "integer"), ("note_id", "integer"), ("section_concept_id", "integer"),
    ("snippet", "varchar(250)"), ("offset", "varchar(50)"), ("lexical_variant", "varchar(250)"),
    ("note_nlp_concept_id", "integer"), ("note_nlp_source_concept_id", "integer"),
    ("nlp_system", "varchar(250)"), ("nlp_date", "date"), ("nlp_datetime", "datetime"),
    ("term_exists", "varchar(1)"), ("term_temporal", "varchar(50)"), ("term_modifiers", "varchar(2000)"),
]
REQUIRED = {"note_nlp_id", "note_id", "lexical_variant", "nlp_date"}


def _sample_rows(**kw):
    pairs = [sample_result(r) for r in SAMPLES]
    return pairs, to_note_nlp_rows([r for r, _ in pairs], [t for _, t in pairs], note_ids=[11, 12, 13, 14], **kw)


def _modifiers(row):
    return dict(pair.split("=", 1) for pair in row["term_modifiers"].split(";"))


def test_columns_are_exactly_the_cdm_v54_note_nlp_columns_with_their_types():
    assert list(NOTE_NLP_COLUMNS.items()) == CDM54
    _, rows = _sample_rows()
    assert rows
    for row in rows:
        assert list(row) == [name for name, _ in CDM54]
        for name, kind in CDM54:
            value = row[name]
            if value is None:
                assert name not in REQUIRED, name
                continue
            if kind == "integer":
                assert type(value) is int, (name, value)
            else:
                assert type(value) is str, (name, value)
                if kind.startswith("varchar("):
                    assert len(value) <= int(kind[8:-1]), (name, len(value))
        assert date.fromisoformat(row["nlp_date"]) == date(2025, 1, 2)
        assert datetime.fromisoformat(row["nlp_datetime"]) == datetime(2025, 1, 2, 3, 4, 5)
        assert row["term_exists"] == "Y" and row["term_temporal"] is None
        assert row["note_nlp_concept_id"] == row["note_nlp_source_concept_id"] == row["section_concept_id"] == 0
        assert row["nlp_system"] == f"scripted-test-model (cancerllm {cancerllm.__version__})"
    assert [r["note_nlp_id"] for r in rows] == list(range(1, len(rows) + 1))
    assert {r["note_id"] for r in rows} == {11, 12, 13, 14}


def test_offsets_point_at_the_evidence_in_each_report():
    pairs, rows = _sample_rows()
    texts = dict(zip([11, 12, 13, 14], [t for _, t in pairs]))
    found = [r for r in rows if r["offset"] is not None]
    assert found
    for row in found:
        text, start = texts[row["note_id"]], int(row["offset"])
        assert row["offset"] == str(start)  # a character offset, as a string
        assert text[start:start + len(row["lexical_variant"])] == row["lexical_variant"]
        assert row["lexical_variant"] in row["snippet"] or row["lexical_variant"].replace("\n", " ") in row["snippet"]
        assert _modifiers(row)["match"] in ("exact", "fuzzy")
    # one row per answered item, with the item's own span
    for (result, _), note_id in zip(pairs, [11, 12, 13, 14]):
        mine = [r for r in rows if r["note_id"] == note_id]
        items = [i for d in result.details.values() if d.status == "answered" for i in d.items]
        assert [(_modifiers(r)["value"], r["offset"]) for r in mine] == [
            (i.value, None if i.span is None else str(i.span[0])) for i in items]


def test_an_item_without_evidence_has_no_offset_and_its_answer_as_lexical_variant():
    text = "Left breast, grade 2."
    rows = to_note_nlp_rows([scripted_result(text, {"laterality": ["left"], "grade": ["G3"]})], [text])
    left, g3 = rows
    assert (left["offset"], left["lexical_variant"], _modifiers(left)["match"]) == ("0", "Left", "fuzzy")
    assert g3["offset"] is None and g3["snippet"] is None and g3["lexical_variant"] == "G3"
    mods = _modifiers(g3)
    assert mods == {"phenotype": "grade", "value": "G3", "match": "not_found", "confidence": "0.4500",
                    "needs_review": "true"}


def test_note_ids_start_id_and_skipped_results():
    text = "Grade G1."
    ok = scripted_result(text, {"grade": ["G1"], "stage": None}, rid="1234")
    failed = PhenotypeResult(id="1235", error="empty input")
    rows = to_note_nlp_rows([ok, failed], [text, ""], start_id=100)
    assert [(r["note_nlp_id"], r["note_id"]) for r in rows] == [(100, 1234)]  # integer ids are used
    named = scripted_result(text, {"grade": ["G1"]}, rid="TCGA-XX")
    assert to_note_nlp_rows([named, ok], [text, text])[1]["note_id"] == 2  # else 1, 2, ... in order
    assert to_note_nlp_rows(ok, text)[0]["note_id"] == 1234  # one result, one text


def test_without_text_or_provenance():
    rows = to_note_nlp_rows([PhenotypeResult(grade=["G2"])], [None], note_ids=[5],
                            nlp_datetime=datetime(2024, 6, 1, 12, 30))
    [row] = rows
    assert row["offset"] is None and row["snippet"] is None and row["lexical_variant"] == "G2"
    assert (row["nlp_date"], row["nlp_datetime"], row["nlp_system"]) == ("2024-06-01", "2024-06-01T12:30:00",
                                                                         "cancerllm")
    assert _modifiers(row)["match"] == "unknown"


def test_icdo3_codes_go_into_term_modifiers_only_with_a_lookup():
    text = "Adenocarcinoma, NOS of the sigmoid colon."
    result = scripted_result(text, {"histological_type": ["Adenocarcinoma"], "tumor_location": ["sigmoid colon"]})
    assert all("icdo3" not in _modifiers(r) for r in to_note_nlp_rows([result], [text]))
    lookup = IcdO3Lookup({"Adenocarcinoma, NOS": "8140/3"}, {"Sigmoid colon": "C18.7"})
    rows = to_note_nlp_rows([result], [text], icdo3=lookup)
    assert [_modifiers(r)["icdo3"] for r in rows] == ["8140/3", "C18.7"]
    assert all(r["note_nlp_concept_id"] == 0 for r in rows)  # no OMOP concept mapping is shipped


def test_long_evidence_and_modifiers_are_clipped_to_the_column_sizes():
    long_value = "carcinoma " * 40
    text = "Dx: " + long_value + "; end"
    rows = to_note_nlp_rows([scripted_result(text, {"histological_type": [long_value.strip()]})], [text])
    [row] = rows
    assert len(row["lexical_variant"]) == 250 and len(row["snippet"]) == 250 and row["offset"] == "4"
    assert text.startswith(row["lexical_variant"], 4)


def test_csv_file_has_the_header_and_empty_fields_for_null(tmp_path):
    _, rows = _sample_rows()
    path = write_note_nlp(rows, tmp_path / "note_nlp.csv")
    with open(path, encoding="utf-8", newline="") as fh:
        back = list(csv.reader(fh))
    assert back[0] == list(NOTE_NLP_COLUMNS) and len(back) == len(rows) + 1
    for line, row in zip(back[1:], rows):
        assert line == ["" if v is None else str(v) for v in row.values()]


def test_parquet_file_has_typed_columns(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    pytest.importorskip("pandas")
    _, rows = _sample_rows()
    table = pq.read_table(write_note_nlp(rows, tmp_path / "note_nlp.parquet"))
    assert table.column_names == list(NOTE_NLP_COLUMNS) and table.num_rows == len(rows)
    types = {f.name: str(f.type) for f in table.schema}
    assert types["note_nlp_id"] == types["note_id"] == types["note_nlp_concept_id"] == "int64"
    assert types["nlp_date"] == "date32[day]" and types["nlp_datetime"].startswith("timestamp")
    assert "string" in types["snippet"] and "string" in types["term_modifiers"]
    got = table.to_pylist()
    assert [r["offset"] for r in got] == [r["offset"] for r in rows]
    assert got[0]["nlp_date"] == date(2025, 1, 2) and got[0]["nlp_datetime"] == datetime(2025, 1, 2, 3, 4, 5)


def test_parquet_without_pyarrow_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    _, rows = _sample_rows()
    with pytest.raises(MissingDependencyError, match=r"pyarrow is required for writing NOTE_NLP as Parquet"):
        write_note_nlp(rows, tmp_path / "x.parquet")


def test_bad_input_is_refused_with_a_clear_message(tmp_path):
    result, text = sample_result(SAMPLES[0])
    with pytest.raises(InputError, match=r"Mismatch in the number of texts \(1\) and results \(2\)"):
        to_note_nlp_rows([result, result], [text])
    with pytest.raises(InputError, match=r"Mismatch in the number of note_ids \(1\) and results \(2\)"):
        to_note_nlp_rows([result, result], [text, text], note_ids=[1])
    with pytest.raises(InputError, match="note_ids must be integers"):
        to_note_nlp_rows([result], [text], note_ids=["a1"])  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"results\[0\] is a dict"):
        to_note_nlp_rows([{"grade": ["G2"]}], [text])  # type: ignore[list-item]
    with pytest.raises(InputError, match="not the text it was extracted from"):
        to_note_nlp_rows([result], [text.upper()])
    with pytest.raises(InputError, match="one report text"):
        to_note_nlp_rows([result], text)
    with pytest.raises(InputError, match="start_id"):
        to_note_nlp_rows([result], [text], start_id=-1)
    rows = to_note_nlp_rows([result], [text])
    with pytest.raises(InputError, match="does not have the NOTE_NLP columns"):
        write_note_nlp([{**rows[0], "extra": 1}], tmp_path / "x.csv")
    with pytest.raises(InputError, match=r"unknown NOTE_NLP file type '.xlsx'"):
        write_note_nlp(rows, tmp_path / "x.xlsx")
    assert CREATED.startswith("2025-01-02")
