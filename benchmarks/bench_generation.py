"""Phenotype extraction speed: the official CancerLLM code's way vs cancerllm's engine, same model, same inputs.

The official way (its ``generation.py``): one prompt at a time, a full ``model.generate`` per question, the
report re-encoded for each of the eight questions, decoding until EOS or ``max_new_tokens``, on the PEFT
model as loaded (adapter not merged).  Ours: ``PhenotypeExtractor.extract_many`` on
``CancerLLM.from_pretrained`` defaults (adapter merged into the weights; length-sorted batches; each report
encoded once and its single KV copy read by its eight questions through shared-prefix attention; stop at
EOS or at the end of the answer set).  ``--ablate`` also times ours without the merge and with the
report's KV cache copied per question instead of shared.  Both use the same prompt
token ids and greedy decoding; the script checks that the parsed answers are identical and that each of
our raw outputs is a prefix of the official one (ours stops early at ``}``), then prints prompts/s and the
ratio.  Ours runs ``--repeats`` times (median compared; the first run of a process is slower, as it grows
the heap) and the official loop once (256 independent prompts: its rate hardly varies).

    python benchmarks/bench_generation.py --model tiny --model cancerllm-smol --reports 32
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

from cancerllm import CancerLLM, Example, parse_answer
from cancerllm.schema import PHENOTYPE_INSTRUCTION, resolve_phenotypes

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"


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
        import tempfile

        from cancerllm.testing import save_tiny_model

        path = save_tiny_model(Path(tempfile.mkdtemp()) / "tiny", arch="mistral", hidden_size=256, num_layers=4)
        return CancerLLM.from_pretrained(path, **kw)
    return CancerLLM.from_pretrained(name, **kw)


def official_way(llm: CancerLLM, reports: list[str], max_new_tokens: int) -> list[list[str]]:
    """One prompt at a time with ``model.generate``; stops only at EOS (as the official code)."""
    builder, tok, model = llm.prompt_builder, llm.tokenizer, llm.model
    out = []
    with torch.inference_mode():
        for text in reports:
            row = []
            for q in resolve_phenotypes():
                ids = builder.encode(Example(instruction=PHENOTYPE_INSTRUCTION, context=text, question=q.question))
                x = torch.tensor([ids.prompt_ids], device=model.device)
                gen = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                                     do_sample=False, pad_token_id=tok.pad_token_id)
                row.append(builder.answer_text(tok.decode(gen[0, x.shape[1]:], skip_special_tokens=True)))
            out.append(row)
    return out


def our_way(llm: CancerLLM, reports: list[str], max_new_tokens: int, batch_size: int) -> list[list[str]]:
    ex = llm.phenotype_extractor(max_new_tokens=max_new_tokens, batch_size=batch_size, progress=False)
    names = [q.name for q in ex.questions]
    return [[r.raw[n] for n in names] for r in ex.extract_many(reports)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="'tiny' (random 4-layer Mistral) or a model name/path")
    ap.add_argument("--reports", type=int, default=32)
    ap.add_argument("--max-chars", type=int, default=1500, help="report length cap (keeps prompts unchunked)")
    ap.add_argument("--max-new-tokens", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=256, help="sequences decoded together (256 = all 32x8)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of ours (same inputs); the median is compared, every run is reported")
    ap.add_argument("--device", help="cpu, cuda, cuda:1 or auto (default: the first GPU if any, else the CPU)")
    ap.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    ap.add_argument("--quantization", choices=["none", "8bit", "4bit"], default="none")
    ap.add_argument("--adapter", help="a LoRA adapter folder to load on top of each model")
    ap.add_argument("--ablate", action="store_true",
                    help="also time ours with the adapter unmerged and with the KV cache copied per question")
    args = ap.parse_args()
    models = args.model or ["tiny", "cancerllm-smol"]
    reports = load_reports(args.reports, args.max_chars, args.data)
    load = {k: v for k, v in {"device": args.device, "dtype": None if args.dtype == "auto" else args.dtype,
                              "quantization": None if args.quantization == "none" else args.quantization,
                              "adapter": args.adapter}.items() if v is not None}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; "
          f"{len(reports)} reports x 8 questions, max_new_tokens={args.max_new_tokens}")
    results = []
    for name in models:
        llm = load_model(name, **load)
        as_loaded = load_model(name, merge_adapter=False, **load)  # what the official code runs
        our_way(llm, reports[:2], 4, args.batch_size)  # warm-up
        runs = []
        for _ in range(args.repeats):  # the first run also pays for growing the process heap
            t0 = time.perf_counter()
            ours = our_way(llm, reports, args.max_new_tokens, args.batch_size)
            runs.append(round(time.perf_counter() - t0, 2))
        t_ours = statistics.median(runs)
        t0 = time.perf_counter()
        official = official_way(as_loaded, reports, args.max_new_tokens)
        t_off = time.perf_counter() - t0
        n = len(reports) * 8
        ablations = {}
        if args.ablate:
            for label, model, shared in [("ours_unmerged_s", as_loaded, True), ("ours_kv_copied_s", llm, False)]:
                model.engine.shared_prefix = shared
                t0 = time.perf_counter()
                same = our_way(model, reports, args.max_new_tokens, args.batch_size) == ours
                ablations[label] = round(time.perf_counter() - t0, 2)
                ablations[label[:-2] + "_same_output"] = same
                model.engine.shared_prefix = True
        same_answers = sum(parse_answer(a) == parse_answer(b) for ra, rb in zip(ours, official) for a, b in zip(ra, rb))
        prefix = sum(b.startswith(a) for ra, rb in zip(ours, official) for a, b in zip(ra, rb))
        row = {
            "model": name, "prompts": n, "official_s": round(t_off, 2), "ours_s": round(t_ours, 2),
            "official_prompts_per_s": round(n / t_off, 2), "ours_prompts_per_s": round(n / t_ours, 2),
            "speedup": round(t_off / t_ours, 2), "ours_runs_s": runs,
            "speedup_first_run": round(t_off / runs[0], 2), "identical_answers": f"{same_answers}/{n}",
            "ours_is_prefix_of_official": f"{prefix}/{n}", **ablations,
        }
        results.append(row)
        print(json.dumps(row))
        del llm, as_loaded
    print("\n| model | official (prompts/s) | cancerllm (prompts/s) | speed-up | identical parsed answers |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['official_prompts_per_s']} | {r['ours_prompts_per_s']} | "
              f"**{r['speedup']}x** | {r['identical_answers']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    ok = all(r["identical_answers"].split("/")[0] == r["identical_answers"].split("/")[1] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
