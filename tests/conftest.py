"""Shared fixtures: tiny random models built once per session, sockets blocked for every test."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest


# ------------------------------------------------------------------------------------------ no network
class _NetworkBlocked(RuntimeError):
    pass


def _blocked(*args, **kwargs):
    raise _NetworkBlocked("tests must not use the network (a socket connection was attempted)")


@pytest.fixture(autouse=True)
def _block_sockets(monkeypatch, request):
    """Every test runs with outgoing socket connections blocked (AF_UNIX stays usable for local IPC)."""
    if request.node.get_closest_marker("allow_network"):
        return
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect(self, address)
        return _blocked()

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, address: _blocked())
    monkeypatch.setattr(socket, "create_connection", _blocked)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config):
    # tiny-model tests compare exact greedy outputs in float32: keep the CPU default there (and in the Ray /
    # Spark workers the tests start, which inherit the environment); the bf16 default has tests of its own
    os.environ.setdefault("CANCERLLM_CPU_BF16", "0")
    config.addinivalue_line("markers", "allow_network: (never used in this suite) lets a test open sockets")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except Exception:  # pragma: no cover
        has_gpu = False
    if not has_gpu:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


# ------------------------------------------------------------------------------------------ tiny models
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Mistral + BPE tokenizer saved once per session (read-only: copy before changing)."""
    from cancerllm.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "mistral", arch="mistral")


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama whose tokenizer has a ChatML chat template."""
    from cancerllm.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "llama-chat", arch="llama", chat_template=True)


@pytest.fixture
def tiny_model_copy(tiny_model_dir, tmp_path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(tiny_model_dir, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_llm(tiny_model_dir):
    """A loaded CancerLLM on the tiny Mistral (shared; do not mutate)."""
    from cancerllm import CancerLLM

    return CancerLLM.from_pretrained(tiny_model_dir)
