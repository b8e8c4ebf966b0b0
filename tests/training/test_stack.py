"""Stacking a pre-training adapter and an instruction adapter (trained on the merged base) into one adapter."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from cancerllm.errors import ConfigError, ModelLoadError  # noqa: E402
from cancerllm.testing import make_tiny_model, make_tiny_tokenizer  # noqa: E402
from cancerllm.training import stack_adapters  # noqa: E402


def _random_adapter(model, r, alpha, seed, targets):
    pm = peft.get_peft_model(model, peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=targets,
                                                    task_type="CAUSAL_LM"))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return pm.eval()


def test_stacked_adapter_equals_merge_then_second_adapter(tmp_path):
    tok = make_tiny_tokenizer()
    ids = torch.tensor([tok("the left breast, grade 3").input_ids])
    # phase 1 on the base, attention only
    pt = _random_adapter(make_tiny_model(tok, hidden_size=32), 4, 8, 1, ["q_proj", "v_proj"])
    pt.save_pretrained(tmp_path / "pt")
    merged = pt.merge_and_unload()
    # phase 2 on the merged base, every linear layer
    sft = _random_adapter(merged, 8, 16, 2, "all-linear")
    with torch.no_grad():
        want = sft(ids).logits
    sft.save_pretrained(tmp_path / "sft")
    (tmp_path / "sft" / "cancerllm_config.json").write_text(json.dumps(
        {"adapter": True, "base_model": "x", "training": {"stage": "sft", "merged_base": "/somewhere/merged-base"}}))

    out = stack_adapters([tmp_path / "pt", tmp_path / "sft"], tmp_path / "stacked", base_model="base",
                         dtype="float32")
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 12 and cfg["lora_alpha"] == 12 and cfg["base_model_name_or_path"] == "base"
    saved = json.loads((out / "cancerllm_config.json").read_text())
    assert saved["base_model"] == "base"
    assert saved["training"]["stacked"] == [{"adapter": "pt"},
                                            {"adapter": "sft", "stage": "sft", "merged_base": "merged-base"}]
    got_model = peft.PeftModel.from_pretrained(make_tiny_model(tok, hidden_size=32), str(out)).eval()
    with torch.no_grad():
        got = got_model(ids).logits
    assert torch.allclose(got, want, atol=1e-4)
    # half precision is close, and half the size
    half = stack_adapters([tmp_path / "pt", tmp_path / "sft"], tmp_path / "half")
    assert (half / "adapter_model.safetensors").stat().st_size < 0.6 * (out / "adapter_model.safetensors").stat().st_size
    with torch.no_grad():
        got16 = peft.PeftModel.from_pretrained(make_tiny_model(tok, hidden_size=32), str(half)).eval()(ids).logits
    assert torch.allclose(got16, want, atol=1e-2)


def test_refuses_what_it_cannot_stack_exactly(tmp_path):
    with pytest.raises(ModelLoadError, match="not a PEFT adapter"):
        stack_adapters([tmp_path], tmp_path / "out")
    tok = make_tiny_tokenizer()
    pm = peft.get_peft_model(make_tiny_model(tok, hidden_size=32),
                             peft.LoraConfig(r=2, target_modules=["q_proj"], use_dora=True, task_type="CAUSAL_LM"))
    pm.save_pretrained(tmp_path / "dora")
    with pytest.raises(ConfigError, match="use_dora"):
        stack_adapters([tmp_path / "dora"], tmp_path / "out")


def _deltas(adapter_dir):
    """module -> B @ A * scale of a saved adapter."""
    from safetensors.torch import load_file

    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    w = load_file(str(adapter_dir / "adapter_model.safetensors"))
    scale = cfg["lora_alpha"] / cfg["r"]
    return {k.split(".lora_A.")[0]: (w[k.replace(".lora_A.", ".lora_B.")].double() @ w[k].double()) * scale
            for k in w if ".lora_A." in k}


def test_max_rank_is_the_best_low_rank_cut(tmp_path):
    tok = make_tiny_tokenizer()
    first = _random_adapter(make_tiny_model(tok, hidden_size=32), 6, 12, 1, "all-linear")
    first.save_pretrained(tmp_path / "a")
    second = _random_adapter(first.merge_and_unload(), 4, 8, 2, "all-linear")
    second.save_pretrained(tmp_path / "b")
    exact = stack_adapters([tmp_path / "a", tmp_path / "b"], tmp_path / "exact", dtype="float32")
    full = _deltas(exact)
    # a cut at or above the summed rank changes nothing
    same = stack_adapters([tmp_path / "a", tmp_path / "b"], tmp_path / "same", dtype="float32", max_rank=10)
    assert json.loads((same / "adapter_config.json").read_text())["r"] == 10
    for name, d in _deltas(same).items():
        assert torch.allclose(d, full[name], atol=1e-5)
    # below it: rank 7, and each module's error is exactly the discarded singular values (Eckart-Young)
    cut = stack_adapters([tmp_path / "a", tmp_path / "b"], tmp_path / "cut", dtype="float32", max_rank=7)
    assert json.loads((cut / "adapter_config.json").read_text())["r"] == 7
    got = _deltas(cut)
    assert got.keys() == full.keys()
    for name, d in got.items():
        s = torch.linalg.svdvals(full[name])
        assert torch.linalg.matrix_rank(d, atol=1e-6) <= 7
        err = torch.linalg.matrix_norm(d - full[name])
        assert err == pytest.approx(float(s[7:].square().sum().sqrt()), rel=1e-4, abs=1e-6)
    rec = json.loads((cut / "adapter_config.json").read_text())
    assert rec["lora_alpha"] == 7
    # the cut model still runs through PEFT, close to the exact stack
    ids = torch.tensor([tok("the left breast, grade 3").input_ids])
    with torch.no_grad():
        want = peft.PeftModel.from_pretrained(make_tiny_model(tok, hidden_size=32), str(exact)).eval()(ids).logits
        near = peft.PeftModel.from_pretrained(make_tiny_model(tok, hidden_size=32), str(cut)).eval()(ids).logits
    assert torch.isfinite(near).all() and not torch.equal(near, want)
    with pytest.raises(ConfigError, match="max_rank"):
        stack_adapters([tmp_path / "a"], tmp_path / "bad", max_rank=0)


def test_max_rank_records_the_error_it_made(tmp_path):
    tok = make_tiny_tokenizer()
    first = _random_adapter(make_tiny_model(tok, hidden_size=32), 4, 8, 3, ["q_proj"])
    first.save_pretrained(tmp_path / "a")
    (tmp_path / "a" / "cancerllm_config.json").write_text(json.dumps({"adapter": True, "base_model": "x"}))
    # the same update twice: summed rank 8, true rank 4, so a cut to 4 is exact
    stack_adapters([tmp_path / "a", tmp_path / "a"], tmp_path / "twice", dtype="float32")
    exact = _deltas(tmp_path / "twice")
    cut = stack_adapters([tmp_path / "a", tmp_path / "a"], tmp_path / "cut", dtype="float32", max_rank=4)
    for name, d in _deltas(cut).items():
        assert torch.allclose(d, exact[name], atol=1e-5)
    rec = json.loads((cut / "cancerllm_config.json").read_text())["training"]["rank_cut"]
    assert rec["from"] == 8 and rec["to"] == 4 and rec["relative_error"] < 1e-6
    lossy = stack_adapters([tmp_path / "a", tmp_path / "a"], tmp_path / "lossy", dtype="float32", max_rank=2)
    rec = json.loads((lossy / "cancerllm_config.json").read_text())["training"]["rank_cut"]
    assert 0.01 < rec["relative_error"] <= rec["worst_module_relative_error"] < 1


def test_max_rank_above_a_modules_width_pads_it(tmp_path):
    tok = make_tiny_tokenizer()
    # hidden size 32: a summed rank of 44 cut to 36 is still above what a 32-wide module can hold
    first = _random_adapter(make_tiny_model(tok, hidden_size=32), 24, 24, 4, ["q_proj", "v_proj"])
    first.save_pretrained(tmp_path / "a")
    second = _random_adapter(first.merge_and_unload(), 20, 20, 5, ["q_proj", "v_proj"])
    second.save_pretrained(tmp_path / "b")
    exact = _deltas(stack_adapters([tmp_path / "a", tmp_path / "b"], tmp_path / "exact", dtype="float32"))
    cut = stack_adapters([tmp_path / "a", tmp_path / "b"], tmp_path / "cut", dtype="float32", max_rank=36)
    for name, d in _deltas(cut).items():
        assert torch.allclose(d, exact[name], atol=1e-4)  # true rank <= 32 <= 36: exact
    ids = torch.tensor([tok("the left breast, grade 3").input_ids])
    with torch.no_grad():
        assert torch.isfinite(peft.PeftModel.from_pretrained(make_tiny_model(tok, hidden_size=32),
                                                             str(cut)).eval()(ids).logits).all()
