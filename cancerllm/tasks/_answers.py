"""From generations to detailed answers: confidence from token log-probabilities, evidence spans, one value
for single-valued phenotypes of a chunked report, review flags, provenance.

Confidence is the model's probability of what it generated: for an answer, the product of the probabilities
of all its generated tokens (closing brace / EOS included), i.e. the probability greedy decoding gave that
exact answer; for an item, the product over the tokens that spell it.  ``docs/checking.md`` reports how well
these are calibrated on the validation reports.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..evidence import EvidenceIndex
from ..prompts import parse_answer
from ..schema import AnswerDetail, ItemDetail, Provenance

__all__ = ["ChunkAnswer", "merge_answers", "provenance"]


@dataclass
class ChunkAnswer:
    """What one chunk of a report answered to one question."""

    chunk: int
    within: tuple[int, int] | None  # the chunk's characters in the whole report
    raw: str  # answer prefix + generated text
    ids: list[int]
    logprobs: list[float] | None
    prefix_len: int  # characters of ``raw`` that were in the prompt (the answer prefix)


def _token_ends(tokenizer: Any, ans: ChunkAnswer) -> list[int]:
    """The end (in ``ans.raw``) of each generated token's text."""
    ends, prev = [], ans.prefix_len
    for i in range(len(ans.ids)):
        prev = max(prev, ans.prefix_len + len(tokenizer.decode(ans.ids[: i + 1], skip_special_tokens=True)))
        ends.append(prev)
    return ends


def _item_confidence(item: str, ans: ChunkAnswer, ends: list[int] | None, whole: float | None) -> float | None:
    if ans.logprobs is None or ends is None:
        return whole
    m = re.search(r"\s+".join(map(re.escape, item.split())), ans.raw, re.I)
    if m is None:
        return whole
    a, b = m.span()
    lp = [lp for i, lp in enumerate(ans.logprobs) if ends[i] > a and (ends[i - 1] if i else ans.prefix_len) < b]
    return math.exp(sum(lp)) if lp else whole


def _chunk_items(ans: ChunkAnswer, index: EvidenceIndex, tokenizer: Any) -> tuple[list[ItemDetail], float | None]:
    whole = math.exp(sum(ans.logprobs)) if ans.logprobs else None
    ends = _token_ends(tokenizer, ans) if ans.logprobs is not None else None
    items = []
    for value in parse_answer(ans.raw):
        span = index.find(value, within=ans.within)
        items.append(ItemDetail(value=value, raw=ans.raw, span=(span.start, span.end) if span.found else None,
                                match=span.match, confidence=_item_confidence(value, ans, ends, whole),
                                chunk=ans.chunk))
    return items, whole


def merge_answers(answers: Sequence[ChunkAnswer], *, index: EvidenceIndex, tokenizer: Any, single_valued: bool,
                  min_confidence: float | None) -> tuple[list[str] | None, str, AnswerDetail]:
    """The answer to one question about one report from what each of its chunks answered.

    Returns ``(items or None, raw text, detail)``.  Items of several chunks are united (first spelling kept),
    except for single-valued phenotypes, where the chunk whose items have evidence, then the higher
    confidence, wins and the other chunks' items become ``alternatives``.
    """
    per_chunk = [(ans, *_chunk_items(ans, index, tokenizer)) for ans in answers]
    raw = " | ".join(ans.raw for ans in answers)
    answered = [(ans, items, conf) for ans, items, conf in per_chunk if items]
    if not answered:
        confs = [conf for _, _, conf in per_chunk]
        conf = None if any(c is None for c in confs) else min(confs)  # "not relevant" only as sure as the least
        detail = AnswerDetail(status="not_relevant", confidence=conf,
                              needs_review=_low(conf, min_confidence))
        return None, raw, detail
    alternatives: list[ItemDetail] = []
    if single_valued and len(answered) > 1:
        def score(entry: tuple[ChunkAnswer, list[ItemDetail], float | None]) -> tuple[float, float]:
            _, items, conf = entry
            return (sum(i.match != "not_found" for i in items) / len(items), conf if conf is not None else 0.0)

        best = max(answered, key=score)  # max keeps the first (earliest chunk) of equal scores
        chosen, conf = list(best[1]), best[2]
        seen = {i.value.lower() for i in chosen}
        for _, items, _ in answered:
            for it in items:
                if it.value.lower() not in seen:
                    seen.add(it.value.lower())
                    alternatives.append(it)
    else:
        chosen, seen = [], set()
        for _, items, _ in answered:
            for it in items:
                if it.value.lower() not in seen:
                    seen.add(it.value.lower())
                    chosen.append(it)
        confs = [c for _, _, c in answered]
        conf = None if any(c is None for c in confs) else max(confs)
    for it in chosen + alternatives:
        it.needs_review = it.match == "not_found" or _low(it.confidence, min_confidence)
    detail = AnswerDetail(status="answered", items=chosen, alternatives=alternatives, confidence=conf,
                          needs_review=_low(conf, min_confidence) or any(i.needs_review for i in chosen))
    return [i.value for i in chosen], raw, detail


def _low(conf: float | None, threshold: float | None) -> bool:
    return threshold is not None and conf is not None and conf < threshold


def provenance(model: Any, text: str, settings: dict[str, Any], *, created: str | None = None,
               task: str | None = None) -> Provenance:
    """The audit trail of one result: model, adapter hash (of the adapter ``task`` ran with), library version,
    settings, time, input hash."""
    from .. import __version__

    per_task = getattr(model, "adapter_sha256_for", None)
    return Provenance(
        model=getattr(model, "base_model", None),
        adapter_sha256=per_task(task) if callable(per_task) else getattr(model, "adapter_sha256", None),
        library_version=__version__,
        settings=settings,
        created=created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        input_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )
