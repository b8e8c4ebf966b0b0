"""One exception hierarchy for the whole library.

Every error raised on purpose by ``cancerllm`` derives from :class:`CancerLLMError`, so callers can catch
the library's errors with one ``except`` clause.  Messages say what was wrong, what is allowed and how to
fix it; they never contain note text.
"""

from __future__ import annotations

__all__ = [
    "CancerLLMError",
    "ConfigError",
    "DataFormatError",
    "InputError",
    "MissingDependencyError",
    "ModelLoadError",
    "PerformanceWarning",
    "TokenizationError",
    "UnknownBackendError",
]


class CancerLLMError(Exception):
    """Base class of every error raised by cancerllm."""


class ConfigError(CancerLLMError, ValueError):
    """A configuration value or key is invalid."""


class InputError(CancerLLMError, ValueError):
    """An input (text, example, argument) is not acceptable."""


class DataFormatError(InputError):
    """A data file is malformed.  ``path`` and ``line`` (1-based) name the offending place when known."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{message}")


class TokenizationError(InputError):
    """A prompt cannot be split into token-exact parts with this tokenizer (a token spans a part boundary)."""


class UnknownBackendError(CancerLLMError, KeyError):
    """A name was looked up in a registry that does not know it."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(self.known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0])


class MissingDependencyError(CancerLLMError, ImportError):
    """An optional dependency is not installed; the message gives the pip command."""


class ModelLoadError(CancerLLMError, OSError):
    """A model, tokenizer or adapter could not be loaded."""


class PerformanceWarning(UserWarning):
    """A setting works but is slow where it runs (e.g. 4-bit quantization on a CPU, slower than float32)."""
