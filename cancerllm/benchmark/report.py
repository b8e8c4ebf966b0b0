"""Write a benchmark's results: ``results.json``, Markdown tables (the paper's layouts), PNG plots,
per-system predictions and one ``report.md`` that ties them together.

Plots need matplotlib (``pip install "cancerllm[benchmark]"``); without it the report says so and
everything else is written.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..metrics import EvaluationResult, results_table_markdown

logger = logging.getLogger(__name__)

__all__ = ["render_report", "write_report"]


def _pct(x: float | None, ci: Any = None) -> str:
    if x is None:
        return "-"
    s = f"{100 * x:.1f}"
    if ci:
        s += f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    return s


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "system"


def _table(header: list[str], rows: list[list[str]], align_right_from: int = 1) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < align_right_from else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _f1s(ev: Mapping[str, Any]) -> list[str]:
    """EM, BLEU-2 and ROUGE-L F1 with their intervals, of an EvaluationResult dump (``{}``: dashes)."""
    return [_pct((ev.get(m) or {}).get("f1"), (ev.get(m) or {}).get("f1_ci")) for m in ("exact_match", "bleu2", "rouge_l")]


def _results(systems: Mapping[str, Any], key: str) -> dict[str, EvaluationResult]:
    return {name: EvaluationResult.model_validate(s[key]) for name, s in systems.items() if s.get(key)}


def _fields_table(systems: Mapping[str, Any]) -> str | None:
    """Per-field accuracy of every system (value-bearing fields; "Not relevant" as its own last row)."""
    from .fields import FIELD_LABELS, MACRO_FIELDS

    names = [n for n, s in systems.items() if (s.get("fields") or {}).get("fields")]
    if not names:
        return None

    def cell(f: Mapping[str, Any] | None) -> str:
        if not f:
            return "-"
        txt = _pct(f["value"], f.get("ci"))
        if f.get("answered") is not None and f["answered"] < f["n"] and f.get("precision") is not None:
            txt += f" (precision {100 * f['precision']:.1f}, {f['answered']} answered)"
        return txt

    rows = [["**macro-average (value-bearing)**", "-"]
            + [_pct(systems[n]["fields"]["macro"]["value"], systems[n]["fields"]["macro"].get("ci")) for n in names]]
    for key, label in FIELD_LABELS.items():
        per = [systems[n]["fields"]["fields"].get(key) for n in names]
        if not any(per):
            continue
        n_cases = next(f["n"] for f in per if f)
        mark = "" if key in MACRO_FIELDS or key == "not_relevant" else " (not in the macro)"
        rows.append([label + mark, str(n_cases), *[cell(f) for f in per]])
    return _table(["Field", "n", *names], rows, align_right_from=1)


# ------------------------------------------------------------------------------------------------ tables
def tables(results: Mapping[str, Any]) -> dict[str, str]:
    """The Markdown tables of a result dict, by file stem."""
    systems = results["systems"]
    out: dict[str, str] = {}

    rows = []
    for name, s in systems.items():
        ev, acc = s.get("phenotype") or {}, s["phenotype_accuracy"]
        macro, vb, nr = acc.get("macro") or {}, acc.get("value_bearing") or {}, acc.get("not_relevant") or {}
        rows.append([name, _pct(macro.get("value"), macro.get("ci")), _pct(vb.get("value"), vb.get("ci")),
                     _pct(nr.get("value"), nr.get("ci")), *_f1s(ev),
                     _pct(ev.get("average_f1"), ev.get("average_f1_ci")), f"{vb.get('n', 0)} / {nr.get('n', 0)}"])
    out["phenotype_summary"] = _table(["System", "Macro acc., value-bearing fields [95% CI]",
                                       "Match acc., value-bearing questions", "Not relevant acc.",
                                       "EM F1 [95% CI]", "BLEU-2 F1 [95% CI]", "ROUGE-L F1 [95% CI]",
                                       "Avg F1 [95% CI]", "n (value-bearing / Not relevant)"], rows)
    field_tab = _fields_table(systems)
    if field_tab:
        out["fields"] = field_tab
    ph = _results(systems, "phenotype")
    if ph:
        out["phenotype_paper_layout"] = results_table_markdown(ph)

    phenos = list(results["coverage"])
    phenos = [p for p in phenos if p not in ("diagnosis", "icd_10")]
    names = list(systems)
    rows = []
    for p in phenos:
        cov = results["coverage"][p]
        row = [p, f"{cov['n']} ({100 * cov['coverage']:.0f}%)"]
        for name in names:
            a = systems[name]["phenotype_accuracy"]["per_phenotype"].get(p)
            if p in systems[name].get("not_extracted", []):
                row.append("n/a")
            else:
                row.append(_pct(a["value"], a["ci"]) if a else "-")
        rows.append(row)
    out["per_phenotype"] = _table(["Phenotype", "Scored (coverage)", *names], rows)

    diag = _results(systems, "diagnosis")
    if diag:
        out["diagnosis_paper_layout"] = results_table_markdown(diag)
        rows = []
        for name in diag:
            s = systems[name]
            ev, icd, gen = s["diagnosis"], s["icd"], s.get("icd_generated")
            rows.append([name, *_f1s(ev), _pct(ev["average_f1"], ev.get("average_f1_ci")),
                         _pct(gen["full"]["value"], gen["full"]["ci"]) if gen else "-",
                         _pct(gen["category"]["value"], gen["category"]["ci"]) if gen else "-",
                         _pct(icd["full"]["value"], icd["full"]["ci"]),
                         _pct(icd["category"]["value"], icd["category"]["ci"]), f"{ev['n']} / {icd['full']['n']}"])
        gold = results.get("icd_mapper_on_gold_text")
        if gold:
            rows.append(["(gold diagnosis text, mapped)", "-", "-", "-", "-", "-", "-",
                         _pct(gold["full"]["value"], gold["full"]["ci"]),
                         _pct(gold["category"]["value"], gold["category"]["ci"]), f"- / {gold['full']['n']}"])
        out["diagnosis_summary"] = _table(["System", "EM F1 [95% CI]", "BLEU-2 F1 [95% CI]", "ROUGE-L F1 [95% CI]",
                                           "Avg F1 [95% CI]", "Generated code, full [95% CI]",
                                           "Generated code, category [95% CI]", "Text mapped, full [95% CI]",
                                           "Text mapped, category [95% CI]", "n (text / code)"], rows)
        checked = [(name, systems[name]["icd_generated_by_check"]) for name in diag
                   if systems[name].get("icd_generated_by_check")]
        if checked:
            rows = []
            for name, by in checked:
                cells = [name]
                for label in ("consistent", "inconsistent", "unchecked"):
                    part = by[label]
                    cells.append("-" if part["value"] is None else
                                 f"{_pct(part['value'], part['ci'])} (n = {part['n']}, {100 * part['share']:.1f}%)")
                rows.append(cells)
            out["diagnosis_code_check"] = _table(
                ["System", "Code agrees with the text: category accuracy (n, share)",
                 "Code contradicts the text (needs review)", "No code / cannot tell"], rows)

    rows = []
    n = results["meta"]["n_reports"]
    for name, s in systems.items():
        t = s["timing"]

        def f(key: str, digits: int = 1, t: Mapping[str, Any] = t) -> str:
            v = t.get(key)
            return "-" if v is None else f"{v:.{digits}f}"

        rows.append([name, t.get("device", "-"), f("load_s"), f("phenotype_s"), f("reports_per_s", 2),
                     f("prompts_per_s", 2), f("diagnosis_s"), f("peak_rss_mb", 0),
                     f("peak_cuda_mb", 0)])
    out["time_memory"] = _table(["System", "Device", "Load (s)", f"Phenotypes, {n} reports (s)", "Reports/s",
                                 "Questions/s", f"Diagnoses, {n} reports (s)", "Peak RSS (MB)",
                                 "Peak GPU (MB)"], rows)

    mis = results.get("robustness", {}).get("misspelling", {})
    if mis:
        rows = []
        for name, curve in mis.items():
            base = systems[name]
            b_acc = base["phenotype_accuracy"]["macro"]
            b_f1 = (base.get("phenotype") or {}).get("average_f1")
            rows.append([name, "0%", "0", _pct(b_acc["value"], b_acc["ci"]), _pct(b_f1)])
            for pt in curve:
                rows.append([name, f"{100 * pt['rate']:.0f}%", str(pt["n_misspelled_words"]),
                             _pct(pt["accuracy"]["value"], pt["accuracy"]["ci"]),
                             _pct(pt["average_f1"], pt.get("average_f1_ci"))])
        out["robustness_misspelling"] = _table(["System", "Misspelled words", "Edits", "Macro acc. [95% CI]",
                                                "Avg F1 [95% CI]"], rows)

    if any(s.get("retriever") for s in systems.values()):
        rows = []
        for name, s in systems.items():
            if s["kind"] != "model":
                continue
            acc = s["phenotype_accuracy"]["macro"]
            d = s.get("diagnosis") or {}
            icd = (s.get("icd") or {}).get("category") or {}
            rows.append([name, s.get("retriever") or "none", str(s.get("k") or 0), _pct(acc["value"], acc["ci"]),
                         _pct((s.get("phenotype") or {}).get("average_f1")), _pct(d.get("average_f1")),
                         _pct(icd.get("value"))])
        out["retrievers"] = _table(["System", "Retriever", "k", "Phenotype macro acc.", "Phenotype Avg F1",
                                    "Diagnosis Avg F1", "ICD-10 category"], rows)

    rows = []
    for name, s in systems.items():
        chk = s.get("checking")
        if not chk:
            continue
        for ph, b in [("all", chk["overall"]), *chk["per_phenotype"].items()]:
            share = b["span_share"]
            w, wo = b["answers_with_evidence"], b["answers_without_evidence"]
            rows.append([name, ph, str(b["n_items"]), _pct(share["exact"]), _pct(share["fuzzy"]),
                         _pct(share["not_found"]), f"{_pct(w['accuracy'])} (n={w['n']})",
                         f"{_pct(wo['accuracy'])} (n={wo['n']})", _pct(b.get("accuracy")),
                         f"{b['ece']:.3f}" if b.get("ece") is not None else "-", _pct(b.get("accuracy_at_80_coverage"))])
    if rows:
        out["checking"] = _table(["System", "Phenotype", "Items", "Exact span", "Fuzzy span", "No span",
                                  "Acc., all items with a span", "Acc., an item without", "Acc. (all answers)",
                                  "ECE", "Acc. at 80% coverage"], rows, align_right_from=2)

    cov_rows = [[k, str(v["n"]), str(v["with_value"]), str(v["not_relevant"]), f"{100 * v['coverage']:.1f}%"]
                for k, v in results["coverage"].items()]
    out["coverage"] = _table(["Field", "Scored", "With a value", "Not relevant", "Coverage of reports"], cov_rows)
    return out


# ------------------------------------------------------------------------------------------------ plots
def plots(results: Mapping[str, Any], out_dir: Path) -> list[str]:
    """Write ``per_field.png`` and (with misspelling runs) ``robustness.png``; returns the file names."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning('matplotlib is not installed; no plots (pip install "cancerllm[benchmark]")')
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    systems = results["systems"]
    from .fields import FIELD_LABELS, MACRO_FIELDS

    names = list(systems)
    phenos = [f for f in MACRO_FIELDS if any(f in (s.get("fields") or {}).get("fields", {}) for s in systems.values())]
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(phenos) + 2), 4.5))
    for i, name in enumerate(names):
        vals = []
        for p in phenos:
            a = (systems[name].get("fields") or {}).get("fields", {}).get(p)
            vals.append(100 * a["value"] if a and a["value"] is not None else 0.0)
        ax.bar([j + i * width for j in range(len(phenos))], vals, width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(phenos))])
    ax.set_xticklabels([FIELD_LABELS[p].replace(" (", "\n(").replace(" ", "\n", 1) for p in phenos], fontsize=7)
    ax.set_ylabel("accuracy, value-bearing questions (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Per-field accuracy (Not relevant questions excluded), {results['meta']['n_reports']} reports "
                 f"({results['meta']['split']})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "per_field.png", dpi=120)
    plt.close(fig)
    written.append("per_field.png")

    mis = results.get("robustness", {}).get("misspelling", {})
    if mis:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, curve in mis.items():
            base = systems[name]["phenotype_accuracy"]["macro"]["value"] or 0.0
            xs = [0.0] + [100 * p["rate"] for p in curve]
            ys = [100 * base] + [100 * (p["accuracy"]["value"] or 0.0) for p in curve]
            ax.plot(xs, ys, marker="o", label=name)
        ax.set_xlabel("misspelled words (%)")
        ax.set_ylabel("phenotype macro accuracy, value-bearing fields (%)")
        ax.set_title("Robustness to misspellings at inference")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "robustness.png", dpi=120)
        plt.close(fig)
        written.append("robustness.png")
    return written


# ------------------------------------------------------------------------------------------------ report
_SECTIONS = [
    ("coverage", "Coverage", "Scored questions per field: a registry value that is null is not scored; receptor "
     "questions outside breast reports are scored as \"Not relevant\"."),
    ("phenotype_summary", "Phenotype extraction", "Headline: the macro-average over the value-bearing fields "
     "(stage scored as pT/pN/pM/group, receptor status per receptor; table below). Match accuracy: the normalised "
     "answer matches the registry value (rules in docs/benchmark.md), over the questions with a registry value; "
     "\"Not relevant\" questions (receptors outside breast) apart. EM, BLEU-2 and ROUGE-L: normalised items of "
     "the value-bearing questions."),
    ("fields", "Per field (accuracy, %, value-bearing questions)", "Each field on its own: pT/pN/pM at main "
     "category (T1..T4/Tis/TX, N0..N3/NX, M0/M1/MX) and full value, the stage group as written and at I-IV (the "
     "PathRep-Bench convention), the whole stage set (the paper's metric), ER/PR/HER2 status on breast reports. "
     "An abstention counts as wrong; precision (correct among answered) is shown where a system abstains."),
    ("phenotype_paper_layout", "Phenotype extraction, the paper's Table 1 layout", ""),
    ("per_phenotype", "Per question (match accuracy, %, value-bearing questions)", "n/a: a field the system does "
     "not extract (the rules have no histology or site patterns); it still counts as wrong in the averages. The "
     "stage question is scored as a whole set here."),
    ("diagnosis_summary", "Diagnosis generation and its ICD-10-coded variant", "Gold: \"<histology>, <site>\" "
     "from the registry. A model that writes its own code after the text (\"... (C50.3)\") has that code scored "
     "directly against the registry icd_10; text metrics use the text without it. The text is also mapped to "
     "an ICD-10-CM code by cancerllm.benchmark.IcdMapper; the last row maps the gold text itself, the ceiling of "
     "the mapper."),
    ("diagnosis_code_check", "Checking the written ICD-10 code against the diagnosis text", "A written code "
     "agrees with the text when its 3-character category is among those IcdMapper.consistent finds for the "
     "words (top 3); DiagnosisGenerator records it as Diagnosis.code_consistent, and a contradiction sets "
     "needs_review. Category accuracy of the generated code against the registry icd_10 in each part, with its "
     "n and share of the scored reports."),
    ("diagnosis_paper_layout", "Diagnosis generation, the paper's Table 2 layout", ""),
    ("time_memory", "Time and peak memory (the paper's Table 5)", "Wall-clock time of each task over all scored "
     "reports, in this process, on the device named (retriever index building excluded). Peak RSS is the whole "
     "process's resident memory during the task, models loaded earlier included."),
    ("robustness_misspelling", "Robustness: misspellings at inference", "Words of the report texts misspelled "
     "with one character edit (cancerllm.robustness.misspell); phenotype extraction only. Counterfactual "
     "labels need training runs: see `cancerllm robustness`."),
    ("retrievers", "Retrieval-augmented prompting (the paper's Table 6)", "Examples retrieved from the training "
     "part of the split, never from the scored reports."),
    ("checking", "Checking the answers: evidence and confidence", "Span shares: the answer items found in the "
     "report verbatim (exact), up to case/whitespace/units/TNM prefix (fuzzy), or not at all (no span: the "
     "hallucination flag). Accuracy of answers whose items all have a span vs answers with an item without one. "
     "Confidence: the model's probability of its whole answer; ECE over 10 equal-width bins; accuracy of the "
     "80% most confident answers. See docs/checking.md."),
]


def _limit(meta: Mapping[str, Any]) -> str:
    return f" (limit {meta['limit']})" if meta.get("limit") else ""


def _adapter_lines(systems: Mapping[str, Any]) -> list[str]:
    """One line per model: the adapter each task ran with (folder name, first 12 hex of its weights hash)."""
    lines, seen = [], set()
    for name, entry in systems.items():
        adapters = entry.get("adapters")
        model = entry.get("model") or name
        if not adapters or model in seen:
            continue
        seen.add(model)

        def one(a: Mapping[str, Any]) -> str:
            return f"`{a['adapter']}` ({a['sha256'][:12]})" if a.get("adapter") and a.get("sha256") else "none"

        p, d = adapters.get("phenotype", {}), adapters.get("diagnosis", {})
        what = (f"{one(p)} for every task" if p == d else f"phenotypes {one(p)}, diagnoses {one(d)}")
        lines.append(f"- Adapters of {model}: {what}")
    return lines


def render_report(results: Mapping[str, Any], tabs: Mapping[str, str], images: list[str]) -> str:
    """The Markdown of ``report.md``."""
    m = results["meta"]
    lines = ["# cancerllm benchmark report", ""]
    lines += [f"- Data: `{m['data']}` (sha256 {m['data_sha256']}), split **{m['split']}**, "
              f"{m['n_reports']} reports{_limit(m)}, "
              f"{m['n_phenotype_cases']} scored phenotype questions",
              f"- Date: {m['date']}; cancerllm {m['cancerllm_version']}, Python {m['python']}, {m['machine']}",
              f"- Diagnosis generation: {'yes' if m['diagnosis'] else 'no'} "
              f"(max {m['diagnosis_max_new_tokens']} new tokens); bootstrap 95% CIs: {'yes' if m['ci'] else 'no'} "
              f"(seed {m['seed']})"]
    if m.get("command"):
        lines.append(f"- Command: `{m['command']}`")
    lines += _adapter_lines(results.get("systems", {}))
    lines.append("")
    for key, title, note in _SECTIONS:
        if key not in tabs:
            continue
        lines += [f"## {title}", ""]
        if note:
            lines += [note, ""]
        lines += [tabs[key], ""]
    if images:
        lines += ["## Plots", ""] + [f"![{img}](plots/{img})" for img in images] + [""]
    else:
        lines += ["(No plots: matplotlib is not installed.)", ""]
    lines += ["Files: `results.json` (everything above, plus per-case predictions), `tables/*.md`, "
              "`predictions/<system>.jsonl`.", ""]
    return "\n".join(lines)


def write_report(results: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``results.json``, ``tables/*.md``, ``plots/*.png``, ``predictions/*.jsonl`` and ``report.md``
    under ``out_dir``; returns the path of ``report.md``."""
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    tabs = tables(results)
    for name, md in tabs.items():
        (out / "tables" / f"{name}.md").write_text(md, encoding="utf-8")
    for name, s in results["systems"].items():
        with open(out / "predictions" / f"{_slug(name)}.jsonl", "w", encoding="utf-8") as fh:
            for row in s.get("phenotype_cases", []):
                fh.write(json.dumps({"task": "phenotype", **row}) + "\n")
            for row in s.get("diagnosis_cases", []) or []:
                fh.write(json.dumps({"task": "diagnosis", **row}) + "\n")
    images = plots(results, out / "plots")
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1), encoding="utf-8")
    os.replace(tmp, out / "results.json")
    report = out / "report.md"
    report.write_text(render_report(results, tabs, images), encoding="utf-8")
    return report
