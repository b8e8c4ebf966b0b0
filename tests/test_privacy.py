"""Offline and PHI-safe by default: no sockets, no note text in logs, warnings or errors."""

import logging
import socket
import warnings

import pytest
from typer.testing import CliRunner

from cancerllm import CancerLLM, InputError
from cancerllm.cli import app

CANARY = "ZZCANARY-Jane-Doe-MRN-0042ZZ"


def test_socket_connections_are_blocked_in_tests():
    with pytest.raises(RuntimeError, match="must not use the network"):
        socket.create_connection(("127.0.0.1", 9))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(RuntimeError):
            s.connect(("127.0.0.1", 9))
    finally:
        s.close()


def test_no_note_text_in_logs_warnings_or_errors(tiny_model_dir, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    long_text = f"{CANARY} left breast. " + "filler about margins and nodes. " * 200 + f"{CANARY} G3."
    texts = [f"{CANARY} invasive carcinoma, grade 2", long_text]
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        llm = CancerLLM.from_pretrained(tiny_model_dir, max_input_tokens=300)
        llm.phenotype_extractor(["grade"], max_new_tokens=4, progress=False).extract_many(texts)
        llm.phenotype_extractor(["grade"], max_new_tokens=4, chunking=False).extract(long_text)
        llm.diagnosis_generator(max_new_tokens=4).generate_many(texts, progress=False)
        for bad in ([f"{CANARY}\x00"], [texts[0], "   "], [texts[0], None]):
            with pytest.raises(InputError) as e:
                llm.phenotype_extractor(["grade"]).extract_many(bad, progress=False)
            seen.append(str(e.value))
    assert any("truncated" in str(w.message) for w in rec)  # the warnings did fire
    seen += [str(w.message) for w in rec] + [r.getMessage() for r in caplog.records]
    out = capsys.readouterr()
    seen += [out.out, out.err]
    assert all(CANARY not in s for s in seen)


def test_cli_output_streams_carry_no_note_text(tiny_model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(f'{{"id": "a", "text": "{CANARY} G1"}}\n{{"id": "b", "text": "{CANARY}\\u0000"}}\n')
    res = CliRunner().invoke(app, ["extract", str(src), "-o", str(tmp_path / "o.jsonl"), "--model",
                                   str(tiny_model_dir), "-p", "grade"])
    assert res.exit_code == 0, res.output
    assert CANARY not in res.output
    assert CANARY not in (tmp_path / "o.jsonl").read_text().split('"b"')[1]  # the error record


def test_text_is_quoted_only_with_the_explicit_opt_in(monkeypatch):
    from cancerllm.tasks._common import LOG_TEXT_ENV, check_text

    with pytest.raises(InputError) as e:
        check_text(f"{CANARY}\x00", "row 0")
    assert CANARY not in str(e.value)
    monkeypatch.setenv(LOG_TEXT_ENV, "1")
    with pytest.raises(InputError) as e:
        check_text(f"{CANARY}\x00", "row 0")
    assert CANARY in str(e.value)


def test_library_has_no_network_client_code():
    """No module of the package imports a network client (the only network access is transformers' own
    hub download, reached only when a user names an uncached hub id)."""
    import re
    from pathlib import Path

    import cancerllm

    pattern = re.compile(r"^\s*(import|from)\s+(requests|httpx|urllib3|aiohttp|urllib\.request|http\.client|socket)\b",
                         re.M)
    offenders = [str(p) for p in Path(cancerllm.__file__).parent.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
