"""Which torch device a computation runs on."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else as given (checked).

    Raises
    ------
    ValueError
        CUDA was asked for and is not available; the message says to use ``"cpu"``.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for but CUDA is not available here; use "
            "`device='cpu'` (or 'auto')."
        )
    return dev
