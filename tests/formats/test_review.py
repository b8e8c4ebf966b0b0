"""The HTML review page: escaping, evidence highlights on Python offsets (overlaps, non-ASCII, emoji, CRLF),
review marks, no external references, the `review` command, and - in a real headless Chromium - what the
browser's DOM holds after the page's script ran, keyboard navigation and a screenshot."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cancerllm.cli import app
from cancerllm.errors import InputError
from cancerllm.evidence import EvidenceIndex
from cancerllm.formats.review import review_html, write_review
from cancerllm.schema import AnswerDetail, ItemDetail, PhenotypeResult

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# ------------------------------------------------------------------------------------------------ samples
REPORT_1 = (
    "SURGICAL PATHOLOGY REPORT\r\n"
    "Specimen: Left breast, upper outer quadrant, lumpectomy.\r\n"
    "\r\n"
    "DIAGNOSIS:\r\n"
    "  Invasive ductal carcinoma, Nottingham grade 2 (G2).\r\n"
    "  Tumor size: 2.3 cm in greatest dimension.\r\n"
    "  Margins: negative; closest margin 0.4 cm (anterior).\r\n"
    "\r\n"
    "IMMUNOHISTOCHEMISTRY:\r\n"
    "  ER positive (95%), PR positive (40%), HER2 negative (IHC 1+).\r\n"
    "\r\n"
    "Pathologic stage: pT2 pN0 (0/3 sentinel nodes) \u2014 AJCC 8th edition.\r\n"
)
REPORT_2 = (
    "Right upper lobe, wedge resection:\n"
    "Adenocarcinoma, acinar predominant, moderately differentiated.\n"
    "Tumour measures 1.8 x 1.2 cm; visceral pleura not involved (< 1 mm from surface).\n"
    "pT1b N0.\n"
)
REPORT_3 = "Left breast core biopsy: invasive lobular carcinoma, grade 3. Receptor studies pending.\n"
TRICKY = (
    "<b>Größe</b> & <i>Grad</i>: G3 \U0001f600 \U0001d50a\r\n"
    'Seite: links\r\rSeitenlokalisation: linke Brust oben au\u00dfen</script><!-- "x" -->\r\n'
    "ER+ & PR\u2212; Ki-67 \u2248 30 %\n"
)


def _detail(text, values, confs, *, status="answered", conf=None, review=False):
    index = EvidenceIndex(text)
    items = []
    for v, c in zip(values, confs):
        span = index.find(v)
        items.append(
            ItemDetail(
                value=v,
                raw=v,
                span=(span.start, span.end) if span.found else None,
                match=span.match,
                confidence=c,
                needs_review=not span.found,
            )
        )
    return AnswerDetail(
        status=status, items=items, confidence=conf, needs_review=review or any(i.needs_review for i in items)
    )


def _result(rid, text, answers):
    res = PhenotypeResult(id=rid)
    for name, (values, confs, conf) in answers.items():
        res.details[name] = _detail(
            text, values, confs, conf=conf, status="answered" if values else "not_relevant"
        )
        res.set(name, values or None)
        res.raw[name] = "{" + ", ".join(values) + "}" if values else "Not relevant"
    return res


def sample():
    """Three realistic (invented) reports: results with details, one flat `extract` record, one error."""
    r1 = _result(
        "TCGA-A1-0001",
        REPORT_1,
        {
            "tumor_size": (["2.3cm"], [0.91], 0.91),
            "histological_type": (["invasive ductal carcinoma"], [0.88], 0.88),
            "receptors": (["ER", "PR", "HER2"], [0.98, 0.97, 0.96], 0.95),
            "receptor_status": (["positive", "positive", "negative"], [0.93, 0.90, 0.94], 0.90),
            "laterality": (["left"], [0.97], 0.97),
            "stage": (["IIA"], [0.41], 0.41),
            "tumor_location": (["left breast, upper outer quadrant"], [0.62], 0.62),
            "grade": (["G2"], [0.86], 0.86),
        },
    )
    for item, after in zip(
        r1.details["receptor_status"].items, ("ER ", "PR ", "HER2 ")
    ):  # the look-up takes the
        start = REPORT_1.index(after + item.value) + len(after)  # first "positive"; an
        item.span = (start, start + len(item.value))  # extractor may do better
    r2 = _result(
        "TCGA-B2-0002",
        REPORT_2,
        {
            "tumor_size": (["1.8 cm"], [0.55], 0.55),
            "histological_type": (["adenocarcinoma"], [0.93], 0.93),
            "receptors": ([], [], 0.97),
            "laterality": (["right"], [0.99], 0.99),
            "stage": (["pT1b N0"], [0.74], 0.74),
            "grade": (["moderately differentiated"], [0.81], 0.81),
        },
    )
    r3 = {
        "id": "TCGA-C3-0003",
        "result": {
            "histological_type": ["invasive lobular carcinoma"],
            "grade": ["3"],
            "laterality": ["left"],
            "receptor_status": None,
        },
    }
    r4 = {"id": "TCGA-D4-0004", "error": {"type": "InputError", "message": "the text is empty"}}
    texts = {"TCGA-A1-0001": REPORT_1, "TCGA-B2-0002": REPORT_2, "TCGA-C3-0003": REPORT_3, "TCGA-D4-0004": ""}
    return [r1, r2, r3, r4], texts


def tricky():
    """Overlapping (crossing, nested, identical, adjacent) spans over non-ASCII, emoji and CR/CRLF text."""
    t = TRICKY
    g3 = t.index("G3")
    links = t.index("links")
    loc = t.index("linke Brust")
    res = PhenotypeResult(id="tricky & <id>")
    res.details["grade"] = AnswerDetail(
        status="answered",
        items=[
            ItemDetail(value="G3", span=(g3, g3 + 2), match="exact", confidence=0.9),
            ItemDetail(value="G3 \U0001f600 \U0001d50a", span=(g3, g3 + 6), match="fuzzy", confidence=0.2),
        ],
    )
    res.details["laterality"] = AnswerDetail(
        status="answered",
        items=[
            ItemDetail(
                value='links"<', span=(links, links + 13), match="fuzzy", confidence=0.7
            ),  # crosses CR CR
            ItemDetail(value="linke", span=(loc, loc + 5), match="exact", confidence=0.8),
        ],
    )
    res.details["tumor_location"] = AnswerDetail(
        status="answered",
        items=[
            ItemDetail(
                value="Brust oben außen", span=(loc + 6, t.index("</script>")), match="exact", confidence=0.6
            ),
            ItemDetail(
                value="linke Brust", span=(loc, loc + 11), match="fuzzy", confidence=0.6
            ),  # contains linke
            ItemDetail(value="x", span=(3, 3), match="fuzzy", confidence=0.5),
        ],
    )  # empty span
    res.details["stage"] = AnswerDetail(
        status="answered",
        items=[
            ItemDetail(value="Größe</b> & <i>", span=(3, 16), match="exact", confidence=0.5),  # crosses tags
            ItemDetail(
                value="</b> & <i>Grad", span=(8, 20), match="exact", confidence=0.5
            ),  # crosses the first
            ItemDetail(value="Größe", span=(3, 8), match="exact", confidence=0.5),  # identical start
            ItemDetail(value="end", span=(len(t) - 5, len(t)), match="exact", confidence=0.5),
        ],
    )  # at the end
    res.details["receptors"] = AnswerDetail(
        status="answered",
        items=[ItemDetail(value="T2", match="not_found", confidence=0.3, needs_review=True)],
        needs_review=True,
    )
    return res, t


# ------------------------------------------------------------------------------------- a small DOM reader
class _Dom(HTMLParser):
    """Text of each report's ``pre.text`` and of each span's ``<mark>`` pieces, checking the tags nest."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.reports: dict[str, str] = {}
        self.marks: dict[str, dict] = {}
        self._report = None
        self._in_pre = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("br", "meta"):
            return
        self.stack.append((tag, a))
        if tag == "section":
            self._report = a["data-id"]
        if tag == "pre" and a.get("class") == "text":
            self._in_pre = True
            self.reports[self._report] = ""
        if tag == "mark":
            rec = self.marks.setdefault(
                a["data-span"], {**a, "text": "", "pieces": 0, "report": self._report}
            )
            rec["pieces"] += 1

    def handle_endtag(self, tag):
        if tag in ("br", "meta"):
            return
        open_tag, _ = self.stack.pop()
        assert open_tag == tag, f"</{tag}> closes <{open_tag}>"
        if tag == "pre":
            self._in_pre = False

    def handle_data(self, data):
        if self._in_pre:
            self.reports[self._report] += data
            for tag, a in self.stack:
                if tag == "mark":
                    self.marks[a["data-span"]]["text"] += data


def _dom(page):
    d = _Dom()
    d.feed(page)
    d.close()
    assert not d.stack
    return d


# ------------------------------------------------------------------------------------------------ unit tests
def test_report_text_is_escaped_and_kept_exactly():
    res, text = tricky()
    page = review_html([res], [text])
    assert "<b>Größe" not in page and "</script><!--" not in page
    assert "&lt;b&gt;" in page and '&lt;/script&gt;&lt;!-- "x" --&gt;' in page
    assert "\r" not in page  # CR written as &#13; (an HTML parser would turn CR / CRLF into LF)
    assert 'data-id="tricky &amp; &lt;id&gt;"' in page and 'data-value="links&quot;&lt;"' in page
    dom = _dom(page)
    assert dom.reports == {"tricky & <id>": text}


def test_overlapping_spans_nest_and_each_mark_is_its_slice():
    res, text = tricky()
    dom = _dom(review_html([res], [text]))
    spans = [
        (it.value, it.span)
        for d in res.details.values()
        for it in d.items
        if it.span and it.span[0] < it.span[1]
    ]
    assert len(dom.marks) == len(spans) == 10
    got = {(m["data-value"], (int(m["data-start"]), int(m["data-end"]))): m for m in dom.marks.values()}
    for value, (s, e) in spans:
        mark = got[(value, (s, e))]
        assert mark["text"] == text[s:e]
    assert max(m["pieces"] for m in dom.marks.values()) > 1  # crossing spans were split into pieces
    assert sum(m["pieces"] for m in dom.marks.values()) > len(spans)


def test_non_ascii_emoji_and_crlf_offsets_are_python_offsets():
    text = "Größe 😀 2,5 cm\r\nGrade: G3 \U0001d50a links\r\n"
    res = PhenotypeResult(id="x")
    res.details["grade"] = _detail(text, ["G3"], [0.9])
    res.details["laterality"] = _detail(text, ["links"], [0.9])
    dom = _dom(review_html([res], {"x": text}))
    by_value = {m["data-value"]: m for m in dom.marks.values()}
    for value in ("G3", "links"):
        m = by_value[value]
        assert (int(m["data-start"]), int(m["data-end"])) == (
            text.index(value),
            text.index(value) + len(value),
        )
        assert m["text"] == value
    assert dom.reports["x"] == text


def test_not_found_and_low_confidence_are_marked_for_review():
    text = "Invasive carcinoma, grade 2, right breast."
    flat = {"id": "a", "result": {"grade": ["G4"], "laterality": ["right"], "stage": None}}
    page = review_html([flat], {"a": text})
    assert "no evidence in the report" in page and 'data-review="1"' in page
    dom = _dom(page)
    assert [m["data-value"] for m in dom.marks.values()] == ["right"]  # G4 has nothing to highlight
    assert re.search(
        r'<tr class="flag"[^>]*><td class="ph[^>]*>.*?Grade.*?G4 <span class="badge review">', page
    )
    assert "Not relevant" in page  # stage asked, answered "Not relevant"

    res = PhenotypeResult(id="b")
    res.details["grade"] = _detail(text, ["2"], [0.3], conf=0.3)
    assert 'data-review="0"' in review_html([res], {"b": text})  # no threshold, no mark from the extractor
    page = review_html([res], {"b": text}, min_confidence=0.5)
    assert 'class="badge review">review</span>' in page and '<td class="conf low"' in page
    assert "confidence below 50% is marked" in page
    res.details["grade"].items[0].needs_review = True  # the extractor's own mark is kept without a threshold
    assert 'data-review="1"' in review_html([res], {"b": text})
    with pytest.raises(InputError, match="between 0 and 1"):
        review_html([res], {"b": text}, min_confidence=1.5)


def test_no_external_references_and_a_strict_csp():
    results, texts = sample()
    page = review_html(results, texts)
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert csp and csp.group(1).startswith(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
    )
    rest = page.replace(csp.group(0), "")
    assert not re.search(r"https?:|//|\burl\(|@import|<link\b|<img\b|<iframe\b|\bsrc=|<object\b", rest, re.I)


def test_join_by_id_order_and_records_of_every_shape():
    results, texts = sample()
    page = review_html(results, texts, title="Breast & lung <QA>")
    assert "<title>Breast &amp; lung &lt;QA&gt;</title>" in page
    assert re.findall(
        r'<section class="report" id="report-\d+" data-index="\d+" data-id="([^"]+)"', page
    ) == ["TCGA-A1-0001", "TCGA-B2-0002", "TCGA-C3-0003", "TCGA-D4-0004"]
    assert "Not processed:</strong> the text is empty" in page
    dom = _dom(page)
    assert {m["data-value"] for m in dom.marks.values() if m["report"] == "TCGA-C3-0003"} == {
        "invasive lobular carcinoma",
        "3",
        "left",
    }  # the flat record's evidence, looked up from its values
    # a model_dump and a list of texts in order work the same
    dumped = [results[0].model_dump(mode="json")]
    assert (
        _dom(review_html(dumped, [REPORT_1])).marks.keys()
        == _dom(review_html(results[:1], texts)).marks.keys()
    )
    with pytest.raises(InputError, match="no report with id 'TCGA-B2-0002'"):
        review_html(results, {"TCGA-A1-0001": REPORT_1})
    with pytest.raises(InputError, match="2 results but 1 texts"):
        review_html(results[:2], [REPORT_1])
    with pytest.raises(InputError, match="two results with id"):
        review_html([results[0], results[0]], texts)


def test_text_changed_since_extraction_is_flagged():
    results, texts = sample()
    res = results[0].model_copy(deep=True)
    from cancerllm.tasks._answers import provenance

    res.provenance = provenance(None, REPORT_1, {})
    assert (
        "banner" not in review_html([res], {res.id: REPORT_1}).split("<main>")[1].split('class="legend"')[0]
    )
    short = REPORT_1[:200]
    page = review_html([res], {res.id: short})
    assert "differs from the one the answers were extracted from" in page
    assert "lie outside this report" in page  # spans past its end were looked up again
    dom = _dom(page)
    assert all(m["text"] == short[int(m["data-start"]) : int(m["data-end"])] for m in dom.marks.values())


def test_errors_never_quote_report_text():
    canary = "ZZCANARY-Jane-Doe-MRN-0042ZZ"
    bad = {
        "id": "a",
        "result": {"grade": ["G2"], "details": {"grade": {"status": "maybe", "items": [{"value": canary}]}}},
    }
    with pytest.raises(InputError) as e:
        review_html([bad], {"a": canary})
    assert canary not in str(e.value) and "details of 'grade'" in str(e.value)


def test_write_review_counts(tmp_path):
    results, texts = sample()
    stats = write_review(results, texts, tmp_path / "sub" / "review.html", min_confidence=0.5)
    assert stats.path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (stats.reports, stats.needs_review, stats.not_found) == (4, 3, 2)  # stage IIA, 1.8 cm; D4 failed


def test_results_of_a_real_extractor(tiny_model_dir):
    from cancerllm import CancerLLM

    texts = ["Invasive ductal carcinoma, grade 2, left breast.", "Right lung adenocarcinoma, G3 \U0001f600."]
    ex = CancerLLM.from_pretrained(tiny_model_dir).phenotype_extractor(
        ["grade", "laterality"], max_new_tokens=6, progress=False
    )
    results = ex.extract_many(texts, as_dataframe=False)
    dom = _dom(review_html(results, texts))
    spans = [it.span for r in results for d in r.details.values() for it in d.items if it.span]
    assert len(dom.marks) == len(spans)
    assert list(dom.reports.values()) == texts


# ------------------------------------------------------------------------------------------------ the CLI
def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_review_command(tmp_path):
    results, texts = sample()
    rows = [r.model_dump(mode="json") if hasattr(r, "model_dump") else r for r in results]
    rows = [{"id": r["id"], "result": r} if "details" in r else r for r in rows]
    res_path = _write_jsonl(tmp_path / "results.jsonl", rows)
    rep_path = _write_jsonl(
        tmp_path / "reports.jsonl",
        [{"report_id": k, "report": v} for k, v in texts.items()]
        + [{"report_id": "extra", "report": "not extracted"}],
    )
    out = tmp_path / "review.html"
    res = runner.invoke(
        app,
        [
            "review",
            str(res_path),
            str(rep_path),
            "-o",
            str(out),
            "--text-column",
            "report",
            "--id-column",
            "report_id",
            "--min-confidence",
            "0.5",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert (
        summary["reports"] == 4 and summary["needs_review"] == 3 and summary["reports_without_results"] == 1
    )
    page = out.read_text(encoding="utf-8")
    assert _dom(page).reports["TCGA-A1-0001"] == REPORT_1 and "TCGA-D4-0004" in page
    assert REPORT_1.splitlines()[1] not in res.output  # PHI stays in the page

    folder = tmp_path / "txt"  # a folder of .txt files: ids are the file stems
    folder.mkdir()
    (folder / "r1.txt").write_bytes(b"Left breast, G3.\r\n")
    res_path2 = _write_jsonl(tmp_path / "r.jsonl", [{"id": "r1", "result": {"grade": ["G3"]}}])
    res = runner.invoke(app, ["review", str(res_path2), str(folder), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert _dom(out.read_text(encoding="utf-8")).reports == {"r1": "Left breast, G3.\r\n"}


@pytest.mark.parametrize("case", ["missing_report", "bad_output", "no_results", "csv_results", "bad_conf"])
def test_review_command_bad_input_exits_2(tmp_path, case):
    res_path = _write_jsonl(tmp_path / "results.jsonl", [{"id": "a", "result": {"grade": ["G3"]}}])
    rep_path = _write_jsonl(tmp_path / "reports.jsonl", [{"id": "b", "text": "G3"}])
    out = tmp_path / "review.html"
    args = {
        "missing_report": [str(res_path), str(rep_path), "-o", str(out)],
        "bad_output": [str(res_path), str(rep_path), "-o", str(tmp_path / "review.txt")],
        "no_results": [str(tmp_path / "nope.jsonl"), str(rep_path), "-o", str(out)],
        "csv_results": [str(tmp_path / "results.csv"), str(rep_path), "-o", str(out)],
        "bad_conf": [str(res_path), str(rep_path), "-o", str(out), "--min-confidence", "2"],
    }[case]
    (tmp_path / "results.csv").write_text("id,grade\na,G3\n")
    res = runner.invoke(app, ["review", *args])
    assert res.exit_code == 2, res.output
    assert not out.exists()
    if case == "missing_report":
        assert "no report with id 'a'" in res.output


# ------------------------------------------------------------------------------------ a real headless browser
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=(
        f"{CHROMIUM} not found: install Debian's Chromium (apt-get install -y chromium) to run the browser tests"
    ),
)


def _chromium(tmp_path, url, *args):
    profile = tmp_path / "profile"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        *args,
        url,
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)}
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _selftest(tmp_path, page, fragment):
    path = tmp_path / "review.html"
    path.write_text(page, encoding="utf-8", newline="")
    dump = _chromium(tmp_path, path.as_uri() + fragment, "--dump-dom")
    found = re.search(r'<pre id="selftest-result" hidden="">(.*?)</pre>', dump, re.S)
    assert found, "the page's self-test did not run"

    class _Text(HTMLParser):
        text = ""

        def handle_data(self, data):
            self.text += data

    p = _Text(convert_charrefs=True)
    p.feed(found.group(1))
    p.close()
    return json.loads(p.text)


@needs_chromium
def test_in_chromium_each_highlight_is_its_evidence_and_keys_navigate(tmp_path):
    results, texts = sample()
    res, text = tricky()
    results.append(res)
    texts[res.id] = text
    out = _selftest(tmp_path, review_html(results, texts, min_confidence=0.5), "#selftest")
    assert out["violations"] == []  # nothing was blocked: nothing tried to load
    assert out["reports"] == 5 and out["initial"] == 0
    assert [t["text"] for t in out["texts"]] == [
        texts[t["report"]] for t in out["texts"]
    ]  # CR, emoji and all
    expected = [
        (r.id if hasattr(r, "id") else r["id"], it)
        for r in results
        if hasattr(r, "details")
        for d in r.details.values()
        for it in d.items
        if it.span and it.span[0] < it.span[1]
    ]
    assert len(out["marks"]) == len(expected) + 3  # + the flat record's three values
    for m in out["marks"]:
        assert m["text"] == texts[m["report"]][m["start"] : m["end"]], m
    assert {m["phenotype"] for m in out["marks"]} >= {"grade", "stage", "laterality", "tumor_location"}
    assert any(m["pieces"] > 1 for m in out["marks"])
    stage = next(m for m in out["marks"] if m["report"] == "TCGA-B2-0002" and m["phenotype"] == "grade")
    assert (stage["value"], stage["match"], stage["confidence"]) == (
        "moderately differentiated",
        "exact",
        "0.8100",
    )
    # keys: j j k n p -> 1 2 1 2 1; right, left, left, left -> 2 1 0 0 (clamped); r -> the next report to review
    nav = [(step["key"], step["current"]) for step in out["nav"]]
    assert nav[:9] == [
        ("j", 1),
        ("j", 2),
        ("k", 1),
        ("n", 2),
        ("p", 1),
        ("ArrowRight", 2),
        ("ArrowLeft", 1),
        ("ArrowLeft", 0),
        ("ArrowLeft", 0),
    ]
    assert nav[9] == ("r", 1) and nav[10] == ("x", 1)  # report 2 (1.8 cm: no evidence) needs review
    for step in out["nav"]:
        assert step["counter"] == f"Report {step['current'] + 1} of 5"
        assert step["visible"] == [out["texts"][step["current"]]["report"]]  # exactly one report shown


@needs_chromium
def test_in_chromium_a_deep_link_opens_that_report(tmp_path):
    results, texts = sample()
    out = _selftest(tmp_path, review_html(results, texts), "#report=3&selftest")
    assert out["initial"] == 2 and out["nav"][0]["current"] == 3


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@needs_chromium
def test_in_chromium_screenshot(tmp_path):
    """Renders the sample page; with CANCERLLM_UPDATE_SCREENSHOT=1 it also refreshes docs/img/review.png."""
    results, texts = sample()
    page = tmp_path / "review.html"
    write_review(results, texts, page, title="Pathology review \u2014 breast and lung", min_confidence=0.5)
    shot = tmp_path / "review.png"
    _chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1280,900", "--hide-scrollbars")
    assert _png_size(shot) == (1280, 900)
    assert shot.stat().st_size > 30_000  # a rendered page, not a blank one
    if os.environ.get("CANCERLLM_UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "img" / "review.png")
