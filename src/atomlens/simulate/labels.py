"""Training labels: per-class masks drawn at the true column positions."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

__all__ = ["render_masks"]


def render_masks(
    xy_px: np.ndarray,
    /,
    *,
    class_index: np.ndarray,
    n_classes: int,
    shape: tuple[int, int],
    radius_px: float,
    kind: Literal["disk", "gaussian"] = "disk",
) -> np.ndarray:
    """Per-class masks with a background channel.

    Parameters
    ----------
    xy_px : ndarray of shape (N, 2)
        Column positions (x, y) in the image [px].
    class_index : ndarray of shape (N,)
        Class of each column, 0 … ``n_classes − 1``.
    n_classes : int
        Number of (foreground) classes.
    shape : tuple of int
        Image shape (H, W).
    radius_px : float
        Disk radius, or Gaussian standard deviation, [px].
    kind : {"disk", "gaussian"}
        Binary disks, or Gaussians with peak 1 (overlaps take the maximum).

    Returns
    -------
    ndarray of shape (n_classes + 1, H, W), float32
        Channel 0 is the background ``1 − Σ_k mask_k`` clipped to [0, 1]; channel ``k + 1``
        holds class ``k``.
    """
    if kind not in ("disk", "gaussian"):
        raise ValueError(f"kind must be 'disk' or 'gaussian', got {kind!r}.")
    if not radius_px > 0:
        raise ValueError(f"radius_px must be positive, got {radius_px!r}.")
    h, w = shape
    masks = np.zeros((n_classes + 1, h * w), dtype=np.float32)
    xy = np.asarray(xy_px, dtype=float).reshape(-1, 2)
    cls = np.asarray(class_index, dtype=np.int64).reshape(-1)
    if len(xy):
        reach = radius_px if kind == "disk" else 3.0 * radius_px
        half = int(math.ceil(reach)) + 1
        off = np.arange(-half, half + 1)
        ix = np.round(xy[:, 0]).astype(np.int64)
        iy = np.round(xy[:, 1]).astype(np.int64)
        cols = ix[:, None] + off  # (N, K)
        rows = iy[:, None] + off
        d2 = (rows - xy[:, 1:])[:, :, None] ** 2 + (cols - xy[:, :1])[:, None, :] ** 2
        if kind == "disk":
            val = (d2 <= radius_px**2).astype(np.float32)
        else:
            val = np.exp(-0.5 * d2 / radius_px**2).astype(np.float32)
            val[d2 > reach**2] = 0.0
        ok = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        ok &= val > 0
        flat = (rows[:, :, None] * w + cols[:, None, :])[ok]
        chan = np.broadcast_to((cls + 1)[:, None, None], ok.shape)[ok]
        np.maximum.at(masks, (chan, flat), val[ok])
    masks = masks.reshape(n_classes + 1, h, w)
    masks[0] = np.clip(1.0 - masks[1:].sum(axis=0), 0.0, 1.0)
    return masks
