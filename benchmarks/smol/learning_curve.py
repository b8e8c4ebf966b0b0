"""Validation learning curve of a CancerLLM-Smol run: per-field accuracy at saved checkpoints.

    python benchmarks/smol/learning_curve.py [--version v3] [--steps 0 100 250] [--limit 50] [--diagnosis]

Step 0 is the warm start (v1 for v2, v2 for v3, v3 for v4).  Each checkpoint's LoRA weights (``checkpoints/step-N/
adapter_weights.safetensors``, written by the trainer) become a PEFT adapter, are stacked onto the warm start
exactly (:func:`cancerllm.training.stack_adapters`) and scored with :func:`cancerllm.benchmark.run_benchmark`
on the first ``--limit`` validation reports (no rules, no misspellings).  The final adapter (``sft/``) counts
as the last step.  Results go to ``benchmarks/results/smol-<version>-learning-curve/curve.json`` (one entry
per step, appended and reused on reruns) and ``curve.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
V1 = ROOT / "cancerllm" / "_resources" / "cancerllm-smol-v1-adapter"
WARM_START = {"v2": V1, "v3": ROOT / "cancerllm" / "_resources" / "cancerllm-smol-v2-adapter",
              # v3 ships as the default's adapter
              "v4": ROOT / "cancerllm" / "_resources" / "cancerllm-smol-adapter",
              "v5": ROOT / "cancerllm" / "_resources" / "cancerllm-smol-adapter"}
RUN = ROOT / "benchmarks" / "out" / "smol-v2"
OUT = ROOT / "benchmarks" / "results" / "smol-v2-learning-curve"
VERSION = "v2"
DATA = ROOT.parent / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"


def checkpoint_adapter(step_dir: Path, dest: Path, r: int, alpha: int, dropout: float) -> Path:
    """A PEFT adapter folder from a trainer checkpoint's trainable weights."""
    from peft import LoraConfig
    from safetensors.torch import load_file, save_file

    weights = load_file(str(step_dir / "adapter_weights.safetensors"))
    state = {k.replace(".default.", "."): v.contiguous() for k, v in weights.items()}
    modules = sorted({k.split(".lora_")[0].rsplit(".", 1)[-1] for k in state})
    dest.mkdir(parents=True, exist_ok=True)
    save_file(state, str(dest / "adapter_model.safetensors"))
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=modules, task_type="CAUSAL_LM")
    cfg.base_model_name_or_path = "cancerllm-smol"
    cfg.save_pretrained(str(dest))
    for name in ("cancerllm_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (WARM_START[VERSION] / name).is_file():
            shutil.copy2(WARM_START[VERSION] / name, dest / name)
    return dest


def saved_steps(run: Path) -> list[int]:
    """The steps of a run's checkpoints and of its final adapter, in order."""
    steps = {int(d.name.split("-")[1]) for d in (run / "checkpoints").glob("step-*")}
    results = run / "train_results.json"
    if results.is_file():
        steps.add(int(json.loads(results.read_text())["steps"]))
    return sorted(steps)


def model_at(step: int, work: Path) -> Path:
    """The stacked (warm start + this run's LoRA at ``step``) adapter folder; step 0 is the warm start."""
    import yaml

    from cancerllm.training import stack_adapters

    warm = WARM_START[VERSION]
    if step == 0:
        return warm
    cfg = yaml.safe_load((HERE / f"sft_{VERSION}.yaml").read_text())
    lora = cfg["lora"]
    final = RUN / "sft"
    results = final / "train_results.json"
    if results.is_file() and json.loads(results.read_text())["steps"] == step:
        adapter = final
    else:
        cands = [d for d in (RUN / "sft" / "checkpoints").glob("step-*") if int(d.name.split("-")[1]) == step]
        if not cands:
            raise SystemExit(f"no checkpoint for step {step} under {RUN / 'sft' / 'checkpoints'}")
        ckpt = cands[0]
        adapter = checkpoint_adapter(ckpt, work / f"ckpt-{step}", lora["r"], lora["alpha"], lora["dropout"])
    return stack_adapters([warm, adapter], work / f"stacked-{step}", base_model="cancerllm-smol", dtype="float16")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", choices=sorted(WARM_START), default="v3")
    ap.add_argument("--steps", type=int, nargs="+", default=None,
                    help="checkpoints to score (default: v2 0 150 300 450; v3 0 100 175 250; v4 0 80 160 240; "
                         "otherwise 0 and every saved checkpoint)")
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--diagnosis", action="store_true", help="also score diagnoses (slower)")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args(argv)
    global RUN, OUT, VERSION
    VERSION = args.version
    RUN = ROOT / "benchmarks" / "out" / f"smol-{VERSION}"
    OUT = ROOT / "benchmarks" / "results" / f"smol-{VERSION}-learning-curve"
    if args.steps is None:
        args.steps = {"v2": [0, 150, 300, 450], "v3": [0, 100, 175, 250], "v4": [0, 80, 160, 240]}.get(VERSION)
        if args.steps is None:  # every saved checkpoint and the final adapter
            args.steps = [0, *saved_steps(RUN / "sft")]
    sys.path.insert(0, str(ROOT))
    from cancerllm.benchmark import run_benchmark

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "curve.json"
    curve = json.loads(path.read_text()) if path.is_file() else []
    work = RUN / "curve"
    for step in args.steps:
        key = {"step": step, "limit": args.limit, "diagnosis": args.diagnosis}
        if any(all(e.get(k) == v for k, v in key.items()) for e in curve):
            print(f"step {step}: already scored", flush=True)
            continue
        t0 = time.perf_counter()
        res = run_benchmark(args.data, models=[str(model_at(step, work))], rules=False, staging=False, limit=args.limit,
                            diagnosis=args.diagnosis, misspelling_rates=(), ci=True)
        (sys_,) = res["systems"].values()
        entry = {**key, "seconds": round(time.perf_counter() - t0, 1),
                 "macro": sys_["fields"]["macro"], "fields": sys_["fields"]["fields"],
                 "value_bearing": sys_["phenotype_accuracy"]["value_bearing"]}
        if args.diagnosis:
            entry["icd_generated"] = sys_.get("icd_generated")
            entry["icd"] = sys_.get("icd")
        curve.append(entry)
        path.write_text(json.dumps(curve, indent=1))
        print(f"step {step}: macro {entry['macro']['value']}", flush=True)
    write_table(curve)
    return 0


def write_table(curve: list[dict]) -> None:
    from cancerllm.benchmark.fields import FIELD_LABELS, MACRO_FIELDS

    rows = sorted(curve, key=lambda e: (e["limit"], e["step"]))
    head = ["step (reports)", "macro", *[FIELD_LABELS[f] for f in MACRO_FIELDS], "Not relevant"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in rows:
        cells = [f"{e['step']} ({e['limit']})", f"{100 * e['macro']['value']:.1f}"]
        for f in [*MACRO_FIELDS, "not_relevant"]:
            v = e["fields"].get(f)
            cells.append(f"{100 * v['value']:.1f}" if v else "-")
        lines.append("| " + " | ".join(cells) + " |")
    (OUT / "curve.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
