"""The examples in the metric docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "cancerllm.metrics",
    "cancerllm.metrics._core",
    "cancerllm.metrics.bleu",
    "cancerllm.metrics.bootstrap",
    "cancerllm.metrics.calibration",
    "cancerllm.metrics.evaluate",
    "cancerllm.metrics.exact_match",
    "cancerllm.metrics.official",
    "cancerllm.metrics.results",
    "cancerllm.metrics.rouge",
    "cancerllm.metrics.sets",
    "cancerllm.metrics.table",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
