"""Loading for training: the accelerator, the tokenizer, the base model (4-bit for QLoRA), the explicit merge
of a phase-1 adapter, and the new LoRA adapter."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from .. import _loading as ld
from .._constants import DEFAULT_MODEL, SMOL_BASE_MODEL
from .._hashing import file_sha256
from ..errors import ConfigError, ModelLoadError
from . import checkpoint as ckpt
from .config import TrainingConfig

logger = logging.getLogger(__name__)

__all__ = [
    "base_model_path",
    "load_model",
    "load_tokenizer",
    "make_accelerator",
    "merge_pretrain_adapter",
    "record_base",
    "resolve_dtype",
    "resolve_precision",
]

_MERGED_MARKER = "cancerllm_merged_from.json"


def resolve_dtype(name: str, device: Any = None) -> Any:
    """The torch dtype named ``name``; ``"auto"`` follows the device (:func:`cancerllm._loading.resolve_dtype`):
    bfloat16 on a GPU that computes in it natively, float16 on older GPUs (T4, V100), float32 on the CPU.

    Args:
        name: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        device: the training device (a ``torch.device``); default: a GPU when CUDA is available.
    """
    placement = None
    if device is not None:
        dev_type = getattr(device, "type", str(device).split(":")[0])
        placement = ld.Placement(None, dev_type, getattr(device, "index", None) if dev_type == "cuda" else None)
    return ld.resolve_dtype(name, placement)


def resolve_precision(name: str) -> str:
    """Accelerate's ``mixed_precision``: ``"auto"`` is ``"bf16"`` on a GPU that computes in bfloat16
    natively, ``"fp16"`` on older GPUs, ``"no"`` on the CPU.  ``"bf16"`` / ``"fp16"`` asked for on a CPU
    without native instructions for it give a :class:`~cancerllm.errors.PerformanceWarning`."""
    import torch

    if name != "auto":
        if name in ("bf16", "fp16") and not torch.cuda.is_available():
            ld._warn_emulated_half(torch.bfloat16 if name == "bf16" else torch.float16)
        return name
    if torch.cuda.is_available():
        return "bf16" if ld.cuda_supports_bf16() else "fp16"
    return "no"


def make_accelerator(cfg: TrainingConfig) -> Any:
    from .._optional import require

    require("accelerate", feature="training")
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedType

    report = cfg.logging.report_to
    log_with = None if report == "none" else report
    # several processes without a GPU (torchrun on CPUs): Accelerate needs cpu=True to pick gloo
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cpu_only = world > 1 and not torch.cuda.is_available()
    acc = Accelerator(
        mixed_precision=resolve_precision(cfg.training.precision),
        log_with=log_with,
        project_dir=cfg.output_dir if log_with else None,
        cpu=cpu_only,
    )
    if acc.distributed_type == DistributedType.DEEPSPEED:
        ds = acc.state.deepspeed_plugin.deepspeed_config
        t = cfg.training
        ds["train_micro_batch_size_per_gpu"] = t.batch_size
        ds["gradient_accumulation_steps"] = t.gradient_accumulation_steps
        ds["train_batch_size"] = t.batch_size * t.gradient_accumulation_steps * acc.num_processes
        ds["gradient_clipping"] = cfg.optimizer.max_grad_norm or 0.0
    return acc


def base_model_path(name: str) -> str:
    """The loadable location of a configured base model (``"cancerllm-smol"`` -> its cached safetensors)."""
    if name in (DEFAULT_MODEL, SMOL_BASE_MODEL):
        from .._smol import smol_base_dir

        return str(smol_base_dir())
    return name


def _local(path: str) -> bool:
    return Path(path).expanduser().exists()


def load_tokenizer(cfg: TrainingConfig, base: str) -> Any:
    """The tokenizer of ``cfg.model.tokenizer`` (default: the base model's)."""
    src = cfg.model.tokenizer or base
    return ld.load_tokenizer(src, local_files_only=_local(src) or None, trust_remote_code=cfg.model.trust_remote_code)


def _load_causal_lm(path: str, cfg: TrainingConfig, *, quantization: Any = None, device_map: Any = None) -> Any:
    extra: dict[str, Any] = {}
    if cfg.model.attn_implementation:
        extra["attn_implementation"] = cfg.model.attn_implementation
    placement = ld.Placement(device_map)  # training places the model itself (accelerate), except for QLoRA
    return ld.load_causal_lm(path, dtype=resolve_dtype(cfg.model.dtype), placement=placement,
                             quantization=quantization, local_files_only=_local(path) or None,
                             trust_remote_code=cfg.model.trust_remote_code, allow_pickle=False, **extra)


def merge_pretrain_adapter(cfg: TrainingConfig, base: str, accelerator: Any) -> str:
    """Merge ``cfg.model.pretrain_adapter`` into the base and save the result (main process; others wait).

    Returns the merged model's directory.  An existing merge of the same adapter files is reused.
    """
    from .._optional import require

    with ld.quiet_optional_probes():  # peft imports bitsandbytes, which logs about `kernels`
        require("peft", feature="merging a pre-training adapter")
    adapter = Path(cfg.model.pretrain_adapter or "")
    weights = adapter / "adapter_model.safetensors"
    if not (adapter / "adapter_config.json").is_file() or not weights.is_file():
        raise ModelLoadError(f"model.pretrain_adapter {adapter} is not a PEFT adapter directory "
                             "(adapter_config.json + adapter_model.safetensors)")
    out = Path(cfg.model.merged_base_dir or Path(cfg.output_dir) / "merged-base")
    marker = {"base_model": base, "adapter": str(adapter.resolve()), "adapter_sha256": file_sha256(weights)}
    if accelerator.is_main_process:
        done = out / _MERGED_MARKER
        if not (done.is_file() and json.loads(done.read_text()) == marker):
            from peft import PeftModel

            logger.info("merging pre-training adapter %s into %s -> %s", adapter, base, out)
            model = _load_causal_lm(base, cfg)
            model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
            tmp = out.with_name(out.name + ".tmp")
            if tmp.exists():
                ckpt._remove_tree(tmp)
            model.save_pretrained(str(tmp), safe_serialization=True)
            load_tokenizer(cfg, base).save_pretrained(str(tmp))
            (tmp / _MERGED_MARKER).write_text(json.dumps(marker, indent=2))
            if out.exists():
                ckpt._remove_tree(out)
            os.replace(tmp, out)
            del model
    accelerator.wait_for_everyone()
    return str(out.resolve())


def load_model(cfg: TrainingConfig, base: str, accelerator: Any) -> Any:
    """The base causal LM (4-bit when configured) with a fresh LoRA adapter."""
    from .._optional import require

    with ld.quiet_optional_probes():  # peft imports bitsandbytes, which logs about `kernels`
        require("peft", feature="LoRA training")
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    q = cfg.quantization
    quant = None
    device_map = None
    if q.load_in_4bit:
        dev = accelerator.device
        compute = resolve_dtype(q.compute_dtype if q.compute_dtype != "auto" else cfg.model.dtype, dev)
        quant = ld.quantization_config("4bit", compute, device_type=dev.type, quant_type=q.quant_type,
                                       double_quant=q.double_quant, feature="QLoRA (4-bit) training")
        device_map = {"": dev.index if dev.type == "cuda" and dev.index is not None else str(dev)}
    model = _load_causal_lm(base, cfg, quantization=quant, device_map=device_map)
    model.config.use_cache = False
    lcfg = LoraConfig(
        r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules, bias=cfg.lora.bias, task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # peft probes a deprecated transformers attribute; not the user's concern
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        if q.load_in_4bit:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        if cfg.training.gradient_checkpointing:
            _enable_checkpointing(model)
        model = get_peft_model(model, lcfg)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if n_train == 0:
        raise ConfigError("LoRA made no parameter trainable; check lora.target_modules")
    return model


def _enable_checkpointing(model: Any) -> None:
    """Activation (gradient) checkpointing, non-reentrant (works with frozen inputs, no input-grad hooks)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:  # pragma: no cover - older transformers
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def record_base(name: str) -> str:
    """How the base model is recorded for inference: the embedded default by name, local paths absolute."""
    if name in (DEFAULT_MODEL, SMOL_BASE_MODEL):
        return name
    p = Path(name).expanduser()
    return str(p.resolve()) if p.exists() else name
