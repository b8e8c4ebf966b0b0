"""Diagnosis speed against the code as it was before any diagnosis speed work: the real "today's path".

``bench_diagnosis.py`` compares continuous batching with ``engine.continuous = False``. That baseline runs on
today's engine and keeps later gains: the header encoded once, finished rows dropped. This script runs the
same job on two checkouts, each in its own process:

* *before*: a git worktree at ``--before`` (default ``cf1985c``, the last commit before the diagnosis path
  changed, when issue 17 was filed), with its default adapter ``cancerllm-smol`` (CancerLLM-Smol v2 then);
* *after*: this checkout with ``cancerllm-smol-v2``, the same adapter file (the script checks the sha256).

Both sides get the 50 validation reports, ``batch_size`` 8, up to 500 new tokens, greedy, and the same
dtype. The script prints the best of ``--repeats`` runs per side, diagnoses/s, the speed-up and how many
generated texts are identical.

    python benchmarks/bench_diagnosis_history.py --dtype float32 --json benchmarks/results/perf/amx-host/diagnosis-history-float32.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"
ADAPTER = {"before": "cancerllm/_resources/cancerllm-smol-adapter",
           "after": "cancerllm/_resources/cancerllm-smol-v2-adapter"}
MODEL = {"before": "cancerllm-smol", "after": "cancerllm-smol-v2"}


def child(args: argparse.Namespace) -> int:
    """One side: time ``generate_many`` on the reports, write the raw texts and times as JSON."""
    import cancerllm
    from cancerllm import CancerLLM
    from cancerllm.benchmark.tasks import select_records
    from cancerllm.data import read_tcga

    texts = [r.text for r in select_records(read_tcga(args.data), split="validation", limit=args.reports)]
    llm = CancerLLM.from_pretrained(args.model, dtype=args.dtype, device="cpu")
    llm.diagnosis_generator(max_new_tokens=4, progress=False).generate_many(texts[:2])  # warm-up
    gen = llm.diagnosis_generator(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, progress=False)
    runs, res = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = gen.generate_many(texts)
        runs.append(round(time.perf_counter() - t0, 2))
    Path(args.child).write_text(json.dumps({"code": cancerllm.__file__, "runs_s": runs, "raw": [d.raw for d in res]}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="cf1985c", help="the commit of the 'before' side (default cf1985c)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--reports", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    from cancerllm._task_adapters import folder_sha256  # the hash provenance records for an adapter
    out: dict = {"dtype": args.dtype, "reports": args.reports, "batch_size": args.batch_size,
                 "max_new_tokens": args.max_new_tokens, "before_commit": args.before}
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.before],
                       check=True, capture_output=True)
        try:
            if folder_sha256(tree / ADAPTER["before"]) != folder_sha256(ROOT / ADAPTER["after"]):
                raise SystemExit("the two sides' adapters differ: pick a --before whose default is v2")
            sides = {}
            for side, code in (("before", tree), ("after", ROOT)):
                dst = Path(tmp) / f"{side}.json"
                env = {**os.environ, "PYTHONPATH": str(code)}
                cmd = [sys.executable, __file__, "--child", str(dst), "--model", MODEL[side], "--data", str(args.data),
                       "--reports", str(args.reports), "--batch-size", str(args.batch_size), "--max-new-tokens",
                       str(args.max_new_tokens), "--repeats", str(args.repeats), "--dtype", args.dtype]
                subprocess.run(cmd, check=True, env=env, cwd=tmp)
                sides[side] = json.loads(dst.read_text())
                print(f"{side}: {sides[side]['code']} runs {sides[side]['runs_s']} s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    t_before, t_after = min(sides["before"]["runs_s"]), min(sides["after"]["runs_s"])
    same = sum(a == b for a, b in zip(sides["before"]["raw"], sides["after"]["raw"]))
    out.update(before_runs_s=sides["before"]["runs_s"], after_runs_s=sides["after"]["runs_s"],
               before_per_s=round(args.reports / t_before, 3), after_per_s=round(args.reports / t_after, 3),
               speedup=round(t_before / t_after, 2), identical=f"{same}/{args.reports}")
    print(json.dumps(out))
    print(f"\n| side | best of {args.repeats} (s) | diagnoses/s |\n|---|---|---|")
    print(f"| before ({args.before}) | {t_before} | {out['before_per_s']} |")
    print(f"| after (this checkout) | {t_after} | {out['after_per_s']} |")
    print(f"\nspeed-up **{out['speedup']}x**, identical {out['identical']} ({args.dtype})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
