"""Per-field scores of the rule-based extractor, alone and with the most-frequent fill, on real TCGA reports.

The rules (:class:`~cancerllm.benchmark.RuleBasedExtractor`) run on the validation reports of the shared TCGA
file; the fill (:class:`~cancerllm.benchmark.baselines.MostFrequentFill`) is learned from the training
reports' registry labels only, over all types and per cancer type.  Scored by the benchmark itself
(:func:`~cancerllm.benchmark.run_benchmark` with no model, so the figures are those of ``cancerllm
benchmark``): every field of :mod:`cancerllm.benchmark.fields` on its own (an abstention is wrong, precision
= correct among answered), and the macro-average over the value-bearing fields.  Regex only: seconds.

    python benchmarks/bench_rules.py                     # writes benchmarks/results/rules-validation/
    python benchmarks/bench_rules.py --split train       # the reports the rules were written on
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cancerllm.benchmark import run_benchmark
from cancerllm.benchmark.report import tables

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "rules-validation"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--split", choices=["validation", "train"], default="validation")
    ap.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT.relative_to(ROOT)})")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = args.out or (DEFAULT_OUT if args.split == "validation" else ROOT / "benchmarks" / "out" / "rules-train")
    res = run_benchmark(args.data, models=[], rules=True, split=args.split, diagnosis=False, misspelling_rates=(),
                        seed=args.seed, out_dir=out, command="python benchmarks/bench_rules.py"
                        + (f" --split {args.split}" if args.split != "validation" else ""))
    print(tables(res)["fields"])
    print(f"\n{res['meta']['n_reports']} {args.split} reports; report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
