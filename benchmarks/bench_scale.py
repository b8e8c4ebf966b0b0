"""Scale-out throughput: rows/s of phenotype extraction locally, on Ray Data (1 and 2 actors) and on Spark
(local[1] and local[2]), the same inputs and model, plus a simulated two-node Ray cluster
(``ray.cluster_utils.Cluster``) that checks where the actors ran and that the output has exactly one row per id.

    python benchmarks/bench_scale.py                         # tiny random model, 200 synthetic reports
    python benchmarks/bench_scale.py --model cancerllm-smol --reports 24 --tcga

Every configuration writes its own Parquet output; rows are compared with the local run (identical answers
are expected: the same predictor runs everywhere).  This machine has 2 cores: with 2 workers each model
process gets one core, so the best case is no loss, not a 2x gain; the figures say how much the engines cost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TCGA = ROOT.parent / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"


def _inputs(path: Path, n: int, tcga: bool) -> None:
    rows = []
    if tcga:
        for line in TCGA.read_text(encoding="utf-8").split("\n")[:n]:
            r = json.loads(line)
            rows.append({"id": r["patient_id"], "text": r["text"][:1500]})
    else:
        sides, grades = ("left", "right"), ("G1", "G2", "G3")
        for i in range(n):
            rows.append({"id": f"r{i:05d}", "text": f"Invasive ductal carcinoma of the {sides[i % 2]} breast, "
                                                     f"{grades[i % 3]}, {1 + i % 5}.{i % 10} cm. Margins clear."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _rows(path: Path) -> list[dict]:
    import pandas as pd

    frame = pd.read_parquet(path).sort_values("id").reset_index(drop=True)
    return [{k: (list(v) if hasattr(v, "tolist") and not isinstance(v, str) else (None if v != v else v))
             for k, v in r.items()} for r in frame.to_dict("records")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="'tiny' (a random 2-layer Mistral built here) or a model name")
    ap.add_argument("--reports", type=int, default=200)
    ap.add_argument("--tcga", action="store_true", help="the first N shared TCGA reports (cut to 1,500 characters)")
    ap.add_argument("--phenotypes", default="grade,laterality,tumor_size")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    model = args.model
    if model == "tiny":
        from cancerllm.testing import save_tiny_model

        model = str(save_tiny_model(work / "tiny", hidden_size=64))
    src = work / "in.jsonl"
    _inputs(src, args.reports, args.tcga)
    phenos = args.phenotypes.split(",")
    common = {"model": model, "phenotypes": phenos, "batch_size": 32}
    results: dict[str, dict] = {}

    def timed(name: str, fn, out: Path) -> None:
        t0 = time.perf_counter()
        fn(out)
        secs = time.perf_counter() - t0
        results[name] = {"seconds": round(secs, 2), "rows_per_s": round(args.reports / secs, 2), "out": out}
        print(f"{name:22s} {secs:7.1f} s  {args.reports / secs:8.2f} rows/s", flush=True)

    # local: the same predictor in this process (what `cancerllm extract -o OUT.parquet` computes)
    def local(out: Path) -> None:
        import pandas as pd

        from cancerllm.scale import BatchExtractor

        rows = [json.loads(x) for x in src.read_text(encoding="utf-8").splitlines()]
        frame = BatchExtractor(**common)(pd.DataFrame(rows))
        frame.to_parquet(out, index=False)

    timed("local", local, work / "local.parquet")

    import ray

    from cancerllm.scale import ray as cray

    cray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    for w in (1, 2):
        timed(f"ray, {w} actor(s)", lambda out, w=w: cray.extract(str(src), out, workers=w, **common),
              work / f"ray{w}")
    ray.shutdown()

    from pyspark.sql import SparkSession

    from cancerllm.scale import spark as cspark

    for w in (1, 2):
        session = (SparkSession.builder.master(f"local[{w}]").config("spark.ui.enabled", "false")
                   .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.executorEnv.HF_HUB_OFFLINE", "1").getOrCreate())
        session.sparkContext.setLogLevel("ERROR")
        timed(f"spark, local[{w}]", lambda out, s=session, w=w: cspark.run(str(src), out, spark=s, partitions=w,
                                                                           **common), work / f"spark{w}")
        session.stop()

    reference = _rows(results["local"]["out"])
    for r in results.values():
        r["identical_rows_to_local"] = _rows(r.pop("out")) == reference

    # a simulated two-node Ray cluster: placement and exactly-once output
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    out = work / "cluster"
    t0 = time.perf_counter()
    summary = cray.extract(str(src), out, workers=2, num_cpus=1, **common)
    secs = time.perf_counter() - t0
    rows = _rows(out)
    ids = [r["id"] for r in rows]
    from ray._private import state as ray_state  # the GCS view (the state API needs the dashboard)

    actors = ray_state.actors().values()
    nodes = {(a.get("Address") or {}).get("NodeID") for a in actors if "MapWorker" in a.get("ActorClassName", "")}
    results["ray cluster, 2 nodes x 1 CPU"] = {
        "seconds": round(secs, 2), "rows_per_s": round(args.reports / secs, 2),
        "identical_rows_to_local": rows == reference, "exactly_one_row_per_id": len(ids) == len(set(ids)) == args.reports,
        "nodes_with_actors": len(nodes), "summary": {k: str(v) for k, v in summary.items()}}
    print(f"ray cluster (2 nodes)  {secs:7.1f} s; actors on {len(nodes)} node(s); "
          f"one row per id: {len(ids) == len(set(ids)) == args.reports}", flush=True)
    ray.shutdown()
    cluster.shutdown()

    meta = {"model": args.model, "reports": args.reports, "tcga": args.tcga, "phenotypes": phenos,
            "cpus": os.cpu_count(), "results": results}
    print(json.dumps(meta, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
