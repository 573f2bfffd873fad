"""Point defects on projected columns: vacancies and substitutions.

Defects act on *atoms* inside columns: a vacancy removes atoms of one element from a column
(a graphene column then disappears, an MoS2 ``S2`` column becomes ``S``), a substitution
replaces atoms of one element by another (Si in graphene). Each is given either as a density
(the probability that each atom of that element is affected) or at explicit sites.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from atomlens.simulate.structures import load_material

__all__ = [
    "Substitution",
    "Vacancy",
    "apply_defects",
    "defects_for_materials",
    "parse_defect",
]


def _atomic_number(symbol: str, *, name: str) -> int:
    z = atomic_numbers.get(symbol)
    if z is None or z == 0:
        raise ValueError(
            f"{name}={symbol!r} is not a chemical element symbol (e.g. 'C', 'Si', 'S')."
        )
    return z


def _validate_sites(sites: Sequence[Sequence[float]], name: str) -> tuple[tuple[float, float], ...]:
    out = []
    for s in sites:
        try:
            x, y = (float(v) for v in s)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a sequence of (x_A, y_A) pairs, got {s!r}.") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"{name} holds a non-finite site {s!r}.")
        out.append((x, y))
    return tuple(out)


@dataclass(frozen=True)
class Vacancy:
    """Remove atoms of one element.

    Parameters
    ----------
    element : str
        Element symbol of the atoms to remove, e.g. ``"S"``.
    density : float
        Probability that each atom of ``element`` is removed (0–1).
    sites : sequence of (float, float)
        Explicit sites as image positions ``(x_A, y_A)`` [Å]; the nearest column holding
        ``element`` loses ``count`` atoms of it.
    count : int or None
        Atoms removed per explicit site; ``None`` removes all of ``element`` there.
    """

    element: str
    density: float = 0.0
    sites: tuple[tuple[float, float], ...] = field(default=())
    count: int | None = 1

    def __post_init__(self) -> None:
        _atomic_number(self.element, name="Vacancy.element")
        if not (0.0 <= float(self.density) <= 1.0):
            raise ValueError(f"Vacancy.density must be within 0–1, got {self.density!r}.")
        object.__setattr__(self, "sites", _validate_sites(self.sites, "Vacancy.sites"))
        if self.count is not None and self.count < 1:
            raise ValueError(f"Vacancy.count must be >= 1 or None (all), got {self.count!r}.")

    @property
    def replacement(self) -> None:
        """No replacement element (for uniform handling with :class:`Substitution`)."""
        return None


@dataclass(frozen=True)
class Substitution:
    """Replace atoms of one element by another.

    Parameters
    ----------
    element : str
        Element symbol of the host atoms, e.g. ``"C"``.
    replacement : str
        Element symbol of the dopant, e.g. ``"Si"``.
    density : float
        Probability that each atom of ``element`` is replaced (0–1).
    sites : sequence of (float, float)
        Explicit sites as image positions ``(x_A, y_A)`` [Å].
    count : int or None
        Atoms replaced per explicit site; ``None`` replaces all of ``element`` there.
    """

    element: str
    replacement: str
    density: float = 0.0
    sites: tuple[tuple[float, float], ...] = field(default=())
    count: int | None = 1

    def __post_init__(self) -> None:
        _atomic_number(self.element, name="Substitution.element")
        _atomic_number(self.replacement, name="Substitution.replacement")
        if self.element == self.replacement:
            raise ValueError("Substitution.replacement must differ from Substitution.element.")
        if not (0.0 <= float(self.density) <= 1.0):
            raise ValueError(f"Substitution.density must be within 0–1, got {self.density!r}.")
        object.__setattr__(self, "sites", _validate_sites(self.sites, "Substitution.sites"))
        if self.count is not None and self.count < 1:
            raise ValueError(f"Substitution.count must be >= 1 or None (all), got {self.count!r}.")


Defect = Vacancy | Substitution


def parse_defect(text: str, /) -> Defect:
    """Parse a defect from the command-line form.

    Parameters
    ----------
    text : str
        ``vacancy:ELEMENT:DENSITY`` or ``substitution:ELEMENT:REPLACEMENT:DENSITY``,
        e.g. ``vacancy:S:0.02`` or ``substitution:C:Si:0.005``.

    Returns
    -------
    Vacancy or Substitution

    Examples
    --------
    >>> parse_defect("substitution:C:Si:0.01")
    Substitution(element='C', replacement='Si', density=0.01, sites=(), count=1)
    """
    parts = text.split(":")
    kind = parts[0].strip().lower()
    try:
        if kind in ("vacancy", "vac", "v") and len(parts) == 3:
            return Vacancy(element=parts[1], density=float(parts[2]))
        if kind in ("substitution", "sub", "s") and len(parts) == 4:
            return Substitution(element=parts[1], replacement=parts[2], density=float(parts[3]))
    except ValueError as exc:
        raise ValueError(f"defect {text!r}: {exc}") from None
    raise ValueError(
        f"defect {text!r} is not understood. Use vacancy:ELEMENT:DENSITY "
        "(e.g. vacancy:S:0.02) or substitution:ELEMENT:REPLACEMENT:DENSITY "
        "(e.g. substitution:C:Si:0.005)."
    )


def defects_for_materials(
    defects: Sequence[str], /, *, materials: Sequence[str], name: str = "defect"
) -> dict[str, list[Defect]]:
    """Give each material the defects of its elements: a training recipe's ``defects``.

    Parameters
    ----------
    defects : sequence of str
        Defects in the form :func:`parse_defect` reads, e.g. ``"substitution:C:Si:0.02"``;
        each applies to every material that has its element.
    materials : sequence of str
        Material names or structure files (:func:`~atomlens.simulate.load_material`).
    name : str
        How the caller's user wrote a defect, for the error message.

    Returns
    -------
    dict of str to list of Vacancy or Substitution
        Material → its defects, in the order given, for the materials that have any.

    Raises
    ------
    ValueError
        A defect is not understood, or names an element none of the materials has.

    Examples
    --------
    >>> defects_for_materials(["vacancy:S:0.01"], materials=["graphene", "mos2"])
    {'mos2': [Vacancy(element='S', density=0.01, sites=(), count=1)]}
    """
    parsed = [parse_defect(d) for d in defects]
    per_material: dict[str, list[Defect]] = {}
    for m in materials:
        have = {chemical_symbols[z] for z in load_material(m).elements}
        mine = [d for d in parsed if d.element in have]
        if mine:
            per_material[m] = mine
    used = {id(d) for v in per_material.values() for d in v}
    unused = [defects[i] for i, d in enumerate(parsed) if id(d) not in used]
    if unused:
        raise ValueError(f"{name} {unused[0]} names an element none of {materials} has.")
    return per_material


def defect_elements(elements: Sequence[int], defects: Sequence[Defect]) -> tuple[int, ...]:
    """All atomic numbers needed after applying ``defects``, heaviest first."""
    zs = set(elements)
    for d in defects:
        if isinstance(d, Substitution):
            zs.add(_atomic_number(d.replacement, name="replacement"))
    return tuple(sorted(zs, reverse=True))


def expand_elements(counts: np.ndarray, src: Sequence[int], dst: Sequence[int]) -> np.ndarray:
    """Put column contents on the element axis ``src`` onto the wider axis ``dst``."""
    if tuple(src) == tuple(dst):
        return counts
    out = np.zeros((counts.shape[0], len(dst)), dtype=counts.dtype)
    index = {z: i for i, z in enumerate(dst)}
    for i, z in enumerate(src):
        out[:, index[z]] = counts[:, i]
    return out


def apply_defects(
    counts: np.ndarray,
    /,
    *,
    elements: Sequence[int],
    defects: Sequence[Defect],
    xy_A: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Apply defects to column contents.

    Parameters
    ----------
    counts : ndarray of shape (N, E)
        Atoms of each element (``elements``) in each column.
    elements : sequence of int
        Atomic numbers of the element axis of ``counts``.
    defects : sequence of Vacancy or Substitution
        Applied in order.
    xy_A : ndarray of shape (N, 2)
        Column positions used to find explicit sites [Å].
    rng : numpy.random.Generator
        Source of the random draws.

    Returns
    -------
    counts : ndarray of shape (N, E')
        New contents on the element axis ``elements_out``.
    elements_out : tuple of int
        Atomic numbers, heaviest first, including replacement elements.
    """
    elements_out = defect_elements(elements, defects)
    index = {z: i for i, z in enumerate(elements_out)}
    out = expand_elements(counts, elements, elements_out).astype(np.int64, copy=True)
    for d in defects:
        src = index[_atomic_number(d.element, name="element")]
        dst = None if isinstance(d, Vacancy) else index[atomic_numbers[d.replacement]]
        if d.density > 0:
            hit = rng.binomial(out[:, src], d.density)
            out[:, src] -= hit
            if dst is not None:
                out[:, dst] += hit
        for site in d.sites:
            candidates = np.flatnonzero(out[:, src] > 0)
            if candidates.size == 0:
                raise ValueError(
                    f"explicit {type(d).__name__.lower()} site {site}: no column holds "
                    f"{chemical_symbols[elements_out[src]]} any more."
                )
            dist = np.hypot(*(xy_A[candidates] - np.asarray(site)).T)
            j = candidates[np.argmin(dist)]
            n = out[j, src] if d.count is None else min(d.count, out[j, src])
            out[j, src] -= n
            if dst is not None:
                out[j, dst] += n
    return out, elements_out
