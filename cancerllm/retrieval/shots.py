"""Retrieved examples ("shots") for prompts: the one place that decides which training examples a prompt shows.

Inference (:class:`~cancerllm.tasks.phenotype.PhenotypeExtractor`,
:class:`~cancerllm.tasks.diagnosis.DiagnosisGenerator`) and training with retrieved examples both call
:class:`ShotSelector` and pass its shots to ``PromptBuilder.encode(example, shots)``, so a model is trained
on exactly the prompts it is later asked with.

Design (see ``docs/retrieval.md``): the corpus is grouped by report text, the retriever indexes each
distinct report once, and each input report is searched once; for a question, the shots are the
retrieved reports' examples for that same question, most similar first, the input's own report never
among them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputError
from ..schema import Example, Phenotype
from ._registry import get_retriever
from .base import Retriever
from .documents import text_key

__all__ = ["ShotSelector", "shot_selector_for"]

_OFFICIAL_PREFIX = "In the text: "


def _as_example(item: Any, i: int) -> Example:
    if isinstance(item, Example):
        ex = item
    elif isinstance(item, Mapping):
        try:
            ex = Example(**item)
        except Exception as exc:  # pydantic's ValidationError, reported without the record's text
            raise InputError(
                f"corpus item {i}: not an example ({type(exc).__name__}); it needs "
                "'instruction', 'context' and 'response'"
            ) from None
    else:
        raise InputError(f"corpus item {i}: expected an Example or a mapping, got {type(item).__name__}")
    if ex.question is None and ex.context.startswith(_OFFICIAL_PREFIX):
        # the official single-string form "In the text: <report> <question>": split the question off
        for p in Phenotype:
            if ex.context.rstrip().endswith(p.question):
                body = ex.context.rstrip()[len(_OFFICIAL_PREFIX) : -len(p.question)].rstrip()
                return ex.model_copy(update={"context": body, "question": p.question})
    return ex


def _qkey(question: str | None) -> str | None:
    return None if question is None else text_key(question)


class ShotSelector:
    """Chooses the ``k`` retrieved training examples shown in each prompt.

    Args:
        corpus: the training examples (:class:`~cancerllm.schema.Example` objects or their dicts; the
            official ``"In the text: <report> <question>"`` form is understood too).  Phenotype examples of
            one report share the report text; diagnosis examples have no question.
        retriever: a :class:`Retriever`, a registry name, or ``None`` for the offline default.  Its index is
            (re)built over the distinct corpus reports unless it already holds exactly those texts (e.g.
            loaded with ``load_index``).
        k: examples per prompt.
        tokenizer: with ``max_shot_tokens``, used to cut each example's report to that many tokens.
        max_shot_tokens: the longest report text shown in one example (``None``: whole reports).
        most_similar_last: put the most similar example last, next to the input (default: first).
        search_factor: reports fetched per input are ``k * search_factor``, so that ``k`` of them have an
            answer to each question even when the corpus lacks some (report, question) pairs.

    Raises:
        InputError: an empty corpus, a bad item or ``k <= 0``.
    """

    def __init__(
        self,
        corpus: Sequence[Any],
        retriever: Retriever | str | None = None,
        *,
        k: int = 3,
        tokenizer: Any = None,
        max_shot_tokens: int | None = None,
        most_similar_last: bool = False,
        search_factor: int = 4,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise InputError(f"k must be a positive integer, got {k!r}")
        if max_shot_tokens is not None and max_shot_tokens <= 0:
            raise InputError(f"max_shot_tokens must be positive or None, got {max_shot_tokens!r}")
        if corpus is None or isinstance(corpus, (str, Mapping)):
            raise InputError("corpus must be a list of training examples (Example objects or dicts)")
        examples = [_as_example(x, i) for i, x in enumerate(corpus)]
        if not examples:
            raise InputError("the retrieval corpus is empty; pass the training examples as corpus=[...]")
        self.k = k
        self.tokenizer = tokenizer
        self.max_shot_tokens = max_shot_tokens
        self.most_similar_last = most_similar_last
        self.search_factor = max(1, int(search_factor))
        self.retriever = get_retriever(retriever)
        slot: dict[str, int] = {}
        self.reports: list[str] = []
        self._answers: list[dict[str | None, Example]] = []
        for ex in examples:
            key = text_key(ex.context)
            if key not in slot:
                slot[key] = len(self.reports)
                self.reports.append(ex.context)
                self._answers.append({})
            self._answers[slot[key]].setdefault(_qkey(ex.question), ex)
        self._cut: dict[int, str] = {}
        r = self.retriever
        if not (r.has_index and [d.text for d in r.documents] == self.reports):
            r.build_index(self.reports)

    def __len__(self) -> int:
        """Number of distinct reports in the corpus."""
        return len(self.reports)

    def _shot(self, report: int, ex: Example) -> Example:
        if self.tokenizer is None or self.max_shot_tokens is None:
            return ex
        if report not in self._cut:
            ids = self.tokenizer(ex.context, add_special_tokens=False)["input_ids"]
            cut = (
                ex.context
                if len(ids) <= self.max_shot_tokens
                else self.tokenizer.decode(ids[: self.max_shot_tokens])
            )
            self._cut[report] = cut.strip()
        return ex.model_copy(update={"context": self._cut[report]})

    def select(
        self, contexts: Sequence[str], questions: Sequence[str | None] = (None,)
    ) -> list[list[list[Example]]]:
        """Shots for each input report and question: ``out[i][j]`` for ``contexts[i]`` and ``questions[j]``.

        One search per report (all questions share it); a corpus report identical to the input is never used.
        """
        if isinstance(contexts, str):
            raise InputError("select() takes a list of report texts")
        if not contexts:
            return []
        want = min(len(self.reports), self.k * self.search_factor)
        hits = self.retriever.search(list(contexts), want, exclude_identical=True)
        out: list[list[list[Example]]] = []
        for row in hits:
            per_q: list[list[Example]] = []
            for q in questions:
                key = _qkey(q)
                shots = [
                    self._shot(h.index, self._answers[h.index][key])
                    for h in row
                    if key in self._answers[h.index]
                ][: self.k]
                per_q.append(shots[::-1] if self.most_similar_last else shots)
            out.append(per_q)
        return out

    def for_examples(self, examples: Sequence[Example]) -> list[list[Example]]:
        """Shots for each example (e.g. training examples), with one search per distinct report.

        For training: ``builder.encode(ex, shots, with_response=True)`` for ``ex, shots`` in
        ``zip(examples, selector.for_examples(examples))``.
        """
        exs = [_as_example(x, i) for i, x in enumerate(examples)]
        slot: dict[str, int] = {}
        contexts: list[str] = []
        for ex in exs:
            slot.setdefault(text_key(ex.context), len(contexts))
            if len(contexts) < len(slot):
                contexts.append(ex.context)
        questions = sorted({_qkey(ex.question) for ex in exs}, key=lambda q: (q is not None, q or ""))
        col = {q: j for j, q in enumerate(questions)}
        table = self.select(contexts, questions)
        return [table[slot[text_key(ex.context)]][col[_qkey(ex.question)]] for ex in exs]

    def shots_for(self, example: Example) -> list[Example]:
        """Shots for one example."""
        return self.for_examples([example])[0]

    def __repr__(self) -> str:
        return f"ShotSelector(retriever={self.retriever.name!r}, reports={len(self)}, k={self.k})"


def shot_selector_for(
    model: Any, retriever: Any, corpus: Any, *, k: int = 3, max_shot_tokens: int | None = None
) -> ShotSelector:
    """The :class:`ShotSelector` of a task object on ``model`` (a :class:`~cancerllm.model.CancerLLM`).

    ``retriever`` may be a ready :class:`ShotSelector` (then ``corpus`` must be None), a
    :class:`Retriever`, a registry name or None (the offline default).  ``max_shot_tokens`` defaults to
    ``model.max_input_tokens // (2 * k)``, so the examples take at most half of the input limit.

    Raises:
        InputError: no corpus, a corpus next to a ready selector, or ``k <= 0``.
    """
    if isinstance(retriever, ShotSelector):
        if corpus is not None:
            raise InputError("pass corpus= to the ShotSelector, not next to it")
        return retriever
    if corpus is None:
        raise InputError("retrieval needs corpus=[training examples] to retrieve from")
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if max_shot_tokens is None:
        max_shot_tokens = max(16, int(model.max_input_tokens) // (2 * k))
    return ShotSelector(corpus, retriever, k=k, tokenizer=model.tokenizer, max_shot_tokens=max_shot_tokens)
