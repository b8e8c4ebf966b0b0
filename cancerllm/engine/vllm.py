"""Optional vLLM backend (``backend="vllm"``, ``pip install "cancerllm[vllm]"``) for GPU servers.

Same interface as :class:`~cancerllm.engine.hf.HFEngine`: prompt groups in, generated token ids out.  vLLM's
automatic prefix caching gives the KV reuse across the questions of a report; its continuous batching
replaces our length-sorted batches.  vLLM's usage statistics are switched off before vLLM is imported
(``VLLM_NO_USAGE_STATS=1``, ``DO_NOT_TRACK=1``) unless the caller has set those variables.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .base import Engine, GenerationSettings, PromptGroup

if TYPE_CHECKING:  # pragma: no cover
    from ..model import CancerLLM

__all__ = ["VLLMEngine"]


def _disable_telemetry() -> None:
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")


class VLLMEngine(Engine):
    """Generation on a ``vllm.LLM``.  Build it with :meth:`from_model` or pass an ``LLM`` you made."""

    name = "vllm"

    def __init__(self, llm: Any, *, lora_path: str | None = None, eos_ids: Sequence[int] = ()) -> None:
        self.llm = llm
        self.lora_path = lora_path
        self.eos_ids = list(eos_ids)

    @classmethod
    def from_model(cls, model: CancerLLM, **llm_kwargs: Any) -> VLLMEngine:
        """A vLLM engine for the same base model (and adapter) as ``model``."""
        _disable_telemetry()
        from .._optional import require

        require("vllm", feature="the vLLM backend")
        from vllm import LLM

        base = model.model
        adapter = None
        if model.has_adapter:
            import tempfile

            adapter = tempfile.mkdtemp(prefix="cancerllm-vllm-adapter-")
            base.save_pretrained(adapter)
            base = base.get_base_model()
        path = getattr(base, "name_or_path", None) or model.base_model
        kwargs: dict[str, Any] = {
            "model": path,
            "tokenizer": path,
            "enable_prefix_caching": True,
            "trust_remote_code": False,
            "disable_log_stats": True,
            "max_model_len": model.max_input_tokens + 512,
        }
        if adapter is not None:
            kwargs["enable_lora"] = True
        kwargs.update(llm_kwargs)
        return cls(LLM(**kwargs), lora_path=adapter, eos_ids=[model.tokenizer.eos_token_id])

    def generate_groups(
        self, groups: Sequence[PromptGroup], settings: GenerationSettings, *, progress: bool = False
    ) -> list[list[list[int]]]:
        from vllm import SamplingParams

        try:
            from vllm.inputs import TokensPrompt
        except ImportError:  # pragma: no cover - very old vLLM
            TokensPrompt = dict  # noqa: N806
        prompts = [TokensPrompt(prompt_token_ids=list(g.prefix_ids) + list(s)) for g in groups for s in g.suffix_ids]
        params = SamplingParams(
            temperature=0.0,
            max_tokens=settings.max_new_tokens,
            stop=list(settings.stop_strings) or None,
            include_stop_str_in_output=True,
            stop_token_ids=[e for e in self.eos_ids if e is not None] or None,
        )
        lora = None
        if self.lora_path is not None:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("cancerllm", 1, self.lora_path)
        outs = self.llm.generate(prompts, params, use_tqdm=progress, lora_request=lora)
        flat = [list(o.outputs[0].token_ids) for o in outs]
        res: list[list[list[int]]] = []
        i = 0
        for g in groups:
            res.append(flat[i : i + len(g.suffix_ids)])
            i += len(g.suffix_ids)
        return res
