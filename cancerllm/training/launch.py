"""Launching training on one process, several GPUs or several nodes, on existing engines.

:func:`launch` builds the command line and hands it to a launch function (``subprocess.run`` by default;
inject another to test without launching, or to submit through a scheduler):

* one process, no preset: ``python -m cancerllm.training --config cfg.yaml``;
* several processes / nodes, no preset: ``torchrun`` (``python -m torch.distributed.run``) with DDP;
* a preset (``ddp``, ``deepspeed-zero2``, ``deepspeed-zero3``, ``fsdp``): ``accelerate launch`` with the
  shipped Accelerate config file (``cancerllm/training/presets/*.yaml``).

Each launched process runs ``python -m cancerllm.training --config cfg.yaml``, i.e. :func:`train`.

Example:
    >>> cmds = []
    >>> launch("cfg.yaml", nproc=4, launcher=lambda cmd, **kw: cmds.append(cmd), validate=False)
    >>> cmds[0][1:4]
    ['-m', 'torch.distributed.run', '--nnodes=1']
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import CancerLLMError, ConfigError, InputError, UnknownBackendError

__all__ = ["PRESETS", "build_command", "launch", "preset_path", "train"]

#: preset name -> Accelerate config file shipped in ``cancerllm/training/presets``
PRESETS: dict[str, str] = {
    "ddp": "ddp.yaml",
    "deepspeed-zero2": "deepspeed_zero2.yaml",
    "deepspeed-zero3": "deepspeed_zero3.yaml",
    "fsdp": "fsdp.yaml",
}
_PRESET_DIR = Path(__file__).resolve().parent / "presets"


def preset_path(name: str) -> Path:
    """The Accelerate config file of a preset; an unknown name lists the known ones."""
    if name not in PRESETS:
        raise UnknownBackendError("launch preset", name, list(PRESETS))
    return _PRESET_DIR / PRESETS[name]


def build_command(
    config_path: str | os.PathLike[str],
    *,
    nproc: int = 1,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str = "127.0.0.1",
    master_port: int = 29500,
    preset: str | None = None,
    resume: bool = False,
    python: str | None = None,
) -> list[str]:
    """The command line that starts training (see the module docstring)."""
    if int(nproc) < 1:
        raise InputError(f"nproc must be >= 1 (processes per node), got {nproc}")
    if int(nnodes) < 1:
        raise InputError(f"nnodes must be >= 1, got {nnodes}")
    if not 0 <= int(node_rank) < int(nnodes):
        raise InputError(f"node_rank must be in [0, {nnodes - 1}] for nnodes={nnodes}, got {node_rank}")
    if not 0 < int(master_port) < 65536:
        raise InputError(f"master_port must be a TCP port (1-65535), got {master_port}")
    py = python or sys.executable
    worker = ["cancerllm.training", "--config", os.fspath(config_path)] + (["--resume"] if resume else [])
    if preset is not None:
        return [
            py, "-m", "accelerate.commands.launch",
            "--config_file", str(preset_path(preset)),
            "--num_processes", str(int(nproc) * int(nnodes)),
            "--num_machines", str(int(nnodes)),
            "--machine_rank", str(int(node_rank)),
            "--main_process_ip", master_addr,
            "--main_process_port", str(int(master_port)),
            "--module", *worker,
        ]
    if int(nproc) == 1 and int(nnodes) == 1:
        return [py, "-m", *worker]
    return [
        py, "-m", "torch.distributed.run",
        f"--nnodes={int(nnodes)}",
        f"--nproc_per_node={int(nproc)}",
        f"--node_rank={int(node_rank)}",
        f"--master_addr={master_addr}",
        f"--master_port={int(master_port)}",
        "-m", *worker,
    ]


def launch(
    config_path: str | os.PathLike[str],
    *,
    nproc: int = 1,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str = "127.0.0.1",
    master_port: int = 29500,
    preset: str | None = None,
    resume: bool = False,
    launcher: Callable[..., Any] = subprocess.run,
    env: Mapping[str, str] | None = None,
    validate: bool = True,
) -> Any:
    """Start training of the YAML config at ``config_path`` on ``nproc`` processes per node, ``nnodes`` nodes.

    Run the same call on every node with its ``node_rank``; ``master_addr``/``master_port`` are those of
    node 0.  The config is validated first (``validate=False`` skips it), so a typo fails here and not in
    every launched process.

    Args:
        preset: ``None`` (torchrun + DDP), ``"ddp"``, ``"deepspeed-zero2"``, ``"deepspeed-zero3"`` or ``"fsdp"``.
        launcher: called as ``launcher(cmd, env=..., check=False)``; ``subprocess.run`` by default.
        env: environment of the launched processes (default: this one's).

    Returns:
        Whatever ``launcher`` returns (a ``CompletedProcess`` by default).

    Raises:
        ConfigError: the config is invalid.  CancerLLMError: the launched training failed (non-zero exit).
    """
    if validate:
        from .config import TrainingConfig

        if not Path(config_path).is_file():
            raise ConfigError(f"training config {config_path} does not exist")
        TrainingConfig.from_yaml(Path(config_path))
    cmd = build_command(config_path, nproc=nproc, nnodes=nnodes, node_rank=node_rank, master_addr=master_addr,
                        master_port=master_port, preset=preset, resume=resume)
    result = launcher(cmd, env=dict(env) if env is not None else None, check=False)
    code = getattr(result, "returncode", 0)
    if code not in (0, None):
        raise CancerLLMError(f"training exited with status {code}: {' '.join(cmd)}")
    return result


def train(config: Any, **kwargs: Any) -> Path:
    """Run the phase named by ``config.stage`` in this process: :func:`pretrain` or :func:`instruction_tune`."""
    from .config import load_config

    cfg = load_config(config)
    if cfg.stage == "pretrain":
        from .pretraining import pretrain

        return pretrain(cfg, **kwargs)
    from .sft import instruction_tune

    return instruction_tune(cfg, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cancerllm.training --config cfg.yaml [--resume] [--nproc N --nnodes M ...]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m cancerllm.training",
                                description="Train a CancerLLM LoRA adapter (continued pre-training or instruction tuning).")
    p.add_argument("--config", required=True, help="YAML training config")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--nproc", type=int, default=1, help="processes (GPUs) per node")
    p.add_argument("--nnodes", type=int, default=1, help="nodes")
    p.add_argument("--node-rank", type=int, default=0, help="this node's rank")
    p.add_argument("--master-addr", default="127.0.0.1", help="address of node 0")
    p.add_argument("--master-port", type=int, default=29500, help="port on node 0")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="Accelerate preset (engine)")
    p.add_argument("--dry-run", action="store_true", help="print the launch command and exit")
    args = p.parse_args(argv)
    # a launched worker is started without --nproc/--nnodes/--preset, so this never recurses
    if args.nproc > 1 or args.nnodes > 1 or args.preset or args.dry_run:
        kw = dict(nproc=args.nproc, nnodes=args.nnodes, node_rank=args.node_rank, master_addr=args.master_addr,
                  master_port=args.master_port, preset=args.preset, resume=args.resume)
        if args.dry_run:
            print(" ".join(build_command(args.config, **kw)))
            return 0
        launch(args.config, **kw)
        return 0
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = train(args.config, resume=True if args.resume else None)
    print(out)
    return 0
