"""``CancerLLM``: load any causal LM (plus an optional LoRA adapter), save it, and build the task objects.

    >>> model = CancerLLM.from_pretrained("cancerllm-smol")            # doctest: +SKIP
    >>> model.phenotype_extractor().extract("... pathology report ...") # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ._constants import ADAPTER_CONFIG_NAME, CONFIG_NAME, DEFAULT_MODEL, MAX_INPUT_TOKENS, SMOL_BASE_MODEL
from .engine.base import Engine
from .errors import ConfigError, InputError, ModelLoadError
from .prompts import PromptBuilder

if TYPE_CHECKING:  # pragma: no cover
    from .tasks.diagnosis import DiagnosisGenerator
    from .tasks.phenotype import PhenotypeExtractor

logger = logging.getLogger(__name__)

__all__ = ["CancerLLM"]

Quantization = Literal["8bit", "4bit"] | None
_FORMAT_VERSION = 1


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for pkg in ("cancerllm", "torch", "transformers", "peft"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _quant_config(quantization: Quantization, dtype: Any) -> Any:
    if quantization is None:
        return None
    if quantization not in ("8bit", "4bit"):
        raise ConfigError(f"quantization must be None, '8bit' or '4bit', got {quantization!r}")
    from ._optional import require

    require("bitsandbytes", feature=f"{quantization} quantization")
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype if dtype is not None else torch.float32,
    )


def _resolve_dtype(dtype: Any) -> Any:
    import torch

    if dtype is None or dtype == "auto":
        return torch.float32 if not torch.cuda.is_available() else torch.bfloat16
    if isinstance(dtype, str):
        try:
            return getattr(torch, dtype)
        except AttributeError:
            raise ConfigError(f"unknown dtype {dtype!r}; use e.g. 'float32', 'bfloat16', 'float16'") from None
    return dtype


class CancerLLM:
    """A causal LM, its tokenizer, the prompt builder and a generation engine.

    Build it with :meth:`from_pretrained`; get task objects with :meth:`phenotype_extractor` and
    :meth:`diagnosis_generator`.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        prompt_style: Literal["alpaca", "chat", "auto"] = "alpaca",
        base_model: str | None = None,
        max_input_tokens: int = MAX_INPUT_TOKENS,
        generation: dict[str, Any] | None = None,
        quantization: Quantization = None,
        backend: str = "hf",
        answer_prefix: str = "",
    ) -> None:
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token  # inference only: pads are masked out
        self.model = model
        self.tokenizer = tokenizer
        self.prompt_builder = PromptBuilder(prompt_style, tokenizer, answer_prefix=answer_prefix)
        self.base_model = base_model
        self.max_input_tokens = int(max_input_tokens)
        self.generation = dict(generation or {})
        self.quantization = quantization
        self.backend = backend
        self._engine: Engine | None = None

    # ------------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        adapter: str | os.PathLike[str] | None = None,
        quantization: Quantization = None,
        dtype: Any = None,
        device_map: Any = None,
        local_files_only: bool | None = None,
        trust_remote_code: bool = False,
        prompt_style: Literal["alpaca", "chat", "auto"] | None = None,
        max_input_tokens: int | None = None,
        allow_pickle: bool = False,
        backend: str = "hf",
        answer_prefix: str | None = None,
        merge_adapter: bool | None = None,
    ) -> CancerLLM:
        """Load a model by local path or hub id, optionally with a PEFT LoRA adapter.

        Args:
            name_or_path: ``"cancerllm-smol"`` (the embedded default, offline: SmolLM2-135M-Instruct plus
                the shipped CancerLLM-Smol adapter), ``"smollm2-135m-instruct"`` (the same base without
                the adapter, with the same prompts: the zero-shot baseline), a directory written by
                :meth:`save_pretrained`, a PEFT adapter directory, a model directory or a hub id.
            adapter: path of a PEFT LoRA adapter to load on top.
            quantization: ``None``, ``"8bit"`` or ``"4bit"`` (bitsandbytes NF4 with double quantization).
            dtype: torch dtype or its name; default float32 on CPU, bfloat16 on GPU.
            device_map: passed to transformers (e.g. ``"auto"``).
            local_files_only: default True for local paths (never touches the network); for hub ids the
                transformers default applies.
            trust_remote_code: stays False unless you set it.
            prompt_style: ``"alpaca"`` (the paper's template), ``"chat"`` or ``"auto"``; default: what the
                saved config says, else ``"chat"`` for the embedded default and ``"alpaca"`` otherwise.
            max_input_tokens: input limit (the paper's 1,500 tokens by default).
            allow_pickle: allow ``.bin`` pickled weights (off: only safetensors are loaded).
            backend: ``"hf"`` (transformers) or ``"vllm"``.
            answer_prefix: text that opens every phenotype answer in the prompt (see
                :class:`~cancerllm.prompts.PromptBuilder`); default: the saved config's, ``"{"`` for the
                embedded default, else ``""`` (the official format).
            merge_adapter: add the LoRA update into the base weights for inference (PEFT's
                ``merge_adapter``), so a forward pass runs one matmul per layer instead of three (about 18%
                faster per forward pass on SmolLM2, same outputs up to float rounding).  The adapter stays attached:
                :meth:`save_pretrained` still writes it, and ``model.unmerge_adapter()`` undoes the merge.
                Default: merge when the weights are not quantized (merging into 8-bit/4-bit weights would
                round them).

        Raises:
            ModelLoadError: the model, tokenizer or adapter cannot be loaded.
        """
        saved: dict[str, Any] = {}
        name = str(name_or_path)
        path = Path(name).expanduser()
        adapter_dir: Path | None = Path(adapter).expanduser() if adapter is not None else None
        base: str = name
        default_style: str = "alpaca"
        default_prefix = ""
        if name in (DEFAULT_MODEL, SMOL_BASE_MODEL):
            default_prefix = "{"
            from ._smol import packaged_adapter_dir, smol_base_dir

            base = str(smol_base_dir())
            default_style = "chat"
            if adapter_dir is None and name == DEFAULT_MODEL:
                adapter_dir = packaged_adapter_dir()
                if adapter_dir is not None and (adapter_dir / CONFIG_NAME).is_file():
                    # the prompt the shipped adapter was trained with
                    prompt = cls._read_config(adapter_dir).get("prompt", {})
                    default_style = prompt.get("style", default_style)
                    default_prefix = prompt.get("answer_prefix", default_prefix)
        elif path.is_dir() and (path / CONFIG_NAME).is_file():
            saved = cls._read_config(path)
            default_style = saved.get("prompt", {}).get("style", "alpaca")
            default_prefix = saved.get("prompt", {}).get("answer_prefix", "")
            if saved.get("adapter"):
                if adapter_dir is not None:
                    raise ConfigError(f"{path} already holds an adapter; do not pass adapter= as well")
                adapter_dir = path
                base = saved.get("base_model") or ""
                if base in (DEFAULT_MODEL, SMOL_BASE_MODEL):
                    from ._smol import smol_base_dir

                    base = str(smol_base_dir())
                elif not base:
                    raise ModelLoadError(f"{path / CONFIG_NAME} names no base_model for its adapter")
            else:
                base = str(path)
        elif path.is_dir() and (path / ADAPTER_CONFIG_NAME).is_file():
            if adapter_dir is not None:
                raise ConfigError(f"{path} is an adapter; pass the base model as name_or_path instead")
            adapter_dir = path
            base = json.loads((path / ADAPTER_CONFIG_NAME).read_text()).get("base_model_name_or_path") or ""
            if not base:
                raise ModelLoadError(f"{path / ADAPTER_CONFIG_NAME} names no base_model_name_or_path")
        if local_files_only is None and Path(base).expanduser().exists():
            local_files_only = True

        torch_dtype = _resolve_dtype(dtype)
        qcfg = _quant_config(quantization, torch_dtype)
        model, tokenizer = cls._load_base(
            base,
            dtype=torch_dtype,
            quantization_config=qcfg,
            device_map=device_map,
            local_files_only=local_files_only,
            trust_remote_code=trust_remote_code,
            allow_pickle=allow_pickle,
            tokenizer_dir=adapter_dir if adapter_dir and (adapter_dir / "tokenizer_config.json").is_file() else None,
        )
        if adapter_dir is not None:
            model = cls._load_adapter(model, adapter_dir)
            if merge_adapter or (merge_adapter is None and quantization is None):
                if quantization is not None:
                    raise ConfigError("merge_adapter=True cannot be combined with quantization (it would round "
                                      "the merged weights); leave merge_adapter unset")
                model.merge_adapter()
        model.eval()
        style = prompt_style or default_style
        if style == "chat" and not getattr(tokenizer, "chat_template", None):
            style = "alpaca"
        return cls(
            model,
            tokenizer,
            prompt_style=style,  # type: ignore[arg-type]
            base_model=saved.get("base_model") or (name if name in (DEFAULT_MODEL, SMOL_BASE_MODEL) else base),
            max_input_tokens=max_input_tokens or saved.get("max_input_tokens", MAX_INPUT_TOKENS),
            generation=saved.get("generation"),
            quantization=quantization,
            backend=backend,
            answer_prefix=default_prefix if answer_prefix is None else answer_prefix,
        )

    @staticmethod
    def _read_config(path: Path) -> dict[str, Any]:
        try:
            cfg = json.loads((path / CONFIG_NAME).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"cannot read {path / CONFIG_NAME}: {exc}") from exc
        if not isinstance(cfg, dict):
            raise ModelLoadError(f"{path / CONFIG_NAME} must hold a JSON object")
        version = cfg.get("format_version", 1)
        if isinstance(version, int) and version > _FORMAT_VERSION:
            logger.warning("%s was written by a newer cancerllm (format %s); loading what is understood", path, version)
        return cfg

    @staticmethod
    def _load_base(base: str, *, tokenizer_dir: Path | None, allow_pickle: bool, **kw: Any) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quant = kw.pop("quantization_config")
        local = kw["local_files_only"]
        dtype = kw.pop("dtype")
        p = Path(base).expanduser()
        if p.is_dir() and not allow_pickle and not any(p.glob("*.safetensors")) and any(p.glob("*.bin")):
            raise ModelLoadError(
                f"{p} holds only pickled weights (*.bin), which can run arbitrary code when loaded; convert them "
                "to safetensors or pass allow_pickle=True if you trust the files"
            )
        load_kw: dict[str, Any] = {k: v for k, v in kw.items() if v is not None}
        if quant is not None:
            load_kw["quantization_config"] = quant
        try:
            model = AutoModelForCausalLM.from_pretrained(
                base, dtype=dtype, use_safetensors=None if allow_pickle else True, **load_kw
            )
            tokenizer = AutoTokenizer.from_pretrained(
                str(tokenizer_dir or base), local_files_only=bool(local) or tokenizer_dir is not None,
                trust_remote_code=kw["trust_remote_code"],
            )
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load model {base!r}: {exc}") from exc
        return model, tokenizer

    @staticmethod
    def _load_adapter(model: Any, adapter_dir: Path) -> Any:
        from ._optional import require

        require("peft", feature="loading a LoRA adapter")
        from peft import PeftModel

        if not (adapter_dir / ADAPTER_CONFIG_NAME).is_file():
            raise ModelLoadError(f"{adapter_dir} is not a PEFT adapter directory (no {ADAPTER_CONFIG_NAME})")
        try:
            with warnings.catch_warnings():
                # peft calls a transformers method that transformers 5 deprecates; not the user's concern
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load adapter {adapter_dir}: {exc}") from exc

    # ------------------------------------------------------------------------------------- saving
    @property
    def has_adapter(self) -> bool:
        """Whether a LoRA (PEFT) adapter is loaded on the base model."""
        return hasattr(self.model, "peft_config")

    def _adapter_targets_embeddings(self) -> bool:
        from peft.utils.other import EMBEDDING_LAYER_NAMES

        for cfg in self.model.peft_config.values():
            targets = cfg.target_modules or ()
            names = [targets] if isinstance(targets, str) else list(targets)
            if any(e in t for t in names for e in EMBEDDING_LAYER_NAMES):
                return True
        return False

    @property
    def adapter_merged(self) -> bool:
        """Whether the adapter's update is merged into the base weights (see ``merge_adapter``)."""
        if not self.has_adapter:
            return False
        from peft.tuners.tuners_utils import BaseTunerLayer

        return any(m.merged for m in self.model.modules() if isinstance(m, BaseTunerLayer))

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write the adapter (or, without one, the whole model) in safetensors, the tokenizer, and
        ``cancerllm_config.json`` (prompt settings, generation settings, library versions).

        ``CancerLLM.from_pretrained(directory)`` gives a model with identical outputs.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        if self.has_adapter:
            if not self.base_model:
                raise ConfigError("cannot save an adapter without knowing its base model (base_model is unset)")
            # an explicit save_embedding_layers: peft's "auto" looks the base model up on the Hub when its
            # name is not a local path (e.g. "cancerllm-smol"), a network call from a private environment
            self.model.save_pretrained(str(out), safe_serialization=True,
                                       save_embedding_layers=self._adapter_targets_embeddings())
        else:
            if self.quantization is not None:
                raise ConfigError("saving a quantized base model is not supported; save the unquantized model")
            self.model.save_pretrained(str(out), safe_serialization=True)
        self.tokenizer.save_pretrained(str(out))
        cfg = {
            "format_version": _FORMAT_VERSION,
            "base_model": self.base_model if self.has_adapter else None,
            "adapter": self.has_adapter,
            "prompt": self.prompt_builder.to_config(),
            "max_input_tokens": self.max_input_tokens,
            "generation": self.generation,
            "versions": _versions(),
        }
        tmp = out / (CONFIG_NAME + ".tmp")
        tmp.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
        os.replace(tmp, out / CONFIG_NAME)
        return out

    # ------------------------------------------------------------------------------------- engine
    @property
    def engine(self) -> Engine:
        """The generation engine (built on first use)."""
        if self._engine is None:
            if self.backend == "hf":
                from .engine.hf import HFEngine

                self._engine = HFEngine(self.model, self.tokenizer)
            elif self.backend == "vllm":
                from .engine.vllm import VLLMEngine

                self._engine = VLLMEngine.from_model(self)
            else:
                from .errors import UnknownBackendError

                raise UnknownBackendError("engine backend", self.backend, ["hf", "vllm"])
        return self._engine

    def generate(self, prompts: list[str], *, max_new_tokens: int = 50, stop_strings: tuple[str, ...] = (),
                 batch_size: int = 8) -> list[str]:
        """Greedy completions of raw prompt strings (no template applied)."""
        from .engine.base import GenerationSettings, PromptGroup

        if isinstance(prompts, str):
            raise InputError("generate() takes a list of prompts; wrap a single prompt in a list")
        groups = [PromptGroup(self.prompt_builder._ids(p), [[]]) for p in prompts]
        outs = self.engine.generate_groups(groups, GenerationSettings(max_new_tokens, stop_strings, batch_size))
        return [self.tokenizer.decode(o[0], skip_special_tokens=True) for o in outs]

    # ------------------------------------------------------------------------------------- tasks
    def phenotype_extractor(self, phenotypes: Any = None, **kwargs: Any) -> PhenotypeExtractor:
        """A :class:`~cancerllm.tasks.phenotype.PhenotypeExtractor` on this model."""
        from .tasks.phenotype import PhenotypeExtractor

        return PhenotypeExtractor(self, phenotypes=phenotypes, **kwargs)

    def diagnosis_generator(self, **kwargs: Any) -> DiagnosisGenerator:
        """A :class:`~cancerllm.tasks.diagnosis.DiagnosisGenerator` on this model."""
        from .tasks.diagnosis import DiagnosisGenerator

        return DiagnosisGenerator(self, **kwargs)

    def __repr__(self) -> str:
        return (f"CancerLLM(base_model={self.base_model!r}, adapter={self.has_adapter}, "
                f"prompt_style={self.prompt_builder.style!r}, backend={self.backend!r})")
