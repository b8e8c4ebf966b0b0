"""Shared-prefix ("cascade") attention: the questions asked of one report read one copy of its KV cache.

Phenotype extraction asks up to eight questions of each report.  Encoding the report once and copying its
KV cache to every question (what a plain batched ``generate`` with cache reuse does) leaves eight copies of
the report's keys and values, and every decoding step of every question reads its own copy: on a CPU that
memory traffic, not arithmetic, bounds decoding.  Here shared prefixes are kept once, in *levels*
(:class:`PrefixLevel`, ``[groups, kv_heads, prefix, head_dim]``): the instruction header every prompt of a
batch starts with (one group), then the reports (one group each).  Each attention call is split in exact
parts:

* for each level, the rows that read one copy of it, stacked, attend to it (one matmul per report instead
  of one per question);
* each row attends to its own tokens (question tokens and generated tokens), with causal and padding
  masks;

and the softmax parts are merged with their log-sum-exp statistics, which is the same softmax over the
concatenated keys (as in FlashAttention's split-KV and FlashInfer's cascade attention).

The attention function is registered with transformers' ``AttentionInterface`` once per underlying
implementation (``sdpa`` or ``eager``), under a name that *dispatches*: in a thread (or asyncio task) where the
engine has made shared-prefix state active (:func:`shared_prefix_attention`, a context variable), attention
reads the prefix levels; everywhere else the call, and the attention mask, go to the model's own
implementation unchanged.  The model's config is switched to that name once (:func:`install`), never flipped
per run, so two threads using one model (a notebook, a small service) cannot see each other's state.  Only
architectures whose attention we have checked use it (:func:`supports_shared_prefix`); other models use the
copying path.  Greedy outputs equal the copying path's and one-by-one ``generate``'s (tested).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from ._cache import growable_classes

logger = logging.getLogger(__name__)

__all__ = ["ATTENTION_NAME", "PrefixLevel", "SharedPrefixState", "build_shared_cache", "install",
           "shared_prefix_attention", "supports_shared_prefix"]

#: the prefix of the names under which the attention function is registered with transformers
#: (``"cancerllm_shared_prefix|sdpa"``: shared-prefix attention, else the model's own ``sdpa``)
ATTENTION_NAME = "cancerllm_shared_prefix"
#: the model implementations the dispatcher can stand in for
_WRAPPABLE = ("sdpa", "eager")
_INSTALL_LOCK = threading.Lock()
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
    from .hf import attention_window

    layer_types = getattr(config, "layer_types", None) or ()
    window = attention_window(config)
    if (window is None and any(t != "full_attention" for t in layer_types)) or (
            window is not None and max_length > window):
        return False
    if len(set(map(str, (getattr(model, "hf_device_map", None) or {}).values()))) > 1:
        return False  # layers spread over devices: the prefix levels live on one
    return _own_implementation(config) in _WRAPPABLE and _register(_own_implementation(config))


def _own_implementation(config: Any) -> str:
    impl = str(getattr(config, "_attn_implementation", None) or "eager")
    return impl.split("|", 1)[1] if impl.startswith(ATTENTION_NAME + "|") else impl


@functools.cache
def _register(impl: str) -> bool:
    """Register the dispatching attention (and mask) functions standing in for ``impl``."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    except ImportError:  # pragma: no cover - transformers without the attention interface
        return False
    own_mask = ALL_MASK_ATTENTION_FUNCTIONS[impl]

    def attention(module: Any, *args: Any, **kwargs: Any) -> Any:
        if _ACTIVE.get() is not None:
            return _attention(module, *args, **kwargs)
        return _own_attention(module, impl)(module, *args, **kwargs)

    def mask(*args: Any, **kwargs: Any) -> Any:
        # the shared path builds its own masks from the prefix levels; elsewhere, the model's own
        return None if _ACTIVE.get() is not None else own_mask(*args, **kwargs)

    name = f"{ATTENTION_NAME}|{impl}"
    AttentionInterface.register(name, attention)
    AttentionMaskInterface.register(name, mask)
    return True


def _own_attention(module: Any, impl: str) -> Any:
    """The attention function ``module`` would call under ``impl`` (eager: its modeling file's own)."""
    if impl == "eager":
        return sys.modules[type(module).__module__].eager_attention_forward
    from transformers import AttentionInterface

    return AttentionInterface()[impl]


def install(model: Any) -> bool:
    """Switch ``model`` (once) to the dispatching attention for its own implementation; False where it cannot
    (an implementation other than sdpa/eager).  Outside the engine the model computes exactly as before."""
    config = model.config
    with _INSTALL_LOCK:
        impl = _own_implementation(config)
        if impl not in _WRAPPABLE or not _register(impl):
            return False
        name = f"{ATTENTION_NAME}|{impl}"
        if config._attn_implementation != name:
            config._attn_implementation = name
    return True


class PrefixLevel:
    """One level of shared prefixes (e.g. the instruction header shared by every report, or the reports):
    the padding of its ``groups`` prefixes and which group each live row reads.

    Rows are laid out, for the level's matmul, in a ``[groups, slots]`` grid: ``flat[i]`` is row ``i``'s cell.
    """

    def __init__(self, valid: Any, row_group: Sequence[int]) -> None:
        self.pad = ~valid.bool()[:, None, None, :]  # [G, 1, 1, P]
        self._bias: Any = None
        self._plan_groups()
        self.set_rows(list(row_group))

    def _plan_groups(self) -> None:
        """Split the groups into runs whose prefixes are trimmed to the run's longest (prefixes are left
        padded, so a run reads the last ``width`` positions): the padding a run still computes is what the
        split could not remove (:func:`_runs`)."""
        lengths = (~self.pad).reshape(self.pad.shape[0], -1).sum(-1).tolist()
        self.runs = _runs(lengths, int(self.pad.shape[-1]))

    def set_rows(self, row_group: list[int]) -> None:
        """Assign rows to groups (``row_group[i]`` is row ``i``'s group)."""
        import torch

        self.row_group = row_group
        slots: list[int] = []
        seen: dict[int, int] = {}
        for g in row_group:
            slots.append(seen.get(g, 0))
            seen[g] = slots[-1] + 1
        self.groups = int(self.pad.shape[0])
        self.slots = max(seen.values())
        flat = [g * self.slots + s for g, s in zip(row_group, slots)]
        #: rows already fill the grid in order (every group has ``slots`` rows): no scatter/gather needed
        self.regular = flat == list(range(self.groups * self.slots))
        self.flat = torch.tensor(flat, device=self.pad.device)

    def bias(self, dtype: Any) -> Any:
        """Additive mask of the prefixes' padding, ``[groups, 1, 1, prefix]``."""
        import torch

        if self._bias is None or self._bias.dtype != dtype:
            self._bias = torch.zeros(self.pad.shape, dtype=dtype, device=self.pad.device)
            self._bias.masked_fill_(self.pad, float("-inf"))
        return self._bias

    def keep(self, keep: list[int]) -> Any | None:
        """Keep rows ``keep``.  Returns the indices of the groups to keep once half of them have no row left
        (the caller then drops the others' keys and values), else None (dead groups stay, unread)."""
        import torch

        row_group = [self.row_group[i] for i in keep]
        live = sorted(set(row_group))
        idx = None
        # copying the live prefixes costs as much as reading them a few times: do it once half are dead
        if 2 * len(live) <= self.groups:
            remap = {g: i for i, g in enumerate(live)}
            idx = torch.tensor(live, device=self.pad.device)
            self.pad, self._bias = self.pad.index_select(0, idx), None
            self._plan_groups()
            row_group = [remap[g] for g in row_group]
        self.set_rows(row_group)
        return idx


class SharedPrefixState:
    """The prefix levels every row reads (outermost first) and the validity of each row's own tokens."""

    def __init__(self, cache: Any, levels: Sequence[PrefixLevel], suffix_valid: Any, capacity: int) -> None:
        import torch

        self.cache = cache
        self.levels = list(levels)
        self.suffix_valid = torch.zeros((suffix_valid.shape[0], capacity), dtype=torch.bool,
                                        device=suffix_valid.device)
        self.suffix_valid[:, : suffix_valid.shape[1]] = suffix_valid.bool()
        self.suffix_len = int(suffix_valid.shape[1])
        self._mask_key: tuple[Any, ...] | None = None
        self._mask: Any = None
        self._unpadded_key: tuple[int, int] | None = None
        self._unpadded = False
        self._version = 0
        #: compute the softmax parts with the torch.compile'd kernels (``HFEngine.compile_attention``)
        self.compiled = False

    def append_token(self) -> None:
        """Mark one more (generated) suffix position valid for every row."""
        self.suffix_valid[:, self.suffix_len] = True
        self.suffix_len += 1
        self._version += 1

    def select_rows(self, keep: Any) -> None:
        """Keep only rows ``keep`` (a tensor of row indices); drop prefixes no row reads any more."""
        keep_list = keep.tolist()
        self.cache.batch_select_indices(keep)
        self.suffix_valid = self.suffix_valid.index_select(0, keep)
        for li, level in enumerate(self.levels):
            idx = level.keep(keep_list)
            if idx is not None:
                for layer in self.cache.layers:
                    layer.select_prefix(li, idx)
        self._version += 1

    def unpadded(self, length: int) -> bool:
        """Whether every row's first ``length`` own positions are valid (no padding to mask)."""
        if self._unpadded_key != (self._version, length):
            self._unpadded = bool(self.suffix_valid[:, :length].all())
            self._unpadded_key = (self._version, length)
        return self._unpadded

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


def build_shared_cache(levels: Sequence[tuple[Sequence[Any], Sequence[Any]]], reserve: int) -> Any:
    """A cache whose layer ``i`` holds, for each prefix level, ``keys[i]`` / ``values[i]``
    (``[groups, kv_heads, prefix, head_dim]``, one copy per group), and grows each row's own (suffix) cache
    in preallocated buffers."""
    classes = growable_classes()
    if classes is None:  # pragma: no cover - checked by supports_shared_prefix
        raise RuntimeError("this transformers version has no layered cache API")
    layer_cls = _shared_layer_class(classes[0])
    n_layers = len(levels[0][0]) if levels else 0
    return classes[1](layers=[layer_cls([lv[0][i] for lv in levels], [lv[1][i] for lv in levels], reserve)
                              for i in range(n_layers)])


@functools.lru_cache(maxsize=1)
def _shared_layer_class(growable: type) -> type:
    class SharedPrefixLayer(growable):  # type: ignore[misc, valid-type]
        """A growable layer that also holds one copy of each prefix level's keys and values."""

        def __init__(self, keys: list[Any], values: list[Any], reserve: int) -> None:
            super().__init__(reserve=reserve)
            self.prefix_keys, self.prefix_values = keys, values

        def select_prefix(self, level: int, idx: Any) -> None:
            self.prefix_keys[level] = self.prefix_keys[level].index_select(0, idx)
            self.prefix_values[level] = self.prefix_values[level].index_select(0, idx)

        def get_seq_length(self) -> int:
            return sum(int(k.shape[-2]) for k in self.prefix_keys) + super().get_seq_length()

    return SharedPrefixLayer


@contextlib.contextmanager
def shared_prefix_attention(model: Any, state: SharedPrefixState) -> Iterator[None]:
    """While active, ``model``'s attention in the current thread (or task) reads prefixes from ``state``;
    other threads using the same model are not affected."""
    if not install(model):  # pragma: no cover - checked by supports_shared_prefix
        raise RuntimeError(f"{type(model).__name__} cannot use shared-prefix attention")
    token = _ACTIVE.set(state)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def _cpu_flash() -> Any:
    """torch's fused CPU attention kernel that also returns the log-sum-exp, or None."""
    import torch

    return getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


#: most runs one prefix level's groups are split into (one attention call each)
MAX_RUNS = 4
#: a split into runs is kept only if it removes at least this share of the padded key positions
MIN_RUN_SAVING = 0.1


def _runs(lengths: Sequence[int], width: int) -> list[tuple[int, int, int]]:
    """Contiguous runs ``(start, end, run width)`` of groups with valid prefix ``lengths`` (padded to
    ``width``) that minimise the key positions computed, ``sum((end - start) * run width)``, in at most
    :data:`MAX_RUNS` runs; a single run of the whole width unless that saves :data:`MIN_RUN_SAVING`.
    The engine orders a batch's groups by prefix length, so contiguous runs lose little."""
    g = len(lengths)
    whole = [(0, g, width)]
    if g < 2:
        return [(0, g, max(lengths, default=width))] if g else whole
    if g > 64:  # many groups: equal-count runs (the exact split below is quadratic in the groups)
        bounds = [round(i * g / MAX_RUNS) for i in range(MAX_RUNS + 1)]
        runs = [(a, b, max(lengths[a:b])) for a, b in zip(bounds, bounds[1:]) if b > a]
        return runs if sum((b - a) * w for a, b, w in runs) <= (1 - MIN_RUN_SAVING) * g * width else whole
    # best[r][j]: least cost of the first j groups in r runs; a run i..j costs (j - i) * max(lengths[i:j])
    inf = float("inf")
    best = [[inf] * (g + 1) for _ in range(MAX_RUNS + 1)]
    cut = [[0] * (g + 1) for _ in range(MAX_RUNS + 1)]
    best[0][0] = 0
    for r in range(1, MAX_RUNS + 1):
        for j in range(1, g + 1):
            top = 0
            for i in range(j - 1, -1, -1):
                top = max(top, lengths[i])
                c = best[r - 1][i] + (j - i) * top
                if c < best[r][j]:
                    best[r][j], cut[r][j] = c, i
    r = min(range(1, MAX_RUNS + 1), key=lambda n: (best[n][g], n))
    if best[r][g] > (1 - MIN_RUN_SAVING) * g * width:
        return whole
    out, j = [], g
    while r:
        i = cut[r][j]
        out.append((i, j, max(lengths[i:j])))
        j, r = i, r - 1
    return out[::-1]


def _compiled_masked(q: Any, k: Any, v: Any, bias: Any, scale: float) -> tuple[Any, Any]:
    import torch

    s = torch.matmul(q, k.transpose(-1, -2)).float() * scale + bias.float()
    lse = torch.logsumexp(s, -1, keepdim=True)
    return torch.matmul(torch.exp(s - lse).to(v.dtype), v).float(), lse


def _compiled_causal(q: Any, k: Any, v: Any, scale: float) -> tuple[Any, Any]:
    import torch

    rows, heads, length, dim = q.shape
    kv_heads = k.shape[1]
    per_kv = heads // kv_heads
    # the grouped heads of a kv head as one matmul (no key/value copies), then the causal mask per position
    s = torch.matmul(q.reshape(rows, kv_heads, per_kv * length, dim), k.transpose(-1, -2)).float() * scale
    s = s.view(rows, kv_heads, per_kv, length, length)
    i = torch.arange(length, device=q.device)
    s = s.masked_fill(i[None, :] > i[:, None], float("-inf"))
    lse = torch.logsumexp(s, -1, keepdim=True)
    p = torch.exp(s - lse).view(rows, kv_heads, per_kv * length, length)
    out = torch.matmul(p.to(v.dtype), v).view(rows, kv_heads, per_kv, length, dim).reshape(rows, heads, length, dim)
    return out.float(), lse.reshape(rows, heads, length, 1)


_COMPILE_FAILED: list[str] = []


@functools.cache
def _compiled_kernels() -> tuple[Any, Any]:
    import torch

    return (torch.compile(_compiled_masked, dynamic=True), torch.compile(_compiled_causal, dynamic=True))


def _compiled_part(q: Any, k: Any, v: Any, bias: Any, scale: float) -> tuple[Any, Any] | None:
    """The softmax part through inductor-compiled matmul + log-sum-exp softmax kernels, or None (then the caller
    uses the fused kernel) where compiling failed once in this process (no C++ compiler, say)."""
    if _COMPILE_FAILED:
        return None
    masked, causal = _compiled_kernels()
    try:
        return causal(q, k, v, scale) if bias is None else masked(q, k, v, bias, scale)
    except Exception as exc:  # noqa: BLE001 - inductor raises many kinds; fall back for the whole process
        _COMPILE_FAILED.append(f"{type(exc).__name__}: {exc}")
        logger.warning("compile_attention: torch.compile failed (%s); using the fused attention kernel",
                       _COMPILE_FAILED[0].splitlines()[0][:200])
        return None


def _softmax_part(q: Any, k: Any, v: Any, bias: Any, scale: float) -> tuple[Any, Any]:
    """Attention of ``q`` over ``k``/``v`` with an additive ``bias`` (None: ``q`` is ``[rows, heads, L, dim]``
    over ``L`` keys of ``[rows, kv_heads, L, dim]``, causal and unpadded): (output, log-sum-exp), both
    float32.  No query row may be fully masked."""
    import torch

    state = _ACTIVE.get()
    if (state is not None and state.compiled and q.device.type == "cpu"
            and q.dtype in (torch.bfloat16, torch.float16) and q.dtype == k.dtype):
        done = _compiled_part(q, k, v, bias, scale)
        if done is not None:
            return done
    if q.device.type == "cpu" and q.dtype == k.dtype and (flash := _cpu_flash()) is not None:
        if bias is None:  # the fused kernel skips the blocks above the diagonal
            per_kv = q.shape[1] // k.shape[1]
            if per_kv > 1:
                k, v = k.repeat_interleave(per_kv, 1), v.repeat_interleave(per_kv, 1)
            out, lse = flash(q, k, v, 0.0, True, scale=scale)
        else:
            out, lse = flash(q, k, v, 0.0, False, attn_mask=bias, scale=scale)
        return out.float(), lse.float().unsqueeze(-1)
    if bias is None:
        length = q.shape[-2]
        per_kv = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(per_kv, 1), v.repeat_interleave(per_kv, 1)
        bias = torch.full((length, length), float("-inf"), device=q.device).triu_(1)
    scores = torch.matmul(q * scale, k.transpose(-1, -2)).float() + bias.float()
    m = scores.amax(-1, keepdim=True)
    e = scores.sub_(m).exp_()
    total = e.sum(-1, keepdim=True)
    return torch.matmul(e.to(v.dtype), v).float() / total, m + total.log()


def _level_part(q: Any, level: PrefixLevel, keys: Any, values: Any, scale: float) -> tuple[Any, Any]:
    """The rows of each group, stacked, against the group's single copy of the level's prefix; returns
    (output, log-sum-exp) per row: ``[rows, kv_heads, width, dim]``, ``[rows, kv_heads, width, 1]``."""
    import torch

    rows, kv_heads, width, dim = q.shape
    groups, slots = level.groups, level.slots
    if level.regular:
        grid = q
    else:
        grid = q.new_zeros((groups * slots, kv_heads, width, dim))
        grid.index_copy_(0, level.flat, q)
    grid = grid.reshape(groups, slots, kv_heads, width, dim).transpose(1, 2).reshape(groups, kv_heads, -1, dim)
    bias, parts = level.bias(q.dtype), []
    for s, e, w in level.runs:  # runs of groups, each against its prefixes' last w positions (the rest is padding)
        p = keys.shape[-2] - w
        parts.append(_softmax_part(grid[s:e], keys[s:e, :, p:], values[s:e, :, p:], bias[s:e, ..., p:], scale))
    out, lse = parts[0] if len(parts) == 1 else (torch.cat([o for o, _ in parts]), torch.cat([m for _, m in parts]))

    def to_rows(t: Any) -> Any:
        t = t.view(groups, kv_heads, slots, width, t.shape[-1]).transpose(1, 2)
        t = t.reshape(groups * slots, kv_heads, width, t.shape[-1])
        return t if level.regular else t.index_select(0, level.flat)

    return to_rows(out), to_rows(lse)


def _attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
               dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    """Softmax attention of ``query`` over [each prefix level's group ; the row's own tokens], split and
    merged."""
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
    parts = [_level_part(q, level, k, v, scale) for level, k, v in
             zip(state.levels, layer.prefix_keys, layer.prefix_values)]
    # own part: each row against its own tokens (question, generated tokens)
    per_kv = heads // kv_heads
    if key.shape[-2] == length and state.unpadded(length):  # a chunk encoded whole: plain causal attention
        o, m = _softmax_part(query, key, value, None, scale)
        parts.append((o.reshape(rows, kv_heads, width, dim), m.reshape(rows, kv_heads, width, 1)))
    else:
        bias = state.suffix_bias(key.shape[-2], length, per_kv, query.dtype)
        parts.append(_softmax_part(q, key, value, bias, scale))
    # merge the softmax parts by their log-sum-exp
    lse = parts[0][1]
    for _, lse_i in parts[1:]:
        lse = torch.logaddexp(lse, lse_i)
    out = sum(o_i * (lse_i - lse).exp_() for o_i, lse_i in parts)
    out = out.to(query.dtype).reshape(rows, heads, length, dim).transpose(1, 2).contiguous()
    return out, None
