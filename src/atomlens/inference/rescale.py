"""Resampling between an image's pixel size and a model's sampling."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["image_to_model_coords", "model_to_image_coords", "resample", "resize_to"]


def resample(image: np.ndarray, /, *, factor: float) -> np.ndarray:
    """Resample an image by ``factor`` (output side ≈ input side · factor).

    Down-sampling (``factor < 1``) averages over the footprint of each new pixel
    (anti-aliased), so shot noise is pooled rather than aliased; up-sampling is bilinear.
    Pixel centres stay at integer coordinates and the image's edges stay put: input pixel
    ``x`` maps to ``(x + 0.5) · factor_x − 0.5`` with ``factor_x = W_out / W_in``.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (C, H, W)
        The image.
    factor : float
        Scale factor, e.g. ``pixel_size / model_pixel_size``.

    Returns
    -------
    ndarray, float32
        ``(…, round(H · factor), round(W · factor))``.
    """
    a = np.asarray(image, dtype=np.float32)
    squeeze = a.ndim == 2
    t = torch.from_numpy(np.require(a if a.ndim == 3 else a[None], requirements=["C", "W"]))[None]
    h, w = t.shape[-2:]
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    if size == (h, w):
        return a.copy()
    out = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=factor < 1)
    out_np = out[0].numpy()
    return out_np[0] if squeeze else out_np


def image_to_model_coords(xy: np.ndarray, /, *, scale_xy: tuple[float, float]) -> np.ndarray:
    """Positions ``(N, 2)`` as (x, y) in image pixels → model pixels.

    ``scale_xy`` is ``(W_model / W_image, H_model / H_image)``.
    """
    s = np.asarray(scale_xy, dtype=float)
    return (np.asarray(xy, dtype=float) + 0.5) * s - 0.5


def model_to_image_coords(xy: np.ndarray, /, *, scale_xy: tuple[float, float]) -> np.ndarray:
    """Inverse of :func:`image_to_model_coords`."""
    s = np.asarray(scale_xy, dtype=float)
    return (np.asarray(xy, dtype=float) + 0.5) / s - 0.5


def resize_to(maps: np.ndarray, shape: tuple[int, int], /) -> np.ndarray:
    """Resize maps ``(C, h, w)`` to ``(C, *shape)``: bilinear, anti-aliased when shrinking
    (probabilities predicted at the model's sampling, back onto the image's pixel grid).

    Parameters
    ----------
    maps : ndarray of shape (C, h, w)
        The maps.
    shape : tuple of int
        ``(H, W)`` [px].

    Returns
    -------
    ndarray of shape (C, H, W)
    """
    t = torch.from_numpy(np.ascontiguousarray(maps))[None]
    down = shape[0] < maps.shape[-2]
    out = F.interpolate(t, size=shape, mode="bilinear", align_corners=False, antialias=down)
    return out[0].numpy()
