"""Fixtures of the training tests: a trainable tiny base model and a synthetic phenotype data set."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cancerllm.prompts import format_answer
from cancerllm.schema import PHENOTYPE_INSTRUCTION, Example, Phenotype

_TEMPLATES = [
    "Invasive ductal carcinoma of the {side} breast, {size} cm, grade {g}.",
    "Squamous cell carcinoma of the {side} lung, grade {g}, {size} cm.",
    "Adenocarcinoma, {side} side, {size} cm, grade {g}. Margins negative.",
]


def phenotype_rows(n: int, seed: int) -> list[tuple[str, str, str]]:
    """``n`` synthetic reports ``(text, laterality, grade)`` such as "... of the left breast, 2.5 cm, grade 3."."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        side, g = rng.choice(["left", "right"]), rng.choice([1, 2, 3])
        size = f"{rng.randint(1, 9)}.{rng.randint(0, 9)}"
        rows.append((rng.choice(_TEMPLATES).format(side=side, g=g, size=size), side, f"g{g}"))
    return rows


def phenotype_examples(rows: list[tuple[str, str, str]]) -> list[Example]:
    """Two examples per report: laterality (``{left}``) and grade (``{g3}``), with the paper's questions."""
    out = []
    for i, (text, side, grade) in enumerate(rows):
        for q, ans in ((Phenotype.LATERALITY, side), (Phenotype.GRADE, grade)):
            out.append(Example(instruction=PHENOTYPE_INSTRUCTION, context=text, question=q.question,
                               response=format_answer([ans]), id=f"r{i}-{q.value}"))
    return out


@pytest.fixture(scope="session")
def train_base_dir(tmp_path_factory) -> Path:
    """A tiny random Mistral whose output head has a realistic scale.

    Random init gives ``lm_head`` rows of norm ~0.16 and LoRA does not touch the head or the final norm, so
    even a perfect LoRA could not make one token much likelier than the others (loss stuck near ln|V|).  A
    pretrained model's head is large; scaling the random head by 20 gives the tiny model that property.
    """
    import torch

    from cancerllm.testing import make_tiny_model, make_tiny_tokenizer

    path = tmp_path_factory.mktemp("train") / "base"
    tok = make_tiny_tokenizer()
    model = make_tiny_model(tok, seed=0)
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture
def one_thread():
    """Run the test with one torch thread (bit-exact comparisons between runs; fair on a shared CPU)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def base_config(output_dir: Path, base: Path, **sections) -> dict:
    """A small config dict for the tiny model; ``sections`` update (nested) the defaults."""
    cfg = {
        "output_dir": str(output_dir),
        "model": {"name_or_path": str(base)},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "optimizer": {"learning_rate": 3e-3},
        "training": {"max_steps": 4, "batch_size": 4},
        "logging": {"progress": False},
    }
    for k, v in sections.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg


@pytest.fixture(scope="session")
def synth():
    """The helpers above: ``synth.rows(n, seed)``, ``synth.examples(rows)``, ``synth.config(out, base, **sections)``."""
    from types import SimpleNamespace

    return SimpleNamespace(rows=phenotype_rows, examples=phenotype_examples, config=base_config)


def random_lora_model(*, seed: int = 1):
    """A tiny random model with an all-linear LoRA whose B matrices are non-zero (every LoRA parameter
    then gets a gradient); returns ``(tokenizer, peft_model)``."""
    import peft
    import torch

    from cancerllm.testing import make_tiny_model, make_tiny_tokenizer

    tok = make_tiny_tokenizer()
    model = make_tiny_model(tok, hidden_size=32)
    model = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                       task_type="CAUSAL_LM"))
    torch.manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    return tok, model
