"""Both training phases end to end on a tiny random model, offline, in about a minute on a laptop CPU.

1. continued pre-training (LoRA, next-token prediction on packed raw reports);
2. instruction tuning on top of it (the phase-1 adapter is merged into the base, a new adapter is trained,
   loss on the answers only), with checkpoints every 50 steps;
3. phenotype extraction with the result, before/after exact match on held-out reports.

    python examples/train_tiny.py [--out runs/tiny] [--steps 150]

Swap ``base`` for a real model directory (and raise the steps) to train a real CancerLLM; see
docs/training.md for single-GPU, QLoRA and multi-node set-ups.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from cancerllm import CancerLLM, Example, Phenotype, format_answer
from cancerllm.schema import PHENOTYPE_INSTRUCTION
from cancerllm.training import TrainingConfig, instruction_tune, pretrain

TEMPLATES = [
    "Invasive ductal carcinoma of the {side} breast, {size} cm, grade {g}.",
    "Squamous cell carcinoma of the {side} lung, grade {g}, {size} cm.",
    "Adenocarcinoma, {side} side, {size} cm, grade {g}. Margins negative.",
]


def reports(n: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        side, g = rng.choice(["left", "right"]), rng.choice([1, 2, 3])
        size = f"{rng.randint(1, 9)}.{rng.randint(0, 9)}"
        out.append((rng.choice(TEMPLATES).format(side=side, g=g, size=size), side, f"g{g}"))
    return out


def examples(rows: list[tuple[str, str, str]]) -> list[Example]:
    return [Example(instruction=PHENOTYPE_INSTRUCTION, context=text, question=q.question, response=format_answer([a]))
            for text, side, grade in rows for q, a in ((Phenotype.LATERALITY, side), (Phenotype.GRADE, grade))]


def exact_match(llm: CancerLLM, rows: list[tuple[str, str, str]]) -> float:
    res = llm.phenotype_extractor(["laterality", "grade"], progress=False, max_new_tokens=8).extract_many(
        [t for t, _, _ in rows])
    return sum((r.laterality == [s]) + (r.grade == [g]) for r, (_, s, g) in zip(res, rows)) / (2 * len(rows))


def tiny_base(path: Path) -> Path:
    """A tiny random Mistral (its output head scaled to a pretrained model's size, so LoRA can learn)."""
    import torch

    from cancerllm.testing import make_tiny_model, make_tiny_tokenizer

    tok = make_tiny_tokenizer()
    model = make_tiny_model(tok)
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/tiny"))
    ap.add_argument("--steps", type=int, default=150)
    args = ap.parse_args()
    base = tiny_base(args.out / "base")
    train_rows = reports(200, seed=0)
    seen = {t for t, _, _ in train_rows}
    test_rows = [r for r in reports(60, seed=1) if r[0] not in seen][:30]

    # phase 1: continued pre-training on raw report text (a YAML file works the same: TrainingConfig.from_yaml)
    pt_cfg = TrainingConfig.from_dict({
        "stage": "pretrain", "output_dir": str(args.out / "pretrain"),
        "model": {"name_or_path": str(base)},
        "data": {"block_size": 64},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.05},
        "optimizer": {"learning_rate": 2e-3},
        "training": {"epochs": 1, "batch_size": 8},
    })
    pt_dir = pretrain(pt_cfg, texts=[t for t, _, _ in train_rows])
    print("phase-1 adapter:", pt_dir)

    # phase 2: instruction tuning on the merged phase-1 model
    sft_cfg = TrainingConfig.from_dict({
        "stage": "sft", "output_dir": str(args.out / "sft"),
        "model": {"name_or_path": str(base), "pretrain_adapter": str(pt_dir)},
        "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
        "optimizer": {"learning_rate": 3e-3},
        "training": {"max_steps": args.steps, "batch_size": 8},
        "checkpoint": {"save_every": 50},
    })
    sft_cfg.to_yaml(args.out / "sft.yaml")  # `python -m cancerllm.training --config runs/tiny/sft.yaml` reruns it
    before = exact_match(CancerLLM.from_pretrained(pt_dir), test_rows)  # base + phase-1 adapter
    sft_dir = instruction_tune(sft_cfg, examples=examples(train_rows))
    llm = CancerLLM.from_pretrained(sft_dir)
    after = exact_match(llm, test_rows)
    print(f"held-out exact match: before {before:.2f}, after {after:.2f}")
    print(test_rows[0][0], "->", llm.phenotype_extractor(["laterality", "grade"], progress=False).extract(
        test_rows[0][0]).as_dict(["laterality", "grade"]))


if __name__ == "__main__":
    main()
