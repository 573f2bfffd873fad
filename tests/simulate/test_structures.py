"""Tests for atomlens.simulate.structures: projected cells of atomic columns and their tiling."""

from __future__ import annotations

import dataclasses
import math

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from hypothesis import given, settings
from hypothesis import strategies as st

from atomlens.simulate.structures import (
    DEFAULT_THICKNESS_A,
    MATERIALS,
    MaterialSpec,
    ProjectedCell,
    graphene,
    hbn,
    load_material,
    mx2,
    perovskite,
    project,
    tile_cell,
)

A_STO = 3.905  # SrTiO3 lattice constant [Å]
A_SI = 5.431  # Si lattice constant [Å]


def nn_distance(cell: ProjectedCell, source: str, target: str) -> float:
    """Shortest projected distance [Å] from a `source` column to a different `target` column."""
    labels = np.array(cell.column_labels())
    reach = 2.0 * (np.linalg.norm(cell.a) + np.linalg.norm(cell.b))
    best = math.inf
    for i in np.flatnonzero(labels == source):
        xy, site = tile_cell(cell, center_A=tuple(cell.positions[i]), radius_A=reach)
        d = np.linalg.norm(xy[labels[site] == target] - cell.positions[i], axis=1)
        d = d[d > 1e-6]
        best = min(best, float(d.min()))
    return best


def composition_by_label(cell: ProjectedCell) -> dict[str, list[str]]:
    """Map each column label to the sorted compositions of the columns with that label."""
    out: dict[str, list[str]] = {}
    for label, comp in zip(cell.column_labels(), cell.column_compositions(), strict=True):
        out.setdefault(label, []).append(comp)
    return {k: sorted(v) for k, v in out.items()}


# ------------------------------------------------------------------------------------------
# Known answers: 2D materials (slabs, projected as one layer)
# ------------------------------------------------------------------------------------------


def test_graphene_columns_and_bond_length():
    cell = load_material("graphene")
    assert cell.name == "graphene"
    assert cell.n_columns == 2
    assert cell.elements == (6,)
    assert cell.counts.tolist() == [[1], [1]]
    assert cell.column_labels() == ["C", "C"]
    np.testing.assert_allclose(cell.a, [2.46, 0.0], atol=1e-9)
    assert np.linalg.norm(cell.b) == pytest.approx(2.46)
    assert cell.b[1] > 0
    assert nn_distance(cell, "C", "C") == pytest.approx(1.42, abs=0.01)
    # a monolayer: flat, one layer
    assert cell.period_A == pytest.approx(0.0)
    assert cell.thickness_A == pytest.approx(0.0)
    assert cell.zone_axis == (0, 0, 1)


def test_hbn_columns_and_bond_length():
    cell = load_material("hBN")
    assert sorted(cell.column_labels()) == ["B", "N"]
    assert sorted(cell.column_compositions()) == ["B", "N"]
    assert nn_distance(cell, "B", "N") == pytest.approx(1.445, abs=0.002)  # a/sqrt(3)
    assert nn_distance(cell, "B", "B") == pytest.approx(2.504)


@pytest.mark.parametrize(
    ("key", "metal", "a", "thickness"), [("mos2", "Mo", 3.16, 3.17), ("ws2", "W", 3.153, 3.14)]
)
def test_mx2_columns_and_distances(key, metal, a, thickness):
    cell = load_material(key)
    # Down [001] the two S atoms of a 2H layer share one column.
    assert composition_by_label(cell) == {metal: [metal], "S": ["S2"]}
    assert nn_distance(cell, metal, "S") == pytest.approx(a / math.sqrt(3), abs=1e-6)
    assert nn_distance(cell, metal, metal) == pytest.approx(a, abs=1e-6)
    assert cell.period_A == pytest.approx(thickness)  # S-S extent of the slab
    assert cell.thickness_A == pytest.approx(thickness)


def test_mos2_projected_mo_s_distance_value():
    assert nn_distance(load_material("mos2"), "Mo", "S") == pytest.approx(1.824, abs=1e-3)


# ------------------------------------------------------------------------------------------
# Known answers: SrTiO3
# ------------------------------------------------------------------------------------------


def test_srtio3_001():
    cell = load_material("srtio3", thickness_A=A_STO)  # one period: counts per unit cell
    np.testing.assert_allclose(cell.a, [A_STO, 0.0], atol=1e-9)
    np.testing.assert_allclose(cell.b, [0.0, A_STO], atol=1e-9)
    assert cell.elements == (38, 22, 8)
    assert cell.period_A == pytest.approx(A_STO)
    assert composition_by_label(cell) == {"Sr": ["Sr"], "TiO": ["TiO"], "O": ["O", "O"]}
    assert nn_distance(cell, "Sr", "TiO") == pytest.approx(A_STO / math.sqrt(2))  # 2.761
    assert nn_distance(cell, "Sr", "TiO") == pytest.approx(2.761, abs=1e-3)
    assert nn_distance(cell, "TiO", "O") == pytest.approx(A_STO / 2)
    assert nn_distance(cell, "Sr", "O") == pytest.approx(A_STO / 2)
    assert nn_distance(cell, "Sr", "Sr") == pytest.approx(A_STO)


def test_srtio3_110():
    # Along [110] (beam coordinate w = (x + y)/sqrt2, in-plane u = (x - y)/sqrt2 and v = z):
    #   Sr (0,0,0)   -> (u, v) = (0, 0)          O (1/2,1/2,0) -> (0, 0): one mixed SrO column
    #   Ti (1/2,1/2,1/2) -> (0, a/2): a pure Ti column
    #   O (1/2,0,1/2) -> (+a/(2 sqrt2), a/2), O (0,1/2,1/2) -> (-a/(2 sqrt2), a/2): one pure O
    #   column, because [100] projects to (a/sqrt2, 0), a lattice vector of the projection.
    # The projected lattice is thus rectangular a/sqrt2 x a = 2.761 x 3.905 Å (the often-drawn
    # a*sqrt2 x a rectangle is a 2x supercell of it); the repeat along the beam is |[110]| =
    # a*sqrt2 = 5.523 Å, which holds one formula unit: SrO = Sr1 O1, Ti1, O2.
    cell = load_material("SrTiO3", zone_axis=(1, 1, 0), thickness_A=5.6)
    assert cell.name == "srtio3[110]"
    assert cell.zone_axis == (1, 1, 0)
    assert cell.period_A == pytest.approx(A_STO * math.sqrt(2))
    assert cell.thickness_A == pytest.approx(A_STO * math.sqrt(2))
    np.testing.assert_allclose(cell.a, [A_STO / math.sqrt(2), 0.0], atol=1e-9)
    np.testing.assert_allclose(cell.b, [0.0, A_STO], atol=1e-9)
    assert composition_by_label(cell) == {"SrO": ["SrO"], "Ti": ["Ti"], "O": ["O2"]}
    assert cell.counts.sum() == 5
    assert nn_distance(cell, "SrO", "SrO") == pytest.approx(A_STO / math.sqrt(2))  # 2.761
    assert nn_distance(cell, "SrO", "Ti") == pytest.approx(A_STO / 2)  # 1.953, along [001]
    assert nn_distance(cell, "Ti", "O") == pytest.approx(A_STO / (2 * math.sqrt(2)))  # 1.381
    assert nn_distance(cell, "SrO", "O") == pytest.approx(A_STO * math.sqrt(3 / 8))  # 2.391
    assert nn_distance(cell, "Ti", "Ti") == pytest.approx(A_STO / math.sqrt(2))


def test_zone_axis_is_reduced_and_sign_gives_mirror():
    c110 = load_material("srtio3", zone_axis=(1, 1, 0))
    c220 = load_material("srtio3", zone_axis=(2, 2, 0))
    assert c220.zone_axis == (1, 1, 0)
    assert c220 is c110  # same cache entry
    cneg = project(perovskite(), zone_axis=(-1, -1, 0))
    assert cneg.zone_axis == (-1, -1, 0)
    assert sorted(cneg.column_compositions()) == sorted(c110.column_compositions())


# ------------------------------------------------------------------------------------------
# Thickness
# ------------------------------------------------------------------------------------------


def test_thickness_scales_counts_in_whole_periods():
    one = load_material("srtio3", thickness_A=A_STO)
    ten = load_material("srtio3", thickness_A=40.0)  # 40 / 3.905 = 10.2 -> 10 periods
    assert ten.thickness_A == pytest.approx(10 * A_STO)
    np.testing.assert_array_equal(ten.counts, 10 * one.counts)
    assert "Ti10O10" in ten.column_compositions()
    thin = load_material("srtio3", thickness_A=1.0)  # at least one period
    np.testing.assert_array_equal(thin.counts, one.counts)


def test_default_thickness_is_closest_to_50_A():
    cell = load_material("srtio3")
    n = round(DEFAULT_THICKNESS_A / A_STO)  # 12.8 -> 13
    assert cell.thickness_A == pytest.approx(n * A_STO)
    assert "Sr13" in cell.column_compositions()


def test_slab_is_used_as_given():
    atoms = mx2()
    cell = project(atoms)
    assert cell.counts.sum() == len(atoms)
    with pytest.raises(ValueError, match=r"thickness_A.*slab"):
        project(atoms, thickness_A=10.0)
    with pytest.raises(ValueError, match="thickness_A"):
        load_material("graphene", thickness_A=10.0)


# ------------------------------------------------------------------------------------------
# User structures: Atoms and files
# ------------------------------------------------------------------------------------------


def test_silicon_110_dumbbells():
    # Diamond Si down [110]: dumbbells of two columns a/4 = 1.358 Å apart (the classic 1.36 Å
    # test of STEM resolution).
    cubic = project(bulk("Si", "diamond", a=A_SI, cubic=True), zone_axis=(1, 1, 0))
    assert nn_distance(cubic, "Si", "Si") == pytest.approx(A_SI / 4)
    assert nn_distance(cubic, "Si", "Si") == pytest.approx(1.36, abs=0.005)
    assert cubic.period_A == pytest.approx(A_SI * math.sqrt(2))  # the cubic cell's [110]
    # The primitive fcc cell: cubic [110] = 2 * primitive a3, i.e. zone axis [001].
    prim = project(bulk("Si", "diamond", a=A_SI), zone_axis=(0, 0, 1))
    assert prim.period_A == pytest.approx(A_SI / math.sqrt(2))
    assert nn_distance(prim, "Si", "Si") == pytest.approx(A_SI / 4)
    # Same columns per Å² and atoms per Å of column, whichever cell describes the crystal.
    assert prim.n_columns / prim.area_A2 == pytest.approx(cubic.n_columns / cubic.area_A2)
    per_length = [c.counts.sum() / c.n_columns / c.thickness_A for c in (prim, cubic)]
    assert per_length[0] == pytest.approx(per_length[1])


def test_load_material_accepts_atoms():
    cell = load_material(bulk("Si", "diamond", a=A_SI, cubic=True), zone_axis=(1, 1, 0))
    assert cell.name == "Si[110]"
    assert cell.n_columns == 4


@pytest.mark.parametrize("as_str", [True, False])
def test_cif_round_trip(tmp_path, as_str):
    atoms = perovskite(formula="BaTiO3", a=4.0)
    path = tmp_path / "batio3.cif"
    ase.io.write(path, atoms, format="cif")
    cell = load_material(str(path) if as_str else path, zone_axis=(0, 0, 1), thickness_A=4.0)
    assert cell.elements == (56, 22, 8)
    assert composition_by_label(cell) == {"Ba": ["Ba"], "TiO": ["TiO"], "O": ["O", "O"]}
    np.testing.assert_allclose(cell.a, [4.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("formula", ["BaTiO3", "LaMnO3", "PbTiO3"])
def test_perovskite_formulas(formula):
    atoms = perovskite(formula=formula, a=4.0)
    assert atoms.get_chemical_formula(mode="metal") == formula
    cell = project(atoms, thickness_A=4.0)
    assert cell.counts.sum() == 5


def test_counts_sum_to_atoms_times_periods():
    for key, spec in MATERIALS.items():
        atoms = spec.builder()
        cell = load_material(key)
        n_periods = 1 if cell.period_A == 0 else round(cell.thickness_A / cell.period_A)
        assert cell.counts.sum() == len(atoms) * n_periods, key


@pytest.mark.parametrize(
    ("key", "zone"),
    [
        ("graphene", None),
        ("hbn", None),
        ("mos2", None),
        ("srtio3", (1, 1, 0)),
        ("srtio3", (1, 1, 1)),
    ],
)
def test_cell_conventions(key, zone):
    cell = load_material(key, zone_axis=zone)
    assert cell.a[1] == 0.0
    assert cell.a[0] > 0
    assert cell.b[1] > 0
    frac = cell.positions @ np.linalg.inv(np.stack([cell.a, cell.b]))
    assert (frac >= -1e-9).all()
    assert (frac < 1 - 1e-9).all()
    # reduced basis: |a| is the shortest lattice vector, |a.b| <= |a|^2 / 2
    assert np.linalg.norm(cell.a) <= np.linalg.norm(cell.b) + 1e-9
    assert abs(cell.a @ cell.b) <= cell.a @ cell.a / 2 + 1e-9


# ------------------------------------------------------------------------------------------
# Registry, caching and immutability
# ------------------------------------------------------------------------------------------


def test_registry_contents():
    assert {"graphene", "hbn", "mos2", "ws2", "srtio3", "au", "si", "gan"} <= set(MATERIALS)
    for key, spec in MATERIALS.items():
        assert isinstance(spec, MaterialSpec)
        assert spec.name == key
        assert isinstance(spec.builder(), Atoms)
        assert spec.description


def test_registry_cells_are_cached_and_immutable():
    c1 = load_material("SrTiO3")
    c2 = load_material("srtio3")
    assert c1 is c2
    for arr in (c1.a, c1.b, c1.positions, c1.counts):
        assert not arr.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            arr[...] = 0
        with pytest.raises(ValueError):
            arr.flags.writeable = True
    with pytest.raises(dataclasses.FrozenInstanceError):
        c1.name = "other"  # type: ignore[misc]


def test_builders_defaults():
    assert graphene().get_chemical_symbols() == ["C", "C"]
    assert hbn().get_chemical_symbols() == ["B", "N"]
    ws2 = mx2(formula="WS2")
    assert ws2.cell.lengths()[0] == pytest.approx(3.153)
    assert np.ptp(ws2.positions[:, 2]) == pytest.approx(3.14)
    assert mx2(formula="MoSe2", a=3.29, thickness=3.34).get_chemical_symbols() == [
        "Mo",
        "Se",
        "Se",
    ]


# ------------------------------------------------------------------------------------------
# tile_cell
# ------------------------------------------------------------------------------------------


def brute_force_tiling(cell: ProjectedCell, center: np.ndarray, radius: float) -> np.ndarray:
    lattice = np.stack([cell.a, cell.b])
    f0 = np.round(center @ np.linalg.inv(lattice)).astype(int)
    n = int(2 * radius / min(np.linalg.norm(cell.a), cell.b[1])) + 4
    i, j = np.meshgrid(np.arange(-n, n + 1) + f0[0], np.arange(-n, n + 1) + f0[1])
    shifts = np.stack([i.ravel(), j.ravel()], axis=1) @ lattice
    xy = (shifts[:, None, :] + cell.positions[None]).reshape(-1, 2)
    return xy[np.linalg.norm(xy - center, axis=1) <= radius]


@pytest.mark.parametrize(
    ("key", "zone"), [("graphene", None), ("mos2", None), ("srtio3", (1, 1, 0)), ("srtio3", None)]
)
@pytest.mark.parametrize(("center", "radius"), [((0.0, 0.0), 12.0), ((-31.7, 55.2), 23.5)])
def test_tile_cell_every_position_exactly_once(key, zone, center, radius):
    cell = load_material(key, zone_axis=zone)
    xy, site = tile_cell(cell, center_A=center, radius_A=radius)
    assert xy.shape == (len(site), 2)
    assert site.dtype == np.int64
    # no duplicates, e.g. at cell boundaries
    assert len(np.unique(np.round(xy, 6), axis=0)) == len(xy)
    # inside the disc, and every expected position present
    assert (np.linalg.norm(xy - center, axis=1) <= radius + 1e-9).all()
    expected = brute_force_tiling(cell, np.asarray(center), radius)
    assert len(xy) == len(expected)
    np.testing.assert_allclose(
        np.unique(np.round(xy, 6), axis=0), np.unique(np.round(expected, 6), axis=0), atol=1e-6
    )
    # site indexes the cell: each position is its site plus a lattice translation
    frac = (xy - cell.positions[site]) @ np.linalg.inv(np.stack([cell.a, cell.b]))
    np.testing.assert_allclose(frac, np.round(frac), atol=1e-6)


def test_tile_cell_origin_and_neighbours():
    xy, _ = tile_cell(load_material("graphene"), radius_A=1.5)
    assert len(xy) == 4
    assert np.sort(np.linalg.norm(xy, axis=1)) == pytest.approx([0.0, 1.42, 1.42, 1.42], abs=0.01)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    key=st.sampled_from(["graphene", "hbn", "mos2", "srtio3"]),
    cx=st.floats(-100, 100),
    cy=st.floats(-100, 100),
    radius=st.floats(1.0, 80.0),
)
def test_tile_cell_count_matches_density(key, cx, cy, radius):
    cell = load_material(key)
    xy, _ = tile_cell(cell, center_A=(cx, cy), radius_A=radius)
    density = cell.n_columns / cell.area_A2
    # Each site's translates in a disc of radius r number between pi (r -/+ D)^2 / area,
    # D being the diameter of the cell.
    diam = np.linalg.norm(cell.a) + np.linalg.norm(cell.b)
    low = density * math.pi * max(radius - diam, 0.0) ** 2
    high = density * math.pi * (radius + diam) ** 2
    assert low <= len(xy) <= high
    if radius > 40:
        assert len(xy) == pytest.approx(density * math.pi * radius**2, rel=0.15)


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "exc", "match"),
    [
        ((0, 0, 0), ValueError, "must not be zero"),
        ((1.5, 0, 0), ValueError, "integer"),
        ("110", TypeError, "string"),
        ((1, 1), ValueError, "3 indices"),
        ((1, "a", 0), TypeError, "integers"),
        (5, TypeError, "three integers"),
    ],
)
def test_bad_zone_axis(zone, exc, match):
    with pytest.raises(exc, match=match):
        project(perovskite(), zone_axis=zone)


def test_integral_float_zone_axis_is_accepted():
    assert project(perovskite(), zone_axis=(1.0, 1.0, 0.0)).zone_axis == (1, 1, 0)


def test_slab_zone_axis_must_be_normal():
    with pytest.raises(ValueError, match=r"non-periodic axis, zone_axis=\(0, 0, 1\)"):
        project(graphene(), zone_axis=(1, 0, 0))
    with pytest.raises(ValueError, match="non-periodic axis"):
        load_material("mos2", zone_axis=(1, 1, 1))
    assert project(graphene(), zone_axis=(0, 0, -1)).n_columns == 2


def test_atoms_without_cell():
    with pytest.raises(ValueError, match="no valid cell"):
        project(Atoms("Si2", positions=[(0, 0, 0), (1, 1, 1)], pbc=True))
    with pytest.raises(ValueError, match="pbc"):
        project(Atoms("Si", cell=[3, 3, 3], pbc=False))
    with pytest.raises(ValueError, match="in-plane cell"):
        project(Atoms("C", pbc=(True, True, False)))
    with pytest.raises(ValueError, match="empty"):
        project(Atoms(cell=[3, 3, 3], pbc=True))


def test_bad_project_arguments():
    with pytest.raises(TypeError, match=r"ase\.Atoms"):
        project(np.zeros((3, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tol_A"):
        project(perovskite(), tol_A=-1.0)
    with pytest.raises(ValueError, match=r"tol_A=2\.0 Å is too large"):
        project(perovskite(), tol_A=2.0)
    with pytest.raises(ValueError, match="thickness_A"):
        project(perovskite(), thickness_A=0.0)


def test_unknown_material_lists_available():
    with pytest.raises(ValueError, match=r"unknown material 'unobtainium'.*graphene.*srtio3"):
        load_material("unobtainium")
    with pytest.raises(TypeError, match="material"):
        load_material(42)  # type: ignore[arg-type]


def test_missing_and_unreadable_files(tmp_path):
    missing = tmp_path / "nothere.cif"
    with pytest.raises(FileNotFoundError, match=r"nothere\.cif"):
        load_material(missing)
    with pytest.raises(FileNotFoundError, match=r"nothere\.cif"):
        load_material(str(missing))
    bad = tmp_path / "garbage.cif"
    bad.write_text("this is not a CIF\n")
    with pytest.raises(ValueError, match=r"could not read structure file .*garbage\.cif"):
        load_material(bad)
    with pytest.raises(ValueError, match="directory"):
        load_material(tmp_path)


def test_bad_builder_arguments():
    with pytest.raises(ValueError, match="ABX3"):
        perovskite(formula="SrTiO2")
    with pytest.raises(ValueError, match="ABX3"):
        perovskite(formula="Xx")
    with pytest.raises(ValueError, match="MX2"):
        mx2(formula="Mo2S")
    with pytest.raises(ValueError, match=r"no default lattice constant.*a=\.\.\."):
        mx2(formula="MoSe2")
    with pytest.raises(ValueError, match="a must be a positive"):
        graphene(a=-1.0)


def test_bad_tile_cell_arguments():
    cell = load_material("graphene")
    with pytest.raises(ValueError, match="radius_A"):
        tile_cell(cell, radius_A=0.0)
    with pytest.raises(ValueError, match="center_A"):
        tile_cell(cell, center_A=(1.0, 2.0, 3.0), radius_A=5.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ProjectedCell"):
        tile_cell(graphene(), radius_A=5.0)  # type: ignore[arg-type]


def test_projected_cell_validation():
    good = load_material("graphene")
    fields = {f.name: getattr(good, f.name) for f in dataclasses.fields(good) if f.init}
    with pytest.raises(ValueError, match="along"):
        ProjectedCell(**{**fields, "a": np.array([1.0, 1.0])})
    with pytest.raises(ValueError, match="counts must have shape"):
        ProjectedCell(**{**fields, "counts": np.ones((3, 1), dtype=int)})
    with pytest.raises(ValueError, match="heaviest first"):
        ProjectedCell(**{**fields, "elements": (6, 8), "counts": np.ones((2, 2), dtype=int)})
