"""A KV cache whose layers grow into preallocated buffers.

transformers' ``DynamicLayer`` concatenates the whole cache with each new token (``torch.cat``), so a decode
step copies every cached key and value: with long reports and large batches that copy dominated the
step time (60% in our profile).  ``GrowableLayer`` writes new keys/values into spare capacity and hands the
attention a view, doubling the buffer when it is full.  Outputs are bit-identical to ``DynamicLayer``.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["growable_classes", "make_cache"]


def make_cache(reserve: int = 64) -> Any | None:
    """A cache of :class:`GrowableLayer` s, or None when this transformers version has no layered cache API
    (the model then creates its own default cache)."""
    classes = growable_classes()
    if classes is None:  # pragma: no cover - transformers < 4.56
        return None
    layer_cls, cache_cls = classes
    try:
        return cache_cls(functools.partial(layer_cls, reserve=reserve))
    except TypeError:  # pragma: no cover - a cache API we do not know
        return None


@functools.lru_cache(maxsize=1)
def growable_classes() -> tuple[type, type] | None:
    """``(GrowableLayer, GrowableCache)``, built once (transformers is imported lazily), or None when this
    transformers version has no layered cache API."""
    try:
        from transformers.cache_utils import Cache, DynamicCache, DynamicLayer
    except ImportError:  # pragma: no cover - transformers < 4.56
        return None

    import torch

    class GrowableLayer(DynamicLayer):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, reserve: int = 64, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.reserve = reserve

        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            super().lazy_initialization(key_states, value_states)
            self._len = 0
            self._k = self._v = None

        def _view(self) -> None:
            self.keys = self._k[:, :, : self._len]
            self.values = self._v[:, :, : self._len]

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            m = key_states.shape[-2]
            need = self._len + m
            if self._k is None or need > self._k.shape[-2]:
                cap = max(need + self.reserve, 2 * (self._k.shape[-2] if self._k is not None else 0))
                shape_k = (*key_states.shape[:2], cap, key_states.shape[-1])
                shape_v = (*value_states.shape[:2], cap, value_states.shape[-1])
                k = torch.empty(shape_k, dtype=key_states.dtype, device=key_states.device)
                v = torch.empty(shape_v, dtype=value_states.dtype, device=value_states.device)
                if self._k is not None and self._len:
                    k[:, :, : self._len] = self._k[:, :, : self._len]
                    v[:, :, : self._len] = self._v[:, :, : self._len]
                self._k, self._v = k, v
            self._k[:, :, self._len : need] = key_states
            self._v[:, :, self._len : need] = value_states
            self._len = need
            self._view()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return getattr(self, "_len", 0) if self.is_initialized else 0

        def batch_select_indices(self, indices: Any) -> None:
            if getattr(self, "_k", None) is None:
                return
            indices = indices.to(self._k.device)
            m = int(indices.numel())
            if m > self._k.shape[0]:  # growing the batch (one copy per suffix): new buffers
                self._k = self._k.index_select(0, indices)
                self._v = self._v.index_select(0, indices)
            else:
                # shrinking: gather the filled part, then move it into the first rows of the same buffers (a
                # fresh buffer would be written in full and page-faulted in, several times slower on CPU)
                keys = self._k[:, :, : self._len].index_select(0, indices)
                values = self._v[:, :, : self._len].index_select(0, indices)
                self._k, self._v = self._k[:m], self._v[:m]
                self._k[:, :, : self._len] = keys
                self._v[:, :, : self._len] = values
            self._view()

        def adopt(self, keys: Any, values: Any, length: int) -> None:
            """Use ``keys``/``values`` (``[batch, heads, capacity, dim]``, the first ``length`` positions
            filled) as this layer's buffers, without copying."""
            super().lazy_initialization(keys[:, :, :0], values[:, :, :0])
            self._k, self._v, self._len = keys, values, length
            self._view()

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.get_seq_length() > 0:
                self._k = self._k.repeat_interleave(repeats, dim=0)
                self._v = self._v.repeat_interleave(repeats, dim=0)
                self._view()

        def crop(self, tokens_to_remove: int) -> None:
            if tokens_to_remove < 0 and self.get_seq_length() > 0:
                self._len = max(0, self._len + tokens_to_remove)
                self._view()
            elif tokens_to_remove > 0:
                raise ValueError("crop takes a negative number of tokens to remove")

        def reset(self) -> None:
            self._k = self._v = None
            self._len = 0
            super().reset()

    class GrowableCache(DynamicCache):  # type: ignore[misc, valid-type]
        def __init__(self, layer_factory: Any = GrowableLayer, layers: list[Any] | None = None) -> None:
            if layers is not None:
                Cache.__init__(self, layers=layers)
            else:
                Cache.__init__(self, layer_class_to_replicate=layer_factory)

    return GrowableLayer, GrowableCache
