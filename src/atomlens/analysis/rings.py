"""Rings of a 2-D bond network: the faces of its planar drawing.

In a projected 2-D lattice the bonds drawn between atom positions do not cross, so every
ring is a face of that planar drawing. Each atom's bonds are ordered by angle, which makes a
planar embedding (:class:`networkx.PlanarEmbedding`); walking every half-edge once around its
face gives all rings exactly, with no size limit and no shortest-path heuristics. The face
around the outside of the network (and around each separate piece) has the opposite
orientation to the others and is left out. Rings cut by the field of view do not close and
are part of that outside face.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RingStats", "find_rings"]


@dataclass(frozen=True)
class RingStats:
    """Rings of a network.

    Attributes
    ----------
    rings : pandas.DataFrame
        One row per ring: ``size`` (atoms), ``x_A, y_A`` (centroid), ``area_A2``, ``atoms``
        (row indices of the atoms table, in order around the ring).
    counts : dict
        Ring size → number of rings.
    """

    rings: pd.DataFrame
    counts: dict[int, int]


def _embedding(graph: Any) -> Any:
    import networkx as nx

    emb = nx.PlanarEmbedding()
    emb.add_nodes_from(graph.nodes)
    for v in graph.nodes:
        p = graph.nodes[v]
        nb = list(graph.neighbors(v))
        ang = [
            np.arctan2(graph.nodes[n]["y_A"] - p["y_A"], graph.nodes[n]["x_A"] - p["x_A"])
            for n in nb
        ]
        order = [n for _, n in sorted(zip(ang, nb, strict=True), reverse=True)]
        if order:
            emb.add_half_edge(v, order[0])
            for prev, n in pairwise(order):
                emb.add_half_edge(v, n, ccw=prev)
    return emb


def find_rings(graph: Any, /, *, max_size: int | None = None) -> RingStats:
    """All rings (closed faces) of a bond graph from :func:`neighbour_graph`.

    Parameters
    ----------
    graph : networkx.Graph
        Nodes with ``x_A, y_A``.
    max_size : int, optional
        Leave out faces with more atoms (e.g. holes); all kept by default.

    Returns
    -------
    RingStats
    """
    emb = _embedding(graph)
    seen: set[tuple[Any, Any]] = set()
    faces = []
    for v, w in emb.edges():
        if (v, w) in seen:
            continue
        face = emb.traverse_face(v, w, mark_half_edges=seen)
        xy = np.array([[graph.nodes[n]["x_A"], graph.nodes[n]["y_A"]] for n in face])
        x, y = xy[:, 0], xy[:, 1]
        signed = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
        faces.append((face, signed, xy))
    if not faces:
        return RingStats(pd.DataFrame(columns=["size", "x_A", "y_A", "area_A2", "atoms"]), {})
    # inner faces share one orientation; the outside of each piece has the other
    sign = np.sign(np.median([s for _, s, _ in faces if abs(s) > 1e-9] or [1.0]))
    rows = []
    for face, signed, xy in faces:
        if np.sign(signed) != sign or len(face) < 3:
            continue
        if max_size is not None and len(face) > max_size:
            continue
        c = xy.mean(axis=0)
        rows.append(
            {
                "size": len(face),
                "x_A": float(c[0]),
                "y_A": float(c[1]),
                "area_A2": abs(signed),
                "atoms": list(face),
            }
        )
    rings = pd.DataFrame(rows, columns=["size", "x_A", "y_A", "area_A2", "atoms"])
    return RingStats(rings, dict(sorted(Counter(rings["size"].tolist()).items())))
