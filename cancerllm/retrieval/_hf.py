"""Shared plumbing of the transformers-based retrievers: lazy loading, devices, forward passes, cache keys."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from .base import Retriever

__all__ = ["HFRetriever", "is_local", "load_encoder"]

_WEIGHTS = ("*.safetensors", "*.bin", "*.pt")


def is_local(name_or_path: str | os.PathLike[str]) -> bool:
    """True when ``name_or_path`` is an existing local folder (then nothing is fetched from the hub)."""
    return Path(name_or_path).expanduser().is_dir()


def _local_flag(name_or_path: str, local_files_only: bool | None) -> bool:
    return True if is_local(name_or_path) else bool(local_files_only)


def load_tokenizer(name_or_path: str, *, local_files_only: bool | None = None) -> Any:
    """``AutoTokenizer`` for a hub id or local folder (``local_files_only=True`` for a local folder)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            str(name_or_path), local_files_only=_local_flag(name_or_path, local_files_only)
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer of {name_or_path!r}: {exc}") from exc


def load_encoder(
    name_or_path: str, *, local_files_only: bool | None = None, device: str = "cpu", model_class: Any = None
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of an encoder (``AutoModel`` unless ``model_class``), in eval mode on ``device``.

    Raises:
        ModelLoadError: the model or tokenizer cannot be loaded (message names the model and the cause).
    """
    from transformers import AutoModel

    klass = model_class or AutoModel
    tokenizer = load_tokenizer(name_or_path, local_files_only=local_files_only)
    try:
        model = klass.from_pretrained(
            str(name_or_path), local_files_only=_local_flag(name_or_path, local_files_only)
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the encoder {name_or_path!r}: {exc}") from exc
    return model.to(device).eval(), tokenizer


class HFRetriever(Retriever):
    """A retriever on transformers encoders, loaded on first use.

    Args:
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available, else CPU).
        local_files_only: for hub ids, never download (local folders always use local files only).
        **kwargs: :class:`~cancerllm.retrieval.Retriever` arguments (``batch_size``, ``progress``,
            ``cache_dir``, ``index_backend``).
    """

    def __init__(
        self, *, device: str | None = None, local_files_only: bool | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.device = device
        self.local_files_only = local_files_only
        self._loaded: dict[str, tuple[Any, Any]] = {}

    def _resolved_device(self) -> str:
        if self.device is not None:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def _encoder(self, name_or_path: str, model_class: Any = None) -> tuple[Any, Any]:
        """The (model, tokenizer) for ``name_or_path``, loaded once."""
        key = str(name_or_path)
        if key not in self._loaded:
            self._loaded[key] = load_encoder(
                key,
                local_files_only=self.local_files_only,
                device=self._resolved_device(),
                model_class=model_class,
            )
        return self._loaded[key]

    def _model_paths(self) -> list[str]:
        """The model ids/paths this retriever uses (for the cache key)."""
        return [v for k, v in self.config().items() if isinstance(v, str) and k.endswith("model")]

    def _signature(self) -> Any:
        sig = []
        for p in self._model_paths():
            if is_local(p):
                root = Path(p).expanduser()
                files = sorted(f for pat in _WEIGHTS for f in root.glob(pat))
                sig.append(
                    [str(root.resolve()), [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]]
                )
        return sig

    def _hidden(self, model: Any, batch: Any) -> Any:
        """Last hidden states of a tokenised batch (no gradients), on the model's device."""
        import torch

        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in batch.items()}
        with torch.inference_mode():
            out = model(**inputs)
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
