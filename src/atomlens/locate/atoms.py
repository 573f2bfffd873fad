"""Probability maps + raw image → the atoms table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from atomlens._shared.timing import stage
from atomlens._shared.validate import validate_pixel_size, validate_positive
from atomlens.io.atoms_table import make_atoms_table
from atomlens.locate.peaks import find_peaks
from atomlens.locate.refine import refine_gaussian
from atomlens.locate.sigma import (
    DEFAULT_SIGMA_MODEL,
    SIGMA_FEATURES,
    SigmaModel,
    column_kinds,
    lattice_scatter,
    sigma_features,
)

__all__ = [
    "AUTO_CHI2_MAX",
    "AUTO_CHI2_MIN",
    "AUTO_CHI2_PEERS",
    "AUTO_GAP_MAX",
    "AUTO_IMAGE_GAP_MAX",
    "AUTO_WIDTH_RANGE",
    "POSITIONS",
    "PositionChoice",
    "PositionEvidence",
    "Positions",
    "atoms_from_starts",
    "centred_inside",
    "check_positions",
    "choose_positions",
    "decide_positions",
    "detect_starts",
    "disk_mean",
    "locate_atoms",
    "position_evidence",
]

#: ``positions="auto"`` takes the fit's position only where the fit's reduced χ² is at
#: most this times that of its peers, the fitted columns of its kind, or 1 if theirs is
#: smaller (its Gaussian-on-flat-background model holds as well as for them), its width within
#: :data:`AUTO_WIDTH_RANGE` of its class's median, it agrees with the network's position
#: within three combined σ, and its σ is smaller than the network's.
AUTO_CHI2_MAX = 2.0
#: ... and at least this: a reduced χ² far below 1 (under 0.1 % of fits of 20 free pixels
#: under their noise model) says the fit took up the noise (a few counts on a disk of
#: empty pixels: 0.01 on abTEM graphene at 10³ e⁻/Å²), and its σ, scaled by it, claimed
#: a tenth of its error.
AUTO_CHI2_MIN = 0.3
#: Fewest fitted columns of a kind whose median χ² is its peers' reference (its class's
#: otherwise).
AUTO_CHI2_PEERS = 10
AUTO_WIDTH_RANGE = (0.8, 1.25)
#: ... and the two positions agree within this many combined σ (the larger axis), and
#: on the image as a whole the median of that is at most :data:`AUTO_IMAGE_GAP_MAX`.
AUTO_GAP_MAX = 3.0
AUTO_IMAGE_GAP_MAX = 2.0

logger = logging.getLogger(__name__)

#: Where a refined atom's reported position comes from (see :func:`locate_atoms`).
Positions = Literal["auto", "network", "fit", "mean"]
POSITIONS: tuple[str, ...] = get_args(Positions)  # the choices, from the one type


def check_positions(positions: object, /, *, name: str = "positions") -> None:
    """Raise a clear error unless ``positions`` is one of :data:`POSITIONS`; ``name`` is
    how the caller's user wrote the argument (``--positions`` on the command line)."""
    if positions not in POSITIONS:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, POSITIONS))}, got {positions!r}."
        )


def disk_mean(maps: np.ndarray, xy: np.ndarray, radius: float) -> np.ndarray:
    """Mean of each map ``(C, H, W)`` over a disk of ``radius`` [px] around each point of
    ``xy`` ``(N, 2)`` as (x, y) [px] → ``(N, C)``."""
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


def _extent(
    fg: np.ndarray, ix: np.ndarray, iy: np.ndarray, dx: int, dy: int, steps: int
) -> np.ndarray:
    """Distance [px] from pixel (ix, iy) along (dx, dy) to where ``fg`` first falls below
    0.5, interpolated linearly between pixels; NaN where the ray leaves the image first,
    stays above 0.5 for ``steps`` pixels, or starts below 0.5."""
    h, w = fg.shape
    k = np.arange(steps + 1)
    xs = ix[:, None] + dx * k
    ys = iy[:, None] + dy * k
    ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    v = np.where(ok, fg[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)], np.nan)
    below = v < 0.5
    first = below.argmax(axis=1)
    rows = np.arange(len(v))
    # the ray must stay inside the image up to the crossing
    stayed = np.cumprod(ok, axis=1)[rows, first].astype(bool)
    valid = below.any(axis=1) & (first >= 1) & stayed
    prev = v[rows, np.maximum(first - 1, 0)]
    cur = v[rows, first]
    with np.errstate(invalid="ignore", divide="ignore"):
        e = first - 1 + (prev - 0.5) / np.maximum(prev - cur, 1e-6)
    return np.where(valid, e, np.nan)


def _centre_inside(fg: np.ndarray, start: np.ndarray, label_radius_px: float) -> np.ndarray:
    """Whether each column's centre lies inside the image, read off the network's disk:
    1.0 inside, 0.0 outside, NaN where it cannot be read (a column whose disk does not
    reach the border, or a disk that merges with another). See :func:`_border_disks`."""
    return _border_disks(fg, start, label_radius_px)[0]


def _border_disks(
    fg: np.ndarray, start: np.ndarray, label_radius_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Where the centres of the columns whose disks the border cuts lie, read off the
    network's disks: (verdict, centre). ``verdict`` is 1.0 for a centre inside the image,
    0.0 outside, NaN where it cannot be read (a column whose disk does not reach the
    border, or a disk that merges with another); ``centre`` (N, 2) [px] is ``start`` with
    the coordinate across each border that cuts the disk replaced by the disk's.

    The network draws a disk of one radius around every column, also around a column
    centred outside the image whose disk reaches into it (the training masks include
    them). A disk cut by the border shows how far it reaches inwards; less its radius,
    that is where its centre is. Along the border the cut disk is still symmetric, and
    its centroid (``start``) holds. The radius is measured on the columns in the middle of
    the image (their half-width at 0.5 along ±x and ±y), so a network whose disks come
    out wider or narrower than it was trained for is read by its own disks."""
    h, w = fg.shape
    n = len(start)
    verdict = np.full(n, np.nan)
    centre = np.array(start, dtype=float, copy=True).reshape(n, 2)
    if not n:
        return verdict, centre
    ix = np.clip(np.round(start[:, 0]).astype(np.int64), 0, w - 1)
    iy = np.clip(np.round(start[:, 1]).astype(np.int64), 0, h - 1)
    steps = int(np.ceil(3 * label_radius_px)) + 2
    mid = (ix >= steps) & (ix < w - steps) & (iy >= steps) & (iy < h - steps)
    radius = float(label_radius_px)
    if mid.sum() >= 5:
        m = np.flatnonzero(mid)[:400]
        ext = np.stack(
            [
                _extent(fg, ix[m], iy[m], dx, dy, steps)
                for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
            ]
        )
        # a radius from the opposite sides of each disk: the rounding of its pixel cancels
        both = np.concatenate([ext[0] + ext[1], ext[2] + ext[3]]) / 2
        if np.isfinite(both).sum() >= 5:
            radius = float(np.nanmedian(both))
    reach = radius + 1.0
    verdict_ok = np.ones(n, dtype=bool)
    read = np.zeros(n, dtype=bool)
    # (near that border, inwards (dx, dy), axis, the centre from the disk's far edge e,
    # the lowest or highest centre inside the image)
    for near, dx, dy, axis, at, lo, hi in (
        (start[:, 0] < reach, 1, 0, 0, lambda e: ix + e - radius, -0.5, None),
        (start[:, 0] > w - 1 - reach, -1, 0, 0, lambda e: ix - e + radius, None, w - 0.5),
        (start[:, 1] < reach, 0, 1, 1, lambda e: iy + e - radius, -0.5, None),
        (start[:, 1] > h - 1 - reach, 0, -1, 1, lambda e: iy - e + radius, None, h - 0.5),
    ):
        if not near.any():
            continue
        e = np.full(n, np.nan)
        e[near] = _extent(fg, ix[near], iy[near], dx, dy, steps)
        got = near & np.isfinite(e)
        read |= got
        c = at(np.nan_to_num(e))
        verdict_ok &= ~got | ((c >= lo) if lo is not None else (c <= hi))
        centre[got, axis] = c[got]
    verdict[read] = verdict_ok[read].astype(float)
    return verdict, centre


def centred_inside(foreground: np.ndarray, xy: np.ndarray, label_radius_px: float) -> np.ndarray:
    """Which of the start positions ``xy`` (N, 2) [px] (from :func:`detect_starts` on
    ``foreground``) belong to columns centred inside the image, by their probability disks
    where those reach the border (see :func:`locate_atoms`, step 5); True where the disk
    cannot tell."""
    return _centre_inside(np.asarray(foreground, np.float32), xy, label_radius_px) != 0.0


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
    positions: Positions = "auto",
    sigma_model: SigmaModel | None = None,
    threads: int = 1,
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
       (``refined = False``).
    5. Columns centred outside the image are left out. Where a column's probability disk
       reaches the border, the disk says where its centre is: the network draws a disk of
       one radius around every column, also around one centred just outside, and the
       cut disk's inward reach less that radius (measured on the image's inner columns)
       is the centre. Elsewhere the fitted centre decides. A column kept whose fit lies
       outside takes the network's position (``refined = False``).
    6. The position reported (``positions``): by default the network's, the start
       position, except for a column whose disk the border cuts (the centroid of half a
       disk leans inwards): the mean of the fit's centre and the cut disk's (step 5). The
       network's position of a cut column, without a fit or where it failed, is the cut
       disk's centre.

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
        two (for a column the border cuts, the network's is its cut disk's centre, and
        "network" reports the mean of that and the fit's: step 6). The fit gives
        ``intensity``, ``width_A`` and the σ columns. The fit models a column as a
        Gaussian on a flat background, so a thin amorphous film and a probe's aberration
        tails pull it; the network's position is only as good as the network, so it is
        worse for a model used on a material it was not trained for, and depends slightly
        on the tiling (group normalisation sees each tile). The figures of each choice,
        on simulated conditions and real crystals, are printed by
        ``benchmarks/refine_positions.py`` and kept in the README ("Positions").
    sigma_model : SigmaModel, optional
        How σ is made of its parts; the uncalibrated default if None.
    threads : int
        CPU threads for the fit (:func:`atomlens.locate.refine_gaussian`).

    Returns
    -------
    pandas.DataFrame
        ``x_px, y_px, x_A, y_A, class`` then ``score`` (foreground probability),
        ``class_p`` (the class's share of the foreground probability), ``intensity``
        (integrated intensity above the local background [image units · px²]),
        ``fit_sigma_x_A, fit_sigma_y_A`` (the fit's one-σ position uncertainty [Å]),
        ``width_A`` (Gaussian σ of the column [Å]), ``near_edge`` and ``refined``, and
        the columns of :func:`choose_positions` (the reported position, its source and σ,
        ``neighbour_A``: the nearest other candidate [Å], ``overlap`` and ``faintness``,
        ``lattice_fit_A`` and ``lattice_network_A``, ``sigma_rescale``, ``column_kind``).
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
        sigma_model=sigma_model,
        threads=threads,
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
    positions: Positions = "auto",
    sigma_model: SigmaModel | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Classes, refinement and the atoms table for given start positions (see
    :func:`locate_atoms`); ``extra`` columns (one value per start) ride along, and
    ``member_spread_x_A``/``_y_A`` among them enter σ."""
    check_positions(positions)
    ps = pixel_size
    p = probabilities
    names = list(class_names)
    fg = 1.0 - p[0]
    lab_px = label_radius_px
    min_sep_px = min_distance_px
    n = len(start)
    cls_p = disk_mean(p[1:], start, lab_px) if n else np.zeros((0, len(names)))
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
        "crlb_x_A": empty.copy(),
        "crlb_y_A": empty.copy(),
        "signal_snr": empty.copy(),
        "fit_chi2": empty.copy(),
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
            with stage("refinement"):
                pre = refine_gaussian(
                    img,
                    start,
                    radius_px=max(2.0, 0.45 * d_nn),
                    width_px=max(1.0, 0.2 * d_nn),
                    neighbours=False,
                    weighted=False,
                    rounds=1,
                    iterations=4,
                    threads=threads,
                )
            s = float(np.nanmedian(pre.width[pre.fitted])) if pre.fitted.any() else 0.2 * d_nn
            radius = float(np.clip(3.0 * s, 2.0, max(2.0, 0.9 * d_nn)))
        else:
            radius = max(2.0, fit_radius_A / ps)
            s = radius / 3.0
        with stage("refinement"):
            fit = refine_gaussian(
                img, start, radius_px=radius, width_px=s, groups=cls_idx, threads=threads
            )
        final = fit.xy
        cols.update(
            intensity=np.where(fit.fitted, fit.intensity, 2 * np.pi * fit.signal * fit.width**2),
            fit_sigma_x_A=fit.sigma_xy[:, 0] * ps,
            fit_sigma_y_A=fit.sigma_xy[:, 1] * ps,
            crlb_x_A=fit.crlb_xy[:, 0] * ps,
            crlb_y_A=fit.crlb_xy[:, 1] * ps,
            signal_snr=fit.signal / fit.signal_sigma,
            fit_chi2=np.where(fit.fitted, fit.chi2, np.nan),
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
    # Columns cut by the border. Whether a column's centre lies inside the image is read
    # off the network's disk where the disk reaches the border (_border_disks), and left
    # to the fit elsewhere: the fit on half a column drifts either way, so keeping every
    # column fitted just outside kept columns centred a few px outside (the comparison is
    # in docs/elit.md, "With the columns centred outside the frame left out"). A column
    # kept whose fit lies outside takes the network's position, flagged refined = False.
    # Pixel centres are at integers: the image spans −0.5 … W − 0.5.
    h, w = fg.shape

    def within(xy: np.ndarray, margin: float) -> np.ndarray:
        return (
            (xy[:, 0] >= -0.5 - margin)
            & (xy[:, 0] <= w - 0.5 + margin)
            & (xy[:, 1] >= -0.5 - margin)
            & (xy[:, 1] <= h - 0.5 + margin)
        )

    verdict, disk_centre = _border_disks(fg, start, lab_px)
    # The network's position: its centroid, and across the border that cuts a column's
    # disk, where the cut disk puts the centre (the centroid of half a disk leans inwards).
    # A whole disk gives the centroid, a cut one the mean of the fit's and the disk's
    # centre: of the fit alone, the disk alone and their mean, the mean was the most
    # even across materials, films and probes (the figures are in CHANGELOG.md, under the
    # entry on cut columns; benchmarks/refine_positions.py measures the current rule).
    net = np.where(np.isfinite(verdict)[:, None], disk_centre, start)
    said_in = verdict == 1.0
    out_now = ~within(final, 0.0)
    back = out_now & (within(final, 1.0) | said_in) & within(start, 0.0)
    if back.any():
        cols["refined"] = np.where(back, False, cols["refined"])
        for k in ("fit_sigma_x_A", "fit_sigma_y_A"):
            cols[k] = np.where(back, np.nan, cols[k])
    # the fit's position; for a failed fit, or one kept outside the image, the network's
    placed = np.where(np.asarray(cols["refined"], bool)[:, None], final, net)
    # the disk decides where it can tell, elsewhere the fit (its position must lie inside)
    inside = np.where(np.isfinite(verdict), said_in, True) & within(placed, 0.0)
    refined = np.asarray(cols["refined"], bool)
    cols["net_x_px"], cols["net_y_px"] = net[:, 0], net[:, 1]
    fit_xy = np.where(refined[:, None], placed, np.nan)
    cols["fit_x_px"], cols["fit_y_px"] = fit_xy[:, 0], fit_xy[:, 1]
    cols["border_cut"] = np.isfinite(verdict)
    # the nearest other column kept: how far a neighbour's tails reach in (σ's overlap)
    cols["neighbour_A"] = np.full(n, np.nan)
    cols["neighbour_A"][inside] = _nearest_other(net[inside]) * ps
    if not (refine and image is not None):
        positions = "network"
    if not inside.all():
        logger.debug("%d columns centred outside the image were dropped", int((~inside).sum()))
    table = make_atoms_table(
        net[inside],
        pixel_size=ps,
        classes=classes[inside],
        extra={k: np.asarray(v)[inside] for k, v in cols.items()},
    )
    with stage("sigma"):
        table = choose_positions(table, positions, pixel_size=ps, sigma_model=sigma_model)
    return table.sort_values(["y_px", "x_px"], ignore_index=True)


#: The columns :func:`choose_positions` keeps the lattice scatter of the fit's and the
#: network's positions in [Å].
LATTICE_COLUMNS: tuple[str, str] = ("lattice_fit_A", "lattice_network_A")


def _typical(sigma: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per-axis median σ (2,) over ``rows`` (all rows if none qualify); NaN if empty."""
    use = sigma[rows] if rows.any() else sigma
    finite = use[np.isfinite(use).all(axis=1)]
    return np.median(finite, axis=0) if len(finite) else np.full(2, np.nan)


def _nearest_other(xy: np.ndarray) -> np.ndarray:
    """Distance from each point ``(N, 2)`` to the nearest other one (NaN with fewer than
    two points), in the points' units."""
    if len(xy) < 2:
        return np.full(len(xy), np.nan)
    return cKDTree(xy).query(xy, k=2)[0][:, 1]


def _class_median(
    values: np.ndarray, cls: np.ndarray, rows: np.ndarray, min_rows: int = 1
) -> np.ndarray:
    """Per atom, the median of ``values`` over ``rows`` of its class (NaN where its class
    has fewer than ``min_rows`` of them)."""
    out = np.full(len(values), np.nan)
    for k in np.unique(cls):
        sel = cls == k
        if (sel & rows).sum() >= min_rows:
            out[sel] = float(np.median(values[sel & rows]))
    return out


def _chi2_reference(chi2: np.ndarray, kinds: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Per atom, the reduced χ² its fit is judged against: the median over the fitted
    columns of its kind (:func:`atomlens.locate.sigma.column_kinds`; its class where the
    kind has fewer than :data:`AUTO_CHI2_PEERS`), and never below 1.

    At a high dose a bright column's profile differs measurably from a Gaussian, and its
    χ² grows with the dose while its position stays unbiased (a symmetric difference):
    ``haadf-generic`` on clean simulated SrTiO3 at 10⁷ e⁻/Å², Sr columns' median χ² 2.26,
    fitted positions 0.12 pm off, the network's 1.41 pm. A fixed limit of 2 gave 91 % of
    them the network's. What sets a pulled fit apart is a χ² beyond its peers'."""
    fitted = np.isfinite(chi2)
    ref = _class_median(chi2, kinds, fitted & (kinds >= 0), AUTO_CHI2_PEERS)
    ref = np.where(np.isfinite(ref), ref, _class_median(chi2, cls, fitted))
    return np.fmax(np.nan_to_num(ref, nan=1.0), 1.0)


def _sigma_features_of(
    out: pd.DataFrame, net: np.ndarray, class_width: np.ndarray, ps: float
) -> np.ndarray:
    """:func:`sigma_features` of a table's atoms: their class's median width, the stored
    ``neighbour_A`` (or the nearest of the table's own atoms), ``signal_snr``."""
    if "neighbour_A" in out.columns:
        neighbour = out["neighbour_A"].to_numpy(float)
    else:  # a table from elsewhere: its own atoms are all there is to go by
        neighbour = _nearest_other(net) * ps
    snr = out.get("signal_snr", pd.Series(np.nan, out.index)).to_numpy(float)
    return sigma_features(neighbour, class_width, snr)


@dataclass(frozen=True)
class PositionEvidence:
    """What :func:`choose_positions` decides from and builds σ of, per atom, as arrays: all
    of it independent of the σ model (:func:`position_evidence`), so that one table can be
    re-decided under many models (the σ model's fit) without reading it again.

    Attributes
    ----------
    net, fit : ndarray
        (N, 2) the network's position (the table's ``x_px, y_px`` where it has none) and
        the fit's (NaN where none) [px].
    refined, cut : ndarray
        (N,) whether the fit converged; whether the border cuts the column.
    spread, net_base, fit_base : ndarray
        (N, 2) the members' spread (0 where unknown), the network's σ base (its
        Cramér–Rao term, 0 where unknown) and the fit's σ [Å].
    width, class_width : ndarray
        (N,) the fitted width and its class's median over the fitted columns [Å].
    cls, kinds : ndarray
        (N,) class and kind of column (:func:`atomlens.locate.sigma.column_kinds`).
    feats : ndarray
        (N, 2) :data:`atomlens.locate.sigma.SIGMA_FEATURES`.
    lat_fit, lat_net : ndarray
        (N,) lattice scatter of the fit's and the network's positions [Å].
    chi2, snr : ndarray
        (N,) the fit's reduced χ² and the column's ``signal_snr`` (NaN where unknown).
    pixel_size : float
        [Å/px].
    """

    net: np.ndarray
    fit: np.ndarray
    refined: np.ndarray
    cut: np.ndarray
    spread: np.ndarray
    net_base: np.ndarray
    fit_base: np.ndarray
    width: np.ndarray
    class_width: np.ndarray
    cls: np.ndarray
    kinds: np.ndarray
    feats: np.ndarray
    lat_fit: np.ndarray
    lat_net: np.ndarray
    chi2: np.ndarray
    snr: np.ndarray
    pixel_size: float


@dataclass(frozen=True)
class PositionChoice:
    """:func:`decide_positions`' answer, per atom.

    Attributes
    ----------
    source : ndarray
        (N,) "fit", "network" or "mean".
    xy : ndarray
        (N, 2) the reported position [px].
    sigma, plain : ndarray
        (N, 2) its σ [Å], and the same before the model's rescaling towards the lattice.
    """

    source: np.ndarray
    xy: np.ndarray
    sigma: np.ndarray
    plain: np.ndarray


def position_evidence(atoms: pd.DataFrame, /, *, pixel_size: float) -> PositionEvidence:
    """The arrays :func:`decide_positions` needs, from an atoms table of
    :func:`locate_atoms` (see :func:`choose_positions`; ``pixel_size`` [Å/px])."""
    ps = float(pixel_size)
    n = len(atoms)

    def pair(a: str, b: str, default: float = np.nan) -> np.ndarray:
        if a not in atoms.columns:
            return np.full((n, 2), default)
        return atoms[[a, b]].to_numpy(float).reshape(n, 2)

    def col(name: str, default: float = np.nan) -> np.ndarray:
        if name not in atoms.columns:
            return np.full(n, default)
        return atoms[name].to_numpy(float)

    net = pair("net_x_px", "net_y_px")
    net = np.where(np.isfinite(net), net, atoms[["x_px", "y_px"]].to_numpy(float).reshape(n, 2))
    fit = pair("fit_x_px", "fit_y_px")
    converged = atoms["refined"].to_numpy(bool) if "refined" in atoms.columns else np.zeros(n, bool)
    refined = np.isfinite(fit).all(axis=1) & converged
    cut = atoms["border_cut"].to_numpy(bool) if "border_cut" in atoms.columns else np.zeros(n, bool)
    spread = np.nan_to_num(pair("member_spread_x_A", "member_spread_y_A", 0.0), nan=0.0)
    crlb = pair("crlb_x_A", "crlb_y_A")
    width = col("width_A")
    cls = atoms["class"].astype(str).to_numpy() if "class" in atoms.columns else np.zeros(n)
    # each class's median width: one atom's own is noisy at low dose (σ's overlap and
    # auto's width check)
    class_width = _class_median(width, cls, refined & np.isfinite(width))
    if set(SIGMA_FEATURES) <= set(atoms.columns):
        # as find measured them on the whole image (a subset of its atoms, as σ's fit
        # scores, would measure each class's width on fewer)
        feats = np.nan_to_num(atoms[list(SIGMA_FEATURES)].to_numpy(float), nan=0.0)
    else:
        feats = _sigma_features_of(atoms, net, class_width, ps)
    # bright and faint columns of one class (Sr and O in SrTiO3, called "atom" alike by a
    # generic network): each kind its own lattice scatter and χ² reference
    # (kept from the table where it has them, as measured on the whole image)
    if "column_kind" in atoms.columns:
        kinds = atoms["column_kind"].to_numpy(int)
    else:
        kinds = column_kinds(col("intensity"), cls)
    if set(LATTICE_COLUMNS) <= set(atoms.columns):
        lat_fit, lat_net = (atoms[c].to_numpy(float) for c in LATTICE_COLUMNS)
    else:
        lat_fit = (
            lattice_scatter(np.where(refined[:, None], fit, np.nan), net, cls, kinds=kinds) * ps
        )
        lat_net = lattice_scatter(net, net, cls, kinds=kinds) * ps
    return PositionEvidence(
        net=net,
        fit=fit,
        refined=refined,
        cut=cut,
        spread=spread,
        net_base=np.nan_to_num(crlb, nan=0.0),
        fit_base=pair("fit_sigma_x_A", "fit_sigma_y_A"),
        width=width,
        class_width=class_width,
        cls=cls,
        kinds=kinds,
        feats=feats,
        lat_fit=lat_fit,
        lat_net=lat_net,
        chi2=col("fit_chi2"),
        snr=col("signal_snr"),
        pixel_size=ps,
    )


def decide_positions(
    evidence: PositionEvidence,
    /,
    positions: Positions = "auto",
    *,
    sigma_model: SigmaModel | None = None,
) -> PositionChoice:
    """Each atom's reported position, its source and σ under ``sigma_model`` (the
    default's if none), from :func:`position_evidence`: the decision of
    :func:`choose_positions`, without a table."""
    check_positions(positions)
    ev = evidence
    ps = ev.pixel_size
    sm = sigma_model or DEFAULT_SIGMA_MODEL
    fit, net, refined, cut, feats = ev.fit, ev.net, ev.refined, ev.cut, ev.feats
    sig_net = sm.sigma("network", ev.net_base, ev.spread, features=feats, lattice=ev.lat_net)
    sig_fit = sm.sigma("fit", ev.fit_base, ev.spread, features=feats, lattice=ev.lat_fit)
    # what auto decides by: the plain σ where the model keeps a multiplier (it describes
    # σ; deciding by it gave dumbbells under a wide probe to the network, 2.03 → 2.90 pm
    # on simulated Si [110] at 10⁴ e⁻/Å²)
    sig_fit_d = sm.decision_sigma("fit", ev.fit_base, ev.spread, features=feats, lattice=ev.lat_fit)
    sig_net_d = sm.decision_sigma(
        "network", ev.net_base, ev.spread, features=feats, lattice=ev.lat_net
    )
    if positions == "fit":
        source = np.where(refined, "fit", "network")
    elif positions == "mean":
        source = np.where(refined, "mean", "network")
    elif positions == "network":
        # a column the border cuts: the mean of the disk's centre and the fit's (each the
        # better one on some images, the mean never the worse)
        source = np.where(refined & cut, "mean", "network")
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = (np.abs(fit - net) * ps / np.hypot(sig_fit_d, sig_net_d)).max(axis=1)
        # Per atom, against the image's typical network σ, not the atom's own: where the
        # members disagree more than usual (a film's bump, a neighbour's pull) the
        # network's σ grows, and with it the gap the test allowed, and the fit looked the
        # more precise exactly where neither holds. Graphene and hBN under a 1 Å film
        # (haadf-generic, 10⁵ e⁻/Å²) took the fit for 4–5 % of atoms, 9 pm off the
        # network's (median), and auto's RMSE was 4.3 / 3.9 pm against the network's
        # 2.6 / 2.7; against the typical σ 2.6 / 2.8, with clean images unchanged
        # (graphene 10⁶–10⁷ 0.48 / 0.19 pm, MoS2 10⁶ 0.14 pm, 86–87 % fits).
        sig_net_typ = _typical(sig_net_d, refined & ~cut)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap_typ = (np.abs(fit - net) * ps / np.hypot(sig_fit_d, sig_net_typ)).max(axis=1)
        agree = gap_typ <= AUTO_GAP_MAX
        # the image as a whole: where the fit and the network disagree by far more than
        # their σ on most atoms (a film or probe tails pull the fit), the fit's model does
        # not hold on this image (the median of the larger of two |z| is 1.05)
        ok_gap = gap[refined & ~cut & np.isfinite(gap)]
        image_ok = bool(len(ok_gap)) and float(np.median(ok_gap)) <= AUTO_IMAGE_GAP_MAX
        if not image_ok and len(ok_gap):
            logger.info(
                "positions auto: the fit disagrees with the network by a median %.1f σ; "
                "network positions throughout",
                float(np.median(ok_gap)),
            )
        chi2 = ev.chi2
        chi2_ok = (
            np.nan_to_num(chi2, nan=np.inf)
            <= AUTO_CHI2_MAX * _chi2_reference(chi2, ev.kinds, ev.cls)
        ) & (np.nan_to_num(chi2, nan=0.0) >= AUTO_CHI2_MIN)
        lo, hi = AUTO_WIDTH_RANGE
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = ev.width / ev.class_width
        width_ok = (rel >= lo) & (rel <= hi)
        better = sig_fit_d.mean(axis=1) < sig_net_typ.mean()
        use_fit = refined & chi2_ok & width_ok & agree & better & image_ok & ~cut
        source = np.where(use_fit, "fit", np.where(refined & cut & image_ok, "mean", "network"))
    is_fit, is_mean = (source == "fit")[:, None], (source == "mean")[:, None]
    xy = np.where(is_fit, fit, np.where(is_mean, 0.5 * (net + fit), net))

    # the reported σ, each group's moved towards its own scatter about the lattice where the
    # model says so (what auto decided by stays the model's: positions do not change)
    def report(fit_sig: np.ndarray, net_sig: np.ndarray) -> np.ndarray:
        return np.where(is_fit, fit_sig, np.where(is_mean, np.fmax(net_sig, fit_sig), net_sig))

    plain = report(sig_fit, sig_net)
    sigma = report(
        sm.rescaled("fit", sig_fit, ev.lat_fit, ev.snr),
        sm.rescaled("network", sig_net, ev.lat_net, ev.snr),
    )
    return PositionChoice(source=source, xy=xy, sigma=sigma, plain=plain)


def choose_positions(
    atoms: pd.DataFrame,
    /,
    positions: Positions = "auto",
    *,
    pixel_size: float,
    sigma_model: SigmaModel | None = None,
) -> pd.DataFrame:
    """Pick each atom's reported position and make its σ (step 6 of
    :func:`locate_atoms`), from the columns an atoms table of :func:`locate_atoms` keeps:
    both candidate positions (``net_x_px``…, ``fit_x_px``…), the parts of σ and the fit's
    checks. Run again with another ``sigma_model`` it re-decides without re-fitting.

    ``"auto"`` takes the fit's position where its model holds and it is the more precise:
    the fit converged (``refined``), its reduced χ² is between :data:`AUTO_CHI2_MIN` and
    :data:`AUTO_CHI2_MAX`, its width is within :data:`AUTO_WIDTH_RANGE` of its class's
    median, it agrees with the network's position within :data:`AUTO_GAP_MAX` combined σ
    (the fit's and the image's median network σ: an atom the members disagree on does not
    loosen the test), its σ is smaller than that median, and on the image as a whole the two
    agree (median gap ≤ :data:`AUTO_IMAGE_GAP_MAX` σ: a film or probe tails that pull every
    fit fail this). Elsewhere the network's. A column the border cuts takes the mean of the
    two when the fit holds on the image. The σ's these tests use are the model's
    ``fit_decision``/``network_decision`` where it has them (the plain model beside one
    with a per-atom multiplier, :class:`atomlens.locate.SigmaModel`), the reported ones
    otherwise.

    Returns
    -------
    pandas.DataFrame
        A copy with ``x_px, y_px, x_A, y_A``, ``position_source`` ("fit", "network" or
        "mean"), ``sigma_x_A, sigma_y_A`` (σ of the reported position [Å]) and the
        evidence that scaled σ's base (``overlap``, ``faintness``:
        :func:`atomlens.locate.sigma.sigma_features`) and the scatter of each source's
        positions about their local lattice (``lattice_fit_A``, ``lattice_network_A``:
        :func:`atomlens.locate.sigma.lattice_scatter`), ``sigma_rescale`` (the factor by
        which the model moved σ towards that scatter, :meth:`SigmaModel.rescaled`; 1:
        none) set, and ``column_kind``, the
        atom's kind of column (its class and brightness mode:
        :func:`atomlens.locate.sigma.column_kinds`; −1 unknown), by which the scatter and
        the fit's χ² reference are taken. All three are kept where the table has them
        already (as measured on the whole image).
    """
    check_positions(positions)
    ev = position_evidence(atoms, pixel_size=pixel_size)
    choice = decide_positions(ev, positions, sigma_model=sigma_model)
    out = atoms.copy()
    ps, xy, sigma = ev.pixel_size, choice.xy, choice.sigma
    out["x_px"], out["y_px"] = xy[:, 0], xy[:, 1]
    out["x_A"], out["y_A"] = xy[:, 0] * ps, xy[:, 1] * ps
    out["position_source"] = pd.Series(choice.source, index=out.index, dtype=object)
    out["sigma_x_A"], out["sigma_y_A"] = sigma[:, 0], sigma[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = sigma[:, 0] / choice.plain[:, 0]
    out["sigma_rescale"] = np.where(np.isfinite(factor), factor, 1.0)
    for k, name in enumerate(SIGMA_FEATURES):  # the evidence that scaled σ's base
        out[name] = ev.feats[:, k]
    out[LATTICE_COLUMNS[0]], out[LATTICE_COLUMNS[1]] = ev.lat_fit, ev.lat_net
    out["column_kind"] = ev.kinds
    return out
