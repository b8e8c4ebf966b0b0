"""Evidence alignment speed: every registry value of each shared TCGA report looked up in its text.

    python benchmarks/bench_evidence.py [--reports N]

Prints milliseconds per report (median and 95th percentile over reports) and the share of values found
exactly / fuzzily / not at all (registry values are often worded differently from the report, or absent).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from cancerllm.evidence import EvidenceIndex

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"
FIELDS = ("stage", "pT", "pN", "pM", "histology", "site", "laterality", "grade", "ER", "PR", "HER2", "tumor_size")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--reports", type=int, default=0, help="first N reports (0: all)")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").split("\n") if line.strip()]
    rows = rows[: args.reports] if args.reports else rows
    times, kinds, items = [], Counter(), 0
    for r in rows:
        values = [str(r["labels"][f]) for f in FIELDS if r["labels"].get(f)]
        t0 = time.perf_counter()
        idx = EvidenceIndex(r["text"])
        spans = [idx.find(v) for v in values]
        times.append((time.perf_counter() - t0) * 1000)
        kinds.update(s.match for s in spans)
        items += len(values)
    times.sort()
    chars = statistics.median(len(r["text"]) for r in rows)
    print(json.dumps({
        "reports": len(rows), "median_chars": chars, "values": items,
        "ms_per_report_median": round(statistics.median(times), 3),
        "ms_per_report_p95": round(times[int(0.95 * (len(times) - 1))], 3),
        "ms_per_report_max": round(times[-1], 3),
        "share": {k: round(v / max(1, items), 3) for k, v in sorted(kinds.items())},
    }, indent=2))


if __name__ == "__main__":
    main()
