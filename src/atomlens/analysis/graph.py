"""Neighbour graphs of atoms tables: bonds by distance, bond lengths, angles, coordination."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["bond_angles", "bond_table", "coordination", "neighbour_graph", "pair_cutoffs"]


def _element(name: str, species: Mapping[str, str] | None) -> str:
    from ase.data import atomic_numbers

    el = (species or {}).get(name, name)
    if el not in atomic_numbers:
        raise ValueError(
            f"class {name!r} is not an element: map it to one with `species` (e.g. {name} → Ti) "
            "or give one bond cut-off for all pairs, `cutoff_A`."
        )
    return el


def pair_cutoffs(
    classes: list[str], /, *, species: Mapping[str, str] | None = None, tolerance: float = 1.2
) -> dict[tuple[str, str], float]:
    """Bond cut-off per pair of classes: ``tolerance`` × the sum of covalent radii [Å].

    Covalent radii are ASE's (Cordero et al. 2008). Graphene: C–C 1.2 × 1.52 = 1.82 Å,
    between the 1.42 Å bond and the 2.46 Å second neighbour.

    Parameters
    ----------
    classes : list of str
        Class names (element symbols, or names mapped to elements by ``species``).
    species : mapping, optional
        Class name → element symbol (e.g. ``{"TiO": "Ti"}``).
    tolerance : float
        Factor on the sum of radii.
    """
    from ase.data import atomic_numbers, covalent_radii

    r = {c: covalent_radii[atomic_numbers[_element(c, species)]] for c in classes}
    return {(a, b): tolerance * (r[a] + r[b]) for a in classes for b in classes}


def neighbour_graph(
    atoms: pd.DataFrame,
    /,
    *,
    cutoff_A: float | None = None,
    species: Mapping[str, str] | None = None,
    tolerance: float = 1.2,
) -> Any:
    """The bond graph of an atoms table (networkx ``Graph``; nodes are the table's rows).

    Two atoms are bonded when closer than their pair's cut-off (:func:`pair_cutoffs`), or
    than ``cutoff_A`` for every pair. Nodes carry ``x_A, y_A, class`` (and ``sigma_x_A,
    sigma_y_A`` when present); edges carry ``length_A``.

    Parameters
    ----------
    atoms : pandas.DataFrame
        ``x_A, y_A, class`` at least.
    cutoff_A : float, optional
        One cut-off for all pairs [Å].
    species : mapping, optional
        Class → element, for classes that are not element symbols.
    tolerance : float
        See :func:`pair_cutoffs`.
    """
    import networkx as nx
    from scipy.spatial import cKDTree

    xy = atoms[["x_A", "y_A"]].to_numpy(float)
    cls = atoms["class"].astype(str).to_numpy() if "class" in atoms else np.full(len(atoms), "X")
    if cutoff_A is None:
        cut = pair_cutoffs(sorted(set(cls)), species=species, tolerance=tolerance)
        r_max = max(cut.values()) if cut else 0.0
    else:
        r_max = float(cutoff_A)
    g = nx.Graph()
    cols = {"x_A": xy[:, 0], "y_A": xy[:, 1], "class": cls}
    if {"sigma_x_A", "sigma_y_A"} <= set(atoms.columns):
        cols["sigma_x_A"] = atoms["sigma_x_A"].to_numpy(float)
        cols["sigma_y_A"] = atoms["sigma_y_A"].to_numpy(float)
    names = list(cols)
    g.add_nodes_from(
        (i, dict(zip(names, vals, strict=True)))
        for i, vals in enumerate(zip(*(c.tolist() for c in cols.values()), strict=True))
    )
    if len(atoms) < 2:
        return g
    pairs = cKDTree(xy).query_pairs(r_max, output_type="ndarray")
    d = np.linalg.norm(xy[pairs[:, 0]] - xy[pairs[:, 1]], axis=1)
    if cutoff_A is None:
        lim = np.array([cut[(cls[i], cls[j])] for i, j in pairs]) if len(set(cls)) > 1 else r_max
    else:
        lim = r_max
    keep = d <= lim
    g.add_edges_from(
        (int(i), int(j), {"length_A": float(dd)})
        for (i, j), dd in zip(pairs[keep], d[keep], strict=True)
    )
    return g


def bond_table(graph: Any, /) -> pd.DataFrame:
    """One row per bond: ``i, j, class_i, class_j, length_A`` and, when the atoms carry σ,
    ``sigma_length_A`` (their σ projected on the bond, added in quadrature) [Å]."""
    rows = []
    for i, j, e in graph.edges(data=True):
        a, b = graph.nodes[i], graph.nodes[j]
        row = {"i": i, "j": j, "class_i": a["class"], "class_j": b["class"]}
        row["length_A"] = e["length_A"]
        if "sigma_x_A" in a and "sigma_x_A" in b:
            u = np.array([b["x_A"] - a["x_A"], b["y_A"] - a["y_A"]]) / max(e["length_A"], 1e-12)
            var = sum((u[0] * n["sigma_x_A"]) ** 2 + (u[1] * n["sigma_y_A"]) ** 2 for n in (a, b))
            row["sigma_length_A"] = float(np.sqrt(var))
        rows.append(row)
    cols = ["i", "j", "class_i", "class_j", "length_A"]
    return pd.DataFrame(
        rows, columns=cols + (["sigma_length_A"] if rows and len(rows[0]) > 5 else [])
    )


def bond_angles(graph: Any, /) -> pd.DataFrame:
    """One row per pair of bonds at an atom: ``center, i, j, angle_deg`` (0–180°)."""
    rows = []
    for c in graph.nodes:
        nb = list(graph.neighbors(c))
        p = np.array([graph.nodes[c]["x_A"], graph.nodes[c]["y_A"]])
        vec = {n: np.array([graph.nodes[n]["x_A"], graph.nodes[n]["y_A"]]) - p for n in nb}
        for a in range(len(nb)):
            for b in range(a + 1, len(nb)):
                u, v = vec[nb[a]], vec[nb[b]]
                cos = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
                rows.append(
                    {
                        "center": c,
                        "i": nb[a],
                        "j": nb[b],
                        "angle_deg": float(np.degrees(np.arccos(np.clip(cos, -1, 1)))),
                    }
                )
    return pd.DataFrame(rows, columns=["center", "i", "j", "angle_deg"])


def coordination(graph: Any, /) -> pd.Series:
    """Number of bonds of every atom (index: the atoms table's rows)."""
    return pd.Series(dict(graph.degree()), name="coordination", dtype=int).sort_index()
