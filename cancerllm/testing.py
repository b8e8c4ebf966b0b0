"""Tiny random models and tokenizers built in-process, for tests, benchmarks and examples.

Nothing here touches the network: the tokenizer is trained on the fly with the ``tokenizers`` library and
the model weights are random.  ``make_tiny_model(arch="mistral")`` gives a 2-layer Mistral whose code path
(rotary embeddings, GQA, sliding-window masks) is the one Mistral-7B uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "CHATML_TEMPLATE",
    "LLAMA3_TEMPLATE",
    "MISTRAL_TEMPLATE",
    "TOKENIZER_FAMILIES",
    "make_family_tokenizer",
    "make_tiny_model",
    "make_tiny_tokenizer",
    "save_tiny_model",
]

#: A ChatML chat template (the one SmolLM2-Instruct uses), for testing chat-style prompts.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: A Mistral-Instruct-style template (v0.1): ``[INST] ... [/INST]``, BOS written by the template, and no
#: system role (it raises, as Mistral's own template does).
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
#: A Llama-3-style template: header tokens, ``| trim`` on every message's content, ``<|eot_id|>`` ends a turn.
LLAMA3_TEMPLATE = (
    "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

_CORPUS = [
    "Below is an instruction that describes a task, paired with an input that provides further context.",
    "### Instruction: ### Input: ### Response: In the text:",
    "You are an excellent linguist. The task is to answer the question by given the context or text",
    "You are a medical expert. This task involves generating the diagnosis based on the provided context or text.",
    "What is the tumor size in the given context? What is the histological type in the given context?",
    "Please identify the receptors mentioned in the provided context. What is the receptor type in the given context?",
    "Please identify the value of tumor laterality in the provided context. What is the stage of cancer in the given context?",
    "Please describe the tumor location in the given context. What is the grade of cancer in the given context?",
    "Not relevant {pr, her2, er} {left} {right} {iib} {g3} {2.5 cm} {invasive ductal carcinoma}",
    "Invasive ductal carcinoma of the left breast, 2.5 cm, grade 3, ER positive, PR negative, HER2 negative.",
    "Squamous cell carcinoma of the right lung, upper lobe, pT2 pN0, stage IIB, moderately differentiated.",
    "Adenocarcinoma of the colon, sigmoid, pT3 N1, G2. Margins negative. Lymph nodes 2/14 positive.",
    "1) Reason for visit: 2) Treatment site: 3) Subjective information: 4) Nursing Review of Systems (ROS):",
    "5) Objective observations: 6) Laboratory test results: biopsy confirms malignant cells. lung cancer",
    "0 1 2 3 4 5 6 7 8 9 . , : ; ( ) - / % cm mm",
]


def make_tiny_tokenizer(*, vocab_size: int = 512, chat_template: bool = False, corpus: list[str] | None = None) -> Any:
    """A byte-level BPE tokenizer trained in-process, with ``<s>``, ``</s>``, ``<pad>`` (distinct from EOS)
    and ``<unk>``; ChatML special tokens and template when ``chat_template``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<unk>", "<s>", "</s>", "<pad>"]
    if chat_template:
        special += ["<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((corpus or _CORPUS) * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="<|im_end|>" if chat_template else "</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    if chat_template:
        fast.chat_template = CHATML_TEMPLATE
    return fast


#: The tokenizer/template families the test suite covers: ``name -> (tokenizer kind, template)``.
TOKENIZER_FAMILIES: dict[str, tuple[str, str | None]] = {
    "bytelevel-chatml": ("bytelevel", "chatml"),  # SmolLM2, Qwen
    "metaspace-mistral": ("metaspace", "mistral"),  # Mistral-7B-Instruct, BioMistral (SentencePiece BPE)
    "bytelevel-llama3": ("bytelevel", "llama3"),  # Llama-3-Instruct (| trim)
    "metaspace-alpaca": ("metaspace", None),  # Llama-2 / Mistral-7B base with the official Alpaca template
}


def _metaspace_tokenizer(vocab_size: int, corpus: list[str]) -> Any:
    """A SentencePiece-style BPE tokenizer (Metaspace ``▁``, prepended to the first piece, no split on
    ``▁`` when encoding, as transformers converts Llama/Mistral tokenizers); BOS added by its post-processor."""
    import string

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    special = ["<unk>", "<s>", "</s>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # trained on words (SentencePiece splits on whitespace when training) ...
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False,
                                  initial_alphabet=sorted(set(string.printable) | {"\u2581"}))
    tok.train_from_iterator(corpus * 4, trainer=trainer)
    # ... and encodes the whole text as one piece, like Llama/Mistral's converted tokenizers
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return tok


def make_family_tokenizer(family: str, *, vocab_size: int = 512, corpus: list[str] | None = None) -> Any:
    """A tokenizer of one of :data:`TOKENIZER_FAMILIES`, trained in-process (no hub).

    ``"metaspace-*"`` tokenizers have no pad token (as Mistral's and Llama-2's), ``"bytelevel-llama3"`` has
    Llama-3's header and reserved special tokens.
    """
    if family not in TOKENIZER_FAMILIES:
        raise ValueError(f"unknown tokenizer family {family!r}; use one of {sorted(TOKENIZER_FAMILIES)}")
    kind, template = TOKENIZER_FAMILIES[family]
    if template == "chatml":
        return make_tiny_tokenizer(vocab_size=vocab_size, chat_template=True, corpus=corpus)
    from transformers import PreTrainedTokenizerFast

    corpus = corpus or _CORPUS
    if kind == "metaspace":
        fast = PreTrainedTokenizerFast(tokenizer_object=_metaspace_tokenizer(vocab_size, corpus),
                                       bos_token="<s>", eos_token="</s>", unk_token="<unk>")
        if template == "mistral":
            fast.chat_template = MISTRAL_TEMPLATE
        return fast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    special = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
               "<|reserved_special_token_0|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    fast.chat_template = LLAMA3_TEMPLATE
    return fast


def make_tiny_model(
    tokenizer: Any = None,
    *,
    arch: str = "mistral",
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
    max_position_embeddings: int = 4096,
    sliding_window: int | None = None,
) -> Any:
    """A random causal LM (``"mistral"`` or ``"llama"``) sized for a CPU test, in float32, eval mode;
    ``sliding_window`` sets a Mistral's attention window."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    tokenizer = tokenizer or make_tiny_tokenizer()
    kwargs = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    if arch == "mistral":
        model = MistralForCausalLM(MistralConfig(sliding_window=sliding_window, **kwargs))
    elif arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**kwargs))
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}; use 'mistral' or 'llama'")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval()


def save_tiny_model(path: str | Path, *, arch: str = "mistral", chat_template: bool = False, seed: int = 0,
                    family: str | None = None, **kw: Any) -> Path:
    """Build a tiny tokenizer (of ``family``, see :data:`TOKENIZER_FAMILIES`, else the byte-level BPE one) and
    model and save both under ``path`` (safetensors); returns the path."""
    path = Path(path)
    tok = make_family_tokenizer(family) if family else make_tiny_tokenizer(chat_template=chat_template)
    model = make_tiny_model(tok, arch=arch, seed=seed, **kw)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
