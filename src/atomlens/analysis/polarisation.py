"""Perovskite polarisation proxy: each B-site column's offset from the centre of its A-site
cage, with σ from the atoms' σ."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

__all__ = ["b_site_displacements"]


def b_site_displacements(
    atoms: pd.DataFrame,
    /,
    *,
    a_class: str,
    b_class: str,
    n_cage: int = 4,
    max_cage_A: float | None = None,
) -> pd.DataFrame:
    """Displacement of every B-site column from the centroid of its ``n_cage`` nearest
    A-site columns (the cage of a perovskite seen down [001]).

    Parameters
    ----------
    atoms : pandas.DataFrame
        ``x_A, y_A, class`` (and ``sigma_x_A, sigma_y_A`` for the uncertainty).
    a_class, b_class : str
        Class names of the A and B sites (e.g. ``"Sr"`` and ``"TiO"``).
    n_cage : int
        A-site neighbours that make the cage (4 down [001]).
    max_cage_A : float, optional
        Leave out B sites whose farthest cage neighbour is farther than this [Å] (cages
        cut by the border); 1.2 × the median cage radius by default.

    Returns
    -------
    pandas.DataFrame
        One row per complete cage: ``x_A, y_A`` (the B column), ``dx_A, dy_A`` (B minus
        cage centre), ``d_A`` (length), ``angle_deg`` and, with σ, ``sigma_dx_A,
        sigma_dy_A`` (B's σ and the cage centroid's, added in quadrature).
    """
    cls = atoms["class"].astype(str)
    a = atoms[cls == a_class]
    b = atoms[cls == b_class]
    if len(a) < n_cage or len(b) == 0:
        raise ValueError(
            f"need {n_cage}+ '{a_class}' and some '{b_class}' columns; the table has "
            f"{len(a)} and {len(b)} (classes: {sorted(set(cls))})."
        )
    axy = a[["x_A", "y_A"]].to_numpy(float)
    bxy = b[["x_A", "y_A"]].to_numpy(float)
    dist, idx = cKDTree(axy).query(bxy, k=n_cage)
    far = dist.max(axis=1)
    lim = max_cage_A if max_cage_A is not None else 1.2 * float(np.median(far))
    keep = far <= lim
    centre = axy[idx].mean(axis=1)
    d = bxy - centre
    out = pd.DataFrame(
        {
            "x_A": bxy[:, 0],
            "y_A": bxy[:, 1],
            "dx_A": d[:, 0],
            "dy_A": d[:, 1],
            "d_A": np.hypot(d[:, 0], d[:, 1]),
            "angle_deg": np.degrees(np.arctan2(d[:, 1], d[:, 0])),
        }
    )
    if {"sigma_x_A", "sigma_y_A"} <= set(atoms.columns):
        for ax in ("x", "y"):
            sb = b[f"sigma_{ax}_A"].to_numpy(float)
            sa = a[f"sigma_{ax}_A"].to_numpy(float)[idx]
            out[f"sigma_d{ax}_A"] = np.sqrt(sb**2 + np.sum(sa**2, axis=1) / n_cage**2)
    return out[keep].reset_index(drop=True)
