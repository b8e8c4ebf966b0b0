"""The attention calls of the phenotype benchmark run, replayed against the kernels that could serve them.

``bench_prefill_parts.py`` says how much of the prefill the fused CPU attention kernel takes; this script
says how fast that kernel runs and whether another formulation would beat it.  It records the shape of
every ``_softmax_part`` call (one per prefix level and run, plus each row's own part, per layer) in one
prefill of ``bench_generation.py``'s run (32 reports x 8 questions, ``max_new_tokens`` 1), then times, on
random tensors of exactly those shapes, each call ``--repeats`` times:

* **fused bf16 / fused fp32**: ``aten._scaled_dot_product_flash_attention_for_cpu`` (what the engine calls;
  causal mode for chunks encoded whole, an additive mask otherwise), in the run's dtype and in float32;
* **fused, causal flag off**: the causal chunks with ``is_causal=False`` (is the kernel skipping anything?);
* **matmul + softmax**: the engine's own fallback (two matmuls in the run's dtype, the softmax statistics
  in float32), which is what a hand-written replacement starts from;

and, for the GEMM rate on the same shapes, the scores matmul ``q @ k^T`` alone.  ``--end-to-end N`` also
runs the whole job (``max_new_tokens`` 50, cold) N times each way, alternating: the engine as it is, and with
every attention part computed in float32 inside the run's dtype; medians and token-identical answers.

It prints the attention FLOPs of the run (4 x rows x heads x queries x keys x head_dim, halved for causal
chunks), each variant's seconds and GFLOP/s, and the largest output difference against float32.

    python benchmarks/bench_attention_kernels.py --dtype bfloat16 --end-to-end 3 --json benchmarks/results/perf/attention-bfloat16.json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generation import DEFAULT_DATA, load_model, load_reports, our_way  # noqa: E402


def record_shapes(model: str, dtype: str, reports: int, max_chars: int, data: Path) -> list[tuple]:
    """(query shape, key shape, mask shape or None) of every attention part in one prefill."""
    import cancerllm.engine._shared_prefix as sp

    llm = load_model(model, dtype=dtype, device="cpu")
    texts = load_reports(reports, max_chars, data)
    seen: list[tuple] = []
    own = sp._softmax_part

    def logged(q, k, v, bias, scale):
        seen.append((tuple(q.shape), tuple(k.shape), None if bias is None else tuple(bias.shape)))
        return own(q, k, v, bias, scale)

    sp._softmax_part = logged
    try:
        our_way(llm, texts, 1, 256)
    finally:
        sp._softmax_part = own
    return seen


def end_to_end(args: argparse.Namespace) -> dict:
    """The whole job, cold, ``args.end_to_end`` times each way (alternating): the attention parts as the
    engine computes them, and cast to float32 first."""
    import statistics

    import torch

    import cancerllm.engine._shared_prefix as sp

    llm = load_model(args.model, dtype=args.dtype, device="cpu")
    texts = load_reports(args.reports, args.max_chars, args.data)
    own = sp._softmax_part

    def in_float32(q, k, v, bias, scale):
        if q.dtype in (torch.bfloat16, torch.float16):
            return own(q.float(), k.float(), v.float(), None if bias is None else bias.float(), scale)
        return own(q, k, v, bias, scale)

    ways = {"as is": own, "attention in float32": in_float32}
    times: dict[str, list[float]] = {w: [] for w in ways}
    answers: dict[str, list] = {}
    our_way(llm, texts, 50, 256)  # warm-up
    try:
        for _ in range(args.end_to_end):
            for name, fn in ways.items():
                sp._softmax_part = fn
                t0 = time.perf_counter()
                answers[name] = our_way(llm, texts, 50, 256)
                times[name].append(time.perf_counter() - t0)
    finally:
        sp._softmax_part = own
    same = sum(a == b for a, b in zip(answers["as is"], answers["attention in float32"]))
    result = {name: {"runs_s": [round(t, 2) for t in ts], "median_s": round(statistics.median(ts), 2)}
              for name, ts in times.items()}
    result["identical_answers"] = f"{same}/{len(answers['as is'])}"
    print("\nwhole job, cold, max_new_tokens 50: " + ", ".join(
        f"{n} {r['median_s']} s (runs {r['runs_s']})" for n, r in result.items() if isinstance(r, dict))
        + f"; token-identical answers {result['identical_answers']}")
    return result


def compiled_attention(scores_in_float32: bool):
    """The engine's torch.compile'd parts (``engine.compile_attention``: scores out of the matmul in the
    inputs' dtype, so bf16 rounds them before the softmax), or the same kernels fed float32 queries and keys
    (scores computed in float32)."""
    import torch

    import cancerllm.engine._shared_prefix as sp

    masked, causal = sp._compiled_kernels()

    def run(q, k, v, b):
        if scores_in_float32:
            q, k = q.float(), k.float()
        with torch.inference_mode():
            return (causal(q, k, v, 0.125) if b is None else masked(q, k, v, b, 0.125))[0]

    return run


def flops(q: tuple, k: tuple, mask: tuple | None) -> float:
    rows, heads, queries, dim = q
    f = 4.0 * rows * heads * queries * k[2] * dim
    return f / 2 if mask is None else f


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cancerllm-smol")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    ap.add_argument("--reports", type=int, default=32)
    ap.add_argument("--max-chars", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--compiled", action="store_true",
                    help="also the engine's torch.compile'd parts (scores in the run's dtype, and in float32)")
    ap.add_argument("--end-to-end", type=int, default=0, metavar="N",
                    help="also time the whole job N times with the attention as it is and in float32")
    args = ap.parse_args()

    import torch

    import cancerllm.engine._shared_prefix as sp

    calls = record_shapes(args.model, args.dtype, args.reports, args.max_chars, args.data)
    counts = collections.Counter(calls)
    dt = getattr(torch, args.dtype)
    flash = sp._cpu_flash()
    if flash is None:
        print("this torch has no fused CPU attention kernel", file=sys.stderr)
        return 1
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for q, k, mask in counts:
        bias = None
        if mask is not None:  # a third of the keys masked, as padding and other groups' slots are
            bias = torch.zeros(mask, dtype=dt)
            bias[..., : mask[-1] // 3] = float("-inf")
        tensors[(q, k, mask)] = (torch.randn(q, generator=gen).to(dt), torch.randn(k, generator=gen).to(dt),
                                 torch.randn(k, generator=gen).to(dt), bias)

    def fused(q, k, v, bias, causal=True):
        if bias is None:
            per = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(per, 1), v.repeat_interleave(per, 1)
            if causal:
                out, lse = flash(q, k, v, 0.0, True, scale=0.125)
            else:  # the same causal chunk through the masked entry point
                n = q.shape[-2]
                mask = torch.zeros(n, n, dtype=q.dtype).masked_fill_(torch.ones(n, n, dtype=torch.bool).triu_(1),
                                                                     float("-inf"))
                out, lse = flash(q, k, v, 0.0, False, attn_mask=mask, scale=0.125)
        else:
            out, lse = flash(q, k, v, 0.0, False, attn_mask=bias, scale=0.125)
        return out.float()

    def as32(fn):
        return lambda q, k, v, b: fn(q.float(), k.float(), v.float(), None if b is None else b.float())

    def fallback(q, k, v, b):  # the engine's non-fused path, forced
        saved = sp._cpu_flash
        sp._cpu_flash = lambda: None
        try:
            return sp._softmax_part(q, k, v, b, 0.125)[0]
        finally:
            sp._cpu_flash = saved

    variants = {
        f"fused {args.dtype}": fused,
        "fused float32": as32(fused),
        f"fused {args.dtype}, causal flag off": lambda q, k, v, b: fused(q, k, v, b, causal=False),
        f"matmul + softmax ({args.dtype} matmuls)": fallback,
    }
    if args.compiled:
        for label, scores32 in ((f"compiled matmul + softmax (scores in {args.dtype})", False),
                                ("compiled matmul + softmax (scores in float32)", True)):
            variants[label] = compiled_attention(scores32)

    total_flops = sum(flops(*key) * n for key, n in counts.items())
    out: dict = {"dtype": args.dtype, "threads": torch.get_num_threads(), "calls": len(calls),
                 "distinct_shapes": len(counts), "attention_tflop": round(total_flops / 1e12, 4), "variants": {}}
    reference = {key: as32(fused)(*t) for key, t in tensors.items()}
    print(f"{len(calls)} attention calls ({len(counts)} shapes), {total_flops / 1e12:.3f} TFLOP, "
          f"{torch.get_num_threads()} threads")
    print("\n| variant | s (whole run) | causal chunks s | masked parts s | GFLOP/s | max abs diff vs fp32 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, fn in variants.items():
        for t in tensors.values():  # every shape once: compiled variants compile here, not in the timing
            fn(*t)
        spent = collections.Counter()
        diff = 0.0
        for key, n in counts.items():
            t = tensors[key]
            t0 = time.perf_counter()
            for _ in range(args.repeats):
                o = fn(*t)
            spent["causal" if key[2] is None else "masked"] += (time.perf_counter() - t0) / args.repeats * n
            diff = max(diff, float((o.float() - reference[key]).abs().max()))
        s = sum(spent.values())
        out["variants"][name] = {"s": round(s, 3), "causal_s": round(spent["causal"], 3),
                                 "masked_s": round(spent["masked"], 3), "gflops": round(total_flops / s / 1e9, 1),
                                 "max_abs_diff_vs_fp32": diff}
        print(f"| {name} | {s:.2f} | {spent['causal']:.2f} | {spent['masked']:.2f} | "
              f"{total_flops / s / 1e9:.0f} | {diff:.2g} |", flush=True)
    # the GEMM rate on the same shapes: the scores matmul alone (GQA folded into the rows, no masking)
    gemm_flops, gemm_s = 0.0, 0.0
    for (q, k, _mask), n in counts.items():
        qq, kk = tensors[(q, k, _mask)][0], tensors[(q, k, _mask)][1]
        qq = qq.reshape(k[0], k[1], -1, q[-1])
        torch.matmul(qq, kk.transpose(-1, -2))
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            torch.matmul(qq, kk.transpose(-1, -2))
        gemm_s += (time.perf_counter() - t0) / args.repeats * n
        gemm_flops += 2.0 * qq.shape[0] * qq.shape[1] * qq.shape[2] * k[2] * q[-1] * n
    out["scores_matmul_alone"] = {"s": round(gemm_s, 3), "gflops": round(gemm_flops / gemm_s / 1e9, 1)}
    print(f"\nthe scores matmul alone ({args.dtype}, the same shapes, no softmax): {gemm_flops / 1e12:.3f} TFLOP "
          f"in {gemm_s:.2f} s = {gemm_flops / gemm_s / 1e9:.0f} GFLOP/s")
    if args.end_to_end:
        out["end_to_end"] = end_to_end(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
