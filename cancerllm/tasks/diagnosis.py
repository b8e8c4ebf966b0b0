"""``DiagnosisGenerator``: a cancer diagnosis in words from a clinical note or report."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .._constants import DIAGNOSIS_MAX_NEW_TOKENS
from .._task_adapters import task_scope
from ..engine.base import GenerationSettings, PromptGroup
from ..errors import InputError
from ..schema import DIAGNOSIS_INSTRUCTION, ClinicalNote, Diagnosis, Example
from ._common import as_text_list, check_text, chunked, in_order, row_names, split_bad_rows, warn_truncated

if TYPE_CHECKING:  # pragma: no cover
    from ..model import CancerLLM
    from ..retrieval.base import Retriever
    from ..retrieval.shots import ShotSelector

__all__ = ["DiagnosisGenerator", "clean_diagnosis"]


def clean_diagnosis(raw: str) -> str:
    """The answer part of a generated diagnosis: braces removed, cut at a following ``###`` section."""
    text = raw.split("###", 1)[0].strip()
    if text.startswith("{") and "}" in text:
        text = text[1 : text.index("}")]
    return " ".join(text.strip().strip("{}").split())


class DiagnosisGenerator:
    """Generate diagnoses with a :class:`~cancerllm.model.CancerLLM`.

    Args:
        model: the loaded model.
        max_new_tokens: the paper's 500 by default.
        batch_size: notes decoded together.
        progress: show a progress bar in ``generate_many``.
        retriever: retrieval-augmented prompting (the paper's retrieval-based CancerLLM): a
            :class:`~cancerllm.retrieval.Retriever`, a retriever name, or a ready
            :class:`~cancerllm.retrieval.ShotSelector`; with ``corpus`` and no retriever, the offline default.
        corpus: the training examples (note context + diagnosis response) to retrieve from.
        k: retrieved examples per prompt, most similar first; the input itself is never one of them.
        max_shot_tokens: note tokens shown per retrieved example (default ``max_input_tokens // (2 * k)``).
        check_codes: when a diagnosis ends with an ICD-10-CM code (CancerLLM-Smol v2 and later write one),
            check it against the diagnosis's own words and record the result in
            :attr:`~cancerllm.schema.Diagnosis.code_consistent` (a contradiction sets ``needs_review``).
        icd_mapper: the :class:`~cancerllm.benchmark.IcdMapper` for that check (default: the shipped
            ICD-10-CM neoplasm list).

    Inputs longer than the model's input limit are truncated with a :class:`TruncationWarning`.
    """

    def __init__(
        self,
        model: CancerLLM,
        *,
        max_new_tokens: int = DIAGNOSIS_MAX_NEW_TOKENS,
        batch_size: int = 8,
        progress: bool = True,
        instruction: str = DIAGNOSIS_INSTRUCTION,
        retriever: Retriever | ShotSelector | str | None = None,
        corpus: Sequence[Any] | None = None,
        k: int = 3,
        max_shot_tokens: int | None = None,
        check_codes: bool = True,
        icd_mapper: Any = None,
    ) -> None:
        self.model = model
        self.check_codes = bool(check_codes)
        self._icd_mapper = icd_mapper
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.progress = progress
        self.instruction = instruction
        self.shots: ShotSelector | None = None
        if retriever is not None or corpus is not None:
            from ..retrieval.shots import shot_selector_for

            self.shots = shot_selector_for(model, retriever, corpus, k=k, max_shot_tokens=max_shot_tokens)

    @staticmethod
    def _context(note: ClinicalNote | str, where: str) -> str:
        if isinstance(note, ClinicalNote):
            if note.is_empty():
                raise InputError(f"{where}: the clinical note has no text in any section")
            return note.to_context()
        return check_text(note, where)

    def _group(self, context: str, where: str, shots: Sequence[Example] = ()) -> PromptGroup:
        builder = self.model.prompt_builder
        tok = self.model.tokenizer
        shots = [s for s in shots if s.context.strip() != context.strip()]  # never the input itself
        empty = builder.encode(Example(instruction=self.instruction, context="x"), shots)
        budget = self.model.max_input_tokens - len(empty.prompt_ids) + 1
        if budget <= 0 and shots:
            raise InputError(
                f"the retrieved examples leave no room for the note within max_input_tokens="
                f"{self.model.max_input_tokens}; lower k or max_shot_tokens, or raise max_input_tokens"
            )
        ids = tok(context, add_special_tokens=False)["input_ids"]
        if len(ids) > budget:
            warn_truncated(where, len(ids), budget, self.model.max_input_tokens)
            context = tok.decode(ids[:budget])
        enc = builder.encode(Example(instruction=self.instruction, context=context), shots)
        return PromptGroup(enc.prefix_ids, [enc.suffix_ids])

    def generate(self, note: ClinicalNote | str) -> Diagnosis:
        """The diagnosis of one note (a :class:`ClinicalNote` or plain text)."""
        return self._run([self._context(note, "note")], None, progress=False)[0]

    def generate_many(self, notes: Any, *, column: str | None = None, as_dataframe: bool | None = None,
                      progress: bool | None = None, errors: str = "raise") -> Any:
        """Diagnoses of many notes (list, Series, or DataFrame + ``column``); a DataFrame with the columns
        ``diagnosis`` and ``code_consistent`` (see :class:`Diagnosis`) for pandas input, else a list of
        :class:`Diagnosis`.

        Args:
            errors: what a bad note (None/NaN, not a string or :class:`ClinicalNote`, empty, NUL bytes)
                does.  ``"raise"`` (default): :class:`~cancerllm.errors.InputError` naming the row, nothing
                is generated.  ``"record"``: the note gets a :class:`Diagnosis` with empty ``text`` and
                ``error`` set (a DataFrame gets an ``error`` column, None for good rows), the others are
                generated as usual; this is the command line's policy.

        Raises:
            InputError: a bad note with ``errors="raise"``, an unknown ``errors``, a DataFrame without
                ``column``.
        """
        items, ids = as_text_list(notes, column)
        good, ctx, bad = split_bad_rows(items, row_names(len(items), ids), self._context, errors)
        done: list[Diagnosis] = []
        if ctx:
            # with bad rows left out, the good rows keep their original labels ("row 7") in warnings
            keys = ids if ids is not None else [str(i) for i in range(len(items))]
            done = self._run(ctx, [keys[i] for i in good] if ids is not None or bad else None,
                             progress=self.progress if progress is None else progress)
            if ids is None:
                for d in done:
                    d.id = None
        failed = [Diagnosis(text="", id=ids[i] if ids else None, error=msg) for i, msg in bad.items()]
        results: list[Diagnosis] = in_order(len(items), (good, done), (list(bad), failed))
        if as_dataframe is None:
            as_dataframe = ids is not None
        if not as_dataframe:
            return results
        from .._optional import require

        pd = require("pandas", feature="DataFrame output")
        data: dict[str, Any] = {"diagnosis": [r.text for r in results],
                                "code_consistent": pd.Series([r.code_consistent for r in results], dtype=object)}
        if errors == "record":
            data["error"] = pd.Series([r.error for r in results], dtype=object)  # None (not NaN) for good rows
        frame = pd.DataFrame(data)
        if ids is not None:
            frame.index = notes.index
        return frame

    def iter_generate(self, notes: Any, *, chunk_size: int = 64, errors: str = "record") -> Iterator[Diagnosis]:
        """Diagnoses of any iterable of notes (a generator included), yielded in order, ``chunk_size`` at a
        time (inputs and results never all in memory); bad rows follow ``errors`` ("record" by default)."""
        if isinstance(notes, str):
            raise InputError("iter_generate takes an iterable of notes; for a single note use generate()")
        if int(chunk_size) < 1:
            raise InputError(f"chunk_size must be at least 1, got {chunk_size!r}")
        for chunk in chunked(notes, int(chunk_size)):
            yield from self.generate_many(chunk, as_dataframe=False, progress=False, errors=errors)

    def _run(self, contexts: list[str], ids: list[str] | None, *, progress: bool) -> list[Diagnosis]:
        names = [f"row {ids[i] if ids else i}" for i in range(len(contexts))] if len(contexts) > 1 else ["note"]
        shots: list[list[Example]] = [[] for _ in contexts]
        if self.shots is not None:
            shots = [row[0] for row in self.shots.select(contexts)]
        groups = [self._group(c, names[i], shots[i]) for i, c in enumerate(contexts)]
        settings = GenerationSettings(self.max_new_tokens, (), self.batch_size)
        with task_scope(self.model, "diagnosis"):
            outs = self.model.engine.generate_groups(groups, settings, progress=progress)
        tok = self.model.tokenizer
        res = []
        for i, seqs in enumerate(outs):
            raw = tok.decode(seqs[0], skip_special_tokens=True)
            d = Diagnosis(text=clean_diagnosis(raw), raw=raw, id=ids[i] if ids else None)
            if self.check_codes and d.icd_10:
                d.code_consistent = self._mapper().consistent(d.description, d.icd_10)
            res.append(d)
        return res

    def _mapper(self) -> Any:
        if self._icd_mapper is None:
            self._icd_mapper = _default_mapper()
        return self._icd_mapper


@functools.lru_cache(maxsize=1)
def _default_mapper() -> Any:
    from ..benchmark.icd import IcdMapper

    return IcdMapper.default()
