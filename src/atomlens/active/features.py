"""Candidates from an overview image: a grid of positions and the image patch at each."""

from __future__ import annotations

import numpy as np

__all__ = ["grid_positions", "patch_features"]


def grid_positions(shape: tuple[int, int], /, *, step_px: int, margin_px: int = 0) -> np.ndarray:
    """Positions of a regular grid over an image, row by row.

    Parameters
    ----------
    shape : (int, int)
        Image shape (H, W) [px].
    step_px : int
        Grid spacing [px].
    margin_px : int
        Distance kept from every border [px].

    Returns
    -------
    ndarray of shape (N, 2)
        ``(x, y)`` pixel positions (x = column, y = row), y-major order.

    Examples
    --------
    >>> grid_positions((10, 10), step_px=4, margin_px=1).tolist()
    [[1.0, 1.0], [5.0, 1.0], [1.0, 5.0], [5.0, 5.0]]
    """
    h, w = (int(s) for s in shape)
    if int(step_px) < 1:
        raise ValueError(f"`step_px` must be >= 1 px, got {step_px!r}.")
    ys = np.arange(margin_px, h - margin_px, int(step_px), dtype=np.float64)
    xs = np.arange(margin_px, w - margin_px, int(step_px), dtype=np.float64)
    if ys.size == 0 or xs.size == 0:
        raise ValueError(
            f"no grid position fits a {h}×{w} image with `margin_px`={margin_px}; "
            "lower it or use a larger image."
        )
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.column_stack([xx.ravel(), yy.ravel()])


def patch_features(image: np.ndarray, positions: np.ndarray, /, *, size: int) -> np.ndarray:
    """Flattened square patches around positions, standardised over the whole image.

    The image is scaled once to zero mean and unit standard deviation (so patches keep
    their brightness relative to each other: a bright dopant stays bright), edges are
    mirrored where a patch sticks out.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The overview image.
    positions : ndarray of shape (N, 2)
        Patch centres ``(x, y)`` [px], rounded to the nearest pixel.
    size : int
        Patch side [px].

    Returns
    -------
    ndarray of shape (N, size * size), float64
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"`image` must be a 2-D overview (H, W), got shape {img.shape}.")
    if int(size) < 1:
        raise ValueError(f"`size` (patch side) must be >= 1 px, got {size!r}.")
    size = int(size)
    sd = img.std()
    img = (img - img.mean()) / (sd if sd > 0 else 1.0)
    half = size // 2
    pad = np.pad(img, size, mode="reflect")
    pos = np.rint(np.asarray(positions, dtype=np.float64)).astype(int) + size
    offs = np.arange(size) - half
    rows = (pos[:, 1, None] + offs)[:, :, None]
    cols = (pos[:, 0, None] + offs)[:, None, :]
    return pad[rows, cols].reshape(len(pos), size * size)
