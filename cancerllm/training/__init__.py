"""Training CancerLLM adapters: LoRA continued pre-training, instruction tuning, QLoRA, resumable
checkpoints, and launching on several GPUs or nodes.

    >>> from cancerllm.training import TrainingConfig, instruction_tune, pretrain     # doctest: +SKIP
    >>> pt = pretrain(TrainingConfig.paper_pretrain(model=base, output_dir="out/pt", train=["notes/"]))
    >>> sft = instruction_tune(TrainingConfig.paper_sft(model=base, output_dir="out/sft", train=["train.jsonl"],
    ...                                                 pretrain_adapter=pt))
    >>> launch("sft.yaml", nproc=8, nnodes=2, node_rank=0, master_addr="10.0.0.1")   # several GPUs / nodes

Importing this package is light (pydantic only); torch, transformers, peft and accelerate are imported
when training starts.  See ``docs/training.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import (
    CheckpointConfig,
    DataConfig,
    LoggingConfig,
    LoraConfig,
    ModelConfig,
    OptimizerConfig,
    QuantizationConfig,
    TrainConfig,
    TrainingConfig,
    load_config,
)
from .launch import PRESETS, build_command, launch, preset_path, train

if TYPE_CHECKING:  # pragma: no cover
    from .checkpoint import latest_checkpoint
    from .data import PackedData, SFTCollator, encode_examples, ensure_pad_token, pack_documents, read_texts
    from .loss import CausalLMLoss, full_logits_loss, response_only_loss
    from .pretraining import pretrain
    from .sft import instruction_tune
    from .stack import stack_adapters
    from .trainer import TrainerCallback, TrainState

_LAZY = {
    "pretrain": ("cancerllm.training.pretraining", "pretrain"),
    "instruction_tune": ("cancerllm.training.sft", "instruction_tune"),
    "TrainerCallback": ("cancerllm.training.trainer", "TrainerCallback"),
    "stack_adapters": ("cancerllm.training.stack", "stack_adapters"),
    "TrainState": ("cancerllm.training.trainer", "TrainState"),
    "CausalLMLoss": ("cancerllm.training.loss", "CausalLMLoss"),
    "response_only_loss": ("cancerllm.training.loss", "response_only_loss"),
    "full_logits_loss": ("cancerllm.training.loss", "full_logits_loss"),
    "latest_checkpoint": ("cancerllm.training.checkpoint", "latest_checkpoint"),
    "PackedData": ("cancerllm.training.data", "PackedData"),
    "SFTCollator": ("cancerllm.training.data", "SFTCollator"),
    "encode_examples": ("cancerllm.training.data", "encode_examples"),
    "ensure_pad_token": ("cancerllm.training.data", "ensure_pad_token"),
    "pack_documents": ("cancerllm.training.data", "pack_documents"),
    "read_texts": ("cancerllm.training.data", "read_texts"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cancerllm.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "CausalLMLoss",
    "CheckpointConfig",
    "DataConfig",
    "LoggingConfig",
    "LoraConfig",
    "ModelConfig",
    "OptimizerConfig",
    "PRESETS",
    "PackedData",
    "QuantizationConfig",
    "SFTCollator",
    "TrainConfig",
    "TrainState",
    "TrainerCallback",
    "TrainingConfig",
    "build_command",
    "encode_examples",
    "ensure_pad_token",
    "full_logits_loss",
    "instruction_tune",
    "latest_checkpoint",
    "launch",
    "load_config",
    "pack_documents",
    "preset_path",
    "pretrain",
    "read_texts",
    "response_only_loss",
    "stack_adapters",
    "train",
]
