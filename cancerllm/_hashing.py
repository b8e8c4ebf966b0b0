"""File hashing shared by training (merged-base reuse) and the benchmark (data provenance)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

__all__ = ["file_sha256", "files_sha256"]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    return files_sha256([path])


def files_sha256(paths: Iterable[str | os.PathLike[str]]) -> str:
    """One hex SHA-256 over the bytes of several files, in the order given (1 MiB blocks)."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
