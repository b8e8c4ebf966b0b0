"""Counterfactual-label robustness (the paper's 20-80% label-noise testbed): one instruction-tuning run per
noise rate on the training part of the split, each scored on the validation part.

Every rate trains from the same base with the same config and seed; only the share of training answers
replaced by wrong ones (:func:`cancerllm.robustness.counterfactual_labels`) changes.  Rate 0 (clean
labels) is always included as the reference.  This trains ``len(rates) + 1`` adapters: on a CPU use a
small model and ``train_limit``; on a GPU the paper's settings.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_COUNTERFACTUAL_RATES", "run_counterfactual_robustness"]

#: The paper's counterfactual-label rates.
DEFAULT_COUNTERFACTUAL_RATES: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)


def run_counterfactual_robustness(
    data: str | os.PathLike[str],
    *,
    config: Any,
    out_dir: str | os.PathLike[str],
    rates: Sequence[float] = DEFAULT_COUNTERFACTUAL_RATES,
    limit: int | None = None,
    train_limit: int | None = None,
    seed: int = 0,
    ci: bool = True,
    batch_size: int = 32,
    command: str | None = None,
) -> dict[str, Any]:
    """Train one adapter per counterfactual rate (plus clean labels) and score each.

    Args:
        data: a file in the shared TCGA format; training uses its ``train`` split, scoring its ``validation``
            split (patient-level, :mod:`cancerllm.benchmark.split`).
        config: the instruction-tuning :class:`~cancerllm.training.TrainingConfig` (object, mapping or YAML
            path); ``output_dir`` is replaced by ``<out_dir>/rate-<r>`` and ``data.train`` is ignored.
        out_dir: where the adapters, ``results.json``, ``report.md`` and ``robustness.png`` go.
        rates: noise rates in (0, 1].
        limit: validation reports scored (deterministic subset).
        train_limit: training reports used (deterministic subset), to bound CPU time.
        seed: seed of the label corruption and of the bootstrap.
        ci, batch_size: as in :func:`~cancerllm.benchmark.run_benchmark`.
        command: the command line to record.

    Returns:
        ``{"meta": ..., "rates": [{"rate", "n_changed", "adapter", "accuracy", "average_f1", ...}]}``.
    """
    from ..data import read_tcga, tcga_to_phenotype_examples
    from ..robustness import counterfactual_labels
    from ..training import instruction_tune, load_config
    from .runner import run_benchmark
    from .tasks import select_records

    for r in rates:
        if not 0 < float(r) <= 1:
            raise InputError(f"counterfactual rates must be in (0, 1], got {r}")
    cfg = load_config(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = read_tcga(data)
    train = select_records(records, split="train", limit=train_limit)
    clean = tcga_to_phenotype_examples(train)
    points: list[dict[str, Any]] = []
    for rate in [0.0, *[float(r) for r in rates]]:
        tag = f"rate-{int(round(rate * 100)):02d}"
        if rate > 0:
            examples, changes = counterfactual_labels(clean, rate=rate, seed=seed)
        else:
            examples, changes = clean, []
        run_cfg = cfg.updated(output_dir=str(out / tag), data={"train": []})
        logger.info("counterfactual rate %.2f: %d of %d training answers changed", rate, len(changes), len(clean))
        adapter = instruction_tune(run_cfg, examples=examples)
        res = run_benchmark(data, models=[str(adapter)], rules=False, diagnosis=False, misspelling_rates=(),
                            limit=limit, ci=ci, seed=seed, batch_size=batch_size)
        sys_ = next(iter(res["systems"].values()))
        ev = sys_["phenotype"] or {}
        points.append({"rate": rate, "n_changed": len(changes), "n_train_examples": len(clean),
                       "adapter": str(adapter), "accuracy": sys_["phenotype_accuracy"]["macro"],
                       "value_bearing": sys_["phenotype_accuracy"]["value_bearing"],
                       "not_relevant": sys_["phenotype_accuracy"]["not_relevant"], "fields": sys_["fields"]["fields"],
                       "average_f1": ev.get("average_f1"), "average_f1_ci": ev.get("average_f1_ci"),
                       "per_phenotype": sys_["phenotype_accuracy"]["per_phenotype"]})
    result = {"meta": {"data": str(data), "base_model": cfg.model.name_or_path, "n_train_reports": len(train),
                       "limit": limit, "seed": seed, "command": command}, "rates": points}
    (out / "results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    _write_report(result, out)
    return result


def _limit(meta: dict[str, Any]) -> str:
    return f" (limit {meta['limit']})" if meta.get("limit") else ""


def _write_report(result: dict[str, Any], out: Path) -> None:
    from .report import _pct, _table

    def acc(p: dict[str, Any], key: str) -> str:
        a = p.get(key) or {}
        return _pct(a.get("value"), a.get("ci"))

    rows = [[f"{100 * p['rate']:.0f}%", str(p["n_changed"]), acc(p, "accuracy"), acc(p, "value_bearing"),
             acc(p, "not_relevant"), _pct(p["average_f1"], p.get("average_f1_ci"))] for p in result["rates"]]
    table = _table(["Counterfactual labels", "Answers changed", "Macro acc., value-bearing fields [95% CI]",
                    "Match acc., value-bearing questions", "Not relevant acc.", "Avg F1 [95% CI]"], rows)
    m = result["meta"]
    lines = ["# Counterfactual-label robustness", "",
             f"Base `{m['base_model']}`, {m['n_train_reports']} training reports, data `{m['data']}`; "
             f"each row is its own instruction-tuning run, scored on the validation split"
             f"{_limit(m)}.", ""]
    if m.get("command"):
        lines += [f"Command: `{m['command']}`", ""]
    lines += [table, ""]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        xs = [100 * p["rate"] for p in result["rates"]]
        ax.plot(xs, [100 * (p["accuracy"]["value"] or 0) for p in result["rates"]], marker="o", label="macro acc.")
        ax.plot(xs, [100 * (p["average_f1"] or 0) for p in result["rates"]], marker="s", label="avg F1")
        ax.set_xlabel("counterfactual training labels (%)")
        ax.set_ylabel("validation score (%)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "robustness.png", dpi=120)
        plt.close(fig)
        lines += ["![robustness](robustness.png)", ""]
    except ImportError:
        lines += ["(No plot: matplotlib is not installed.)", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
