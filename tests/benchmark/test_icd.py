"""ICD-10-CM mapping of diagnosis text on a tiny hand-written code list, and code comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from cancerllm.benchmark import IcdMapper, icd_match
from cancerllm.benchmark.icd import IcdCode, normalize_code
from cancerllm.errors import DataFormatError, InputError

TSV = """code\tcategory\ttitle
C34.90\tC34\tMalignant neoplasm of unspecified part of unspecified bronchus or lung
C34.11\tC34\tMalignant neoplasm of upper lobe, right bronchus or lung
C50.411\tC50\tMalignant neoplasm of upper-outer quadrant of right female breast
C50.919\tC50\tMalignant neoplasm of unspecified site of unspecified female breast
C64.9\tC64\tMalignant neoplasm of unspecified kidney, except renal pelvis
C73\tC73\tMalignant neoplasm of thyroid gland
C78.00\tC78\tSecondary malignant neoplasm of unspecified lung
D05.90\tD05\tUnspecified type of carcinoma in situ of unspecified breast
D34\tD34\tBenign neoplasm of thyroid gland
"""


@pytest.fixture()
def mapper(tmp_path: Path) -> IcdMapper:
    path = tmp_path / "codes.tsv"
    path.write_text(TSV, encoding="utf-8")
    return IcdMapper.from_tsv(path)


def test_loads_rows(mapper: IcdMapper) -> None:
    assert len(mapper) == 9
    assert mapper.codes[0] == IcdCode(
        "C34.90", "C34", "Malignant neoplasm of unspecified part of unspecified bronchus or lung"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # "right upper outer quadrant breast" + carcinoma -> the most specific shared title
        ("Infiltrating ductal carcinoma, right upper outer quadrant of breast", "C50.411"),
        # breast only: the general breast title has less unmatched weight than C50.411
        ("Infiltrating ductal carcinoma, breast", "C50.919"),
        # primary lung: "Secondary" and "in situ" titles rank below
        ("Lung adenocarcinoma", "C34.90"),
        ("Adenocarcinoma, right upper lobe lung", "C34.11"),
        ("metastatic carcinoma, lung", "C78.00"),
        ("Ductal carcinoma in situ, breast", "D05.90"),
        ("Papillary carcinoma of thyroid", "C73"),
        ("Follicular adenoma, thyroid", "D34"),
        # synonym: renal -> kidney
        ("Clear cell renal cell carcinoma", "C64.9"),
    ],
)
def test_map(mapper: IcdMapper, text: str, expected: str) -> None:
    assert mapper.map(text) == expected


def test_no_site_word_no_code(mapper: IcdMapper) -> None:
    assert mapper.map("Malignant carcinoma") is None
    assert mapper.map("") is None
    assert mapper.map(None) is None


def test_scores_ranked(mapper: IcdMapper) -> None:
    ranked = mapper.scores("carcinoma of breast", top_k=3)
    assert [c.code for c, _ in ranked] == ["C50.919", "C50.411", "D05.90"]
    assert ranked[0][1] >= ranked[1][1]


def test_icd_match() -> None:
    assert icd_match("C50.9", "c509")
    assert icd_match(" C50.9 ", "C50.9", level="full")
    assert not icd_match("C50.411", "C50.9")
    assert icd_match("C50.411", "C50.9", level="category")
    assert not icd_match("C34.90", "C50.9", level="category")
    assert not icd_match(None, "C50.9")
    assert not icd_match("C50.9", None, level="category")
    assert normalize_code("c50.9") == "C509"
    with pytest.raises(InputError):
        icd_match("C50.9", "C50.9", level="chapter")  # type: ignore[arg-type]


def test_from_tsv_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        IcdMapper.from_tsv(tmp_path / "missing.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("code\tname\nC73\tthyroid\n", encoding="utf-8")
    with pytest.raises(DataFormatError):
        IcdMapper.from_tsv(bad)
    empty = tmp_path / "empty.tsv"
    empty.write_text("code\tcategory\ttitle\nC73\t\t\n", encoding="utf-8")
    with pytest.raises(DataFormatError):
        IcdMapper.from_tsv(empty)
    no_cat = tmp_path / "nocat.tsv"
    no_cat.write_text("code\ttitle\nC73\tMalignant neoplasm of thyroid gland\n", encoding="utf-8")
    assert IcdMapper.from_tsv(no_cat).codes[0].category == "C73"
    with pytest.raises(InputError):
        IcdMapper([])
