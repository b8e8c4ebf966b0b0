"""How far phenotype extraction is from this machine's hardware limit.

1. The machine: sustained matmul FLOP/s with a large GEMM (float32 and bfloat16; bfloat16 only where the
   CPU has native bf16 dot products, ``avx512_bf16`` / AMX), the same for a GEMM of the model's own shape
   (tokens x hidden @ hidden x intermediate), and the memory bandwidth (reading a 1 GiB tensor).
2. The work: the FLOPs our engine spends on the benchmark run of ``bench_generation.py`` (32 reports x 8
   questions): prefill = 2 x (non-embedding parameters) x (prompt tokens it encodes) + attention
   (2 x 2 x heads x head_dim x context per token and layer) + the LM head at each row's last position;
   decode = the same per generated token, plus the bytes each decode step must read (weights + the KV
   caches its rows attend to).
3. The time: prefill alone (``max_new_tokens=1``) and the whole run, so prefill FLOP/s / peak is the
   fraction of the hardware limit we reach, and decode bytes/s / bandwidth is its memory-bound counterpart.

Prompt tokens encoded per answer, ours against each peer, come from ``bench_generation.py --json``
(``--peers``), which counts them.

    python benchmarks/bench_roofline.py --dtype float32 --peers benchmarks/results/perf/generation-float32.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generation import DEFAULT_DATA, load_model, load_reports, our_way  # noqa: E402

from cancerllm._loading import cpu_supports_bf16 as cpu_has_bf16  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def gemm_flops(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 3.0) -> float:
    """Best sustained FLOP/s of ``[m, k] @ [k, n]`` over about ``seconds``."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    for _ in range(2):
        a @ b
    best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best


def bandwidth(gib: float = 1.0) -> float:
    """Bytes/s reading a ``gib`` GiB float32 tensor (best of 5 sums)."""
    x = torch.ones(int(gib * 2**30 / 4))
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        x.sum()
        times.append(time.perf_counter() - t0)
    return x.numel() * 4 / min(times)


class Shape:
    """The FLOP and byte counts of one decoder-only model config."""

    def __init__(self, cfg, dtype_bytes: int) -> None:
        self.layers = cfg.num_hidden_layers
        self.d = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.kv = getattr(cfg, "num_key_value_heads", None) or self.heads
        self.hd = getattr(cfg, "head_dim", None) or self.d // self.heads
        self.f = cfg.intermediate_size
        self.vocab = cfg.vocab_size
        self.bytes = dtype_bytes
        per_layer = self.d * self.heads * self.hd * 2 + 2 * self.d * self.kv * self.hd + 3 * self.d * self.f
        self.linear_params = per_layer * self.layers  # non-embedding matmul weights

    def token(self, context: int) -> float:
        """FLOPs of one token at ``context`` (keys it attends to), LM head not included."""
        return 2 * self.linear_params + 4 * self.heads * self.hd * context * self.layers

    def head(self) -> float:
        return 2 * self.d * self.vocab

    def kv_bytes(self, tokens: int) -> int:
        return 2 * self.layers * self.kv * self.hd * tokens * self.bytes

    def weight_bytes(self) -> int:
        return (self.linear_params + self.d * self.vocab) * self.bytes


def count(llm, reports: list[str], batch_size: int, max_new_tokens: int) -> dict:
    """FLOPs our engine computes for prefill and decode, and the bytes decode reads, from the prompt groups
    as the engine batches them and the generated lengths of a run."""
    shape = Shape(llm.model.config, torch.finfo(llm.model.dtype).bits // 8)
    ex = llm.phenotype_extractor(batch_size=batch_size, progress=False)
    groups, _ = ex.build_groups(reports, ex.questions, [str(i) for i in range(len(reports))])
    gen = our_way(llm, reports, max_new_tokens, batch_size)  # generated lengths (the same greedy run)
    lengths, r = [], 0
    for g in groups:  # our_way returns the answers group by group, suffix by suffix
        lengths.append([len(x) for x in gen[r : r + len(g.suffix_ids)]])
        r += len(g.suffix_ids)
    order = sorted(range(len(groups)), key=lambda i: -len(groups[i].prefix_ids))  # the engine's batching
    per = max(1, batch_size // max(len(g.suffix_ids) for g in groups))
    prefill = decode = decode_bytes = 0.0
    tokens = 0
    for s in range(0, len(order), per):
        batch = [groups[i] for i in order[s : s + per]]
        head = len(os.path.commonprefix([g.prefix_ids for g in batch])) if len(batch) > 1 else 0
        head = min(head, min(len(g.prefix_ids) for g in batch) - 1)
        head = head if head >= llm.engine.min_shared_header else 0
        prefill += sum(shape.token(i + 1) for i in range(head))
        tokens += head
        rows = []  # (group, its prefix length, the row's own tokens at the first generated token, generated length)
        for gi, g in zip(order[s : s + per], batch):
            p = len(g.prefix_ids)
            prefill += sum(shape.token(i + 1) for i in range(head, p))
            tokens += p - head
            for suf, n in zip(g.suffix_ids, lengths[gi]):
                prefill += sum(shape.token(p + j + 1) for j in range(len(suf))) + shape.head()
                tokens += len(suf)
                rows.append((gi, p, len(suf), n))
        for t in range(1, max(r[3] for r in rows)):  # the first token comes from the prefill's logits
            alive = [r for r in rows if r[3] > t]
            decode += sum(shape.token(p + own + t) + shape.head() for _, p, own, _ in alive)
            # bytes read: the weights, each live group's prefix KV once (shared by its rows), each row's own KV
            prefixes = {gi: p for gi, p, _, _ in alive}
            decode_bytes += shape.weight_bytes() + sum(shape.kv_bytes(p - head) for p in prefixes.values())
            decode_bytes += shape.kv_bytes(head) + sum(shape.kv_bytes(own + t) for _, _, own, _ in alive)
    return {"prefill_flops": prefill, "decode_flops": decode, "decode_bytes": decode_bytes,
            "prompt_tokens": tokens, "generated_tokens": sum(len(g) for g in gen),
            "answers": len(gen), "linear_params": shape.linear_params}


def timed(fn, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cancerllm-smol")
    ap.add_argument("--reports", type=int, default=32)
    ap.add_argument("--max-chars", type=int, default=1500)
    ap.add_argument("--max-new-tokens", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--dtype", default="float32", choices=list(DTYPES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--peers", type=Path, help="bench_generation.py --json output: prompt tokens per peer")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    dtype = DTYPES[args.dtype]
    if dtype == torch.bfloat16 and not cpu_has_bf16():
        print("note: this CPU has no native bf16 dot products (avx512_bf16/amx_bf16); bf16 is emulated")
    llm = load_model(args.model, dtype=args.dtype, device="cpu")
    cfg = llm.model.config
    row: dict = {"model": args.model, "dtype": args.dtype, "threads": torch.get_num_threads(),
                 "cpu_bf16": cpu_has_bf16()}
    row["peak_gemm_flops"] = max(gemm_flops(n, n, n, dtype) for n in (2048, 4096))
    row["model_gemm_flops"] = gemm_flops(2048, cfg.hidden_size, cfg.intermediate_size, dtype)
    row["bandwidth_bytes_s"] = bandwidth()
    reports = load_reports(args.reports, args.max_chars, args.data)
    our_way(llm, reports[:2], 2, args.batch_size)  # warm-up
    c = count(llm, reports, args.batch_size, args.max_new_tokens)
    row.update(c)
    # prefill-only and whole runs alternate, so that each pair sees the same machine (a shared machine drifts by
    # 20% between runs); decode = the median of the pairs' differences
    pairs = [(timed(lambda: our_way(llm, reports, 1, args.batch_size), 1),
              timed(lambda: our_way(llm, reports, args.max_new_tokens, args.batch_size), 1))
             for _ in range(args.repeats)]
    t_prefill = statistics.median(p for p, _ in pairs)
    t_all = statistics.median(a for _, a in pairs)
    t_decode = statistics.median(a - p for p, a in pairs)
    row["runs"] = [[round(p, 2), round(a, 2)] for p, a in pairs]
    decode_measured = t_decode > 0.02 * t_all
    row.update(prefill_s=round(t_prefill, 2), total_s=round(t_all, 2),
               decode_s=round(t_decode, 2) if decode_measured else None)
    row["prefill_flops_s"] = c["prefill_flops"] / t_prefill
    row["prefill_fraction_of_peak"] = round(row["prefill_flops_s"] / row["peak_gemm_flops"], 3)
    row["prefill_fraction_of_model_gemm"] = round(row["prefill_flops_s"] / row["model_gemm_flops"], 3)
    row["decode_bytes_s"] = c["decode_bytes"] / t_decode if decode_measured else None
    row["decode_fraction_of_bandwidth"] = (round(row["decode_bytes_s"] / row["bandwidth_bytes_s"], 3)
                                           if decode_measured else None)
    row["prompt_tokens_per_answer"] = {"cancerllm": round(c["prompt_tokens"] / c["answers"], 1)}
    if args.peers and args.peers.is_file():
        peers = json.loads(args.peers.read_text())
        n = peers["prompts"]
        for key, label in [("prompt_tokens_one_by_one", "official loop"), ("generate_prompt_tokens", "batched generate"),
                           ("vllm_cold_prompt_tokens", "vLLM, cold cache"), ("vllm_warm_prompt_tokens", "vLLM, warm cache")]:
            if peers.get(key) is not None:
                row["prompt_tokens_per_answer"][label] = round(peers[key] / n, 1)
    g = 1e9
    print(json.dumps(row, indent=2, default=float))
    print(f"\n| {args.dtype} | figure |\n|---|---|")
    print(f"| large GEMM peak | {row['peak_gemm_flops'] / g:.0f} GFLOP/s |")
    print(f"| model-shaped GEMM (2048 x {cfg.hidden_size} @ {cfg.hidden_size} x {cfg.intermediate_size}) | "
          f"{row['model_gemm_flops'] / g:.0f} GFLOP/s |")
    print(f"| our prefill | {c['prefill_flops'] / g:.0f} GFLOP in {t_prefill:.1f} s = {row['prefill_flops_s'] / g:.0f} "
          f"GFLOP/s = **{100 * row['prefill_fraction_of_peak']:.0f}% of peak** "
          f"({100 * row['prefill_fraction_of_model_gemm']:.0f}% of the model-shaped GEMM) |")
    if decode_measured:
        print(f"| our decode | {c['decode_bytes'] / 2**30:.1f} GiB read in {t_decode:.1f} s = "
              f"{row['decode_bytes_s'] / 2**30:.1f} GiB/s = {100 * row['decode_fraction_of_bandwidth']:.0f}% of "
              f"{row['bandwidth_bytes_s'] / 2**30:.1f} GiB/s |")
    else:
        print(f"| our decode | {c['decode_bytes'] / 2**30:.1f} GiB read; its time is within the runs' noise "
              f"(whole run minus prefill {t_decode:.2f} s of {t_all:.1f} s) |")
    for k, v in row["prompt_tokens_per_answer"].items():
        print(f"| prompt tokens encoded per answer, {k} | {v} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
