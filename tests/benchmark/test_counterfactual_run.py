"""`cancerllm robustness`: one instruction-tuning run per counterfactual rate, each scored (tiny model)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("peft")


def _config(base, out):
    return {"output_dir": str(out / "unused"), "model": {"name_or_path": str(base)},
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0}, "training": {"max_steps": 1, "batch_size": 4},
            "data": {"share_prefix": True}, "logging": {"progress": False}}


def test_counterfactual_robustness_trains_one_adapter_per_rate(tcga_file, tiny_model_dir, tmp_path):
    from cancerllm.benchmark import run_counterfactual_robustness

    res = run_counterfactual_robustness(tcga_file, config=_config(tiny_model_dir, tmp_path), out_dir=tmp_path,
                                        rates=(0.5,), limit=2, train_limit=6, ci=False)
    rates = [p["rate"] for p in res["rates"]]
    assert rates == [0.0, 0.5]
    clean, noisy = res["rates"]
    assert clean["n_changed"] == 0 and noisy["n_changed"] == round(0.5 * noisy["n_train_examples"])
    for p in res["rates"]:
        assert (tmp_path / f"rate-{int(p['rate'] * 100):02d}" / "adapter_config.json").is_file()
        assert 0.0 <= p["accuracy"]["value"] <= 1.0
    assert "Counterfactual labels" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["meta"]["n_train_reports"] == 6


def test_cli_robustness_validates_its_input(tcga_file, tiny_model_dir, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from cancerllm.cli import app

    cfg = tmp_path / "sft.yaml"
    cfg.write_text(yaml.safe_dump(_config(tiny_model_dir, tmp_path)))
    r = CliRunner().invoke(app, ["robustness", "--data", str(tcga_file), "--config", str(cfg), "--rates", "none"])
    assert r.exit_code == 2 and "at least one rate" in r.output
    r = CliRunner().invoke(app, ["robustness", "--data", str(tcga_file), "--config", str(cfg), "--rates", "1.5"])
    assert r.exit_code == 2 and "(0, 1]" in r.output
    r = CliRunner().invoke(app, ["robustness", "--data", str(tcga_file), "--config", str(tmp_path / "x.yaml")])
    assert r.exit_code == 2 and "no such training config" in r.output
