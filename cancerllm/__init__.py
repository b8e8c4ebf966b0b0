"""cancerllm: cancer phenotype extraction and diagnosis generation with LLMs (CancerLLM, reproduced and extended).

Importing the package is light: torch, transformers and every optional dependency are imported only
when a model is loaded or a feature that needs them is used.  ``CancerLLM``, ``PhenotypeExtractor``,
``DiagnosisGenerator`` and ``Retriever`` are imported on first access (``from cancerllm import CancerLLM``),
as are the subpackages ``cancerllm.metrics``, ``cancerllm.retrieval`` and the other public ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    CancerLLMError,
    ConfigError,
    DataFormatError,
    InputError,
    MissingDependencyError,
    ModelLoadError,
    UnknownBackendError,
)
from .prompts import PromptBuilder, format_answer, parse_answer
from .schema import (
    DIAGNOSIS_INSTRUCTION,
    NOT_RELEVANT,
    PHENOTYPE_INSTRUCTION,
    ClinicalNote,
    Diagnosis,
    Example,
    Phenotype,
    PhenotypeQuestion,
    PhenotypeResult,
    Task,
)

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .model import CancerLLM
    from .retrieval import Retriever
    from .tasks.diagnosis import DiagnosisGenerator
    from .tasks.phenotype import PhenotypeExtractor

# heavy public names, imported on first attribute access (PEP 562)
_LAZY = {
    "CancerLLM": ("cancerllm.model", "CancerLLM"),
    "PhenotypeExtractor": ("cancerllm.tasks.phenotype", "PhenotypeExtractor"),
    "DiagnosisGenerator": ("cancerllm.tasks.diagnosis", "DiagnosisGenerator"),
    "Retriever": ("cancerllm.retrieval", "Retriever"),
}
# public subpackages, so that ``import cancerllm; cancerllm.metrics.evaluate(...)`` works too
_SUBMODULES = ("benchmark", "data", "engine", "jobs", "metrics", "model", "registry", "retrieval", "robustness",
               "tasks", "testing", "training")


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")  # the import binds it as an attribute
    raise AttributeError(f"module 'cancerllm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})


__all__ = [
    "CancerLLM",
    "CancerLLMError",
    "ClinicalNote",
    "ConfigError",
    "DIAGNOSIS_INSTRUCTION",
    "DataFormatError",
    "Diagnosis",
    "DiagnosisGenerator",
    "Example",
    "InputError",
    "MissingDependencyError",
    "ModelLoadError",
    "NOT_RELEVANT",
    "PHENOTYPE_INSTRUCTION",
    "Phenotype",
    "PhenotypeExtractor",
    "PhenotypeQuestion",
    "PhenotypeResult",
    "PromptBuilder",
    "Retriever",
    "Task",
    "UnknownBackendError",
    "__version__",
    "format_answer",
    "parse_answer",
]
