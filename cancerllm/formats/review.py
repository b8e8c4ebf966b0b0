"""A self-contained HTML page for checking extracted answers against their reports.

:func:`review_html` renders each report with the evidence of every answer highlighted (one colour per
phenotype), beside a table of the answers with their kind of match and confidence.  Answers a clinician
should look at - an item with no evidence in the report (a possible hallucination), a confidence below
``min_confidence``, anything the extractor marked ``needs_review`` - carry a "review" badge.  The page is
one file: inline style and script, a Content-Security-Policy that forbids fetching anything, no fonts,
images or links outside it.  Keys: ``j`` / ``n`` / right arrow for the next report, ``k`` / ``p`` / left
arrow for the previous one, ``r`` for the next report needing review; ``#report=3`` opens the third.

The report text (patient information) is written into the page and nowhere else: nothing is logged, and
error messages name result ids, never text.  Highlights are cut in Python on the result's offsets (Python
string indices, i.e. code points), so non-ASCII text, emoji and CRLF line ends come out exactly as
``text[start:end]``; overlapping evidence is split into properly nested ``<mark>`` pieces.

Example:
    >>> from cancerllm.formats.review import review_html
    >>> page = review_html([{"id": "r1", "result": {"grade": ["G3"]}}], {"r1": "Grade: G3 <high>."})
    >>> 'data-value="G3"' in page and "&lt;high&gt;" in page
    True
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._review_assets import CSP, HEAD_SCRIPT, PALETTE, SCRIPT, STYLE

__all__ = ["ReviewStats", "review_html", "write_review"]

_BUILTINS = (
    "tumor_size",
    "histological_type",
    "receptors",
    "receptor_status",
    "laterality",
    "stage",
    "tumor_location",
    "grade",
)
_META_KEYS = {"raw", "id", "error", "details", "provenance", "custom"}
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class _Item:
    value: str
    span: tuple[int, int] | None
    match: str
    confidence: float | None
    review: bool
    chunk: int = 0
    key: str = ""


@dataclass
class _Answer:
    name: str
    status: str
    items: list[_Item]
    alternatives: list[_Item]
    confidence: float | None
    review: bool


@dataclass
class _Report:
    id: str
    text: str
    answers: list[_Answer] = field(default_factory=list)
    banners: list[str] = field(default_factory=list)
    error: str | None = None
    meta: str = ""

    @property
    def review(self) -> bool:
        return bool(self.error or self.banners or any(a.review for a in self.answers))

    @property
    def review_count(self) -> int:
        return sum(a.review for a in self.answers)


@dataclass(frozen=True)
class ReviewStats:
    """What :func:`write_review` wrote.

    Attributes:
        path: the page.
        reports: reports on the page.
        needs_review: reports with at least one answer to check (or an error).
        not_found: answer items without evidence in their report.
    """

    path: Path
    reports: int
    needs_review: int
    not_found: int


# ------------------------------------------------------------------------------------------- reading results
def _label(name: str) -> str:
    return name.replace("_", " ").strip().capitalize() or name


def _as_items(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(v) for v in value if v is not None and str(v).strip()]


def _unpack(result: Any, n: int) -> tuple[str | None, Mapping[str, Any], str | None]:
    """(id, the result's fields, error message) of a PhenotypeResult, a ``model_dump`` or a job record."""
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    if not isinstance(result, Mapping):
        raise InputError(
            f"result {n}: expected a PhenotypeResult or a JSON record, got {type(result).__name__}"
        )
    rid = result.get("id")
    err = result.get("error")
    if "result" in result or isinstance(
        err, Mapping
    ):  # a line of `cancerllm extract`: {"id", "result"|"error"}
        fields = result.get("result") or {}
        if not isinstance(fields, Mapping):
            raise InputError(f"result {n}: 'result' must be an object, got {type(fields).__name__}")
        err = err.get("message") or err.get("type") if isinstance(err, Mapping) else err
        err = err or fields.get("error")
    else:
        fields = result
    return (None if rid is None else str(rid)), fields, (str(err) if err else None)


def _validate_details(raw: Mapping[str, Any], rid: str) -> dict[str, Any]:
    from pydantic import ValidationError

    from ..schema import AnswerDetail

    out = {}
    for name, det in raw.items():
        try:
            out[name] = det if isinstance(det, AnswerDetail) else AnswerDetail.model_validate(det)
        except ValidationError as exc:  # name the place, never the values (they may quote the report)
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputError(
                f"result {rid!r}: details of {name!r} are not valid ({where}: {first['msg']})"
            ) from None
    return out


def _low(confidence: float | None, threshold: float | None) -> bool:
    return threshold is not None and confidence is not None and confidence < threshold


def _answers(
    fields: Mapping[str, Any], text: str, rid: str, threshold: float | None, banners: list[str]
) -> list[_Answer]:
    from ..evidence import EvidenceIndex

    index = EvidenceIndex(text)
    details = fields.get("details") or {}
    out: list[_Answer] = []
    if details:
        bad = 0
        for name, det in _validate_details(details, rid).items():

            def item(it: Any) -> _Item:
                nonlocal bad
                span, match = (tuple(it.span) if it.span is not None else None), it.match
                if span is not None and not 0 <= span[0] <= span[1] <= len(text):
                    bad += 1
                    found = index.find(it.value)
                    span, match = (found.start, found.end) if found.found else None, found.match
                rev = it.needs_review or match == "not_found" or _low(it.confidence, threshold)
                return _Item(it.value, span, match, it.confidence, rev, it.chunk)

            items = [item(it) for it in det.items]
            alts = [item(it) for it in det.alternatives]
            review = det.needs_review or _low(det.confidence, threshold) or any(i.review for i in items)
            out.append(_Answer(name, det.status, items, alts, det.confidence, review))
        if bad:
            banners.append(
                f"{bad} stored evidence position(s) lie outside this report's text: they were looked "
                "up again from the answer values. Is this the text the answers were extracted from?"
            )
    else:  # a record without details (e.g. `cancerllm extract` output): evidence looked up from the values
        values = {k: v for k, v in fields.items() if k not in _META_KEYS}
        values.update(fields.get("custom") or {})
        asked = list(fields.get("raw") or values)
        for name in asked:
            items = []
            for value in _as_items(values.get(name)):
                found = index.find(value)
                span = (found.start, found.end) if found.found else None
                items.append(_Item(value, span, found.match, None, not found.found))  # type: ignore[arg-type]
            out.append(
                _Answer(
                    name,
                    "answered" if items else "not_relevant",
                    items,
                    [],
                    None,
                    any(i.review for i in items),
                )
            )
    order = {n: i for i, n in enumerate(_BUILTINS)}
    out.sort(key=lambda a: order.get(a.name, len(order)))  # built-ins in their usual order, then custom ones
    return out


def _meta(fields: Mapping[str, Any]) -> str:
    prov = fields.get("provenance")
    if not isinstance(prov, Mapping):
        return ""
    parts = [
        f"model {prov['model']}" if prov.get("model") else "",
        f"cancerllm {prov['library_version']}" if prov.get("library_version") else "",
        f"extracted {prov['created']}" if prov.get("created") else "",
    ]
    return " \u00b7 ".join(p for p in parts if p)


def _reports(
    results: Iterable[Any], texts: Mapping[str, Any] | Sequence[Any], threshold: float | None
) -> list[_Report]:
    results = list(results)
    if isinstance(texts, (str, bytes)):
        raise InputError("texts must be a list of report texts or a mapping {id: text}, not a single string")
    by_id = isinstance(texts, Mapping)
    if not by_id and len(texts) != len(results):
        raise InputError(
            f"{len(results)} results but {len(texts)} texts; pass one text per result, in order, or "
            "a mapping {id: text}"
        )
    out: list[_Report] = []
    seen: set[str] = set()
    for n, result in enumerate(results):
        rid, fields, error = _unpack(result, n + 1)
        if by_id:
            if rid is None:
                raise InputError(
                    f"result {n + 1} has no id; pass the texts as a list in the order of the results"
                )
            if rid not in texts:
                raise InputError(
                    f"no report with id {rid!r} for its result; check the reports file and --id-column"
                )
            text = texts[rid]  # type: ignore[index]
        else:
            text = texts[n]  # type: ignore[index]
        rid = rid if rid is not None else str(n + 1)
        if rid in seen:
            raise InputError(f"two results with id {rid!r}; ids must be unique")
        seen.add(rid)
        banners: list[str] = []
        if not isinstance(text, str):
            banners.append(f"the report text is not a string ({type(text).__name__}); nothing to show")
            text = ""
        prov = fields.get("provenance")
        want = prov.get("input_sha256") if isinstance(prov, Mapping) else None
        if want and want != hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest():
            banners.append(
                "this text differs from the one the answers were extracted from (its SHA-256 does not "
                "match the result's provenance): evidence may not line up"
            )
        answers = _answers(fields, text, rid, threshold, banners)
        out.append(_Report(rid, text, answers, banners, error, _meta(fields)))
    return out


# ----------------------------------------------------------------------------------------------- rendering
def _attr(value: Any) -> str:
    return html.escape(_SURROGATE.sub("\ufffd", str(value)), quote=True)


def _escape_text(text: str, start: int, end: int) -> str:
    """``text[start:end]`` as HTML text whose DOM text is exactly that slice (CR kept as ``&#13;``: an HTML
    parser turns a literal CR or CRLF into LF)."""
    chunk = text[start:end]
    if not chunk:
        return ""
    chunk = _SURROGATE.sub("\ufffd", chunk).replace("\x00", "\ufffd")  # one code point each: offsets hold
    parts = chunk.split("\r")
    pieces = [html.escape(parts[0], quote=False)]
    pos = start + len(parts[0])  # the index in text of the CR before the next part
    for part in parts[1:]:
        pieces.append(
            "&#13;" if text[pos + 1 : pos + 2] == "\n" else "&#13;<br>"
        )  # a lone CR still breaks the line
        pieces.append(html.escape(part, quote=False))
        pos += 1 + len(part)
    return "".join(pieces)


def _open_tag(item: _Item, answer: _Answer, colour: int) -> str:
    cls = f"ev p{colour} {item.match}" + (" review" if item.review else "")
    conf = "" if item.confidence is None else f"{item.confidence:.4f}"
    tip = f"{_label(answer.name)}: {item.value} ({item.match}" + (
        f", {item.confidence:.0%})" if item.confidence is not None else ")"
    )
    assert item.span is not None
    return (
        f'<mark class="{cls}" data-span="{item.key}" data-phenotype="{_attr(answer.name)}" '
        f'data-value="{_attr(item.value)}" data-match="{item.match}" data-confidence="{conf}" '
        f'data-review="{int(item.review)}" data-start="{item.span[0]}" data-end="{item.span[1]}" '
        f'title="{_attr(tip)}">'
    )


def _highlight(text: str, marks: list[tuple[_Item, _Answer, int]]) -> str:
    """The text with a ``<mark>`` per evidence span; overlapping spans are closed and re-opened so the tags
    nest (each span may become several adjacent pieces sharing its ``data-span``)."""
    spans = [
        (it.span[0], it.span[1], k, it, ans, col)
        for k, (it, ans, col) in enumerate(marks)
        if it.span is not None and it.span[0] < it.span[1]
    ]
    starts: dict[int, list[Any]] = {}
    for s in spans:
        starts.setdefault(s[0], []).append(s)
    cuts = sorted({0, len(text), *(s[0] for s in spans), *(s[1] for s in spans)})
    out: list[str] = []
    stack: list[Any] = []
    pos = 0
    for cut in cuts:
        if cut > pos:
            out.append(_escape_text(text, pos, cut))
            pos = cut
        ending = [i for i, s in enumerate(stack) if s[1] == cut]
        reopen: list[Any] = []
        if ending:
            reopen = [s for s in stack[ending[0] :] if s[1] != cut]
            out.append("</mark>" * (len(stack) - ending[0]))
            del stack[ending[0] :]
        for s in sorted(reopen + starts.get(cut, []), key=lambda s: (-s[1], s[2])):  # longest outside
            out.append(_open_tag(s[3], s[4], s[5]))
            stack.append(s)
    out.append("</mark>" * len(stack))
    return "".join(out)


def _conf_cell(conf: float | None, threshold: float | None) -> str:
    if conf is None:
        return '<td class="conf muted">\u2014</td>'
    cls = "conf low" if _low(conf, threshold) else "conf"
    return f'<td class="{cls}" data-confidence="{conf:.4f}">{conf:.0%}</td>'


_REVIEW = '<span class="badge review">review</span>'


def _item_row(item: _Item, threshold: float | None, *, alt: bool = False) -> tuple[str, str, str]:
    value = _attr(item.value)
    value = f'<span class="alt">other chunk: {value}</span>' if alt else value
    if item.match == "not_found":
        kind = '<td class="ev-kind nf">no evidence in the report</td>'
    else:
        kind = (
            f'<td class="ev-kind">{item.match}'
            + (f' <span class="muted">chunk {item.chunk + 1}</span>' if item.chunk else "")
            + "</td>"
        )
    span = (
        f' data-span="{item.key}"'
        if not alt and item.span is not None and item.span[0] < item.span[1]
        else ""
    )
    flag = ' class="flag"' if item.review and not alt else ""
    badge = f" {_REVIEW}" if item.review and not alt else ""
    return f'<td class="val">{value}{badge}</td>{kind}{_conf_cell(item.confidence, threshold)}', span, flag


def _answer_rows(ans: _Answer, colour: int, threshold: float | None) -> list[str]:
    cells: list[tuple[str, str, str]] = []
    if ans.status == "not_relevant" or not ans.items:
        badge = f" {_REVIEW}" if ans.review else ""
        cells.append(
            (
                f'<td class="val muted">Not relevant{badge}</td><td class="ev-kind muted">\u2014</td>'
                f"{_conf_cell(ans.confidence, threshold)}",
                "",
                ' class="flag"' if ans.review else "",
            )
        )
    else:
        cells += [_item_row(it, threshold) for it in ans.items]
    cells += [_item_row(it, threshold, alt=True) for it in ans.alternatives]
    answer_conf = ""
    if len(ans.items) > 1 and ans.confidence is not None:  # one item: its confidence is the answer's
        low = ' class="low"' if _low(ans.confidence, threshold) else ""
        answer_conf = f'<div class="small">answer <span{low}>{ans.confidence:.0%}</span></div>'
    head = (
        f'<td class="ph p{colour}" rowspan="{len(cells)}"><span class="sw"></span>{_attr(_label(ans.name))}'
        f"{answer_conf}</td>"
    )
    rows = []
    for i, (body, span, flag) in enumerate(cells):
        rows.append(f'<tr{flag}{span} data-phenotype="{_attr(ans.name)}">{head if i == 0 else ""}{body}</tr>')
    return rows


def _report_html(n: int, total: int, rep: _Report, colours: dict[str, int], threshold: float | None) -> str:
    marks: list[tuple[_Item, _Answer, int]] = []
    for ans in rep.answers:
        for it in [*ans.items, *ans.alternatives]:
            it.key = f"r{n}s{len(marks)}"
            marks.append((it, ans, colours[ans.name]))
    marks = [m for m in marks if m[0] in m[1].items]  # alternatives are listed, not highlighted
    legend = "".join(
        f'<span class="p{colours[a.name]}"><span class="sw"></span>{_attr(_label(a.name))}</span>'
        for a in rep.answers
        if any(it.span for it in a.items)
    )
    legend += (
        '<span><span class="sw ex"></span>exact</span><span><span class="sw fz"></span>fuzzy</span>'
        '<span><span class="badge review">review</span> check this answer</span>'
    )
    banners = [f'<div class="banner">{_attr(b)}</div>' for b in rep.banners]
    if rep.error:
        banners.insert(0, f'<div class="banner"><strong>Not processed:</strong> {_attr(rep.error)}</div>')
    rows = [r for a in rep.answers for r in _answer_rows(a, colours[a.name], threshold)]
    table = (
        (
            '<table class="answers"><thead><tr><th>Phenotype</th><th>Answer</th><th>Evidence</th>'
            "<th>Conf.</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )
        if rows
        else ('<p class="empty">No answers.</p>')
    )
    status = (
        f'<span class="badge review">review {rep.review_count}</span>'
        if rep.review_count
        else '<span class="badge error">check</span>'
        if rep.review
        else '<span class="badge ok">ok</span>'
    )
    meta = f'<span class="meta">{_attr(rep.meta)}</span>' if rep.meta else ""
    return (
        f'<section class="report" id="report-{n}" data-index="{n - 1}" data-id="{_attr(rep.id)}" '
        f'data-review="{int(rep.review)}" aria-label="report {n} of {total}">'
        f'<div class="report-head"><h2>{_attr(rep.id)}</h2>{status}{meta}</div>{"".join(banners)}'
        f'<div class="cols"><div class="text-col"><div class="legend">{legend}</div>'
        f'<pre class="text">{_highlight(rep.text, marks)}</pre></div>'
        f'<div class="answers-col"><h3>Answers</h3>{table}</div></div></section>'
    )


def _colours(reports: list[_Report]) -> dict[str, int]:
    names = [n for n in _BUILTINS]
    for rep in reports:
        names += [a.name for a in rep.answers if a.name not in names]
    return {n: i % len(PALETTE) for i, n in enumerate(names)}


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _check_threshold(min_confidence: float | None) -> float | None:
    if min_confidence is None:
        return None
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise InputError(f"min_confidence must be between 0 and 1, got {min_confidence!r}")
    return float(min_confidence)


def _page(reports: list[_Report], title: str, threshold: float | None) -> str:
    colours = _colours(reports)
    css = STYLE + "".join(f".p{i} {{ --c: {c}; --bg-c: {_rgba(c, 0.3)}; }}\n" for i, c in enumerate(PALETTE))
    total = len(reports)
    index = "".join(
        f'<li><a href="#report={n}" data-index="{n - 1}"><span class="rid">{_attr(r.id)}</span>'
        + (
            f'<span class="badge review">{r.review_count}</span>'
            if r.review_count
            else '<span class="badge error">!</span>'
            if r.review
            else ""
        )
        + "</a></li>"
        for n, r in enumerate(reports, 1)
    )
    body = "".join(_report_html(n, total, r, colours, threshold) for n, r in enumerate(reports, 1)) or (
        '<p class="empty">No results to review.</p>'
    )
    flagged = sum(r.review for r in reports)
    rule = f"; confidence below {threshold:.0%} is marked" if threshold is not None else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_attr(title)}</title><script>{HEAD_SCRIPT}</script><style>{css}</style></head>\n"
        f'<body data-current="0"><header class="top"><h1>{_attr(title)}</h1>'
        f'<span class="summary">{total} report{"s" if total != 1 else ""} \u00b7 {flagged} to review{rule}</span>'
        '<nav class="pager" aria-label="reports"><button id="prev" type="button" title="previous report (k, p, '
        'left arrow)">\u2039 Prev</button><span id="counter" aria-live="polite">'
        f'Report {1 if total else 0} of {total}</span><button id="next" type="button" title="next report (j, n, '
        'right arrow)">Next \u203a</button></nav></header>\n'
        f'<div class="layout"><aside id="index"><h2>Reports</h2><ol>{index}</ol>'
        '<p class="keys"><kbd>j</kbd> <kbd>n</kbd> <kbd>\u2192</kbd> next report<br><kbd>k</kbd> <kbd>p</kbd> '
        "<kbd>\u2190</kbd> previous<br><kbd>r</kbd> next to review<br>click an answer to find its evidence</p>"
        "</aside>"
        f"<main>{body}</main></div>\n"
        f'<pre id="selftest-result" hidden></pre><script>{SCRIPT}</script></body></html>\n'
    )


def review_html(
    results: Iterable[Any],
    texts: Mapping[str, Any] | Sequence[Any],
    *,
    title: str = "cancerllm review",
    min_confidence: float | None = None,
) -> str:
    """The review page of ``results`` as one self-contained HTML document.

    Args:
        results: :class:`~cancerllm.schema.PhenotypeResult` objects, their ``model_dump()``, or the lines of a
            ``cancerllm extract`` results file (``{"id": ..., "result": {...}}`` or ``{"id": ..., "error":
            {...}}``).  With ``details`` the stored evidence spans, matches and confidences are shown; without
            them the evidence is looked up from the answer values (:class:`~cancerllm.evidence.EvidenceIndex`).
        texts: the report texts, exactly as extracted: a mapping ``{id: text}`` (results are joined on their
            ids; extra texts are ignored) or a sequence in the order of ``results``.
        title: the page title.
        min_confidence: also mark answers and items whose confidence is below it (0-1); marks the extractor
            made are always kept.

    Returns:
        The page (a ``str``); write it with UTF-8, or use :func:`write_review`.

    Raises:
        InputError: a result without a report text, repeated ids, malformed details, or a bad
            ``min_confidence``.  Messages name ids, never report text.
    """
    threshold = _check_threshold(min_confidence)
    return _page(_reports(results, texts, threshold), title, threshold)


def write_review(
    results: Iterable[Any],
    texts: Mapping[str, Any] | Sequence[Any],
    path: str | os.PathLike[str],
    *,
    title: str = "cancerllm review",
    min_confidence: float | None = None,
) -> ReviewStats:
    """Write the review page of ``results`` (see :func:`review_html`) to ``path``, atomically, in UTF-8.

    Returns:
        A :class:`ReviewStats` with the path and counts of reports, reports to review and items without
        evidence.

    Example:
        >>> write_review(results, texts, "review.html", min_confidence=0.5)   # doctest: +SKIP
        ReviewStats(path=PosixPath('review.html'), reports=12, needs_review=3, not_found=1)
    """
    threshold = _check_threshold(min_confidence)
    reports = _reports(results, texts, threshold)
    page = _page(reports, title, threshold)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8", newline="")
    os.replace(tmp, out)
    not_found = sum(it.match == "not_found" for r in reports for a in r.answers for it in a.items)
    return ReviewStats(out, len(reports), sum(r.review for r in reports), not_found)
