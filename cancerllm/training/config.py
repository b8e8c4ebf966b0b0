"""``TrainingConfig``: everything a training run needs, in one strict, YAML-loadable pydantic model.

The config is what users write, so it is strict: an unknown key anywhere (a typo such as ``lora.rank`` for
``lora.r``) is refused with a message that names the key, its section, the allowed keys and the closest match.
Paths are used as written (relative paths are relative to the working directory of the training process).

Example:
    >>> cfg = TrainingConfig(stage="sft", output_dir="out/sft", model={"name_or_path": "base"},
    ...                      data={"train": ["train.jsonl"]})
    >>> cfg.lora.r, cfg.lora.alpha, cfg.logging.report_to
    (64, 16, 'none')
    >>> TrainingConfig.from_yaml(cfg.to_yaml()) == cfg
    True
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError

__all__ = [
    "CheckpointConfig",
    "DataConfig",
    "LoggingConfig",
    "LoraConfig",
    "ModelConfig",
    "OptimizerConfig",
    "QuantizationConfig",
    "TrainConfig",
    "TrainingConfig",
    "load_config",
]

Stage = Literal["pretrain", "sft"]


class _Strict(BaseModel):
    """A config section: unknown keys are refused with the allowed keys and the closest match."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            allowed = list(cls.model_fields)
            unknown = [k for k in data if k not in cls.model_fields]
            if unknown:
                parts = []
                for key in unknown:
                    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    parts.append(f"unknown key {key!r}{hint}")
                raise ValueError(f"{'; '.join(parts)}; allowed keys: {', '.join(allowed)}")
        return data


class ModelConfig(_Strict):
    """The base model and how to load it.

    Attributes:
        name_or_path: a local model directory, a hub id, or ``"cancerllm-smol"`` (the embedded SmolLM2 base).
        tokenizer: tokenizer directory when it differs from the model's.
        pretrain_adapter: a phase-1 (continued pre-training) LoRA adapter.  Instruction tuning merges it into
            the base (``merge_and_unload``), saves the merged base under ``merged_base_dir`` and trains a new
            adapter on top; the saved adapter records the merged base as its base model.
        merged_base_dir: where the merged base goes (default ``<output_dir>/merged-base``).
        dtype: weights dtype; ``"auto"`` = float32 on CPU, bfloat16 on a GPU that supports it, else float16.
        prompt_style: the prompt template (``"alpaca"`` = the paper's); recorded with the adapter so that
            inference builds the very prompts the model was trained on.
        answer_prefix: text that opens every phenotype answer, placed at the end of the prompt (see
            :class:`cancerllm.prompts.PromptBuilder`); recorded with the adapter like the style.
        trust_remote_code: stays False unless you set it.
        attn_implementation: passed to transformers (e.g. ``"sdpa"``, ``"flash_attention_2"``).
    """

    name_or_path: str
    tokenizer: str | None = None
    pretrain_adapter: str | None = None
    merged_base_dir: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    prompt_style: Literal["alpaca", "chat", "auto"] = "alpaca"
    answer_prefix: str = ""
    trust_remote_code: bool = False
    attn_implementation: str | None = None


class DataConfig(_Strict):
    """Training data.

    Attributes:
        train: files or folders.  Pre-training reads ``.txt`` (one document per file), ``.jsonl``/``.json``
            (``text_field`` of each record) and ``.csv`` (``text_field`` column); folders are searched for those.
            Instruction tuning reads example files (JSONL/JSON/CSV, see :func:`cancerllm.data.read_examples`).
            May be empty when the data is passed to the Python API directly.
        eval: held-out files, evaluated (loss) at the end of training.
        text_field: the text field/column for pre-training records.
        block_size: pre-training block length (documents are packed, separated by EOS).
        max_length: instruction-tuning sequence limit; longer prompts lose the end of their report text.
        num_shots: retrieved examples put in each training prompt (0 = zero-shot prompts), chosen from the
            training examples by :class:`cancerllm.retrieval.ShotSelector` - the same selection as at
            inference; an example's own report is never among its shots.
        retriever: the retriever's registry name (``"random"`` - the paper's baseline -, ``"medcpt"``,
            ``"minilm"``, ...); ``None``: the library's offline default.  Use the same one at inference.
        max_shot_tokens: longest report text shown in one retrieved example; default
            ``max(16, 1500 // (2 * num_shots))``, what inference uses with the paper's 1,500-token input limit.
        shots_layout: where retrieved examples go in question prompts (:class:`cancerllm.prompts.PromptBuilder`):
            ``"shared"`` (default; the examples' reports before the input, their answers after the question)
            or ``"inline"`` (each example a whole input/answer pair before the input); recorded with the
            adapter, so inference builds the same prompts.
        shuffle: shuffle the data each epoch (seeded).
        share_prefix: instruction tuning packs the questions asked of one report into one sequence (the report
            once, then each question+answer, each seeing only the report and itself): same loss per example,
            the report encoded once instead of once per question.  ``training.batch_size`` then counts these
            sequences.  It needs an attention that takes 4D masks (``sdpa``, ``eager``):
            with ``model.attn_implementation: flash_attention_2`` (or another flash-attention kernel) the
            config is refused.  See :func:`cancerllm.training.encode_examples`.
    """

    train: list[str] = Field(default_factory=list)
    eval: list[str] = Field(default_factory=list)
    text_field: str = "text"
    block_size: int = Field(2048, ge=8)
    max_length: int = Field(2048, ge=8)
    num_shots: int = Field(0, ge=0)
    retriever: str | None = None
    max_shot_tokens: int | None = Field(None, ge=1)
    shots_layout: Literal["shared", "inline"] = "shared"
    shuffle: bool = True
    share_prefix: bool = False

    @field_validator("train", "eval", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        if v is None:
            return []
        if isinstance(v, (str, os.PathLike)):
            return [os.fspath(v)]
        return [os.fspath(x) if isinstance(x, os.PathLike) else x for x in v]


class LoraConfig(_Strict):
    """LoRA settings.  ``target_modules="all-linear"`` adapts every linear layer except the output head."""

    r: int = Field(64, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    bias: Literal["none", "all", "lora_only"] = "none"


class QuantizationConfig(_Strict):
    """QLoRA: the frozen base in 4-bit (bitsandbytes NF4 with double quantisation), LoRA in higher precision."""

    load_in_4bit: bool = False
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    compute_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"


class OptimizerConfig(_Strict):
    """AdamW and the learning-rate schedule."""

    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_steps: int = Field(0, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, le=1)


class TrainConfig(_Strict):
    """Steps, batches and precision.

    Attributes:
        epochs: passes over the data (ignored when ``max_steps`` is set).
        max_steps: optimiser steps to run (cycles through the data as needed).
        batch_size: sequences per process per micro-batch.
        gradient_accumulation_steps: micro-batches per optimiser step.  An epoch's last incomplete group of
            micro-batches is skipped, so every step sees the same amount of data on every engine.
        precision: ``"auto"`` = bf16 on a GPU with bf16 support, fp16 on other GPUs, full precision on CPU.
        gradient_checkpointing: trade compute for memory.
        response_only_lm_head: apply the LM head only at positions that have a label (the responses in
            instruction tuning); same loss, much less compute and memory for long prompts and short answers.
    """

    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(1, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    gradient_checkpointing: bool = False
    response_only_lm_head: bool = True


class CheckpointConfig(_Strict):
    """Periodic, atomic checkpoints (adapter, optimiser, scheduler, RNG states, data position).

    Attributes:
        save_every: optimiser steps between checkpoints (None: no periodic checkpoints).
        keep_last: checkpoints kept (older ones are deleted after a new one is complete).
        resume: continue from the newest complete checkpoint under ``<output_dir>/checkpoints`` if any.
    """

    save_every: int | None = Field(None, ge=1)
    keep_last: int = Field(2, ge=1)
    resume: bool = False


class LoggingConfig(_Strict):
    """Local logging.  Nothing is sent anywhere unless ``report_to`` names a tracker (``"tensorboard"``,
    ``"wandb"``, ... as accepted by Accelerate); ``"none"`` (default) keeps everything local."""

    report_to: str | list[str] = "none"
    log_every: int = Field(10, ge=1)
    progress: bool = True

    @field_validator("report_to")
    @classmethod
    def _check_report_to(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list):
            v = [x for x in v if x != "none"] or "none"
        return v


class TrainingConfig(_Strict):
    """A training run: model, data, LoRA, quantisation, optimiser, steps, checkpoints and logging.

    ``stage`` picks the phase: ``"pretrain"`` (continued pre-training on raw text, next-token prediction on
    packed blocks) or ``"sft"`` (instruction tuning, loss on the responses only).  See
    :meth:`paper_pretrain` and :meth:`paper_sft` for the CancerLLM paper's settings.
    """

    stage: Stage = "sft"
    output_dir: str
    seed: int = 42
    model: ModelConfig
    data: DataConfig = Field(default_factory=DataConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    quantization: QuantizationConfig = Field(default_factory=QuantizationConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    training: TrainConfig = Field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @field_validator("output_dir", mode="before")
    @classmethod
    def _path(cls, v: Any) -> Any:
        return os.fspath(v) if isinstance(v, os.PathLike) else v

    @model_validator(mode="after")
    def _share_prefix_needs_4d_masks(self) -> TrainingConfig:
        attn = self.model.attn_implementation
        if self.stage == "sft" and self.data.share_prefix and attn and _no_4d_masks(attn):
            raise ValueError(
                f"data.share_prefix: true needs an attention that takes a 4D mask (each question sees only the "
                f"report and itself), and model.attn_implementation {attn!r} accepts padding masks only; use "
                f"attn_implementation 'sdpa' (or 'eager', or leave it unset) with "
                f"share_prefix, or set share_prefix: false to keep {attn!r}")
        return self

    # ---------------------------------------------------------------------------------- paper presets
    @classmethod
    def paper_pretrain(cls, *, model: str, output_dir: str, train: list[str] | str, **overrides: Any) -> TrainingConfig:
        """The paper's continued pre-training: LoRA rank 8, alpha 16, dropout 0.05, lr 2e-4, one epoch, blocks of
        4,096 tokens.  ``overrides`` are nested changes, e.g. ``training={"batch_size": 8}``."""
        d: dict[str, Any] = {
            "stage": "pretrain",
            "output_dir": output_dir,
            "model": {"name_or_path": model},
            "data": {"train": train, "block_size": 4096},
            "lora": {"r": 8, "alpha": 16, "dropout": 0.05},
            "optimizer": {"learning_rate": 2e-4},
            "training": {"epochs": 1},
        }
        return cls.from_dict(_deep_update(d, overrides))

    @classmethod
    def paper_sft(
        cls, *, model: str, output_dir: str, train: list[str] | str, qlora: bool = True,
        pretrain_adapter: str | os.PathLike[str] | None = None, **overrides: Any,
    ) -> TrainingConfig:
        """The paper's instruction tuning: LoRA rank 64, alpha 16, dropout 0.05, lr 2e-4, 4-bit base
        (``qlora=False`` for a full-precision base), optionally stacked on a phase-1 ``pretrain_adapter``."""
        d: dict[str, Any] = {
            "stage": "sft",
            "output_dir": output_dir,
            "model": {"name_or_path": model,
                      "pretrain_adapter": os.fspath(pretrain_adapter) if pretrain_adapter is not None else None},
            "data": {"train": train},
            "lora": {"r": 64, "alpha": 16, "dropout": 0.05},
            "quantization": {"load_in_4bit": qlora},
            "optimizer": {"learning_rate": 2e-4},
            "training": {"epochs": 1},
        }
        return cls.from_dict(_deep_update(d, overrides))

    # ---------------------------------------------------------------------------------- (de)serialisation
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> TrainingConfig:
        """Validate a plain mapping; errors become one :class:`~cancerllm.errors.ConfigError` listing every problem."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source or 'training config'}: expected a mapping of sections, got {type(data).__name__}")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError(_describe(exc, source)) from None

    @classmethod
    def from_yaml(cls, source: str | os.PathLike[str]) -> TrainingConfig:
        """Load from a YAML file path or a YAML string."""
        yaml = _yaml()
        name: str | None = None
        if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source and
                                               source.strip().endswith((".yaml", ".yml"))):
            path = Path(source)
            if not path.is_file():
                raise ConfigError(f"training config {path} does not exist")
            text, name = path.read_text(encoding="utf-8"), str(path)
        else:
            text = str(source)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name or 'training config'}: invalid YAML: {exc}") from None
        return cls.from_dict(data or {}, source=name)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self, path: str | os.PathLike[str] | None = None) -> str:
        """The config as YAML; also written (atomically) to ``path`` when given."""
        text = _yaml().safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)
        if path is not None:
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(p.name + f".tmp{os.getpid()}")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, p)
        return text

    def updated(self, **changes: Any) -> TrainingConfig:
        """A validated copy with nested changes, e.g. ``cfg.updated(training={"max_steps": 10})``."""
        return self.from_dict(_deep_update(self.to_dict(), changes))


def load_config(config: TrainingConfig | Mapping[str, Any] | str | os.PathLike[str]) -> TrainingConfig:
    """A :class:`TrainingConfig` from itself, a mapping, a YAML path or a YAML string."""
    if isinstance(config, TrainingConfig):
        return config
    if isinstance(config, Mapping):
        return TrainingConfig.from_dict(config)
    if isinstance(config, (str, os.PathLike)):
        return TrainingConfig.from_yaml(config)
    raise ConfigError(f"expected a TrainingConfig, a mapping or a YAML path, got {type(config).__name__}")


# ---------------------------------------------------------------------------------------------- helpers
def _no_4d_masks(attn_implementation: str) -> bool:
    """Attention implementations that take no 4D attention mask: the flash-attention kernels
    (``flash_attention_2``, ``flash_attention_3``, hub kernels such as ``kernels-community/flash-attn``)."""
    name = attn_implementation.lower().replace("-", "_")
    return "flash_attention" in name or "flash_attn" in name


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - PyYAML is a core dependency
        from ..errors import MissingDependencyError

        raise MissingDependencyError(
            'PyYAML is required for YAML training configs but is not installed; run: pip install pyyaml'
        ) from exc
    return yaml


def _deep_update(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in changes.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_update(dict(out[k]), v)
        else:
            out[k] = v
    return out


def _describe(exc: ValidationError, source: str | None) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"  {loc}: {msg}")
    head = f"invalid training config{f' {source}' if source else ''} ({len(lines)} problem{'s' * (len(lines) != 1)}):"
    return "\n".join([head, *lines])
