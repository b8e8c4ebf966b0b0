"""Misspellings: the paper's second robustness testbed.

A given fraction of the words of each input (the paper uses 2, 4, 6 and 8%) gets one character-level edit:

* ``swap``: two adjacent, different characters exchanged (``tumor`` -> ``tuomr``);
* ``drop``: one character removed (``tumor`` -> ``tumr``; only words of two or more letters);
* ``insert``: one random letter inserted (``tumor`` -> ``tumkor``);
* ``substitute``: one character replaced by a different letter (``tumor`` -> ``tumer``).

**Eligible words** are the alphanumeric tokens (maximal runs of letters and digits) that consist of letters
only and have at least ``min_word_length`` letters: in ``"ER-positive, pT2 (3 cm)"`` the eligible words
are ``ER``, ``positive`` and ``cm``.  Only these words change; every other character (whitespace,
punctuation, numbers, the other words) is kept exactly.  For an :class:`~cancerllm.schema.Example` only the
``context`` is perturbed; in the official form (``"In the text: <report> <question>"``, one of the eight
built-in questions) only the report part is.

**Rounding.** The number of edits is computed with a carry over the inputs: after input ``i`` the total
number of edits is ``round_half_up(rate * E_i)``, where ``E_i`` is the number of eligible words of inputs
``0..i`` (the rate taken as the decimal it is written as).  So the whole corpus gets exactly
``round_half_up(rate * E)`` edits (realised rate = requested rate within half a word over the corpus), and
each input gets ``floor(rate * e)`` or ``ceil(rate * e)`` of its ``e`` eligible words.  Short inputs at low
rates therefore take turns: at 2%, a run of 10-word sentences has one edit every fifth sentence, not none.

Everything random comes from ``random.Random(seed)``: the same inputs and seed give the same output.

Example:
    >>> noisy, changes = misspell(["The tumor is located in the left breast."], rate=0.5, seed=1)
    >>> len(changes)
    4
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from ..errors import InputError
from ..schema import Example, Phenotype
from .counterfactual import _check_rate

__all__ = [
    "Misspelling",
    "OPERATIONS",
    "apply_misspellings",
    "eligible_words",
    "misspell",
    "realised_rate",
]

Operation = Literal["swap", "drop", "insert", "substitute"]
#: The character-level edit operations.
OPERATIONS: tuple[str, ...] = ("swap", "drop", "insert", "substitute")
_TOKEN_RE = re.compile(r"[^\W_]+")
_OFFICIAL_PREFIX = "In the text: "

T = TypeVar("T", str, Example)


class Misspelling(BaseModel):
    """One misspelled word.

    Attributes:
        index: position of the input in the input list.
        word_index: position of the word among the input's eligible words (0-based).
        start: character offset of the word in the original text (the context, for examples).
        original: the word before the edit.
        replacement: the word after the edit (always different from ``original``).
        operation: ``"swap"``, ``"drop"``, ``"insert"`` or ``"substitute"``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    word_index: int
    start: int
    original: str
    replacement: str
    operation: Operation


def _region(item: str | Example) -> tuple[str, int, int]:
    """The text to perturb and the ``[lo, hi)`` span of it that may change."""
    if isinstance(item, Example):
        text = item.context
        if item.question is None and text.startswith(_OFFICIAL_PREFIX):
            body = text.rstrip()
            for p in Phenotype:
                if body.endswith(p.question):
                    return text, len(_OFFICIAL_PREFIX), len(body) - len(p.question)
        return text, 0, len(text)
    if isinstance(item, str):
        return item, 0, len(item)
    raise InputError(f"misspell expects strings or Example objects, got {type(item).__name__}")


def eligible_words(
    text: str, *, min_word_length: int = 2, start: int = 0, end: int | None = None
) -> list[tuple[int, str]]:
    """``(offset, word)`` of the eligible words of ``text[start:end]``: all-letter tokens of ``min_word_length``+.

    Example:
        >>> eligible_words("ER-positive, pT2 (3 cm)")
        [(0, 'ER'), (3, 'positive'), (20, 'cm')]
    """
    end = len(text) if end is None else end
    return [
        (m.start(), m.group())
        for m in _TOKEN_RE.finditer(text, start, end)
        if m.group().isalpha() and len(m.group()) >= min_word_length
    ]


def _applicable(op: str, word: str) -> bool:
    if op == "swap":
        return any(a != b for a, b in zip(word, word[1:], strict=False))
    if op == "drop":
        return len(word) >= 2
    return True


def _letter(rng: random.Random, like: str, exclude: str = "") -> str:
    choices = [c for c in string.ascii_lowercase if c != exclude.lower()]
    c = rng.choice(choices)
    return c.upper() if like.isupper() else c


def _edit(word: str, op: str, rng: random.Random) -> str:
    if op == "swap":
        j = rng.choice([j for j in range(len(word) - 1) if word[j] != word[j + 1]])
        return word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    if op == "drop":
        j = rng.randrange(len(word))
        return word[:j] + word[j + 1 :]
    if op == "insert":
        j = rng.randrange(len(word) + 1)
        like = "A" if len(word) > 1 and word.isupper() else "a"  # upper case only inside all-caps words
        return word[:j] + _letter(rng, like) + word[j:]
    j = rng.randrange(len(word))
    return word[:j] + _letter(rng, word[j], exclude=word[j]) + word[j + 1 :]


def _check_args(operations: Iterable[str], min_word_length: int) -> tuple[str, ...]:
    if isinstance(operations, str):
        operations = (operations,)
    ops = tuple(dict.fromkeys(operations))
    bad = [o for o in ops if o not in OPERATIONS]
    if not ops or bad:
        raise InputError(
            f"operations must be a non-empty subset of {', '.join(OPERATIONS)}; got {', '.join(map(repr, bad or ops)) or '(none)'}"
        )
    if isinstance(min_word_length, bool) or not isinstance(min_word_length, int) or min_word_length < 1:
        raise InputError(f"min_word_length must be an integer >= 1, got {min_word_length!r}")
    return ops


def _inputs(texts_or_examples: Sequence[T]) -> list[T]:
    if isinstance(texts_or_examples, (str, Example)):
        raise InputError("misspell expects a list of texts or examples; wrap a single one in a list: [text]")
    return list(texts_or_examples)


def misspell(
    texts_or_examples: Sequence[T],
    *,
    rate: float,
    seed: int = 0,
    operations: Iterable[str] = OPERATIONS,
    min_word_length: int = 2,
) -> tuple[list[T], list[Misspelling]]:
    """Misspell a fraction ``rate`` of the eligible words of each input, one character edit per word.

    Args:
        texts_or_examples: strings, or :class:`~cancerllm.schema.Example` objects (their ``context`` changes).
        rate: fraction in [0, 1] of eligible words to misspell (the paper: 0.02, 0.04, 0.06, 0.08).
        seed: seed of the ``random.Random`` that picks the words, the operations and the characters.
        operations: the edit operations to draw from (uniformly among those applicable to the word).
        min_word_length: the shortest word (in letters) that may be misspelled.

    Returns:
        ``(new, changes)``: the perturbed texts or example copies (inputs are not modified), and one
        :class:`Misspelling` per edited word, ordered by input and position.

    Raises:
        InputError: ``rate`` outside [0, 1], unknown operations, ``min_word_length < 1`` or a bad input type.

    Note:
        The counts follow the carry rule of the module docstring.  A word that admits none of the chosen
        operations (only possible with ``operations=("swap",)`` and words like ``"aa"``) is passed over; a
        shortfall carries on to the next inputs.
    """
    r = _check_rate(rate)
    ops = _check_args(operations, min_word_length)
    items = _inputs(texts_or_examples)
    rng = random.Random(seed)
    new: list[T] = []
    changes: list[Misspelling] = []
    seen_words = 0
    for idx, item in enumerate(items):
        text, lo, hi = _region(item)
        words = eligible_words(text, min_word_length=min_word_length, start=lo, end=hi)
        seen_words += len(words)
        target = int((r * seen_words).to_integral_value(rounding=ROUND_HALF_UP)) - len(changes)
        order = list(range(len(words)))
        rng.shuffle(order)
        edits: list[Misspelling] = []
        for w in order:
            if len(edits) >= target:
                break
            start, word = words[w]
            usable = [o for o in ops if _applicable(o, word)]
            if not usable:
                continue
            op = rng.choice(usable)
            edits.append(
                Misspelling(
                    index=idx,
                    word_index=w,
                    start=start,
                    original=word,
                    replacement=_edit(word, op, rng),
                    operation=op,
                )
            )
        edits.sort(key=lambda m: m.start)
        changes.extend(edits)
        new_text = _splice(text, edits)
        new.append(
            new_text if isinstance(item, str) else item.model_copy(deep=True, update={"context": new_text})
        )  # type: ignore[arg-type]
    return new, changes


def _splice(text: str, edits: Sequence[Misspelling]) -> str:
    parts: list[str] = []
    pos = 0
    for m in sorted(edits, key=lambda m: m.start):
        if text[m.start : m.start + len(m.original)] != m.original or m.start < pos:
            raise InputError(f"misspelling of {m.original!r} at offset {m.start} does not match the text")
        parts.append(text[pos : m.start])
        parts.append(m.replacement)
        pos = m.start + len(m.original)
    parts.append(text[pos:])
    return "".join(parts)


def apply_misspellings(texts_or_examples: Sequence[T], changes: Sequence[Misspelling]) -> list[T]:
    """Re-apply recorded :class:`Misspelling` s to the original inputs (copies; inputs are not modified).

    Raises:
        InputError: a change that does not match the input it names.
    """
    items = _inputs(texts_or_examples)
    by_index: dict[int, list[Misspelling]] = {}
    for m in changes:
        if not 0 <= m.index < len(items):
            raise InputError(f"misspelling for input {m.index} but only {len(items)} inputs were given")
        by_index.setdefault(m.index, []).append(m)
    out: list[T] = []
    for idx, item in enumerate(items):
        text, _, _ = _region(item)
        new_text = _splice(text, by_index.get(idx, []))
        out.append(
            new_text if isinstance(item, str) else item.model_copy(deep=True, update={"context": new_text})
        )  # type: ignore[arg-type]
    return out


def realised_rate(
    changes: Sequence[Misspelling], texts_or_examples: Sequence[str | Example], *, min_word_length: int = 2
) -> float:
    """Edited words / eligible words of the original inputs (0.0 when there are no eligible words).

    Pass the same ``min_word_length`` as to :func:`misspell`.
    """
    total = 0
    for item in _inputs(texts_or_examples):
        text, lo, hi = _region(item)
        total += len(eligible_words(text, min_word_length=min_word_length, start=lo, end=hi))
    return len(changes) / total if total else 0.0
