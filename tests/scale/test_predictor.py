"""The picklable batch predictors: one row per input, equal to extract_many, bad rows as error rows."""

from __future__ import annotations

import pickle

import pytest

from cancerllm.scale import BatchDiagnoser, BatchExtractor
from cancerllm.scale import predictor as predictor_mod

pd = pytest.importorskip("pandas")

TEXTS = ["Invasive ductal carcinoma, left breast, G2.", None, "Squamous cell carcinoma, right lung, G3.", "   "]


def test_rows_equal_extract_many_and_bad_rows_are_error_rows(tiny_model_dir):
    ex = BatchExtractor(str(tiny_model_dir), phenotypes=["grade", "laterality"], batch_size=8)
    out = pickle.loads(pickle.dumps(ex))(pd.DataFrame({"id": ["a", "b", "c", "d"], "text": TEXTS}))
    assert list(out.columns) == ex.columns() and list(out["id"]) == ["a", "b", "c", "d"]
    ref = ex.llm().phenotype_extractor(["grade", "laterality"], progress=False).extract_many(
        [TEXTS[0], TEXTS[2]], as_dataframe=False)
    for row, r in zip(out.iloc[[0, 2]].itertuples(), ref):
        assert row.grade == r.grade and row.laterality == r.laterality and row.raw_grade == r.raw["grade"]
        assert row.error is None and row.library_version and len(row.input_sha256) == 64
    assert out.loc[1, "error"] and out.loc[3, "error"] and out.loc[1, "grade"] is None
    # dict-of-arrays batches (Ray's numpy format) give dicts
    d = ex({"id": ["x"], "text": [TEXTS[0]]})
    assert isinstance(d, dict) and d["grade"] == [ref[0].grade]


def test_one_model_per_process_and_settings_only_in_the_pickle(tiny_model_dir):
    a = BatchExtractor(str(tiny_model_dir), phenotypes=["grade"])
    b = BatchExtractor(str(tiny_model_dir), phenotypes=["laterality"])
    assert a.llm() is b.llm()  # same model settings: loaded once in this process
    a({"id": ["1"], "text": [TEXTS[0]]})
    state = pickle.dumps(a)
    assert len(state) < 5000 and not any(k.startswith("_task") for k in pickle.loads(state).__dict__)
    assert predictor_mod._MODELS


def test_schema_and_diagnoser(tiny_model_dir):
    ex = BatchExtractor(str(tiny_model_dir), phenotypes=["stage"])
    assert ex.spark_schema().startswith("`id` string, `stage` array<string>, `raw_stage` string")
    dg = BatchDiagnoser(str(tiny_model_dir), max_new_tokens=4)
    out = dg(pd.DataFrame({"id": ["n1", "n2"], "text": ["cough and weight loss", ""]}))
    assert list(out.columns) == dg.columns() and out.loc[0, "error"] is None and out.loc[1, "error"]
    assert {"icd_10", "needs_review"} <= set(dg.columns()) and "`needs_review` boolean" in dg.spark_schema()
    # the tiny model writes no code: nothing to check, nothing to review; the failed row has neither
    assert out.loc[0, "icd_10"] is None and out.loc[0, "needs_review"] is not None and not out.loc[0, "needs_review"]
    assert out.loc[1, "icd_10"] is None and out.loc[1, "needs_review"] is None
    with pytest.raises(Exception, match="columns"):
        dg(pd.DataFrame({"note": ["x"]}))
