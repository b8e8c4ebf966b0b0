"""The one prompt builder (training, retrieval and inference all use it) and the answer parser.

A prompt has two parts so that a report can be encoded once and reused for several questions:

* ``prefix``: template header, instruction, retrieved examples and the report text;
* ``suffix``: the question (if any) and the response header.

:meth:`PromptBuilder.encode` renders the whole prompt once, encodes it once and cuts the ids where the prefix
text ends (and, for training, encodes prompt + response together), checking that the cut is exact; every code
path in the library (training, inference, KV reuse, shared-prefix packing) encodes prompts this way, so a model
is trained on exactly the token ids it is later asked with, whatever its tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InputError, TokenizationError
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
_SENTINEL = "\u241fCANCERLLM_SPLIT\u241f"  # where the prefix ends; never left in a prompt


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
    """Token ids of a prompt (``prefix_ids + suffix_ids``) and, for training, of the response (EOS included).

    ``prefix_ids + suffix_ids`` are the ids of the whole prompt text encoded once (with the tokenizer's BOS
    where it adds one), cut where the prefix text ends; ``prompt_ids + response_ids[:-1]`` are the ids of
    prompt and response encoded together.
    """

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


#: heading of the retrieved examples' answers in the ``"shared"`` layout (after the input's question)
SHOT_ANSWERS_HEADER = "Their answers to this question:"
#: how retrieved examples are laid out in question prompts (see :class:`PromptBuilder`)
SHOTS_LAYOUTS = ("shared", "inline")


def _shared_shot_block(shots: Sequence[Example], header: str) -> str:
    """The retrieved reports alone (no question, no answer), placed after the input report: the part every
    question of a report shares.  Starts with a blank line, ends with the last report's last character."""
    lines = [""]
    if shots:
        lines.append(header)
    for i, s in enumerate(shots, 1):
        lines.append(f"Example {i}:\nInput: In the text: {s.context.strip()}")
    return "\n\n".join(lines) if shots else ""


def _shot_answers(shots: Sequence[Example]) -> str:
    """The retrieved examples' answers to the question being asked (the per-question part)."""
    if not shots:
        return ""
    return "\n\n" + SHOT_ANSWERS_HEADER + "".join(f"\nExample {i}: {s.response}" for i, s in enumerate(shots, 1))


def _marker(texts: Sequence[str]) -> str:
    """A split marker that occurs in none of ``texts`` (so a report quoting it cannot move the split)."""
    marker, n = _SENTINEL, 0
    while any(marker in t for t in texts):
        n += 1
        marker = f"{_SENTINEL[:-1]}{n}\u241f"
    return marker


def _tokenizer_name(tok: Any) -> str:
    return f"{type(tok).__name__}({getattr(tok, 'name_or_path', '') or 'unnamed'!r})"


class PromptBuilder:
    """Builds every prompt of the library, for training and inference alike.

    A prompt is rendered once as text, with a marker where the reusable prefix (template header, instruction,
    retrieved examples, report text) ends and the suffix (question, response header) begins; it is encoded
    once, and the ids are cut at that character boundary (:meth:`encode`).  So ``prefix_ids + suffix_ids`` are
    exactly the ids of the whole prompt for every tokenizer (SentencePiece/Metaspace tokenizers, which add a
    ``▁`` to each separately encoded piece, included), and a boundary that no token split can reproduce (a
    token spanning it) raises :class:`~cancerllm.errors.TokenizationError` instead of silently asking the
    model something else.  Whitespace at the end of the report goes to the suffix, so that the cut falls
    between a visible character and whitespace.

    Args:
        style: ``"alpaca"`` (the official instruction/context/response template), ``"chat"`` (the tokenizer's
            chat template: instruction as the system message, input as the user message; for templates that
            reject a system role, such as Mistral-Instruct's, the instruction opens the user message,
            separated from the input by a blank line) or ``"auto"`` (chat when the tokenizer has a chat
            template, else alpaca).
        tokenizer: needed for ``"chat"``/``"auto"`` and for :meth:`encode`.
        shots_header: heading placed before retrieved examples.
        answer_prefix: text that opens every answer to a question (phenotype prompts only), placed at the end
            of the prompt; ``"{"`` makes even an untuned model answer with a set, and ends generation early
            at ``"}"``. The response of a training example loses this prefix (it is already in the prompt);
            :meth:`answer_text` puts it back before parsing. Empty (the official format) by default.
        shots_layout: where retrieved examples go in a question prompt. ``"shared"`` (default): the input
            report, then the examples' reports, end the prefix, and the examples' answers to *this* question
            follow the question in the suffix, so the questions about a report shown the same examples share
            one prefix, and those shown other examples still share the report (the engine encodes each
            shared part once). ``"inline"``: the earlier layout, each example a whole ``Input: <report>
            <question>`` / ``Output: <answer>`` pair before the input, so the prefix differs per question.
            Diagnosis prompts (no question) always use the inline pairs.

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
        shots_layout: Literal["shared", "inline"] = "shared",
    ) -> None:
        if shots_layout not in SHOTS_LAYOUTS:
            raise InputError(f"unknown shots_layout {shots_layout!r}; use 'shared' or 'inline'")
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
        self.shots_layout = shots_layout
        #: whether the chat template takes a system message (None: not tried yet)
        self.system_role: bool | None = None
        self._bos: list[int] | None = None

    def to_config(self) -> dict[str, Any]:
        """The builder's settings as saved in ``cancerllm_config.json`` (``style``, ``shots_header``,
        ``answer_prefix``, ``shots_layout``)."""
        return {"style": self.style, "shots_header": self.shots_header, "answer_prefix": self.answer_prefix,
                "shots_layout": self.shots_layout}

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
    def _chat(self, instruction: str, user: str) -> str:
        """The chat template applied to (system instruction, user input), with the generation prompt."""
        tok = self.tokenizer

        def render(messages: list[dict[str, str]]) -> str:
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

        if self.system_role is not False:
            try:
                text = render([{"role": "system", "content": instruction}, {"role": "user", "content": user}])
            except Exception:  # the template rejects a system role (jinja raise_exception)
                if self.system_role:
                    raise
                self.system_role = False
            else:
                if not instruction or instruction in text:
                    self.system_role = True
                    return text
                self.system_role = False  # the template drops system messages silently
        return render([{"role": "user", "content": f"{instruction}\n\n{user}" if instruction else user}])

    def _render(self, example: Example, shots: Sequence[Example], marker: str) -> str:
        """The whole prompt with ``marker`` where the prefix ends (before whitespace closing the report)."""
        if example.question is not None:
            left, right = f"In the text: {example.context}", f" {example.question}"
        else:
            left, right = example.context, ""
        if example.question is not None and self.shots_layout == "shared" and shots:
            # the input report, then the retrieved reports; the question and their answers to it after the cut
            body = left.rstrip() + _shared_shot_block(shots, self.shots_header) + marker + right + _shot_answers(shots)
        else:
            core = left.rstrip()
            body = _shot_block(shots, self.shots_header) + core + marker + left[len(core):] + right
        if self.style == "alpaca":
            if not example.context and not shots and example.question is None:
                text = _ALPACA_NO_CONTEXT.format(instruction=example.instruction) + marker
            else:
                text = ALPACA_TEMPLATE.format(instruction=example.instruction, context=body)
        else:
            text = self._chat(example.instruction, body)
        return text + (self.answer_prefix if example.question is not None else "")

    def parts(self, example: Example, shots: Sequence[Example] = ()) -> PromptParts:
        """Split the prompt of ``example`` into a reusable prefix (through the report text) and a suffix
        (the question, if any, and the response header).

        Raises:
            InputError: not an :class:`~cancerllm.schema.Example`, a retrieved example that is the input
                itself, or a chat template that changes the text around the split (then no exact split exists).
        """
        if not isinstance(example, Example):
            raise InputError(f"PromptBuilder expects an Example, got {type(example).__name__}")
        for s in shots:
            if s.full_context == example.full_context and s.context == example.context:
                raise InputError("a retrieved example is the input itself; exclude it from the shots")
        marker = _marker([example.instruction, example.context, example.question or "", self.answer_prefix,
                          self.shots_header, *(s.full_context + s.response for s in shots)])
        if self.shots_layout == "shared" and example.question is not None:
            for s in shots:
                if s.question not in (None, example.question):
                    raise InputError("a retrieved example answers another question than the input's; "
                                     "the shared layout shows each example's answer to the input's question")
        marked = self._render(example, shots, marker)
        prefix, found, suffix = marked.partition(marker)
        if not found or marker in suffix:
            raise InputError("the prompt template dropped or repeated the split marker; use prompt style 'alpaca'")
        if self.style == "chat" and prefix + suffix != self._render(example, shots, ""):
            raise InputError("the chat template changes the text around the report's end, so the prompt cannot be "
                             "split exactly; use prompt style 'alpaca'")
        return PromptParts(prefix, suffix)

    def render(self, example: Example, shots: Sequence[Example] = (), *, with_response: bool = False) -> str:
        """The whole prompt as text (plus the response when ``with_response``)."""
        text = self.parts(example, shots).text
        return text + self._response_text(example) if with_response else text

    def _response_text(self, example: Example) -> str:
        response = example.response
        if example.question is not None and self.answer_prefix and response.startswith(self.answer_prefix):
            response = response[len(self.answer_prefix):]
        return response

    # -- tokens -----------------------------------------------------------------------------------
    def _ids(self, text: str) -> list[int]:
        if not text:
            return []
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _ids_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]] | None]:
        if not text:
            return [], []
        if getattr(self.tokenizer, "is_fast", False):
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
        return self._ids(text), None

    def _cut(self, text: str, ids: list[int], offsets: list[tuple[int, int]] | None, boundary: int,
             what: str) -> int:
        """The number of tokens of ``ids`` (the ids of ``text``) that cover ``text[:boundary]`` exactly."""
        if offsets is None:  # a slow tokenizer: no offsets, so check that the head encodes to a prefix
            head = self._ids(text[:boundary])
            if ids[: len(head)] == head:
                return len(head)
            k = None
        else:
            k = next((i for i, (s, e) in enumerate(offsets) if s >= boundary and (s < e or s > 0)), len(ids))
            if any(e > boundary for _, e in offsets[:k]) or any(s < boundary for s, _ in offsets[k:]):
                k = None
        if k is None:
            at = text[max(0, boundary - 12): boundary + 12]
            raise TokenizationError(
                f"the tokenizer {_tokenizer_name(self.tokenizer)} merges characters across the boundary "
                f"between {what} (around {at!r}), so the parts cannot be encoded exactly; use another prompt "
                "style or answer_prefix, or report the tokenizer"
            )
        return k

    def bos_ids(self) -> list[int]:
        """``[bos_token_id]`` when the tokenizer itself adds BOS and the style is not ``chat``, else ``[]``
        (a chat template writes its own BOS)."""
        if self._bos is None:
            tok = self.tokenizer
            bos = getattr(tok, "bos_token_id", None)
            self._bos = []
            if bos is not None and self.style != "chat":
                probe = tok("a", add_special_tokens=True)["input_ids"]
                self._bos = [bos] if probe and probe[0] == bos else []
        return list(self._bos)

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

        The whole prompt is encoded once and cut where the prefix ends; with a response, prompt and response
        are encoded together and must begin with the prompt's ids. ``prefix_ids`` (the prefix of another
        question about the same report) is checked to equal this prompt's prefix, so a reused KV cache is
        the cache of these very ids.

        Raises:
            TokenizationError: a token spans the prefix/suffix or prompt/response boundary, or ``prefix_ids``
                differ from this prompt's prefix.
        """
        if self.tokenizer is None:
            raise InputError("PromptBuilder.encode needs a tokenizer; pass tokenizer=... when constructing it")
        parts = self.parts(example, shots)
        text = parts.text
        ids, offsets = self._ids_offsets(text)
        k = self._cut(text, ids, offsets, len(parts.prefix), "the report and the question/response header")
        bos = self.bos_ids()
        enc = EncodedPrompt(prefix_ids=bos + ids[:k], suffix_ids=ids[k:])
        if prefix_ids is not None and list(prefix_ids) != enc.prefix_ids:
            raise TokenizationError(
                f"the prefix ids given differ from this prompt's own prefix with {_tokenizer_name(self.tokenizer)}; "
                "encode the prompt without prefix_ids"
            )
        if with_response:
            response = self._response_text(example)
            if response:
                whole, whole_offsets = self._ids_offsets(text + response)
                n = self._cut(text + response, whole, whole_offsets, len(text), "the prompt and the response")
                if whole[:n] != ids:
                    raise TokenizationError(
                        f"prompt and response encoded together by {_tokenizer_name(self.tokenizer)} do not begin "
                        "with the prompt's own ids; training would not match inference"
                    )
                resp = whole[n:]
            else:
                resp = []
            eos_id = getattr(self.tokenizer, "eos_token_id", None)
            if eos and eos_id is not None:
                resp.append(eos_id)
            enc.response_ids = resp
        return enc
