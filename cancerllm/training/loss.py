"""Causal-LM loss with the LM head applied only where there is something to predict.

In instruction tuning the prompt (template, report text, retrieved examples) is long and the answer short,
yet the usual forward pass projects *every* position onto the vocabulary and then ignores most of them.
For small models the vocabulary projection and its softmax are a large share of the cost (SmolLM2-135M:
49,152 x 576 multiply-adds per token, a quarter of its 30 layers' linear layers together, plus a
``[batch, length, vocab]`` float tensor and its gradient).  :class:`CausalLMLoss` runs the model's body to
get hidden states and applies ``lm_head`` only at the positions whose next token has a label; the loss is
the same (tested against the full-logits path), the time and memory are not (``benchmarks/bench_lm_head.py``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .data import IGNORE_INDEX

__all__ = ["CausalLMLoss", "batch_args", "full_logits_loss", "response_only_loss"]


def batch_args(batch: dict[str, torch.Tensor]) -> tuple[Any, ...]:
    """``(input_ids, attention_mask, labels, position_ids)`` of a collated batch: the shared-prefix
    ``segment_mask`` replaces the padding mask when present."""
    mask = batch.get("segment_mask", batch.get("attention_mask"))
    return batch["input_ids"], mask, batch["labels"], batch.get("position_ids")


def _base(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _postprocess_logits(base: Any, logits: torch.Tensor) -> torch.Tensor:
    cfg = getattr(base, "config", None)
    cap = getattr(cfg, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    scale = getattr(base, "logit_scale", None)
    if isinstance(scale, (int, float)) and scale != 1:
        logits = logits * scale
    return logits


def _mask(model: Any, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """A 4D boolean mask (shared-prefix sequences) becomes the additive float mask the attention adds."""
    if attention_mask is None or attention_mask.ndim != 4 or attention_mask.dtype != torch.bool:
        return attention_mask
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        dtype = torch.float32
    return torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device).masked_fill(
        ~attention_mask, torch.finfo(dtype).min)


def response_only_loss(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                       labels: torch.Tensor, position_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over labelled positions, with the LM head applied only there.

    ``attention_mask`` may be 2D (padding) or a 4D boolean mask with ``position_ids`` (shared-prefix
    sequences, see :class:`cancerllm.training.SFTCollator`).

    Returns:
        ``(loss_sum, n_labelled)``; divide by the number of labelled tokens for the mean.
    """
    base = _base(model)
    body = base.get_decoder()
    head = base.get_output_embeddings()
    extra = {"position_ids": position_ids} if position_ids is not None else {}
    out = body(input_ids=input_ids, attention_mask=_mask(base, attention_mask), use_cache=False, **extra)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    h = hidden[:, :-1][keep]
    logits = _postprocess_logits(base, head(h)).float()
    loss = F.cross_entropy(logits, targets[keep], reduction="sum")
    return loss, int(keep.sum())


def full_logits_loss(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                     labels: torch.Tensor, position_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """The usual way: logits at every position, cross-entropy where labelled.  Same return as above."""
    extra = {"position_ids": position_ids} if position_ids is not None else {}
    logits = model(input_ids=input_ids, attention_mask=_mask(_base(model), attention_mask), use_cache=False,
                   **extra).logits
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum")
    return loss, int(keep.sum())


class CausalLMLoss(torch.nn.Module):
    """Wraps a (PEFT) causal LM so that ``forward(batch)`` returns the summed loss and the token count.

    Training wraps *this* module with DDP/FSDP/DeepSpeed (through Accelerate), so the body-plus-head call
    below still goes through the engine's forward and its gradient synchronisation.

    Args:
        model: the causal LM (PEFT-wrapped or not).
        response_only: apply the LM head only at labelled positions (see the module docstring).
    """

    def __init__(self, model: Any, *, response_only: bool = True) -> None:
        super().__init__()
        self.model = model
        self.response_only = response_only and self.supports_response_only(model)
        # FSDP's transformer-based auto-wrap looks for this on the module it wraps
        self._no_split_modules = getattr(_base(model), "_no_split_modules", None)

    @staticmethod
    def supports_response_only(model: Any) -> bool:
        base = _base(model)
        try:
            return base.get_decoder() is not None and base.get_output_embeddings() is not None
        except (AttributeError, NotImplementedError):
            return False

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                labels: torch.Tensor, position_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        fn = response_only_loss if self.response_only else full_logits_loss
        loss, n = fn(self.model, input_ids, attention_mask, labels, position_ids)
        return loss, torch.tensor(n, device=loss.device)

    @torch.no_grad()
    def verify(self, batch: dict[str, torch.Tensor], *, rtol: float = 1e-3) -> bool:
        """Check on one batch that the response-only loss equals the full-logits loss; switch to the full
        path (and return False) if not, e.g. for an architecture that post-processes its logits unusually."""
        if not self.response_only:
            return True
        # Same dropout masks for both paths: run each from the same RNG state, then restore the caller's
        # state (so verifying changes nothing downstream).  The model stays in training mode: switching a
        # bitsandbytes 4-bit layer to eval on CPU repacks its weights into an inference-only format.
        args = batch_args(batch)
        devices = [batch["input_ids"].device] if batch["input_ids"].device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            seed = int(torch.randint(0, 2**31 - 1, (1,)))
            torch.manual_seed(seed)
            a, _ = response_only_loss(self.model, *args)
            torch.manual_seed(seed)
            b, _ = full_logits_loss(self.model, *args)
        ok = math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=1e-4)
        if not ok:
            self.response_only = False
        return ok
