"""Neighbour graphs, rings and the ASE bridge against structures with known answers."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from atomlens.analysis import (
    bond_angles,
    bond_table,
    coordination,
    find_rings,
    from_ase,
    neighbour_graph,
    to_ase,
    write_structure,
)


def graphene_xy(n=12):
    from ase.build import graphene

    return graphene(a=2.46, size=(n, n, 1)).get_positions()[:, :2]


def stone_wales(pos, near):
    """Rotate the bond nearest ``near`` by 90° about its centre (an unrelaxed SW defect)."""
    t = cKDTree(pos)
    i = t.query(near)[1]
    j = t.query(pos[i], k=2)[1][1]
    mid = (pos[i] + pos[j]) / 2
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    out = pos.copy()
    out[i], out[j] = mid + rot @ (pos[i] - mid), mid + rot @ (pos[j] - mid)
    return out


def table(xy, cls="C"):
    return pd.DataFrame({"x_A": xy[:, 0], "y_A": xy[:, 1], "class": cls})


def test_perfect_graphene_bonds_angles_and_rings():
    g = neighbour_graph(table(graphene_xy()))
    bonds = bond_table(g)
    np.testing.assert_allclose(bonds["length_A"], 2.46 / np.sqrt(3), atol=1e-9)
    np.testing.assert_allclose(bond_angles(g)["angle_deg"], 120.0, atol=1e-6)
    cn = coordination(g)
    assert cn.max() == 3 and (cn == 3).sum() > 0.8 * len(cn)
    r = find_rings(g)
    assert set(r.counts) == {6} and r.counts[6] > 100
    np.testing.assert_allclose(r.rings["area_A2"], 3 * np.sqrt(3) / 2 * (2.46 / np.sqrt(3)) ** 2)


def test_stone_wales_defects_give_exactly_two_pentagons_and_two_heptagons_each():
    pos = graphene_xy(14)
    c = pos.mean(axis=0)
    one = stone_wales(pos, c)
    perfect = find_rings(neighbour_graph(table(pos))).counts
    assert set(perfect) == {6}
    assert find_rings(neighbour_graph(table(one))).counts == {5: 2, 6: perfect[6] - 4, 7: 2}
    two = stone_wales(one, c + np.array([9.0, 5.0]))
    counts = find_rings(neighbour_graph(table(two))).counts
    assert counts[5] == 4 and counts[7] == 4


def test_bond_sigma_is_the_atoms_sigma_along_the_bond():
    t = pd.DataFrame(
        {
            "x_A": [0.0, 1.4],
            "y_A": [0.0, 0.0],
            "class": "C",
            "sigma_x_A": [0.03, 0.04],
            "sigma_y_A": [0.5, 0.5],
        }
    )
    b = bond_table(neighbour_graph(t))
    assert b["sigma_length_A"].iloc[0] == pytest.approx(0.05)  # y errors do not stretch it


def test_rings_from_found_atoms_equal_the_rings_of_the_truth(tiny_model):
    """A simulated image of graphene with a Stone–Wales defect: the rings of the atoms the
    model finds are the rings of the true structure (away from the border)."""
    from ase import Atoms

    from atomlens.pipeline import find_atoms
    from atomlens.simulate import ImagingConditions, simulate_image

    pos = stone_wales(graphene_xy(12), graphene_xy(12).mean(axis=0))
    cell = [[29.52, 0, 0], [-14.76, 25.566, 0], [0, 0, 10]]
    sheet = Atoms(
        "C" * len(pos),
        positions=np.c_[pos, np.full(len(pos), 5.0)],
        cell=cell,
        pbc=(True, True, False),
    )
    sim = simulate_image(
        sheet,
        shape=200,
        pixel_size=0.1,
        rng=3,
        rotation_deg=0.0,
        conditions=ImagingConditions(dose_e_per_A2=1e6),
    )
    found = find_atoms(sim.image, model=tiny_model, pixel_size=0.1)
    lo, hi = 3.0, 200 * 0.1 - 3.0

    def inner(atoms):
        r = find_rings(neighbour_graph(atoms)).rings
        keep = r["x_A"].between(lo, hi) & r["y_A"].between(lo, hi)
        return sorted(r.loc[keep, "size"].tolist())

    truth_rings = inner(sim.truth)
    assert 5 in truth_rings and 7 in truth_rings  # the defect is in the field of view
    assert inner(found) == truth_rings


@pytest.mark.parametrize("name", ["a.extxyz", "POSCAR"])
def test_ase_round_trip_keeps_positions_to_1e_6_A(tmp_path, name):
    from ase.io import read

    rng = np.random.default_rng(0)
    t = table(graphene_xy(4) + rng.normal(0, 0.01, (32, 2)))
    t.loc[::7, "class"] = "Si"
    t["sigma_x_A"] = rng.uniform(0.01, 0.05, len(t))
    t["sigma_y_A"] = t["sigma_x_A"]
    write_structure(t, tmp_path / name, z_A={"C": 0.0, "Si": 0.3})
    structure = read(tmp_path / name, format="vasp" if name == "POSCAR" else None)
    # extxyz records the vacuum offset; POSCAR cannot, so it is given back
    back = from_ase(structure, z_offset_A=None if name.endswith("extxyz") else 10.0)
    np.testing.assert_allclose(
        back[["x_A", "y_A"]].to_numpy(), t[["x_A", "y_A"]].to_numpy(), atol=1e-6
    )
    assert back["class"].tolist() == t["class"].tolist()
    np.testing.assert_allclose(back.loc[t["class"] == "Si", "z_A"], 0.3, atol=1e-6)
    if name.endswith("extxyz"):
        np.testing.assert_allclose(back["sigma_x_A"], t["sigma_x_A"], rtol=1e-6)


def test_to_ase_names_an_unmapped_class():
    with pytest.raises(ValueError, match="TiO"):
        to_ase(pd.DataFrame({"x_A": [0.0], "y_A": [0.0], "class": ["TiO"]}))
