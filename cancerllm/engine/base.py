"""The generation-engine interface shared by every backend (transformers, vLLM).

An engine turns *prompt groups* into generated token ids.  A group is one shared prefix (template,
instruction, retrieved examples and the report text) followed by one or more suffixes (the questions):
phenotype extraction sends one group per report with up to eight suffixes, so a backend that can reuse
the prefix's KV cache encodes each report once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Engine", "GenerationSettings", "PromptGroup"]


@dataclass(frozen=True)
class GenerationSettings:
    """Greedy-decoding settings.  ``stop_strings`` end a sequence as soon as its text contains one of them
    (``"}"`` closes an answer set); EOS always ends it."""

    max_new_tokens: int = 50
    stop_strings: tuple[str, ...] = ()
    batch_size: int = 8


@dataclass
class PromptGroup:
    """One prefix and its suffixes, as token ids."""

    prefix_ids: list[int]
    suffix_ids: list[list[int]] = field(default_factory=lambda: [[]])


class Engine:
    """Base class of generation backends."""

    name = "base"

    def generate_groups(
        self, groups: Sequence[PromptGroup], settings: GenerationSettings, *, progress: bool = False
    ) -> list[list[list[int]]]:
        """Generated ids for each suffix of each group: ``out[g][s]`` (EOS / stop text included)."""
        raise NotImplementedError
