"""A deterministic patient-level train/validation split of a file in the shared TCGA format.

A patient goes to validation when the SHA-256 of ``"<salt>:<patient_id>"`` falls in the first
``validation`` share of the hash space: the split does not depend on the order or size of the file, a
patient never lands on both sides (all of a patient's reports follow the patient id), and adding reports
to the file does not move existing patients.  CancerLLM-Smol was trained on ``split == "train"`` of
``tcga_reports_dev.jsonl`` with the defaults below and never on validation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

from ..errors import InputError

__all__ = ["DEFAULT_SALT", "DEFAULT_VALIDATION", "patient_split", "split_records"]

#: The salt of the split used for CancerLLM-Smol.
DEFAULT_SALT = "cancerllm-smol-v1"
#: The share of patients in validation.
DEFAULT_VALIDATION = 0.2

R = TypeVar("R")


def patient_split(patient_id: str, *, validation: float = DEFAULT_VALIDATION,
                  salt: str = DEFAULT_SALT) -> Literal["train", "validation"]:
    """``"train"`` or ``"validation"`` for one patient id (the same answer on every machine)."""
    if not 0.0 <= validation <= 1.0:
        raise InputError(f"validation must be a share between 0 and 1, got {validation}")
    if not isinstance(patient_id, str) or not patient_id.strip():
        raise InputError(f"patient_id must be a non-empty string, got {patient_id!r}")
    digest = hashlib.sha256(f"{salt}:{patient_id.strip().upper()}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "validation" if position < validation else "train"


def _patient_id(record: Any) -> str:
    pid = record.get("patient_id") if isinstance(record, Mapping) else getattr(record, "patient_id", None)
    if pid is None:
        raise InputError("every record needs a patient_id for a patient-level split")
    return str(pid)


def split_records(records: Iterable[R], *, validation: float = DEFAULT_VALIDATION,
                  salt: str = DEFAULT_SALT) -> tuple[list[R], list[R]]:
    """``(train, validation)`` records by patient, each in the input order.

    Example:
        >>> recs = [{"patient_id": f"TCGA-XX-{i:04d}"} for i in range(1000)]
        >>> train, val = split_records(recs)
        >>> len(train) + len(val), 150 < len(val) < 250
        (1000, True)
    """
    train: list[R] = []
    val: list[R] = []
    for rec in records:
        (val if patient_split(_patient_id(rec), validation=validation, salt=salt) == "validation"
         else train).append(rec)
    return train, val
