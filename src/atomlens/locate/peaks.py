"""Probability maps → candidate atoms: peaks with non-maximum suppression."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = ["find_peaks", "suppress_close"]


def suppress_close(xy: np.ndarray, score: np.ndarray, /, *, min_distance: float) -> np.ndarray:
    """Greedy non-maximum suppression: keep the best-scoring points at least
    ``min_distance`` apart.

    Parameters
    ----------
    xy : ndarray of shape (N, 2)
        Points (x, y).
    score : ndarray of shape (N,)
        Higher is better.
    min_distance : float
        Minimum distance between kept points (same unit as ``xy``).

    Returns
    -------
    ndarray of int
        Indices of the kept points, best first.

    Examples
    --------
    >>> suppress_close(np.array([[0, 0], [1, 0], [5, 0]]), np.array([0.9, 1.0, 0.5]),
    ...                min_distance=2).tolist()
    [1, 2]
    """
    order = np.argsort(-np.asarray(score), kind="stable")
    if len(order) == 0 or min_distance <= 0:
        return order
    tree = cKDTree(np.asarray(xy, dtype=float))
    pairs = tree.query_pairs(min_distance, output_type="ndarray")
    if len(pairs) == 0:
        return order
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    # Each point only needs its better-ranked neighbours.
    a, b = pairs[:, 0], pairs[:, 1]
    worse = np.where(rank[a] > rank[b], a, b)
    better = np.where(rank[a] > rank[b], b, a)
    by_worse = np.argsort(worse, kind="stable")
    worse, better = worse[by_worse], better[by_worse]
    starts = np.searchsorted(worse, np.arange(len(order)))
    ends = np.searchsorted(worse, np.arange(len(order)), side="right")
    alive = np.ones(len(order), dtype=bool)
    for i in order:  # only points with a close neighbour cost Python time
        s, e = starts[i], ends[i]
        if s != e and alive[better[s:e]].any():
            alive[i] = False
    return order[alive[order]]


def find_peaks(
    foreground: np.ndarray,
    /,
    *,
    min_distance_px: float,
    threshold: float = 0.5,
    smooth_px: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of a foreground-probability map, at least ``min_distance_px`` apart.

    The map is smoothed first (σ = ``smooth_px``), which turns the flat tops of saturated
    probabilities into single peaks at the centre of each blob.

    Parameters
    ----------
    foreground : ndarray of shape (H, W)
        Probability that a pixel belongs to an atom (1 − background).
    min_distance_px : float
        Minimum distance between atoms [px].
    threshold : float
        Minimum smoothed probability of a peak.
    smooth_px : float
        Gaussian smoothing [px] before peak finding; 0 for none.

    Returns
    -------
    xy : ndarray of shape (N, 2)
        Peak positions (x, y) [px], integers as floats, best first.
    score : ndarray of shape (N,)
        Smoothed probability at each peak.
    """
    fg = np.asarray(foreground, dtype=np.float32)
    if fg.ndim != 2:
        raise ValueError(f"foreground must be 2-D (H, W), got shape {fg.shape}.")
    sm = ndimage.gaussian_filter(fg, smooth_px, mode="nearest") if smooth_px > 0 else fg
    size = max(3, 2 * int(min_distance_px / 2) + 1)
    local = sm == ndimage.maximum_filter(sm, size=size, mode="nearest")
    rows, cols = np.nonzero(local & (sm >= threshold))
    score = sm[rows, cols]
    xy = np.column_stack([cols, rows]).astype(np.float64)
    keep = suppress_close(xy, score, min_distance=min_distance_px)
    return xy[keep], score[keep].astype(np.float64)
