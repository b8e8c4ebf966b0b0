"""Paired comparison of two systems scored on the same reports, from the stored benchmark results.

    python benchmarks/smol/compare_releases.py \
        benchmarks/results/cancerllm-smol-v3-validation/results.json:cancerllm-smol \
        benchmarks/results/cancerllm-smol-v4-validation/results.json:cancerllm-smol \
        --data ../shared/data/tcga/tcga_reports_dev.jsonl [--json out.json]

Each side is ``results.json:system`` from ``cancerllm benchmark``.  The stored per-question predictions are
re-scored per field (:func:`cancerllm.benchmark.fields.field_flags`, exactly as the benchmark scores them)
and the difference B - A is bootstrapped *by report* (both sides resampled together, 1,000 resamples, seed
0): the macro-average over the value-bearing fields, every field, and the category accuracy of the
generated ICD-10 code.  Use it when the two systems were run separately (each run is deterministic, so
this equals running them side by side), for example a new release against the stored figures of the last.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cancerllm.benchmark.fields import FIELD_LABELS, MACRO_FIELDS, field_flags
from cancerllm.benchmark.icd import icd_match
from cancerllm.benchmark.tasks import build_tasks
from cancerllm.data import read_tcga
from cancerllm.metrics.bootstrap import percentile_interval, resample_indices


def _side(spec: str) -> tuple[dict, str]:
    path, _, system = spec.rpartition(":")
    results = json.loads(Path(path).read_text(encoding="utf-8"))
    if system not in results["systems"]:
        raise SystemExit(f"{path}: no system {system!r} (has: {', '.join(results['systems'])})")
    return results, system


def _flags(results: dict, system: str, data: Path) -> tuple[dict, dict]:
    """Per report: ``{field: [ok, ...]}`` of the phenotype questions, and the generated code's category hit."""
    records = read_tcga(data)
    by_id = {r.patient_id: r for r in records}
    ids = [c["patient_id"] for c in results["systems"][system]["phenotype_cases"]]
    scored = list(dict.fromkeys(ids))
    tasks = build_tasks([by_id[p] for p in scored])
    cases = {(c.patient_id, c.phenotype): c for c in tasks.phenotype_cases}
    per: dict[str, dict[str, list[bool]]] = {}
    for row in results["systems"][system]["phenotype_cases"]:
        case = cases[(row["patient_id"], row["phenotype"])]
        for f, ok, _ in field_flags(case, row["prediction"]):
            per.setdefault(row["patient_id"], {}).setdefault(f, []).append(bool(ok))
    icd = {row["patient_id"]: bool(icd_match(row.get("generated_code"), row["icd_10"], "category"))
           for row in results["systems"][system].get("diagnosis_cases") or [] if row.get("icd_10")}
    return per, icd


def _macro(per: dict, reports: list[str]) -> float:
    tot: dict[str, list[int]] = {}
    for r in reports:
        for f, oks in per.get(r, {}).items():
            t = tot.setdefault(f, [0, 0])
            t[0] += sum(oks)
            t[1] += len(oks)
    accs = [c / n for f, (c, n) in tot.items() if f in MACRO_FIELDS and n]
    return float(np.mean(accs)) if accs else float("nan")


def _field(per: dict, reports: list[str], f: str) -> float:
    oks = [ok for r in reports for ok in per.get(r, {}).get(f, [])]
    return float(np.mean(oks)) if oks else float("nan")


def compare(a: tuple[dict, str], b: tuple[dict, str], data: Path, *, n_resamples: int = 1000) -> dict:
    pa, ia = _flags(*a, data)
    pb, ib = _flags(*b, data)
    reports = sorted(set(pa) & set(pb))
    if not reports:
        raise SystemExit("the two sides share no scored report")
    idx = resample_indices(len(reports), n_resamples=n_resamples, seed=0)

    def paired(stat) -> dict:
        diff = stat(pb, reports) - stat(pa, reports)
        boot = np.array([stat(pb, [reports[i] for i in row]) - stat(pa, [reports[i] for i in row]) for row in idx])
        lo, hi = percentile_interval(boot[~np.isnan(boot)], 0.95)
        return {"a": round(100 * stat(pa, reports), 1), "b": round(100 * stat(pb, reports), 1),
                "diff": round(100 * diff, 1), "ci": [round(100 * lo, 1), round(100 * hi, 1)]}

    out = {"reports": len(reports), "macro": paired(_macro), "fields": {}}
    for f in FIELD_LABELS:
        if any(f in pa.get(r, {}) for r in reports):
            out["fields"][f] = paired(lambda p, rs, f=f: _field(p, rs, f))
            out["fields"][f]["n"] = sum(len(pa.get(r, {}).get(f, [])) for r in reports)
    both = sorted(set(ia) & set(ib))
    if both:
        ja, jb = ({r: {"icd": [v[r]]} for r in both} for v in (ia, ib))
        idx2 = resample_indices(len(both), n_resamples=n_resamples, seed=0)
        d = _field(jb, both, "icd") - _field(ja, both, "icd")
        boot = np.array([_field(jb, [both[i] for i in row], "icd") - _field(ja, [both[i] for i in row], "icd")
                         for row in idx2])
        lo, hi = percentile_interval(boot, 0.95)
        out["icd_generated_category"] = {"a": round(100 * _field(ja, both, "icd"), 1),
                                         "b": round(100 * _field(jb, both, "icd"), 1), "diff": round(100 * d, 1),
                                         "ci": [round(100 * lo, 1), round(100 * hi, 1)], "n": len(both)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="results.json:system (the baseline)")
    ap.add_argument("b", help="results.json:system (the new side)")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/tcga/tcga_reports_dev.jsonl"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    out = compare(_side(args.a), _side(args.b), args.data)
    print(f"paired over {out['reports']} reports, B - A, 95% CI by report\n")
    print("| field | n | A | B | B - A [95% CI] |\n|---|---:|---:|---:|---:|")
    rows = [("**macro-average (value-bearing)**", out["macro"], "-")]
    rows += [(FIELD_LABELS[f], v, v["n"]) for f, v in out["fields"].items()]
    if "icd_generated_category" in out:
        rows.append(("ICD-10 category of the generated code", out["icd_generated_category"],
                     out["icd_generated_category"]["n"]))
    for label, v, n in rows:
        print(f"| {label} | {n} | {v['a']} | {v['b']} | {v['diff']:+.1f} [{v['ci'][0]:+.1f}, {v['ci'][1]:+.1f}] |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
