"""Diagnosis generation speed: continuous batching against the batch-at-a-time path it replaces.

Diagnoses are open-ended (up to the paper's 500 new tokens, ending at EOS), so in a batch decoded together
most rows finish early and the batch waits for its longest answer.  The engine now decodes one-prompt groups
with continuous batching: once half the rows have stopped, the next notes are encoded and join the running
batch; the instruction header all prompts share is encoded once per call.  ``engine.continuous = False``
restores the batch-at-a-time path (length-sorted batches of ``--batch-size``, finished rows dropped, the
batch ending with its longest row).

Both run here on the same validation reports, same model, greedy, same ``batch_size``; the script checks
that the generated texts are identical and prints diagnoses/s and the speed-up.

    python benchmarks/bench_diagnosis.py --reports 50 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cancerllm import CancerLLM
from cancerllm.benchmark.tasks import select_records
from cancerllm.data import read_tcga

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cancerllm-smol")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--reports", type=int, default=50)
    ap.add_argument("--batch-size", type=int, action="append", help="repeatable; default 8")
    ap.add_argument("--max-new-tokens", type=int, default=500)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    texts = [r.text for r in select_records(read_tcga(args.data), split="validation", limit=args.reports)]
    llm = CancerLLM.from_pretrained(args.model, dtype=args.dtype, device="cpu")
    llm.diagnosis_generator(max_new_tokens=4, progress=False).generate_many(texts[:2])  # warm-up
    rows = []
    for bs in args.batch_size or [8]:
        gen = llm.diagnosis_generator(max_new_tokens=args.max_new_tokens, batch_size=bs, progress=False)
        out = {}
        for label, continuous in (("batch_at_a_time", False), ("continuous", True)):
            llm.engine.continuous = continuous
            t0 = time.perf_counter()
            res = gen.generate_many(texts)
            out[label] = (time.perf_counter() - t0, [d.raw for d in res])
        llm.engine.continuous = True
        (t_old, old), (t_new, new) = out["batch_at_a_time"], out["continuous"]
        tok = llm.tokenizer
        row = {"model": args.model, "dtype": args.dtype, "reports": len(texts), "batch_size": bs,
               "batch_at_a_time_s": round(t_old, 1), "continuous_s": round(t_new, 1),
               "batch_at_a_time_per_s": round(len(texts) / t_old, 3), "continuous_per_s": round(len(texts) / t_new, 3),
               "speedup": round(t_old / t_new, 2), "identical": f"{sum(a == b for a, b in zip(old, new))}/{len(texts)}",
               "generated_tokens": sum(len(tok(x, add_special_tokens=False)["input_ids"]) for x in new),
               "longest_answer_tokens": max(len(tok(x, add_special_tokens=False)["input_ids"]) for x in new)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| batch size | batch at a time (diagnoses/s) | continuous (diagnoses/s) | speed-up | identical |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch_size']} | {r['batch_at_a_time_per_s']} | {r['continuous_per_s']} | **{r['speedup']}x** | "
              f"{r['identical']} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(r["identical"].split("/")[0] == r["identical"].split("/")[1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
