"""The shared machinery of both phases: the explicit training loop, its checkpoints, and saving the result.

The loop is small and explicit (no ``transformers.Trainer``) so that three things hold by construction:

* **exact resume** - the data order of epoch ``e`` is a permutation drawn from ``seed + e``; a checkpoint
  stores the step, the epoch, the position in it, the optimiser/scheduler states and every RNG state, so a
  killed run continued with ``resume=True`` ends with the same adapter as an uninterrupted one;
* **response-only LM head** - the loss module (:class:`~cancerllm.training.loss.CausalLMLoss`) is what the
  distributed engine wraps, so computing logits only at labelled positions does not bypass DDP;
* **any engine** - device placement, mixed precision, DDP / DeepSpeed / FSDP come from Hugging Face
  Accelerate (``accelerate launch`` or ``torchrun`` set the processes up; see :mod:`cancerllm.training.launch`).

Each process reads a disjoint shard of every epoch's order (``order[rank::world]``); gradients are averaged
across processes at the last micro-batch of each optimiser step.  The loss of a step is the mean over *all*
its labelled tokens - every micro-batch of the accumulated step on every process - so each process divides
its summed loss by the global label count (one all-reduce per step) and multiplies by the number of
processes, which the engine's gradient averaging divides out again: the gradient is that of one process
on the union of the data, whatever the token counts of the shards, and the reported loss is its loss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import checkpoint as ckpt
from .config import TrainingConfig

logger = logging.getLogger(__name__)

__all__ = ["TrainState", "TrainerCallback", "run_training"]

RESULTS_NAME = "train_results.json"
LOG_NAME = "train_log.jsonl"
CONFIG_YAML_NAME = "training_config.yaml"


# ============================================================================================ state & callbacks
@dataclass
class TrainState:
    """Where a run stands; passed to callbacks and stored in checkpoints.

    Attributes:
        step: optimiser steps done.  epoch / micro: the epoch and the next micro-batch position in it.
        total_steps: steps the run will make.  loss: the last step's mean loss over all processes.
    """

    step: int = 0
    epoch: int = 0
    micro: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 0
    loss: float | None = None
    local_loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    tokens: int = 0
    log_history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: str | None = None
    process_index: int = 0
    num_processes: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainOutput:
    model: Any
    state: TrainState
    results: dict[str, Any]
    full_state_dict: dict[str, Any] | None = None


class TrainerCallback:
    """Hooks into the loop (all no-ops by default); ``model`` is the unwrapped (PEFT) model."""

    def on_train_begin(self, state: TrainState, model: Any) -> None: ...

    def on_before_optimizer_step(self, state: TrainState, model: Any) -> None:
        """Gradients of this step are complete (and synchronised across processes) here."""

    def on_step_end(self, state: TrainState, model: Any) -> None: ...

    def on_save(self, state: TrainState, path: Path) -> None: ...

    def on_train_end(self, state: TrainState, model: Any) -> None: ...


# ============================================================================================ data order
def epoch_order(n: int, epoch: int, seed: int, shuffle: bool) -> list[int]:
    """The data order of one epoch: a permutation drawn from ``seed + epoch`` (the identity without shuffle)."""
    import torch

    if not shuffle:
        return list(range(n))
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def micro_batches(n: int, epoch: int, *, seed: int, shuffle: bool, rank: int, world: int, batch_size: int) -> list[list[int]]:
    """This process's micro-batches (lists of example indices) of one epoch."""
    order = epoch_order(n, epoch, seed, shuffle)
    per_rank = n // world
    mine = order[rank::world][:per_rank]
    return [mine[i:i + batch_size] for i in range(0, per_rank, batch_size)]


def steps_per_epoch(n: int, *, world: int, batch_size: int, accum: int) -> int:
    per_rank = n // world
    return math.ceil(per_rank / batch_size) // accum


# ============================================================================================ the loop
Collate = Callable[[Sequence[tuple[Sequence[int], Sequence[int]]]], dict[str, Any]]


def data_digest(items: Sequence[tuple[Sequence[int], Sequence[int]]]) -> str:
    """A SHA-256 of the training sequences (ids and labels), so that a resume on other data is refused."""
    from array import array

    h = hashlib.sha256()
    for ids, labels, *segments in items:
        h.update(array("q", ids).tobytes())
        h.update(b"|")
        h.update(array("q", labels).tobytes())
        if segments and segments[0]:
            h.update(b"#" + array("q", segments[0]).tobytes())
        h.update(b";")
    return h.hexdigest()[:16]


def _settings_fingerprint(cfg: TrainingConfig, items: Sequence[Any], world: int) -> dict[str, Any]:
    t, o = cfg.training, cfg.optimizer
    return {"n_examples": len(items), "data_sha256": data_digest(items), "num_processes": world,
            "seed": cfg.seed, "batch_size": t.batch_size,
            "gradient_accumulation_steps": t.gradient_accumulation_steps, "shuffle": cfg.data.shuffle,
            "learning_rate": o.learning_rate, "scheduler": o.scheduler, "lora_r": cfg.lora.r,
            "response_only_lm_head": t.response_only_lm_head}


def _check_fingerprint(saved: dict[str, Any] | None, now: dict[str, Any], path: Path) -> None:
    """Refuse a resume whose settings differ from the checkpoint's.  A key the checkpoint does not have (one
    written by an older version) cannot be checked and is skipped with a warning."""
    saved = saved or {}
    missing = [k for k in now if k not in saved]
    if missing:
        logger.warning("checkpoint %s predates the resume check of %s; not checked", path, ", ".join(missing))
    diff = [f"{k}: {saved[k]!r} -> {v!r}" for k, v in now.items() if k in saved and saved[k] != v]
    if diff:
        raise ConfigError(f"cannot resume from {path}: settings changed since the checkpoint (saved -> now): "
                          f"{'; '.join(diff)}; restore them or start afresh with resume=False")


def run_training(
    cfg: TrainingConfig,
    *,
    accelerator: Any,
    model: Any,
    items: Sequence[tuple[Sequence[int], Sequence[int]]],
    collate: Collate,
    resume: bool,
    callbacks: Sequence[TrainerCallback] = (),
    eval_items: Sequence[tuple[Sequence[int], Sequence[int]]] = (),
    progress: bool | None = None,
) -> TrainOutput:
    """Train ``model`` (PEFT) on ``items`` (``(input_ids, labels)`` pairs).  Returns the unwrapped model,
    the final state, a results dict (throughput, eval loss) and, under sharded engines, the gathered
    full model state dict."""
    import torch
    from accelerate.utils import DistributedType, set_seed
    from transformers import get_scheduler

    from .loss import CausalLMLoss, batch_args

    acc = accelerator
    t, o = cfg.training, cfg.optimizer
    out_dir = Path(cfg.output_dir)
    world, rank = acc.num_processes, acc.process_index
    n = len(items)
    spe = steps_per_epoch(n, world=world, batch_size=t.batch_size, accum=t.gradient_accumulation_steps)
    if spe == 0:
        raise ConfigError(
            f"{n} training sequences give {math.ceil((n // world) / t.batch_size)} micro-batch(es) per process per "
            f"epoch, fewer than training.gradient_accumulation_steps={t.gradient_accumulation_steps} "
            f"({world} process(es), batch_size={t.batch_size}); use more data or smaller batches/accumulation"
        )
    total = t.max_steps or max(1, math.ceil(t.epochs * spe))
    sharded = acc.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)
    deepspeed = acc.distributed_type == DistributedType.DEEPSPEED
    # DeepSpeed divides each micro-batch loss by the accumulation steps itself; ours is already a step mean
    loss_scale = float(t.gradient_accumulation_steps) if deepspeed else 1.0

    lossmod = CausalLMLoss(model, response_only=t.response_only_lm_head)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": o.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=o.learning_rate, betas=o.betas, eps=o.eps)
    warmup = o.warmup_steps or int(round(o.warmup_ratio * total))
    scheduler = get_scheduler(o.scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=total)
    lossmod, optimizer = acc.prepare(lossmod, optimizer)
    inner = acc.unwrap_model(lossmod).model  # the PEFT model

    # ---------------------------------------------------------------- fresh start or resume
    state = TrainState(total_steps=total, steps_per_epoch=spe, process_index=rank, num_processes=world)
    fingerprint = _settings_fingerprint(cfg, items, world)
    latest = ckpt.latest_checkpoint(out_dir) if resume else None
    if acc.is_main_process:
        ckpt.clean_partial(out_dir)
        if not resume and ckpt.checkpoint_dirs(out_dir):
            logger.warning("removing checkpoints of an earlier run in %s (resume=False)", out_dir)
            ckpt.remove_all(out_dir)
    acc.wait_for_everyone()
    if latest is not None:
        data = ckpt.load_checkpoint(latest, rank=rank)
        saved = data["state"]
        _check_fingerprint(saved.get("fingerprint"), fingerprint, latest)
        if data["engine_dir"] is not None:
            acc.load_state(str(data["engine_dir"]))
        else:
            named = dict(inner.named_parameters())
            with torch.no_grad():
                for k, v in (data["weights"] or {}).items():
                    named[k].copy_(v.to(named[k].device, named[k].dtype))
            optimizer.load_state_dict(data["optimizer"])
        scheduler.load_state_dict(data["scheduler"])
        for k in ("step", "epoch", "micro", "tokens", "loss", "lr", "log_history"):
            setattr(state, k, saved[k])
        state.resumed_from = str(latest)
        if data["rng"] is not None:
            ckpt.restore_rng(data["rng"])
        logger.info("resumed from %s (step %d of %d)", latest, state.step, total)
    else:
        set_seed(cfg.seed + rank)
    _rewrite_log(out_dir / LOG_NAME, state.step, acc.is_main_process)

    def save(path_step: int) -> Path:
        rngs = [ckpt.capture_rng()]
        if world > 1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, rngs[0])
            rngs = gathered
        st = dict(state.to_json(), fingerprint=fingerprint)
        weights = opt_state = None
        if not sharded and acc.is_main_process:
            weights = {k: p for k, p in inner.named_parameters() if p.requires_grad}
            opt_state = optimizer.state_dict()
        path = ckpt.save_checkpoint(
            out_dir, path_step, state=st, rng=rngs, weights=weights, optimizer=opt_state,
            scheduler=scheduler.state_dict(), keep_last=cfg.checkpoint.keep_last,
            engine_writer=(lambda p: acc.save_state(str(p))) if sharded else None,
            is_main=acc.is_main_process, barrier=acc.wait_for_everyone,
        )
        for cb in callbacks:
            cb.on_save(state, path)
        return path

    # ---------------------------------------------------------------- loop
    show = (cfg.logging.progress if progress is None else progress) and acc.is_main_process
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=state.step, desc=f"{cfg.stage}", unit="step", dynamic_ncols=True)
    if cfg.logging.report_to != "none":
        acc.init_trackers("cancerllm", config=cfg.to_dict())
    for cb in callbacks:
        cb.on_train_begin(state, inner)
    lossmod.train()
    accum = t.gradient_accumulation_steps
    # the check calls the unwrapped model directly, which sharded engines do not allow
    verified = state.step > 0 or not t.response_only_lm_head or sharded
    t0 = time.perf_counter()
    tokens_at_start, steps_at_start = state.tokens, state.step
    while state.step < total:
        batches = micro_batches(n, state.epoch, seed=cfg.seed, shuffle=cfg.data.shuffle, rank=rank, world=world,
                                batch_size=t.batch_size)
        while state.step < total and state.micro + accum <= len(batches):
            group = [collate([items[i] for i in b]) for b in batches[state.micro:state.micro + accum]]
            group = [{k: v.to(acc.device) for k, v in b.items()} for b in group]
            if not verified:
                ok = acc.unwrap_model(lossmod).verify(group[0])
                if not ok:
                    logger.warning("response-only LM head disagrees with the full forward on this model; "
                                   "using the full forward")
                verified = True
            n_lab = sum(int((b["labels"][:, 1:] != -100).sum()) for b in group)
            n_tok = sum(int(b["attention_mask"].sum()) for b in group)
            # the step's loss is the mean over every labelled token of every micro-batch on every process;
            # the engines average gradients over processes, so each process scales by world / global count
            n_lab_all, n_tok_all = n_lab, n_tok
            if world > 1:
                counts = torch.tensor([n_lab, n_tok], dtype=torch.int64, device=acc.device)
                n_lab_all, n_tok_all = (int(x) for x in acc.reduce(counts, reduction="sum").tolist())
            grad_scale = loss_scale * world / max(n_lab_all, 1)
            loss_sum_total = 0.0
            for j, b in enumerate(group):
                sync = j == len(group) - 1
                ctx = contextlib.nullcontext() if sync else acc.no_sync(lossmod)
                with ctx:
                    loss_sum, _ = lossmod(*batch_args(b))
                    acc.backward(loss_sum * grad_scale)
                loss_sum_total += float(loss_sum.detach())
            for cb in callbacks:
                cb.on_before_optimizer_step(state, inner)
            grad_norm = None
            if o.max_grad_norm and not deepspeed:  # DeepSpeed clips itself (gradient_clipping)
                grad_norm = acc.clip_grad_norm_(params, o.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_all = loss_sum_total
            if world > 1:
                loss_all = float(acc.reduce(torch.tensor([loss_sum_total], dtype=torch.float32, device=acc.device),
                                            reduction="sum")[0])
            state.tokens += n_tok_all
            state.step += 1
            state.micro += accum
            state.local_loss = loss_sum_total / max(n_lab, 1)
            state.loss = loss_all / max(n_lab_all, 1)
            state.lr = float(scheduler.get_last_lr()[0])
            state.grad_norm = float(grad_norm) if grad_norm is not None else None
            if state.step % cfg.logging.log_every == 0 or state.step == total or state.step == 1:
                rec = {"step": state.step, "epoch": state.epoch, "loss": round(state.loss, 6), "lr": state.lr,
                       "grad_norm": state.grad_norm, "tokens": state.tokens}
                state.log_history.append(rec)
                if acc.is_main_process:
                    with open(out_dir / LOG_NAME, "a", encoding="utf-8") as f:
                        f.write(json.dumps(rec) + "\n")
                if cfg.logging.report_to != "none":
                    acc.log({"train/loss": state.loss, "train/lr": state.lr}, step=state.step)
                logger.info("step %d/%d loss %.4f lr %.3g", state.step, total, state.loss, state.lr)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{state.loss:.4f}")
            for cb in callbacks:
                cb.on_step_end(state, inner)
            if cfg.checkpoint.save_every and state.step % cfg.checkpoint.save_every == 0 and state.step < total:
                save(state.step)
        if state.step < total:
            state.epoch += 1
            state.micro = 0
    elapsed = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    results: dict[str, Any] = {
        "steps": state.step,
        "final_loss": state.loss,
        "train_seconds": round(elapsed, 3),
        "tokens_per_second": round((state.tokens - tokens_at_start) / elapsed, 1) if elapsed > 0 else None,
        "steps_this_session": state.step - steps_at_start,
        "resumed_from": state.resumed_from,
        "num_processes": world,
        "response_only_lm_head": acc.unwrap_model(lossmod).response_only,
    }
    if eval_items:
        results["eval_loss"] = evaluate_loss(lossmod, eval_items, collate, acc, batch_size=t.batch_size)
    for cb in callbacks:
        cb.on_train_end(state, inner)
    if cfg.logging.report_to != "none":
        acc.end_training()
    full_sd = None
    if sharded:  # gather the sharded adapter (collective: every process takes part)
        prefix = "model."
        sd = acc.get_state_dict(lossmod)
        full_sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)} if sd else None
    return TrainOutput(inner, state, results, full_sd)


def evaluate_loss(lossmod: Any, items: Sequence[Any], collate: Collate, acc: Any, *, batch_size: int) -> float:
    """Mean token loss on ``items`` (sharded across processes)."""
    import torch

    from .loss import batch_args

    lossmod.eval()
    mine = list(range(acc.process_index, len(items), acc.num_processes))
    tot = torch.zeros(2, device=acc.device)
    with torch.no_grad():
        for i in range(0, len(mine), batch_size):
            b = collate([items[j] for j in mine[i:i + batch_size]])
            b = {k: v.to(acc.device) for k, v in b.items()}
            s, c = lossmod(*batch_args(b))
            tot += torch.stack([s.detach().float(), c.float()])
    if acc.num_processes > 1:
        tot = acc.reduce(tot, reduction="sum")
    lossmod.train()
    return float(tot[0] / tot[1].clamp(min=1))


def _rewrite_log(path: Path, upto_step: int, is_main: bool) -> None:
    """Keep only log lines up to the resumed step (a killed run may have logged steps it then lost)."""
    if not is_main:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if upto_step == 0:
        path.write_text("", encoding="utf-8")
        return
    if path.is_file():
        keep = [ln for ln in path.read_text(encoding="utf-8").splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= upto_step]
        path.write_text("".join(ln + "\n" for ln in keep), encoding="utf-8")


# ============================================================================================ saving
def save_result(
    cfg: TrainingConfig,
    *,
    accelerator: Any,
    trained: TrainOutput,
    tokenizer: Any,
    prompt_style: str,
    base_model_record: str,
    provenance: dict[str, Any],
    answer_prefix: str = "",
    shots_layout: str = "shared",
) -> Path:
    """Write the adapter, tokenizer and ``cancerllm_config.json`` (through ``CancerLLM.save_pretrained``),
    the config used, and the results; main process only."""
    from .._constants import CONFIG_NAME
    from ..model import CancerLLM
    from .data import write_json

    out = Path(cfg.output_dir)
    model, results = trained.model, trained.results
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        llm = CancerLLM(model, tokenizer, prompt_style=prompt_style, base_model=base_model_record,  # type: ignore[arg-type]
                        answer_prefix=answer_prefix, shots_layout=shots_layout)  # type: ignore[arg-type]
        llm.save_pretrained(out)
        if trained.full_state_dict is not None:  # sharded engine: overwrite with the gathered adapter
            model.save_pretrained(str(out), state_dict=trained.full_state_dict, safe_serialization=True)
        cfg_path = out / CONFIG_NAME
        saved = json.loads(cfg_path.read_text(encoding="utf-8"))
        saved["training"] = provenance
        write_json(cfg_path, saved)
        cfg.to_yaml(out / CONFIG_YAML_NAME)
        write_json(out / RESULTS_NAME, results)
    accelerator.wait_for_everyone()
    return out
