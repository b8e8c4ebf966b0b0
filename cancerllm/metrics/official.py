"""A reproduction of the official CancerLLM evaluation code (``Evaluation/`` of the CancerLLM repository).

Use :func:`official_evaluate` to compare with numbers computed by the official scripts or printed in the
paper; use :func:`~cancerllm.metrics.evaluate` for the library's recommended metrics.  The official
code derives from the OpenPI evaluation (``f1_emnlp2020``); its behaviour, quirks included, is
reproduced here:

* a prediction string is the model's *raw output* as the official generation step stores it (the
  ``predicted_answers`` field read by ``Evaluation/1_make_standard_output_for_*.py``), in which the answer
  follows the literal ``answer:``, e.g. ``"{'answer': 'pr, er'}"``.  It loses its double quotes, braces
  and single quotes; then only the text between the first and the second ``answer:`` is kept
  (``Q.split("answer:")[1]``), and that is split on commas, each piece trimmed.  The official script stops
  with an ``IndexError`` on a string without ``answer:``; here such a string (e.g. this library's own
  answers, which are already the answer part) is split whole, which is what the official code computes for
  ``"answer: " + string``.  A gold string is one item (the official scripts do not split it;
  ``split_gold=True`` splits it on commas like a prediction, without the ``answer:`` step);
* diagnoses are treated exactly like phenotypes (``1_make_standard_output_for_diagnosis.py`` is the same
  script): a free-text diagnosis prediction is split on commas too;
* predicted items are deduplicated on their exact text (``set``); gold items are not;
* ``" ."`` is removed from the first gold item;
* a prediction that is a single item starting with "there will be no change" counts as no prediction
  (an OpenPI leftover);
* every item is trimmed, lowercased, has ASCII punctuation (``string.punctuation``) deleted with no space
  put in its place, whitespace collapsed, and each word Porter-stemmed; no stop words or articles are
  removed;
* instance rules: no gold and no prediction -> (P, R, F1) = (1, 1, 1); no gold -> (0, 1, 0); no
  prediction -> (1, 0, 0); otherwise P = mean over predicted items of the best item score against any
  gold item, R = mean over gold items of the best score against any predicted item, F1 = 2PR/(P+R)
  (all 0 when P + R = 0); reported P, R, F1 are means over instances;
* item scores (both items empty -> 1, one empty -> 0): EM is identity of the stemmed strings; BLEU is
  pycocoevalcap-style cumulative BLEU-2 (:func:`official_bleu2_item`); "ROUGE" is a unigram-set
  overlap F-score at beta 1.2 (:func:`official_rouge_item`), not ROUGE-L.

Stemmer: the official ``porter.py`` is OpenPI's copy of NLTK's ``PorterStemmer``, constructed with its
default mode, ``NLTK_EXTENSIONS``; on lowercase input it gives the same stems as
``nltk.stem.PorterStemmer()`` (default mode) of NLTK 3.x, which is what is used here.
"""

from __future__ import annotations

import math
import string
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ._core import Answer, InstanceTable, assemble_result, check_item, check_pairs, raw_items, table_from_rows
from .results import EvaluationResult

__all__ = [
    "official_bleu2_item",
    "official_evaluate",
    "official_exact_match_item",
    "official_normalize",
    "official_rouge_item",
    "official_split",
]

#: The marker after which the official prediction script reads the answer (``Q.split("answer:")[1]``).
ANSWER_MARKER = "answer:"

_PUNCT = frozenset(string.punctuation)
_STRIP_CHARS = ('"', "{", "}", "'")
# pycocoevalcap bleu_scorer constants: added to the numerators and the denominators respectively
_TINY = 1e-15
_SMALL = 1e-9
_BETA = 1.2


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()  # NLTK_EXTENSIONS, the mode of the official (OpenPI) porter.py


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stem(word).strip()


def official_normalize(text: str, *, stem: bool = True) -> str:
    """The official item normalisation (``normalize_and_stem``; ``normalize_nostem`` with ``stem=False``).

    Trim, lowercase, delete ASCII punctuation (no space put in its place), collapse whitespace, then
    Porter-stem each word (NLTK ``PorterStemmer`` in its default ``NLTK_EXTENSIONS`` mode).

    Raises:
        InputError: ``text`` is not a string (e.g. None).

    Example:
        >>> official_normalize("  HER-2 Positive Tumors. ")
        'her2 posit tumor'
        >>> official_normalize("HER-2 Positive Tumors.", stem=False)
        'her2 positive tumors'
    """
    s = check_item(text, "text").strip().lower()
    s = " ".join("".join(ch for ch in s if ch not in _PUNCT).split())
    if not stem:
        return s
    return " ".join(w for w in (_stem(t) for t in s.split()) if w)


def _delete_quotes(text: str) -> str:
    for ch in _STRIP_CHARS:
        text = text.replace(ch, "")
    return text


def official_split(text: str) -> list[str]:
    """Split a raw prediction string the way the official prediction script does.

    Double quotes, braces and single quotes are deleted; if the literal ``answer:`` occurs, only the text
    between its first and second occurrence is kept (the official ``Q.split("answer:")[1]``); the rest is
    split on commas and each piece is trimmed (empty pieces are kept, as in the official code).  Without
    ``answer:`` the official script fails (``IndexError``); here the whole string is split.

    Raises:
        InputError: ``text`` is not a string.

    Example:
        >>> official_split("{'answer': 'pr, her2 , er'}")
        ['pr', 'her2', 'er']
        >>> official_split("### Response: answer: left, right answer: ignored")
        ['left', 'right']
        >>> official_split("{'pr', her2 , er}")
        ['pr', 'her2', 'er']
        >>> official_split("Not relevant")
        ['Not relevant']
    """
    text = _delete_quotes(check_item(text, "text"))
    if ANSWER_MARKER in text:
        text = text.split(ANSWER_MARKER)[1]
    return [x.strip() for x in text.strip().split(",")]


def _official_exact(gold: str, pred: str) -> float:
    return 1.0 if gold == pred else 0.0


def _ngrams(words: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def _official_bleu2(gold: str, pred: str) -> float:
    hyp, ref = pred.split(), gold.split()
    bleu = 1.0
    score = 0.0
    for k in (1, 2):
        h, r = _ngrams(hyp, k), _ngrams(ref, k)
        correct = sum(min(c, r.get(g, 0)) for g, c in h.items())
        guess = max(0, len(hyp) - k + 1)
        bleu *= (float(correct) + _TINY) / (float(guess) + _SMALL)
        score = bleu ** (1.0 / k)
    ratio = (len(hyp) + _TINY) / (len(ref) + _SMALL)
    if ratio < 1:
        score *= math.exp(1 - 1.0 / ratio)
    return score


def _official_rouge(gold: str, pred: str) -> float:
    c, r = set(pred.split(" ")), set(gold.split(" "))
    overlap = len(c & r)
    prec, rec = overlap / float(len(c)), overlap / float(len(r))
    if prec == 0 or rec == 0:
        return 0.0
    return ((1 + _BETA**2) * prec * rec) / (rec + _BETA**2 * prec)


def _match(scorer: Any, gold: str, pred: str) -> float:
    """``GenerationMetric.match_score``: on unstemmed normalised items; the scorer gets stemmed ones."""
    if not gold and not pred:
        return 1.0
    if not gold or not pred:
        return 0.0
    return scorer(official_normalize(gold), official_normalize(pred))


def _official_item(scorer: Any, prediction: Any, reference: Any) -> float:
    pred = official_normalize(check_item(prediction, "prediction"), stem=False)
    gold = official_normalize(check_item(reference, "reference"), stem=False)
    return _match(scorer, gold, pred)


def official_exact_match_item(*, prediction: str, reference: str) -> float:
    """Official EM item score: 1.0 if the normalised, stemmed items are identical, else 0.0.

    Raises:
        InputError: ``prediction`` or ``reference`` is not a string (e.g. None).

    Example:
        >>> official_exact_match_item(prediction="Tumors", reference="tumor")
        1.0
    """
    return _official_item(_official_exact, prediction, reference)


def official_bleu2_item(*, prediction: str, reference: str) -> float:
    """Official BLEU item score: pycocoevalcap-style cumulative BLEU-2 of the stemmed items.

    With whitespace tokens, clipped n-gram matches ``c_k`` and hypothesis n-gram counts ``g_k``
    (k = 1, 2): ``score = BP * sqrt((c_1 + 1e-15) / (g_1 + 1e-9) * (c_2 + 1e-15) / (g_2 + 1e-9))``, where
    ``ratio = (len(pred) + 1e-15) / (len(ref) + 1e-9)`` and ``BP = exp(1 - 1 / ratio)`` if ratio < 1
    else 1 (the "closest" reference length, trivially, with one reference).  No smoothing beyond those
    constants: a one-word prediction has ``g_2 = 0`` and scores at most ``sqrt(1e-15 / 1e-9) = 0.001``.

    Raises:
        InputError: ``prediction`` or ``reference`` is not a string (e.g. None).

    Example:
        >>> round(official_bleu2_item(prediction="ductal carcinoma", reference="invasive ductal carcinoma"), 4)
        0.6065
        >>> round(official_bleu2_item(prediction="left", reference="left"), 6)
        0.001
    """
    return _official_item(_official_bleu2, prediction, reference)


def official_rouge_item(*, prediction: str, reference: str) -> float:
    """Official "ROUGE" item score (its ``Rouge1``): unigram-set overlap F-score with beta = 1.2.

    With ``C`` and ``G`` the sets of stemmed words of prediction and reference, ``prec = |C & G| / |C|``,
    ``rec = |C & G| / |G|`` and ``F = (1 + 1.2^2) * prec * rec / (rec + 1.2^2 * prec)`` (0 when either
    is 0).  Word order and repeats are ignored; this is not ROUGE-L.

    Raises:
        InputError: ``prediction`` or ``reference`` is not a string (e.g. None).

    Example:
        >>> round(official_rouge_item(prediction="invasive ductal carcinoma", reference="ductal carcinoma"), 6)
        0.829932
    """
    return _official_item(_official_rouge, prediction, reference)


_OFFICIAL_SCORERS = {"exact_match": _official_exact, "bleu2": _official_bleu2, "rouge_l": _official_rouge}


def _prediction_items(answer: Answer) -> list[str]:
    items = raw_items(answer, what="prediction")
    if items is None:
        items = [] if answer is None else official_split(answer)  # type: ignore[arg-type]
    if len(items) == 1 and items[0].lower().strip().startswith("there will be no change"):
        items = []
    return list(dict.fromkeys(items))  # the official list(set(...)), in a stable order


def _gold_items(answer: Answer, split_gold: bool) -> list[str]:
    items = raw_items(answer, what="reference")
    if items is None:
        if answer is None:
            return []
        if split_gold:  # the library's option: the official split without the ``answer:`` step
            items = [x.strip() for x in _delete_quotes(answer).split(",")]  # type: ignore[arg-type]
        else:
            items = [answer]  # type: ignore[list-item]
    items = list(items)
    if items:
        items[0] = items[0].replace(" .", "")
    return items


def _instance(preds: list[str], golds: list[str], scorer: Any) -> tuple[float, float, float]:
    if not golds and not preds:
        return 1.0, 1.0, 1.0
    if not golds:
        return 0.0, 1.0, 0.0
    if not preds:
        return 1.0, 0.0, 0.0
    norm_p = [official_normalize(p, stem=False) for p in preds]
    norm_g = [official_normalize(g, stem=False) for g in golds]
    scores = [[_match(scorer, g, p) for g in norm_g] for p in norm_p]
    precision = sum(max(0.0, *row) for row in scores) / len(preds)
    recall = sum(max(0.0, *(row[j] for row in scores)) for j in range(len(golds))) / len(golds)
    if precision + recall == 0:
        return 0.0, 0.0, 0.0
    return precision, recall, 2 * precision * recall / (precision + recall)


def official_evaluate(
    *,
    predictions: Sequence[Answer],
    references: Sequence[Answer],
    split_gold: bool = False,
    phenotypes: Sequence[Any] | None = None,
    ci: bool = False,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> EvaluationResult:
    """Evaluate exactly as the official CancerLLM evaluation code does (``variant="official"``).

    The rules are listed in this module's docstring and in ``docs/metrics.md``.  In the result,
    ``bleu2`` is the official pycocoevalcap-style BLEU-2 and ``rouge_l`` holds the official "ROUGE"
    (unigram-set F at beta 1.2, reported by the paper as ROUGE-L); P, R and F1 are means over instances
    (``average="macro"``) and ``average_f1`` is the mean of the three F1s.

    Args:
        predictions: one answer per instance: a raw model output string (the text the official
            generation step stores, with the answer after ``answer:``; processed by :func:`official_split`:
            quotes and braces deleted, the text between the first and second ``answer:`` kept, split on
            commas), a list of already split items (used as they are), or None (no prediction).
        references: gold answers: a string (one item, or split when ``split_gold``), a list of items
            (used as they are), or None.
        split_gold: split gold strings on commas like predictions (the official scripts do not).
        phenotypes, ci, n_resamples, confidence, seed: as in :func:`~cancerllm.metrics.evaluate`.

    Raises:
        InputError: as :func:`~cancerllm.metrics.evaluate`.

    Example:
        >>> r = official_evaluate(predictions=["{pr, er}"], references=["{pr, her2, er}"])
        >>> r.exact_match.precision, r.exact_match.recall
        (0.0, 0.0)
        >>> r = official_evaluate(predictions=["{pr, er}"], references=["{pr, her2, er}"], split_gold=True)
        >>> r.exact_match.precision, round(r.exact_match.recall, 4)
        (1.0, 0.6667)
    """
    pred_list, ref_list = check_pairs(predictions, references)
    preds = [_prediction_items(p) for p in pred_list]
    golds = [_gold_items(r, bool(split_gold)) for r in ref_list]
    tables: dict[str, InstanceTable] = {}
    for name, scorer in _OFFICIAL_SCORERS.items():
        rows = []
        for p, g in zip(preds, golds, strict=True):
            prec, rec, f1 = _instance(p, g, scorer)
            rows.append((prec, rec, f1, prec * len(p), len(p), rec * len(g), len(g)))
        tables[name] = table_from_rows(rows)
    return assemble_result(
        tables,
        variant="official",
        average="macro",
        phenotypes=phenotypes,
        ci=ci,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
