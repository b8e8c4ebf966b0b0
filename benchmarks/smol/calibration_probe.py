"""Probe: would calibrated candidate scoring fix CancerLLM-Smol's majority-value answers?

The default's wrong answers on closed-vocabulary fields are mostly the field's most frequent value (HER2
"negative" for HER2-positive reports, "Left" for right-sided tumours, G3 for G2).  Contextual calibration
(Zhao et al. 2021) and PMI scoring (Holtzman et al. 2021) are the standard remedies: score every answer of
the field's vocabulary (the training side's gold answers seen at least twice) by its log-probability given
the report, minus ``alpha`` times its log-probability given a content-free report ("N/A").  ``alpha = 0`` is
whole-answer constrained decoding (it reproduced the greedy answers on every probed case); ``alpha = 1`` is
PMI.  A report split into chunks takes its best-scoring chunk.

    python benchmarks/smol/calibration_probe.py --reports 72 --out benchmarks/results/calibration-probe
    python benchmarks/smol/calibration_probe.py --analyse benchmarks/results/calibration-probe/scores.jsonl

Writes one JSON line per scored (report, field) and prints accuracy per field and ``alpha`` next to the
stored float32 greedy run's answers on the same cases.  float32 on the CPU (about 16-20 s per report
with the site's 67 candidates on 2 cores).
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"
GREEDY = ROOT / "benchmarks" / "results" / "staging-validation" / "predictions" / "cancerllm-smol.jsonl"
FIELDS = ("laterality", "grade", "receptor_status", "tumor_location")
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _flags(phenotype: str, gold: list[str], pred: list[str] | None) -> dict[str, bool]:
    from cancerllm.benchmark.fields import receptor_statuses
    from cancerllm.benchmark.normalize import answers_match

    if phenotype == "receptor_status":
        g, p = receptor_statuses(gold), receptor_statuses(pred)
        return {k: p.get(k) == v for k, v in g.items()}
    return {phenotype: answers_match(phenotype, pred, gold)}


def analyse(path: Path, greedy: Path = GREEDY) -> dict[str, dict[str, float]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    stored = {}
    if greedy.is_file():
        for line in greedy.read_text().splitlines():
            d = json.loads(line)
            if d.get("task") == "phenotype":
                stored[(d["patient_id"], d["phenotype"])] = d["prediction"]
    tot: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in rows:
        for a in ALPHAS:
            scored = [(lp[i] - a * r["null"][i], c) for lp in r["lp"] for i, c in enumerate(r["cands"])]
            best = max(scored, key=lambda x: x[0])[1]
            for k, ok in _flags(r["phenotype"], r["gold"], best).items():
                tot[k][a] += ok
        for k, ok in _flags(r["phenotype"], r["gold"], stored.get((r["patient_id"], r["phenotype"]))).items():
            tot[k]["greedy"] += ok
            tot[k]["n"] += 1
    out = {}
    print(f"{len({r['report'] for r in rows})} reports")
    print("| field | n | greedy (stored fp32 run) | " + " | ".join(f"alpha {a}" for a in ALPHAS) + " |")
    print("|---|---:|---:|" + "---:|" * len(ALPHAS))
    for k, c in tot.items():
        n = c["n"]
        out[k] = {"n": n, "greedy": round(100 * c["greedy"] / n, 1), **{str(a): round(100 * c[a] / n, 1) for a in ALPHAS}}
        print(f"| {k} | {n} | {out[k]['greedy']} | " + " | ".join(str(out[k][str(a)]) for a in ALPHAS) + " |")
    return out


def probe(reports: int, out_dir: Path, fields: tuple[str, ...]) -> Path:
    import torch

    from cancerllm import CancerLLM
    from cancerllm._task_adapters import task_scope
    from cancerllm.benchmark.tasks import build_tasks, select_records
    from cancerllm.data import read_tcga
    from cancerllm.prompts import format_answer
    from cancerllm.schema import Example

    recs = list(read_tcga(DATA))
    train = build_tasks(select_records(recs, split="train"))
    val = build_tasks(select_records(recs, split="validation"))
    vocab = {}
    for f in fields:
        seen = collections.Counter(tuple(x.gold) for x in train.phenotype_cases if x.phenotype == f and x.gold)
        vocab[f] = [list(k) for k, n in seen.most_common() if n >= 2]
    llm = CancerLLM.from_pretrained("cancerllm-smol", dtype="float32", device="cpu")
    ex = llm.phenotype_extractor(list(fields), progress=False)
    qs = {q.name: q for q in ex.questions}
    builder, model = llm.prompt_builder, llm.engine.model

    def candidates(f: str, context: str) -> list[tuple[list[int], list[int]]]:
        out = []
        for c in vocab[f]:
            enc = builder.encode(Example(instruction=ex.instruction, context=context, question=qs[f].question,
                                         response=format_answer(c)), with_response=True)
            out.append((enc.prefix_ids + enc.suffix_ids, enc.response_ids))
        return out

    @torch.inference_mode()
    def score(prompt: list[int], resps: list[list[int]], base: tuple[int, object] | None = None,
              bs: int = 24) -> list[float]:
        if base is None:
            o = model(input_ids=torch.tensor([prompt]), use_cache=True)
        else:
            o = model(input_ids=torch.tensor([prompt[base[0]:]]), past_key_values=copy.deepcopy(base[1]),
                      use_cache=True)
        first = torch.log_softmax(o.logits[0, -1].float(), -1)
        res = []
        for s in range(0, len(resps), bs):
            part = resps[s:s + bs]
            width = max(len(r) for r in part) - 1
            lp = None
            if width > 0:
                ids = torch.zeros((len(part), width), dtype=torch.long)
                m = torch.zeros_like(ids)
                for i, r in enumerate(part):
                    ids[i, :len(r) - 1] = torch.tensor(r[:-1])
                    m[i, :len(r) - 1] = 1
                cache = copy.deepcopy(o.past_key_values)
                cache.batch_repeat_interleave(len(part))
                mask = torch.cat([torch.ones((len(part), len(prompt)), dtype=torch.long), m], 1)
                lp = torch.log_softmax(model(input_ids=ids, attention_mask=mask, past_key_values=cache,
                                             use_cache=True).logits.float(), -1)
            for i, r in enumerate(part):
                res.append(first[r[0]].item() + sum(lp[i, t - 1, r[t]].item() for t in range(1, len(r))))
        return res

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "scores.jsonl"
    with task_scope(llm, "phenotype"):
        null = {}
        for f in fields:
            cs = candidates(f, "N/A")
            null[f] = score(cs[0][0], [r for _, r in cs])
        by_report = collections.defaultdict(list)
        for c in val.phenotype_cases:
            if c.phenotype in fields and c.gold is not None:
                by_report[c.report].append(c)
        t0 = time.time()
        with path.open("w") as fh:
            for n, rep in enumerate(sorted(by_report)[:reports]):
                per: dict[int, list[list[float]]] = {id(c): [] for c in by_report[rep]}
                for chunk, _ in ex._chunks(val.records[rep].text, [qs[f] for f in fields], "report"):
                    head = builder.encode(Example(instruction=ex.instruction, context=chunk,
                                                  question=qs[fields[0]].question))
                    with torch.inference_mode():
                        o = model(input_ids=torch.tensor([head.prefix_ids]), use_cache=True)
                    base = (len(head.prefix_ids), o.past_key_values)
                    for c in by_report[rep]:
                        cs = candidates(c.phenotype, chunk)
                        per[id(c)].append(score(cs[0][0], [r for _, r in cs], base=base))
                for c in by_report[rep]:
                    fh.write(json.dumps({"report": c.report, "patient_id": c.patient_id, "phenotype": c.phenotype,
                                         "gold": c.gold, "cands": vocab[c.phenotype], "lp": per[id(c)],
                                         "null": null[c.phenotype]}) + "\n")
                fh.flush()
                print(f"{n + 1} reports, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reports", type=int, default=72, help="validation reports probed (in split order)")
    ap.add_argument("--fields", default=",".join(FIELDS))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "calibration-probe")
    ap.add_argument("--analyse", type=Path, help="only analyse an existing scores.jsonl")
    args = ap.parse_args()
    path = args.analyse or probe(args.reports, args.out, tuple(args.fields.split(",")))
    res = analyse(path)
    (path.parent / "summary.json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
