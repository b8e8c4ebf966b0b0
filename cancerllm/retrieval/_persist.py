"""Saved-index files: names, item (de)serialisation in JSON, metadata reading.  Nothing is pickled."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..schema import Example
from .documents import Document

__all__ = [
    "EMBEDDINGS_NAME",
    "FORMAT_VERSION",
    "INDEX_CONFIG_NAME",
    "dump_item",
    "load_item",
    "read_meta",
    "versions",
    "write_meta",
]

logger = logging.getLogger(__name__)

#: File names of a saved index.
INDEX_CONFIG_NAME = "retrieval_index.json"
EMBEDDINGS_NAME = "embeddings.safetensors"
FORMAT_VERSION = 1


def dump_item(item: Any) -> dict[str, Any]:
    if isinstance(item, Example):
        return {"type": "example", "data": item.model_dump(mode="json")}
    if isinstance(item, Document):
        return {"type": "document", "data": {"text": item.text, "title": item.title, "id": item.id}}
    if isinstance(item, str):
        return {"type": "text", "data": item}
    try:
        json.dumps(item)
    except (TypeError, ValueError):
        return {"type": "none"}
    return {"type": "json", "data": item}


def load_item(blob: Mapping[str, Any], doc: Document) -> Any:
    kind = blob.get("type")
    if kind == "example":
        return Example(**blob["data"])
    if kind == "document":
        return Document(**blob["data"])
    if kind in ("text", "json"):
        data = blob["data"]
        return tuple(data) if isinstance(data, list) and len(data) == 2 else data
    return doc


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for pkg in ("cancerllm", "numpy", "torch", "transformers", "sentence-transformers", "faiss-cpu"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / INDEX_CONFIG_NAME
    if not path.is_file() or not (directory / EMBEDDINGS_NAME).is_file():
        raise InputError(
            f"{directory} holds no saved index ({INDEX_CONFIG_NAME} + {EMBEDDINGS_NAME}); use save_index()"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    version = meta.get("format_version", 1)
    if isinstance(version, int) and version > FORMAT_VERSION:
        logger.warning(
            "%s was written by a newer cancerllm (format %s); loading what is understood", path, version
        )
    return meta


def write_meta(directory: Path, meta: Mapping[str, Any]) -> None:
    """Write ``meta`` as the index's JSON file, atomically."""
    tmp = directory / (INDEX_CONFIG_NAME + ".tmp")
    tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, directory / INDEX_CONFIG_NAME)
