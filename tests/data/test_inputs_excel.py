"""The one input reader on real-world files: an Excel "CSV UTF-8" export (BOM, CRLF rows, multi-line quoted
cells with CRLF inside, non-ASCII, doubled quotes) and JSONL with U+2028, read exactly by ``read_inputs`` and
carried unchanged through ``cancerllm extract`` end to end."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from cancerllm.cli import app
from cancerllm.data import InputRecord, iter_records, read_inputs, read_records
from cancerllm.errors import DataFormatError, InputError
from cancerllm.jobs import read_results
from cancerllm.tasks.phenotype import PhenotypeExtractor

# (id, report) as the hospital's system holds them; the CSV below is what Excel writes for them.
ROWS = [
    ("TCGA-A1-0001", 'Invasive ductal carcinoma, left breast.\r\nTumor Ø 2,5 cm — naïve patient.\r\nER "positive"'),
    ("007", "Second report: leading zeros in the id must survive.\r\n\r\nG2 after an empty line"),
    (" id with spaces ", "  padded text, kept exactly  "),
    ("x;y,z", 'Quotes "" inside, a comma, a semicolon; and ünïcødé “smart quotes” ½'),
    ("last", "one line, no break"),
]


def _excel_csv(rows: list[tuple[str, str]]) -> bytes:
    """Bytes as Excel's "CSV UTF-8" writes them: BOM, CRLF row ends, every field with a comma, quote or line
    break quoted, quotes doubled."""

    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\r\n') or v != v.strip() else v

    lines = ["id,report,ward"] + [f"{cell(i)},{cell(t)},{cell(f'Onkologie Süd {n}')}" for n, (i, t) in enumerate(rows)]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


@pytest.fixture
def excel_csv(tmp_path):
    path = tmp_path / "reports.csv"
    path.write_bytes(_excel_csv(ROWS))
    return path


def test_excel_csv_round_trips_every_id_and_text_exactly(excel_csv):
    raw = excel_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfid,") and b"\r\n\r\n" in raw  # the file really has what is tested
    recs = read_inputs(excel_csv, text_column="report")
    assert [(r.id, r.text) for r in recs] == ROWS
    assert all(isinstance(r, InputRecord) for r in recs)
    # the line where each record starts (multi-line cells counted), for error messages
    assert [r.where.rsplit(":", 1)[1] for r in recs] == ["2", "5", "8", "9", "10"]
    # the same reader behind read_records / iter_records: header without BOM, cells exact
    table = read_records(excel_csv)
    assert list(table[0]) == ["id", "report", "ward"]
    assert [(t["id"], t["report"], t["ward"]) for t in table] == [(i, r, f"Onkologie Süd {n}")
                                                                   for n, (i, r) in enumerate(ROWS)]
    assert [line for line, _ in iter_records(excel_csv)] == [2, 5, 8, 9, 10]


def test_explicit_id_column_and_record_numbers(excel_csv):
    by_ward = read_inputs(excel_csv, text_column="report", id_column="ward")
    assert [(r.id, r.text) for r in by_ward] == [(f"Onkologie Süd {n}", t) for n, (_, t) in enumerate(ROWS)]
    no_ids = excel_csv.with_name("noid.csv")
    no_ids.write_bytes(b"\xef\xbb\xbfreport\r\n\"a\r\nb\"\r\nc\r\n")
    assert [(r.id, r.text) for r in read_inputs(no_ids, text_column="report")] == [("1", "a\r\nb"), ("2", "c")]


def test_jsonl_line_separators_inside_strings_stay_in_their_record(tmp_path):
    texts = ["before\u2028after and \u2029 and \x85 inside", "crlf file\r\nsecond line", "plain"]
    path = tmp_path / "in.jsonl"
    body = "".join(json.dumps({"id": f"r{i}", "text": t}, ensure_ascii=False) + "\r\n" for i, t in enumerate(texts))
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    assert "\u2028".encode() in path.read_bytes()  # written raw, not escaped
    recs = read_inputs(path)
    assert [(r.id, r.text) for r in recs] == [(f"r{i}", t) for i, t in enumerate(texts)]
    assert [r.where for r in recs] == [f"{path}:1", f"{path}:2", f"{path}:3"]


def test_json_ids_are_exact_strings(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 7, "text": "a"}\n{"id": "007", "text": "b"}\n\n{"text": "c", "patient_id": "P-1"}\n')
    assert [r.id for r in read_inputs(path)] == ["7", "007", "P-1"]
    arr = tmp_path / "in.json"
    arr.write_text('[{"report_id": "R1", "text": "x"}, {"report_id": "R2", "text": "y"}]')
    assert [(r.id, r.text) for r in read_inputs(arr)] == [("R1", "x"), ("R2", "y")]


@pytest.mark.parametrize(
    "content, match",
    [
        (b"id,text\r\n1,a\r\n,b\r\n", r"reports\.csv:3: empty id in 'id'"),
        (b"id,text\r\n1,a\r\n1,b\r\n", r"reports\.csv:3: duplicate id '1' \(first at .*reports\.csv:2\)"),
        (b"id,report\r\n1,a\r\n", r"reports\.csv:1: no column 'text'; columns are: id, report"),
        (b'id,text\r\n1,"never closed\r\n', r"reports\.csv:2: malformed CSV: unexpected end of data"),
        (b'id,text\r\n1,"closed"then more\r\n', r"reports\.csv:2: malformed CSV"),
        (b"id,text\r\n1,a,extra\r\n", r"reports\.csv:2: row has 3 field"),
        (b"id,text\r\n1,caf\xe9\r\n", r"reports\.csv:2: invalid UTF-8"),
    ],
)
def test_bad_csv_names_the_file_and_line(tmp_path, content, match):
    path = tmp_path / "reports.csv"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=match):
        read_inputs(path)


@pytest.mark.parametrize(
    "line, match",
    [
        ('{"id": null, "text": "a"}', r"in\.jsonl:2: null id in 'id'"),
        ('{"id": 1.5, "text": "a"}', r"in\.jsonl:2: id 'id' is a float"),
        ('{"id": "b", "body": "a"}', r"in\.jsonl:2: no 'text' field \(fields: id, body\)"),
        ('{"id": "b", "text": "a"', r"in\.jsonl:2: malformed JSON"),
        ('["a"]', r"in\.jsonl:2: expected a JSON object, got list"),
    ],
)
def test_bad_jsonl_names_the_file_and_line(tmp_path, line, match):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "text": "ok"}\n' + line + "\n")
    with pytest.raises(DataFormatError, match=match):
        read_inputs(path)


def test_non_string_json_texts_are_kept_for_the_job_runner(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "text": null}\n{"id": "b", "text": 3}\n')
    assert [r.text for r in read_inputs(path)] == [None, 3]


def test_paths(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        read_inputs(tmp_path / "none.csv")
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    with pytest.raises(InputError, match=r"unknown input type '\.parquet'; use \.txt, a folder"):
        read_inputs(tmp_path / "x.parquet")
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "b.txt").write_bytes(b"\xef\xbb\xbfsecond\r\nline")
    (folder / "a.txt").write_text("first")
    assert [(r.id, r.text) for r in read_inputs(folder)] == [("a", "first"), ("b", "second\r\nline")]


# ------------------------------------------------------------------------------ through `cancerllm extract`
@pytest.fixture
def recorded_texts(monkeypatch):
    """Every text handed to PhenotypeExtractor.extract_many by the command line, in order."""
    seen: list[str] = []
    original = PhenotypeExtractor.extract_many

    def spy(self, texts, **kwargs):
        seen.extend(texts)
        return original(self, texts, **kwargs)

    monkeypatch.setattr(PhenotypeExtractor, "extract_many", spy)
    return seen


@pytest.mark.parametrize("output", ["out.jsonl", "out.csv"])
def test_excel_csv_through_the_extract_command(tiny_model_dir, excel_csv, tmp_path, recorded_texts, output):
    out = tmp_path / output
    res = CliRunner().invoke(app, ["extract", str(excel_csv), "-o", str(out), "--model", str(tiny_model_dir),
                                   "-p", "grade", "--text-column", "report", "--batch-size", "2", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["inputs"] == len(ROWS) and summary["processed"] == len(ROWS) and summary["errors"] == 0
    # the model saw exactly the CSV's texts, in order: line breaks (CRLF), quotes, non-ASCII, padding
    assert recorded_texts == [t for _, t in ROWS]
    if output.endswith(".jsonl"):
        recs = read_results(out)
        assert list(recs) == [i for i, _ in ROWS]
        assert all(set(r) == {"id", "result"} and "grade" in r["result"] for r in recs.values())
        # the provenance of each result is the hash of exactly the text that was read
        for (_rid, text), rec in zip(ROWS, recs.values()):
            assert rec["result"]["provenance"]["input_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    else:
        table = read_records(out)
        assert [t["id"] for t in table] == [i for i, _ in ROWS]
        assert list(table[0])[:5] == ["id", "grade", "raw_grade", "error", "needs_review"]
        assert [t["input_sha256"] for t in table] == [hashlib.sha256(t.encode("utf-8")).hexdigest() for _, t in ROWS]


def test_jsonl_with_u2028_through_the_extract_command(tiny_model_dir, tmp_path, recorded_texts):
    texts = ["left breast\u2028G2", "right\r\nG3"]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"report_id": f"R{i}", "text": t}, ensure_ascii=False) + "\n"
                           for i, t in enumerate(texts)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["extract", str(src), "-o", str(out), "--model", str(tiny_model_dir), "-p", "grade",
                                   "-q"])
    assert res.exit_code == 0, res.output
    assert recorded_texts == texts and list(read_results(out)) == ["R0", "R1"]


def test_whitespace_rows_of_a_one_column_csv_are_records_not_blank_lines(tmp_path):
    # the job runner must see the whitespace-only report (and give it an error record), not lose it
    path = tmp_path / "one.csv"
    path.write_bytes(b"text\r\nG1\r\n   \r\n\r\nG2\r\n")
    assert [(r.id, r.text) for r in read_inputs(path)] == [("1", "G1"), ("2", "   "), ("3", "G2")]
    two = tmp_path / "two.csv"
    two.write_bytes(b"id,text\r\na,G1\r\n   \r\nb,G2\r\n")  # a line of spaces in a 2-column file is blank
    assert [(r.id, r.text) for r in read_inputs(two)] == [("a", "G1"), ("b", "G2")]
