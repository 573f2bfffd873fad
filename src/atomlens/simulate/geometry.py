"""Specimen geometries beyond one crystal filling the frame: two rotated grains (a bicrystal,
a twin or a grain boundary) and a finite nanoparticle on an amorphous support.

Each is a small frozen config passed to :func:`atomlens.simulate.simulate_image` as
``geometry=``; the columns it keeps are rendered, labelled and put in the truth exactly like a
single crystal's, so the truth stays exact (no blending of two images). Positions are in the
specimen frame in Å, relative to the centre of the field of view, with x along the image
columns and y along the rows (down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from atomlens._shared.config import check_keys
from atomlens._shared.validate import validate_positive

__all__ = ["Bicrystal", "Geometry", "Nanoparticle", "geometry_from_dict", "join_grains"]


def _finite(value: Any, name: str, unit: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number [{unit}], got {value!r}.")
    return v


@dataclass(frozen=True)
class Bicrystal:
    """Two grains of one crystal rotated against each other, meeting at a straight boundary.

    The first grain is the crystal as :func:`~atomlens.simulate.simulate_image` places it (its
    ``rotation_deg``); the second is the same crystal rotated by a further
    ``misorientation_deg``, with its own random lattice offset, on the far side of the
    boundary. Where the two lattices meet, a column of the second grain closer than
    ``min_distance_A`` to a column of the first is removed (two columns cannot sit on top of
    each other): the truth holds every column that is rendered, with its ``grain`` (0 or 1).

    Parameters
    ----------
    misorientation_deg : float
        Rotation of the second grain against the first, counter-clockwise in the image
        (x right, y down) [°]. For a twin, the twin angle (e.g. 70.53° for a Σ3 twin of an
        fcc crystal seen down [110]).
    boundary_angle_deg : float
        Direction of the boundary line, from +x towards +y [°] (90: a vertical boundary).
    boundary_offset_A : float
        Signed distance of the boundary from the centre of the field of view along its
        normal ``(−sin φ, cos φ)`` [Å]; the second grain lies on the side the normal points to.
    min_distance_A : float
        Columns of the second grain closer than this to a column of the first are removed
        [Å]; 0 keeps all.

    Examples
    --------
    >>> Bicrystal(misorientation_deg=36.87).to_dict()["kind"]
    'bicrystal'
    """

    misorientation_deg: float
    boundary_angle_deg: float = 90.0
    boundary_offset_A: float = 0.0
    min_distance_A: float = 1.0

    def __post_init__(self) -> None:
        _finite(self.misorientation_deg, "misorientation_deg", "°")
        _finite(self.boundary_angle_deg, "boundary_angle_deg", "°")
        _finite(self.boundary_offset_A, "boundary_offset_A", "Å")
        validate_positive(self.min_distance_A, name="min_distance_A", unit="Å", allow_zero=True)

    def signed_distance(self, xy_A: np.ndarray, /) -> np.ndarray:
        """Signed distance of points from the boundary, positive on the second grain's side.

        Parameters
        ----------
        xy_A : ndarray of shape (N, 2)
            Points (x, y) relative to the centre of the field of view [Å].

        Returns
        -------
        ndarray of shape (N,)
            Distance [Å].
        """
        phi = math.radians(self.boundary_angle_deg)
        xy = np.asarray(xy_A, dtype=float).reshape(-1, 2)
        return -xy[:, 0] * math.sin(phi) + xy[:, 1] * math.cos(phi) - self.boundary_offset_A

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (read back by :func:`geometry_from_dict`)."""
        return {
            "kind": "bicrystal",
            **{k: float(getattr(self, k)) for k in self.__dataclass_fields__},
        }


@dataclass(frozen=True)
class Nanoparticle:
    """A finite particle of the crystal: a disc or a regular polygon cut from the lattice.

    The columns inside the outline are kept, each with the full thickness of the projected
    cell (a platelet of ``thickness_A``; the thinning towards a round particle's rim is not
    modelled). The amorphous support is the film of the imaging conditions
    (``ImagingConditions(background=Background(film_thickness_A=…))``), which covers the whole
    field of view under and around the particle; the truth holds the particle's columns only.

    Parameters
    ----------
    diameter_A : float
        Diameter of the disc, or of the circle through a polygon's corners [Å].
    sides : int
        0 for a disc, else the number of sides of a regular polygon (≥ 3), e.g. 6 for a
        hexagonal particle seen down a 3- or 6-fold axis.
    facet_angle_deg : float
        Direction of the polygon's first corner relative to the crystal's first lattice
        vector ``a`` [°]: the outline turns with the crystal, so facets keep their lattice
        planes whatever the rotation.
    center_offset_A : (float, float)
        Position (x, y) of the particle's centre relative to the centre of the field of
        view [Å].

    Examples
    --------
    >>> Nanoparticle(diameter_A=30.0, sides=6).contains(np.array([[0.0, 0.0], [20.0, 0.0]]))
    array([ True, False])
    """

    diameter_A: float
    sides: int = 0
    facet_angle_deg: float = 0.0
    center_offset_A: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        validate_positive(self.diameter_A, name="diameter_A", unit="Å")
        if isinstance(self.sides, bool) or not isinstance(self.sides, int | np.integer):
            raise TypeError(f"sides must be an int (0 for a disc, ≥ 3), got {self.sides!r}.")
        if self.sides < 0 or self.sides in (1, 2):
            raise ValueError(
                f"sides must be 0 (a disc) or at least 3 (a polygon), got {self.sides!r}."
            )
        _finite(self.facet_angle_deg, "facet_angle_deg", "°")
        try:
            cx, cy = self.center_offset_A
        except (TypeError, ValueError):
            raise ValueError(
                f"center_offset_A must be an (x, y) pair in Å, got {self.center_offset_A!r}."
            ) from None
        offset = (_finite(cx, "center_offset_A", "Å"), _finite(cy, "center_offset_A", "Å"))
        object.__setattr__(self, "sides", int(self.sides))
        object.__setattr__(self, "center_offset_A", offset)

    @property
    def area_A2(self) -> float:
        """Area of the outline [Å²]."""
        r = 0.5 * self.diameter_A
        if self.sides == 0:
            return math.pi * r * r
        return 0.5 * self.sides * r * r * math.sin(2 * math.pi / self.sides)

    def contains(self, xy_A: np.ndarray, /, *, crystal_angle_deg: float = 0.0) -> np.ndarray:
        """Which points lie inside the particle's outline.

        Parameters
        ----------
        xy_A : ndarray of shape (N, 2)
            Points (x, y) relative to the centre of the field of view [Å].
        crystal_angle_deg : float
            Direction of the crystal's lattice vector ``a`` in the image [°] (the
            ``rotation_deg`` of the image), which turns a polygon with the crystal.

        Returns
        -------
        ndarray of shape (N,), bool
        """
        xy = np.asarray(xy_A, dtype=float).reshape(-1, 2) - np.asarray(self.center_offset_A)
        r = 0.5 * self.diameter_A
        if self.sides == 0:
            return np.einsum("nc,nc->n", xy, xy) <= r * r
        n = self.sides
        corner0 = math.radians(crystal_angle_deg + self.facet_angle_deg)
        normals = corner0 + math.pi / n + 2 * math.pi * np.arange(n) / n  # edge mid-points
        proj = xy @ np.stack([np.cos(normals), np.sin(normals)])  # (N, n)
        return (proj <= r * math.cos(math.pi / n)).all(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (read back by :func:`geometry_from_dict`)."""
        return {
            "kind": "nanoparticle",
            "diameter_A": float(self.diameter_A),
            "sides": int(self.sides),
            "facet_angle_deg": float(self.facet_angle_deg),
            "center_offset_A": [float(v) for v in self.center_offset_A],
        }


Geometry = Bicrystal | Nanoparticle


def geometry_from_dict(d: dict[str, Any], /) -> Geometry:
    """Rebuild a geometry from its ``to_dict()``; unknown kinds or keys raise ``ValueError``.

    Parameters
    ----------
    d : dict
        The description, with ``kind`` ``"bicrystal"`` or ``"nanoparticle"``.

    Returns
    -------
    Bicrystal or Nanoparticle

    Examples
    --------
    >>> geometry_from_dict(Nanoparticle(diameter_A=20.0).to_dict())
    Nanoparticle(diameter_A=20.0, sides=0, facet_angle_deg=0.0, center_offset_A=(0.0, 0.0))
    """
    d = dict(d)
    kind = d.pop("kind", None)
    cls = {"bicrystal": Bicrystal, "nanoparticle": Nanoparticle}.get(kind)
    if cls is None:
        raise ValueError(f"geometry kind must be 'bicrystal' or 'nanoparticle', got {kind!r}.")
    d = check_keys(cls, d, "geometry")
    if "center_offset_A" in d:
        d["center_offset_A"] = tuple(d["center_offset_A"])
    return cls(**d)


def join_grains(
    first_xy_A: np.ndarray,
    second_xy_A: np.ndarray,
    /,
    *,
    bicrystal: Bicrystal,
    center_A: np.ndarray | tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Which columns of two full lattices make up the bicrystal.

    Parameters
    ----------
    first_xy_A, second_xy_A : ndarray of shape (N1, 2) and (N2, 2)
        Column positions (x, y) of the first and second grain's lattice over the whole
        field of view [Å].
    bicrystal : Bicrystal
        The boundary and the minimum distance.
    center_A : (float, float)
        The centre of the field of view in the same frame [Å].

    Returns
    -------
    keep_first, keep_second : ndarray of bool, shapes (N1,) and (N2,)
        The first grain's columns on its side of the boundary, and the second grain's on
        the other side that are at least ``min_distance_A`` from every kept column of the
        first.
    """
    c = np.asarray(center_A, dtype=float)
    a = np.asarray(first_xy_A, dtype=float).reshape(-1, 2)
    b = np.asarray(second_xy_A, dtype=float).reshape(-1, 2)
    keep_a = bicrystal.signed_distance(a - c) < 0
    keep_b = bicrystal.signed_distance(b - c) >= 0
    if bicrystal.min_distance_A > 0 and keep_a.any() and keep_b.any():
        d, _ = cKDTree(a[keep_a]).query(b[keep_b])
        idx = np.flatnonzero(keep_b)
        keep_b[idx[d < bicrystal.min_distance_A]] = False
    return keep_a, keep_b
