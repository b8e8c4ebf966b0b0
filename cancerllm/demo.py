"""``python -m cancerllm.demo``: phenotype extraction and diagnosis generation on the embedded default model,
over four real TCGA pathology reports shipped inside the package.  Runs offline."""

from __future__ import annotations

import argparse
import textwrap
import time
from importlib.resources import as_file, files
from typing import Any

__all__ = ["load_sample_reports", "main"]


def load_sample_reports() -> list[dict[str, Any]]:
    """The sample TCGA reports shipped with the package (see ``_resources/SAMPLE_DATA.md``)."""
    from .data.io import iter_records

    with as_file(files("cancerllm") / "_resources" / "sample_reports.jsonl") as path:
        return [record for _, record in iter_records(path)]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return ", ".join(v)
    return str(v)


def _table(rows: list[list[str]], header: list[str], width: int = 34) -> str:
    rows = [[textwrap.shorten(c, width, placeholder="…") for c in r] for r in rows]
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    sep = "  ".join("-" * w for w in widths)
    body = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
    return f"{line}\n{sep}\n{body}"


_GOLD = {
    "tumor_size": "tumor_size", "histological_type": "histology", "laterality": "laterality",
    "stage": "stage", "tumor_location": "site", "grade": "grade",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="cancerllm-smol", help="model name or path (default: cancerllm-smol)")
    parser.add_argument("--limit", type=int, default=4, help="number of sample reports")
    parser.add_argument("--diagnosis-tokens", type=int, default=64,
                        help="max new tokens for diagnoses (the paper uses 500; 64 keeps the demo quick)")
    args = parser.parse_args(argv)

    from cancerllm import CancerLLM
    from cancerllm.data import TCGARecord, coded_diagnosis_answer, stage_answer

    reports = load_sample_reports()[: args.limit]
    t0 = time.perf_counter()
    model = CancerLLM.from_pretrained(args.model)
    print(f"loaded {model!r} in {time.perf_counter() - t0:.1f} s (offline)")
    if args.model == "cancerllm-smol" and not model.has_adapter:
        print("note: no trained CancerLLM-Smol adapter ships yet, so this is the untuned SmolLM2-135M base model;\n"
              "      its answers are real but not task-tuned (see README).")
    print()

    t0 = time.perf_counter()
    results = model.phenotype_extractor(progress=False).extract_many([r["text"] for r in reports])
    t_ext = time.perf_counter() - t0
    for rep, res in zip(reports, results):
        print(f"== {rep['patient_id']} ({rep['cancer_type']}), {len(rep['text']):,} characters")
        rows = []
        for name, answer in res.as_dict().items():
            gold_key = _GOLD.get(name)
            gold = rep["labels"].get(gold_key) if gold_key else None
            if name in ("receptors", "receptor_status"):
                lab = rep["labels"]
                gold = ", ".join(f"{k} {lab[k]}" for k in ("ER", "PR", "HER2") if lab.get(k)) or None
            if name == "stage":  # the T, N, M items and the group, as the model is trained to answer
                gold = stage_answer(TCGARecord.model_validate(rep))
            rows.append([name, _fmt(answer), _fmt(gold)])
        print(_table(rows, ["phenotype", "extracted", "registry gold"]))
        print()
    print(f"phenotype extraction: {len(reports)} reports x 8 questions in {t_ext:.1f} s\n")

    t0 = time.perf_counter()
    diags = model.diagnosis_generator(max_new_tokens=args.diagnosis_tokens, progress=False).generate_many(
        [r["text"] for r in reports]
    )
    t_diag = time.perf_counter() - t0
    agrees = {True: "yes", False: "NO: review", None: "-"}
    rows = [[r["patient_id"], d.text or "(empty)", agrees[d.code_consistent],
             coded_diagnosis_answer(TCGARecord.model_validate(r)) or "-"]
            for r, d in zip(reports, diags)]
    print(_table(rows, ["report", "generated diagnosis (ICD-10-CM)", "code agrees with text",
                        "registry histology, site (icd_10)"], width=60))
    print(f"\ndiagnosis generation: {len(reports)} reports in {t_diag:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
