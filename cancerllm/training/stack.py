"""Stack LoRA adapters trained one on top of another into one adapter on the original base.

Instruction tuning after continued pre-training trains its adapter on *base + pre-training adapter
(merged)*.  To ship or load the pair as one ordinary PEFT adapter on the original base, the two low-rank
updates are concatenated: ``B1 A1 s1 + B2 A2 s2 = [B1 s1 | B2 s2] [A1 ; A2]``, a LoRA of rank ``r1 + r2``
with scaling 1.  This is exact (tested against merging adapter 1 and applying adapter 2), needs no
training, and works for plain LoRA on linear layers (no DoRA, no per-module rank or alpha patterns, no
bias training).

A deep stack grows the rank (and the file) with every phase.  ``max_rank`` cuts it back: each module's
update ``B A`` is replaced by its best rank-``max_rank`` approximation (truncated SVD, computed from QR
factors of ``B`` and ``Aᵀ`` so the full matrix is never formed).  That is exact when the update's true rank
fits, and otherwise the smallest possible error in the Frobenius norm (Eckart-Young); the relative error
dropped is recorded in ``cancerllm_config.json`` (``training.rank_cut``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelLoadError

__all__ = ["stack_adapters"]

_WEIGHTS = "adapter_model.safetensors"
_CONFIG = "adapter_config.json"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def _read(adapter: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors.torch import load_file

    if not (adapter / _CONFIG).is_file() or not (adapter / _WEIGHTS).is_file():
        raise ModelLoadError(f"{adapter} is not a PEFT adapter directory ({_CONFIG} + {_WEIGHTS})")
    cfg = json.loads((adapter / _CONFIG).read_text(encoding="utf-8"))
    if cfg.get("peft_type", "LORA") != "LORA":
        raise ConfigError(f"{adapter}: only LoRA adapters can be stacked, not {cfg.get('peft_type')}")
    for key in ("use_dora", "rank_pattern", "alpha_pattern", "modules_to_save"):
        if cfg.get(key):
            raise ConfigError(f"{adapter}: adapters with {key} cannot be stacked exactly")
    if cfg.get("bias", "none") != "none":
        raise ConfigError(f"{adapter}: adapters that train biases cannot be stacked exactly")
    return cfg, load_file(str(adapter / _WEIGHTS))


def _truncate(a: Any, b: Any, k: int) -> tuple[Any, Any, float, float]:
    """``(A', B', kept, dropped)``: the best rank-``k`` factors of ``B @ A`` (``A``: r x in, ``B``: out x r) and
    the squared Frobenius norms kept and dropped.  The singular values are split evenly between the factors."""
    import torch

    qb, rb = torch.linalg.qr(b.double())            # B = Qb Rb
    qa, ra = torch.linalg.qr(a.double().T)          # A^T = Qa Ra
    u, s, vh = torch.linalg.svd(rb @ ra.T, full_matrices=False)  # B A = Qb (Rb Ra^T) Qa^T
    root = s[:k].sqrt()
    b_new = (qb @ u[:, :k]) * root
    a_new = root[:, None] * (vh[: len(root)] @ qa.T)
    if len(root) < k:  # a module narrower than k (its update has fewer singular values): zero rank padding
        a_new = torch.cat([a_new, a_new.new_zeros(k - len(root), a_new.shape[1])], 0)
        b_new = torch.cat([b_new, b_new.new_zeros(b_new.shape[0], k - len(root))], 1)
    sq = s.square()
    return a_new.float(), b_new.float(), float(sq[:k].sum()), float(sq[k:].sum())


def _scrub(value: Any) -> Any:
    """Absolute local paths -> their last part (a shipped adapter should not name the build machine)."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return Path(value).name
    return value


def stack_adapters(
    adapters: Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    base_model: str | None = None,
    dtype: str = "float16",
    max_rank: int | None = None,
) -> Path:
    """Write one LoRA adapter equal to applying ``adapters`` in order, each trained on the base merged with
    the ones before it (continued pre-training, then instruction tuning).

    Args:
        adapters: adapter directories, first to last.
        output_dir: where the stacked adapter goes; the last adapter's tokenizer files and
            ``cancerllm_config.json`` are copied along (with ``base_model`` set).
        base_model: the original base recorded in the result (default: the first adapter's base).
        dtype: dtype of the saved weights (``"float16"`` halves the size; ``"float32"`` keeps it exact).
        max_rank: cut the stacked rank back to this by truncated SVD when the sum of the ranks exceeds it
            (default: keep the exact concatenation).

    Returns:
        ``output_dir``.
    """
    import torch
    from safetensors.torch import save_file

    if len(adapters) < 1:
        raise ConfigError("stack_adapters needs at least one adapter")
    paths = [Path(a) for a in adapters]
    loaded = [_read(p) for p in paths]
    out_dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}.get(dtype)
    if out_dtype is None:
        raise ConfigError(f"dtype={dtype!r}; use 'float16', 'bfloat16' or 'float32'")

    modules: dict[str, dict[int, tuple[Any, Any, float]]] = {}
    for i, (cfg, weights) in enumerate(loaded):
        r, alpha = int(cfg["r"]), float(cfg["lora_alpha"])
        scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
        for key, a in weights.items():
            if ".lora_A." not in key:
                if ".lora_B." not in key:
                    raise ConfigError(f"{paths[i]}: unexpected tensor {key}; only lora_A/lora_B can be stacked")
                continue
            name = key.split(".lora_A.")[0]
            b = weights[key.replace(".lora_A.", ".lora_B.")]
            modules.setdefault(name, {})[i] = (a.float(), b.float(), scale)
    ranks = [int(cfg["r"]) for cfg, _ in loaded]
    total_r = sum(ranks)
    if max_rank is not None and int(max_rank) < 1:
        raise ConfigError(f"max_rank must be at least 1, got {max_rank!r}")
    cut = max_rank is not None and total_r > int(max_rank)
    out: dict[str, Any] = {}
    dropped_sq = kept_sq = 0.0
    worst = 0.0
    for name, parts in modules.items():
        any_a, any_b, _ = next(iter(parts.values()))
        in_f, out_f = any_a.shape[1], any_b.shape[0]
        a_rows, b_cols = [], []
        for i, r in enumerate(ranks):
            if i in parts:
                a, b, s = parts[i]
                a_rows.append(a)
                b_cols.append(b * s)
            else:  # this adapter does not touch the module: zero block
                a_rows.append(torch.zeros(r, in_f))
                b_cols.append(torch.zeros(out_f, r))
        a_cat, b_cat = torch.cat(a_rows, 0), torch.cat(b_cols, 1)
        if cut:
            a_cat, b_cat, kept, dropped = _truncate(a_cat, b_cat, int(max_rank))
            kept_sq, dropped_sq = kept_sq + kept, dropped_sq + dropped
            worst = max(worst, math.sqrt(dropped / max(kept + dropped, 1e-30)))
        out[f"{name}.lora_A.weight"] = a_cat.to(out_dtype).contiguous()
        out[f"{name}.lora_B.weight"] = b_cat.to(out_dtype).contiguous()
    new_r = int(max_rank) if cut else total_r

    first_cfg, last_cfg = loaded[0][0], loaded[-1][0]
    targets: set[str] = set()
    for cfg, _ in loaded:
        t = cfg.get("target_modules") or []
        targets.update([t] if isinstance(t, str) else t)
    new_cfg = dict(last_cfg)
    new_cfg.update(r=new_r, lora_alpha=new_r, use_rslora=False, target_modules=sorted(targets),
                   base_model_name_or_path=base_model or first_cfg.get("base_model_name_or_path"))
    dest = Path(output_dir)
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file(out, str(tmp / _WEIGHTS), metadata={"format": "pt"})
    (tmp / _CONFIG).write_text(json.dumps(new_cfg, indent=2), encoding="utf-8")
    last = paths[-1]
    for fname in _TOKENIZER_FILES:
        if (last / fname).is_file():
            shutil.copy2(last / fname, tmp / fname)
    from .._constants import CONFIG_NAME

    if (last / CONFIG_NAME).is_file():
        saved = json.loads((last / CONFIG_NAME).read_text(encoding="utf-8"))
        if base_model is not None or "base_model" in saved:
            saved["base_model"] = new_cfg["base_model_name_or_path"]
        phases = []
        for p in paths:  # each phase's training record, local paths reduced to their last part
            rec = json.loads((p / CONFIG_NAME).read_text(encoding="utf-8")) if (p / CONFIG_NAME).is_file() else {}
            phases.append(_scrub({"adapter": p.name, **(rec.get("training") or {})}))
        saved["training"] = {"stacked": phases}
        if cut:
            saved["training"]["rank_cut"] = {
                "from": total_r, "to": new_r,
                "relative_error": round(math.sqrt(dropped_sq / max(kept_sq + dropped_sq, 1e-30)), 6),
                "worst_module_relative_error": round(worst, 6)}
        (tmp / CONFIG_NAME).write_text(json.dumps(saved, indent=2), encoding="utf-8")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest
