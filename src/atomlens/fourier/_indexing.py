"""Indexing Bragg reflections on one reciprocal lattice (helpers of
:func:`atomlens.fourier.bragg_split`)."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi

logger = logging.getLogger(__name__)


def _indexed_basis(basis: np.ndarray, pts: np.ndarray, step: float) -> np.ndarray | None:
    """``basis`` refined by least squares over the points it indexes, or None when fewer
    than 60 % of ``pts`` (or fewer than 6, or points of one line only) index on it."""
    for _ in range(2):  # index, refine (a sheared or strained lattice), index again
        idx = np.round(np.linalg.solve(basis.T, pts.T).T)
        on = np.hypot(*(idx @ basis - pts).T) <= 1.5 * step  # peaks sit on whole bins
        # a stray maximum may be among them: most must index, and at least 3 (± pairs)
        if on.mean() < 0.6 or on.sum() < 6 or np.linalg.matrix_rank(idx[on]) < 2:
            return None
        basis = np.linalg.lstsq(idx[on], pts[on], rcond=None)[0]
    return basis


def _reciprocal_basis(peaks: np.ndarray, strength: np.ndarray, step: float) -> np.ndarray | None:
    """Two shortest independent vectors among the strongest peaks (by amplitude), refined
    by least squares over the peaks they index; None if the strongest peaks do not index on
    one lattice (weaker maxima may be scan-noise side bands or noise, and need not index).

    When the first order is hidden (a film buries it) the two shortest peaks may span a
    sublattice on which the higher orders do not index: then the basis is looked for among
    the peaks and their differences (a {200} less a {110} reflection is a {100} one): the
    lattice on which at least 60 % of the peaks and the most peak amplitude index, the
    coarsest of those indexing the same peaks (a finer lattice indexes no more)."""
    top = np.argsort(-strength, kind="stable")[:12]
    pts = np.concatenate([peaks[top], -peaks[top]])
    amp = np.concatenate([strength[top], strength[top]])
    norm = np.hypot(pts[:, 0], pts[:, 1])
    order = np.argsort(norm, kind="stable")
    b1 = pts[order[0]]
    b2 = next(
        (
            pts[i]
            for i in order[1:]
            if abs(b1[0] * pts[i, 1] - b1[1] * pts[i, 0]) > 0.3 * norm[order[0]] * norm[i]
        ),
        None,
    )
    if b2 is not None:
        basis = _indexed_basis(np.stack([b1, b2]), pts, step)
        if basis is not None:
            return basis
    # candidates: the peaks and their differences, longer than 4 frequency steps (fewer
    # periods across the frame are not a lattice), one of each ± pair, shortest first
    cand = np.concatenate([pts, (pts[:, None] - pts[None]).reshape(-1, 2)])
    cand = cand[np.hypot(*cand.T) >= 4 * step]
    cand = cand[(cand[:, 0] > 0) | ((cand[:, 0] == 0) & (cand[:, 1] > 0))]
    cand = cand[np.argsort(np.hypot(*cand.T), kind="stable")]
    unique: list[np.ndarray] = []
    for c in cand:
        if all(np.hypot(*(c - u)) > 1.5 * step for u in unique):
            unique.append(c)
        if len(unique) == 12:
            break
    pairs = []
    for i in range(len(unique)):
        for j in range(i + 1, len(unique)):
            u, v = unique[i], unique[j]
            if abs(u[0] * v[1] - u[1] * v[0]) > 0.3 * np.hypot(*u) * np.hypot(*v):
                pairs.append((i, j))  # not (nearly) collinear
    best, best_key = None, (0.0, 0.0)
    for i, j in pairs:
        basis = _indexed_basis(np.stack([unique[i], unique[j]]), pts, step)
        if basis is None:
            continue
        idx = np.round(np.linalg.solve(basis.T, pts.T).T)
        on = np.hypot(*(idx @ basis - pts).T) <= 1.5 * step
        # the most peak amplitude indexed (a stray maximum is weak); of lattices indexing
        # the same peaks, the coarsest (a sublattice of the right one misses some, a finer
        # one indexes no more)
        key = (float(amp[on].sum()), float(abs(np.linalg.det(basis))))
        if key[0] > best_key[0] * 1.001 or (
            key[0] >= best_key[0] * 0.999 and key[1] > best_key[1] * 1.01
        ):
            best, best_key = basis, key
    return best


def _finer_basis(
    basis: np.ndarray, peaks: np.ndarray, excess: np.ndarray, step: float
) -> np.ndarray | None:
    """A lattice of index 2 or 3 finer than ``basis`` whose extra points carry Bragg power
    the detection threshold missed, or None.

    ``basis`` may span a sublattice of the crystal's reciprocal lattice: under a film that
    buries graphene's first order, the strong (11) reflections span one of index 3, and the
    weak (10) and (20) ones, left unmasked, pass into the aperiodic part as a ghost lattice
    in the film estimate, where the first order lies. Each lattice of index 2 or 3 containing
    ``basis`` adds points at ``basis``'s own points plus ``m·v``; it is taken when those
    points, up to 1.3× the highest frequency of the reflections ``basis`` indexes (where
    the frame shows its lattice), number at least 4 and their power is on average at least
    4× and in median 2× the median power of their spatial frequency (``excess``: log
    amplitude over that median), a point counting only where no bin within 4 is more than
    twice as strong (the flank of a strong reflection is not a reflection). Noise gives
    1.4× on average (``1/ln 2``). What the missed first order and the other candidates
    gave on the 8 Å frames of ``benchmarks/elit_shift.py``, and the ghost's power in the
    film estimate, are in ``docs/elit.md`` ("Errors every member shares", item 1).
    """
    h, w = excess.shape
    near = ndi.maximum_filter(excess, size=3)
    wide = ndi.maximum_filter(excess, size=9)
    idx = np.round(np.linalg.solve(basis.T, peaks.T).T)
    on = np.hypot(*(idx @ basis - peaks).T) <= 1.5 * step
    if not on.any():
        return None
    f_max = min(1.3 * float(np.hypot(*peaks[on].T).max()), 0.45)
    n = int(np.ceil(f_max / np.min(np.hypot(*basis.T)))) + 2
    m, k = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1))
    lattice = np.column_stack([m.ravel(), k.ravel()]) @ basis
    best, best_key = None, (4.0, 0.0)
    for index, combos in ((2, ((1, 0), (0, 1), (1, 1))), (3, ((1, 0), (0, 1), (1, 1), (1, 2)))):
        for i, j in combos:
            v = (i * basis[0] + j * basis[1]) / index
            extra = np.concatenate([lattice + s * v for s in range(1, index)])
            r = np.hypot(*extra.T)
            extra = extra[(r > 4 * step) & (r <= f_max)]
            extra = extra[(extra[:, 0] > 0) | ((extra[:, 0] == 0) & (extra[:, 1] > 0))]
            if len(extra) < 4:
                continue
            cy = np.round(extra[:, 0] * h).astype(int) + h // 2
            cx = np.round(extra[:, 1] * w).astype(int) + w // 2
            # power over its frequency's median, counted only where no bin within 4 is
            # more than twice as strong (in amplitude): not the flank of a reflection
            ratio = np.exp(2 * excess[cy, cx]) * (near[cy, cx] >= wide[cy, cx] - np.log(2))
            key = (float(ratio.mean()), float(np.median(ratio)))
            if key[0] >= best_key[0] and key[1] >= 2.0:
                best, best_key = (v, index), key
    if best is None:
        return None
    v, index = best
    # the finer lattice's two shortest independent vectors (Gauss-reduced from v and basis)
    c = np.array([[a, b, s] for a in range(-3, 4) for b in range(-3, 4) for s in range(-3, 4)])
    pts = c @ np.vstack([basis, v])
    pts = pts[np.hypot(*pts.T) > 1e-9]
    pts = pts[np.argsort(np.hypot(*pts.T), kind="stable")]
    b1 = pts[0]
    b2 = next(p for p in pts[1:] if abs(b1[0] * p[1] - b1[1] * p[0]) > 1e-6 * np.hypot(*b1) ** 2)
    finer = np.stack([b1, b2])
    if not np.isclose(abs(np.linalg.det(finer)) * index, abs(np.linalg.det(basis)), rtol=1e-3):
        return None
    if np.min(np.hypot(*finer.T)) < 4 * step:  # fewer than 4 periods across the frame
        return None
    logger.debug(
        "Bragg split: a lattice %d× finer than the strongest reflections' (its extra points "
        "at %.1f× their frequency's median power)",
        index,
        best_key[0],
    )
    return finer
