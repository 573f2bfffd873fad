"""Crystal structures seen down a zone axis: periodic 2D cells of atomic columns.

A STEM image of a crystal or a 2D material is, to a good approximation, an image of atomic
*columns*: all atoms that share a projected position along the beam. This module turns an
:class:`ase.Atoms` (built here, read from a CIF, or supplied by the user) into a
:class:`ProjectedCell` -- the 2D periodic cell of those columns, with the number of atoms of each
element in each column -- and tiles that cell over the field of view of a simulated image.

Conventions
-----------
- Positions are Cartesian (x, y) [Å] in a right-handed frame (x, y, beam): ``a`` lies along +x
  and ``b`` has a positive y component. With image rows increasing downwards (atomlens' pixel
  convention), the beam points into the screen.
- The lattice is that of the cell as given. A conventional (non-primitive) cell gives a longer
  period along the beam and may give a non-primitive projected cell; the columns, their
  contents per ångström of thickness and their density per Å² are the same either way.

Examples
--------
>>> cell = load_material("srtio3")
>>> cell.column_labels()
['Sr', 'O', 'O', 'TiO']
>>> xy, site = tile_cell(cell, radius_A=10.0)
>>> xy.shape[1]
2
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ase.build
import ase.io
import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.spacegroup import crystal
from ase.symbols import string2symbols
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from atomlens._shared.validate import validate_positive
from atomlens.simulate.crystals import CRYSTALS

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_THICKNESS_A",
    "MATERIALS",
    "MaterialSpec",
    "ProjectedCell",
    "graphene",
    "hbn",
    "load_material",
    "material_table",
    "mx2",
    "perovskite",
    "project",
    "tile_cell",
]

#: Default specimen thickness for crystals periodic along the beam [Å]; the number of periods
#: closest to it is used.
DEFAULT_THICKNESS_A: float = 50.0

# Relative tolerance for comparing lattice-vector lengths and areas.
_RTOL = 1e-6


def _readonly(array: np.ndarray) -> np.ndarray:
    """Return a read-only view of a read-only copy (the view cannot be made writeable again)."""
    base = np.array(array, copy=True)
    base.flags.writeable = False
    return base.view()


@dataclass(frozen=True, eq=False)
class ProjectedCell:
    """A 2D periodic cell of atomic columns seen down a zone axis.

    Instances are immutable: the arrays are read-only. Compare cells field by field
    (``eq=False``: arrays have no single truth value).

    Parameters
    ----------
    name : str
        Short name, e.g. ``"graphene"`` or ``"srtio3[110]"``.
    a : ndarray of shape (2,)
        First in-plane lattice vector [Å], along +x (``a[1] == 0``).
    b : ndarray of shape (2,)
        Second in-plane lattice vector [Å], with ``b[1] > 0``.
    positions : ndarray of shape (M, 2)
        Column positions (x, y) inside the cell [Å] (fractional coordinates in [0, 1)).
    elements : tuple of int
        Atomic numbers labelling the second axis of ``counts``, heaviest first.
    counts : ndarray of shape (M, E)
        Number of atoms of each element in each column over the full thickness (int).
    zone_axis : tuple of int
        The zone axis [u v w] in units of the cell vectors of the source structure.
    period_A : float
        Repeat distance along the beam [Å]; for a slab that is not periodic along the beam,
        the extent of the slab along the beam.
    thickness_A : float
        Total thickness represented by ``counts`` [Å].
    """

    name: str
    a: np.ndarray
    b: np.ndarray
    positions: np.ndarray
    elements: tuple[int, ...]
    counts: np.ndarray
    zone_axis: tuple[int, int, int]
    period_A: float
    thickness_A: float
    _labels: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        a = np.asarray(self.a, dtype=float)
        b = np.asarray(self.b, dtype=float)
        positions = np.asarray(self.positions, dtype=float)
        counts = np.asarray(self.counts)
        elements = tuple(int(z) for z in self.elements)
        if a.shape != (2,) or b.shape != (2,):
            raise ValueError(
                f"a and b must be ndarrays of shape (2,), got {a.shape} and {b.shape}."
            )
        if abs(a[1]) > 1e-9 * max(1.0, abs(a[0])) or a[0] <= 0:
            raise ValueError(f"a must lie along +x (a[1] == 0, a[0] > 0), got a={a.tolist()}.")
        if b[1] <= 0:
            raise ValueError(f"b must have a positive y component, got b={b.tolist()}.")
        if positions.ndim != 2 or positions.shape[1] != 2 or len(positions) == 0:
            raise ValueError(
                f"positions must be an ndarray of shape (M, 2) with M >= 1, got {positions.shape}."
            )
        if counts.shape != (len(positions), len(elements)):
            raise ValueError(
                f"counts must have shape (M, E) = ({len(positions)}, {len(elements)}) to match "
                f"positions and elements, got {counts.shape}."
            )
        if not np.issubdtype(counts.dtype, np.integer) or (counts < 0).any():
            raise ValueError("counts must hold non-negative integers.")
        if list(elements) != sorted(elements, reverse=True) or len(set(elements)) != len(elements):
            raise ValueError(
                f"elements must be distinct atomic numbers, heaviest first, got {elements}."
            )
        for value, label in ((self.period_A, "period_A"), (self.thickness_A, "thickness_A")):
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"{label} must be a finite, non-negative length in Å, got {value}."
                )
        object.__setattr__(self, "a", _readonly(a))
        object.__setattr__(self, "b", _readonly(b))
        object.__setattr__(self, "positions", _readonly(positions))
        object.__setattr__(self, "counts", _readonly(counts.astype(np.int64)))
        object.__setattr__(self, "elements", elements)
        object.__setattr__(self, "zone_axis", tuple(int(i) for i in self.zone_axis))
        object.__setattr__(self, "period_A", float(self.period_A))
        object.__setattr__(self, "thickness_A", float(self.thickness_A))
        symbols = [chemical_symbols[z] for z in elements]
        labels = tuple(
            "".join(s for s, n in zip(symbols, row, strict=True) if n > 0) for row in counts
        )
        object.__setattr__(self, "_labels", labels)

    @property
    def n_columns(self) -> int:
        """Number of columns in the cell (M)."""
        return len(self.positions)

    @property
    def area_A2(self) -> float:
        """Area of the cell [Å²]."""
        return float(self.a[0] * self.b[1] - self.a[1] * self.b[0])

    @property
    def lattice(self) -> np.ndarray:
        """ndarray of shape (2, 2): the lattice vectors ``a`` and ``b`` as rows [Å]."""
        return np.stack([self.a, self.b])

    def column_labels(self) -> list[str]:
        """Return each column's element symbols, heaviest first, without counts.

        Returns
        -------
        list of str
            One label per column, e.g. ``"Sr"``, ``"TiO"``, ``"Mo"`` or ``"S"``.
        """
        return list(self._labels)

    def column_compositions(self) -> list[str]:
        """Return each column's composition over the full thickness, heaviest first.

        Returns
        -------
        list of str
            One formula per column, e.g. ``"S2"`` or ``"Ti10O10"``; a count of one is omitted
            (``"Mo"``).
        """
        symbols = [chemical_symbols[z] for z in self.elements]
        return [
            "".join(f"{s}{n if n != 1 else ''}" for s, n in zip(symbols, row, strict=True) if n > 0)
            for row in self.counts
        ]


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _validate_zone_axis(zone_axis: Any) -> tuple[int, int, int]:
    """Return the zone axis as a tuple of three integers divided by their gcd."""
    if isinstance(zone_axis, str | bytes):
        raise TypeError(
            f"zone_axis must be three integers [u, v, w], got the string {zone_axis!r}. "
            "Pass e.g. zone_axis=(1, 1, 0)."
        )
    try:
        values = list(zone_axis)
    except TypeError:
        raise TypeError(
            f"zone_axis must be three integers [u, v, w], got {zone_axis!r}. "
            "Pass e.g. zone_axis=(0, 0, 1)."
        ) from None
    if len(values) != 3:
        raise ValueError(
            f"zone_axis must have 3 indices [u, v, w], got {len(values)}: {zone_axis!r}. "
            "Use direct-lattice (Miller) indices, e.g. (1, 1, 0); convert 4-index hexagonal "
            "[UVTW] to [U-T, V-T, W]."
        )
    ints = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise TypeError(
                f"zone_axis must hold integers, got {zone_axis!r}. Pass e.g. zone_axis=(1, 1, 0)."
            )
        if not math.isfinite(float(v)) or float(v) != round(float(v)):
            raise ValueError(
                f"zone_axis must hold integer indices, got {zone_axis!r}. Scale the direction "
                "to whole numbers, e.g. (0.5, 0.5, 0) -> (1, 1, 0)."
            )
        ints.append(round(float(v)))
    g = math.gcd(*ints)
    if g == 0:
        raise ValueError(
            f"zone_axis must not be zero, got {zone_axis!r}. Pass a direction such as (0, 0, 1)."
        )
    reduced = (ints[0] // g, ints[1] // g, ints[2] // g)
    return reduced


def _format_zone(uvw: tuple[int, int, int]) -> str:
    sep = "" if all(abs(i) < 10 for i in uvw) else " "
    return "[" + sep.join(str(i) for i in uvw) + "]"


def _complete_basis(uvw: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Return integer vectors p, q with det([p, q, uvw]) = ±1 (uvw must be primitive).

    Euclid's algorithm on the components, tracking the row operations in a unimodular matrix
    ``U`` with ``U @ uvw = e3``; the columns of ``U^-1`` are then a lattice basis ending in uvw.
    """
    x = np.array(uvw, dtype=np.int64)
    u = np.eye(3, dtype=np.int64)
    while np.count_nonzero(x) > 1:
        nz = np.flatnonzero(x)
        i = nz[np.argmin(np.abs(x[nz]))]
        for j in nz:
            if j != i:
                m = x[j] // x[i]
                x[j] -= m * x[i]
                u[j] -= m * u[i]
    k = int(np.flatnonzero(x)[0])
    if x[k] < 0:
        u[k] *= -1
        x[k] *= -1
    u[[k, 2]] = u[[2, k]]
    basis = np.rint(np.linalg.inv(u)).astype(np.int64)
    assert np.array_equal(basis[:, 2], np.array(uvw)), "unimodular completion failed"
    return basis[:, 0], basis[:, 1]


def _gauss_reduce(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lagrange-Gauss reduction of a 2D lattice basis (vectors may be 3D, in a common plane)."""
    if u @ u > v @ v:
        u, v = v, u
    for _ in range(1000):
        m = round(float(u @ v) / float(u @ u))
        v = v - m * u
        if v @ v >= (u @ u) * (1 - _RTOL):
            return u, v
        u, v = v, u
    raise RuntimeError("lattice reduction did not converge")  # pragma: no cover


def _choose_in_plane_basis(
    gen1: np.ndarray, gen2: np.ndarray, beam: np.ndarray, refs: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Pick a reduced basis (a, b) of the projected lattice, both vectors in 3D (in-plane).

    ``a`` is a shortest lattice vector, the one best aligned with the first reference vector
    that has an in-plane component; ``b`` completes a right-handed basis (about ``beam``) with
    ``a . b / |a|^2`` in [-1/2, 1/2), i.e. 120° rather than 60° for hexagonal lattices.
    """
    u, v = _gauss_reduce(gen1, gen2)
    area = float(np.cross(u, v) @ beam)
    shortest = float(np.sqrt(u @ u))
    candidates = [i * u + j * v for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0)]
    candidates = [c for c in candidates if np.sqrt(c @ c) <= shortest * (1 + _RTOL)]
    ref = None
    for r in refs:
        r_in = r - (r @ beam) * beam
        if np.sqrt(r_in @ r_in) > 1e-3 * max(np.sqrt(r @ r), 1e-12):
            ref = r_in / np.sqrt(r_in @ r_in)
            break
    if ref is None:  # pragma: no cover - refs always span the plane
        ref = u / shortest

    def _key(c: np.ndarray) -> tuple[float, float]:
        cos = float(c @ ref) / float(np.sqrt(c @ c))
        # tie-break: the candidate reached by the smallest anticlockwise turn from ref
        sin = float(np.cross(ref, c) @ beam) / float(np.sqrt(c @ c))
        angle = math.atan2(sin, cos) % (2 * math.pi)
        return (-round(cos, 9), round(angle, 9))

    a = min(candidates, key=_key)
    b = None
    for w in (u, v, -u, -v):
        if abs(float(np.cross(a, w) @ beam) - abs(area)) <= abs(area) * 1e-6:
            b = w
            break
    assert b is not None, "no basis completion found"
    t = float(a @ b) / float(a @ a)
    b = b - math.floor(t + 0.5 + 1e-6) * a
    return a, b


def _group_columns(
    xy: np.ndarray, lattice: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """Group 2D points into columns modulo the lattice.

    Returns the column positions (inside the cell) and, for each point, its column index.
    """
    inv = np.linalg.inv(lattice)
    frac = np.round(xy @ inv, 10) % 1.0
    wrapped = frac @ lattice
    offsets = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=float) @ lattice
    images = (wrapped[None, :, :] + offsets[:, None, :]).reshape(-1, 2)
    n = len(xy)
    dist = cKDTree(wrapped).sparse_distance_matrix(cKDTree(images), tol, output_type="coo_matrix")
    graph = coo_matrix((np.ones(dist.nnz), (dist.row, dist.col % n)), shape=(n, n))
    n_cols, label = connected_components(graph, directed=False)
    # Average the members of each column, unwrapped to the image nearest its first member.
    first = np.full(n_cols, n, dtype=np.int64)
    np.minimum.at(first, label, np.arange(n))
    delta = frac - frac[first[label]]
    delta -= np.round(delta)
    unwrapped = frac[first[label]] + delta
    sums = np.zeros((n_cols, 2))
    np.add.at(sums, label, unwrapped)
    mean_frac = np.round(sums / np.bincount(label, minlength=n_cols)[:, None], 10) % 1.0
    spread = np.linalg.norm(((unwrapped - mean_frac[label] + 0.5) % 1.0 - 0.5) @ lattice, axis=1)
    if n and spread.max() > tol:
        logger.debug("a column spans %.3f Å > tol_A=%.3f Å (chained atoms)", spread.max(), tol)
    # Deterministic order: by fractional y, then x.
    order = np.lexsort((np.round(mean_frac[:, 0], 6), np.round(mean_frac[:, 1], 6)))
    rank = np.empty_like(order)
    rank[order] = np.arange(n_cols)
    return mean_frac[order] @ lattice, rank[label]


# --------------------------------------------------------------------------------------------
# Projection
# --------------------------------------------------------------------------------------------


def project(
    atoms: Atoms,
    /,
    *,
    zone_axis: Sequence[int] = (0, 0, 1),
    thickness_A: float | None = None,
    tol_A: float = 0.15,
    name: str | None = None,
) -> ProjectedCell:
    """Project a periodic crystal or a 2D slab down a zone axis into a cell of atomic columns.

    Parameters
    ----------
    atoms : ase.Atoms
        A crystal periodic in 3D (``pbc`` all True), or a 2D material / slab periodic in two
        directions and not periodic along the third (as built by :func:`graphene`,
        :func:`hbn` and :func:`mx2`).
    zone_axis : tuple of int
        Beam direction [u v w] in units of the cell vectors of ``atoms`` (direct-lattice
        indices; divided by their gcd). For a slab it must be the non-periodic axis, e.g.
        (0, 0, 1) for ASE's 2D builders.
    thickness_A : float, optional
        Specimen thickness [Å] for crystals periodic along the beam: ``max(1, round(
        thickness_A / period))`` whole periods are used. Default: the number of periods
        closest to :data:`DEFAULT_THICKNESS_A` (50 Å). Must be None for slabs, which are used
        as given (one layer).
    tol_A : float
        Atoms whose projected positions coincide within this distance [Å] (taking the in-plane
        periodicity into account) form one column.
    name : str, optional
        Name stored in the cell. Default: the empirical formula, followed by the zone axis for
        crystals (e.g. ``"SrTiO3[110]"``).

    Returns
    -------
    ProjectedCell
        The projected cell: ``a`` along +x, ``b`` with positive y, column positions inside
        the cell and the atoms of each element in each column over the full thickness.

    Raises
    ------
    TypeError
        If ``atoms`` is not an ``ase.Atoms`` or ``zone_axis`` does not hold integers.
    ValueError
        If ``zone_axis`` is zero or not a lattice direction the structure supports, ``atoms``
        has no cell or is not periodic in at least two directions, ``thickness_A`` is given
        for a slab, or ``tol_A`` is too large for the projected cell.

    Notes
    -----
    For a crystal, the zone axis ``t = [uvw]`` is completed to a lattice basis ``(p, q, t)``
    with ``det = ±1`` (extended Euclid), so the projections of ``p`` and ``q`` generate the
    projected lattice exactly. That 2D basis is Lagrange-Gauss reduced; ``a`` is a shortest
    projected lattice vector (the one best aligned with the first cell vector that is not
    parallel to the beam) and ``b`` the shortest vector completing a right-handed basis, with
    ``a . b <= 0`` (120° rather than 60° for hexagonal lattices). Because ``(p, q, t)`` spans
    the same volume as the input cell, the atoms of the input cell give each column's content
    per period ``|t|``.

    Examples
    --------
    >>> from ase.build import bulk
    >>> si = project(bulk("Si", "diamond", a=5.431, cubic=True), zone_axis=(1, 1, 0))
    >>> round(si.period_A, 3), si.n_columns, si.column_compositions()[0]
    (7.681, 4, 'Si14')
    """
    if not isinstance(atoms, Atoms):
        raise TypeError(
            f"atoms must be an ase.Atoms, got {type(atoms).__name__}. Build one with "
            "ase.build / ase.io.read, or use load_material() for names and files."
        )
    uvw = _validate_zone_axis(zone_axis)
    tol = validate_positive(tol_A, name="tol_A", unit="Å")
    if thickness_A is not None:
        thickness_A = validate_positive(thickness_A, name="thickness_A", unit="Å")
    if len(atoms) == 0:
        raise ValueError("atoms is empty; pass a structure with at least one atom.")
    pbc = tuple(bool(p) for p in atoms.pbc)
    cell = np.asarray(atoms.cell[:], dtype=float)
    positions = atoms.get_positions()
    formula = atoms.get_chemical_formula(mode="metal", empirical=True)

    if all(pbc):
        volume = abs(float(np.linalg.det(cell)))
        if volume < 1e-6:
            raise ValueError(
                f"atoms ({formula}) is periodic in 3D but has no valid cell (volume "
                f"{volume:.3g} Å³, cell lengths {np.round(atoms.cell.lengths(), 4).tolist()}). "
                "Set atoms.cell, or mark a non-periodic axis with atoms.pbc for a slab."
            )
        t = np.array(uvw, dtype=float) @ cell
        period = float(np.linalg.norm(t))
        beam = t / period
        p, q = _complete_basis(uvw)
        gen1, gen2 = p @ cell, q @ cell
        gen1, gen2 = gen1 - (gen1 @ beam) * beam, gen2 - (gen2 @ beam) * beam
        refs = list(cell)
        n_periods = (
            max(1, math.floor(thickness_A / period + 0.5))
            if thickness_A is not None
            else max(1, math.floor(DEFAULT_THICKNESS_A / period + 0.5))
        )
        is_slab = False
    elif sum(pbc) == 2:
        k = pbc.index(False)
        i, j = (k + 1) % 3, (k + 2) % 3
        normal = np.cross(cell[i], cell[j])
        if np.linalg.norm(normal) < 1e-6:
            raise ValueError(
                f"atoms ({formula}) is a slab (pbc={pbc}) without a valid in-plane cell "
                f"(cell vectors {i} and {j} are zero or parallel). Set atoms.cell."
            )
        allowed = tuple(1 if m == k else 0 for m in range(3))
        if uvw not in (allowed, tuple(-m for m in allowed)):
            raise ValueError(
                f"zone_axis={tuple(zone_axis)!r} is not supported for this slab ({formula}, "
                f"pbc={pbc}): the slab is periodic only in-plane, so the beam must run along "
                f"its non-periodic axis, zone_axis={allowed}. For other directions build a "
                "3D-periodic crystal (e.g. stack layers with a cell vector along c)."
            )
        if thickness_A is not None:
            raise ValueError(
                f"thickness_A={thickness_A} cannot be used for a slab that is not periodic "
                f"along the beam ({formula}, pbc={pbc}): it is projected as given (one layer). "
                "Omit thickness_A, or build a multilayer / 3D-periodic Atoms yourself."
            )
        beam = normal / np.linalg.norm(normal)
        if np.linalg.norm(cell[k]) > 1e-9 and cell[k] @ beam < 0:
            beam = -beam
        beam = beam * uvw[k]
        depth = positions @ beam
        period = float(depth.max() - depth.min())
        gen1, gen2 = cell[i], cell[j]
        refs = [cell[i], cell[j]]
        n_periods = 1
        is_slab = True
    else:
        raise ValueError(
            f"atoms ({formula}) must be periodic in 3D (a crystal) or in exactly two directions "
            f"(a 2D material / slab), got pbc={pbc}. Set atoms.pbc and atoms.cell accordingly."
        )

    a3, b3 = _choose_in_plane_basis(gen1, gen2, beam, refs)
    e1 = a3 / np.linalg.norm(a3)
    e2 = np.cross(beam, e1)
    frame = np.stack([e1, e2], axis=1)  # (3, 2): 3D -> 2D coordinates
    a2 = np.array([float(np.linalg.norm(a3)), 0.0])
    b2 = b3 @ frame
    b2[np.abs(b2) < 1e-12 * a2[0]] = 0.0  # exact zeros for rectangular cells
    lattice = np.stack([a2, b2])
    height = (a2[0] * b2[1]) / max(a2[0], float(np.linalg.norm(b2)))
    if tol >= 0.5 * height:
        raise ValueError(
            f"tol_A={tol_A} Å is too large for the projected cell of {formula} down "
            f"{_format_zone(uvw)} (cell height {height:.3f} Å); use tol_A < {0.5 * height:.3f} Å."
        )
    col_xy, col_of_atom = _group_columns(positions @ frame, lattice, tol)
    col_xy[np.abs(col_xy) < 1e-12 * a2[0]] = 0.0

    numbers = atoms.get_atomic_numbers()
    elements = tuple(sorted({int(z) for z in numbers}, reverse=True))
    elem_index = {z: e for e, z in enumerate(elements)}
    counts = np.zeros((len(col_xy), len(elements)), dtype=np.int64)
    np.add.at(counts, (col_of_atom, [elem_index[int(z)] for z in numbers]), 1)
    counts *= n_periods

    if name is None:
        name = formula if is_slab else f"{formula}{_format_zone(uvw)}"
    result = ProjectedCell(
        name=name,
        a=a2,
        b=b2,
        positions=col_xy,
        elements=elements,
        counts=counts,
        zone_axis=uvw,
        period_A=period,
        thickness_A=period * n_periods,
    )
    logger.debug(
        "projected %s: |a|=%.4f Å, |b|=%.4f Å, %d columns, period %.4f Å × %d",
        name,
        a2[0],
        float(np.linalg.norm(b2)),
        result.n_columns,
        period,
        n_periods,
    )
    return result


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def graphene(*, a: float = 2.46) -> Atoms:
    """Build a graphene monolayer (2 atoms, hexagonal cell, not periodic along z).

    Parameters
    ----------
    a : float
        In-plane lattice constant [Å]; the C–C bond length is ``a / sqrt(3)`` (1.42 Å).

    Returns
    -------
    ase.Atoms
        The monolayer from :func:`ase.build.graphene`, ``pbc=(True, True, False)``.

    Examples
    --------
    >>> len(graphene())
    2
    """
    a = validate_positive(a, name="a", unit="Å")
    return ase.build.graphene(formula="C2", a=a, thickness=0.0)


def hbn(*, a: float = 2.504) -> Atoms:
    """Build a hexagonal boron nitride monolayer (1 B + 1 N, not periodic along z).

    Parameters
    ----------
    a : float
        In-plane lattice constant [Å]; the B–N bond length is ``a / sqrt(3)`` (1.446 Å).

    Returns
    -------
    ase.Atoms
        The monolayer, ``pbc=(True, True, False)``.

    References
    ----------
    .. [1] R. S. Pease, "An X-ray study of boron nitride", Acta Cryst. 5, 356 (1952):
       a = 2.504 Å.
    """
    a = validate_positive(a, name="a", unit="Å")
    return ase.build.graphene(formula="BN", a=a, thickness=0.0)


#: Default (a, S–S or Se–Se layer thickness) [Å] for 2H transition-metal dichalcogenides.
_MX2_DEFAULTS: dict[str, tuple[float, float]] = {
    "MoS2": (3.16, 3.17),
    "WS2": (3.153, 3.14),
}


def mx2(*, formula: str = "MoS2", a: float | None = None, thickness: float | None = None) -> Atoms:
    """Build a 2H (trigonal-prismatic) transition-metal dichalcogenide monolayer.

    Parameters
    ----------
    formula : str
        ``"MX2"``, e.g. ``"MoS2"`` or ``"WS2"`` (metal first).
    a : float, optional
        In-plane lattice constant [Å]. Defaults: MoS2 3.16, WS2 3.153; required for other
        formulas.
    thickness : float, optional
        Distance between the two chalcogen planes [Å]. Defaults: MoS2 3.17, WS2 3.14;
        required for other formulas.

    Returns
    -------
    ase.Atoms
        Three atoms (M, X, X) from :func:`ase.build.mx2`, ``pbc=(True, True, False)``. Both X
        atoms share one projected position, so down [001] the X column holds 2 atoms.

    Raises
    ------
    ValueError
        If ``formula`` is not of the form MX2, or has no defaults and ``a`` or ``thickness``
        is missing.

    References
    ----------
    .. [1] B. Schönfeld, J. J. Huang and S. C. Moss, Acta Cryst. B39, 404 (1983): 2H-MoS2
       (P6_3/mmc), a = 3.160 Å, c = 12.295 Å, z(S) = 0.621. The two S planes of one layer lie
       at z(S) - 1/2 and 1 - z(S), so the S–S layer thickness is (3/2 - 2 z(S)) c = 3.17 Å.
    .. [2] W. J. Schutte, J. L. de Boer and F. Jellinek, J. Solid State Chem. 70, 207 (1987):
       2H-WS2, a = 3.153 Å, c = 12.323 Å, z(S) = 0.6225, so S–S = 0.255 c = 3.14 Å.

    Examples
    --------
    >>> mx2(formula="WS2").get_chemical_symbols()
    ['W', 'S', 'S']
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string such as 'MoS2', got {formula!r}.")
    try:
        symbols = string2symbols(formula)
    except (ValueError, KeyError):
        symbols = []
    if len(symbols) != 3 or symbols[1] != symbols[2] or symbols[0] == symbols[1]:
        raise ValueError(
            f"formula must be a dichalcogenide 'MX2' with the metal first (e.g. 'MoS2', 'WS2'), "
            f"got {formula!r}."
        )
    key = f"{symbols[0]}{symbols[1]}2"
    default_a, default_t = _MX2_DEFAULTS.get(key, (None, None))
    a = default_a if a is None else a
    thickness = default_t if thickness is None else thickness
    if a is None or thickness is None:
        raise ValueError(
            f"no default lattice constant for formula={formula!r} (defaults exist for "
            f"{sorted(_MX2_DEFAULTS)}); pass a=... and thickness=... in Å."
        )
    a_val = validate_positive(a, name="a", unit="Å")
    t_val = validate_positive(thickness, name="thickness", unit="Å")
    return ase.build.mx2(formula=key, kind="2H", a=a_val, thickness=t_val)


def perovskite(*, formula: str = "SrTiO3", a: float = 3.905) -> Atoms:
    """Build a cubic ABX3 perovskite (space group Pm-3m, 5 atoms).

    A sits at the cube corner (0, 0, 0), B at the body centre (1/2, 1/2, 1/2) and X at the
    face centres (1/2, 1/2, 0), (1/2, 0, 1/2), (0, 1/2, 1/2).

    Parameters
    ----------
    formula : str
        ``"ABX3"`` with A first, e.g. ``"SrTiO3"``, ``"BaTiO3"``, ``"LaMnO3"``, ``"PbTiO3"``.
    a : float
        Cubic lattice constant [Å]. The default is that of SrTiO3 at room temperature; pass
        the value for other compounds (the cubic model ignores their distortions).

    Returns
    -------
    ase.Atoms
        The cubic cell from :func:`ase.spacegroup.crystal`, periodic in 3D.

    Raises
    ------
    ValueError
        If ``formula`` is not of the form ABX3.

    Examples
    --------
    >>> perovskite(formula="BaTiO3", a=4.0).get_chemical_symbols()
    ['Ba', 'Ti', 'O', 'O', 'O']
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string such as 'SrTiO3', got {formula!r}.")
    try:
        symbols = string2symbols(formula)
    except (ValueError, KeyError):
        symbols = []
    if (
        len(symbols) != 5
        or len(set(symbols[2:])) != 1
        or len({symbols[0], symbols[1], symbols[2]}) != 3
    ):
        raise ValueError(
            f"formula must be a perovskite 'ABX3' with A first (e.g. 'SrTiO3', 'LaMnO3'), "
            f"got {formula!r}."
        )
    a = validate_positive(a, name="a", unit="Å")
    return crystal(
        symbols=[symbols[0], symbols[1], symbols[2]],
        basis=[(0.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, 0.5, 0.0)],
        spacegroup=221,
        cellpar=[a, a, a, 90.0, 90.0, 90.0],
    )


# --------------------------------------------------------------------------------------------
# Registry and loading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaterialSpec:
    """A named material in :data:`MATERIALS`.

    Parameters
    ----------
    name : str
        Registry key (lower case).
    builder : callable
        Zero-argument function returning the ``ase.Atoms``.
    zone_axis : tuple of int
        Default zone axis [u v w].
    description : str
        One line for listings.
    zone_axes : tuple of (int, int, int)
        The zone axes it is commonly seen down (the default first).
    column_tol_A : float
        ``tol_A`` of :func:`project` for it [Å].
    """

    name: str
    builder: Callable[[], Atoms]
    zone_axis: tuple[int, int, int]
    description: str
    zone_axes: tuple[tuple[int, int, int], ...] = ()
    column_tol_A: float = 0.15


#: Built-in materials, by lower-case name.
MATERIALS: dict[str, MaterialSpec] = {
    spec.name: spec
    for spec in (
        MaterialSpec("graphene", graphene, (0, 0, 1), "graphene monolayer, a = 2.46 Å"),
        MaterialSpec("hbn", hbn, (0, 0, 1), "hexagonal BN monolayer, a = 2.504 Å"),
        MaterialSpec(
            "mos2",
            functools.partial(mx2, formula="MoS2"),
            (0, 0, 1),
            "2H-MoS2 monolayer, a = 3.16 Å, S–S 3.17 Å",
        ),
        MaterialSpec(
            "ws2",
            functools.partial(mx2, formula="WS2"),
            (0, 0, 1),
            "2H-WS2 monolayer, a = 3.153 Å, S–S 3.14 Å",
        ),
        MaterialSpec(
            "srtio3",
            functools.partial(perovskite, formula="SrTiO3"),
            (0, 0, 1),
            "cubic SrTiO3 perovskite, a = 3.905 Å",
            ((0, 0, 1), (1, 1, 0), (1, 1, 1)),
        ),
        *(
            MaterialSpec(
                c.name, c.builder, c.zone_axes[0], c.description, c.zone_axes, c.column_tol_A
            )
            for c in CRYSTALS.values()
        ),
    )
}


def _split_zone(text: str) -> tuple[str, tuple[int, int, int] | None]:
    """``"si[110]"`` → ("si", (1, 1, 0)); ``"gan[2,1,0]"`` and ``"au[-1,1,0]"`` too; a
    name without brackets → (name, None)."""
    t = text.strip().lower()
    if not (t.endswith("]") and "[" in t):
        return t, None
    name, _, inner = t[:-1].partition("[")
    if name.strip() not in MATERIALS:
        return t, None
    inner = inner.strip()
    try:
        if "," in inner or " " in inner:
            parts = [int(v) for v in inner.replace(",", " ").split()]
        else:  # digits with optional minus signs: "110", "1-10", "-111"
            parts, sign = [], 1
            for ch in inner:
                if ch == "-":
                    sign = -1
                else:
                    parts.append(sign * int(ch))
                    sign = 1
    except ValueError:
        parts = []
    if len(parts) != 3:
        raise ValueError(
            f"zone axis in {text!r} must be three integers, e.g. '{name}[110]' or '{name}[1,-1,0]'."
        )
    return name.strip(), _validate_zone_axis(parts)


def material_table() -> list[dict[str, str]]:
    """The built-in materials: one row per material with ``name``, ``zone_axes`` (the
    common ones, the default first, e.g. ``"[110] [111] [001]"``) and ``description``.

    Any of them is also accepted as ``"name[uvw]"`` by :func:`load_material` (e.g.
    ``"si[110]"``, ``"gan[2,1,0]"``), and any zone axis works, not only those listed.

    Examples
    --------
    >>> rows = material_table()
    >>> next(r for r in rows if r["name"] == "si")["zone_axes"]
    '[110] [111] [001]'
    """
    return [
        {
            "name": key,
            "zone_axes": " ".join(_format_zone(z) for z in (spec.zone_axes or (spec.zone_axis,))),
            "description": spec.description,
        }
        for key, spec in MATERIALS.items()
    ]


@functools.lru_cache(maxsize=256)
def _registry_cell(
    key: str, zone_axis: tuple[int, int, int], thickness_A: float | None
) -> ProjectedCell:
    spec = MATERIALS[key]
    atoms = spec.builder()
    slab = not all(atoms.pbc)
    name = key if slab else f"{key}{_format_zone(zone_axis)}"
    return project(
        atoms, zone_axis=zone_axis, thickness_A=thickness_A, name=name, tol_A=spec.column_tol_A
    )


def load_material(
    material: str | os.PathLike[str] | Atoms,
    /,
    *,
    zone_axis: Sequence[int] | None = None,
    thickness_A: float | None = None,
) -> ProjectedCell:
    """Return the projected cell of a named material, an ``ase.Atoms`` or a structure file.

    Parameters
    ----------
    material : str, path-like or ase.Atoms
        A name from :data:`MATERIALS` (case-insensitive: ``"graphene"``, ``"hbn"``, ``"mos2"``,
        ``"ws2"``, ``"srtio3"``), an ``ase.Atoms``, or the path of a file that
        :func:`ase.io.read` understands (CIF, POSCAR, xyz with a cell, ...).
    zone_axis : tuple of int, optional
        Zone axis [u v w] in the cell vectors of the material as given (a CIF's cell: the
        conventional one for a cubic crystal from a database, but [110] of a primitive fcc
        cell is another direction); default: the material's default (registry) or
        (0, 0, 1).
    thickness_A : float, optional
        Thickness [Å] for crystals; see :func:`project`.

    Returns
    -------
    ProjectedCell
        The immutable projected cell. Cells of registry materials are cached, so repeated
        calls with the same arguments return the same object.

    Raises
    ------
    FileNotFoundError
        If ``material`` looks like a path and the file does not exist.
    ValueError
        If ``material`` is an unknown name (the message lists the known ones) or the file
        cannot be read; see also :func:`project`.
    TypeError
        If ``material`` has an unsupported type.

    Examples
    --------
    >>> cell = load_material("SrTiO3", zone_axis=(1, 1, 0))
    >>> cell.name, cell.column_labels()
    ('srtio3[110]', ['SrO', 'Ti', 'O'])
    """
    if thickness_A is not None:
        thickness_A = validate_positive(thickness_A, name="thickness_A", unit="Å")
    if isinstance(material, Atoms):
        uvw = (0, 0, 1) if zone_axis is None else _validate_zone_axis(zone_axis)
        return project(material, zone_axis=uvw, thickness_A=thickness_A)
    if not isinstance(material, str | os.PathLike):
        raise TypeError(
            f"material must be a material name, a file path or an ase.Atoms, got "
            f"{type(material).__name__}."
        )
    if isinstance(material, str):
        key, named_axis = _split_zone(material)
        if key in MATERIALS:
            if named_axis is not None and zone_axis is not None:
                if _validate_zone_axis(zone_axis) != named_axis:
                    raise ValueError(
                        f"material {material!r} names zone axis {list(named_axis)} and "
                        f"`zone_axis` {list(zone_axis)}; give it once."
                    )
            uvw = (
                _validate_zone_axis(zone_axis)
                if zone_axis is not None
                else named_axis or MATERIALS[key].zone_axis
            )
            return _registry_cell(key, uvw, thickness_A)

    path = Path(material)
    if not path.exists():
        text = str(material)
        looks_like_path = isinstance(material, os.PathLike) or any(
            c in text for c in ("/", "\\", ".")
        )
        if looks_like_path:
            raise FileNotFoundError(
                f"structure file '{path}' does not exist. Check the path, or use one of the "
                f"built-in materials: {', '.join(sorted(MATERIALS))}."
            )
        raise ValueError(
            f"unknown material {text!r}. Available: {', '.join(sorted(MATERIALS))}; "
            "or pass an ase.Atoms or the path of a structure file (e.g. a CIF)."
        )
    if path.is_dir():
        raise ValueError(f"material path '{path}' is a directory; pass a structure file.")
    try:
        atoms = ase.io.read(path)
    except Exception as err:
        raise ValueError(
            f"could not read structure file '{path}' with ase.io.read "
            f"({type(err).__name__}: {err}). Check that it is a valid CIF/POSCAR/... file; "
            "pass format-specific files with their usual extension."
        ) from err
    if isinstance(atoms, list):  # pragma: no cover - read() without index returns one Atoms
        atoms = atoms[-1]
    uvw = (0, 0, 1) if zone_axis is None else _validate_zone_axis(zone_axis)
    return project(atoms, zone_axis=uvw, thickness_A=thickness_A)


# --------------------------------------------------------------------------------------------
# Tiling
# --------------------------------------------------------------------------------------------


def tile_cell(
    cell: ProjectedCell,
    /,
    *,
    center_A: tuple[float, float] | np.ndarray = (0.0, 0.0),
    radius_A: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return all column positions of the infinite tiling of ``cell`` inside a disc.

    The tiling places the cell origin at (0, 0): positions are
    ``cell.positions[site] + i * cell.a + j * cell.b`` for all integers i, j.

    Parameters
    ----------
    cell : ProjectedCell
        The cell to tile.
    center_A : tuple of float
        Centre (x, y) of the disc [Å].
    radius_A : float
        Radius of the disc [Å]; positions at distance <= ``radius_A`` are returned.

    Returns
    -------
    xy : ndarray of shape (N, 2)
        Column positions (x, y) [Å], each exactly once.
    site : ndarray of shape (N,)
        Index into ``cell.positions`` (and the rows of ``cell.counts``) of each column (int).

    Raises
    ------
    TypeError
        If ``cell`` is not a :class:`ProjectedCell`.
    ValueError
        If ``radius_A`` is not a positive number or ``center_A`` is not an (x, y) pair.

    Examples
    --------
    >>> cell = load_material("graphene")
    >>> xy, site = tile_cell(cell, radius_A=1.5)
    >>> len(xy)  # the origin atom and its three neighbours at 1.42 Å
    4
    """
    if not isinstance(cell, ProjectedCell):
        raise TypeError(
            f"cell must be a ProjectedCell (from project() or load_material()), got "
            f"{type(cell).__name__}."
        )
    radius = validate_positive(radius_A, name="radius_A", unit="Å")
    center = np.asarray(center_A, dtype=float)
    if center.shape != (2,) or not np.isfinite(center).all():
        raise ValueError(
            f"center_A must be a finite (x, y) pair in Å, got {center_A!r}. Pass e.g. (0.0, 0.0)."
        )
    lattice = np.stack([cell.a, cell.b])
    a_x, b_x, b_y = float(lattice[0, 0]), float(lattice[1, 0]), float(lattice[1, 1])
    pos = cell.positions - center  # relative to the centre: precise far from the origin
    r2 = radius * radius
    # Rows of cells along a (index j): a has no y component, so row j holds sites at
    # y = j * b_y + pos_y. Keep rows that reach the disc, then per row the range of i whose
    # cells can reach the chord of the disc; build the (i, j) pairs without a Python loop.
    y_lo, y_hi = float(pos[:, 1].min()), float(pos[:, 1].max())
    js = np.arange(math.floor((-radius - y_hi) / b_y), math.ceil((radius - y_lo) / b_y) + 1)
    row_lo = js * b_y + y_lo
    row_hi = js * b_y + y_hi
    dy = np.where((row_lo <= 0) & (row_hi >= 0), 0.0, np.minimum(np.abs(row_lo), np.abs(row_hi)))
    keep = dy <= radius
    js, dy = js[keep], dy[keep]
    half_chord = np.sqrt(np.maximum(r2 - dy * dy, 0.0))
    row_x = js * b_x
    i_lo = np.floor((-half_chord - row_x - pos[:, 0].max()) / a_x).astype(np.int64)
    i_hi = np.ceil((half_chord - row_x - pos[:, 0].min()) / a_x).astype(np.int64)
    n_i = np.maximum(i_hi - i_lo + 1, 0)
    total = int(n_i.sum())
    j_all = np.repeat(js, n_i)
    starts = np.repeat(np.cumsum(n_i) - n_i, n_i)
    i_all = np.repeat(i_lo, n_i) + (np.arange(total) - starts)
    shifts = i_all[:, None] * lattice[0] + j_all[:, None] * lattice[1]  # (K, 2)
    rel = shifts[:, None, :] + pos[None, :, :]  # (K, M, 2)
    inside = np.einsum("kmc,kmc->km", rel, rel) <= r2
    k_idx, site = np.nonzero(inside)
    xy = rel[k_idx, site] + center
    return xy, site.astype(np.int64)
