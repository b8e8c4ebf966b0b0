"""``python -m cancerllm.training --config cfg.yaml``: what every launched training process runs."""

from __future__ import annotations

import sys

from .launch import main

if __name__ == "__main__":
    sys.exit(main())
