"""The review page's inline style sheet and script (kept apart from the HTML builder in :mod:`.review`).

Both are static: no data is interpolated into them, so report text can never reach script context.  They
contain no URL and no ``//`` (no line comments), so a scan of the page for external references stays clean.
"""

from __future__ import annotations

__all__ = ["CSP", "HEAD_SCRIPT", "PALETTE", "SCRIPT", "STYLE"]

#: Nothing may be fetched: no scripts, styles, fonts, images, frames or connections beyond the inline ones.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")

#: Phenotype colours (Okabe-Ito, colour-blind safe, then two more), cycled for custom phenotypes.
PALETTE = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#7F7F7F",
    "#8C564B",
    "#17BECF",
)

STYLE = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --warn: #9a4d00; --bad: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.top { display: flex; align-items: center; gap: 18px; flex-wrap: wrap; padding: 8px 16px;
  background: #22303c; color: #fff; }
header.top h1 { font-size: 17px; margin: 0; font-weight: 600; }
header.top .summary { color: #c9d4de; }
.pager { display: flex; align-items: center; gap: 8px; margin-left: auto; }
.pager button { font: inherit; color: #fff; background: #3a4b5a; border: 1px solid #58697a; border-radius: 6px;
  padding: 3px 10px; cursor: pointer; }
.pager button:hover { background: #4a5d6e; }
#counter { min-width: 120px; text-align: center; font-weight: 600; }
.keys { color: var(--muted); font-size: 12px; line-height: 1.9; margin: 16px 8px 0; padding-top: 10px;
  border-top: 1px solid var(--line); }
kbd { font: 11px ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; border: 1px solid #aab4be;
  border-bottom-width: 2px; border-radius: 3px; padding: 0 4px; background: #fff; color: var(--ink); }
.layout { display: grid; grid-template-columns: 230px minmax(0, 1fr); }
aside#index { background: var(--soft); border-right: 1px solid var(--line); padding: 10px 8px;
  position: sticky; top: 0; align-self: start; height: 100vh; overflow: auto; }
aside#index h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted);
  margin: 2px 8px 8px; }
aside#index ol { list-style: none; margin: 0; padding: 0; }
aside#index a { display: flex; gap: 6px; align-items: center; justify-content: space-between; padding: 4px 8px;
  border-radius: 6px; color: inherit; text-decoration: none; }
aside#index a:hover { background: #eaeef2; }
aside#index a[aria-current] { background: #dbeafe; font-weight: 600; }
aside#index .rid { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
main { padding: 12px 20px 40px; min-width: 0; }
body:not(.paged) section.report + section.report { border-top: 3px solid var(--line); margin-top: 28px;
  padding-top: 8px; }
.report-head { display: flex; align-items: baseline; gap: 12px; flex-wrap: wrap; }
.report-head h2 { font-size: 18px; margin: 4px 0; }
.meta { color: var(--muted); font-size: 12px; }
.cols { display: grid; grid-template-columns: minmax(0, 1fr) minmax(330px, 430px); gap: 20px; align-items: start; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 14px; margin: 6px 0 8px; font-size: 12px; color: var(--muted); }
.legend span { white-space: nowrap; }
pre.text { margin: 0; padding: 12px 14px; white-space: pre-wrap; overflow-wrap: anywhere; tab-size: 4;
  font: 13.5px/1.8 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; background: #fffdf7;
  border: 1px solid var(--line); border-radius: 6px; }
mark.ev { color: inherit; background: var(--bg-c); border-bottom: 2px solid var(--c); border-radius: 2px;
  cursor: pointer; }
mark.ev.fuzzy { border-bottom-style: dashed; }
mark.ev.review { text-decoration: underline wavy var(--bad) 1px; text-underline-offset: 5px; }
mark.flash { outline: 3px solid var(--c); outline-offset: 1px; }
.answers-col { position: sticky; top: 8px; }
.answers-col h3 { font-size: 13px; margin: 6px 0; color: var(--muted); text-transform: uppercase;
  letter-spacing: .05em; }
table.answers { border-collapse: collapse; width: 100%; font-size: 13px; }
table.answers th { text-align: left; font-size: 11px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); border-bottom: 2px solid var(--line); padding: 4px 6px; }
table.answers td { padding: 5px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.answers tr[data-span] { cursor: pointer; }
table.answers tr[data-span]:hover td { background: #f0f6ff; }
table.answers tr.flag td.val, table.answers tr.flag td.ev-kind,
table.answers tr.flag td.conf { background: #fff6ec; }
table.answers tr.flash td { background: #ffe9c7; }
td.ph { white-space: nowrap; font-weight: 600; }
td.ph .small { font-weight: 400; color: var(--muted); font-size: 11px; margin-left: 18px; }
.sw { display: inline-block; width: 12px; height: 12px; border-radius: 3px; background: var(--c);
  margin-right: 6px; vertical-align: -1px; }
.sw.fz { background: repeating-linear-gradient(90deg, var(--ink) 0 3px, transparent 3px 5px); height: 2px;
  vertical-align: 3px; }
.sw.ex { background: var(--ink); height: 2px; vertical-align: 3px; }
.badge { display: inline-block; font-size: 10.5px; font-weight: 700; line-height: 1.5; padding: 0 6px;
  border-radius: 9px; text-transform: uppercase; letter-spacing: .03em; white-space: nowrap; }
.badge.review { background: #fff1de; color: var(--warn); border: 1px solid #f0b86e; }
.badge.error { background: #fdecea; color: var(--bad); border: 1px solid #f1aaa2; }
.badge.ok { background: #e7f5ec; color: #1a7f37; border: 1px solid #a9dbb8; }
.nf { color: var(--bad); font-weight: 600; }
.low { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
.alt { color: var(--muted); font-style: italic; }
.banner { padding: 8px 12px; border-radius: 6px; margin: 8px 0; background: #fdecea; border: 1px solid #f1aaa2;
  color: #7a1d14; }
.empty { color: var(--muted); padding: 20px; }
@media (max-width: 980px) {
  .layout { grid-template-columns: 1fr; }
  aside#index { position: static; height: auto; max-height: 30vh; }
  .cols { grid-template-columns: 1fr; }
  .answers-col { position: static; }
}
@media print {
  header.top .pager, aside#index { display: none; }
  .layout { display: block; }
  section.report[hidden] { display: block; }
  section.report { break-after: page; }
  .answers-col { position: static; }
}
"""

HEAD_SCRIPT = (
    "window.cancerllmViolations = [];"
    'document.addEventListener("securitypolicyviolation", function (e) {'
    " window.cancerllmViolations.push(e.violatedDirective); });"
)

SCRIPT = """
(function () {
  "use strict";
  var reports = [].slice.call(document.querySelectorAll("section.report"));
  var links = [].slice.call(document.querySelectorAll("#index a[data-index]"));
  var counter = document.getElementById("counter");
  var NEXT = ["j", "n", "ArrowRight"];
  var PREV = ["k", "p", "ArrowLeft"];
  var current = -1;
  document.body.classList.add("paged");

  function hashParams() {
    var out = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var kv = part.split("=");
      if (kv[0]) { out[kv[0]] = kv.length > 1 ? kv[1] : true; }
    });
    return out;
  }
  var selftest = !!hashParams().selftest;

  function show(i) {
    if (!reports.length) { return; }
    i = Math.max(0, Math.min(reports.length - 1, i));
    var moved = i !== current;
    for (var k = 0; k < reports.length; k++) {
      reports[k].hidden = k !== i;
      if (links[k]) {
        if (k === i) { links[k].setAttribute("aria-current", "true"); }
        else { links[k].removeAttribute("aria-current"); }
      }
    }
    current = i;
    counter.textContent = "Report " + (i + 1) + " of " + reports.length;
    document.body.setAttribute("data-current", String(i));
    if (moved) {
      window.scrollTo(0, 0);
      if (links[i] && links[i].scrollIntoView) { links[i].scrollIntoView({block: "nearest"}); }
      if (!selftest) {
        try { history.replaceState(null, "", "#report=" + (i + 1)); } catch (err) { }
      }
    }
  }

  function nextReview() {
    for (var s = 1; s <= reports.length; s++) {
      var j = (current + s) % reports.length;
      if (reports[j].getAttribute("data-review") === "1") { show(j); return; }
    }
  }

  function fromHash() {
    var n = parseInt(hashParams().report, 10);
    show(isNaN(n) ? (current < 0 ? 0 : current) : n - 1);
  }

  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) { return; }
    var t = e.target;
    if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].indexOf(t.tagName) >= 0)) { return; }
    if (NEXT.indexOf(e.key) >= 0) { show(current + 1); }
    else if (PREV.indexOf(e.key) >= 0) { show(current - 1); }
    else if (e.key === "r") { nextReview(); }
    else { return; }
    e.preventDefault();
  });
  window.addEventListener("hashchange", fromHash);
  var prev = document.getElementById("prev");
  var next = document.getElementById("next");
  if (prev) { prev.addEventListener("click", function () { show(current - 1); }); }
  if (next) { next.addEventListener("click", function () { show(current + 1); }); }
  links.forEach(function (a) {
    a.addEventListener("click", function (e) { e.preventDefault(); show(Number(a.getAttribute("data-index"))); });
  });

  function flash(el) {
    el.classList.add("flash");
    setTimeout(function () { el.classList.remove("flash"); }, 1600);
  }
  document.addEventListener("click", function (e) {
    if (!e.target.closest) { return; }
    var row = e.target.closest("tr[data-span]");
    var mark = row ? null : e.target.closest("mark[data-span]");
    var src = row || mark;
    if (!src) { return; }
    var sec = src.closest("section.report");
    var id = src.getAttribute("data-span");
    var targets = sec.querySelectorAll((row ? "mark" : "tr") + "[data-span=\\"" + id + "\\"]");
    if (!targets.length) { return; }
    targets[0].scrollIntoView({block: "center", behavior: "smooth"});
    [].forEach.call(targets, flash);
  });

  fromHash();

  if (selftest) {
    var out = {reports: reports.length, initial: current, marks: [], texts: [], nav: [],
               violations: window.cancerllmViolations || []};
    var seen = {};
    [].forEach.call(document.querySelectorAll("mark[data-span]"), function (m) {
      var id = m.getAttribute("data-span");
      var rec = seen[id];
      if (!rec) {
        rec = seen[id] = {span: id, report: m.closest("section.report").getAttribute("data-id"),
          phenotype: m.getAttribute("data-phenotype"), value: m.getAttribute("data-value"),
          match: m.getAttribute("data-match"), confidence: m.getAttribute("data-confidence"),
          review: m.getAttribute("data-review"), start: Number(m.getAttribute("data-start")),
          end: Number(m.getAttribute("data-end")), text: "", pieces: 0};
        out.marks.push(rec);
      }
      rec.text += m.textContent;
      rec.pieces += 1;
    });
    reports.forEach(function (r) {
      var pre = r.querySelector("pre.text");
      out.texts.push({report: r.getAttribute("data-id"), text: pre ? pre.textContent : null});
    });
    var keys = ["j", "j", "k", "n", "p", "ArrowRight", "ArrowLeft", "ArrowLeft", "ArrowLeft", "r", "x"];
    keys.forEach(function (key) {
      document.dispatchEvent(new KeyboardEvent("keydown", {key: key, bubbles: true, cancelable: true}));
      out.nav.push({key: key, current: current, counter: counter.textContent,
        visible: reports.filter(function (r) { return !r.hidden; })
          .map(function (r) { return r.getAttribute("data-id"); })});
    });
    var res = document.getElementById("selftest-result");
    res.textContent = JSON.stringify(out);
    document.body.setAttribute("data-selftest", "done");
  }
})();
"""
