"""The TNM parser (cancerllm.tnm): property tests on generated items, written apart or run together in any case,
plus fixed examples and text that is not TNM."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cancerllm.tnm import TNMItem, parse_tnm, tnm_category, tnm_group

PREFIXES = ["", "p", "c", "yp", "yc", "r", "a"]
MODIFIERS = ["", "(i-)", "(i+)", "(mol-)", "(mol+)", "(sn)", "(m)", "(f)"]


@st.composite
def tnm_value(draw: st.DrawFn, letter: str) -> str:
    """A value of ``letter`` in lower case: ``"2a"``, ``"1b1"``, ``"x"``, ``"is"`` (T only), ``"1mi"``."""
    kind = draw(st.sampled_from(["digit", "sub", "subdigit", "x", "is", "mi"]))
    main = draw(st.sampled_from({"T": "01234", "N": "0123", "M": "01"}[letter]))
    if kind == "x":
        return "x"
    if kind == "is" and letter == "T":
        return "is"
    if kind == "mi" and letter in "TN":
        return "1mi"
    if kind in ("sub", "subdigit") and main != "0":
        sub = draw(st.sampled_from("abcd"))
        return main + sub + (draw(st.sampled_from("12")) if kind == "subdigit" else "")
    return main


@st.composite
def tnm_item(draw: st.DrawFn) -> tuple[str, str, str, str]:
    """``(prefix, letter, value, modifier)``, all as :class:`TNMItem` stores them."""
    letter = draw(st.sampled_from("TNM"))
    return draw(st.sampled_from(PREFIXES)), letter, draw(tnm_value(letter)), draw(st.sampled_from(MODIFIERS))


def _random_case(draw: st.DrawFn, s: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(s), max_size=len(s)))
    return "".join(c.swapcase() if f else c for c, f in zip(s, flips))


def _render(draw: st.DrawFn, item: tuple[str, str, str, str]) -> str:
    prefix, letter, value, mod = item
    text = _random_case(draw, prefix + letter + value)
    if mod:
        text += draw(st.sampled_from(["", " "])) + _random_case(draw, mod)
    return text


def _ambiguous_run(prev: tuple[str, str, str, str], nxt: tuple[str, str, str, str]) -> bool:
    """Run together, ``T2`` + ``aN0`` reads as ``T2a`` + ``N0`` (and ``T1`` + ``cN0`` as ``T1c`` + ``N0``):
    a prefix that is also a sub-category letter cannot follow a value that can take one."""
    return not prev[3] and prev[2][-1:].isdigit() and nxt[0][:1] in ("a", "c")


@st.composite
def rendered_items(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, str, str]]]:
    """A text of 1-4 items, each separated from the next by spaces/punctuation or run on to it."""
    items = draw(st.lists(tnm_item(), min_size=1, max_size=4))
    parts = [_render(draw, items[0])]
    for prev, item in zip(items, items[1:]):
        together = draw(st.booleans()) and not _ambiguous_run(prev, item)
        parts.append("" if together else draw(st.sampled_from([" ", ", ", " / ", "; ", "  "])))
        parts.append(_render(draw, item))
    lead = draw(st.sampled_from(["", "Stage: ", "AJCC pathologic stage ", "(", "TNM: "]))
    tail = draw(st.sampled_from(["", ".", ")", " (AJCC 7th edition)", ", stage II."]))
    return lead + "".join(parts) + tail, items


@settings(max_examples=400, deadline=None)
@given(rendered_items())
def test_parse_returns_exactly_the_rendered_items(case: tuple[str, list[tuple[str, str, str, str]]]) -> None:
    text, items = case
    parsed = parse_tnm(text)
    assert [(i.prefix, i.letter, i.value, i.modifier) for i in parsed] == items, text
    for it, (prefix, letter, value, mod) in zip(parsed, items):
        full = letter + ("X" if value == "x" else value)
        main = "X" if value == "x" else ("is" if value == "is" else value[0])
        assert it.full == full
        assert it.category == letter + main
        assert it.canonical == prefix + full + (f" {mod}" if mod else "")
        assert text[it.start:it.end].lower().startswith((prefix + letter + value).lower())


@settings(max_examples=200, deadline=None)
@given(tnm_item())
def test_canonical_parses_back_to_the_same_item(item: tuple[str, str, str, str]) -> None:
    prefix, letter, value, mod = item
    first = TNMItem(prefix, letter, value, mod)
    again = parse_tnm(first.canonical)
    assert len(again) == 1
    assert (again[0].prefix, again[0].letter, again[0].value, again[0].modifier) == item


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Stage: pT2a pN0(i-) MX", ["pT2a", "pN0 (i-)", "MX"]),
        ("pT2N0M0", ["pT2", "N0", "M0"]),
        ("PT3A PN1MI PMX", ["pT3a", "pN1mi", "pMX"]),
        ("ypT1b pN1a (sn) cM0", ["ypT1b", "pN1a (sn)", "cM0"]),
        ("pTisN0M0", ["pTis", "N0", "M0"]),
        ("pN1miM0", ["pN1mi", "M0"]),
        ("T1b1 N0", ["T1b1", "N0"]),
        ("pT2(m) pN0(mol+)", ["pT2 (m)", "pN0 (mol+)"]),
        ("Nis", []),  # "is" is a T value only
    ],
)
def test_fixed_examples(text: str, canonical: list[str]) -> None:
    assert [i.canonical for i in parse_tnm(text)] == canonical


@pytest.mark.parametrize(
    "text",
    ["T-cell lymphoma", "MRI of the brain", "ten lymph nodes", "Tumor 2 cm", "N/A", "M-8070/3", "T12 vertebra",
     "cassette M12", "2.5 cm", "pTNM", "stage IIA", "Nottingham", "T5", "N4", "M2"],
)
def test_not_tnm(text: str) -> None:
    assert parse_tnm(text) == []


def test_category_and_group_helpers() -> None:
    assert tnm_category("pT2a pN0", "T") == "T2" and tnm_category("pT2a pN0", "n") == "N0"
    assert tnm_category("pTis", "T") == "Tis" and tnm_category("NX", "N") == "NX"
    assert tnm_category("no code here", "T") is None
    assert tnm_group("stage 2a") == "Stage IIA" and tnm_group("IIIC") == "Stage IIIC"
    assert tnm_group("Stage IB1") == "Stage IB1" and tnm_group(None) is None and tnm_group("pT2") is None
