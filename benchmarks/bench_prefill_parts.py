"""Where the engine's time goes, module by module, on the phenotype benchmark run of ``bench_generation.py``.

Wall-clock time is summed per part over one run, by wrapping each part's ``forward`` (or function) with a
``time.perf_counter`` timer. torch's profiler with ``record_shapes`` slowed single ops 5-30x on this machine,
so it was not used. The parts: attention modules as a whole, and within them the q/k/v/o projections, rotary
encoding and the shared-prefix attention function (split and merge, and within it the fused kernel calls;
attention without shared-prefix state goes to the model's own implementation and is not in this row), then
MLPs, RMS norms and the LM head. Nested parts are also counted in their parent, so the shares do not add up to 100%.
``--max-new-tokens 1`` times the prefill alone.

    python benchmarks/bench_prefill_parts.py --dtype bfloat16 --max-new-tokens 1
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cancerllm-smol")
    ap.add_argument("--reports", type=int, default=32)
    ap.add_argument("--max-chars", type=int, default=1500)
    ap.add_argument("--max-new-tokens", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    import cancerllm.engine._shared_prefix as sp

    llm = load_model(args.model, dtype=args.dtype, device="cpu")
    reports = load_reports(args.reports, args.max_chars, args.data)
    spent: collections.Counter = collections.Counter()

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t0
        return wrapper

    sp._attention = timed("attention function (shared-prefix split + merge)", sp._attention)
    flash = sp._cpu_flash()
    if flash is not None:  # the fused kernel calls inside it; the rest of the function is glue
        kernel = timed("fused CPU attention kernel calls", flash)
        sp._cpu_flash = lambda: kernel
    base = llm.model.get_base_model() if hasattr(llm.model, "get_base_model") else llm.model
    rotary = sys.modules[type(base.model.layers[0].self_attn).__module__]
    if hasattr(rotary, "apply_rotary_pos_emb"):
        rotary.apply_rotary_pos_emb = timed("rotary encoding", rotary.apply_rotary_pos_emb)
    for layer in base.model.layers:
        attn = layer.self_attn
        for p in ("q_proj", "k_proj", "v_proj", "o_proj"):
            getattr(attn, p).forward = timed("q/k/v/o projections", getattr(attn, p).forward)
        attn.forward = timed("attention modules (all of it)", attn.forward)
        layer.mlp.forward = timed("MLPs", layer.mlp.forward)
        for p in ("input_layernorm", "post_attention_layernorm"):
            getattr(layer, p).forward = timed("RMS norms", getattr(layer, p).forward)
    base.lm_head.forward = timed("LM head", base.lm_head.forward)
    our_way(llm, reports, args.max_new_tokens, args.batch_size)  # warm-up
    spent.clear()
    t0 = time.perf_counter()
    our_way(llm, reports, args.max_new_tokens, args.batch_size)
    total = time.perf_counter() - t0
    print(json.dumps({"dtype": args.dtype, "max_new_tokens": args.max_new_tokens, "total_s": round(total, 2),
                      **{k: round(v, 2) for k, v in spent.items()}}))
    print(f"\n| part ({args.dtype}, max_new_tokens={args.max_new_tokens}) | s | share |\n|---|---|---|")
    print(f"| whole run | {total:.2f} | 100% |")
    for k, v in spent.most_common():
        print(f"| {k} | {v:.2f} | {100 * v / total:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
