"""``PhenotypeExtractor``: the eight cancer phenotypes (and your own questions) from report text."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .._constants import PHENOTYPE_MAX_NEW_TOKENS
from .._task_adapters import task_scope
from ..engine.base import GenerationSettings, PromptGroup
from ..errors import InputError
from ..evidence import EvidenceIndex
from ..schema import PHENOTYPE_INSTRUCTION, Example, PhenotypeQuestion, PhenotypeResult, resolve_phenotypes
from ._common import (
    as_text_list,
    check_text,
    chunked,
    in_order,
    row_names,
    split_bad_rows,
    split_tokens,
    warn_truncated,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..model import CancerLLM
    from ..retrieval.base import Retriever
    from ..retrieval.shots import ShotSelector

__all__ = ["PhenotypeExtractor"]


class PhenotypeExtractor:
    """Extract cancer phenotypes with a :class:`~cancerllm.model.CancerLLM`.

    Every question about one report reuses a single encoding of the report (prefix KV cache), reports are
    batched, and a report longer than the input limit is split into overlapping chunks whose answers are
    merged (``chunking=False`` truncates instead, with a :class:`TruncationWarning`).

    Args:
        model: the loaded model.
        phenotypes: names, :class:`~cancerllm.schema.Phenotype` members or
            :class:`~cancerllm.schema.PhenotypeQuestion` objects; all eight when None.
        batch_size: sequences decoded together (a report with 8 questions counts 8).
        max_new_tokens: the paper's 50 by default.
        chunking: split long reports (True) or truncate them (False).
        chunk_overlap: tokens shared by consecutive chunks.
        progress: show a progress bar in ``extract_many``.
        retriever: retrieval-augmented prompting (the paper's retrieval-based CancerLLM): a
            :class:`~cancerllm.retrieval.Retriever`, a retriever name, or a ready
            :class:`~cancerllm.retrieval.ShotSelector`; with ``corpus`` and no retriever, the offline default.
        corpus: the training examples to retrieve from (one :class:`~cancerllm.schema.Example` per report and
            question, as the data converters write them).
        k: retrieved examples per prompt: for each question, the answers to that question of the ``k``
            reports most similar to the input (never the input itself).
        max_shot_tokens: report tokens shown per retrieved example (default: a sixth of the input limit
            for ``k=3``, i.e. ``max_input_tokens // (2 * k)``).
        min_confidence: answers (and items) whose confidence is below it are marked ``needs_review`` in
            :attr:`PhenotypeResult.details` (kept, not dropped); items without evidence in the report are
            always marked.

    Every result carries :attr:`~cancerllm.schema.PhenotypeResult.details`: per question its status
    ("answered" / "not_relevant"), each item's evidence span in the caller's text (exact / fuzzy /
    not_found), confidences from the generated tokens' probabilities, the chunk that answered, and
    alternatives for single-valued phenotypes; and :attr:`~cancerllm.schema.PhenotypeResult.provenance`
    (model, adapter hash, library version, settings, time, input hash).  See ``docs/checking.md``.

    With a retriever, the retrieved reports are the same for every question of a report; in the builder's
    default ``shots_layout="shared"`` they come before the input report and each question's suffix shows
    their answers to that question, so the questions of a report still share one prefix (encoded once).
    With ``shots_layout="inline"`` each (report, question) is its own prompt group (see ``docs/retrieval.md``).

    Example:
        >>> extractor = CancerLLM.from_pretrained().phenotype_extractor(["stage", "grade"])  # doctest: +SKIP
        >>> extractor.extract("... G3 ... pT2 N0 ...").grade                                 # doctest: +SKIP
        ['G3']
    """

    def __init__(
        self,
        model: CancerLLM,
        *,
        phenotypes: Any = None,
        batch_size: int = 32,
        max_new_tokens: int = PHENOTYPE_MAX_NEW_TOKENS,
        chunking: bool = True,
        chunk_overlap: int = 64,
        progress: bool = True,
        instruction: str = PHENOTYPE_INSTRUCTION,
        retriever: Retriever | ShotSelector | str | None = None,
        corpus: Sequence[Any] | None = None,
        k: int = 3,
        max_shot_tokens: int | None = None,
        min_confidence: float | None = None,
    ) -> None:
        if min_confidence is not None and not 0.0 <= float(min_confidence) <= 1.0:
            raise InputError(f"min_confidence must be between 0 and 1, got {min_confidence!r}")
        self.min_confidence = None if min_confidence is None else float(min_confidence)
        self.model = model
        self.questions: list[PhenotypeQuestion] = resolve_phenotypes(phenotypes)
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.chunking = chunking
        self.chunk_overlap = int(chunk_overlap)
        self.progress = progress
        self.instruction = instruction
        self.shots: ShotSelector | None = None
        if retriever is not None or corpus is not None:
            from ..retrieval.shots import shot_selector_for

            self.shots = shot_selector_for(model, retriever, corpus, k=k, max_shot_tokens=max_shot_tokens)

    # ----------------------------------------------------------------------------------- prompts
    def _example(self, context: str, q: PhenotypeQuestion) -> Example:
        return Example(instruction=self.instruction, context=context, question=q.question)

    def _chunks(self, text: str, questions: Sequence[PhenotypeQuestion], where: str,
                shots: Sequence[Sequence[Example]] | None = None) -> list[tuple[str, tuple[int, int] | None]]:
        """The report's chunks and, for each, its characters in ``text`` (None where the tokenizer gives
        no offsets)."""
        builder = self.model.prompt_builder
        tok = self.model.tokenizer
        shots = shots or [()] * len(questions)
        # the prompt around a one-token report ("x"), less that token: what the template and examples take
        budget = self.model.max_input_tokens + 1 - max(
            len(builder.encode(self._example("x", q), s).prompt_ids)
            for q, s in zip(questions, shots, strict=True)
        )
        if budget <= 0 and any(shots):
            raise InputError(
                f"the retrieved examples leave no room for the report within max_input_tokens="
                f"{self.model.max_input_tokens}; lower k or max_shot_tokens, or raise max_input_tokens"
            )
        fast = getattr(tok, "is_fast", False)
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=fast)
        ids = enc["input_ids"]
        if len(ids) <= budget:
            return [(text, (0, len(text)))]
        offsets = enc["offset_mapping"] if fast else None

        def chunk(s: int, e: int) -> tuple[str, tuple[int, int] | None]:
            return tok.decode(ids[s:e]), (offsets[s][0], offsets[e - 1][1]) if offsets else None

        if not self.chunking:
            warn_truncated(where, len(ids), budget, self.model.max_input_tokens)
            return [chunk(0, budget)]
        return [chunk(s, e) for s, e in split_tokens(ids, budget, self.chunk_overlap)]

    def build_groups(
        self, texts: Sequence[str], questions: Sequence[PhenotypeQuestion], names: Sequence[str]
    ) -> tuple[list[PromptGroup], list[int]]:
        """Prompt groups and, for each group, the index of its text.  Without a retriever there is one
        group per chunk holding every question, in order; with one, see :meth:`build_question_groups`."""
        groups, owners, _ = self._build(texts, questions, names)
        return groups, [i for i, _ in owners]

    def build_question_groups(
        self, texts: Sequence[str], questions: Sequence[PhenotypeQuestion], names: Sequence[str]
    ) -> tuple[list[PromptGroup], list[tuple[int, list[int]]]]:
        """Prompt groups and, for each, ``(text index, question indices of its suffixes)``.

        Questions whose prompts share a prefix (the same retrieved examples, or none) share a group, so
        the report is encoded once for them.
        """
        groups, owners, _ = self._build(texts, questions, names)
        return groups, owners

    def _build(
        self, texts: Sequence[str], questions: Sequence[PhenotypeQuestion], names: Sequence[str]
    ) -> tuple[list[PromptGroup], list[tuple[int, list[int]]], list[tuple[int, tuple[int, int] | None]]]:
        """Groups, owners, and each group's ``(chunk index, chunk characters)``."""
        builder = self.model.prompt_builder
        per_text = (self.shots.select(list(texts), [q.question for q in questions]) if self.shots is not None
                    else [[[] for _ in questions] for _ in texts])
        groups: list[PromptGroup] = []
        owners: list[tuple[int, list[int]]] = []
        where: list[tuple[int, tuple[int, int] | None]] = []
        for i, text in enumerate(texts):
            for c, (chunk, span) in enumerate(self._chunks(text, questions, names[i], per_text[i])):
                # questions whose prompts share a prefix share a group: in the shared layout those shown the
                # same example reports (their answers go in each question's suffix), inline the same examples
                shared = builder.shots_layout == "shared"
                by_shots: dict[tuple[Any, ...], list[int]] = {}
                kept: list[list[Example]] = []
                for j, shots in enumerate(per_text[i]):
                    kept.append([s for s in shots if s.context.strip() != chunk.strip()])
                    key = tuple(s.context if shared else id(s) for s in kept[j])
                    by_shots.setdefault(key, []).append(j)
                for js in by_shots.values():
                    first = builder.encode(self._example(chunk, questions[js[0]]), kept[js[0]])
                    sufs = [first.suffix_ids] + [
                        builder.encode(
                            self._example(chunk, questions[j]), kept[j], prefix_ids=first.prefix_ids
                        ).suffix_ids
                        for j in js[1:]
                    ]
                    groups.append(PromptGroup(first.prefix_ids, sufs))
                    owners.append((i, js))
                    where.append((c, span))
        return groups, owners, where

    # ----------------------------------------------------------------------------------- API
    def extract(self, text: str, phenotypes: Any = None, *, min_confidence: float | None = None) -> PhenotypeResult:
        """Phenotypes of one text; fields not asked or answered "Not relevant" are None (tell them apart with
        :meth:`PhenotypeResult.status`); ``min_confidence`` overrides the extractor's for this call."""
        return self._run([check_text(text, "text")], phenotypes, ids=None, progress=False,
                         min_confidence=min_confidence)[0]

    def extract_many(
        self,
        texts: Any,
        *,
        column: str | None = None,
        phenotypes: Any = None,
        batch_size: int | None = None,
        as_dataframe: bool | None = None,
        progress: bool | None = None,
        errors: str = "raise",
        min_confidence: float | None = None,
        details: bool = False,
    ) -> Any:
        """Phenotypes of many texts: a list of strings, a pandas Series, or a DataFrame with ``column``.

        Returns a DataFrame (one row per input, one column per phenotype, index kept) when the input is
        pandas or ``as_dataframe=True``; otherwise a list of :class:`PhenotypeResult`.

        Args:
            errors: what a bad row (None/NaN, not a string, empty or whitespace-only, NUL bytes) does.
                ``"raise"`` (default): :class:`~cancerllm.errors.InputError` naming the row, nothing is
                extracted.  ``"record"``: the row gets a result with every answer None and ``error`` set
                to the reason (a DataFrame gets an ``error`` column, None for good rows) and the other rows
                are extracted as usual; this is the command line's policy.
            min_confidence: overrides the extractor's threshold for review marks for this call.
            details: DataFrame output also gets, per phenotype, ``<name>_confidence``, ``<name>_match``
                (the match kinds of its items) and ``<name>_evidence`` (their ``(start, end)`` spans), and a
                ``needs_review`` column; off by default to keep the simple table simple.

        Raises:
            InputError: a bad row with ``errors="raise"``, an unknown ``errors``, a DataFrame without
                ``column``.
        """
        items, ids = as_text_list(texts, column)
        qs = resolve_phenotypes(phenotypes) if phenotypes is not None else self.questions
        good, checked, bad = split_bad_rows(items, row_names(len(items), ids), check_text, errors)
        done: list[PhenotypeResult] = []
        if checked:
            # with bad rows left out, the good rows keep their original labels ("row 7") in warnings
            keys = ids if ids is not None else [str(i) for i in range(len(items))]
            run_ids = [keys[i] for i in good] if ids is not None or bad else None
            done = self._run(checked, qs, ids=run_ids, progress=self.progress if progress is None else progress,
                             batch_size=batch_size, min_confidence=min_confidence)
            if ids is None:
                for r in done:
                    r.id = None
        failed = [PhenotypeResult(id=ids[i] if ids else None, error=msg) for i, msg in bad.items()]
        results: list[PhenotypeResult] = in_order(len(items), (good, done), (list(bad), failed))
        if as_dataframe is None:
            as_dataframe = ids is not None
        if not as_dataframe:
            return results
        from .._optional import require

        pd = require("pandas", feature="DataFrame output")
        cols = [q.name for q in qs]
        frame = pd.DataFrame([r.as_dict(cols) for r in results], columns=cols)
        if details:
            for c in cols:
                d = [r.details.get(c) for r in results]
                frame[f"{c}_confidence"] = [x.confidence if x else None for x in d]
                frame[f"{c}_match"] = [[i.match for i in x.items] if x else None for x in d]
                frame[f"{c}_evidence"] = [[i.span for i in x.items] if x else None for x in d]
            frame["needs_review"] = [r.needs_review for r in results]
        if errors == "record":  # None (not NaN) for the good rows
            frame["error"] = pd.Series([r.error for r in results], dtype=object)
        if ids is not None:
            frame.index = texts.index
        return frame

    def iter_extract(self, texts: Any, *, chunk_size: int = 256, phenotypes: Any = None, errors: str = "record",
                     min_confidence: float | None = None) -> Iterator[PhenotypeResult]:
        """Results of any iterable of texts (a generator included), yielded in order as they are made:
        ``chunk_size`` texts are read and extracted at a time, so neither the inputs nor the results are ever
        all in memory.  Bad rows follow ``errors`` (``"record"`` by default: a result with ``error`` set).

        Example:
            >>> for r in extractor.iter_extract(row["text"] for row in rows):  # doctest: +SKIP
            ...     sink.write(r.model_dump_json())
        """
        if isinstance(texts, str):
            raise InputError("iter_extract takes an iterable of texts; for a single text use extract()")
        if int(chunk_size) < 1:
            raise InputError(f"chunk_size must be at least 1, got {chunk_size!r}")
        for chunk in chunked(texts, int(chunk_size)):
            yield from self.extract_many(chunk, phenotypes=phenotypes, as_dataframe=False, progress=False,
                                         errors=errors, min_confidence=min_confidence)

    def _settings(self) -> dict[str, Any]:
        b = self.model.prompt_builder
        return {"max_new_tokens": self.max_new_tokens, "chunking": self.chunking, "chunk_overlap": self.chunk_overlap,
                "max_input_tokens": self.model.max_input_tokens, "prompt_style": b.style,
                "answer_prefix": b.answer_prefix, "retrieval": self.shots is not None,
                "min_confidence": self.min_confidence}

    def _run(
        self, texts: list[str], phenotypes: Any, *, ids: list[str] | None, progress: bool, batch_size: int | None = None,
        min_confidence: float | None = None,
    ) -> list[PhenotypeResult]:
        from ._answers import ChunkAnswer, merge_answers, provenance

        questions = resolve_phenotypes(phenotypes) if phenotypes is not None else self.questions
        threshold = self.min_confidence if min_confidence is None else min_confidence
        names = [f"row {ids[i] if ids else i}" for i in range(len(texts))] if len(texts) > 1 else ["text"]
        groups, owners, where = self._build(texts, questions, names)
        settings = GenerationSettings(self.max_new_tokens, ("}",), batch_size or self.batch_size, logprobs=True)
        with task_scope(self.model, "phenotype"):
            outs = self.model.engine.generate(groups, settings, progress=progress)
        tok = self.model.tokenizer
        prefix = self.model.prompt_builder.answer_prefix
        per: list[dict[str, list[ChunkAnswer]]] = [{} for _ in texts]
        for (g, js), (c, span), gens in zip(owners, where, outs, strict=True):
            for j, gen in zip(js, gens, strict=True):
                raw = self.model.prompt_builder.answer_text(tok.decode(gen.ids, skip_special_tokens=True))
                per[g].setdefault(questions[j].name, []).append(
                    ChunkAnswer(c, span, raw, gen.ids, gen.logprobs, len(prefix)))
        run_settings = {**self._settings(), "min_confidence": threshold}
        results = []
        for i, text in enumerate(texts):
            res = PhenotypeResult(id=ids[i] if ids else None, provenance=provenance(self.model, text, run_settings,
                                                                                   task="phenotype"))
            index = EvidenceIndex(text)
            for q in questions:
                chunks = sorted(per[i].get(q.name, []), key=lambda a: a.chunk)
                items, raw, detail = merge_answers(chunks, index=index, tokenizer=tok, single_valued=q.single_valued,
                                                   min_confidence=threshold)
                res.raw[q.name] = raw
                res.details[q.name] = detail
                res.set(q.name, items)
            results.append(res)
        return results
