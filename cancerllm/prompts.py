"""The one prompt builder (training, retrieval and inference all use it) and the answer parser.

A prompt has two parts so that a report can be encoded once and reused for several questions:

* ``prefix``: template header, instruction, retrieved examples and the report text;
* ``suffix``: the question (if any) and the response header.

:meth:`PromptBuilder.encode` tokenises the two parts (and the response, for training) separately and
concatenates the ids; every code path in the library encodes prompts this way, so a model is trained on
exactly the token ids it is later asked with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InputError
from .schema import NOT_RELEVANT, Example

__all__ = [
    "ALPACA_TEMPLATE",
    "EncodedPrompt",
    "PromptBuilder",
    "PromptParts",
    "format_answer",
    "is_not_relevant",
    "parse_answer",
]

#: The instruction/context/response template of the official CancerLLM code (Alpaca style).
ALPACA_TEMPLATE = (
    "Below is an instruction that describes a task, paired with an input that provides further context.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{context}\n\n### Response:\n"
)
_ALPACA_NO_CONTEXT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)
_SENTINEL = "\u241fCANCERLLM_SPLIT\u241f"


# --------------------------------------------------------------------------------------------- answers
def format_answer(items: Iterable[str] | str | None) -> str:
    """Serialise an answer as a set: ``["pr", "her2"]`` -> ``"{pr, her2}"``; empty/None -> ``"Not relevant"``.

    Example:
        >>> format_answer(["pr", "her2", "er"])
        '{pr, her2, er}'
        >>> format_answer(None)
        'Not relevant'
    """
    if items is None:
        return NOT_RELEVANT
    if isinstance(items, str):
        items = [items]
    clean: list[str] = []
    seen: set[str] = set()
    for it in items:
        s = " ".join(str(it).replace(",", " ").replace("{", "").replace("}", "").split())
        if s and s.lower() not in seen:
            seen.add(s.lower())
            clean.append(s)
    if not clean:
        return NOT_RELEVANT
    return "{" + ", ".join(clean) + "}"


_NOT_RELEVANT_RE = re.compile(r"^\W*(not\s+relevant|n/?a|none|not\s+mentioned|not\s+applicable)\W*$", re.I)
_PREFIX_RE = re.compile(r"^\s*(###\s*)?(response|answer)\s*:\s*", re.I)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"


def is_not_relevant(text: str | None) -> bool:
    """True for "Not relevant" (any case, braces, punctuation), "N/A", "none", or an empty answer."""
    if text is None:
        return True
    t = text.strip().strip("{}[]()").strip()
    return not t or bool(_NOT_RELEVANT_RE.match(t))


def parse_answer(text: str | None, *, lowercase: bool = False) -> list[str]:
    """Turn any model output back into a deduplicated list of answer items.

    Handles braces or none, commas or semicolons, "Not relevant" (-> ``[]``), repeated items such as the
    paper's ``"iib,iib,iib"``, quotes, stray whitespace, a leading ``Response:`` and trailing chatter after
    the answer set (only the first ``{...}`` or, without braces, the first line counts).  Duplicates are
    detected case-insensitively; the first spelling is kept unless ``lowercase``.

    Example:
        >>> parse_answer("{pr, her2, er}")
        ['pr', 'her2', 'er']
        >>> parse_answer("iib,iib, IIB ")
        ['iib']
        >>> parse_answer("Not relevant")
        []
    """
    if text is None:
        return []
    t = _PREFIX_RE.sub("", str(text)).strip()
    if "{" in t:
        start = t.index("{") + 1
        end = t.find("}", start)
        t = t[start:] if end < 0 else t[start:end]
    elif "}" in t:
        t = t[: t.index("}")]
    else:
        lines = [ln for ln in t.splitlines() if ln.strip()]
        t = lines[0] if lines else ""
    if is_not_relevant(t):
        return []
    out: list[str] = []
    seen: set[str] = set()
    for part in re.split(r"[,;\n]", t):
        item = " ".join(part.strip().strip(_QUOTES).strip().split())
        item = item.strip(_QUOTES + "[]()").strip()
        if not item or is_not_relevant(item):
            continue
        if lowercase:
            item = item.lower()
        key = item.lower()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


# --------------------------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class PromptParts:
    """A prompt split for context reuse: ``prefix + suffix`` is the whole prompt."""

    prefix: str
    suffix: str

    @property
    def text(self) -> str:
        """The whole prompt: ``prefix + suffix``."""
        return self.prefix + self.suffix


@dataclass
class EncodedPrompt:
    """Token ids of a prompt (``prefix_ids + suffix_ids``) and, for training, of the response (EOS included)."""

    prefix_ids: list[int]
    suffix_ids: list[int]
    response_ids: list[int] = field(default_factory=list)

    @property
    def prompt_ids(self) -> list[int]:
        """The prompt's token ids: ``prefix_ids + suffix_ids`` (what inference feeds the model)."""
        return self.prefix_ids + self.suffix_ids

    @property
    def input_ids(self) -> list[int]:
        """Prompt and response ids, for training: ``prefix_ids + suffix_ids + response_ids``."""
        return self.prefix_ids + self.suffix_ids + self.response_ids

    @property
    def labels(self) -> list[int]:
        """Loss only on the response: prompt positions are -100."""
        return [-100] * (len(self.prefix_ids) + len(self.suffix_ids)) + list(self.response_ids)


def _shot_block(shots: Sequence[Example], header: str) -> str:
    if not shots:
        return ""
    lines = [header]
    for i, s in enumerate(shots, 1):
        lines.append(f"Example {i}:\nInput: {s.full_context}\nOutput: {s.response}")
    return "\n\n".join(lines) + "\n\n"


class PromptBuilder:
    """Builds every prompt of the library, for training and inference alike.

    Args:
        style: ``"alpaca"`` (the official instruction/context/response template), ``"chat"`` (the tokenizer's
            chat template: instruction as the system message, input as the user message) or ``"auto"``
            (chat when the tokenizer has a chat template, else alpaca).
        tokenizer: needed for ``"chat"``/``"auto"`` and for :meth:`encode`.
        shots_header: heading placed before retrieved examples.
        answer_prefix: text that opens every answer to a question (phenotype prompts only), placed at the end
            of the prompt; ``"{"`` makes even an untuned model answer with a set, and ends generation early
            at ``"}"``. The response of a training example loses this prefix (it is already in the prompt);
            :meth:`answer_text` puts it back before parsing. Empty (the official format) by default.

    Example:
        >>> from cancerllm.schema import Example, Phenotype, PHENOTYPE_INSTRUCTION
        >>> ex = Example(instruction=PHENOTYPE_INSTRUCTION, context="Tumor 2.5 cm.",
        ...              question=Phenotype.TUMOR_SIZE.question)
        >>> parts = PromptBuilder().parts(ex)
        >>> parts.prefix.endswith("In the text: Tumor 2.5 cm.")
        True
        >>> parts.suffix
        ' What is the tumor size in the given context?\\n\\n### Response:\\n'
    """

    def __init__(
        self,
        style: Literal["alpaca", "chat", "auto"] = "alpaca",
        tokenizer: Any = None,
        *,
        shots_header: str = "Here are similar examples with their answers:",
        answer_prefix: str = "",
    ) -> None:
        if style not in ("alpaca", "chat", "auto"):
            raise InputError(f"unknown prompt style {style!r}; use 'alpaca', 'chat' or 'auto'")
        if style == "auto":
            style = "chat" if getattr(tokenizer, "chat_template", None) else "alpaca"
        if style == "chat" and not getattr(tokenizer, "chat_template", None):
            raise InputError("prompt style 'chat' needs a tokenizer with a chat_template; use style='alpaca'")
        self.style = style
        self.tokenizer = tokenizer
        self.shots_header = shots_header
        self.answer_prefix = answer_prefix

    def to_config(self) -> dict[str, Any]:
        """The builder's settings as saved in ``cancerllm_config.json`` (``style``, ``shots_header``, ``answer_prefix``)."""
        return {"style": self.style, "shots_header": self.shots_header, "answer_prefix": self.answer_prefix}

    def answer_text(self, generated: str, example_or_question: Example | str | None = "question") -> str:
        """The full answer text of a generation: ``answer_prefix + generated`` for question prompts."""
        is_question = example_or_question is not None and (
            not isinstance(example_or_question, Example) or example_or_question.question is not None
        )
        return (self.answer_prefix + generated) if is_question else generated

    def parse(self, generated: str) -> list[str]:
        """Items of a generated answer to a question (answer prefix restored, then :func:`parse_answer`)."""
        return parse_answer(self.answer_text(generated))

    # -- text -------------------------------------------------------------------------------------
    def _input_text(self, example: Example, shots: Sequence[Example], question: str) -> str:
        body = example.context
        if example.question is not None:
            body = f"In the text: {example.context}{question}"
        return _shot_block(shots, self.shots_header) + body

    def parts(self, example: Example, shots: Sequence[Example] = ()) -> PromptParts:
        """Split the prompt of ``example`` into a reusable prefix (through the report text) and a suffix."""
        if not isinstance(example, Example):
            raise InputError(f"PromptBuilder expects an Example, got {type(example).__name__}")
        for s in shots:
            if s.full_context == example.full_context and s.context == example.context:
                raise InputError("a retrieved example is the input itself; exclude it from the shots")
        q_tail = f" {example.question}" if example.question is not None else ""
        if self.style == "alpaca":
            if not example.context and not shots and example.question is None:
                return PromptParts(_ALPACA_NO_CONTEXT.format(instruction=example.instruction), "")
            full = ALPACA_TEMPLATE.format(
                instruction=example.instruction, context=self._input_text(example, shots, _SENTINEL)
            )
        else:
            messages = [
                {"role": "system", "content": example.instruction},
                {"role": "user", "content": self._input_text(example, shots, _SENTINEL)},
            ]
            full = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if example.question is None:
            # no question: split after the input so that the response header is the suffix
            full = full.replace(_SENTINEL, "")
            marker = example.context
            idx = full.rfind(marker) + len(marker) if marker else len(full)
            return PromptParts(full[:idx], full[idx:])
        prefix, _, rest = full.partition(_SENTINEL)
        return PromptParts(prefix, q_tail + rest + self.answer_prefix)

    def render(self, example: Example, shots: Sequence[Example] = (), *, with_response: bool = False) -> str:
        """The whole prompt as text (plus the response when ``with_response``)."""
        text = self.parts(example, shots).text
        if not with_response:
            return text
        response = example.response
        if example.question is not None and self.answer_prefix and response.startswith(self.answer_prefix):
            response = response[len(self.answer_prefix):]
        return text + response

    # -- tokens -----------------------------------------------------------------------------------
    def _ids(self, text: str) -> list[int]:
        if not text:
            return []
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def bos_ids(self) -> list[int]:
        """``[bos_token_id]`` when the tokenizer itself adds BOS and the style is not ``chat``, else ``[]``."""
        tok = self.tokenizer
        bos = getattr(tok, "bos_token_id", None)
        if bos is None or self.style == "chat":
            return []
        # only if the tokenizer itself would add BOS
        probe = tok("a", add_special_tokens=True)["input_ids"]
        return [bos] if probe and probe[0] == bos else []

    def encode(
        self,
        example: Example,
        shots: Sequence[Example] = (),
        *,
        with_response: bool = False,
        eos: bool = True,
        prefix_ids: list[int] | None = None,
    ) -> EncodedPrompt:
        """Token ids of the prompt parts (and of ``example.response`` + EOS when ``with_response``).

        ``prefix_ids`` may be passed to reuse an already encoded prefix.
        """
        if self.tokenizer is None:
            raise InputError("PromptBuilder.encode needs a tokenizer; pass tokenizer=... when constructing it")
        parts = self.parts(example, shots)
        pre = prefix_ids if prefix_ids is not None else self.bos_ids() + self._ids(parts.prefix)
        enc = EncodedPrompt(prefix_ids=list(pre), suffix_ids=self._ids(parts.suffix))
        if with_response:
            response = example.response
            if example.question is not None and self.answer_prefix and response.startswith(self.answer_prefix):
                response = response[len(self.answer_prefix):]
            resp = self._ids(response)
            eos_id = getattr(self.tokenizer, "eos_token_id", None)
            if eos and eos_id is not None:
                resp.append(eos_id)
            enc.response_ids = resp
        return enc
