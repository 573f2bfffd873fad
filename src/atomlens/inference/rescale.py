"""Resampling between an image's pixel size and a model's sampling."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MAX_MODEL_MAPS_BYTES",
    "MAX_UPSAMPLING",
    "UNRESOLVED_ABOVE_A_PER_PX",
    "check_resampling",
    "image_to_model_coords",
    "model_to_image_coords",
    "resample",
    "resize_to",
]

# The most a network's input may be up-sampled from the image (model pixels per image
# pixel). The bundled models sample at 0.2 Å/px, so 4× admits images up to 0.8 Å/px:
# already past Nyquist (0.71 Å/px) for the closest columns they were trained on (graphene,
# hBN: 1.42-1.45 Å) and at it for the widest (MoS₂/WS₂ 1.82 Å, SrTiO₃ [001] 1.95 Å). Past
# 4× an image holds no column the model could tell from its neighbour; it is almost always
# a pixel size in the wrong unit or of an overview image.
MAX_UPSAMPLING = 4.0

# Atom columns are at most about 2 Å apart at their closest in a crystal projection (1.42 Å
# in graphene, 1.95 Å in SrTiO₃ [001], 2.04 Å in fcc metals along [001]); resolving them
# needs two pixels per spacing (Nyquist), so above about 1 Å/px no atoms are resolved.
UNRESOLVED_ABOVE_A_PER_PX = 1.0

# What the class-probability maps of one frame may take at the model's sampling
# (float32, one map per member and class, background included). ``predict_tiled`` holds
# them and their quotient by the blend weights, so the peak is about twice this: 8 GiB,
# half of a 16 GiB workstation. Sane frames stay well below it: 4096² px at 0.3 Å/px with
# the bundled graphene ensemble (4 members × 3 maps) is 1.8 GiB; 8192² px at the model's
# own sampling 3.0 GiB.
MAX_MODEL_MAPS_BYTES = 4 * 2**30


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


def check_resampling(
    shape: tuple[int, ...], pixel_size: float, model_pixel_size: float, *, n_maps: int = 1
) -> None:
    """Refuse a resampling the model cannot use, before anything is allocated.

    The network sees the image resampled by ``pixel_size / model_pixel_size``; refused are

    - an up-sampling above ``MAX_UPSAMPLING`` (4×): the image is too coarse for the model
      (above about ``UNRESOLVED_ABOVE_A_PER_PX``, 1 Å/px, no atoms are resolved at all);
    - probability maps at the model's sampling above ``MAX_MODEL_MAPS_BYTES`` (4 GiB):
      ``n_maps`` float32 maps of the resampled frame.

    Parameters
    ----------
    shape : tuple of int
        Image shape (…, H, W) [px]; only the last two count (one frame).
    pixel_size : float
        The image's pixel size [Å/px].
    model_pixel_size : float
        The model's sampling [Å/px].
    n_maps : int
        Probability maps predicted per frame: members × (classes + 1).

    Raises
    ------
    ValueError
        The message gives the factor or the memory, the limit and the fix.
    """
    h, w = int(shape[-2]), int(shape[-1])
    factor = pixel_size / model_pixel_size
    if factor > MAX_UPSAMPLING * (1 + 1e-9):
        raise ValueError(
            f"at {pixel_size:g} Å/px the image would be up-sampled {factor:.3g}× to the "
            f"model's {model_pixel_size:g} Å/px, more than the {MAX_UPSAMPLING:g}× it can use "
            f"(up to {MAX_UPSAMPLING * model_pixel_size:.3g} Å/px); above about "
            f"{UNRESOLVED_ABOVE_A_PER_PX:g} Å/px no atoms are resolved (the nearest columns are "
            "at most about 2 Å apart and need two pixels per spacing). Check `pixel_size` and "
            "its unit (Å/px; 1 nm = 10 Å), or use a model trained at a coarser sampling."
        )
    hm, wm = max(1, round(h * factor)), max(1, round(w * factor))
    need = hm * wm * n_maps * 4
    if need > MAX_MODEL_MAPS_BYTES:
        side = math.floor(math.sqrt(MAX_MODEL_MAPS_BYTES / (n_maps * 4)) / factor)
        raise ValueError(
            f"the image is {w}×{h} px, {wm}×{hm} px at the model's {model_pixel_size:g} Å/px "
            f"(from {pixel_size:g} Å/px); its {n_maps} probability maps there would take "
            f"{need / 2**30:.3g} GiB, above the {MAX_MODEL_MAPS_BYTES / 2**30:g} GiB allowed "
            f"for one frame. Crop it into pieces of at most {side}×{side} px, or check "
            "`pixel_size`."
        )


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
