"""The generation-engine interface shared by every backend (transformers, vLLM).

An engine turns *prompt groups* into generated token ids.  A group is one shared prefix (template,
instruction, retrieved examples and the report text) followed by one or more suffixes (the questions):
phenotype extraction sends one group per report with up to eight suffixes, so a backend that can reuse
the prefix's KV cache encodes each report once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Engine", "Generation", "GenerationSettings", "PromptGroup"]


@dataclass(frozen=True)
class GenerationSettings:
    """Greedy-decoding settings.  ``stop_strings`` end a sequence as soon as its text contains one of them
    (``"}"`` closes an answer set); EOS always ends it."""

    max_new_tokens: int = 50
    stop_strings: tuple[str, ...] = ()
    batch_size: int = 8
    #: also return each generated token's log-probability (from the logits decoding computes anyway)
    logprobs: bool = False


@dataclass
class PromptGroup:
    """One prefix and its suffixes, as token ids."""

    prefix_ids: list[int]
    suffix_ids: list[list[int]] = field(default_factory=lambda: [[]])


@dataclass
class Generation:
    """What one prompt generated: token ids (EOS / stop text included) and, when asked
    (``GenerationSettings(logprobs=True)``), the natural-log probability the model gave each of them."""

    ids: list[int]
    logprobs: list[float] | None = None


class Engine:
    """Base class of generation backends: implement :meth:`generate` (or, without log-probabilities,
    :meth:`generate_groups`)."""

    name = "base"

    def generate(
        self, groups: Sequence[PromptGroup], settings: GenerationSettings, *, progress: bool = False
    ) -> list[list[Generation]]:
        """A :class:`Generation` for each suffix of each group: ``out[g][s]``."""
        if type(self).generate_groups is Engine.generate_groups:
            raise NotImplementedError(f"{type(self).__name__} implements neither generate nor generate_groups")
        return [[Generation(list(ids)) for ids in row]
                for row in self.generate_groups(groups, settings, progress=progress)]

    def generate_groups(
        self, groups: Sequence[PromptGroup], settings: GenerationSettings, *, progress: bool = False
    ) -> list[list[list[int]]]:
        """Generated ids for each suffix of each group: ``out[g][s]`` (EOS / stop text included)."""
        if type(self).generate is Engine.generate:
            raise NotImplementedError(f"{type(self).__name__} implements neither generate nor generate_groups")
        return [[g.ids for g in row] for row in self.generate(groups, settings, progress=progress)]
