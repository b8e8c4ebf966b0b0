"""Robustness testbeds of the CancerLLM paper: counterfactual label noise and misspellings.

Both are seeded and deterministic, return the new data together with a record of every change, and hit the
requested rate exactly (up to the rounding documented in each module).
"""

from __future__ import annotations

from .counterfactual import (
    BUILTIN_VOCABULARY,
    LabelChange,
    apply_label_changes,
    counterfactual_labels,
    expected_count,
)
from .misspelling import (
    OPERATIONS,
    Misspelling,
    apply_misspellings,
    eligible_words,
    misspell,
    realised_rate,
)

#: The paper's settings: fractions of corrupted training labels, and of misspelled words per input.
PAPER_COUNTERFACTUAL_RATES: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
PAPER_MISSPELLING_RATES: tuple[float, ...] = (0.02, 0.04, 0.06, 0.08)

__all__ = [
    "BUILTIN_VOCABULARY",
    "LabelChange",
    "Misspelling",
    "OPERATIONS",
    "PAPER_COUNTERFACTUAL_RATES",
    "PAPER_MISSPELLING_RATES",
    "apply_label_changes",
    "apply_misspellings",
    "counterfactual_labels",
    "eligible_words",
    "expected_count",
    "misspell",
    "realised_rate",
]
