"""Continued pre-training (phase 1): next-token prediction on raw cancer notes with a LoRA adapter.

Documents are tokenised, each followed by EOS, concatenated and cut into blocks of ``data.block_size``
tokens (no padding; the packing efficiency is logged and saved in ``train_results.json``).  The paper's
settings are :meth:`TrainingConfig.paper_pretrain` (LoRA rank 8, alpha 16, dropout 0.05, lr 2e-4, 1 epoch).

The module is named ``pretraining`` (not ``pretrain``) so that the function
:func:`cancerllm.training.pretrain` is never shadowed by its own module.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .config import TrainingConfig, load_config
from .data import SFTCollator, ensure_pad_token, pack_documents, read_texts, tokenize_documents
from .modeling import base_model_path, load_model, load_tokenizer, make_accelerator, record_base
from .trainer import TrainerCallback, run_training, save_result

logger = logging.getLogger(__name__)

__all__ = ["pretrain"]


def pretrain(
    config: TrainingConfig | Mapping[str, Any] | str | os.PathLike[str],
    *,
    texts: Any = None,
    eval_texts: Any = None,
    resume: bool | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    progress: bool | None = None,
) -> Path:
    """Continue pre-training a base model with LoRA on raw text; returns the adapter directory.

    Args:
        config: a :class:`TrainingConfig`, a mapping, or a YAML path (its ``stage`` is ignored here).
        texts: documents (strings), paths (``.txt``/``.jsonl``/``.json``/``.csv``/folders) or a DataFrame /
            Series; default: ``config.data.train`` (read with ``config.data.text_field``).
        eval_texts: held-out documents for a final eval loss; default: ``config.data.eval``.
        resume: continue from the newest checkpoint (default: ``config.checkpoint.resume``).
        callbacks: :class:`~cancerllm.training.trainer.TrainerCallback` objects.
        progress: show a progress bar (default: ``config.logging.progress``).

    Returns:
        ``config.output_dir`` with the adapter (use it as ``model.pretrain_adapter`` of instruction tuning),
        the tokenizer, ``cancerllm_config.json`` and ``train_results.json`` (with the packing statistics).

    Example:
        >>> cfg = TrainingConfig.paper_pretrain(model="mistralai/Mistral-7B-v0.1", output_dir="out/pt",
        ...                                     train=["notes/"])          # doctest: +SKIP
        >>> adapter_dir = pretrain(cfg)                                     # doctest: +SKIP
    """
    cfg = load_config(config)
    resume = cfg.checkpoint.resume if resume is None else resume
    # paths from the config are always paths (Path objects), never taken for inline documents
    src = texts if texts is not None else ([Path(p) for p in cfg.data.train] or None)
    if src is None:
        raise InputError("no training texts: set data.train in the config or pass texts=")
    docs = read_texts(src, text_field=cfg.data.text_field)
    eval_src = eval_texts if eval_texts is not None else ([Path(p) for p in cfg.data.eval] or None)
    eval_docs = read_texts(eval_src, text_field=cfg.data.text_field) if eval_src is not None else []

    acc = make_accelerator(cfg)
    from accelerate.utils import set_seed

    Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    base = base_model_path(cfg.model.name_or_path)
    tokenizer = load_tokenizer(cfg, base)
    model = load_model(cfg, base, acc)
    pad_id = ensure_pad_token(tokenizer, model)
    packed = pack_documents(tokenize_documents(docs, tokenizer), cfg.data.block_size)
    if acc.is_main_process:
        logger.info("packed %d documents into %d blocks of %d tokens: %s", packed.n_documents, len(packed),
                    packed.block_size, packed.stats())
    items = [(b, b) for b in packed.blocks]
    eval_items: list[Any] = []
    if eval_docs:
        ev = pack_documents(tokenize_documents(eval_docs, tokenizer), cfg.data.block_size)
        eval_items = [(b, b) for b in ev.blocks]
    trained = run_training(
        cfg, accelerator=acc, model=model, items=items, collate=SFTCollator(pad_id), resume=resume,
        callbacks=callbacks, eval_items=eval_items, progress=progress,
    )
    state, results = trained.state, trained.results
    results["packing"] = packed.stats()
    provenance = {"stage": "pretrain", "base_model": record_base(cfg.model.name_or_path), "seed": cfg.seed,
                  "steps": state.step, "packing": packed.stats()}
    return save_result(cfg, accelerator=acc, trained=trained, tokenizer=tokenizer, prompt_style=_style(cfg, tokenizer),
                       base_model_record=record_base(cfg.model.name_or_path), provenance=provenance)


def _style(cfg: TrainingConfig, tokenizer: Any) -> str:
    from ..prompts import PromptBuilder

    return PromptBuilder(cfg.model.prompt_style, tokenizer).style
