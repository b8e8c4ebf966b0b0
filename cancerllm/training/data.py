"""Training data: raw documents packed into blocks (pre-training) and prompt/response pairs (instruction tuning).

Pre-training concatenates tokenised documents, each followed by EOS, and cuts the stream into blocks of
``block_size`` tokens: no padding is wasted; :class:`PackedData` reports how full the blocks are and how much
padding the one-document-per-row alternative would have cost.

Instruction tuning encodes each example with the library's one prompt builder
(:meth:`cancerllm.prompts.PromptBuilder.encode`), so training sees exactly the token ids inference asks with;
labels are -100 on the prompt and cover the response *and its EOS*.  Batches are right-padded with a pad
token distinct from EOS (:func:`ensure_pad_token`) and padding is masked by the attention mask and by -100
labels taken from the encoding, never by comparing ids with the pad id - so EOS is always learned.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, InputError
from ..schema import Example

logger = logging.getLogger(__name__)

__all__ = [
    "IGNORE_INDEX",
    "PackedData",
    "SFTCollator",
    "SFTData",
    "encode_examples",
    "ensure_pad_token",
    "pack_documents",
    "read_texts",
    "tokenize_documents",
]

#: label value ignored by the loss
IGNORE_INDEX = -100
_TEXT_SUFFIXES = (".txt", ".text", ".md")
_RECORD_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")


# ============================================================================================= raw text
def read_texts(source: Any, *, text_field: str = "text") -> list[str]:
    """Documents for continued pre-training.

    Args:
        source: a string path or ``Path`` (``.txt``: one document per file; ``.jsonl``/``.json``/``.csv``:
            ``text_field`` of each record; a folder: every such file in it, recursively, in sorted order),
            a list of paths, a list of document strings, or a pandas DataFrame / Series.  In a list a ``Path``
            is always a file or folder; a string is one when it ends with one of those suffixes or names a
            folder, otherwise it is a document.  A file with another suffix is read as plain text.
        text_field: the field / column holding the text.

    Raises:
        InputError: a missing path or column, or no documents at all.
        DataFormatError: a record without a string ``text_field``.
    """
    if hasattr(source, "columns"):  # DataFrame
        if text_field not in source.columns:
            raise InputError(f"column {text_field!r} not in the DataFrame; columns are: "
                             f"{', '.join(map(str, source.columns))}; set data.text_field")
        docs = [str(x) for x in source[text_field].tolist() if isinstance(x, str)]
    elif hasattr(source, "tolist") and hasattr(source, "index"):  # Series
        docs = [str(x) for x in source.tolist() if isinstance(x, str)]
    elif isinstance(source, (str, os.PathLike)):
        docs = _read_path(Path(source), text_field)
    elif isinstance(source, Iterable):
        items = list(source)
        docs = []
        for item in items:
            if isinstance(item, Path) or (isinstance(item, str) and _looks_like_path(item)):
                docs.extend(_read_path(Path(item), text_field))
            elif isinstance(item, str):
                docs.append(item)
            else:
                raise InputError(f"expected document strings or paths, got {type(item).__name__}")
    else:
        raise InputError(f"cannot read documents from {type(source).__name__}")
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise InputError("no non-empty documents to train on")
    return docs


def _looks_like_path(s: str) -> bool:
    return "\n" not in s and len(s) < 4096 and (s.endswith(_TEXT_SUFFIXES + _RECORD_SUFFIXES) or os.path.isdir(s))


def _read_path(path: Path, text_field: str) -> list[str]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _TEXT_SUFFIXES + _RECORD_SUFFIXES)
        if not files:
            raise InputError(f"{path} holds no .txt/.jsonl/.json/.csv files")
        return [d for f in files for d in _read_path(f, text_field)]
    if not path.is_file():
        raise InputError(f"training data {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in _RECORD_SUFFIXES:
        try:
            return [path.read_text(encoding="utf-8")]
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"not valid UTF-8 ({exc.reason})", path=str(path)) from None
    from ..data import read_records

    out = []
    for i, rec in enumerate(read_records(path)):
        value = rec.get(text_field) if isinstance(rec, Mapping) else None
        if not isinstance(value, str):
            raise DataFormatError(
                f"record {i + 1} has no string field {text_field!r} (fields: {', '.join(map(str, rec))}); "
                "set data.text_field", path=str(path),
            )
        out.append(value)
    return out


# ============================================================================================= packing
@dataclass
class PackedData:
    """Pre-training blocks.

    Attributes:
        blocks: ``n_blocks`` lists of ``block_size`` token ids (the last one may be shorter only when the
            whole corpus is shorter than one block).
        n_documents: documents packed.
        n_tokens: tokens in the corpus, EOS separators included.
        n_dropped: tokens of the incomplete last block that were dropped.
    """

    blocks: list[list[int]]
    block_size: int
    n_documents: int
    n_tokens: int
    n_dropped: int
    padded_rows_tokens: int = 0

    @property
    def efficiency(self) -> float:
        """Share of block positions holding real tokens (1.0: no padding at all)."""
        slots = len(self.blocks) * self.block_size
        return sum(len(b) for b in self.blocks) / slots if slots else 0.0

    @property
    def coverage(self) -> float:
        """Share of corpus tokens that made it into a block."""
        return (self.n_tokens - self.n_dropped) / self.n_tokens if self.n_tokens else 0.0

    @property
    def unpacked_efficiency(self) -> float:
        """What one document per row, padded to ``block_size`` (longer ones split), would have achieved."""
        return self.n_tokens / self.padded_rows_tokens if self.padded_rows_tokens else 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "n_documents": self.n_documents,
            "n_tokens": self.n_tokens,
            "n_blocks": len(self.blocks),
            "block_size": self.block_size,
            "packing_efficiency": round(self.efficiency, 4),
            "coverage": round(self.coverage, 4),
            "unpacked_efficiency": round(self.unpacked_efficiency, 4),
        }

    def __len__(self) -> int:
        return len(self.blocks)


def tokenize_documents(docs: Sequence[str], tokenizer: Any, *, batch: int = 256) -> list[list[int]]:
    """Token ids of each document, with BOS first when the tokenizer normally adds one, and EOS last."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("the tokenizer has no EOS token; documents cannot be separated")
    bos = tokenizer.bos_token_id
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    add_bos = bos is not None and bool(probe) and probe[0] == bos
    out: list[list[int]] = []
    for i in range(0, len(docs), batch):
        enc = tokenizer(list(docs[i:i + batch]), add_special_tokens=False)["input_ids"]
        out.extend(([bos] if add_bos else []) + list(ids) + [eos] for ids in enc)
    return out


def pack_documents(documents: Iterable[Sequence[int]], block_size: int) -> PackedData:
    """Concatenate token-id documents (each already ending with EOS) and cut them into ``block_size`` blocks.

    The incomplete tail is dropped (reported in ``n_dropped``), unless the corpus is shorter than one block,
    in which case it becomes a single short block.

    Example:
        >>> p = pack_documents([[5, 6, 2], [7, 2], [8, 9, 9, 2]], block_size=4)
        >>> p.blocks, p.n_dropped, p.efficiency
        ([[5, 6, 2, 7], [2, 8, 9, 9]], 1, 1.0)
    """
    if block_size < 2:
        raise InputError(f"block_size must be at least 2, got {block_size}")
    stream: list[int] = []
    n_docs = 0
    padded = 0
    for doc in documents:
        stream.extend(doc)
        n_docs += 1
        padded += -(-len(doc) // block_size) * block_size
    n = len(stream)
    if n == 0:
        raise InputError("no tokens to pack")
    n_full = n // block_size
    blocks = [stream[i * block_size:(i + 1) * block_size] for i in range(n_full)]
    dropped = n - n_full * block_size
    if not blocks:
        blocks, dropped = [stream], 0
    return PackedData(blocks, block_size, n_docs, n, dropped, padded)


# ============================================================================================= SFT
@dataclass
class SFTData:
    """Encoded instruction examples: ``input_ids`` and ``labels`` per training sequence (-100 on the prompt).

    With ``share_prefix`` a sequence holds one report's prefix once followed by several question+answer
    segments; ``segments`` then gives, per sequence, ``[prefix_len, segment_len, ...]`` (None for plain
    one-example sequences).
    """

    input_ids: list[list[int]]
    labels: list[list[int]]
    n_truncated: int = 0
    n_dropped: int = 0
    stats_extra: dict[str, Any] = field(default_factory=dict)
    segments: list[list[int] | None] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    def items(self) -> list[tuple[list[int], list[int]] | tuple[list[int], list[int], list[int]]]:
        """The training items: ``(input_ids, labels)`` or, for a shared-prefix sequence,
        ``(input_ids, labels, segments)``; what :class:`SFTCollator` takes."""
        if self.segments is None:
            return list(zip(self.input_ids, self.labels))
        return [(i, lab) if seg is None else (i, lab, seg)
                for i, lab, seg in zip(self.input_ids, self.labels, self.segments)]

    def stats(self) -> dict[str, Any]:
        n_tok = sum(len(x) for x in self.input_ids)
        n_resp = sum(sum(1 for t in lab if t != IGNORE_INDEX) for lab in self.labels)
        return {
            "n_sequences": len(self),
            "n_tokens": n_tok,
            "n_response_tokens": n_resp,
            "response_share": round(n_resp / n_tok, 4) if n_tok else 0.0,
            "n_truncated": self.n_truncated,
            "n_dropped": self.n_dropped,
            **self.stats_extra,
        }


ShotsFn = Callable[[Example], Sequence[Example]]


def encode_examples(
    examples: Sequence[Example],
    builder: Any,
    *,
    max_length: int,
    shots: ShotsFn | Sequence[Sequence[Example]] | None = None,
    share_prefix: bool = False,
) -> SFTData:
    """Encode examples for instruction tuning through ``builder.encode(example, shots, with_response=True)``.

    ``shots`` gives the retrieved examples of each prompt: a function ``example -> examples`` or one list per
    example (e.g. ``ShotSelector.for_examples(examples)``).

    A sequence longer than ``max_length`` loses the end of its prefix (the end of the report text, as at
    inference), keeping the question, the response and EOS; an example whose question and response alone do
    not fit is dropped with a warning.

    ``share_prefix=True`` packs the examples whose prompts share a prefix (the same report asked several
    questions) into one sequence: the prefix once, then each question+answer segment.  :class:`SFTCollator`
    gives every segment the positions it has on its own and an attention mask that lets it see the prefix
    and itself only, so each example's loss is what it would be alone (tested), while the report is encoded
    once instead of once per question.  The prefix is cut to ``max_length`` minus the longest segment of
    its group, so every example still fits ``max_length`` on its own.

    Raises:
        InputError: an example without a response, or nothing left to train on.
    """
    truncated = dropped = n_shots = 0
    if shots is not None and not callable(shots) and len(shots) != len(examples):
        raise InputError(f"got {len(shots)} lists of shots for {len(examples)} examples")
    encoded: list[tuple[list[int], list[int], list[int]]] = []  # (prefix, suffix, response)
    for i, ex in enumerate(examples):
        if not isinstance(ex, Example):
            raise InputError(f"example {i}: expected an Example, got {type(ex).__name__}")
        if not ex.response.strip():
            raise InputError(f"example {ex.id or i}: empty response; instruction tuning needs the expected answer")
        if shots is None:
            ex_shots: list[Example] = []
        else:
            ex_shots = list(shots(ex)) if callable(shots) else list(shots[i])
        n_shots += len(ex_shots)
        enc = builder.encode(ex, ex_shots, with_response=True)
        tail = len(enc.suffix_ids) + len(enc.response_ids)
        if tail >= max_length:
            dropped += 1
            continue
        encoded.append((list(enc.prefix_ids), list(enc.suffix_ids), list(enc.response_ids)))
    if dropped:
        warnings.warn(f"{dropped} example(s) dropped: question + response longer than data.max_length={max_length}",
                      stacklevel=2)
    if not encoded:
        raise InputError("no examples left to train on")

    input_ids: list[list[int]] = []
    labels: list[list[int]] = []
    segments: list[list[int] | None] = []
    if share_prefix:
        groups: dict[tuple[int, ...], list[tuple[list[int], list[int]]]] = {}
        for prefix, suffix, response in encoded:
            groups.setdefault(tuple(prefix), []).append((suffix, response))
        for prefix_t, segs in groups.items():
            longest = max(len(s) + len(r) for s, r in segs)
            prefix = list(prefix_t)
            if len(prefix) + longest > max_length:
                prefix = prefix[: max_length - longest]
                truncated += len(segs)
            ids, lab, lens = list(prefix), [IGNORE_INDEX] * len(prefix), [len(prefix)]
            for suffix, response in segs:
                ids += suffix + response
                lab += [IGNORE_INDEX] * len(suffix) + response
                lens.append(len(suffix) + len(response))
            input_ids.append(ids)
            labels.append(lab)
            segments.append(lens if len(segs) > 1 else None)
    else:
        for prefix, suffix, response in encoded:
            tail = len(suffix) + len(response)
            if len(prefix) + tail > max_length:
                prefix = prefix[: max_length - tail]
                truncated += 1
            input_ids.append(prefix + suffix + response)
            labels.append([IGNORE_INDEX] * (len(prefix) + len(suffix)) + response)
            segments.append(None)
    if truncated:
        logger.info("%d example(s) truncated to max_length=%d (end of the report text cut)", truncated, max_length)
    extra = {"n_examples": len(encoded), "shots_per_example": round(n_shots / max(1, len(examples)), 3)}
    return SFTData(input_ids, labels, truncated, dropped, extra,
                   segments if any(s is not None for s in segments) else None)


class SFTCollator:
    """Right-pads a list of training items into tensors.

    Items are ``(input_ids, labels)`` or, for shared-prefix sequences, ``(input_ids, labels, segments)``
    with ``segments = [prefix_len, segment_len, ...]``.  Padding positions get ``pad_id`` as input, 0 in the
    attention mask and -100 as label; labels come from the encoding, so an EOS that equals the pad id would
    still be learned.

    When a batch holds a shared-prefix item, the batch also gets ``position_ids`` (each segment continues
    from the end of the prefix) and ``segment_mask``, a ``[batch, 1, length, length]`` boolean mask (True =
    may attend): causal within the prefix and within each segment, and each segment sees the prefix.
    """

    def __init__(self, pad_id: int, *, pad_to_multiple_of: int | None = None) -> None:
        self.pad_id = int(pad_id)
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, items: Sequence[Sequence[Any]]) -> dict[str, Any]:
        import torch

        n = max(len(it[0]) for it in items)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            n = -(-n // m) * m
        ids_t = torch.full((len(items), n), self.pad_id, dtype=torch.long)
        lab_t = torch.full((len(items), n), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(items), n), dtype=torch.long)
        for r, it in enumerate(items):
            ids, lab = it[0], it[1]
            ids_t[r, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            lab_t[r, :len(lab)] = torch.tensor(lab, dtype=torch.long)
            mask[r, :len(ids)] = 1
        out = {"input_ids": ids_t, "attention_mask": mask, "labels": lab_t}
        if any(len(it) > 2 and it[2] for it in items):
            pos = torch.zeros((len(items), n), dtype=torch.long)
            seg_mask = torch.zeros((len(items), 1, n, n), dtype=torch.bool)
            causal = torch.ones((n, n), dtype=torch.bool).tril()
            for r, it in enumerate(items):
                length = len(it[0])
                lens = list(it[2]) if len(it) > 2 and it[2] else [length]
                p = lens[0]
                pos[r, :p] = torch.arange(p)
                seg_mask[r, 0, :p, :p] = causal[:p, :p]
                start = p
                for seg in lens[1:]:
                    end = start + seg
                    pos[r, start:end] = torch.arange(p, p + seg)
                    seg_mask[r, 0, start:end, :p] = True
                    seg_mask[r, 0, start:end, start:end] = causal[:seg, :seg]
                    start = end
                if start != length:
                    raise InputError(f"segments {lens} do not add up to the sequence length {length}")
                idx = torch.arange(length, n)
                seg_mask[r, 0, idx, idx] = True  # padding attends to itself only (no all-masked rows)
            out["position_ids"] = pos
            out["segment_mask"] = seg_mask
        return out


# ============================================================================================= pad token
def ensure_pad_token(tokenizer: Any, model: Any = None) -> int:
    """Give ``tokenizer`` a pad token distinct from EOS for training (the library's one rule,
    :func:`cancerllm._loading.ensure_pad_token` with ``training=True``).

    Returns:
        The pad token id.
    """
    from .._loading import ensure_pad_token as _ensure

    return _ensure(tokenizer, model, training=True)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON atomically."""
    p = Path(path)
    tmp = p.with_name(p.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2), encoding="utf-8")
    os.replace(tmp, p)
