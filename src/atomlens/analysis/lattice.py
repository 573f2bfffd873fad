"""Fit an ideal lattice to atoms; displacements, homogeneous and local strain.

1. **Lattice vectors.** Among the displacements between nearby atoms, a lattice translation
   maps (almost) every atom onto another atom, while a vector inside the basis (graphene's
   bond) maps only one sublattice. The two shortest translations that map at least
   ``min_support`` of the atoms, with a positive cross product and the smaller angle, are
   the reduced basis ``a1, a2``.
2. **Sublattices.** Fractional coordinates modulo 1 fall into clusters, one per sublattice.
3. **Least squares.** ``p = o_s + n1 · a1 + n2 · a2`` for every atom (integer ``n1, n2``,
   sublattice ``s``) is linear in ``a1, a2`` and the origins: one ``lstsq`` fits them all.
4. **Strain.** The homogeneous deformation relative to a reference lattice (e.g. the
   material's) is ``M = A · A_ref⁻¹``; its left polar decomposition ``M = V · R`` gives the
   strain ``ε = V − I`` and the rotation. Locally, the deformation gradient ``G`` that maps
   each atom's ideal neighbour vectors onto the found ones (least squares within
   ``radius_A``) gives ``ε`` maps; their σ follow from the atoms' σ by linear propagation
   (``G`` is linear in the positions).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

__all__ = [
    "LatticeFit",
    "fit_lattice",
    "fold_rotation",
    "homogeneous_strain",
    "local_strain",
    "reference_basis",
    "rotation_period_deg",
]


@dataclass(frozen=True)
class LatticeFit:
    """An ideal lattice fitted to atoms.

    Attributes
    ----------
    a1, a2 : ndarray of shape (2,)
        Reduced lattice vectors [Å] (``a1`` the shortest; ``a1 × a2 > 0``).
    origins : ndarray of shape (S, 2)
        Position of each sublattice's atom in the cell at ``n1 = n2 = 0`` [Å].
    atoms : pandas.DataFrame
        The input table plus ``n1, n2, sublattice``, the ideal position ``x0_A, y0_A`` and
        the displacement ``dx_A, dy_A`` (``sublattice`` −1 and NaN for stray atoms that
        sit on no sublattice, such as false detections).
    rms_displacement_A : float
        RMS of the displacements [Å].
    """

    a1: np.ndarray
    a2: np.ndarray
    origins: np.ndarray
    atoms: pd.DataFrame
    rms_displacement_A: float

    @property
    def basis(self) -> np.ndarray:
        """``[[a1x, a2x], [a1y, a2y]]``: the lattice vectors as columns [Å]."""
        return np.column_stack([self.a1, self.a2])


def reference_basis(a_A: float, b_A: float, gamma_deg: float) -> np.ndarray:
    """Lattice vectors as columns from lengths and angle (``a`` along x) [Å].

    Graphene: ``reference_basis(2.46, 2.46, 60)``; SrTiO3 [001]: ``(3.905, 3.905, 90)``.
    """
    g = np.radians(gamma_deg)
    return np.array([[a_A, b_A * np.cos(g)], [0.0, b_A * np.sin(g)]])


def _support(xy: np.ndarray, tree: cKDTree, v: np.ndarray, tol: float) -> float:
    d, _ = tree.query(xy + v, distance_upper_bound=tol)
    return float(np.mean(np.isfinite(d)))


def _translations(xy: np.ndarray, min_support: float, rng: np.random.Generator):
    tree = cKDTree(xy)
    probe = xy[rng.choice(len(xy), min(len(xy), 2000), replace=False)]
    nn = float(np.median(tree.query(probe, k=2)[0][:, 1]))
    tol = 0.25 * nn
    # interior sample: atoms whose translates are inside the field of view count fairly
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    reach = 3.5 * nn
    inner = np.all((xy > lo + reach) & (xy < hi - reach), axis=1)
    sample = xy[inner] if inner.sum() >= 20 else xy
    if len(sample) > 1500:
        sample = sample[rng.choice(len(sample), 1500, replace=False)]
    pairs = tree.query_ball_point(sample, r=3.2 * nn)
    vecs = np.concatenate([xy[p] - s for s, p in zip(sample, pairs, strict=True)])
    vecs = vecs[np.linalg.norm(vecs, axis=1) > 0.5 * nn]
    # cluster the displacement vectors: greedy merge within tol, biggest clusters first;
    # only clusters holding ≥ 20 % of the sample can be lattice vectors
    vt = cKDTree(vecs)
    counts = vt.query_ball_point(vecs, r=tol, return_length=True)
    order = np.argsort(-counts, kind="stable")
    taken = np.zeros(len(vecs), bool)
    centres = []
    for i in order:
        if counts[i] < 0.2 * len(sample):
            break
        if taken[i]:
            continue
        members = vt.query_ball_point(vecs[i], r=tol)
        taken[members] = True
        if len(members) >= 0.2 * len(sample):
            centres.append(vecs[members].mean(axis=0))
    good = [c for c in centres if _support(sample, tree, c, tol) >= min_support]
    return good, nn, tol


def fit_lattice(atoms: pd.DataFrame, /, *, min_support: float = 0.8, seed: int = 0) -> LatticeFit:
    """Fit the ideal lattice (vectors, sublattices) to an atoms table.

    Parameters
    ----------
    atoms : pandas.DataFrame
        ``x_A, y_A`` (a lattice at least ~8 cells across).
    min_support : float
        Share of atoms a translation must map onto atoms to count as a lattice vector.
    seed : int
        Seed of the atom sample used to find the vectors.

    Returns
    -------
    LatticeFit

    Raises
    ------
    ValueError
        No two independent lattice translations were found (not a crystal, or too small).
    """
    xy = atoms[["x_A", "y_A"]].to_numpy(float)
    if len(xy) < 12:
        raise ValueError(f"{len(xy)} atoms are too few to fit a lattice.")
    good, _nn, tol = _translations(xy, min_support, np.random.default_rng(seed))
    if not good:
        raise ValueError("no lattice translation maps most atoms onto atoms: not a crystal?")
    good.sort(key=lambda v: float(np.linalg.norm(v)))
    a1 = good[0]
    cands = []
    for v in good[1:]:
        cross = a1[0] * v[1] - a1[1] * v[0]
        if abs(cross) < 0.2 * np.linalg.norm(a1) * np.linalg.norm(v):
            continue
        v = v if cross > 0 else -v
        ang = np.degrees(np.arccos(np.clip(a1 @ v / np.linalg.norm(a1) / np.linalg.norm(v), -1, 1)))
        cands.append((round(float(np.linalg.norm(v)) / (0.05 * np.linalg.norm(a1))), ang, v))
    if not cands:
        raise ValueError("found one lattice direction only; is the image a 1-D stripe pattern?")
    a2 = min(cands, key=lambda c: (c[0], c[1]))[2]
    basis = np.column_stack([a1, a2])
    ref = xy[np.argmin(np.linalg.norm(xy - xy.mean(axis=0), axis=1))]
    frac = np.linalg.solve(basis, (xy - ref).T).T
    # sublattices: cluster the fractional offsets on the torus. Seeds: the densest
    # offsets of a sample first; then every atom to its nearest centre (vectorised)
    off = frac - np.floor(frac)
    rng = np.random.default_rng(seed)
    sample = off[rng.choice(len(xy), min(len(xy), 1500), replace=False)]

    def torus_dist(a: np.ndarray, c: np.ndarray) -> np.ndarray:
        d = a[:, None, :] - c[None]
        d -= np.round(d)
        return np.linalg.norm(d @ basis.T, axis=2)

    density = (torus_dist(sample, sample) < tol).sum(axis=1)
    centres: list[np.ndarray] = []
    for i in np.argsort(-density, kind="stable"):
        if not centres or torus_dist(sample[i : i + 1], np.array(centres)).min() >= tol:
            centres.append(sample[i].copy())
    cen = np.array(centres)
    sizes = np.bincount(np.argmin(torus_dist(off, cen), axis=1), minlength=len(cen))
    # a "sublattice" of a few strays (false detections, edge atoms) is not one
    main = sizes[sizes >= 0.05 * len(xy)]
    cen = cen[sizes >= max(3, 0.2 * (np.median(main) if len(main) else 0))]
    dist = torus_dist(off, cen)
    subl = np.argmin(dist, axis=1)
    in_lattice = dist[np.arange(len(xy)), subl] < tol
    subl = np.where(in_lattice, subl, -1)
    n = np.round(frac - cen[np.maximum(subl, 0)]).astype(int)
    # least squares: p = o_s + n1 a1 + n2 a2 (x and y separately, same design)
    s_count = len(cen)
    design = np.zeros((len(xy), 2 + s_count))
    design[:, 0], design[:, 1] = n[:, 0], n[:, 1]
    design[np.arange(len(xy)), 2 + np.maximum(subl, 0)] = 1.0
    sol_x = np.linalg.lstsq(design[in_lattice], xy[in_lattice, 0], rcond=None)[0]
    sol_y = np.linalg.lstsq(design[in_lattice], xy[in_lattice, 1], rcond=None)[0]
    a1f = np.array([sol_x[0], sol_y[0]])
    a2f = np.array([sol_x[1], sol_y[1]])
    origins = np.column_stack([sol_x[2:], sol_y[2:]])
    ideal = n[:, :1] * a1f + n[:, 1:] * a2f + origins[np.maximum(subl, 0)]
    ideal[~in_lattice] = np.nan
    out = atoms.copy()
    out["n1"], out["n2"], out["sublattice"] = n[:, 0], n[:, 1], subl
    out["x0_A"], out["y0_A"] = ideal[:, 0], ideal[:, 1]
    out["dx_A"], out["dy_A"] = xy[:, 0] - ideal[:, 0], xy[:, 1] - ideal[:, 1]
    rms = float(np.sqrt(np.nanmean(np.sum((xy - ideal) ** 2, axis=1))))
    return LatticeFit(a1f, a2f, origins, out, rms)


def _polar_strain(m: np.ndarray) -> tuple[float, float, float, float]:
    """``(ε_xx, ε_yy, ε_xy, rotation°)`` from ``M = V R`` (left polar decomposition)."""
    u, s, vt = np.linalg.svd(m)
    v = u @ np.diag(s) @ u.T
    r = u @ vt
    eps = v - np.eye(2)
    return (
        float(eps[0, 0]),
        float(eps[1, 1]),
        float(eps[0, 1]),
        float(np.degrees(np.arctan2(r[1, 0], r[0, 0]))),
    )


def rotation_period_deg(reference: np.ndarray, /, *, tol: float = 0.02) -> float:
    """The angle [°] after which the reference lattice looks the same: 60 for a hexagonal
    lattice, 90 for a square one, 180 otherwise (every 2-D lattice is 2-fold symmetric).

    A lattice rotation is only defined modulo this angle: the fitted basis may be any of
    the equivalent ones, which differ by the period.

    Parameters
    ----------
    reference : ndarray of shape (2, 2)
        Lattice vectors as columns.
    tol : float
        Relative tolerance on the lengths and on the cosine of the angle.

    Examples
    --------
    >>> rotation_period_deg(np.array([[1.0, 0.5], [0.0, np.sqrt(3) / 2]]))
    60.0
    >>> rotation_period_deg(np.array([[1.0, 0.0], [0.0, 1.5]]))
    180.0
    """
    a, b = np.asarray(reference, float).T
    la, lb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    cos = abs(float(a @ b)) / (la * lb)
    if abs(la - lb) <= tol * max(la, lb):
        if abs(cos - 0.5) <= tol:
            return 60.0
        if cos <= tol:
            return 90.0
    return 180.0


def fold_rotation(rotation_deg: np.ndarray | float, period_deg: float, /) -> np.ndarray:
    """Rotation angles [°] folded into (−period/2, period/2]: graphene's 99.45° is −20.55°.

    Examples
    --------
    >>> fold_rotation(np.array([99.45, -31.0, 30.0]), 60.0).round(2).tolist()
    [-20.55, 29.0, 30.0]
    """
    r = np.asarray(rotation_deg, float)
    half = period_deg / 2
    return half - np.mod(half - r, period_deg)


def homogeneous_strain(fit: LatticeFit, reference: np.ndarray, /) -> dict[str, float]:
    """Strain of the fitted lattice relative to a reference lattice (any orientation).

    Parameters
    ----------
    fit : LatticeFit
        From :func:`fit_lattice`.
    reference : ndarray of shape (2, 2)
        Reference lattice vectors as columns (:func:`reference_basis`), in the same
        reduced convention (``a1`` shortest, acute angle); its orientation does not matter.

    Returns
    -------
    dict
        ``exx, eyy, exy`` (image frame, x = columns) and ``rotation_deg`` of the lattice
        relative to the reference, folded into (−p/2, p/2] for the reference's rotation
        period p (:func:`rotation_period_deg`: 60° for hexagonal lattices).
    """
    exx, eyy, exy, rot = _polar_strain(fit.basis @ np.linalg.inv(np.asarray(reference, float)))
    rot = float(fold_rotation(rot, rotation_period_deg(reference)))
    return {"exx": exx, "eyy": eyy, "exy": exy, "rotation_deg": rot}


def local_strain(
    fit: LatticeFit,
    /,
    *,
    radius_A: float | None = None,
    reference: np.ndarray | None = None,
) -> pd.DataFrame:
    """Strain and rotation at every atom, with σ propagated from the atoms' σ.

    At atom ``i`` the deformation gradient ``G`` maps the ideal vectors to its neighbours
    within ``radius_A`` onto the found ones (least squares); with a ``reference`` lattice
    the total deformation is ``G · A · A_ref⁻¹``, otherwise strain is relative to the
    fitted (mean) lattice.

    Parameters
    ----------
    fit : LatticeFit
        From :func:`fit_lattice`.
    radius_A : float, optional
        Neighbourhood radius [Å]; 1.6 × the longer lattice vector by default.
    reference : ndarray of shape (2, 2), optional
        Reference lattice vectors as columns.

    Returns
    -------
    pandas.DataFrame
        ``x_A, y_A, exx, eyy, exy, rotation_deg, n_neighbours`` and, when the atoms carry
        ``sigma_x_A``/``sigma_y_A``, ``sigma_exx, sigma_eyy, sigma_exy``.
    """
    t = fit.atoms
    xy = t[["x_A", "y_A"]].to_numpy(float)
    xy0 = t[["x0_A", "y0_A"]].to_numpy(float)
    r = (
        radius_A
        if radius_A is not None
        else 1.6 * max(np.linalg.norm(fit.a1), np.linalg.norm(fit.a2))
    )
    has_sig = {"sigma_x_A", "sigma_y_A"} <= set(t.columns)
    sig = t[["sigma_x_A", "sigma_y_A"]].to_numpy(float) if has_sig else None
    m_ref = fit.basis @ np.linalg.inv(reference) if reference is not None else np.eye(2)
    ok = np.flatnonzero(np.isfinite(xy0).all(axis=1))
    n = len(xy)
    rows = np.full((n, 4), np.nan)
    sig_rows = np.full((n, 3), np.nan)
    n_nb = np.zeros(n, int)
    # padded neighbour lists (every atom at once: a per-atom loop took 8 s for 1e5 atoms)
    lists = cKDTree(xy0[ok]).query_ball_point(xy0[ok], r=r)
    lens = np.fromiter((len(v) for v in lists), int, count=len(lists))
    flat = ok[np.fromiter(chain.from_iterable(lists), int, count=int(lens.sum()))]
    width = int(lens.max()) if len(lens) else 1
    pad = np.full((len(ok), width), -1)
    pad[
        np.repeat(np.arange(len(ok)), lens),
        np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens),
    ] = flat
    mask = (pad >= 0) & (pad != ok[:, None])
    safe = np.where(mask, pad, 0)
    n_nb[ok] = mask.sum(axis=1)
    d0 = (xy0[safe] - xy0[ok, None]) * mask[..., None]  # (m, K, 2) ideal neighbour vectors
    d = (xy[safe] - xy[ok, None]) * mask[..., None]
    gram = np.einsum("mki,mkj->mij", d0, d0)
    det = gram[:, 0, 0] * gram[:, 1, 1] - gram[:, 0, 1] * gram[:, 1, 0]
    good = (n_nb[ok] >= 3) & (det > 1e-8 * np.einsum("mii->m", gram) ** 2)
    inv = np.zeros_like(gram)
    dd = np.where(good, det, 1.0)
    inv[:, 0, 0], inv[:, 1, 1] = gram[:, 1, 1] / dd, gram[:, 0, 0] / dd
    inv[:, 0, 1], inv[:, 1, 0] = -gram[:, 0, 1] / dd, -gram[:, 1, 0] / dd
    w = np.einsum("mki,mij->mkj", d0, inv)  # G = dᵀ w
    g = np.einsum("mka,mkb->mab", d, w)
    total = g @ m_ref
    u, sv, vt = np.linalg.svd(total)
    v = u @ (sv[..., None] * np.swapaxes(u, 1, 2))
    rot = u @ vt
    res = np.column_stack(
        [
            v[:, 0, 0] - 1,
            v[:, 1, 1] - 1,
            v[:, 0, 1],
            np.degrees(np.arctan2(rot[:, 1, 0], rot[:, 0, 0])),
        ]
    )
    if reference is not None:  # the equivalent bases of the reference differ by its period
        res[:, 3] = fold_rotation(res[:, 3], rotation_period_deg(reference))
    rows[ok[good]] = res[good]
    if sig is not None:
        # ε ≈ sym(G − I) to first order and G is linear in the positions:
        # ∂G[a, b]/∂p_j[a] = w[j, b] for a neighbour j, −Σ_j w[j, b] for the atom itself
        sx, sy = sig[safe, 0] * mask, sig[safe, 1] * mask
        cw = -w.sum(axis=1)
        s0x, s0y = sig[ok, 0], sig[ok, 1]
        var_xx = np.sum((w[..., 0] * sx) ** 2, axis=1) + (cw[:, 0] * s0x) ** 2
        var_yy = np.sum((w[..., 1] * sy) ** 2, axis=1) + (cw[:, 1] * s0y) ** 2
        var_xy = 0.25 * (
            np.sum((w[..., 1] * sx) ** 2, axis=1)
            + (cw[:, 1] * s0x) ** 2
            + np.sum((w[..., 0] * sy) ** 2, axis=1)
            + (cw[:, 0] * s0y) ** 2
        )
        sig_rows[ok[good]] = np.sqrt(np.column_stack([var_xx, var_yy, var_xy]))[good]
    out = pd.DataFrame(
        {
            "x_A": xy[:, 0],
            "y_A": xy[:, 1],
            "exx": rows[:, 0],
            "eyy": rows[:, 1],
            "exy": rows[:, 2],
            "rotation_deg": rows[:, 3],
            "n_neighbours": n_nb,
        }
    )
    if sig is not None:
        out["sigma_exx"], out["sigma_eyy"], out["sigma_exy"] = sig_rows.T
    return out
