"""Lattice fitting and strain against imposed strains (known answers)."""

import numpy as np
import pandas as pd
import pytest

from atomlens.analysis.lattice import (
    fit_lattice,
    homogeneous_strain,
    local_strain,
    reference_basis,
)
from atomlens.simulate import ImagingConditions, simulate_image
from tests.common import assert_coordinates_close

GRAPHENE = reference_basis(2.46, 2.46, 60)


@pytest.mark.parametrize("strain", [(0.01, -0.005, 0.004), (-0.02, 0.015, -0.01)])
def test_homogeneous_strain_from_found_atoms_within_0_1_percent(tiny_model, strain):
    from atomlens.pipeline import find_atoms

    sim = simulate_image(
        "graphene",
        shape=256,
        pixel_size=0.1,
        rng=4,
        rotation_deg=17,
        strain=strain,
        conditions=ImagingConditions(dose_e_per_A2=1e6),
    )
    found = find_atoms(sim.image, model=tiny_model, pixel_size=0.1)
    fit = fit_lattice(found)
    assert len(fit.origins) == 2  # graphene's two sublattices
    h = homogeneous_strain(fit, GRAPHENE)
    np.testing.assert_allclose([h["exx"], h["eyy"], h["exy"]], strain, atol=0.001)


def _graphene_positions(n=30):
    from ase.build import graphene

    return graphene(a=2.46, size=(n, n, 1)).get_positions()[:, :2]


def test_strain_gradient_within_0_5_percent_and_its_sigma():
    """u_x = g x² / 2 gives ε_xx = g x: recovered atom by atom from noisy positions."""
    rng = np.random.default_rng(1)
    xy = _graphene_positions()
    xy = xy[(xy[:, 0] > 20) & (xy[:, 0] < 60) & (xy[:, 1] > 5) & (xy[:, 1] < 45)]
    x0 = xy[:, 0].mean()
    g = 4e-4  # ε_xx goes from −0.8 % to +0.8 % across the field
    u = 0.5 * g * (xy[:, 0] - x0) ** 2
    sigma = 0.005  # 5 pm: atomlens's precision on graphene at 1e5 e/Å²
    moved = xy + np.c_[u, 0 * u] + rng.normal(0, sigma, xy.shape)
    t = pd.DataFrame(
        {"x_A": moved[:, 0], "y_A": moved[:, 1], "sigma_x_A": sigma, "sigma_y_A": sigma}
    )
    fit = fit_lattice(t)
    loc = local_strain(fit, reference=GRAPHENE)
    m = 1.6 * 2.46 + 0.5  # the default neighbourhood radius, plus a margin
    inner = (
        (moved[:, 0] > 20 + m)
        & (moved[:, 0] < 60 - m)
        & (moved[:, 1] > 5 + m)
        & (moved[:, 1] < 45 - m)
    )
    expected = g * (moved[:, 0] - x0)
    err = (loc["exx"] - expected)[inner]
    assert np.abs(err).max() < 0.005
    assert np.abs(loc.loc[inner, "eyy"]).max() < 0.005
    # the propagated σ describes the scatter of the estimates
    ratio = float(np.std(err) / np.median(loc.loc[inner, "sigma_exx"]))
    assert 0.8 < ratio < 1.25, ratio


def test_not_a_lattice_is_refused():
    rng = np.random.default_rng(0)
    t = pd.DataFrame({"x_A": rng.uniform(0, 40, 300), "y_A": rng.uniform(0, 40, 300)})
    with pytest.raises(ValueError, match=r"crystal|lattice"):
        fit_lattice(t)


def test_point_defects_are_found_exactly_against_the_fitted_lattice():
    """Two vacancies, three Si substitutions and one adatom placed in graphene."""
    from atomlens.analysis import point_defects
    from tests.analysis.test_graph_rings_ase import graphene_xy

    xy = graphene_xy(12)
    c = xy.mean(axis=0)
    order = np.argsort(np.linalg.norm(xy - c, axis=1))
    gone, si = order[[0, 17]], order[[5, 30, 41]]
    cls = np.array(["C"] * len(xy), dtype=object)
    cls[si] = "Si"
    keep = np.setdiff1d(np.arange(len(xy)), gone)
    t = pd.DataFrame({"x_A": xy[keep, 0], "y_A": xy[keep, 1], "class": cls[keep]})
    t.loc[len(t)] = {"x_A": c[0] + 0.7, "y_A": c[1] + 0.3, "class": "C"}  # an adatom
    d = point_defects(fit_lattice(t))
    assert d["kind"].value_counts().to_dict() == {"substitution": 3, "vacancy": 2, "stray": 1}
    vac = d[d["kind"] == "vacancy"][["x_A", "y_A"]].to_numpy()
    assert_coordinates_close(vac, xy[gone], atol=1e-6)
    sub = d[d["kind"] == "substitution"]
    assert set(sub["class"]) == {"Si"} and set(sub["expected_class"]) == {"C"}
    assert_coordinates_close(sub[["x_A", "y_A"]].to_numpy(), xy[si], atol=1e-9)
    # a perfect lattice has none, edges included
    perfect = pd.DataFrame({"x_A": xy[:, 0], "y_A": xy[:, 1], "class": "C"})
    assert len(point_defects(fit_lattice(perfect))) == 0


@pytest.mark.parametrize(("turned", "reported"), [(17, 17), (45, -15), (99.45, -20.55), (-40, 20)])
def test_rotation_is_folded_into_the_lattices_period(turned, reported):
    """A hexagonal lattice turned by 99.45° looks turned by −20.55°: the rotation is only
    defined modulo 60°, and any of the equivalent bases may be fitted."""
    t = np.radians(turned)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    xy = _graphene_positions(20) @ rot.T
    fit = fit_lattice(pd.DataFrame({"x_A": xy[:, 0], "y_A": xy[:, 1]}))
    assert homogeneous_strain(fit, GRAPHENE)["rotation_deg"] == pytest.approx(reported, abs=1e-6)
    loc = local_strain(fit, reference=GRAPHENE)["rotation_deg"].dropna()
    np.testing.assert_allclose(loc, reported, atol=1e-6)
