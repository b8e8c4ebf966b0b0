"""Plug your own retriever into retrieval-augmented CancerLLM by overriding one method.

``HashingBagOfWords`` below turns each text into a hashed bag of words (no model, no training, numpy only)
by implementing :meth:`Retriever.embed`; batching, the index, exclusion of the input itself, saving and
loading all come from the base class.  Registering it makes it available by name, like the built-ins.

    python examples/custom_retriever.py             # search + the prompt with retrieved examples
    python examples/custom_retriever.py --generate  # also run a tiny random model end to end (offline)
"""

from __future__ import annotations

import argparse
import re
import tempfile
import zlib
from pathlib import Path

import numpy as np

from cancerllm import DIAGNOSIS_INSTRUCTION, Example, PromptBuilder
from cancerllm.retrieval import RETRIEVERS, Retriever, ShotSelector, get_retriever, register_retriever


class HashingBagOfWords(Retriever):
    """Cosine similarity of hashed word counts (log-scaled)."""

    normalize = True  # L2-normalise vectors: inner product == cosine

    def __init__(self, *, dim: int = 1024, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim = dim

    def config(self) -> dict:  # saved with an index; also part of the embedding-cache key
        return {"dim": self.dim}

    def embed(self, texts: list[str], *, kind: str) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        return np.log1p(out)


if "hashing-bow" not in RETRIEVERS:  # re-running the module in one session must not register twice
    register_retriever("hashing-bow")(HashingBagOfWords)

# training examples: the retrieval corpus (in practice: cancerllm.data.read_examples("train.jsonl"))
CORPUS = [
    Example(
        instruction=DIAGNOSIS_INSTRUCTION,
        context="Invasive ductal carcinoma, left breast, 2.5 cm, grade 3.",
        response="Breast cancer",
    ),
    Example(
        instruction=DIAGNOSIS_INSTRUCTION,
        context="Squamous cell carcinoma of the right upper lobe of the lung.",
        response="Lung cancer",
    ),
    Example(
        instruction=DIAGNOSIS_INSTRUCTION,
        context="Adenocarcinoma of the sigmoid colon, pT3 N1, G2.",
        response="Colon cancer",
    ),
    Example(
        instruction=DIAGNOSIS_INSTRUCTION,
        context="Lobular carcinoma of the right breast, ER positive.",
        response="Breast cancer",
    ),
]
NOTE = "Core biopsy, left breast: invasive carcinoma, grade 2."


def main(generate: bool = False) -> str:
    retriever = get_retriever("hashing-bow", dim=512).build_index(CORPUS)
    print("Top 2 for the note:")
    for hit in retriever.retrieve(NOTE, k=2):
        print(f"  {hit.score:.3f}  {hit.item.context}  ->  {hit.item.response}")

    with tempfile.TemporaryDirectory() as tmp:  # indexes save as safetensors + JSON and load back
        retriever.save_index(Path(tmp) / "index")
        again = Retriever.from_index(Path(tmp) / "index")
        assert [h.index for h in again.retrieve(NOTE, k=2)] == [
            h.index for h in retriever.retrieve(NOTE, k=2)
        ]

    # the prompt the model sees: retrieved examples first, then the input, built by the one prompt builder
    selector = ShotSelector(CORPUS, retriever, k=2)
    example = Example(instruction=DIAGNOSIS_INSTRUCTION, context=NOTE)
    prompt = PromptBuilder().render(example, selector.shots_for(example))
    print("\nPrompt:\n" + prompt)

    if generate:
        from cancerllm import CancerLLM
        from cancerllm.testing import save_tiny_model

        with tempfile.TemporaryDirectory() as tmp:
            model = CancerLLM.from_pretrained(save_tiny_model(Path(tmp) / "tiny"))
            gen = model.diagnosis_generator(retriever=retriever, corpus=CORPUS, k=2, max_new_tokens=8)
            print("Tiny random model says:", repr(gen.generate(NOTE).raw))
    return prompt


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate", action="store_true", help="also generate with a tiny random model")
    main(parser.parse_args().generate)
