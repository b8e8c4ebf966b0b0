"""Instruction-tuning step speed: LM head at every position vs only at the response positions.

In instruction tuning the prompt is long (template, report, retrieved examples) and the answer short, but the
usual forward pass projects every position onto the vocabulary.  ``cancerllm.training`` runs the model's body
and applies ``lm_head`` only where a label exists (:func:`cancerllm.training.loss.response_only_loss`).  This
script times one LoRA training step (forward + backward) both ways on the same batches (interleaved, median
of the repeats), checks that the losses are equal, and prints tokens/s and the ratio.

Models:

* ``smol-shape`` (default): a random Llama with SmolLM2-135M's vocabulary (49,152) and width (576) but
  4 layers instead of 30 - the head/body balance of a small model, fast enough for a CPU;
* ``cancerllm-smol``: the real SmolLM2-135M base (30 layers) of the embedded default model;
* any local model directory.

    python benchmarks/bench_lm_head.py --model smol-shape --model cancerllm-smol --prompt-len 512 --answer-len 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch


def load(name: str) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if name == "smol-shape":
        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=4,
                          num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=4096,
                          tie_word_embeddings=True)
        return LlamaForCausalLM(cfg)
    if name == "cancerllm-smol":
        from cancerllm._smol import smol_base_dir

        name = str(smol_base_dir())
    return AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)


def with_lora(model: torch.nn.Module) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))


def batch(vocab: int, bs: int, prompt_len: int, answer_len: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, vocab, (bs, prompt_len + answer_len), generator=g)
    labels = ids.clone()
    labels[:, :prompt_len] = -100  # loss on the answer only
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def step(model, fn, b) -> tuple[float, float]:
    """One forward + backward; returns (seconds, mean loss)."""
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    loss, n = fn(model, b["input_ids"], b["attention_mask"], b["labels"])
    (loss / n).backward()
    return time.perf_counter() - t0, float(loss.detach()) / n


def time_both(model, fns, batches, repeats: int) -> tuple[list[float], list[float]]:
    """Median step time and last loss of each path.  The paths are interleaved step by step so that the load
    of a shared machine drifts over both alike; the first round is warm-up."""
    times: list[list[float]] = [[] for _ in fns]
    losses = [0.0 for _ in fns]
    for r in range(repeats + 1):
        for b in batches:
            for i, fn in enumerate(fns):
                dt, losses[i] = step(model, fn, b)
                if r > 0:
                    times[i].append(dt)
    return [statistics.median(t) for t in times], losses


def main() -> int:
    from cancerllm.training.loss import full_logits_loss, response_only_loss

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="smol-shape, cancerllm-smol or a model directory")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--answer-len", type=int, default=8)
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()
    models = args.model or ["smol-shape"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; batch "
          f"{args.batch_size} x ({args.prompt_len} prompt + {args.answer_len} answer tokens), LoRA r=8, fp32, CPU")
    rows = []
    for name in models:
        model = with_lora(load(name)).train()
        vocab = model.get_output_embeddings().weight.shape[0]
        batches = [batch(vocab, args.batch_size, args.prompt_len, args.answer_len, s) for s in range(args.batches)]
        tokens = args.batch_size * (args.prompt_len + args.answer_len)
        (t_full, t_resp), (l_full, l_resp) = time_both(model, [full_logits_loss, response_only_loss], batches,
                                                       args.repeats)
        row = {
            "model": name,
            "layers": model.config.num_hidden_layers,
            "vocab": vocab,
            "full_tokens_per_s": round(tokens / t_full, 1),
            "response_only_tokens_per_s": round(tokens / t_resp, 1),
            "speedup": round(t_full / t_resp, 2),
            "loss_full": round(l_full, 6),
            "loss_response_only": round(l_resp, 6),
            "logits_mb_full": round(tokens * vocab * 4 / 2**20, 1),
            "logits_mb_response_only": round(args.batch_size * args.answer_len * vocab * 4 / 2**20, 2),
        }
        assert abs(l_full - l_resp) < 1e-3 * max(1.0, abs(l_full)), (l_full, l_resp)
        rows.append(row)
        print(json.dumps(row))
    print("\n| model | layers | vocab | full LM head (tok/s) | response-only (tok/s) | speed-up | logits MB (full -> resp.) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['layers']} | {r['vocab']:,} | {r['full_tokens_per_s']:,} | "
              f"{r['response_only_tokens_per_s']:,} | {r['speedup']}x | {r['logits_mb_full']} -> "
              f"{r['logits_mb_response_only']} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
