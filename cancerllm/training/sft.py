"""Instruction tuning (phase 2): a LoRA adapter trained on task examples, loss on the responses only.

What it does differently from the official CancerLLM code, and why:

* prompts come from the library's one prompt builder, so the model is trained on exactly the token ids it
  is asked with at inference, and the prompt style is saved with the adapter;
* the loss covers only the response tokens *and the EOS after them*; the pad token is distinct from EOS
  (and padding is masked through the labels, not by id), so the model learns to stop;
* stacking on a continued-pre-training adapter is explicit: ``model.pretrain_adapter`` is merged into the
  base (``merge_and_unload``), the merged base is saved, and a *new* adapter is trained on top of it -
  no behaviour that depends on a TRL version;
* the LM head runs only at the response positions (see :mod:`cancerllm.training.loss`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schema import Example
from .config import TrainingConfig, load_config
from .data import SFTCollator, ShotsFn, encode_examples, ensure_pad_token
from .modeling import (
    base_model_path,
    load_model,
    load_tokenizer,
    make_accelerator,
    merge_pretrain_adapter,
    record_base,
)
from .trainer import TrainerCallback, run_training, save_result

logger = logging.getLogger(__name__)

__all__ = ["instruction_tune"]


def _examples(source: Any, what: str) -> list[Example]:
    from ..data import read_examples

    if source is None:
        return []
    if hasattr(source, "columns"):
        return read_examples(source)
    if isinstance(source, (str, os.PathLike)):
        return read_examples(source)
    out: list[Example] = []
    for item in source:
        if isinstance(item, Example):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(Example(**item))
        elif isinstance(item, (str, os.PathLike)):
            out.extend(read_examples(item))
        else:
            raise InputError(f"{what}: expected Example objects, dicts or file paths, got {type(item).__name__}")
    return out


def instruction_tune(
    config: TrainingConfig | Mapping[str, Any] | str | os.PathLike[str],
    *,
    examples: Any = None,
    eval_examples: Any = None,
    shots: ShotsFn | None = None,
    resume: bool | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    progress: bool | None = None,
) -> Path:
    """Train a LoRA adapter on instruction examples and save it, ready for ``CancerLLM.from_pretrained``.

    Args:
        config: a :class:`TrainingConfig`, a mapping, or a YAML path (its ``stage`` is ignored here).
        examples: training examples (``Example`` objects, dicts, a DataFrame or file paths); default: the
            files in ``config.data.train``.
        eval_examples: held-out examples for a final eval loss; default: ``config.data.eval``.
        shots: retrieved examples for each training prompt: a :class:`~cancerllm.retrieval.ShotSelector`
            (the inference-time selection) or a function ``example -> [examples]``; default: when
            ``config.data.num_shots > 0``, a ``ShotSelector`` over the training examples with
            ``config.data.retriever``, else none.
        resume: continue from the newest checkpoint (default: ``config.checkpoint.resume``).
        callbacks: :class:`~cancerllm.training.trainer.TrainerCallback` objects.
        progress: show a progress bar (default: ``config.logging.progress``); works in notebooks.

    Returns:
        ``config.output_dir``, holding the adapter, the tokenizer, ``cancerllm_config.json`` (prompt style,
        base model), ``training_config.yaml``, ``train_results.json`` and ``train_log.jsonl``.

    Example:
        >>> out = instruction_tune("sft.yaml")                        # doctest: +SKIP
        >>> CancerLLM.from_pretrained(out).phenotype_extractor()      # doctest: +SKIP
    """
    from ..prompts import PromptBuilder

    cfg = load_config(config)
    resume = cfg.checkpoint.resume if resume is None else resume
    train_ex = _examples(examples if examples is not None else (cfg.data.train or None), "examples")
    if not train_ex:
        raise InputError("no training examples: set data.train in the config or pass examples=")
    eval_ex = _examples(eval_examples if eval_examples is not None else (cfg.data.eval or None), "eval_examples")

    acc = make_accelerator(cfg)
    from accelerate.utils import set_seed

    Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    base = base_model_path(cfg.model.name_or_path)
    base_record = record_base(cfg.model.name_or_path)
    merged = None
    if cfg.model.pretrain_adapter:
        merged = merge_pretrain_adapter(cfg, base, acc)
        base, base_record = merged, merged
    tokenizer = load_tokenizer(cfg, base)
    model = load_model(cfg, base, acc)
    pad_id = ensure_pad_token(tokenizer, model)
    builder = PromptBuilder(cfg.model.prompt_style, tokenizer, answer_prefix=cfg.model.answer_prefix,
                            shots_layout=cfg.data.shots_layout)
    if shots is None and cfg.data.num_shots > 0:
        shots = _shot_selector(cfg, train_ex, tokenizer)
    train_shots, eval_shots = _shots_for(shots, train_ex), _shots_for(shots, eval_ex)
    share = cfg.data.share_prefix
    data = encode_examples(train_ex, builder, max_length=cfg.data.max_length, shots=train_shots, share_prefix=share)
    eval_data = (encode_examples(eval_ex, builder, max_length=cfg.data.max_length, shots=eval_shots,
                                 share_prefix=share) if eval_ex else None)
    items: list[Any] = data.items()
    eval_items: list[Any] = eval_data.items() if eval_data else []
    if acc.is_main_process:
        logger.info("instruction tuning on %d sequences: %s", len(items), data.stats())

    trained = run_training(
        cfg, accelerator=acc, model=model, items=items, collate=SFTCollator(pad_id), resume=resume,
        callbacks=callbacks, eval_items=eval_items, progress=progress,
    )
    state, results = trained.state, trained.results
    results["data"] = data.stats()
    provenance = {
        "stage": "sft",
        "base_model": record_base(cfg.model.name_or_path),
        "pretrain_adapter": str(Path(cfg.model.pretrain_adapter).resolve()) if cfg.model.pretrain_adapter else None,
        "merged_base": merged,
        "pad_token": tokenizer.pad_token,
        "seed": cfg.seed,
        "steps": state.step,
    }
    return save_result(cfg, accelerator=acc, trained=trained, tokenizer=tokenizer, prompt_style=builder.style,
                       answer_prefix=builder.answer_prefix, shots_layout=builder.shots_layout,
                       base_model_record=base_record, provenance=provenance)


def _shot_selector(cfg: TrainingConfig, corpus: list[Example], tokenizer: Any) -> Any:
    """The retrieval the prompts use at inference (:class:`~cancerllm.retrieval.ShotSelector`), over the
    training examples, with inference's default cut of each shown report."""
    from .._constants import MAX_INPUT_TOKENS
    from ..retrieval.shots import ShotSelector

    k = cfg.data.num_shots
    max_tokens = cfg.data.max_shot_tokens or max(16, MAX_INPUT_TOKENS // (2 * k))
    return ShotSelector(corpus, cfg.data.retriever, k=k, tokenizer=tokenizer, max_shot_tokens=max_tokens)


def _shots_for(shots: Any, examples: list[Example]) -> Any:
    if shots is None or not examples:
        return None
    if hasattr(shots, "for_examples"):  # a ShotSelector: one search per distinct report
        return shots.for_examples(examples)
    return shots
