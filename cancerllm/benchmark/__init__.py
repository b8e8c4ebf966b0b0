"""Benchmark helpers: answer normalisation against registry gold, a rule-based baseline extractor, and
ICD-10-CM mapping of generated diagnoses.  See ``docs/benchmark.md``.

Importing this package does not import torch, transformers or pandas.
"""

from __future__ import annotations

from .icd import IcdMapper, icd_match
from .normalize import NORMALIZERS, SET_PHENOTYPES, answers_match, normalize, tnm_components
from .rules import RuleBasedExtractor

__all__ = [
    "IcdMapper",
    "NORMALIZERS",
    "RuleBasedExtractor",
    "SET_PHENOTYPES",
    "answers_match",
    "icd_match",
    "normalize",
    "tnm_components",
]
