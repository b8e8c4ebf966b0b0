"""Task adapters: several LoRA adapters on one loaded base, each task run with its own.

``CancerLLM.from_pretrained(..., task_adapters={"diagnosis": folder})`` loads ``folder`` next to the main
adapter (PEFT's multi-adapter ``load_adapter``); the task objects activate their task's adapter around each
generation (:meth:`TaskAdapters.use`), under a lock, so a phenotype call and a diagnosis call from two
threads never see each other's weights.

Switching is exact.  With merged weights (the default on unquantized models) PEFT's ``unmerge_adapter``
subtracts the update again, which does not restore the base bit for bit (CancerLLM-Smol in bfloat16: 1.6%
of the targeted weights come back one rounding step off); so the LoRA-targeted base weights are copied once
at load time, before the first merge, and a switch restores them from that copy, then merges the next
adapter.  The copy costs the size of the targeted weights (CancerLLM-Smol: 405 MiB in float32, 202.5 MiB in
bfloat16, on the CPU; a switch about 0.15 s on 2 cores); quantized or unmerged models switch with PEFT's
``set_adapter`` only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from ._hashing import files_sha256
from .errors import ConfigError

__all__ = ["MAIN", "TASKS", "TaskAdapters", "folder_sha256", "task_scope"]

#: the tasks that can have their own adapter
TASKS = ("phenotype", "diagnosis")
#: the PEFT name of the main adapter (the one ``from_pretrained`` loads first)
MAIN = "default"


def folder_sha256(folder: Path | None) -> str | None:
    """SHA-256 of an adapter folder's weight files (in name order); None without a folder or weights."""
    if folder is None or not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin"))
    return files_sha256(files) if files else None


def check_tasks(task_adapters: Mapping[str, Any]) -> None:
    """Reject task names this version does not run."""
    if not isinstance(task_adapters, Mapping):
        raise ConfigError(f"task_adapters must map a task name to an adapter, got {type(task_adapters).__name__}")
    unknown = sorted(set(task_adapters) - set(TASKS))
    if unknown:
        raise ConfigError(f"task_adapters: unknown task(s) {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(TASKS)}")


class TaskAdapters:
    """The task -> adapter routing of one loaded PEFT model (see the module docstring).

    Args:
        model: the ``PeftModel`` holding the main adapter (``"default"``) and one adapter per routed task,
            loaded under the task's name.
        folders: task -> the adapter folder it was loaded from (the tasks routed away from the main adapter).
        merged: the active adapter is kept merged into the base weights.
    """

    def __init__(self, model: Any, folders: Mapping[str, Path], *, merged: bool) -> None:
        self.model = model
        self.folders = dict(folders)
        self.merged = merged
        self.active = MAIN
        self._lock = threading.RLock()
        self._depth = 0  # task blocks open on the thread holding the lock
        self._base: list[tuple[Any, Any, Any]] = []  # (layer, weight copy, bias copy or None)
        if merged:
            self._snapshot()

    def adapter_name(self, task: str) -> str:
        """The PEFT adapter name ``task`` runs with."""
        return task if task in self.folders else MAIN

    def _layers(self) -> Iterator[Any]:
        from peft.tuners.tuners_utils import BaseTunerLayer

        for module in self.model.modules():
            if isinstance(module, BaseTunerLayer):
                yield module

    def _snapshot(self) -> None:
        """Copy the LoRA-targeted base weights (before any merge) to the CPU, once."""
        for layer in self._layers():
            if layer.merged:
                raise ConfigError("task adapters need the base weights before the first merge; load them with "
                                  "from_pretrained(..., task_adapters=...) instead of merging first")
            base = layer.get_base_layer()
            bias = getattr(base, "bias", None)
            self._base.append((layer, base.weight.detach().to("cpu", copy=True),
                               bias.detach().to("cpu", copy=True) if bias is not None else None))

    def _restore(self) -> None:
        for layer, weight, bias in self._base:
            base = layer.get_base_layer()
            base.weight.data.copy_(weight)
            if bias is not None:
                base.bias.data.copy_(bias)
            layer.merged_adapters.clear()

    def activate(self, name: str) -> None:
        """Make PEFT adapter ``name`` the active one (merged when :attr:`merged`)."""
        if name == self.active:
            return
        if self.merged:
            self._restore()
        self._set(name)
        if self.merged:
            self.model.merge_adapter()
        self.active = name

    def _set(self, name: str) -> None:
        try:
            self.model.set_adapter(name, inference_mode=True)  # frozen (peft >= 0.18.1)
        except TypeError:  # pragma: no cover - older peft: set_adapter makes the adapter trainable
            self.model.set_adapter(name)
            for param in self.model.parameters():
                param.requires_grad_(False)

    @contextmanager
    def use(self, task: str) -> Iterator[None]:
        """Run the block with ``task``'s adapter active, holding the lock (other threads wait).  A block nested
        in another one (a task run inside ``with llm.task_adapter(...)``) gives the outer block its adapter
        back when it ends."""
        with self._lock:
            outer = self.active if self._depth else None
            self.activate(self.adapter_name(task))
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if outer is not None:
                    self.activate(outer)


def task_scope(model: Any, task: str) -> AbstractContextManager[Any]:
    """``model.task_adapter(task)`` (its task adapter active for the block), or nothing for a model without
    task adapters or a stand-in object."""
    scope = getattr(model, "task_adapter", None)
    return scope(task) if callable(scope) else nullcontext()
