"""Shared by the Ray and Spark tests: run `cancerllm extract` with several engines on the same input."""

from __future__ import annotations

import json

ROWS = [("a1", "Invasive ductal carcinoma of the left breast, G2, 2.5 cm."), ("b2", "   "),
        ("c3", "Squamous cell carcinoma, right lung, pT2 pN0, G3."), ("d4", "Adenocarcinoma of the colon, G1.")]


def _rows(path):
    import pandas as pd

    frame = pd.read_parquet(path).sort_values("id").reset_index(drop=True)
    return [{k: (list(v) if hasattr(v, "tolist") and not isinstance(v, str) else (None if v != v else v))
             for k, v in r.items()} for r in frame.to_dict("records")]


def engine_rows(model_dir, tmp_path, engines):
    from typer.testing import CliRunner

    from cancerllm.cli import app

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in ROWS), encoding="utf-8")
    out = []
    for engine in engines:
        target = tmp_path / f"{engine}.parquet"
        res = CliRunner().invoke(app, ["extract", str(src), "--model", str(model_dir), "-p", "grade", "-p",
                                       "laterality", "-q", "-o", str(target), "--engine", engine, "--workers", "2"])
        assert res.exit_code == 0, (engine, res.output)
        out.append(_rows(target))
    return out
