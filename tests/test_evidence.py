"""Evidence spans: offsets into the caller's exact text, exact before fuzzy, word boundaries, not_found."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cancerllm.evidence import EvidenceIndex, find_span

REPORT = ("FINAL DIAGNOSIS:\r\nLeft breast, mastectomy: Invasive ductal carcinoma, Nottingham grade 3 (G3).\r\n"
          "Tumour Ø 2,5 cm — naïve résumé; ypT2a(m) ypN1b, Stage IIB.\r\nER: positive (95%). HER2: negative. "
          "HG2 cleft")


@pytest.mark.parametrize("item, match, evidence", [
    ("Invasive ductal carcinoma", "exact", "Invasive ductal carcinoma"),
    ("invasive ductal carcinoma", "fuzzy", "Invasive ductal carcinoma"),
    ("G3", "exact", "G3"),
    ("naïve résumé", "exact", "naïve résumé"),
    ("2,5cm", "fuzzy", "2,5 cm"),
    ("T2a", "fuzzy", "ypT2a"),
    ("pN1b", "fuzzy", "ypN1b"),
    ("stage iib", "fuzzy", "Stage IIB"),
    ("left", "fuzzy", "Left"),
    ("95 %", "fuzzy", "95%"),
    ("positive", "exact", "positive"),
    ("{G3}", "fuzzy", "G3"),
    ("G2", "not_found", ""),  # only inside "HG2": never inside a word
    ("M0", "not_found", ""),
    ("lobular carcinoma", "not_found", ""),
    ("", "not_found", ""),
])
def test_spans(item, match, evidence):
    span = find_span(REPORT, item)
    assert span.match == match
    assert span.text(REPORT) == evidence
    if match == "exact":
        assert REPORT[span.start:span.end] == item


def test_offsets_index_the_callers_text_across_crlf_and_non_ascii():
    idx = EvidenceIndex(REPORT)
    span = idx.find("Stage IIB")
    assert REPORT[span.start:span.end] == "Stage IIB" and REPORT.index("Stage IIB") == span.start
    fuzzy = idx.find("grade 3 (g3)")  # across the case difference
    assert fuzzy.match == "fuzzy" and REPORT[fuzzy.start:fuzzy.end] == "grade 3 (G3)"
    across = idx.find("(G3). Tumour")  # a line break (CRLF) in the text, a space in the answer
    assert across.match == "fuzzy" and REPORT[across.start:across.end] == "(G3).\r\nTumour"


def test_a_match_inside_the_answering_chunk_is_preferred():
    text = "Margins: left clear. " + "x " * 50 + "Laterality: left breast."
    second = text.rindex("left")
    assert find_span(text, "left").start == text.index("left")
    assert find_span(text, "left", within=(second - 12, len(text))).start == second
    assert find_span(text, "Left", within=(second - 12, len(text))).start == second  # fuzzy too


_WORDS = st.sampled_from(["tumor", "Grade", "G3", "pT2", "N0", "2.5", "cm", "Ø", "naïve", "—", "(95%)", ";",
                          "IIB", "left", "Right", "carcinoma", "x"])
_SEPS = st.sampled_from([" ", "  ", "\n", "\r\n", "\t", ", "])


@given(st.lists(st.tuples(_WORDS, _SEPS), min_size=1, max_size=30), st.data())
def test_every_exact_span_round_trips(pieces, data):
    text = "".join(w + s for w, s in pieces)
    i = data.draw(st.integers(0, len(pieces) - 1))
    j = data.draw(st.integers(i, min(len(pieces) - 1, i + 3)))
    item = "".join(w + s for w, s in pieces[i:j]) + pieces[j][0]  # whole words, as the model would copy them
    assume(any(c.isalnum() for c in item))  # an answer of punctuation only is no evidence
    span = find_span(text, item)
    assert span.found
    if span.match == "exact":
        assert text[span.start:span.end] == item
    # the normalised form of the item is found too
    fuzzy = find_span(text, " ".join(item.split()).upper())
    assert fuzzy.found
