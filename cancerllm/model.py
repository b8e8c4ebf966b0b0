"""``CancerLLM``: load any causal LM (plus an optional LoRA adapter), save it, and build the task objects.

    >>> model = CancerLLM.from_pretrained("cancerllm-smol")            # doctest: +SKIP
    >>> model.phenotype_extractor().extract("... pathology report ...") # doctest: +SKIP

The loading rules (placement, dtype, quantization, pickles, hub files, pad token) live in
:mod:`cancerllm._loading`, shared with training.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import _loading as ld
from ._constants import (
    ADAPTER_CONFIG_NAME,
    CONFIG_NAME,
    DEFAULT_MODEL,
    DIAGNOSIS_MAX_NEW_TOKENS,
    MAX_INPUT_TOKENS,
    PHENOTYPE_MAX_NEW_TOKENS,
    SMOL_BASE_MODEL,
    SMOL_RELEASES,
    SMOL_TASK_ADAPTERS,
)
from ._task_adapters import TASKS, TaskAdapters, check_tasks, folder_sha256
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
_BACKENDS = ("hf", "vllm")
#: the settings of ``generation`` in ``cancerllm_config.json``: defaults of the task objects' arguments
_GENERATION_KEYS: dict[str, tuple[str, ...]] = {
    "phenotype": ("max_new_tokens", "batch_size", "chunking", "chunk_overlap"),
    "diagnosis": ("max_new_tokens", "batch_size"),
}
_DEFAULT_MAX_NEW_TOKENS = {"phenotype": PHENOTYPE_MAX_NEW_TOKENS, "diagnosis": DIAGNOSIS_MAX_NEW_TOKENS}
#: files of an adapter repository fetched from the hub (no full-model weights)
_ADAPTER_FILES = ["adapter_*", "*/adapter_*", "*.json", "*.jinja", "*.model", "*.txt"]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for pkg in ("cancerllm", "torch", "transformers", "peft"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _vocab(folder: Path) -> Any:
    """The vocabulary part of an adapter folder's ``tokenizer.json`` (model and added tokens), or None."""
    file = folder / "tokenizer.json"
    if not file.is_file():
        return None
    try:
        tok = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {file}: {exc}") from exc
    return tok.get("model"), tok.get("added_tokens")


def _check_generation(generation: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Validate ``generation`` settings: known keys checked, unknown ones (a newer version's) dropped with a
    warning."""
    out: dict[str, dict[str, Any]] = {}
    for task, values in (generation or {}).items():
        if task not in _GENERATION_KEYS:
            logger.warning("generation settings for %r are not understood by this version; ignored (known: %s)",
                           task, ", ".join(_GENERATION_KEYS))
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"generation[{task!r}] must be a mapping of settings, got {values!r}")
        kept: dict[str, Any] = {}
        for key, value in values.items():
            if key not in _GENERATION_KEYS[task]:
                logger.warning("generation setting %s.%s is not understood by this version; ignored (known: %s)",
                               task, key, ", ".join(_GENERATION_KEYS[task]))
                continue
            if key in ("max_new_tokens", "batch_size") and (isinstance(value, bool) or not isinstance(value, int)
                                                             or value < 1):
                raise ConfigError(f"generation[{task!r}][{key!r}] must be a positive integer, got {value!r}")
            kept[key] = value
        out[task] = kept
    return out


@dataclass
class _Source:
    """What ``from_pretrained`` resolved a name to, before loading anything."""

    base: str  # what transformers loads: a local folder or a hub id
    base_record: str  # what save_pretrained records as the base
    hub: dict[str, Any] = field(default_factory=dict)  # revision/token/cache_dir for the base
    adapter_dir: Path | None = None
    saved: dict[str, Any] = field(default_factory=dict)
    style: str = "alpaca"
    answer_prefix: str = ""
    shots_layout: str = "shared"
    name: str | None = None  # name_or_path as given
    task_adapter_dirs: dict[str, Path] = field(default_factory=dict)  # task -> its own adapter folder

    def base_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The caller's transformers kwargs for loading the base: ``revision`` names a version of
        ``name_or_path``, so it is dropped when the base is another repository (an adapter's base)."""
        if self.name is not None and self.base == self.name:
            return dict(kwargs)
        return {k: v for k, v in kwargs.items() if k != "revision"}

    @property
    def tokenizer_src(self) -> tuple[str, dict[str, Any]]:
        if self.adapter_dir is not None and (self.adapter_dir / "tokenizer_config.json").is_file():
            return str(self.adapter_dir), {}
        return self.base, self.hub


class CancerLLM:
    """A causal LM, its tokenizer, the prompt builder and a generation engine.

    Build it with :meth:`from_pretrained`; get task objects with :meth:`phenotype_extractor` and
    :meth:`diagnosis_generator`.  With ``backend="vllm"``, ``model`` is None: the weights live in the vLLM
    engine only.
    """

    #: the name reports show for this model (e.g. the benchmark's system name); None: derived from the base
    display_name: str | None = None

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
        shots_layout: Literal["shared", "inline"] = "shared",
        engine: Engine | None = None,
        adapter_path: str | os.PathLike[str] | None = None,
        base_path: str | None = None,
        task_adapter_paths: Mapping[str, str | os.PathLike[str]] | None = None,
    ) -> None:
        ld.ensure_pad_token(tokenizer)  # inference: pads are masked out
        self.model = model
        self.tokenizer = tokenizer
        self.prompt_builder = PromptBuilder(prompt_style, tokenizer, answer_prefix=answer_prefix,
                                            shots_layout=shots_layout)
        self.base_model = base_model
        self.max_input_tokens = int(max_input_tokens)
        self.generation: dict[str, dict[str, Any]] = _check_generation(generation)
        self.quantization = quantization
        self.backend = backend
        #: the adapter folder this model was loaded from (None: no adapter, or built in memory)
        self.adapter_path: Path | None = Path(adapter_path) if adapter_path is not None else None
        #: the loadable location of the base weights (a folder or hub id)
        self.base_path = base_path
        #: task -> the adapter folder that task runs with, for the tasks routed away from the main adapter
        #: (``task_adapters`` of :meth:`from_pretrained`); empty: every task runs with the main adapter
        self.task_adapter_paths: dict[str, Path] = {t: Path(p) for t, p in (task_adapter_paths or {}).items()}
        self._engine: Engine | None = engine
        self._switch: TaskAdapters | None = None  # the HF backend's adapter switching (with task adapters)
        #: the tasks this model was loaded for (``tasks=`` of :meth:`from_pretrained`); None: every task
        self.tasks: tuple[str, ...] | None = None
        self._task_lock = threading.RLock()

    # ------------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        adapter: str | os.PathLike[str] | None = None,
        quantization: Quantization = None,
        dtype: Any = None,
        device: Any = None,
        device_map: Any = None,
        local_files_only: bool | None = None,
        trust_remote_code: bool = False,
        prompt_style: Literal["alpaca", "chat", "auto"] | None = None,
        max_input_tokens: int | None = None,
        allow_pickle: bool = False,
        backend: str = "hf",
        answer_prefix: str | None = None,
        merge_adapter: bool | None = None,
        task_adapters: Mapping[str, str | os.PathLike[str]] | None = None,
        tasks: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> CancerLLM:
        """Load a model by local path or hub id, optionally with a PEFT LoRA adapter.

        Args:
            name_or_path: ``"cancerllm-smol"`` (the embedded default, offline: SmolLM2-135M-Instruct plus
                the shipped CancerLLM-Smol adapter), ``"smollm2-135m-instruct"`` (the same base without
                the adapter, with the same prompts: the zero-shot baseline), a directory written by
                :meth:`save_pretrained`, a PEFT adapter directory, a model directory, or a hub id of any of
                these (its ``cancerllm_config.json`` is read from the hub or its cache).
            adapter: a PEFT LoRA adapter (folder or hub id) to load on top.
            quantization: ``None``, ``"8bit"`` or ``"4bit"`` (bitsandbytes NF4 with double quantization); on
                the CPU it is often slower than float32 (a :class:`~cancerllm.errors.PerformanceWarning` says so).
            dtype: torch dtype or its name; default (``None`` / ``"auto"``) follows the device: bfloat16 on a
                GPU that supports it, float16 on older GPUs (T4, V100); on the CPU bfloat16 where it has
                native bf16 dot products (AVX512-BF16, AMX, Arm BF16: 1.9-2.1x float32 on CancerLLM-Smol,
                validation accuracy within float32's interval), else float32; ``CANCERLLM_CPU_BF16=0`` in the
                environment keeps float32 (bit-exact with ``model.generate``).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (every GPU, through accelerate); default:
                ``cuda:0`` when there is a GPU, else the CPU.
            device_map: passed to transformers (e.g. ``"auto"`` or a per-module mapping); instead of ``device``.
            local_files_only: default True for local paths (never touches the network); for hub ids the
                transformers default applies (``HF_HUB_OFFLINE=1`` makes it True).
            trust_remote_code: stays False unless you set it.
            prompt_style: ``"alpaca"`` (the paper's template), ``"chat"`` or ``"auto"``; default: what the
                saved config says, else ``"chat"`` for the embedded default and ``"alpaca"`` otherwise.
            max_input_tokens: input limit (the paper's 1,500 tokens by default).
            allow_pickle: allow ``.bin`` pickled weights (off: only safetensors are loaded).
            backend: ``"hf"`` (transformers) or ``"vllm"`` (``pip install "cancerllm[vllm]"``; the weights
                are loaded by vLLM only, the tokenizer by transformers).
            answer_prefix: text that opens every phenotype answer in the prompt (see
                :class:`~cancerllm.prompts.PromptBuilder`); default: the saved config's, ``"{"`` for the
                embedded default, else ``""`` (the official format).
            merge_adapter: add the LoRA update into the base weights for inference (PEFT's
                ``merge_adapter``), so a forward pass runs one matmul per layer instead of three (about 18%
                faster per forward pass on SmolLM2, same outputs up to float rounding).  The adapter stays attached:
                :meth:`save_pretrained` still writes it, and ``model.unmerge_adapter()`` undoes the merge.
                Default: merge when the weights are not quantized (merging into 8-bit/4-bit weights would
                round them).
            task_adapters: a task (``"phenotype"``, ``"diagnosis"``) -> an adapter (folder or hub id) that
                task runs with instead of the main adapter, loaded on the same base (PEFT's multi-adapter
                loading; one base in memory).  The task objects switch adapters around each generation, under
                a lock, exactly (see :mod:`cancerllm._task_adapters`); :meth:`save_pretrained` writes them all.
                A task adapter must share the main adapter's base, tokenizer and prompt settings.  Default: what
                the name ships with or the saved config records; ``"cancerllm-smol"`` runs diagnoses with the
                v4 adapter (``task_adapters={}`` runs every task with v3, as ``"cancerllm-smol-v3"`` does).
            tasks: the tasks this model will run (default: all).  Only their adapters are loaded: a
                single-task job on ``"cancerllm-smol"`` (``tasks=["diagnosis"]``) loads v4 alone, with no
                second adapter and no copy of the base weights; another task then raises ``ConfigError``.
            **kwargs: passed to transformers' ``from_pretrained`` (``revision``, ``token``, ``cache_dir``,
                ``attn_implementation`` ...); ``revision``, ``token`` and ``cache_dir`` also locate the
                tokenizer and ``cancerllm_config.json``.  With ``backend="vllm"``, passed to ``vllm.LLM``.

        Raises:
            ModelLoadError: the model, tokenizer or adapter cannot be loaded (or a local path does not exist).
            ConfigError: conflicting or invalid settings (e.g. ``device="cuda"`` on a machine without a GPU).
            MissingDependencyError: an optional package is missing (bitsandbytes, peft, vllm).
        """
        if backend not in _BACKENDS:
            from .errors import UnknownBackendError

            raise UnknownBackendError("engine backend", backend, list(_BACKENDS))
        if quantization not in (None, "8bit", "4bit"):
            raise ConfigError(f"quantization must be None, '8bit' or '4bit', got {quantization!r}")
        if merge_adapter and quantization is not None:
            raise ConfigError("merge_adapter=True cannot be combined with quantization (it would round "
                              "the merged weights); leave merge_adapter unset")
        ld.check_kwargs(kwargs)
        hub = {k: kwargs[k] for k in ld.HUB_KWARGS if k in kwargs}
        src = cls._resolve(name_or_path, adapter, hub, local_files_only)
        if task_adapters is not None:
            check_tasks(task_adapters)
            other_repo = {k: v for k, v in hub.items() if k != "revision"}
            src.task_adapter_dirs = {t: cls._adapter_folder(a, other_repo, local_files_only)
                                     for t, a in task_adapters.items()}
        cls._check_task_adapters(src)
        wanted = cls._only_tasks(src, tasks)
        if local_files_only is None and Path(src.base).expanduser().exists():
            local_files_only = True
        style_default, prefix_default = src.style, src.answer_prefix
        common = dict(
            base_model=src.saved.get("base_model") or src.base_record,
            max_input_tokens=max_input_tokens or src.saved.get("max_input_tokens", MAX_INPUT_TOKENS),
            generation=src.saved.get("generation"),
            quantization=quantization,
            backend=backend,
            answer_prefix=prefix_default if answer_prefix is None else answer_prefix,
            shots_layout=src.shots_layout,
            adapter_path=src.adapter_dir,
            base_path=src.base,
            task_adapter_paths=src.task_adapter_dirs,
        )
        if backend == "vllm":
            vllm_llm = cls._from_pretrained_vllm(src, common, prompt_style or style_default, dtype=dtype,
                                             device=device, device_map=device_map, local_files_only=local_files_only,
                                             trust_remote_code=trust_remote_code, llm_kwargs=src.base_kwargs(kwargs))
            vllm_llm.tasks = wanted
            return vllm_llm
        placement = ld.resolve_placement(device, device_map)
        torch_dtype = ld.resolve_dtype(dtype, placement, cpu_bf16=True)
        qcfg = ld.quantization_config(quantization, torch_dtype, device_type=placement.device_type)
        model = ld.load_causal_lm(src.base, dtype=torch_dtype, placement=placement, quantization=qcfg,
                                  local_files_only=local_files_only, trust_remote_code=trust_remote_code,
                                  allow_pickle=allow_pickle, **src.base_kwargs(kwargs))
        tokenizer = cls._tokenizer(src, local_files_only, trust_remote_code)
        switch = None
        if src.adapter_dir is not None:
            model = cls._load_adapter(model, src.adapter_dir)
            merge = bool(merge_adapter or (merge_adapter is None and quantization is None))
            if src.task_adapter_dirs:
                for task, folder in src.task_adapter_dirs.items():
                    cls._load_adapter(model, folder, name=task)
                switch = TaskAdapters(model, src.task_adapter_dirs, merged=merge)  # copies the base first
            if merge:
                model.merge_adapter()
        model.eval()
        llm = cls(model, tokenizer, prompt_style=cls._style(prompt_style or style_default, tokenizer),
                  **common)  # type: ignore[arg-type]
        llm._switch, llm.tasks = switch, wanted
        return llm

    @classmethod
    def _from_pretrained_vllm(cls, src: _Source, common: dict[str, Any], style: str, *, dtype: Any, device: Any,
                              device_map: Any, local_files_only: bool | None, trust_remote_code: bool,
                              llm_kwargs: dict[str, Any]) -> CancerLLM:
        """The tokenizer by transformers, the weights by vLLM only (from the resolved paths)."""
        from .engine.vllm import VLLMEngine, require_vllm

        require_vllm()  # at load time, not at the first generation
        if device_map is not None or (device is not None and str(device).lower() not in ("auto", "cuda", "cuda:0")):
            raise ConfigError("backend='vllm' places the model itself; leave device/device_map unset (choose "
                              "GPUs with CUDA_VISIBLE_DEVICES and tensor_parallel_size=)")
        tokenizer = cls._tokenizer(src, local_files_only, trust_remote_code)
        llm = cls(None, tokenizer, prompt_style=cls._style(style, tokenizer), **common)  # type: ignore[arg-type]
        tok_src, _ = src.tokenizer_src
        max_model_len = llm_kwargs.pop("max_model_len", None) or llm._max_model_len()
        llm._engine = VLLMEngine.from_paths(
            src.base, tokenizer=tok_src, adapter=src.adapter_dir, task_adapters=list(src.task_adapter_dirs.values()),
            max_model_len=max_model_len,
            tokenizer_obj=tokenizer, dtype=dtype, quantization=common["quantization"],
            trust_remote_code=trust_remote_code, local_files_only=local_files_only, **llm_kwargs,
        )
        return llm

    @staticmethod
    def _style(style: str, tokenizer: Any) -> str:
        return "alpaca" if style == "chat" and not getattr(tokenizer, "chat_template", None) else style

    @staticmethod
    def _tokenizer(src: _Source, local_files_only: bool | None, trust_remote_code: bool) -> Any:
        path, hub = src.tokenizer_src
        local = True if path != src.base else local_files_only
        return ld.load_tokenizer(path, local_files_only=local, trust_remote_code=trust_remote_code, hub=hub)

    @classmethod
    def _resolve(cls, name_or_path: str | os.PathLike[str], adapter: str | os.PathLike[str] | None,
                 hub: dict[str, Any], local_files_only: bool | None) -> _Source:
        """Name -> base, adapter folder, saved config and prompt defaults, without loading any weights."""
        name = os.fspath(name_or_path)
        src = _Source(base=name, base_record=name, hub=dict(hub), name=name)
        other_repo = {k: v for k, v in hub.items() if k != "revision"}  # a base or adapter named elsewhere
        if adapter is not None:
            src.adapter_dir = cls._adapter_folder(adapter, other_repo, local_files_only)
        if isinstance(name_or_path, str) and (name in (DEFAULT_MODEL, SMOL_BASE_MODEL) or name in SMOL_RELEASES):
            from ._smol import packaged_adapter_dir, smol_base_dir

            src.base, src.hub, src.style, src.answer_prefix = str(smol_base_dir()), {}, "chat", "{"
            if src.adapter_dir is None and name != SMOL_BASE_MODEL:
                src.adapter_dir = packaged_adapter_dir(SMOL_RELEASES.get(name, "current"))
                if src.adapter_dir is not None and (src.adapter_dir / CONFIG_NAME).is_file():
                    prompt = cls._read_config(src.adapter_dir / CONFIG_NAME).get("prompt", {})  # as trained
                    src.style = prompt.get("style", src.style)
                    src.answer_prefix = prompt.get("answer_prefix", src.answer_prefix)
                    src.shots_layout = prompt.get("shots_layout", src.shots_layout)
                if src.adapter_dir is not None:
                    for task, version in SMOL_TASK_ADAPTERS.get(name, {}).items():
                        folder = packaged_adapter_dir(version)
                        if folder is not None:
                            src.task_adapter_dirs[task] = folder
            return src
        ld.check_exists(name_or_path)
        folder = Path(name).expanduser()
        remote = not folder.is_dir()
        if remote:  # a hub id: its cancerllm_config.json / adapter_config.json from the hub or its cache
            found = ld.fetch_file(name, CONFIG_NAME, hub=hub, local_files_only=local_files_only)
            saved = cls._read_config(found) if found is not None else {}
            is_adapter = bool(saved.get("adapter")) if found is not None else (
                ld.fetch_file(name, ADAPTER_CONFIG_NAME, hub=hub, local_files_only=local_files_only) is not None)
            if not is_adapter:
                cls._apply_saved(src, saved)
                return src
            folder = ld.fetch_repo(name, hub=hub, local_files_only=local_files_only, allow_patterns=_ADAPTER_FILES)
        if (folder / CONFIG_NAME).is_file():
            saved = cls._read_config(folder / CONFIG_NAME)
            cls._apply_saved(src, saved)
            if not saved.get("adapter"):
                src.base = src.base_record = str(folder) if not remote else name
                return src
            if src.adapter_dir is not None:
                raise ConfigError(f"{name} already holds an adapter; do not pass adapter= as well")
            src.adapter_dir = folder
            check_tasks(saved.get("task_adapters") or {})
            src.task_adapter_dirs = {t: folder / rel for t, rel in (saved.get("task_adapters") or {}).items()}
            base = saved.get("base_model") or ""
            if not base:
                raise ModelLoadError(f"{name}/{CONFIG_NAME} names no base_model for its adapter")
        elif (folder / ADAPTER_CONFIG_NAME).is_file():
            if src.adapter_dir is not None:
                raise ConfigError(f"{name} is an adapter; pass the base model as name_or_path instead")
            src.adapter_dir = folder
            base = json.loads((folder / ADAPTER_CONFIG_NAME).read_text()).get("base_model_name_or_path") or ""
            if not base:
                raise ModelLoadError(f"{name}/{ADAPTER_CONFIG_NAME} names no base_model_name_or_path")
        else:
            src.base = src.base_record = str(folder)
            return src
        src.base_record = base
        if base in (DEFAULT_MODEL, SMOL_BASE_MODEL):
            from ._smol import smol_base_dir

            src.base, src.hub = str(smol_base_dir()), {}
        else:
            src.base, src.hub = base, other_repo
        return src

    @staticmethod
    def _apply_saved(src: _Source, saved: dict[str, Any]) -> None:
        src.saved = saved
        prompt = saved.get("prompt", {})
        src.style = prompt.get("style", src.style)
        src.answer_prefix = prompt.get("answer_prefix", src.answer_prefix)
        src.shots_layout = prompt.get("shots_layout", src.shots_layout)

    @staticmethod
    def _adapter_folder(adapter: str | os.PathLike[str], hub: dict[str, Any], local_files_only: bool | None) -> Path:
        p = Path(os.fspath(adapter)).expanduser()
        if p.is_dir():
            return p
        ld.check_exists(adapter, what="adapter")
        return ld.fetch_repo(os.fspath(adapter), hub=hub, local_files_only=local_files_only,
                             allow_patterns=_ADAPTER_FILES)

    @staticmethod
    def _read_config(file: Path) -> dict[str, Any]:
        try:
            cfg = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"cannot read {file}: {exc}") from exc
        if not isinstance(cfg, dict):
            raise ModelLoadError(f"{file} must hold a JSON object")
        version = cfg.get("format_version", 1)
        if isinstance(version, int) and version > _FORMAT_VERSION:
            logger.warning("%s was written by a newer cancerllm (format %s); loading what is understood", file, version)
        return cfg

    @staticmethod
    def _only_tasks(src: _Source, tasks: Sequence[str] | None) -> tuple[str, ...] | None:
        """Keep the task adapters of ``tasks`` only; when every task asked for runs with one task adapter, it
        becomes the main adapter (no switching, no copy of the base)."""
        if tasks is None:
            return None
        if isinstance(tasks, str):
            tasks = [tasks]
        wanted = tuple(dict.fromkeys(tasks))
        if not wanted:
            raise ConfigError(f"tasks= names no task; use None for all ({', '.join(TASKS)})")
        check_tasks(dict.fromkeys(wanted))
        src.task_adapter_dirs = {t: d for t, d in src.task_adapter_dirs.items() if t in wanted}
        folders = {src.task_adapter_dirs.get(t) for t in wanted}
        if len(folders) == 1 and None not in folders:
            src.adapter_dir = folders.pop()
            src.task_adapter_dirs = {}
        return wanted

    @classmethod
    def _check_task_adapters(cls, src: _Source) -> None:
        """Task adapters need a main adapter and must be prompted and tokenized as it is; one that is the main
        adapter's own folder is dropped (nothing to switch)."""
        if not src.task_adapter_dirs:
            return
        if src.adapter_dir is None:
            raise ConfigError("task_adapters need a main adapter (adapter= or an adapter folder): the tasks not "
                              "named run with it")
        main = src.adapter_dir.resolve()
        src.task_adapter_dirs = {t: d for t, d in src.task_adapter_dirs.items() if d.resolve() != main}
        mine = (src.style, src.answer_prefix, src.shots_layout)
        main_vocab: Any = False  # read on first need
        for task, folder in src.task_adapter_dirs.items():
            if not (folder / ADAPTER_CONFIG_NAME).is_file():
                raise ModelLoadError(f"task adapter for {task!r}: {folder} is not a PEFT adapter directory "
                                     f"(no {ADAPTER_CONFIG_NAME})")
            if (folder / CONFIG_NAME).is_file():
                prompt = cls._read_config(folder / CONFIG_NAME).get("prompt", {})
                theirs = (prompt.get("style", src.style), prompt.get("answer_prefix", src.answer_prefix),
                          prompt.get("shots_layout", src.shots_layout))
                if theirs != mine:
                    raise ConfigError(f"task adapter for {task!r} ({folder}) was trained with other prompt settings "
                                      f"(style, answer_prefix, shots_layout = {theirs!r}) than the main adapter "
                                      f"({mine!r}); load it as a model of its own")
            theirs_vocab = _vocab(folder)
            if main_vocab is False:
                main_vocab = _vocab(src.adapter_dir)
            if theirs_vocab is not None and main_vocab is not None and theirs_vocab != main_vocab:
                raise ConfigError(f"task adapter for {task!r} ({folder}) ships another tokenizer than the main "
                                  "adapter; load it as a model of its own")

    @staticmethod
    def _load_adapter(model: Any, adapter_dir: Path, name: str | None = None) -> Any:
        from ._optional import require

        with ld.quiet_optional_probes():
            require("peft", feature="loading a LoRA adapter")
        from peft import PeftModel

        if not (adapter_dir / ADAPTER_CONFIG_NAME).is_file():
            raise ModelLoadError(f"{adapter_dir} is not a PEFT adapter directory (no {ADAPTER_CONFIG_NAME})")
        try:
            with warnings.catch_warnings():
                # peft calls a transformers method that transformers 5 deprecates; not the user's concern
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                if name is not None:  # one more adapter on a PeftModel, under its task's name
                    model.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
                    return model
                return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load adapter {adapter_dir}: {exc}") from exc

    # ------------------------------------------------------------------------------------- saving
    @property
    def adapter_sha256(self) -> str | None:
        """SHA-256 of the main adapter's weight files (in name order), for provenance records; None without an
        adapter folder (no adapter, or one built in memory).  A task with its own adapter:
        :meth:`adapter_sha256_for`."""
        return self.adapter_sha256_for(None)

    def adapter_path_for(self, task: str | None) -> Path | None:
        """The adapter folder ``task`` runs with: its task adapter, else the main adapter's folder."""
        return self.task_adapter_paths.get(task, self.adapter_path)  # type: ignore[arg-type]

    def adapter_sha256_for(self, task: str | None) -> str | None:
        """SHA-256 of the weights ``task`` runs with (see :attr:`adapter_sha256`)."""
        folder = self.adapter_path_for(task)
        cache = self.__dict__.setdefault("_adapter_sha256", {})
        if folder not in cache:
            cache[folder] = folder_sha256(folder)
        return cache[folder]

    @contextmanager
    def task_adapter(self, task: str) -> Iterator[None]:
        """Run the block with ``task``'s adapter active (``task_adapters`` of :meth:`from_pretrained`).

        The task objects do this around each generation; a direct ``engine`` call inside the block runs with
        that adapter.  Without task adapters it does nothing.  Switching holds a lock for the block, so
        concurrent tasks on one model take turns.
        """
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
        if self.tasks is not None and task not in self.tasks:
            raise ConfigError(f"this model was loaded for {', '.join(self.tasks)} only (tasks=); load it again "
                              f"without tasks= (or with {task!r} among them) to run {task}")
        if not self.task_adapter_paths:
            yield
            return
        if self._switch is not None:
            with self._switch.use(task):
                yield
            return
        with self._task_lock:
            engine = self.engine
            if not hasattr(engine, "lora_path"):
                yield
                return
            outer = engine.lora_path  # vLLM: each request names its adapter
            folder = self.adapter_path_for(task)
            engine.lora_path = os.fspath(folder) if folder is not None else None
            try:
                yield
            finally:
                engine.lora_path = outer

    @property
    def has_adapter(self) -> bool:
        """Whether a LoRA (PEFT) adapter is loaded on the base model."""
        if self.model is None:
            return self.adapter_path is not None
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
        if self.model is None or not self.has_adapter:
            return False
        from peft.tuners.tuners_utils import BaseTunerLayer

        return any(m.merged for m in self.model.modules() if isinstance(m, BaseTunerLayer))

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write the adapter (or, without one, the whole model) in safetensors, the tokenizer, and
        ``cancerllm_config.json`` (prompt settings, generation settings, library versions).

        ``CancerLLM.from_pretrained(directory)`` gives a model with identical outputs.

        Raises:
            ConfigError: nothing to save from (a ``backend="vllm"`` model holds no transformers weights, a
                quantized base model, an adapter without a known base).
        """
        if self.model is None:
            raise ConfigError("this model was loaded with backend='vllm' and holds no transformers weights; "
                              "load it with backend='hf' to save it")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        if self.has_adapter:
            if not self.base_model:
                raise ConfigError("cannot save an adapter without knowing its base model (base_model is unset)")
            # an explicit save_embedding_layers: peft's "auto" looks the base model up on the Hub when its
            # name is not a local path (e.g. "cancerllm-smol"), a network call from a private environment
            # every loaded adapter: the main one in `out`, each task adapter in `out/<task>` (PEFT's layout)
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
            "generation": _check_generation(self.generation),
            "versions": _versions(),
        }
        if self._switch is not None:
            cfg["task_adapters"] = {task: task for task in self._switch.folders}
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
                if self.model is None:
                    raise ConfigError("this model holds no transformers weights (loaded with backend='vllm')")
                from .engine.hf import HFEngine

                self._engine = HFEngine(self.model, self.tokenizer)
            elif self.backend == "vllm":
                from .engine.vllm import VLLMEngine

                self._engine = VLLMEngine.from_model(self)
            else:
                from .errors import UnknownBackendError

                raise UnknownBackendError("engine backend", self.backend, list(_BACKENDS))
        return self._engine

    def _max_model_len(self) -> int:
        """The longest sequence the tasks produce: the input limit plus the largest generation budget."""
        budgets = [*_DEFAULT_MAX_NEW_TOKENS.values()]
        budgets += [int(v["max_new_tokens"]) for v in self.generation.values() if "max_new_tokens" in v]
        return self.max_input_tokens + max(budgets)

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
    def _task_kwargs(self, task: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The saved ``generation`` settings of ``task`` as defaults, overridden by the caller's ``kwargs``."""
        return {**self.generation.get(task, {}), **kwargs}

    def phenotype_extractor(self, phenotypes: Any = None, **kwargs: Any) -> PhenotypeExtractor:
        """A :class:`~cancerllm.tasks.phenotype.PhenotypeExtractor` on this model.

        ``generation["phenotype"]`` of the saved config (``max_new_tokens``, ``batch_size``, ``chunking``,
        ``chunk_overlap``) gives the defaults; ``kwargs`` override them.
        """
        from .tasks.phenotype import PhenotypeExtractor

        return PhenotypeExtractor(self, phenotypes=phenotypes, **self._task_kwargs("phenotype", kwargs))

    def diagnosis_generator(self, **kwargs: Any) -> DiagnosisGenerator:
        """A :class:`~cancerllm.tasks.diagnosis.DiagnosisGenerator` on this model.

        ``generation["diagnosis"]`` of the saved config (``max_new_tokens``, ``batch_size``) gives the
        defaults; ``kwargs`` override them.
        """
        from .tasks.diagnosis import DiagnosisGenerator

        return DiagnosisGenerator(self, **self._task_kwargs("diagnosis", kwargs))

    def __repr__(self) -> str:
        tasks = f", task_adapters={sorted(self.task_adapter_paths)}" if self.task_adapter_paths else ""
        return (f"CancerLLM(base_model={self.base_model!r}, adapter={self.has_adapter}{tasks}, "
                f"prompt_style={self.prompt_builder.style!r}, backend={self.backend!r})")
