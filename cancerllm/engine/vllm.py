"""Optional vLLM backend (``backend="vllm"``, ``pip install "cancerllm[vllm]"``) for GPU servers.

Same interface as :class:`~cancerllm.engine.hf.HFEngine`: prompt groups in, generated token ids out.  vLLM's
automatic prefix caching gives the KV reuse across the questions of a report; its continuous batching
replaces our length-sorted batches.  vLLM's usage statistics are switched off before vLLM is imported
(``VLLM_NO_USAGE_STATS=1``, ``DO_NOT_TRACK=1``) unless the caller has set those variables.

``CancerLLM.from_pretrained(..., backend="vllm")`` loads only the tokenizer with transformers and hands the
resolved paths (base model, adapter folder, tokenizer) to vLLM, so the weights are loaded once, by vLLM.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .base import Engine, Generation, GenerationSettings, PromptGroup

if TYPE_CHECKING:  # pragma: no cover
    from ..model import CancerLLM

logger = logging.getLogger(__name__)

__all__ = ["VLLMEngine", "require_vllm"]

# LoRA ranks vLLM accepts for max_lora_rank
_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def _disable_telemetry() -> None:
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def require_vllm() -> Any:
    """Import vLLM (telemetry off first) or raise :class:`~cancerllm.errors.MissingDependencyError`."""
    _disable_telemetry()
    from .._optional import require

    return require("vllm", feature="the vLLM backend (backend='vllm')")


def _lora_rank(adapter: Path) -> int | None:
    try:
        cfg = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    ranks = [int(cfg.get("r") or 0), *(int(v) for v in (cfg.get("rank_pattern") or {}).values())]
    r = max(ranks)
    return next((x for x in _LORA_RANKS if x >= r), r) if r > 0 else None


def _generation_eos_ids(model: str, *, local_files_only: bool | None, hub: dict[str, Any]) -> list[int]:
    """The EOS ids of the model's ``generation_config.json`` (a list or one id); none when it has none."""
    from transformers import GenerationConfig

    from .._loading import is_offline

    kw = {k: v for k, v in hub.items() if k in ("revision", "token", "cache_dir") and v is not None}
    try:
        cfg = GenerationConfig.from_pretrained(model, local_files_only=is_offline(local_files_only)
                                               or Path(model).expanduser().exists(), **kw)
    except (OSError, ValueError):
        return []
    eos = cfg.eos_token_id
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None]


def _stop_ids(*groups: Sequence[int | None]) -> list[int]:
    out: list[int] = []
    for group in groups:
        for e in group:
            if e is not None and int(e) not in out:
                out.append(int(e))
    return out


class VLLMEngine(Engine):
    """Generation on a ``vllm.LLM``.  Build it with :meth:`from_paths` (what ``from_pretrained`` does),
    :meth:`from_model`, or pass an ``LLM`` you made.

    Args:
        llm: the ``vllm.LLM``.
        lora_path: the LoRA adapter folder to apply to every request (None: the base model).
        eos_ids: token ids that end a sequence (the generation config's EOS ids and the tokenizer's).
        max_model_len: the engine's context length, checked before each call.
    """

    name = "vllm"

    def __init__(self, llm: Any, *, lora_path: str | os.PathLike[str] | None = None, eos_ids: Sequence[int] = (),
                 max_model_len: int | None = None) -> None:
        self.llm = llm
        #: the adapter folder requests run with (None: the base); the task objects set it per task
        self.lora_path = os.fspath(lora_path) if lora_path is not None else None
        self._lora_ids: dict[str, int] = {}
        self.eos_ids = _stop_ids(eos_ids)
        self.max_model_len = max_model_len
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def from_paths(
        cls,
        model: str,
        *,
        tokenizer: str | None = None,
        adapter: str | os.PathLike[str] | None = None,
        task_adapters: Sequence[str | os.PathLike[str]] = (),
        max_model_len: int,
        tokenizer_obj: Any = None,
        dtype: Any = None,
        quantization: str | None = None,
        trust_remote_code: bool = False,
        local_files_only: bool | None = None,
        **llm_kwargs: Any,
    ) -> VLLMEngine:
        """A vLLM engine on the weights at ``model`` (a folder or hub id) and the adapter folder ``adapter``,
        used where it lies (no copy).

        Args:
            model: the base model.
            tokenizer: the tokenizer's folder or hub id (default: ``model``).
            adapter: a LoRA adapter folder (``enable_lora`` and ``max_lora_rank`` are set from it).
            task_adapters: further adapter folders requests may name (:attr:`lora_path`, set per task by
                :meth:`CancerLLM.task_adapter <cancerllm.model.CancerLLM.task_adapter>`): ``max_lora_rank``
                covers them and ``max_loras`` holds them all at once.
            max_model_len: context length: the input limit plus the largest generation budget.
            tokenizer_obj: the loaded tokenizer, whose EOS id joins the stop ids.
            dtype: weights dtype (default as ``from_pretrained``: bfloat16 on GPUs that support it, else
                float16; float32 without a GPU).
            quantization: ``"4bit"`` (vLLM's bitsandbytes in-flight quantization) or None.
            trust_remote_code: passed to vLLM.
            local_files_only: read ``generation_config.json`` from local files only.
            **llm_kwargs: passed to ``vllm.LLM`` (``gpu_memory_utilization``, ``tensor_parallel_size`` ...);
                ``revision``, ``token`` and ``cache_dir`` are translated to vLLM's names.

        Raises:
            MissingDependencyError: vLLM is not installed.
            ConfigError: an unsupported quantization.
        """
        require_vllm()
        from vllm import LLM

        from .._loading import dtype_name, resolve_dtype

        hub = {k: llm_kwargs.pop(k) for k in ("revision", "token", "cache_dir") if k in llm_kwargs}
        kwargs: dict[str, Any] = {
            "model": model,
            "tokenizer": tokenizer or model,
            "enable_prefix_caching": True,
            "trust_remote_code": trust_remote_code,
            "disable_log_stats": True,
            "max_model_len": int(max_model_len),
            "dtype": dtype_name(resolve_dtype(dtype)),
        }
        if hub.get("revision") is not None:
            kwargs["revision"] = hub["revision"]
            if tokenizer in (None, model):
                kwargs["tokenizer_revision"] = hub["revision"]
        if hub.get("token") is not None:
            kwargs["hf_token"] = hub["token"]
        if hub.get("cache_dir") is not None:
            kwargs["download_dir"] = os.fspath(hub["cache_dir"])
        if quantization == "4bit":
            kwargs["quantization"] = "bitsandbytes"
        elif quantization is not None:
            raise ConfigError(f"backend='vllm' supports quantization='4bit' (bitsandbytes) or None, got "
                              f"{quantization!r}; use backend='hf' for 8-bit")
        lora = None
        if adapter is not None:
            lora = Path(os.fspath(adapter))
            kwargs["enable_lora"] = True
            folders = [lora, *(Path(os.fspath(a)) for a in task_adapters)]
            ranks = [r for r in map(_lora_rank, folders) if r is not None]
            if ranks:
                kwargs["max_lora_rank"] = max(ranks)
            if len(folders) > 1:
                kwargs["max_loras"] = len(folders)
        kwargs.update(llm_kwargs)
        eos = _stop_ids(_generation_eos_ids(model, local_files_only=local_files_only, hub=hub),
                        [getattr(tokenizer_obj, "eos_token_id", None)])
        return cls(LLM(**kwargs), lora_path=lora, eos_ids=eos, max_model_len=int(kwargs["max_model_len"]))

    @classmethod
    def from_model(cls, model: CancerLLM, **llm_kwargs: Any) -> VLLMEngine:
        """A vLLM engine for the same base model (and adapter) as ``model``, a loaded
        :class:`~cancerllm.model.CancerLLM`.

        The adapter folder the model was loaded from is used as it is; an adapter that exists only in memory
        is saved to a temporary folder, removed by :meth:`close` or when the engine is garbage-collected.
        """
        require_vllm()
        adapter: Path | None = None
        tmp: tempfile.TemporaryDirectory[str] | None = None
        hf = model.model
        if model.adapter_path is not None and model.adapter_path.is_dir():
            adapter = model.adapter_path
        elif hf is not None and model.has_adapter:
            tmp = tempfile.TemporaryDirectory(prefix="cancerllm-vllm-adapter-")
            hf.save_pretrained(tmp.name, safe_serialization=True)
            adapter = Path(tmp.name)
        base = model.base_path
        if base is None and hf is not None:
            inner = hf.get_base_model() if model.has_adapter else hf
            base = getattr(inner, "name_or_path", None)
        base = base or model.base_model
        if not base:
            raise ConfigError("cannot tell where the base model's weights are (base_path and base_model are unset)")
        if hf is not None and model.quantization is None and "dtype" not in llm_kwargs:
            llm_kwargs["dtype"] = next(hf.parameters()).dtype  # the dtype the HF model was loaded in
        tasks = [p for p in model.task_adapter_paths.values() if p.is_dir()] if adapter is not None else []
        eng = cls.from_paths(base, adapter=adapter, task_adapters=tasks, max_model_len=llm_kwargs.pop("max_model_len", None)
                             or model._max_model_len(), tokenizer_obj=model.tokenizer,
                             quantization=model.quantization, **llm_kwargs)
        if hf is not None:  # the loaded model's generation config, as HFEngine reads it
            gen = getattr(getattr(hf, "generation_config", None), "eos_token_id", None)
            eng.eos_ids = _stop_ids(eng.eos_ids, gen if isinstance(gen, (list, tuple)) else [gen])
        if tmp is not None:
            eng._tmp = tmp
            weakref.finalize(eng, tmp.cleanup)
        return eng

    def close(self) -> None:
        """Remove the temporary adapter copy, if one was made."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def generate(
        self, groups: Sequence[PromptGroup], settings: GenerationSettings, *, progress: bool = False
    ) -> list[list[Generation]]:
        """A :class:`~cancerllm.engine.base.Generation` for each suffix of each group (``out[g][s]``); with
        ``settings.logprobs``, vLLM's log-probability of each generated token (``SamplingParams(logprobs=0)``:
        the chosen tokens only)."""
        from vllm import SamplingParams

        try:
            from vllm.inputs import TokensPrompt
        except ImportError:  # pragma: no cover - very old vLLM
            TokensPrompt = dict  # noqa: N806
        seqs = [list(g.prefix_ids) + list(s) for g in groups for s in g.suffix_ids]
        if self.max_model_len is not None and seqs:
            longest = max(len(s) for s in seqs)
            if longest + settings.max_new_tokens > self.max_model_len:
                raise ConfigError(
                    f"a prompt of {longest} tokens plus max_new_tokens={settings.max_new_tokens} exceeds the vLLM "
                    f"engine's max_model_len={self.max_model_len}; pass a larger max_model_len= to "
                    "from_pretrained, or lower max_new_tokens"
                )
        prompts = [TokensPrompt(prompt_token_ids=s) for s in seqs]
        params = SamplingParams(
            temperature=0.0,
            max_tokens=settings.max_new_tokens,
            stop=list(settings.stop_strings) or None,
            include_stop_str_in_output=True,
            stop_token_ids=list(self.eos_ids) or None,
            logprobs=0 if settings.logprobs else None,
        )
        lora = None
        if self.lora_path is not None:
            from vllm.lora.request import LoRARequest

            lora_id = self._lora_ids.setdefault(self.lora_path, len(self._lora_ids) + 1)  # one id per folder
            lora = LoRARequest("cancerllm" if lora_id == 1 else f"cancerllm-{lora_id}", lora_id, self.lora_path)
        outs = self.llm.generate(prompts, params, use_tqdm=progress, lora_request=lora)
        flat = [self._generation(o.outputs[0], settings.logprobs) for o in outs]
        res: list[list[Generation]] = []
        i = 0
        for g in groups:
            res.append(flat[i : i + len(g.suffix_ids)])
            i += len(g.suffix_ids)
        return res

    @staticmethod
    def _generation(out: Any, logprobs: bool) -> Generation:
        ids = [int(t) for t in out.token_ids]
        if not logprobs:
            return Generation(ids)
        steps = getattr(out, "logprobs", None) or []
        lps = [float(step[t].logprob) for t, step in zip(ids, steps)]
        return Generation(ids, lps if len(lps) == len(ids) else None)
