"""Build the stage-group table shipped with the library (``cancerllm/_resources/stage_groups.json``).

    python benchmarks/smol/build_stage_groups.py --data ../shared/data/tcga/tcga_reports_dev.jsonl

Learned from the training side of the shared file's patient-level split only (the reports CancerLLM-Smol
was trained on; :func:`cancerllm.benchmark.split_records`), never from validation reports.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cancerllm.benchmark import split_records
from cancerllm.benchmark.staging import StageGrouper
from cancerllm.data import read_tcga

OUT = Path(__file__).resolve().parents[2] / "cancerllm" / "_resources" / "stage_groups.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/tcga/tcga_reports_dev.jsonl"))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    train, _ = split_records(read_tcga(args.data))
    grouper = StageGrouper.from_records(
        train, source=f"{args.data.name}: training side of split_records (default salt), {len(train)} reports")
    grouper.save(args.out)
    print(f"{args.out}: {grouper.n_records} staged reports, {len(grouper.by_type)} cancer types, "
          f"{len(grouper.overall)} T/N/M combinations, {len(grouper.histology_types)} histologies")


if __name__ == "__main__":
    main()
