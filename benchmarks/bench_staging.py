"""The stage group derived from T, N, M (:mod:`cancerllm.benchmark.staging`) on the validation reports.

    python benchmarks/bench_staging.py --data ../shared/data/tcga/tcga_reports_dev.jsonl \
        --results benchmarks/results/cancerllm-smol-default-validation/results.json [--out DIR]

1. The ceiling: the registry's own T, N, M through the table (learned from the training side) against the
   registry's stage group at I-IV, with and without the registry's cancer type.
2. Each stored system of ``--results`` (the per-question predictions of ``cancerllm benchmark``) re-scored
   with its stage answers staged (:meth:`StageGrouper.apply`, cancer type read off the system's own
   histology answer; the report text given, so a group the report writes is kept) - exactly what
   ``cancerllm benchmark`` computes for its ``+ staging table`` systems, without re-running the model.
   Stage I-IV, the stage set and the full group are printed before and after with 95% bootstrap CIs by
   report (1,000 resamples, seed 0); the paired difference too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cancerllm.benchmark import select_records, split_records
from cancerllm.benchmark.fields import field_flags, stage_i_iv
from cancerllm.benchmark.staging import StageGrouper
from cancerllm.benchmark.tasks import build_tasks
from cancerllm.data import read_tcga
from cancerllm.metrics.bootstrap import percentile_interval, resample_indices
from cancerllm.schema import PhenotypeResult
from cancerllm.tnm import tnm_category

FIELDS = ("stage_group_i_iv", "stage_group", "stage_set")


def _ci(flags: np.ndarray) -> tuple[float, float, float]:
    idx = resample_indices(len(flags), n_resamples=1000, seed=0)
    lo, hi = percentile_interval(flags[idx].mean(axis=1), 0.95)
    return 100 * flags.mean(), 100 * lo, 100 * hi


def ceiling(grouper: StageGrouper, val: list) -> dict:
    out = {}
    for with_type in (True, False):
        ok = []
        for r in val:
            gold = stage_i_iv(r.labels.get("stage"))
            if not gold:
                continue
            cats = [tnm_category(r.labels.get(f"p{x}"), x) for x in "TNM"]
            d = grouper.derive(*cats, cancer_type=r.cancer_type if with_type else None)
            ok.append(d is not None and d.group == gold)
        v, lo, hi = _ci(np.array(ok, float))
        out["with cancer type" if with_type else "without cancer type"] = {"n": len(ok), "acc": v, "ci": [lo, hi]}
    return out


def rescore(grouper: StageGrouper, results: dict, system: str, val: list) -> dict:
    tasks = build_tasks(val)
    by_report: dict[str, dict] = {}
    for c in results["systems"][system]["phenotype_cases"]:
        by_report.setdefault(c["patient_id"], {})[c["phenotype"]] = c["prediction"]
    pid = [r.patient_id for r in val]
    preds = [PhenotypeResult(**by_report.get(p, {})) for p in pid]
    staged = [grouper.apply(p, text=r.text) for p, r in zip(preds, val)]
    rows: dict[str, dict[str, list]] = {f: {"before": [], "after": [], "report": []} for f in FIELDS}
    for c in tasks.phenotype_cases:
        if c.phenotype != "stage":
            continue
        for side, pr in (("before", preds), ("after", staged)):
            for f, ok, _ in field_flags(c, pr[c.report].get("stage")):
                if f in rows:
                    rows[f][side].append(ok)
                    if side == "before":
                        rows[f]["report"].append(c.report)
    out = {}
    for f, d in rows.items():
        b, a = np.array(d["before"], float), np.array(d["after"], float)
        if not len(b):
            continue
        idx = resample_indices(len(b), n_resamples=1000, seed=0)
        lo, hi = percentile_interval((a[idx] - b[idx]).mean(axis=1), 0.95)
        out[f] = {"n": len(b), "before": _ci(b), "after": _ci(a), "difference": [100 * (a - b).mean(), 100 * lo,
                                                                                  100 * hi]}
    out["changed_answers"] = sum(p.stage != s.stage for p, s in zip(preds, staged))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/tcga/tcga_reports_dev.jsonl"))
    ap.add_argument("--results", type=Path, action="append", default=[])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    records = read_tcga(args.data)
    train, _ = split_records(records)
    val = select_records(records, split="validation")
    grouper = StageGrouper.from_records(train)
    report: dict = {"ceiling": ceiling(grouper, val), "systems": {}}
    for k, v in report["ceiling"].items():
        print(f"registry T/N/M -> table, {k}: {v['acc']:.1f} [{v['ci'][0]:.1f}, {v['ci'][1]:.1f}] (n={v['n']})")
    for path in args.results:
        results = json.loads(path.read_text(encoding="utf-8"))
        for system in results["systems"]:
            if "staging" in system or not results["systems"][system].get("phenotype_cases"):
                continue
            r = rescore(grouper, results, system, val)
            report["systems"][f"{path}:{system}"] = r
            print(f"\n{system} ({path}), {r['changed_answers']} stage answers changed")
            for f in FIELDS:
                if f in r:
                    b, a, d = r[f]["before"], r[f]["after"], r[f]["difference"]
                    print(f"  {f:18s} n={r[f]['n']:4d}  {b[0]:5.1f} [{b[1]:.1f}, {b[2]:.1f}] -> {a[0]:5.1f} "
                          f"[{a[1]:.1f}, {a[2]:.1f}]  diff {d[0]:+.1f} [{d[1]:+.1f}, {d[2]:+.1f}]")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "staging.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
