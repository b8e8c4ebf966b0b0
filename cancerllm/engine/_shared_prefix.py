"""Shared-prefix ("cascade") attention: the questions asked of one report read one copy of its KV cache.

Phenotype extraction asks up to eight questions of each report.  Encoding the report once and copying its
KV cache to every question (what a plain batched ``generate`` with cache reuse does) leaves eight copies of
the report's keys and values, and every decoding step of every question reads its own copy: on a CPU that
memory traffic, not arithmetic, bounds decoding.  Here the report's keys and values are kept once per
report (``[groups, kv_heads, prefix, head_dim]``) and each attention call is split in two exact parts:

* the questions of one report, stacked, attend to the report's single copy of the prefix (one matmul per
  report instead of one per question);
* each question attends to its own suffix (question tokens and generated tokens), with causal and
  padding masks;

and the two softmax parts are merged with their log-sum-exp statistics, which is the same softmax over the
concatenated keys (as in FlashAttention's split-KV and FlashInfer's cascade attention).

The attention function is registered with transformers' ``AttentionInterface`` and switched on only while
the engine decodes (:func:`shared_prefix_attention`), then the model's own implementation is restored.  Only
architectures whose attention we have checked use it (:func:`supports_shared_prefix`); other models use the
copying path.  Greedy outputs equal the copying path's and one-by-one ``generate``'s (tested).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator, Sequence
from typing import Any

from ._cache import growable_classes

__all__ = ["ATTENTION_NAME", "SharedPrefixState", "build_shared_cache", "shared_prefix_attention",
           "supports_shared_prefix"]

#: the name under which the attention function is registered with transformers
ATTENTION_NAME = "cancerllm_shared_prefix"
#: model types whose attention modules call the attention interface with rotary-encoded, cache-updated
#: keys and no extra score terms (soft-capping, sinks, alibi), so the split is exact
_SUPPORTED_TYPES = frozenset({"llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe"})

_ACTIVE: contextvars.ContextVar[SharedPrefixState | None] = contextvars.ContextVar(ATTENTION_NAME, default=None)


def supports_shared_prefix(model: Any, max_length: int) -> bool:
    """Whether the engine may use shared-prefix attention on ``model`` for sequences up to ``max_length``."""
    if growable_classes() is None:
        return False
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in _SUPPORTED_TYPES:
        return False
    layer_types = getattr(config, "layer_types", None) or ()
    window = getattr(config, "sliding_window", None)
    uses_window = any(t != "full_attention" for t in layer_types) or (
        window is not None and getattr(config, "use_sliding_window", True)
    )
    if uses_window and (window is None or max_length > int(window)):
        return False
    return _register()


@functools.lru_cache(maxsize=1)
def _register() -> bool:
    try:
        from transformers import AttentionInterface
    except ImportError:  # pragma: no cover - transformers without the attention interface
        return False
    AttentionInterface.register(ATTENTION_NAME, _attention)
    return True


class SharedPrefixState:
    """Which prefix (group) each live row reads, and the validity masks of prefixes and suffixes.

    Rows are laid out, for the prefix matmul, in a ``[groups, slots]`` grid: ``flat[i]`` is row ``i``'s cell.
    """

    def __init__(self, cache: Any, prefix_valid: Any, row_group: Sequence[int], suffix_valid: Any,
                 capacity: int) -> None:
        import torch

        self.cache = cache
        dev = prefix_valid.device
        self.prefix_pad = ~prefix_valid.bool()[:, None, None, :]  # [G, 1, 1, P]
        self.suffix_valid = torch.zeros((suffix_valid.shape[0], capacity), dtype=torch.bool, device=dev)
        self.suffix_valid[:, : suffix_valid.shape[1]] = suffix_valid.bool()
        self.suffix_len = int(suffix_valid.shape[1])
        self._set_rows(list(row_group))
        self._mask_key: tuple[Any, ...] | None = None
        self._mask: Any = None
        self._prefix_bias: Any = None
        self._version = 0

    def _set_rows(self, row_group: list[int]) -> None:
        import torch

        self.row_group = row_group
        slots: list[int] = []
        seen: dict[int, int] = {}
        for g in row_group:
            slots.append(seen.get(g, 0))
            seen[g] = slots[-1] + 1
        self.groups = int(self.prefix_pad.shape[0])
        self.slots = max(seen.values())
        dev = self.prefix_pad.device
        self.flat = torch.tensor([g * self.slots + s for g, s in zip(row_group, slots)], device=dev)

    def append_token(self) -> None:
        """Mark one more (generated) suffix position valid for every row."""
        self.suffix_valid[:, self.suffix_len] = True
        self.suffix_len += 1
        self._version += 1

    def select_rows(self, keep: Any) -> None:
        """Keep only rows ``keep`` (a tensor of row indices); drop prefixes no row reads any more."""
        import torch

        keep_list = keep.tolist()
        self.cache.batch_select_indices(keep)
        self.suffix_valid = self.suffix_valid[keep]
        row_group = [self.row_group[i] for i in keep_list]
        live = sorted(set(row_group))
        if len(live) < self.groups:
            remap = {g: i for i, g in enumerate(live)}
            idx = torch.tensor(live, device=self.prefix_pad.device)
            self.prefix_pad = self.prefix_pad[idx]
            self._prefix_bias = None
            for layer in self.cache.layers:
                layer.select_prefix(idx)
            row_group = [remap[g] for g in row_group]
        self._set_rows(row_group)
        self._version += 1

    def prefix_bias(self, dtype: Any) -> Any:
        """Additive mask of the prefixes' padding, ``[groups, 1, 1, prefix]``."""
        import torch

        if self._prefix_bias is None or self._prefix_bias.dtype != dtype:
            bias = torch.zeros(self.prefix_pad.shape, dtype=dtype, device=self.prefix_pad.device)
            self._prefix_bias = bias.masked_fill_(self.prefix_pad, float("-inf"))
        return self._prefix_bias

    def suffix_bias(self, length: int, queries: int, per_kv: int, dtype: Any) -> Any:
        """Additive mask of the suffixes: query ``i`` (of the last ``queries`` positions) reads suffix key ``j``
        if ``j`` is valid and not after it; ``[rows, 1, per_kv * queries, length]``.  A padding query reads
        itself only, so that no row is fully masked."""
        import torch

        key = (self._version, length, queries, per_kv, dtype)
        if key != self._mask_key:
            dev = self.suffix_valid.device
            q_pos = torch.arange(length - queries, length, device=dev)[:, None]
            k_pos = torch.arange(length, device=dev)[None, :]
            allowed = (k_pos <= q_pos) & (self.suffix_valid[:, None, :length] | (k_pos == q_pos))  # [N, L, S]
            bias = torch.zeros(allowed.shape, dtype=dtype, device=dev).masked_fill_(~allowed, float("-inf"))
            bias = bias[:, None, None].expand(-1, 1, per_kv, -1, -1).reshape(-1, 1, per_kv * queries, length)
            self._mask, self._mask_key = bias, key
        return self._mask


def build_shared_cache(prefix_keys: list[Any], prefix_values: list[Any], reserve: int) -> Any:
    """A cache whose layer ``i`` holds ``prefix_keys[i]`` / ``prefix_values[i]`` (``[G, kv_heads, P, D]``,
    one copy per group) and grows a per-row suffix cache in preallocated buffers."""
    classes = growable_classes()
    if classes is None:  # pragma: no cover - checked by supports_shared_prefix
        raise RuntimeError("this transformers version has no layered cache API")
    growable, cache_cls = classes

    class SharedPrefixLayer(growable):  # type: ignore[misc, valid-type]
        def __init__(self, keys: Any, values: Any) -> None:
            super().__init__(reserve=reserve)
            self.prefix_keys, self.prefix_values = keys, values

        def select_prefix(self, idx: Any) -> None:
            self.prefix_keys = self.prefix_keys[idx]
            self.prefix_values = self.prefix_values[idx]

        def get_seq_length(self) -> int:
            return int(self.prefix_keys.shape[-2]) + super().get_seq_length()

    return cache_cls(layers=[SharedPrefixLayer(k, v) for k, v in zip(prefix_keys, prefix_values)])


@contextlib.contextmanager
def shared_prefix_attention(model: Any, state: SharedPrefixState) -> Iterator[None]:
    """While active, ``model``'s attention reads prefixes from ``state`` (the model's own implementation is
    restored on exit, also on error)."""
    config = model.config
    previous = config._attn_implementation
    token = _ACTIVE.set(state)
    config._attn_implementation = ATTENTION_NAME
    try:
        yield
    finally:
        config._attn_implementation = previous
        _ACTIVE.reset(token)


def _cpu_flash() -> Any:
    """torch's fused CPU attention kernel that also returns the log-sum-exp, or None."""
    import torch

    return getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def _softmax_part(q: Any, k: Any, v: Any, bias: Any, scale: float) -> tuple[Any, Any]:
    """Attention of ``q`` over ``k``/``v`` with an additive ``bias``: (output, log-sum-exp), both float32.
    No query row may be fully masked."""
    import torch

    if q.device.type == "cpu" and q.dtype == k.dtype and (flash := _cpu_flash()) is not None:
        out, lse = flash(q, k, v, 0.0, False, attn_mask=bias, scale=scale)
        return out.float(), lse.float().unsqueeze(-1)
    scores = torch.matmul(q * scale, k.transpose(-1, -2)).float() + bias.float()
    m = scores.amax(-1, keepdim=True)
    e = scores.sub_(m).exp_()
    total = e.sum(-1, keepdim=True)
    return torch.matmul(e.to(v.dtype), v).float() / total, m + total.log()


def _attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
               dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    """Softmax attention of ``query`` over [the group's prefix ; the row's own suffix], split and merged."""
    import torch

    state = _ACTIVE.get()
    if state is None:
        raise RuntimeError(f"attention {ATTENTION_NAME!r} used outside the cancerllm engine")
    layer = state.cache.layers[module.layer_idx]
    rows, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    width = heads // kv_heads * length  # query rows per kv head: the grouped heads, then positions
    scale = dim**-0.5 if scaling is None else scaling
    q = query.reshape(rows, kv_heads, width, dim)

    # prefix part: the rows of one group, stacked, against the group's single copy of the prefix
    groups, slots = state.groups, state.slots
    grid = q.new_zeros((groups * slots, kv_heads, width, dim))
    grid[state.flat] = q
    grid = grid.view(groups, slots, kv_heads, width, dim).transpose(1, 2).reshape(groups, kv_heads, slots * width, dim)
    o_p, lse_p = _softmax_part(grid, layer.prefix_keys, layer.prefix_values, state.prefix_bias(query.dtype), scale)

    def to_rows(t: Any) -> Any:
        t = t.view(groups, kv_heads, slots, width, t.shape[-1]).transpose(1, 2)
        return t.reshape(groups * slots, kv_heads, width, t.shape[-1])[state.flat]

    o_p, lse_p = to_rows(o_p), to_rows(lse_p)
    # suffix part: each row against its own question and generated tokens
    bias = state.suffix_bias(key.shape[-2], length, heads // kv_heads, query.dtype)
    o_s, lse_s = _softmax_part(q, key, value, bias, scale)
    # merge the two softmax parts
    lse = torch.logaddexp(lse_p, lse_s)
    out = o_p * (lse_p - lse).exp_() + o_s * (lse_s - lse).exp_()
    out = out.to(query.dtype).view(rows, heads, length, dim).transpose(1, 2).contiguous()
    return out, None
