import json

import pytest

from cancerllm.errors import DataFormatError, InputError
from cancerllm.jobs import ResultWriter, read_results


def test_write_and_resume(tmp_path):
    p = tmp_path / "out.jsonl"
    w = ResultWriter(p)
    w.write([{"id": "a", "result": 1}, {"id": "b", "result": 2}])
    again = ResultWriter(p)
    assert again.is_done("a") and again.is_done("b") and not again.is_done("c")
    again.write([{"id": "c", "result": 3}])
    assert list(read_results(p)) == ["a", "b", "c"]


def test_torn_last_line_is_cut_on_resume(tmp_path):
    p = tmp_path / "out.jsonl"
    ResultWriter(p).write([{"id": "a", "result": 1}])
    with open(p, "ab") as f:
        f.write(b'{"id": "b", "resu')  # killed mid-write
    w = ResultWriter(p)
    assert set(w.done) == {"a"}
    assert p.read_bytes().endswith(b"}\n")
    w.write([{"id": "b", "result": 2}])
    lines = p.read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["a", "b"]


def test_duplicates_and_damage_are_errors(tmp_path):
    p = tmp_path / "out.jsonl"
    w = ResultWriter(p)
    w.write([{"id": "a"}])
    with pytest.raises(InputError, match="twice"):
        w.write([{"id": "a"}])
    with pytest.raises(InputError, match="exists"):
        ResultWriter(p, resume=False)
    assert ResultWriter(p, overwrite=True).done == set()
    p.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(DataFormatError, match=r"out.jsonl:2"):
        ResultWriter(p)
    p.write_text('{"id": "a"}\n{"id": "a"}\n')
    with pytest.raises(DataFormatError, match="duplicate"):
        ResultWriter(p)
