"""Retrieval throughput with the default retriever (all-MiniLM-L6-v2): encode, index and query, faiss vs numpy.

For corpora of 10k and 100k examples the script prints encode, index-build and query throughput of the
offline default retriever, with both exact index backends, and checks that they return the same neighbours.

Encoding dominates and grows linearly with the corpus: it is timed on ``--encode-sample`` real TCGA reports
(cut to MiniLM's 256 tokens, as the retriever does), and the 10k/100k encode times are that rate times the
corpus size, unless ``--full`` encodes the whole corpus (hours on a laptop CPU).  The index and query
figures are measured at full size, on vectors made from the real report embeddings (each a sampled report
vector plus small noise, re-normalised), so they have MiniLM's dimension and distribution.

    python benchmarks/bench_retrieval.py                       # about 1-2 minutes on 2 CPU cores
    python benchmarks/bench_retrieval.py --sizes 10000 --full  # encode 10k reports for real
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from cancerllm.retrieval import FAISS_MIN_SIZE, VectorIndex, get_retriever

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"


def load_texts(n: int, data: Path | None) -> list[str]:
    if data is not None and data.is_file():
        rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows.sort(key=lambda r: r["patient_id"])
    else:
        from cancerllm.demo import load_sample_reports

        rows = load_sample_reports()
    texts = [r["text"] for r in rows]
    return [
        texts[i % len(texts)] + ("" if i < len(texts) else f" (copy {i // len(texts)})") for i in range(n)
    ]


def best_of(fn, repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs, in seconds (least disturbed by other load on the machine)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def synthetic(base: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = base[rng.integers(0, len(base), n)] + rng.normal(0, 0.03, (n, base.shape[1])).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def index_figures(
    vectors: np.ndarray, queries: np.ndarray, k: int, single: int
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    hits = {}
    for backend in ("numpy", "faiss"):
        build = best_of(lambda: VectorIndex(vectors, backend=backend))  # noqa: B023
        idx = VectorIndex(vectors, backend=backend)
        idx.search(queries[:4], k)  # warm-up
        batch = best_of(lambda: idx.search(queries, k))  # noqa: B023
        one = best_of(lambda: [idx.search(queries[i : i + 1], k) for i in range(single)], repeat=2)  # noqa: B023
        hits[backend] = idx.search(queries, k)[1]
        out[backend] = {
            "build_ms": build * 1e3,
            "batch_queries_per_s": len(queries) / batch,
            "single_query_ms": one / single * 1e3,
        }
    out["same_neighbours"] = {"value": float((hits["numpy"] == hits["faiss"]).mean())}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument(
        "--sweep",
        type=int,
        nargs="*",
        default=[1_000, 3_000, 10_000, 30_000],
        help="extra corpus sizes for the numpy/faiss crossover (index only)",
    )
    ap.add_argument("--encode-sample", type=int, default=128, help="reports encoded to time the encoder")
    ap.add_argument("--queries", type=int, default=256, help="queries per batched search")
    ap.add_argument("--single", type=int, default=50, help="one-at-a-time queries timed")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--full", action="store_true", help="encode the whole corpus instead of extrapolating")
    ap.add_argument(
        "--index-threads",
        type=int,
        help="BLAS/faiss threads for the index figures (default: as is); "
        "1 avoids thread stalls on a busy machine (needs threadpoolctl for numpy)",
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()

    import faiss
    import torch

    blas = args.index_threads or "default"
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), faiss {faiss.__version__} "
        f"({faiss.omp_get_max_threads()} threads), numpy {np.__version__} (BLAS threads: {blas}), "
        f"{os.cpu_count()} cores; "
        f"auto backend uses faiss from {FAISS_MIN_SIZE:,} vectors"
    )
    retriever = get_retriever(batch_size=args.batch_size, device="cpu")
    t0 = time.perf_counter()
    retriever.encode_queries(["warm-up"])
    load_s = time.perf_counter() - t0
    sample = load_texts(args.encode_sample, args.data)
    t0 = time.perf_counter()
    base = retriever.encode_corpus(sample)
    rate = len(sample) / (time.perf_counter() - t0)
    print(
        f"model load {load_s:.1f} s; encoding {len(sample)} reports (<=256 tokens each): {rate:.1f} texts/s"
    )
    if args.index_threads:  # from here on: index work only
        from threadpoolctl import threadpool_limits

        faiss.omp_set_num_threads(args.index_threads)
        threadpool_limits(args.index_threads, user_api="blas")

    rows = []
    for n in args.sizes:
        if args.full:
            t0 = time.perf_counter()
            vectors = retriever.encode_corpus(load_texts(n, args.data))
            encode_s, measured = time.perf_counter() - t0, True
        else:
            vectors, encode_s, measured = synthetic(base, n, seed=n), n / rate, False
        queries = synthetic(base, args.queries, seed=1)
        fig = index_figures(vectors, queries, args.k, args.single)
        row = {
            "corpus": n,
            "encode_s": round(encode_s, 1),
            "encode_measured": measured,
            "query_encode_per_s": round(rate, 1),
        }
        for b in ("numpy", "faiss"):
            row.update({f"{b}_{key}": round(v, 3) for key, v in fig[b].items()})
        row["same_neighbours"] = fig["same_neighbours"]["value"]
        rows.append(row)
        print(json.dumps(row))

    print(
        "\n| corpus | encode (s) | index build numpy / faiss (ms) | batched queries/s numpy / faiss "
        "| one query numpy / faiss (ms) | same hits |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        enc = f"{r['encode_s']:,}" + ("" if r["encode_measured"] else " (est.)")
        print(
            f"| {r['corpus']:,} | {enc} | {r['numpy_build_ms']:.1f} / {r['faiss_build_ms']:.1f} | "
            f"{r['numpy_batch_queries_per_s']:,.0f} / {r['faiss_batch_queries_per_s']:,.0f} | "
            f"{r['numpy_single_query_ms']:.2f} / {r['faiss_single_query_ms']:.2f} | {r['same_neighbours']:.0%} |"
        )
    print(f"\nEnd to end, a query costs one encoding ({1 / rate * 1e3:.0f} ms here) plus the search above.")

    sweep = []
    if args.sweep:
        print(
            "\nnumpy/faiss crossover (index only):\n| corpus | batched numpy/faiss speed | one query numpy/faiss speed |"
        )
        print("|---|---|---|")
        for n in args.sweep:
            fig = index_figures(
                synthetic(base, n, seed=n), synthetic(base, args.queries, seed=2), args.k, args.single
            )
            b = fig["numpy"]["batch_queries_per_s"] / fig["faiss"]["batch_queries_per_s"]
            s = fig["faiss"]["single_query_ms"] / fig["numpy"]["single_query_ms"]
            sweep.append(
                {"corpus": n, "numpy_over_faiss_batched": round(b, 2), "numpy_over_faiss_single": round(s, 2)}
            )
            print(f"| {n:,} | {b:.2f}x | {s:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "sweep": sweep, "encode_texts_per_s": rate}, indent=2))
    return 0 if all(r["same_neighbours"] == 1.0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
