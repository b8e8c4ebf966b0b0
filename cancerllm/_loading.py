"""The one loader, shared by inference (:mod:`cancerllm.model`) and training (:mod:`cancerllm.training.modeling`).

One place for each loading rule:

* **placement** (:func:`resolve_placement`): ``device=`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"``) or
  ``device_map=``; without either, the first GPU when there is one, else the CPU.  A GPU that is not there is
  refused at load time.
* **dtype** (:func:`resolve_dtype`): follows the target device: bfloat16 on a GPU that supports it natively
  (compute capability 8.0+), float16 on older GPUs (T4, V100); for inference on a CPU with native bf16 dot
  products (:func:`cpu_supports_bf16`) bfloat16, else float32 (``CANCERLLM_CPU_BF16=0`` keeps float32).
* **quantization** (:func:`quantization_config`): bitsandbytes 8-bit / 4-bit NF4; a warning on the CPU,
  where it is slower than float32.
* **pickle policy** (:func:`check_pickle`, :func:`safetensors_flag`): safetensors only unless ``allow_pickle``.
* **hub files** (:func:`fetch_file`, :func:`fetch_repo`): ``cancerllm_config.json`` and adapters read from hub
  ids too, with the same revision / token / cache_dir, honouring ``HF_HUB_OFFLINE`` and ``local_files_only``.
* **pad token** (:func:`ensure_pad_token`): one rule for inference and training.
* **quiet probes** (:func:`quiet_optional_probes`): bitsandbytes, imported by peft, logs a warning about the
  optional ``kernels`` package on every import; it is filtered while we load, and only then.

Nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelLoadError, PerformanceWarning

logger = logging.getLogger(__name__)

__all__ = [
    "HUB_KWARGS",
    "Placement",
    "check_exists",
    "check_kwargs",
    "check_pickle",
    "cpu_supports_bf16",
    "cpu_supports_fp16",
    "cuda_supports_bf16",
    "dtype_name",
    "ensure_pad_token",
    "fetch_file",
    "fetch_repo",
    "is_offline",
    "load_causal_lm",
    "load_tokenizer",
    "looks_like_path",
    "quantization_config",
    "quiet_optional_probes",
    "resolve_dtype",
    "resolve_placement",
    "safetensors_flag",
]

#: keyword arguments of ``from_pretrained`` that locate files on the hub; they also apply to the tokenizer,
#: to ``cancerllm_config.json`` and to adapter repositories
HUB_KWARGS = ("revision", "token", "cache_dir", "force_download", "proxies")

# transformers keyword arguments that our own parameters decide: passing them through **kwargs is refused
_OWNED_KWARGS = {
    "dtype": "dtype=",
    "torch_dtype": "dtype=",
    "device_map": "device_map= or device=",
    "quantization_config": "quantization=",
    "load_in_8bit": 'quantization="8bit"',
    "load_in_4bit": 'quantization="4bit"',
    "local_files_only": "local_files_only=",
    "trust_remote_code": "trust_remote_code=",
    "use_safetensors": "allow_pickle=",
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_KERNELS_PROBE_LOGGER = "bitsandbytes.backends.cpu.ops"
_KERNELS_PROBE_MESSAGE = "Failed to load CPU gemm_4bit_forward from kernels-community"
_DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}
_MULTI_DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


# ============================================================================================ paths
def looks_like_path(name: str | os.PathLike[str]) -> bool:
    """Whether ``name`` is meant as a local path rather than a hub id (``"org/name"`` or ``"name"``).

    ``Path`` objects, names starting with ``.``, ``/`` or ``~``, names with a backslash or more than one
    ``/``, and anything else that is not a valid hub id count as paths.
    """
    if not isinstance(name, str):
        return True
    if name.startswith((".", "/", "~")) or "\\" in name or (os.sep != "/" and os.sep in name):
        return True
    return _HUB_ID.match(name) is None


def check_exists(name: str | os.PathLike[str], *, what: str = "model") -> None:
    """Raise :class:`ModelLoadError` when ``name`` looks like a local path that does not exist (instead of
    the hub's "Repo id must be in the form ..." message)."""
    if looks_like_path(name) and not Path(os.fspath(name)).expanduser().exists():
        raise ModelLoadError(
            f"cannot load {what} {os.fspath(name)!r}: the path {Path(os.fspath(name)).expanduser()} does not "
            "exist; give an existing folder, or a hub id of the form 'org/name'"
        )


def check_kwargs(kwargs: Mapping[str, Any]) -> None:
    """Refuse transformers keyword arguments that one of our own parameters decides."""
    for key in kwargs:
        if key in _OWNED_KWARGS:
            raise ConfigError(f"{key}= is set by cancerllm; use {_OWNED_KWARGS[key]} instead")


def is_offline(local_files_only: bool | None = None) -> bool:
    """``local_files_only``, or ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` set (read now, not at import)."""
    if local_files_only:
        return True
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return True
    return False


# ============================================================================================ hub files
def _hub_only(hub: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hub.items() if k in HUB_KWARGS and v is not None}


def fetch_file(repo: str, filename: str, *, hub: Mapping[str, Any], local_files_only: bool | None) -> Path | None:
    """The local path of ``filename`` in hub repo ``repo`` (downloaded, or found in the cache when offline);
    None when the repo has no such file or it cannot be reached."""
    from transformers.utils.hub import cached_file

    try:
        with quiet_optional_probes():
            found = cached_file(
                repo, filename, local_files_only=is_offline(local_files_only), **_hub_only(hub),
                _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False,
                _raise_exceptions_for_gated_repo=False,
            )
    except (OSError, ValueError) as exc:  # an unknown repo: the model load names the problem
        logger.debug("no %s in %s: %s", filename, repo, exc)
        return None
    return Path(found) if found else None


def fetch_repo(repo: str, *, hub: Mapping[str, Any], local_files_only: bool | None,
               allow_patterns: list[str] | None = None) -> Path:
    """A local folder with the files of hub repo ``repo`` (a snapshot in the hub cache)."""
    from huggingface_hub import snapshot_download

    kw = {k: v for k, v in _hub_only(hub).items() if k in ("revision", "token", "cache_dir", "force_download")}
    try:
        return Path(snapshot_download(repo, local_files_only=is_offline(local_files_only),
                                      allow_patterns=allow_patterns, **kw))
    except Exception as exc:  # noqa: BLE001 - hub errors have many types; all mean "cannot load"
        raise ModelLoadError(f"cannot fetch {repo!r} from the hub (or its cache): {exc}") from exc


# ============================================================================================ placement
@dataclass(frozen=True)
class Placement:
    """Where the weights go: ``device_map`` as transformers takes it (None: the CPU), the device type that
    decides the default dtype, and the first GPU's index."""

    device_map: Any
    device_type: str = "cpu"
    cuda_index: int | None = None


def _parse_device(value: Any, *, what: str) -> tuple[str, int | None]:
    import torch

    if isinstance(value, bool):
        raise ConfigError(f"{what}={value!r} is not a device; use 'cpu', 'cuda', 'cuda:1' or 'auto'")
    if isinstance(value, int):
        return "cuda", value
    try:
        dev = value if isinstance(value, torch.device) else torch.device(str(value).strip().lower())
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{what}={value!r} is not a device; use 'cpu', 'cuda', 'cuda:1' or 'auto'") from None
    if dev.type in ("cpu", "disk", "meta"):
        return dev.type, None
    if dev.type == "cuda":
        return "cuda", dev.index if dev.index is not None else 0
    if dev.type == "mps":
        return "mps", None
    raise ConfigError(f"{what}={value!r}: unsupported device type {dev.type!r}; use 'cpu', 'cuda' or 'auto'")


def _check_device(kind: str, index: int | None, *, what: str, value: Any) -> None:
    import torch

    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{what}={value!r} asks for a CUDA GPU, but torch {torch.__version__} sees none on this machine "
                "(a CPU-only build, or no GPU); use device='cpu', or device='auto' to take a GPU only when there "
                "is one"
            )
        n = torch.cuda.device_count()
        if index is not None and not 0 <= index < n:
            raise ConfigError(f"{what}={value!r}: this machine has {n} CUDA GPU(s) (cuda:0 to cuda:{n - 1})")
    elif kind == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{what}={value!r}: the MPS (Apple GPU) backend is not available here; use 'cpu'")


def resolve_placement(device: Any = None, device_map: Any = None) -> Placement:
    """Where to load the weights.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, an index, a ``torch.device`` or ``"auto"`` (all GPUs
            through accelerate's ``device_map="auto"`` when there is a GPU, else the CPU).
        device_map: passed to transformers as given (after checking that its GPUs exist); a single device
            (``"cuda"``, ``"cuda:1"``, ``0``) is turned into ``{"": device}``.

    Without either: ``cuda:0`` when CUDA is available, else the CPU.

    Raises:
        ConfigError: both are given, the value is not a device, or it names a GPU that is not there.
    """
    import torch

    if device is not None and device_map is not None:
        raise ConfigError("give device= or device_map=, not both")
    cuda = torch.cuda.is_available()
    if device is None and device_map is None:
        return Placement({"": "cuda:0"}, "cuda", 0) if cuda else Placement(None)
    what, value = ("device", device) if device is not None else ("device_map", device_map)
    if isinstance(value, str) and value.strip().lower() in _MULTI_DEVICE_MAPS:
        mode = value.strip().lower()
        if not cuda:
            return Placement(None) if what == "device" else Placement(mode)
        return Placement(mode, "cuda", 0)
    if isinstance(value, Mapping):
        if what == "device":
            raise ConfigError("device= takes one device; pass a per-module mapping as device_map=")
        kinds = []
        for part in value.values():
            kind, index = _parse_device(part, what="device_map")
            _check_device(kind, index, what="device_map", value=part)
            kinds.append((kind, index))
        gpus = [i for k, i in kinds if k == "cuda"]
        if gpus:
            return Placement(dict(value), "cuda", gpus[0])
        return Placement(dict(value), "mps" if any(k == "mps" for k, _ in kinds) else "cpu")
    kind, index = _parse_device(value, what=what)
    _check_device(kind, index, what=what, value=value)
    if kind == "cuda":
        return Placement({"": f"cuda:{index}"}, "cuda", index)
    if kind == "mps":
        return Placement({"": "mps"}, "mps")
    return Placement(None)


# ============================================================================================ dtype
def _cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``) from ``/proc/cpuinfo``; empty where it cannot
    be read."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                cpuinfo = fh.read()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


#: CPU flags that mean native arithmetic in a half-precision dtype (x86 AVX-512 / AMX, Arm)
_NATIVE_HALF_FLAGS = {"bfloat16": ("avx512_bf16", "amx_bf16", "bf16"),
                      "float16": ("avx512_fp16", "amx_fp16", "asimdhp")}
#: measured on a 2-core AVX2 EPYC: CancerLLM-Smol encoding 255 tokens, this dtype against float32
_EMULATED_HALF_COST = {"bfloat16": "3.57 s against 0.55 s", "float16": "3.25 s against 0.67 s"}


def cpu_supports_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 dot products natively: x86 ``avx512_bf16`` or ``amx_bf16``, Arm
    ``bf16`` (read from ``/proc/cpuinfo``; False where it cannot be read).  Without them torch emulates
    bfloat16 matmuls and they are slower than float32."""
    return bool(_cpu_flags(cpuinfo) & set(_NATIVE_HALF_FLAGS["bfloat16"]))


def cpu_supports_fp16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes float16 natively: x86 ``avx512_fp16`` or ``amx_fp16``, Arm ``asimdhp``
    (read from ``/proc/cpuinfo``; False where it cannot be read)."""
    return bool(_cpu_flags(cpuinfo) & set(_NATIVE_HALF_FLAGS["float16"]))


def _warn_emulated_half(dtype: Any) -> None:
    """A :class:`~cancerllm.errors.PerformanceWarning` when ``dtype`` is bfloat16 / float16 and this CPU has no
    native instructions for it (torch then emulates its matmuls)."""
    import torch

    native = {torch.bfloat16: cpu_supports_bf16, torch.float16: cpu_supports_fp16}.get(dtype)
    if native is None or native():
        return
    name = dtype_name(dtype)
    warnings.warn(
        f"{name} was asked for on a CPU without native {name} instructions (none of "
        f"{', '.join(_NATIVE_HALF_FLAGS[name])} in /proc/cpuinfo), so torch emulates it and the model runs "
        f"several times slower than in float32 (on a 2-core AVX2 EPYC, CancerLLM-Smol encoding 255 tokens: "
        f"{_EMULATED_HALF_COST[name]}). Use dtype='auto' (float32 on this CPU) or 'float32'",
        PerformanceWarning,
        stacklevel=4,
    )


def cuda_supports_bf16(index: int | None = None) -> bool:
    """Whether the GPU computes in bfloat16 natively (compute capability 8.0+: A100, H100, RTX 30xx ...).

    ``torch.cuda.is_bf16_supported()`` with its default ``including_emulation=True`` also says yes on a T4 or
    V100, where bfloat16 is emulated and slow; those get float16.
    """
    import torch

    if not torch.cuda.is_available():
        return False
    if index is None or index == torch.cuda.current_device():
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    with torch.cuda.device(index):
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))


def resolve_dtype(dtype: Any = None, placement: Placement | str | None = None, *, cpu_bf16: bool = False) -> Any:
    """The torch dtype of the weights.

    Args:
        dtype: a ``torch.dtype``, its name (``"float32"``, ``"bfloat16"``, ``"float16"``, or ``fp32`` /
            ``bf16`` / ``fp16``), or None / ``"auto"``: bfloat16 on a GPU that supports it natively, float16
            on older GPUs, float16 on Apple MPS, float32 on the CPU (bfloat16 with ``cpu_bf16=True`` on a CPU
            with native bf16 dot products, :func:`cpu_supports_bf16`: what inference loading asks for).
        placement: the target (:func:`resolve_placement`), or a device type (``"cuda"``, ``"cpu"``); None:
            a GPU when CUDA is available.
        cpu_bf16: let ``"auto"`` pick bfloat16 on such a CPU (unless the environment variable
            ``CANCERLLM_CPU_BF16=0`` keeps float32).

    An explicit bfloat16 or float16 on the CPU is given as asked; where the CPU has no native instructions
    for it (:func:`cpu_supports_bf16`, :func:`cpu_supports_fp16`) a :class:`~cancerllm.errors.PerformanceWarning`
    says that torch will emulate it (5-6x slower than float32 on CancerLLM-Smol on an AVX2 CPU).

    Raises:
        ConfigError: an unknown dtype name.
    """
    import torch

    if placement is None:
        placement = Placement(None, "cuda", None) if torch.cuda.is_available() else Placement(None)
    elif isinstance(placement, str):
        placement = Placement(None, placement, None)
    if dtype is None or (isinstance(dtype, str) and dtype.strip().lower() == "auto"):
        if placement.device_type == "cuda":
            return torch.bfloat16 if cuda_supports_bf16(placement.cuda_index) else torch.float16
        if placement.device_type == "mps":
            return torch.float16
        keep_fp32 = os.environ.get("CANCERLLM_CPU_BF16", "").strip().lower() in ("0", "false", "no", "off")
        return torch.bfloat16 if cpu_bf16 and not keep_fp32 and cpu_supports_bf16() else torch.float32
    value = dtype if isinstance(dtype, torch.dtype) else None
    if isinstance(dtype, str):
        name = _DTYPE_ALIASES.get(dtype.strip().lower(), dtype.strip().lower())
        found = getattr(torch, name, None)
        value = found if isinstance(found, torch.dtype) and found.is_floating_point else None
    if value is not None:
        if placement.device_type == "cpu":
            _warn_emulated_half(value)
        return value
    raise ConfigError(f"unknown dtype {dtype!r}; use 'auto', 'float32', 'bfloat16' or 'float16'")


def dtype_name(dtype: Any) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


# ============================================================================================ quantization
def quantization_config(
    quantization: str | None,
    compute_dtype: Any,
    *,
    device_type: str = "cpu",
    quant_type: str = "nf4",
    double_quant: bool = True,
    feature: str | None = None,
) -> Any:
    """A ``BitsAndBytesConfig`` for ``"8bit"`` or ``"4bit"`` (NF4, double quantization by default), or None.

    On the CPU a :class:`~cancerllm.errors.PerformanceWarning` says that it saves memory, not time: there it
    is often slower than float32 (bitsandbytes dequantizes the weights for each matmul; encoding a prompt
    measured 1.2-3.8x slower than float32 on SmolLM2-135M, 2-core CPU).

    Raises:
        ConfigError: an unknown value.
        MissingDependencyError: bitsandbytes is not installed.
    """
    if quantization is None:
        return None
    if quantization not in ("8bit", "4bit"):
        raise ConfigError(f"quantization must be None, '8bit' or '4bit', got {quantization!r}")
    from ._optional import require

    with quiet_optional_probes():
        require("bitsandbytes", feature=feature or f"{quantization} quantization")
    from transformers import BitsAndBytesConfig

    if device_type == "cpu":
        warnings.warn(
            f"{quantization} quantization saves memory, not time: on the CPU it is often slower than float32 "
            "(bitsandbytes dequantizes the weights for each matmul; encoding a prompt measured 1.2-3.8x "
            "slower on SmolLM2-135M). Leave quantization unset for speed on a CPU, or load on a GPU",
            PerformanceWarning,
            stacklevel=3,
        )
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type,
                              bnb_4bit_use_double_quant=double_quant, bnb_4bit_compute_dtype=compute_dtype)


# ============================================================================================ pickle policy
def check_pickle(path: str | os.PathLike[str], allow_pickle: bool) -> None:
    """Refuse a local model folder holding only pickled weights (``*.bin``) unless ``allow_pickle``."""
    p = Path(os.fspath(path)).expanduser()
    if allow_pickle or not p.is_dir():
        return
    if not any(p.glob("*.safetensors")) and any(p.glob("*.bin")):
        raise ModelLoadError(
            f"{p} holds only pickled weights (*.bin), which can run arbitrary code when loaded; convert them "
            "to safetensors or pass allow_pickle=True if you trust the files"
        )


def safetensors_flag(allow_pickle: bool) -> bool | None:
    """transformers' ``use_safetensors``: True (safetensors only) unless pickles are allowed."""
    return None if allow_pickle else True


# ============================================================================================ quiet probes
class _DropKernelsProbe(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_KERNELS_PROBE_MESSAGE)


@contextlib.contextmanager
def quiet_optional_probes() -> Iterator[None]:
    """Drop bitsandbytes' "Failed to load CPU gemm_4bit_forward from kernels-community ..." warning while we
    import or load (peft imports bitsandbytes whenever it is installed, and that warning comes with every
    import on CPUs with AVX512-BF16).  Only that one message of that one logger, only inside the block: the
    program's logging configuration is left as it was."""
    lg = logging.getLogger(_KERNELS_PROBE_LOGGER)
    filt = _DropKernelsProbe()
    lg.addFilter(filt)
    try:
        yield
    finally:
        lg.removeFilter(filt)


# ============================================================================================ loading
def load_causal_lm(
    path: str,
    *,
    dtype: Any,
    placement: Placement,
    quantization: Any = None,
    local_files_only: bool | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    **kwargs: Any,
) -> Any:
    """``AutoModelForCausalLM.from_pretrained`` with our rules; ``kwargs`` go to transformers as given
    (``revision``, ``token``, ``cache_dir``, ``attn_implementation`` ...).

    Raises:
        ModelLoadError: the model cannot be loaded (missing path, pickled weights, transformers' error).
    """
    check_exists(path)
    check_pickle(path, allow_pickle)
    from transformers import AutoModelForCausalLM

    kw: dict[str, Any] = {k: v for k, v in kwargs.items() if v is not None}
    kw.update(dtype=dtype, trust_remote_code=trust_remote_code, use_safetensors=safetensors_flag(allow_pickle))
    if is_offline(local_files_only):
        kw["local_files_only"] = True
        # transformers 5 does not pass local_files_only on to its adapter_config.json probe of a hub id
        kw["adapter_kwargs"] = {**(kw.get("adapter_kwargs") or {}), "local_files_only": True}
    elif local_files_only is not None:
        kw["local_files_only"] = local_files_only
    if placement.device_map is not None:
        kw["device_map"] = placement.device_map
    if quantization is not None:
        kw["quantization_config"] = quantization
    try:
        with quiet_optional_probes():
            return AutoModelForCausalLM.from_pretrained(path, **kw)
    except (OSError, ValueError) as exc:
        extra = "" if allow_pickle else " (only safetensors weights are loaded unless allow_pickle=True)"
        raise ModelLoadError(f"cannot load model {path!r}{extra}: {exc}") from exc


def load_tokenizer(
    path: str,
    *,
    local_files_only: bool | None = None,
    trust_remote_code: bool = False,
    hub: Mapping[str, Any] | None = None,
) -> Any:
    """``AutoTokenizer.from_pretrained`` with the hub arguments of the model (revision, token, cache_dir).

    Raises:
        ModelLoadError: the tokenizer cannot be loaded.
    """
    check_exists(path, what="tokenizer")
    from transformers import AutoTokenizer

    local = is_offline(local_files_only) or Path(path).expanduser().exists()
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=local, trust_remote_code=trust_remote_code,
                                             **_hub_only(hub or {}))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load tokenizer {path!r}: {exc}") from exc


# ============================================================================================ pad token
def ensure_pad_token(tokenizer: Any, model: Any = None, *, training: bool = False) -> int:
    """Give ``tokenizer`` a pad token; the one rule of inference and training.

    Inference (``training=False``): a tokenizer without a pad token pads with EOS. Padding is masked out by
    the attention mask, so which id pads does not change any output; the vocabulary is never touched.

    Training (``training=True``): a pad distinct from EOS, without growing the vocabulary when possible (a
    pad equal to EOS would hide EOS from the loss in collators that mask pads).  Order of preference: the
    tokenizer's own pad (when it is not EOS); an existing special token that is neither EOS nor BOS (one
    named like "pad", then ``unk`` - e.g. Llama-2/Mistral's ``<unk>`` - then reserved tokens such as
    Llama-3's ``<|reserved_special_token_0|>``, then any other); a new ``<pad>`` token when the model's
    embedding matrix has spare rows, which needs no resizing.  Otherwise EOS, with a warning.

    Returns:
        The pad token id.

    Raises:
        ModelLoadError: the tokenizer has neither a pad nor an EOS token.
    """
    eos, bos = tokenizer.eos_token_id, tokenizer.bos_token_id
    pad = tokenizer.pad_token_id
    if pad is not None and (not training or pad != eos):
        return int(pad)
    if training:
        found = _spare_pad(tokenizer, model, eos, bos)
        if found is not None:
            return found
    if eos is None:
        if tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
            return int(tokenizer.pad_token_id)
        raise ModelLoadError("the tokenizer has neither a pad token nor an EOS token; set tokenizer.pad_token")
    if pad is None:
        tokenizer.pad_token = tokenizer.eos_token
    if training:
        warnings.warn(
            "the tokenizer has no token usable as padding other than EOS; padding with EOS ids. EOS is still "
            "learned (labels come from the encoding, padding is masked), but consider a tokenizer with a pad "
            "token",
            stacklevel=2,
        )
    return int(tokenizer.pad_token_id)


def _spare_pad(tokenizer: Any, model: Any, eos: int | None, bos: int | None) -> int | None:
    specials = list(getattr(tokenizer, "all_special_tokens", []))
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    specials += [str(t) for t in added.values() if getattr(t, "special", False) and str(t) not in specials]
    cands: list[str] = [t for t in specials if "pad" in t.lower()]
    if tokenizer.unk_token is not None and tokenizer.unk_token not in cands:
        cands.append(tokenizer.unk_token)
    cands += [t for t in specials if "reserved" in t.lower() and t not in cands]
    cands += [t for t in specials if t not in cands]
    for tok in cands:
        tid = tokenizer.convert_tokens_to_ids(tok)
        if tid is not None and tid not in (eos, bos):
            tokenizer.pad_token = tok
            logger.info("pad token set to %r (id %d), distinct from EOS", tok, tid)
            return int(tid)
    rows = None
    if model is not None and hasattr(model, "get_input_embeddings"):
        rows = int(model.get_input_embeddings().weight.shape[0])
    if rows is not None and len(tokenizer) < rows:
        tokenizer.add_special_tokens({"pad_token": "<pad>"})
        tid = int(tokenizer.pad_token_id)
        if tid < rows:
            logger.info("added pad token '<pad>' (id %d) in a spare embedding row", tid)
            return tid
    return None
