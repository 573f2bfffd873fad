"""Which torch device a computation runs on."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["check_device", "resolve_device"]

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
