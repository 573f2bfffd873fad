"""Probability maps + raw image → the atoms table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from atomlens._validate import validate_pixel_size, validate_positive
from atomlens.atoms_table import make_atoms_table
from atomlens.locate.peaks import find_peaks
from atomlens.locate.refine import refine_gaussian

__all__ = [
    "POSITIONS",
    "Positions",
    "atoms_from_starts",
    "check_positions",
    "detect_starts",
    "locate_atoms",
]

logger = logging.getLogger(__name__)

#: Where a refined atom's reported position comes from (see :func:`locate_atoms`).
Positions = Literal["network", "fit", "mean"]
POSITIONS: tuple[str, ...] = get_args(Positions)  # the choices, from the one type


def check_positions(positions: object, /, *, name: str = "positions") -> None:
    """Raise a clear error unless ``positions`` is one of :data:`POSITIONS`; ``name`` is
    how the caller's user wrote the argument (``--positions`` on the command line)."""
    if positions not in POSITIONS:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, POSITIONS))}, got {positions!r}."
        )


def _disk_mean(maps: np.ndarray, xy: np.ndarray, radius: float) -> np.ndarray:
    """Mean of each map over a disk around each point → (N, C)."""
    r = max(1, int(np.floor(radius)))
    o = np.arange(-r, r + 1)
    dy, dx = np.meshgrid(o, o, indexing="ij")
    keep = dx**2 + dy**2 <= max(radius, 1.0) ** 2
    dx, dy = dx[keep], dy[keep]
    _c, h, w = maps.shape
    ix = np.clip(np.round(xy[:, 0]).astype(np.int64)[:, None] + dx, 0, w - 1)
    iy = np.clip(np.round(xy[:, 1]).astype(np.int64)[:, None] + dy, 0, h - 1)
    return maps[:, iy, ix].mean(axis=2).T


def _centroids(fg: np.ndarray, xy: np.ndarray, radius: float) -> np.ndarray:
    """Probability-weighted centroid of the foreground in a disk around each peak."""
    r = max(1, int(np.floor(radius)))
    o = np.arange(-r, r + 1)
    dy, dx = np.meshgrid(o, o, indexing="ij")
    keep = dx**2 + dy**2 <= max(radius, 1.0) ** 2
    dx, dy = dx[keep], dy[keep]
    h, w = fg.shape
    ix = np.round(xy[:, 0]).astype(np.int64)[:, None] + dx
    iy = np.round(xy[:, 1]).astype(np.int64)[:, None] + dy
    ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    wts = np.where(ok, fg[np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1)], 0.0)
    wts = np.maximum(wts - 0.5 * wts.max(axis=1, keepdims=True), 0.0)
    tot = wts.sum(axis=1)
    out = xy.astype(float).copy()
    good = tot > 0
    out[good, 0] = (wts * ix).sum(axis=1)[good] / tot[good]
    out[good, 1] = (wts * iy).sum(axis=1)[good] / tot[good]
    return out


def locate_atoms(
    probabilities: np.ndarray,
    /,
    image: np.ndarray | None = None,
    *,
    pixel_size: float,
    class_names: Sequence[str],
    min_separation_A: float = 0.9,
    threshold: float = 0.5,
    label_radius_A: float = 0.5,
    refine: bool = True,
    fit_radius_A: float | None = None,
    contrast: Literal["auto", "bright", "dark"] = "auto",
    positions: Positions = "network",
) -> pd.DataFrame:
    """Turn per-pixel class probabilities into atoms with sub-pixel positions.

    1. Peaks of the foreground probability ``1 − p_background``, smoothed slightly, at least
       ``min_separation_A`` apart (greedy non-maximum suppression, best first).
    2. Start positions: probability-weighted centroids around each peak.
    3. Class: the foreground class with the highest mean probability in a disk of
       ``label_radius_A`` around the atom.
    4. A batched, neighbour-aware, noise-weighted Gaussian fit of all atoms at once on the
       raw ``image`` (:func:`atomlens.locate.refine_gaussian`), with its own position
       uncertainty, intensity and width. Atoms whose fit disk crosses the border are kept
       and flagged ``near_edge``; atoms whose fit fails keep their start position
       (``refined = False``), as do border columns whose fit drifts just outside the image;
       columns whose fitted centre lies more than 1 px outside the image are left out.
    5. The position reported (``positions``): by default the start position, except for
       columns cut by the border, which keep the fit's.

    Parameters
    ----------
    probabilities : ndarray of shape (K + 1, H, W)
        Class probabilities, background first, on the image's pixel grid.
    image : ndarray of shape (H, W), optional
        The raw image for refinement (same grid). Without it, positions are the centroids.
    pixel_size : float
        Pixel size [Å/px].
    class_names : sequence of str
        The K foreground class names.
    min_separation_A : float
        Minimum distance between two atoms [Å].
    threshold : float
        Minimum (smoothed) foreground probability of an atom.
    label_radius_A : float
        Radius of the disks the model was trained on [Å].
    refine : bool
        Fit the raw image (needs ``image``).
    fit_radius_A : float, optional
        Radius of the fitted disk [Å]; by default three times the column's fitted Gaussian
        width, capped at 0.9 of the median nearest-neighbour distance.
    contrast : {"auto", "bright", "dark"}
        Whether atoms are bright (HAADF) or dark (BF/ABF) in ``image``; ``"auto"`` compares
        the image at the atoms with its median.
    positions : {"network", "fit", "mean"}
        The position reported for a refined atom: the network's start position (its
        probability-weighted centroid; default), the Gaussian fit's, or the mean of the
        two. The fit decides in all three which border columns are left out, gives
        ``intensity``, ``width_A`` and the σ columns, and places the columns cut by the
        border (where the network sees half a column). The fit models a column as a
        Gaussian on a flat background: a thin amorphous film pulls it (graphene with
        perfect maps: 1.5 pm RMSE without film, 9 pm under 1 Å of carbon, 16 pm under
        3 Å, against a Cramér–Rao bound of 1.1–1.7 pm), and so do a probe's aberration
        tails. The network's position was as good or better on every simulated condition
        of a material the model was trained on, and within 3 % of the fit's on two real
        crystals (one better, one worse); it is only as good as the network, and was worse
        for a model used on a material it was not trained for (the bundled graphene model
        on WS2: 3.7 pm against 0.8). It depends slightly on the tiling (group
        normalisation sees each tile): 99 % of the atoms moved by less than 0.1 px between
        tilings of a 512² image; the fit's by less than 0.04 px
        (``benchmarks/refine_positions.py``, README "Positions").

    Returns
    -------
    pandas.DataFrame
        ``x_px, y_px, x_A, y_A, class`` then ``score`` (foreground probability),
        ``class_p`` (the class's share of the foreground probability), ``intensity``
        (integrated intensity above the local background [image units · px²]),
        ``fit_sigma_x_A, fit_sigma_y_A`` (the fit's one-σ position uncertainty [Å]),
        ``width_A`` (Gaussian σ of the column [Å]), ``near_edge`` and ``refined``.
    """
    ps = validate_pixel_size(pixel_size)
    p = np.asarray(probabilities, dtype=np.float32)
    names = list(class_names)
    if p.ndim != 3 or p.shape[0] != len(names) + 1:
        raise ValueError(
            f"probabilities must be (K + 1, H, W) with K = {len(names)} classes, got shape "
            f"{p.shape}."
        )
    validate_positive(min_separation_A, name="min_separation_A", unit="Å")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be within (0, 1), got {threshold!r}.")
    min_sep_px = min_separation_A / ps
    lab_px = max(label_radius_A / ps, 1.0)
    start, score = detect_starts(
        1.0 - p[0], min_distance_px=min_sep_px, threshold=threshold, label_radius_px=lab_px
    )
    return atoms_from_starts(
        p,
        image,
        start,
        score,
        pixel_size=ps,
        class_names=names,
        label_radius_px=lab_px,
        min_distance_px=min_sep_px,
        refine=refine,
        fit_radius_A=fit_radius_A,
        contrast=contrast,
        positions=positions,
    )


def detect_starts(
    foreground: np.ndarray, /, *, min_distance_px: float, threshold: float, label_radius_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of a foreground map and the probability-weighted centroids around them.

    Returns
    -------
    xy : ndarray of shape (N, 2)
        Start positions (x, y) [px].
    score : ndarray of shape (N,)
        Smoothed foreground probability at each peak.
    """
    fg = np.asarray(foreground, dtype=np.float32)
    xy, score = find_peaks(
        fg,
        min_distance_px=min_distance_px,
        threshold=threshold,
        smooth_px=max(0.5, 0.3 * label_radius_px),
    )
    return (_centroids(fg, xy, label_radius_px) if len(xy) else xy), score


def atoms_from_starts(
    probabilities: np.ndarray,
    image: np.ndarray | None,
    start: np.ndarray,
    score: np.ndarray,
    /,
    *,
    pixel_size: float,
    class_names: Sequence[str],
    label_radius_px: float,
    min_distance_px: float,
    refine: bool = True,
    fit_radius_A: float | None = None,
    contrast: Literal["auto", "bright", "dark"] = "auto",
    extra: dict[str, np.ndarray] | None = None,
    positions: Positions = "network",
) -> pd.DataFrame:
    """Classes, refinement and the atoms table for given start positions (see
    :func:`locate_atoms`); ``extra`` columns (one value per start) ride along."""
    check_positions(positions)
    ps = pixel_size
    p = probabilities
    names = list(class_names)
    fg = 1.0 - p[0]
    lab_px = label_radius_px
    min_sep_px = min_distance_px
    n = len(start)
    cls_p = _disk_mean(p[1:], start, lab_px) if n else np.zeros((0, len(names)))
    cls_idx = cls_p.argmax(axis=1) if n else np.zeros(0, dtype=int)
    share = (
        cls_p[np.arange(n), cls_idx] / np.maximum(cls_p.sum(axis=1), 1e-12) if n else cls_p[:, 0]
    )
    empty = np.full(n, np.nan)
    cols = {
        **{k: np.asarray(v) for k, v in (extra or {}).items()},
        "score": score,
        "class_p": share,
        "intensity": empty.copy(),
        "fit_sigma_x_A": empty.copy(),
        "fit_sigma_y_A": empty.copy(),
        "width_A": empty.copy(),
        "near_edge": np.zeros(n, dtype=bool),
        "refined": np.zeros(n, dtype=bool),
    }
    final = start
    if refine and image is not None and n:
        img = np.asarray(image, dtype=np.float64)
        if img.shape != fg.shape:
            raise ValueError(f"image shape {img.shape} differs from the maps' {fg.shape}.")
        if contrast == "auto":
            at = ndimage.map_coordinates(img, start[:, ::-1].T, order=1, mode="nearest")
            contrast = "bright" if np.median(at) >= np.median(img) else "dark"
            logger.debug("atoms look %s in the image", contrast)
        if contrast == "dark":
            img = img.max() - img
        if n > 1:
            d_nn = float(np.median(cKDTree(start).query(start, k=2)[0][:, 1]))
        else:
            d_nn = 4 * min_sep_px
        if fit_radius_A is None:
            pre = refine_gaussian(
                img,
                start,
                radius_px=max(2.0, 0.45 * d_nn),
                width_px=max(1.0, 0.2 * d_nn),
                neighbours=False,
                weighted=False,
                rounds=1,
                iterations=4,
            )
            s = float(np.nanmedian(pre.width[pre.fitted])) if pre.fitted.any() else 0.2 * d_nn
            radius = float(np.clip(3.0 * s, 2.0, max(2.0, 0.9 * d_nn)))
        else:
            radius = max(2.0, fit_radius_A / ps)
            s = radius / 3.0
        fit = refine_gaussian(img, start, radius_px=radius, width_px=s, groups=cls_idx)
        final = fit.xy
        cols.update(
            intensity=fit.intensity,
            fit_sigma_x_A=fit.sigma_xy[:, 0] * ps,
            fit_sigma_y_A=fit.sigma_xy[:, 1] * ps,
            width_A=fit.width * ps,
            near_edge=fit.near_edge,
            refined=fit.fitted,
        )
    else:
        h, w = fg.shape
        m = lab_px
        cols["near_edge"] = (
            (start[:, 0] < m)
            | (start[:, 1] < m)
            | (start[:, 0] > w - 1 - m)
            | (start[:, 1] > h - 1 - m)
        )
    classes = np.asarray(names, dtype=object)[cls_idx] if n else np.array([], dtype=object)
    # Columns cut by the border: a fit on half a column is poorly constrained and can drift
    # outwards. A centre fitted just outside (within 1 px) falls back to the network's
    # position, flagged refined = False; one fitted further out is not a column of this
    # image and is left out. Pixel centres are at integers: the image spans −0.5 … W − 0.5.
    h, w = fg.shape

    def within(xy: np.ndarray, margin: float) -> np.ndarray:
        return (
            (xy[:, 0] >= -0.5 - margin)
            & (xy[:, 0] <= w - 0.5 + margin)
            & (xy[:, 1] >= -0.5 - margin)
            & (xy[:, 1] <= h - 0.5 + margin)
        )

    out_now = ~within(final, 0.0)
    back = out_now & within(final, 1.0) & within(start, 0.0)
    if back.any():
        final = np.where(back[:, None], start, final)
        cols["refined"] = np.where(back, False, cols["refined"])
        for k in ("fit_sigma_x_A", "fit_sigma_y_A"):
            cols[k] = np.where(back, np.nan, cols[k])
    inside = within(final, 0.0)
    if positions != "fit" and refine and image is not None and n:
        # the fit still decided which border columns are left out (above). A column cut by
        # the border keeps the fit's position: the network sees half a column there and
        # its centroid leans inwards (benchmarks/refine_positions.py, training condition:
        # the network's positions 3.8 pm RMSE with the border columns' own, 2.9 with the
        # fit's there; away from the border 2.2 against the fit's 2.3)
        own = start if positions == "network" else 0.5 * (start + final)
        final = np.where(np.asarray(cols["near_edge"], bool)[:, None], final, own)
    if not inside.all():
        logger.debug("%d atoms fitted outside the image were dropped", int((~inside).sum()))
    table = make_atoms_table(
        final[inside],
        pixel_size=ps,
        classes=classes[inside],
        extra={k: np.asarray(v)[inside] for k, v in cols.items()},
    )
    return table.sort_values(["y_px", "x_px"], ignore_index=True)
