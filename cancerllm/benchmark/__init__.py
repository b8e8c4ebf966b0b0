"""Real-data benchmark: tasks from the shared TCGA format, a patient-level split, answer normalisation against
registry gold, a rule-based baseline extractor, ICD-10-CM mapping of generated diagnoses, the runner
(:func:`run_benchmark`) and its report writer.  See ``docs/benchmark.md``.

Importing this package does not import torch, transformers or pandas.
"""

from __future__ import annotations

from typing import Any

from .baselines import FilledExtractor, MostFrequentFill
from .classifier import ClassifierHybrid, TextClassifier
from .hybrid import HybridExtractor
from .icd import IcdMapper, icd_match
from .normalize import NORMALIZERS, SET_PHENOTYPES, answers_match, normalize, tnm_components
from .rules import RuleBasedExtractor
from .split import patient_split, split_records
from .staging import StagedExtractor, StageGrouper
from .tasks import BenchmarkTasks, build_tasks, select_records

_LAZY = {
    "run_benchmark": ("cancerllm.benchmark.runner", "run_benchmark"),
    "score_phenotypes": ("cancerllm.benchmark.runner", "score_phenotypes"),
    "score_diagnoses": ("cancerllm.benchmark.runner", "score_diagnoses"),
    "write_report": ("cancerllm.benchmark.report", "write_report"),
    "run_counterfactual_robustness": ("cancerllm.benchmark.robustness", "run_counterfactual_robustness"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'cancerllm.benchmark' has no attribute {name!r}")

__all__ = [
    "BenchmarkTasks",
    "ClassifierHybrid",
    "FilledExtractor",
    "HybridExtractor",
    "IcdMapper",
    "MostFrequentFill",
    "NORMALIZERS",
    "RuleBasedExtractor",
    "SET_PHENOTYPES",
    "StageGrouper",
    "StagedExtractor",
    "TextClassifier",
    "answers_match",
    "build_tasks",
    "icd_match",
    "normalize",
    "patient_split",
    "run_benchmark",
    "run_counterfactual_robustness",
    "score_diagnoses",
    "score_phenotypes",
    "select_records",
    "split_records",
    "tnm_components",
    "write_report",
]
