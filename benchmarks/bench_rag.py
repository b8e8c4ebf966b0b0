"""Retrieval-augmented phenotype extraction speed: the shared shots layout against the inline one.

The paper's retrieval-based CancerLLM shows ``k`` retrieved training examples in every prompt.  In the
*inline* layout (the earlier one) each example is a whole ``Input: <report> <question>`` / ``Output:`` pair
before the input, so the prompt prefix differs per question: each (report, question) is its own prompt and
the report and its examples are encoded once per question.  In the *shared* layout (the default now) the
examples' reports and then the input report form one prefix for all questions of a report, and each
question's suffix carries the examples' answers to that question: one prefix encode per report.

Both run here on the same validation reports with the same retrieved examples (MiniLM, the offline default,
over the training side of the split), greedy, on CancerLLM-Smol; the script prints questions/s, prompt
tokens encoded, the speed-up, and how many parsed answers agree (the layouts are different prompts, so some
answers may differ; their accuracy is what ``cancerllm benchmark --retriever`` scores).

    python benchmarks/bench_rag.py --reports 8 --k 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cancerllm import CancerLLM
from cancerllm.benchmark.tasks import select_records
from cancerllm.data import read_tcga, tcga_to_phenotype_examples
from cancerllm.retrieval import ShotSelector, get_retriever

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cancerllm-smol")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--reports", type=int, default=8, help="validation reports (8 questions each)")
    ap.add_argument("--retriever", default="minilm")
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    records = read_tcga(args.data)
    val = select_records(records, split="validation", limit=args.reports)
    corpus = tcga_to_phenotype_examples(select_records(records, split="train"))
    llm = CancerLLM.from_pretrained(args.model, dtype=args.dtype, device="cpu")
    t0 = time.perf_counter()
    selector = ShotSelector(corpus, get_retriever(args.retriever), k=args.k, tokenizer=llm.tokenizer,
                            max_shot_tokens=max(16, llm.max_input_tokens // (2 * args.k)))
    index_s = time.perf_counter() - t0
    texts = [r.text for r in val]
    row = {"model": args.model, "dtype": args.dtype, "reports": len(texts), "k": args.k,
           "retriever": args.retriever, "corpus_reports": len(selector), "index_s": round(index_s, 1)}
    answers = {}
    for layout in ("inline", "shared"):
        llm.prompt_builder.shots_layout = layout
        ex = llm.phenotype_extractor(retriever=selector, batch_size=args.batch_size, progress=False)
        groups, _ = ex.build_groups(texts, ex.questions, [str(i) for i in range(len(texts))])
        tokens = sum(len(g.prefix_ids) + sum(map(len, g.suffix_ids)) for g in groups)
        ex.extract_many(texts[:1])  # warm-up (and the retriever's first query)
        t0 = time.perf_counter()
        res = ex.extract_many(texts)
        t = time.perf_counter() - t0
        n = len(texts) * len(ex.questions)
        answers[layout] = [r.raw[q.name] for r in res for q in ex.questions]
        row[layout] = {"s": round(t, 2), "questions_per_s": round(n / t, 3), "prompt_groups": len(groups),
                       "prompt_tokens": tokens}
        print(json.dumps({layout: row[layout]}), flush=True)
    row["speedup"] = round(row["inline"]["s"] / row["shared"]["s"], 2)
    from cancerllm import parse_answer

    same = sum(parse_answer(a) == parse_answer(b) for a, b in zip(answers["inline"], answers["shared"]))
    row["same_parsed_answers"] = f"{same}/{len(answers['shared'])}"
    print(json.dumps(row))
    print("\n| layout | questions/s | prompt groups | prompt tokens |\n|---|---|---|---|")
    for layout in ("inline", "shared"):
        r = row[layout]
        print(f"| {layout} | {r['questions_per_s']} | {r['prompt_groups']} | {r['prompt_tokens']} |")
    print(f"speed-up {row['speedup']}x; parsed answers equal in {row['same_parsed_answers']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
