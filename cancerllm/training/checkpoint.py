"""Checkpoints that survive faults: written atomically, complete or absent, enough to continue exactly.

A checkpoint is a folder ``<output_dir>/checkpoints/step-000120/`` holding

* ``adapter_weights.safetensors`` - the trainable (LoRA) parameters, by name;
* ``optimizer.pt`` / ``scheduler.pt`` - their ``state_dict()`` (our own files, written with ``torch.save``
  and read back with ``weights_only=True``: tensors and numbers only, no code);
* ``rng_state.safetensors`` + the ``rng`` entry of ``trainer_state.json`` - torch (CPU and CUDA), Python
  and NumPy random states of every process;
* ``trainer_state.json`` - step, epoch, position in the epoch's data order, the loss history and a
  fingerprint of the settings that must not change across a resume; written last.

The folder is first written as ``.tmp-step-000120``, every file is fsync'ed, and the folder is then
renamed (``os.replace``) to its final name, so a process killed at any moment leaves either a complete
checkpoint or none.  Under DeepSpeed / FSDP the model and optimiser states are sharded: they are saved by
Accelerate's ``save_state`` into ``engine/`` inside the same folder.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINTS_DIR",
    "TRAINER_STATE_NAME",
    "capture_rng",
    "checkpoint_dirs",
    "latest_checkpoint",
    "load_checkpoint",
    "restore_rng",
    "save_checkpoint",
]

CHECKPOINTS_DIR = "checkpoints"
TRAINER_STATE_NAME = "trainer_state.json"
WEIGHTS_NAME = "adapter_weights.safetensors"
OPTIMIZER_NAME = "optimizer.pt"
SCHEDULER_NAME = "scheduler.pt"
RNG_NAME = "rng_state.safetensors"
ENGINE_DIR = "engine"
_STEP_RE = re.compile(r"^step-(\d+)$")


# ----------------------------------------------------------------------------------------- rng
def capture_rng() -> dict[str, Any]:
    """This process's random states: ``{"python": ..., "numpy": ..., "torch": tensor, "cuda": [tensors]}``."""
    import numpy as np
    import torch

    version, state, gauss = random.getstate()
    np_state = np.random.get_state()
    out: dict[str, Any] = {
        "python": [version, list(state), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = list(torch.cuda.get_rng_state_all())
    return out


def restore_rng(states: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    import numpy as np
    import torch

    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# ----------------------------------------------------------------------------------------- fs helpers
def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _remove_tree(path: Path) -> None:
    """Delete a folder so that a crash midway never leaves something that looks like a checkpoint."""
    if not path.exists():
        return
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def checkpoint_dirs(output_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints under ``<output_dir>/checkpoints``, oldest first."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_RE.match(p.name)
        if m and p.is_dir() and (p / TRAINER_STATE_NAME).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    dirs = checkpoint_dirs(output_dir)
    return dirs[-1] if dirs else None


def clean_partial(output_dir: str | os.PathLike[str]) -> None:
    """Remove leftovers of interrupted writes (``.tmp-*`` / ``.trash-*`` folders)."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith((".tmp-", ".trash-")):
                shutil.rmtree(p, ignore_errors=True)


def remove_all(output_dir: str | os.PathLike[str]) -> None:
    """Delete every checkpoint of a run (a fresh run must not leave an old run's checkpoints to resume from)."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    for p in checkpoint_dirs(output_dir):
        _remove_tree(p)
    clean_partial(output_dir)
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()


# ----------------------------------------------------------------------------------------- save / load
def save_checkpoint(
    output_dir: str | os.PathLike[str],
    step: int,
    *,
    state: dict[str, Any],
    rng: list[dict[str, Any]],
    weights: dict[str, Any] | None,
    optimizer: dict[str, Any] | None,
    scheduler: dict[str, Any] | None,
    keep_last: int | None = None,
    engine_writer: Callable[[Path], None] | None = None,
    is_main: bool = True,
    barrier: Callable[[], None] = lambda: None,
) -> Path:
    """Write a checkpoint atomically and prune old ones (see the module docstring).

    Args:
        state: JSON-serialisable trainer state (step, epoch, position, ...).
        rng: one :func:`capture_rng` dict per process (rank order).
        weights / optimizer / scheduler: state dicts, or None when ``engine_writer`` saves them.
        engine_writer: called by every process with the temporary folder's ``engine/`` path (Accelerate's
            ``save_state`` for sharded engines).
        is_main / barrier: in a multi-process run only the main process writes files; all processes call
            this function and meet at ``barrier``.
    """
    import torch
    from safetensors.torch import save_file

    root = Path(output_dir) / CHECKPOINTS_DIR
    name = f"step-{step:06d}"
    final = root / name
    tmp = root / f".tmp-{name}"
    if is_main:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    barrier()
    if engine_writer is not None:
        engine_writer(tmp / ENGINE_DIR)
    barrier()
    if is_main:
        written: list[Path] = []
        if weights is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp / WEIGHTS_NAME))
            written.append(tmp / WEIGHTS_NAME)
        if optimizer is not None:
            torch.save(optimizer, tmp / OPTIMIZER_NAME)
            written.append(tmp / OPTIMIZER_NAME)
        if scheduler is not None:
            torch.save(scheduler, tmp / SCHEDULER_NAME)
            written.append(tmp / SCHEDULER_NAME)
        tensors: dict[str, Any] = {}
        rng_json = []
        for r, st in enumerate(rng):
            tensors[f"rank{r}.torch"] = st["torch"].contiguous()
            for i, t in enumerate(st.get("cuda") or []):
                tensors[f"rank{r}.cuda{i}"] = t.contiguous()
            rng_json.append({"python": st["python"], "numpy": st["numpy"], "n_cuda": len(st.get("cuda") or [])})
        save_file(tensors, str(tmp / RNG_NAME))
        written.append(tmp / RNG_NAME)
        full_state = dict(state, rng=rng_json)
        (tmp / TRAINER_STATE_NAME).write_text(json.dumps(full_state, indent=1), encoding="utf-8")
        written.append(tmp / TRAINER_STATE_NAME)
        for f in written:
            _fsync_file(f)
        if (tmp / ENGINE_DIR).is_dir():
            for f in (tmp / ENGINE_DIR).rglob("*"):
                if f.is_file():
                    _fsync_file(f)
        _fsync_dir(tmp)
        if final.exists():
            _remove_tree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
        if keep_last:
            for old in checkpoint_dirs(output_dir)[:-keep_last]:
                _remove_tree(old)
        logger.info("checkpoint written: %s", final)
    barrier()
    return final


def load_checkpoint(path: str | os.PathLike[str], *, rank: int = 0) -> dict[str, Any]:
    """Read a checkpoint: ``{"state", "rng" (this rank's, or None), "weights", "optimizer", "scheduler",
    "engine_dir"}`` (absent parts are None)."""
    import torch
    from safetensors.torch import load_file

    p = Path(path)
    state = json.loads((p / TRAINER_STATE_NAME).read_text(encoding="utf-8"))
    rng_json = state.pop("rng", [])
    rng = None
    if rank < len(rng_json) and (p / RNG_NAME).is_file():
        tensors = load_file(str(p / RNG_NAME))
        entry = rng_json[rank]
        rng = {
            "python": entry["python"],
            "numpy": entry["numpy"],
            "torch": tensors[f"rank{rank}.torch"],
            "cuda": [tensors[f"rank{rank}.cuda{i}"] for i in range(entry.get("n_cuda", 0))],
        }

    def _pt(name: str) -> Any:
        f = p / name
        return torch.load(f, map_location="cpu", weights_only=True) if f.is_file() else None

    return {
        "state": state,
        "rng": rng,
        "weights": load_file(str(p / WEIGHTS_NAME)) if (p / WEIGHTS_NAME).is_file() else None,
        "optimizer": _pt(OPTIMIZER_NAME),
        "scheduler": _pt(SCHEDULER_NAME),
        "engine_dir": p / ENGINE_DIR if (p / ENGINE_DIR).is_dir() else None,
        "path": p,
    }
