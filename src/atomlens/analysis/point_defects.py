"""Point defects against the fitted ideal lattice: vacancies, substitutions and strays."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.spatial import ConvexHull, QhullError

if TYPE_CHECKING:
    from atomlens.analysis.lattice import LatticeFit

__all__ = ["point_defects"]


def point_defects(fit: LatticeFit, /, *, margin_A: float | None = None) -> pd.DataFrame:
    """Vacancies, substitutions and stray atoms relative to a fitted lattice.

    - **vacancy**: a site of the ideal lattice (every sublattice) inside the field of view
      that no atom was assigned to;
    - **substitution**: an atom whose class differs from the most common class of its
      sublattice (a Si dopant on a carbon site);
    - **stray**: an atom that sits on no sublattice (an adatom, an interstitial, or a false
      detection — the atoms' ``p_detect`` tells which).

    Parameters
    ----------
    fit : LatticeFit
        From :func:`atomlens.analysis.fit_lattice`.
    margin_A : float, optional
        Sites closer than this to the edge of the atoms' convex hull are not counted as
        vacancies (the field of view cuts them) [Å]; default the longer lattice vector.

    Returns
    -------
    pandas.DataFrame
        One row per defect: ``kind``, ``x_A, y_A`` (the site for vacancies, the atom
        otherwise), ``sublattice``, ``n1, n2``, ``class`` (the atom's; empty for vacancies),
        ``expected_class`` (the sublattice's) and ``atom`` (row in ``fit.atoms``, −1 for
        vacancies).
    """
    atoms = fit.atoms
    cols = ["kind", "x_A", "y_A", "sublattice", "n1", "n2", "class", "expected_class", "atom"]
    on = atoms[atoms["sublattice"] >= 0]
    if len(on) < 3:
        return pd.DataFrame(columns=cols)
    margin = float(
        max(np.linalg.norm(fit.a1), np.linalg.norm(fit.a2)) if margin_A is None else margin_A
    )
    has_class = "class" in atoms
    expected = (
        on.groupby("sublattice")["class"].agg(lambda c: c.astype(str).mode().iloc[0]).to_dict()
        if has_class
        else {}
    )
    rows: list[dict] = []
    # vacancies: ideal sites inside the hull (less the margin) with no atom assigned
    xy = atoms[["x_A", "y_A"]].to_numpy(float)
    try:
        hull = ConvexHull(xy)
    except QhullError:
        hull = None
    if hull is not None:
        n1 = on["n1"].to_numpy(int)
        n2 = on["n2"].to_numpy(int)
        taken = set(zip(n1, n2, on["sublattice"].to_numpy(int), strict=True))
        g1, g2 = np.meshgrid(
            np.arange(n1.min() - 1, n1.max() + 2), np.arange(n2.min() - 1, n2.max() + 2)
        )
        g1, g2 = g1.ravel(), g2.ravel()
        for s, origin in enumerate(np.asarray(fit.origins, float)):
            sites = origin + g1[:, None] * fit.a1 + g2[:, None] * fit.a2
            # distance inside the hull: −(n·x + d) for each facet, the smallest one
            depth = -(sites @ hull.equations[:, :2].T + hull.equations[:, 2]).max(axis=1)
            for k in np.flatnonzero(depth >= margin):
                if (g1[k], g2[k], s) not in taken:
                    rows.append(
                        {
                            "kind": "vacancy",
                            "x_A": sites[k, 0],
                            "y_A": sites[k, 1],
                            "sublattice": s,
                            "n1": int(g1[k]),
                            "n2": int(g2[k]),
                            "class": "",
                            "expected_class": expected.get(s, ""),
                            "atom": -1,
                        }
                    )
    # strays and substitutions, whole columns at once (analyze runs this on 10⁵ atoms)
    sub = atoms["sublattice"].to_numpy(int)
    cls = atoms["class"].astype(str).to_numpy() if has_class else np.full(len(atoms), "")
    want = np.array([expected.get(int(k), "") for k in sub], dtype=object)
    stray = sub < 0
    substituted = ~stray & (want != "") & (cls != want) if has_class else np.zeros_like(stray)
    pick = np.flatnonzero(stray | substituted)
    found = pd.DataFrame(
        {
            "kind": np.where(stray[pick], "stray", "substitution"),
            "x_A": atoms["x_A"].to_numpy(float)[pick],
            "y_A": atoms["y_A"].to_numpy(float)[pick],
            "sublattice": sub[pick],
            "n1": np.where(stray[pick], -1, atoms["n1"].to_numpy()[pick]).astype(int),
            "n2": np.where(stray[pick], -1, atoms["n2"].to_numpy()[pick]).astype(int),
            "class": cls[pick],
            "expected_class": want[pick],
            "atom": atoms.index.to_numpy()[pick].astype(int),
        },
        columns=cols,
    )
    if not rows:
        return found
    return pd.concat([pd.DataFrame(rows, columns=cols), found], ignore_index=True)
