"""The :class:`Image` that every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["Image", "PixelSizeSource"]

PixelSizeSource = Literal["metadata", "user", "estimated", "unknown"]


@dataclass(frozen=True)
class Image:
    """An image (or a stack of frames) with its calibration.

    Attributes
    ----------
    data : ndarray of shape (H, W), or dask array of shape (N, H, W); float32
        Pixel values. A stack (movie, series) stays a lazy :mod:`dask.array` with one chunk
        per frame, so that it is never loaded whole.
    pixel_size : float or None
        Pixel size [Å/px], or None when neither the file nor the user says.
    pixel_size_source : {"metadata", "user", "estimated", "unknown"}
        Where the pixel size came from ("estimated": from the lattice, by
        :mod:`atomlens.fourier.sampling`).
    path : pathlib.Path
        The file.
    signal_type : str or None
        What the file says the signal is (e.g. ``"HAADF"``, ``"BF"``), when it says.
    metadata : dict
        What atomlens made of the file's metadata (JSON-ready: title, unit of the pixel
        size, how it was read, assumptions made).
    original_metadata : dict
        The file's own metadata, as the reader returned it.
    """

    data: Any
    pixel_size: float | None
    pixel_size_source: PixelSizeSource
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    signal_type: str | None = None
    original_metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_stack(self) -> bool:
        """True for a stack of frames ``(N, H, W)``."""
        return len(self.data.shape) == 3

    @property
    def n_frames(self) -> int:
        """Number of frames (1 for a single image)."""
        return int(self.data.shape[0]) if self.is_stack else 1

    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape ``(H, W)`` [px]."""
        return tuple(int(s) for s in self.data.shape[-2:])  # type: ignore[return-value]

    def frame(self, i: int, /) -> np.ndarray:
        """Frame ``i`` as a float32 numpy array (the image itself when not a stack)."""
        if not self.is_stack:
            if i != 0:
                raise IndexError(f"{self.path} is a single image; frame {i} does not exist.")
            return np.asarray(self.data, dtype=np.float32)
        return np.asarray(self.data[i], dtype=np.float32)
