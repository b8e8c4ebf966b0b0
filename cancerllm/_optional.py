"""Lazy checks for optional dependencies.

Optional packages are imported inside the functions that need them, through :func:`require`, so that
``import cancerllm`` stays light and a missing extra gives the exact pip command to run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

# module name -> (pip extra, pip package)
_EXTRAS: dict[str, tuple[str, str]] = {
    "pandas": ("pandas", "pandas"),
    "peft": ("train", "peft"),
    "accelerate": ("train", "accelerate"),
    "bitsandbytes": ("quant", "bitsandbytes"),
    "sentence_transformers": ("retrieval", "sentence-transformers"),
    "faiss": ("retrieval", "faiss-cpu"),
    "gguf": ("smol", "gguf"),
    "vllm": ("vllm", "vllm"),
    "adapters": ("specter2", "adapters"),
    "matplotlib": ("benchmark", "matplotlib"),
    "sklearn": ("benchmark", "scikit-learn"),
    "pyarrow": ("parquet", "pyarrow"),
    "pyspark": ("spark", "pyspark"),
    "ray": ("ray", "ray[data]"),
    "fhir.resources": ("fhir", "fhir.resources"),
}


def require(module: str, *, feature: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip command.

    Args:
        module: importable module name, e.g. ``"peft"``.
        feature: what the caller wanted to do, for the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra, package = _EXTRAS.get(module) or _EXTRAS.get(top) or (None, top)
        what = f" for {feature}" if feature else ""
        hint = f'pip install "cancerllm[{extra}]"' if extra else f"pip install {package}"
        raise MissingDependencyError(f"{package} is required{what} but is not installed; run: {hint}") from exc


def is_available(module: str) -> bool:
    """True when ``module`` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None
