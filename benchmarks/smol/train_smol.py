"""Train CancerLLM-Smol, the library's embedded default, with the library's own pipeline.

    python benchmarks/smol/train_smol.py [--version v3] [--data ../shared/data/tcga/tcga_reports_dev.jsonl] [--install]

v3 (the default): warm-started from v2, the v2 answers again with ``max_length`` 1,600 and a coded diagnosis
for every training report (``sft_v3.yaml``); the stack is cut back to rank 32 (``MAX_RANK``).  v2:
warm-started from v1, the whole training side, stage answers as ``{pT, pN, pM, group}`` and diagnoses with
their ICD-10-CM code (``sft_v2.yaml``; no phase 1 of its own: v1's is inside the warm start).  v1
(``--version v1``): the steps below with ``pretrain.yaml`` and ``sft.yaml``.

1. split the file by patient (:func:`cancerllm.benchmark.split.split_records`, 20% validation, fixed salt);
   only the training part is used below;
2. phase 1: LoRA continued pre-training on the training reports' texts (``pretrain.yaml``);
3. phase 2: instruction tuning on phenotype QA (+ "Not relevant" receptor questions outside breast) and
   diagnosis examples of the training reports (``sft.yaml``), on the merged phase-1 model;
4. stack both adapters into one (:func:`cancerllm.training.stack_adapters`, float16) and, with
   ``--install``, copy it into ``cancerllm/_resources/cancerllm-smol-adapter/``.

Every phase checkpoints and resumes: rerun the same command after an interruption.  Seeds are fixed in the
configs; the diagnosis subset is drawn with ``random.Random(42)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "benchmarks" / "out" / "smol"
PACKAGE_ADAPTER = ROOT / "cancerllm" / "_resources" / "cancerllm-smol-adapter"
V1_ADAPTER = ROOT / "cancerllm" / "_resources" / "cancerllm-smol-v1-adapter"
V2_ADAPTER = ROOT / "cancerllm" / "_resources" / "cancerllm-smol-v2-adapter"
V3_ADAPTER = ROOT / "cancerllm" / "_resources" / "cancerllm-smol-adapter"  # v3 ships as the default's adapter
DIAGNOSIS_SHARE = {"v1": 0.4, "v2": 0.4, "v3": 1.0, "v4": 1.0, "v5": 1.0}
MAX_RANK = 32  # the shipped adapter stays <= 20 MB: a deeper stack is cut back to rank 32 by SVD
CONFIGS = {"v2": "sft_v2.yaml", "v3": "sft_v3.yaml", "v4": "sft_v4.yaml", "v5": "sft_v5.yaml"}


def build_data(data_file: Path, *, version: str = "v2") -> dict[str, int]:
    from cancerllm.benchmark.split import split_records
    from cancerllm.data import (
        read_tcga,
        tcga_to_diagnosis_examples,
        tcga_to_phenotype_examples,
        write_examples,
    )
    from cancerllm.data.io import write_jsonl

    records = read_tcga(data_file)
    train, val = split_records(records)
    d = OUT / "data"
    d.mkdir(parents=True, exist_ok=True)
    write_jsonl([{"patient_id": r.patient_id, "text": r.text} for r in train], d / "pretrain_texts.jsonl")
    examples = tcga_to_phenotype_examples(train)
    rng = random.Random(42)
    diag_records = [r for r in train if rng.random() < DIAGNOSIS_SHARE[version]]
    examples += tcga_to_diagnosis_examples(diag_records, target="text" if version == "v1" else "text+icd_10")
    write_examples(examples, d / "sft_train.jsonl")
    (d / "split.json").write_text(json.dumps({"train": [r.patient_id for r in train],
                                              "validation": [r.patient_id for r in val]}, indent=1))
    return {"train_reports": len(train), "validation_reports": len(val), "sft_examples": len(examples),
            "diagnosis_examples": len(diag_records)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl"))
    ap.add_argument("--version", choices=["v1", "v2", "v3", "v4", "v5"], default="v3",
                    help="which recipe (default v3)")
    ap.add_argument("--install", action="store_true", help="copy the stacked adapter into the package")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--config", default=None,
                    help="instruction-tuning YAML instead of the version's own (same data paths; e.g. a smoke run)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import os

    os.chdir(ROOT)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from cancerllm.training import TrainingConfig, instruction_tune, pretrain, stack_adapters

    global OUT
    if args.version != "v1":
        OUT = ROOT / "benchmarks" / "out" / f"smol-{args.version}"
    print("data:", build_data(Path(args.data), version=args.version), flush=True)
    if args.version == "v1":
        pt_cfg = TrainingConfig.from_yaml(HERE / "pretrain.yaml")
        if not (Path(pt_cfg.output_dir) / "train_results.json").is_file():
            pretrain(pt_cfg)
        first, first_name = Path(pt_cfg.output_dir), "pretrain"
        sft_cfg = TrainingConfig.from_yaml(HERE / "sft.yaml")
    else:
        first, first_name = {"v2": (V1_ADAPTER, "v1"), "v3": (V2_ADAPTER, "v2"), "v4": (V3_ADAPTER, "v3"),
                             "v5": (V3_ADAPTER, "v3")}[args.version]
        sft_cfg = TrainingConfig.from_yaml(args.config or HERE / CONFIGS[args.version])
    if not (Path(sft_cfg.output_dir) / "train_results.json").is_file():
        instruction_tune(sft_cfg)
    stacked = stack_adapters([first, sft_cfg.output_dir], OUT / "cancerllm-smol-adapter",
                             base_model="cancerllm-smol", dtype="float16", max_rank=MAX_RANK)
    for name in ("train_results.json", "training_config.yaml"):
        shutil.copy2(Path(sft_cfg.output_dir) / name, stacked / f"sft_{name}")
        if (first / name).is_file():
            shutil.copy2(first / name, stacked / f"{first_name}_{name}")
    shutil.copy2(ROOT / "docs" / "cancerllm-smol.md", stacked / "README.md")  # the model card
    size = (stacked / "adapter_model.safetensors").stat().st_size
    print(f"stacked adapter: {stacked} ({size / 1e6:.1f} MB)", flush=True)
    if args.install:
        if PACKAGE_ADAPTER.exists():
            shutil.rmtree(PACKAGE_ADAPTER)
        shutil.copytree(stacked, PACKAGE_ADAPTER)
        print(f"installed into {PACKAGE_ADAPTER}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
