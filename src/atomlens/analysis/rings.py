"""Rings of a 2-D bond network: the faces of its planar drawing.

In a projected 2-D lattice the bonds drawn between atom positions do not cross, so every
ring is a face of that planar drawing. Each atom's bonds are ordered by angle (a planar
embedding); walking every half-edge once around its face gives all rings exactly, with no
size limit and no shortest-path heuristics. The face
around the outside of the network (and around each separate piece) has the opposite
orientation to the others and is left out. Rings cut by the field of view do not close and
are part of that outside face.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
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


def _faces(graph: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Faces of the planar drawing: for every half-edge its face label, plus the source
    node and coordinates of every half-edge.

    Written here rather than with :class:`networkx.PlanarEmbedding`: building that
    embedding node by node and walking faces in Python took 4.5 s for 100,000 atoms; the
    same walk as a permutation of half-edges whose cycles are the faces (found with
    :func:`scipy.sparse.csgraph.connected_components`) takes a fraction of that
    (``benchmarks/analysis_speed.py``).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes = np.array(list(graph.nodes))
    index = {n: i for i, n in enumerate(nodes.tolist())}
    xy = np.array([[graph.nodes[n]["x_A"], graph.nodes[n]["y_A"]] for n in nodes.tolist()])
    e = np.array([(index[u], index[v]) for u, v in graph.edges()], dtype=np.int64).reshape(-1, 2)
    src = np.concatenate([e[:, 0], e[:, 1]])
    dst = np.concatenate([e[:, 1], e[:, 0]])
    ang = np.arctan2(xy[dst, 1] - xy[src, 1], xy[dst, 0] - xy[src, 0])
    order = np.lexsort((-ang, src))  # by source, then clockwise (decreasing angle)
    src, dst = src[order], dst[order]
    m = len(src)
    deg = np.bincount(src, minlength=len(nodes))
    start = np.concatenate([[0], np.cumsum(deg)[:-1]])
    rank = np.arange(m) - start[src]
    # the twin of each half-edge (v → u for u → v), by sorting on (dst, src)
    key = src * len(nodes) + dst
    twin_key = dst * len(nodes) + src
    sorter = np.argsort(key)
    twin = sorter[np.searchsorted(key, twin_key, sorter=sorter)]
    # next half-edge of the face: at v, the neighbour after u in v's cyclic order
    nxt = start[dst] + (rank[twin] + 1) % deg[dst]
    perm = coo_matrix((np.ones(m), (np.arange(m), nxt)), shape=(m, m))
    _, label = connected_components(perm, directed=True, connection="strong")
    return label, src, nxt, xy


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
    cols = ["size", "x_A", "y_A", "area_A2", "atoms"]
    if graph.number_of_edges() == 0:
        return RingStats(pd.DataFrame(columns=cols), {})
    label, src, nxt, xy = _faces(graph)
    nodes = np.array(list(graph.nodes))
    n_faces = int(label.max()) + 1
    size = np.bincount(label, minlength=n_faces)
    x0, y0 = xy[src, 0], xy[src, 1]
    x1, y1 = xy[src[nxt], 0], xy[src[nxt], 1]
    signed = 0.5 * np.bincount(label, weights=x0 * y1 - x1 * y0, minlength=n_faces)
    cx = np.bincount(label, weights=x0, minlength=n_faces) / size
    cy = np.bincount(label, weights=y0, minlength=n_faces) / size
    # inner faces share one orientation; the outside of each piece has the other
    big = np.abs(signed) > 1e-9
    sign = np.sign(np.median(signed[big])) if big.any() else 1.0
    keep = (np.sign(signed) == sign) & (size >= 3)
    if max_size is not None:
        keep &= size <= max_size
    first = np.full(n_faces, -1)
    first[label[::-1]] = np.arange(len(label))[::-1]  # one half-edge of each face
    rows_atoms = []
    for f in np.flatnonzero(keep):
        h, ring = first[f], []
        for _ in range(size[f]):
            ring.append(int(nodes[src[h]]))
            h = nxt[h]
        rows_atoms.append(ring)
    rings = pd.DataFrame(
        {
            "size": size[keep],
            "x_A": cx[keep],
            "y_A": cy[keep],
            "area_A2": np.abs(signed[keep]),
            "atoms": rows_atoms,
        },
        columns=cols,
    )
    return RingStats(rings, dict(sorted(Counter(rings["size"].tolist()).items())))
