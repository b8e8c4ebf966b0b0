"""A synthetic file in the shared TCGA format (hand-made reports with labels that appear in the text)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

SITES = {"BRCA": ("Breast", "C50.9", "Infiltrating Ductal Carcinoma"),
         "LUAD": ("Lung", "C34.1", "Lung Adenocarcinoma"),
         "KIRC": ("Kidney", "C64.9", "Kidney Clear Cell Renal Carcinoma")}  # fmt: skip


def make_records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ctype = rng.choice(sorted(SITES))
        site, icd, hist = SITES[ctype]
        side = rng.choice(["Left", "Right"])
        t, g = rng.choice(["T1", "T2", "T3"]), rng.choice(["G1", "G2", "G3"])
        stage = rng.choice(["Stage I", "Stage IIA", "Stage III"])
        er = rng.choice(["Positive", "Negative"]) if ctype == "BRCA" else None
        # every fourth report writes T and N but neither M nor the stage group (its registry M is missing)
        m = "M0" if i % 4 else None
        written = f" M0, {stage}" if m else ""
        text = (f"{side} {site.lower()}, resection: {hist.lower()}, grade {g[1]}, p{t} N0{written}. "
                f"{'ER ' + er.lower() + '.' if er else ''}")
        out.append({"patient_id": f"TCGA-SY-{i:04d}", "cancer_type": ctype, "text": text,
                    "labels": {"stage": stage, "pT": t, "pN": "N0", "pM": m, "histology": hist, "site": site,
                               "laterality": side, "grade": g, "ER": er, "PR": None, "HER2": None,
                               "tumor_size": None, "icd_10": icd, "icd_o_3_histology": "8500/3",
                               "icd_o_3_site": icd}})
    return out


@pytest.fixture(scope="session")
def tcga_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tcga") / "synthetic.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_records(60)), encoding="utf-8")
    return path
