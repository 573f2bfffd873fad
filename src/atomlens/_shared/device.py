"""Which torch device a computation runs on."""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    import torch

__all__ = [
    "PRECISIONS",
    "Precision",
    "check_device",
    "check_precision",
    "inference_dtype",
    "inference_precision",
    "resolve_device",
]

#: Arithmetic of the networks' forward passes at inference: "auto" (bfloat16 where the
#: hardware computes it natively, else float32), "float32" or "bfloat16".
Precision = Literal["auto", "float32", "bfloat16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)

_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")


def check_device(device: object, /, *, name: str = "`device`") -> None:
    """Refuse a device name torch does not run atomlens on, without importing torch.

    Raises
    ------
    ValueError
        Not "auto", "cpu", "cuda", "cuda:N" or "mps"; the message names them.

    Examples
    --------
    >>> check_device("cuda:1")
    >>> check_device("tpu")
    Traceback (most recent call last):
    ...
    ValueError: `device` must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'tpu'.
    """
    if device is None or not isinstance(device, str):
        return  # a torch.device, or None for "auto"
    if not _DEVICE.fullmatch(device):
        raise ValueError(
            f"{name} must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}."
        )


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else as given (checked).

    Raises
    ------
    ValueError
        An unknown device name, or CUDA was asked for and is not available; the message
        says to use ``"cpu"``.
    """
    # deferred: torch takes seconds to import, and the names are checked without it
    import torch

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_device(device)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for but CUDA is not available here; use "
            "`device='cpu'` (or 'auto')."
        )
    return dev


def check_precision(precision: object, /, *, name: str = "`precision`") -> None:
    """Refuse a precision other than "auto", "float32" or "bfloat16", without torch.

    Raises
    ------
    ValueError
        The message names the three choices.

    Examples
    --------
    >>> check_precision("bfloat16")
    >>> check_precision("fp16")
    Traceback (most recent call last):
    ...
    ValueError: `precision` must be 'auto', 'float32' or 'bfloat16', got 'fp16'.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"{name} must be 'auto', 'float32' or 'bfloat16', got {precision!r}.")


@cache
def _cpu_has_amx_bf16() -> bool:
    """Whether this CPU has AMX bfloat16 units, as far as the installed torch can tell."""
    import torch

    try:
        caps = getattr(torch.cpu, "get_capabilities", None)  # recent torch
        if caps is not None:
            return bool(caps().get("amx_bf16", False))
        # older torch (2.2–2.x) says whether AMX tiles exist: those CPUs (Sapphire Rapids
        # and later) compute bfloat16 on them
        tile = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return bool(tile()) if tile is not None else False
    except Exception:  # a probe: any failure means "not known to have it"
        return False


def inference_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of inference on ``device``, None for plain float32.

    ``"auto"`` takes bfloat16 on CUDA and on CPUs with AMX bfloat16 units (Intel Xeon
    since Sapphire Rapids), where the bundled graphene members' network stage of a 512²
    px frame took 0.4–0.6 s instead of 1.1–1.7 s and placed atoms within 0.004–0.025 px
    of float32's in 99 % of cases (``benchmarks/speed.py``, ``docs/tutorials/speed.md``);
    float32 on other CPUs (bfloat16 without those units is emulated and not known to be
    faster) and on other devices.

    Raises
    ------
    ValueError
        An unknown ``precision``.
    """
    import torch

    check_precision(precision)
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda" or (device.type == "cpu" and _cpu_has_amx_bf16()):
        return torch.bfloat16
    return None


def inference_precision(precision: str = "auto", device: str | torch.device = "cpu") -> str:
    """What ``precision`` comes to on ``device``: "float32" or "bfloat16"
    (:func:`inference_dtype`), e.g. for a report.

    Examples
    --------
    >>> inference_precision("float32")
    'float32'
    """
    return "float32" if inference_dtype(precision, resolve_device(device)) is None else "bfloat16"
