"""Robust per-image intensity normalisation."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["PercentileNormalizer", "normalize_percentile"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PercentileNormalizer:
    """Map the ``low`` and ``high`` intensity percentiles of an image to 0 and 1.

    Percentiles, not the minimum and maximum: one hot or dead pixel (or a few hundred, at the
    default 99.8th percentile of a 256² image) moves them by at most one rank, and an
    affine change of intensities ``a · I + b`` with ``a > 0`` leaves the result unchanged.

    Parameters
    ----------
    low, high : float
        Percentiles [%] mapped to 0 and 1.
    """

    low: float = 1.0
    high: float = 99.8

    def __post_init__(self) -> None:
        if not (0.0 <= self.low < self.high <= 100.0):
            raise ValueError(
                f"percentiles must satisfy 0 ≤ low < high ≤ 100, got low={self.low!r}, "
                f"high={self.high!r}."
            )

    def __call__(self, image: np.ndarray, /) -> np.ndarray:
        """The normalised image, float32, same shape (channels last dims are per image)."""
        return normalize_percentile(image, low=self.low, high=self.high)

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dictionary."""
        return {"low": self.low, "high": self.high}


def normalize_percentile(
    image: np.ndarray, /, *, low: float = 1.0, high: float = 99.8
) -> np.ndarray:
    """Normalise an image so that its ``low`` and ``high`` percentiles become 0 and 1.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (C, H, W)
        The image; channels are normalised independently. NaN or infinite pixels raise.
    low, high : float
        Percentiles [%].

    Returns
    -------
    ndarray, float32
        Same shape.

    Examples
    --------
    >>> import numpy as np
    >>> im = np.arange(100.0).reshape(10, 10)
    >>> out = normalize_percentile(im, low=0, high=100)
    >>> float(out.min()), float(out.max())
    (0.0, 1.0)
    >>> np.allclose(normalize_percentile(3 * im + 7), normalize_percentile(im))
    True
    """
    a = np.asarray(image)
    if a.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (C, H, W), got shape {a.shape}.")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise TypeError(f"image must be a real-valued array, got dtype {a.dtype}.")
    a = a.astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(
            f"image has {int((~np.isfinite(a)).sum())} NaN or infinite pixels; replace them "
            "(e.g. with the median) before finding atoms."
        )
    chans = a if a.ndim == 3 else a[None]
    out = np.empty(chans.shape, dtype=np.float32)
    for i, ch in enumerate(chans):
        lo, hi = np.percentile(ch, [low, high])
        span = hi - lo
        if not span > 0:
            lo, hi = float(ch.min()), float(ch.max())
            span = hi - lo
            if not span > 0:
                raise ValueError(
                    "image is constant (every pixel equals "
                    f"{lo:g}); there is nothing to find. Check the file or channel."
                )
            warnings.warn(
                f"the {low}–{high} percentile range of the image is empty (a sparse or "
                "saturated image?); normalising by its minimum and maximum instead.",
                RuntimeWarning,
                stacklevel=2,
            )
        out[i] = (ch - lo) / span
    return out if a.ndim == 3 else out[0]
