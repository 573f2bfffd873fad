"""The crystals microscopists image most, built with ASE: their cells and common zone axes.

Each entry of :data:`CRYSTALS` builds an :class:`ase.Atoms` (room-temperature lattice
constants [Å], cubic cells for cubic crystals so that [110] means the cube's [110], ASE's
hexagonal cell with γ = 120° for hexagonal ones) and lists the zone axes it is usually
seen down, as direct-lattice indices [u v w] of that cell. For hexagonal cells the
four-index axes map as [0001] → (0, 0, 1), [11-20] → (1, 1, 0) and [10-10] → (2, 1, 0).

Distortions that lower a structure's symmetry at room temperature (octahedral tilts in
LaAlO3, the tetragonality of BaTiO3 and PbTiO3) are left out: the cubic cells place the
columns within a few pm of the real ones at the zone axes listed.

:mod:`atomlens.simulate.structures` registers them in
:data:`atomlens.simulate.MATERIALS` beside graphene, hBN, MoS2, WS2 and SrTiO3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ase.build
from ase import Atoms
from ase.spacegroup import crystal

__all__ = ["CRYSTALS", "CUBIC_AXES", "HEXAGONAL_AXES", "Crystal"]

#: Common zone axes of cubic crystals.
CUBIC_AXES: tuple[tuple[int, int, int], ...] = ((0, 0, 1), (1, 1, 0), (1, 1, 1))
#: [0001], [11-20] and [10-10] of a hexagonal cell with γ = 120°.
HEXAGONAL_AXES: tuple[tuple[int, int, int], ...] = ((0, 0, 1), (1, 1, 0), (2, 1, 0))


@dataclass(frozen=True)
class Crystal:
    """A built-in crystal.

    Parameters
    ----------
    name : str
        Registry key (lower case).
    builder : callable
        Zero-argument function returning the ``ase.Atoms`` (periodic in 3D, or a slab).
    zone_axes : tuple of (int, int, int)
        Common zone axes [u v w]; the first is the default.
    description : str
        One line: structure, lattice constants [Å].
    column_tol_A : float
        Atoms whose projections lie closer than this [Å] form one column (spinels' O
        columns split by 0.2 Å down [110]: one column to a microscope).
    """

    name: str
    builder: Callable[[], Atoms]
    zone_axes: tuple[tuple[int, int, int], ...]
    description: str
    column_tol_A: float = 0.15


def _bulk(symbol: str, kind: str, **kw: float) -> Callable[[], Atoms]:
    cubic = kind in ("fcc", "bcc", "diamond", "zincblende", "rocksalt", "fluorite")

    def build() -> Atoms:
        return ase.build.bulk(symbol, kind, cubic=cubic, **kw)  # type: ignore[arg-type]

    return build


def _spinel(ab: tuple[str, str, str], a: float, x: float) -> Callable[[], Atoms]:
    """AB2O4 spinel, Fd-3m origin choice 2: A on 8a, B on 16d, O on 32e (x, x, x)."""

    def build() -> Atoms:
        return crystal(
            symbols=list(ab),
            basis=[(0.125, 0.125, 0.125), (0.5, 0.5, 0.5), (x, x, x)],
            spacegroup=227,
            setting=2,
            cellpar=[a, a, a, 90, 90, 90],
        )

    return build


def _perovskite(symbols: tuple[str, str, str], a: float) -> Callable[[], Atoms]:
    def build() -> Atoms:
        return crystal(
            symbols=list(symbols),
            basis=[(0.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, 0.5, 0.0)],
            spacegroup=221,
            cellpar=[a, a, a, 90.0, 90.0, 90.0],
        )

    return build


def _tmd_2h(metal: str, chalcogen: str, a: float, c: float, z: float) -> Callable[[], Atoms]:
    """Bulk 2H-MX2, P6_3/mmc: M on 2c (1/3, 2/3, 1/4), X on 4f (1/3, 2/3, z)."""

    def build() -> Atoms:
        return crystal(
            symbols=[metal, chalcogen],
            basis=[(1 / 3, 2 / 3, 0.25), (1 / 3, 2 / 3, z)],
            spacegroup=194,
            cellpar=[a, a, c, 90, 90, 120],
        )

    return build


def _bilayer_graphene() -> Atoms:
    """AB (Bernal) bilayer graphene, 3.35 Å apart: a slab periodic in x, y."""
    a = 2.46
    one = ase.build.graphene(formula="C2", a=a, thickness=0.0)
    two = one.copy()
    two.translate([a / 2, a / (2 * 3**0.5), 3.35])  # B over the first layer's hexagon centre
    both = one + two
    both.center(vacuum=5.0, axis=2)
    both.pbc = (True, True, False)
    return both


_LIST = [
    # fcc metals
    Crystal("au", _bulk("Au", "fcc", a=4.078), CUBIC_AXES, "gold, fcc, a = 4.078 Å"),
    Crystal("ag", _bulk("Ag", "fcc", a=4.086), CUBIC_AXES, "silver, fcc, a = 4.086 Å"),
    Crystal("cu", _bulk("Cu", "fcc", a=3.615), CUBIC_AXES, "copper, fcc, a = 3.615 Å"),
    Crystal("al", _bulk("Al", "fcc", a=4.050), CUBIC_AXES, "aluminium, fcc, a = 4.050 Å"),
    Crystal("pt", _bulk("Pt", "fcc", a=3.924), CUBIC_AXES, "platinum, fcc, a = 3.924 Å"),
    Crystal("pd", _bulk("Pd", "fcc", a=3.891), CUBIC_AXES, "palladium, fcc, a = 3.891 Å"),
    Crystal("ni", _bulk("Ni", "fcc", a=3.524), CUBIC_AXES, "nickel, fcc, a = 3.524 Å"),
    # bcc metals
    Crystal("fe", _bulk("Fe", "bcc", a=2.866), CUBIC_AXES, "α-iron, bcc, a = 2.866 Å"),
    Crystal("w", _bulk("W", "bcc", a=3.165), CUBIC_AXES, "tungsten, bcc, a = 3.165 Å"),
    Crystal("mo", _bulk("Mo", "bcc", a=3.147), CUBIC_AXES, "molybdenum, bcc, a = 3.147 Å"),
    # hcp metals
    Crystal(
        "mg",
        _bulk("Mg", "hcp", a=3.209, c=5.211),
        HEXAGONAL_AXES,
        "magnesium, hcp, a = 3.209, c = 5.211 Å",
    ),
    Crystal(
        "ti",
        _bulk("Ti", "hcp", a=2.951, c=4.686),
        HEXAGONAL_AXES,
        "α-titanium, hcp, a = 2.951, c = 4.686 Å",
    ),
    Crystal(
        "co",
        _bulk("Co", "hcp", a=2.507, c=4.070),
        HEXAGONAL_AXES,
        "cobalt, hcp, a = 2.507, c = 4.070 Å",
    ),
    # diamond and zinc blende: [110] shows the dumbbells, a/4 apart
    Crystal(
        "si",
        _bulk("Si", "diamond", a=5.431),
        CUBIC_AXES[1:] + CUBIC_AXES[:1],
        "silicon, diamond, a = 5.431 Å ([110] dumbbells 1.36 Å)",
    ),
    Crystal(
        "ge",
        _bulk("Ge", "diamond", a=5.658),
        CUBIC_AXES[1:] + CUBIC_AXES[:1],
        "germanium, diamond, a = 5.658 Å",
    ),
    Crystal(
        "gaas",
        _bulk("GaAs", "zincblende", a=5.653),
        CUBIC_AXES[1:] + CUBIC_AXES[:1],
        "gallium arsenide, zinc blende, a = 5.653 Å ([110] Ga–As dumbbells 1.41 Å)",
    ),
    Crystal(
        "inp",
        _bulk("InP", "zincblende", a=5.869),
        CUBIC_AXES[1:] + CUBIC_AXES[:1],
        "indium phosphide, zinc blende, a = 5.869 Å",
    ),
    Crystal(
        "zns",
        _bulk("ZnS", "zincblende", a=5.409),
        CUBIC_AXES[1:] + CUBIC_AXES[:1],
        "sphalerite ZnS, zinc blende, a = 5.409 Å",
    ),
    # rock salt
    Crystal("mgo", _bulk("MgO", "rocksalt", a=4.212), CUBIC_AXES, "MgO, rock salt, a = 4.212 Å"),
    Crystal("nio", _bulk("NiO", "rocksalt", a=4.177), CUBIC_AXES, "NiO, rock salt, a = 4.177 Å"),
    Crystal("nacl", _bulk("NaCl", "rocksalt", a=5.640), CUBIC_AXES, "NaCl, rock salt, a = 5.640 Å"),
    # fluorite
    Crystal(
        "ceo2",
        _bulk("CeO2", "fluorite", a=5.411),
        CUBIC_AXES[1:] + CUBIC_AXES[:1],
        "ceria, fluorite, a = 5.411 Å",
    ),
    # wurtzite
    Crystal(
        "gan",
        _bulk("GaN", "wurtzite", a=3.189, c=5.185, u=0.377),
        HEXAGONAL_AXES[1:] + HEXAGONAL_AXES[:1],
        "gallium nitride, wurtzite, a = 3.189, c = 5.185 Å",
    ),
    Crystal(
        "zno",
        _bulk("ZnO", "wurtzite", a=3.250, c=5.207, u=0.382),
        HEXAGONAL_AXES[1:] + HEXAGONAL_AXES[:1],
        "zinc oxide, wurtzite, a = 3.250, c = 5.207 Å",
    ),
    Crystal(
        "aln",
        _bulk("AlN", "wurtzite", a=3.112, c=4.982, u=0.380),
        HEXAGONAL_AXES[1:] + HEXAGONAL_AXES[:1],
        "aluminium nitride, wurtzite, a = 3.112, c = 4.982 Å",
    ),
    # perovskites (cubic approximations; SrTiO3 is in structures.MATERIALS already)
    Crystal(
        "batio3",
        _perovskite(("Ba", "Ti", "O"), 4.00),
        CUBIC_AXES,
        "BaTiO3, perovskite (cubic approximation), a = 4.00 Å",
    ),
    Crystal(
        "pbtio3",
        _perovskite(("Pb", "Ti", "O"), 3.97),
        CUBIC_AXES,
        "PbTiO3, perovskite (cubic approximation), a = 3.97 Å",
    ),
    Crystal(
        "laalo3",
        _perovskite(("La", "Al", "O"), 3.79),
        CUBIC_AXES,
        "LaAlO3, perovskite (pseudo-cubic, tilts left out), a = 3.79 Å",
    ),
    Crystal(
        "dysco3",
        _perovskite(("Dy", "Sc", "O"), 3.95),
        CUBIC_AXES,
        "DyScO3, perovskite (pseudo-cubic, tilts left out), a = 3.95 Å",
    ),
    # spinels
    Crystal(
        "mgal2o4",
        _spinel(("Mg", "Al", "O"), 8.083, 0.2624),
        CUBIC_AXES[1:] + CUBIC_AXES[:1],
        "spinel MgAl2O4, Fd-3m, a = 8.083 Å",
        0.35,
    ),
    Crystal(
        "fe3o4",
        _spinel(("Fe", "Fe", "O"), 8.396, 0.2549),
        CUBIC_AXES[1:] + CUBIC_AXES[:1],
        "magnetite Fe3O4, inverse spinel, a = 8.396 Å",
        0.35,
    ),
    # layered crystals, bulk
    Crystal(
        "mos2-2h",
        _tmd_2h("Mo", "S", 3.160, 12.295, 0.621),
        HEXAGONAL_AXES,
        "bulk 2H-MoS2, a = 3.160, c = 12.295 Å",
    ),
    Crystal(
        "wse2-2h",
        _tmd_2h("W", "Se", 3.282, 12.96, 0.621),
        HEXAGONAL_AXES,
        "bulk 2H-WSe2, a = 3.282, c = 12.96 Å",
    ),
    Crystal(
        "bilayer-graphene",
        _bilayer_graphene,
        ((0, 0, 1),),
        "AB-stacked bilayer graphene, a = 2.46 Å, 3.35 Å apart",
    ),
]

#: Built-in crystals by lower-case name.
CRYSTALS: dict[str, Crystal] = {c.name: c for c in _LIST}
