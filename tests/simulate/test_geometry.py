"""Two rotated grains (bicrystal) and a nanoparticle on a support film: exact truth."""

import json
import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from atomlens.simulate import (
    Background,
    Bicrystal,
    ImagingConditions,
    Nanoparticle,
    load_material,
    simulate_image,
)
from atomlens.simulate.geometry import geometry_from_dict
from atomlens.simulate.structures import tile_cell


def _centre_A(sim) -> np.ndarray:
    h, w = sim.image.shape
    return np.array([(w - 1) / 2, (h - 1) / 2]) * sim.pixel_size


def _orientation_deg(xy: np.ndarray, *, bond_A: float, fold: int) -> float:
    """Orientation of a lattice from its nearest-neighbour bonds, modulo 360°/fold [°]."""
    tree = cKDTree(xy)
    pairs = np.array(sorted(tree.query_pairs(bond_A * 1.1)))
    d = xy[pairs[:, 1]] - xy[pairs[:, 0]]
    length = np.hypot(d[:, 0], d[:, 1])
    d = d[np.abs(length - bond_A) < 0.05 * bond_A]
    ang = np.arctan2(d[:, 1], d[:, 0]) * fold
    mean = math.atan2(np.sin(ang).mean(), np.cos(ang).mean()) / fold
    spread = np.angle(np.exp(1j * (ang - mean * fold))) / fold
    assert np.degrees(np.abs(spread)).max() < 0.01  # one orientation only: a perfect lattice
    return math.degrees(mean)


def _angle_diff(a: float, b: float, period: float) -> float:
    return (b - a + period / 2) % period - period / 2


@pytest.mark.parametrize(
    ("material", "bond_A", "fold", "misorientation", "boundary_angle", "offset"),
    [
        ("graphene", 1.42, 6, 23.0, 30.0, 3.0),  # hexagonal bonds: orientation modulo 60°
        ("au[001]", 4.078 / 2, 4, 36.87, 100.0, -2.0),  # Σ5: square lattice, modulo 90°
    ],
)
def test_bicrystal_grains_have_the_asked_misorientation_and_boundary(
    material, bond_A, fold, misorientation, boundary_angle, offset
):
    geo = Bicrystal(
        misorientation_deg=misorientation,
        boundary_angle_deg=boundary_angle,
        boundary_offset_A=offset,
        min_distance_A=1.0,
    )
    sim = simulate_image(
        material, shape=300, pixel_size=0.1, rotation_deg=10.0, geometry=geo, rng=4
    )
    t = sim.truth
    xy = t[["x_spec_A", "y_spec_A"]].to_numpy(float)
    side = geo.signed_distance(xy - _centre_A(sim))
    grain = t["grain"].to_numpy()
    # each grain on its side of the straight boundary at the asked angle and offset
    assert (side[grain == 0] < 0).all() and (side[grain == 1] >= 0).all()
    assert (grain == 0).sum() > 60 and (grain == 1).sum() > 60
    # orientations measured from the truth's bonds, away from the boundary
    period = 360.0 / fold
    angles = [
        _orientation_deg(xy[(grain == g) & (np.abs(side) > 3.0)], bond_A=bond_A, fold=fold)
        for g in (0, 1)
    ]
    # the first grain turned by rotation_deg from the unrotated crystal's bonds…
    xy_cell, _ = tile_cell(load_material(material), radius_A=12.0)
    unrotated = _orientation_deg(xy_cell, bond_A=bond_A, fold=fold)
    assert abs(_angle_diff(unrotated + 10.0, angles[0], period)) < 0.5
    # …and the second turned by the misorientation, ±0.5°
    assert abs(_angle_diff(angles[0] + misorientation, angles[1], period)) < 0.5
    # no two columns on top of each other
    d, _ = cKDTree(xy).query(xy, k=2)
    assert d[:, 1].min() >= 1.0
    assert json.dumps(sim.metadata["geometry"])
    assert sim.metadata["geometry"]["rotation_deg_second"] == pytest.approx(10.0 + misorientation)


def test_bicrystal_removes_exactly_the_crowded_columns_of_the_second_grain():
    kw = {"shape": 160, "pixel_size": 0.1, "rotation_deg": 0.0, "rng": 7}
    close = simulate_image(
        "graphene", geometry=Bicrystal(misorientation_deg=17.0, min_distance_A=0.0), **kw
    )
    kept = simulate_image(
        "graphene", geometry=Bicrystal(misorientation_deg=17.0, min_distance_A=1.2), **kw
    )
    xy0 = close.truth[["x_spec_A", "y_spec_A"]].to_numpy(float)
    g0 = close.truth["grain"].to_numpy()
    d, _ = cKDTree(xy0[g0 == 0]).query(xy0[g0 == 1])
    crowded = int((d < 1.2).sum())
    assert crowded > 0  # a seed where the lattices do meet closer than 1.2 Å
    assert len(close.truth) - len(kept.truth) == crowded
    # the first grain and the rest of the second are untouched, and the image agrees
    assert (kept.truth["grain"] == 0).sum() == (g0 == 0).sum()
    xy1 = kept.truth[["x_spec_A", "y_spec_A"]].to_numpy(float)
    np.testing.assert_array_equal(xy1[kept.truth["grain"] == 0], xy0[g0 == 0])
    assert kept.expected.sum() < close.expected.sum()


def test_nanoparticle_on_a_film_holds_the_particles_columns_only():
    diameter, px = 30.0, 0.2
    cond = ImagingConditions(background=Background(film_thickness_A=20.0))
    sim = simulate_image(
        "au[001]",
        shape=256,
        pixel_size=px,
        conditions=cond,
        geometry=Nanoparticle(diameter_A=diameter),
        rng=2,
    )
    xy = sim.truth[["x_spec_A", "y_spec_A"]].to_numpy(float) - _centre_A(sim)
    r = np.hypot(xy[:, 0], xy[:, 1])
    assert r.max() <= diameter / 2
    cell = load_material("au[001]")
    expected_n = math.pi * (diameter / 2) ** 2 / cell.area_A2 * cell.n_columns
    assert len(sim.truth) == pytest.approx(expected_n, rel=0.05)
    assert (sim.truth["class"] == "Au").all()
    # the film is there outside the particle, at its expected level, with a texture
    h, w = sim.image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    rpix = np.hypot(xx * px - _centre_A(sim)[0], yy * px - _centre_A(sim)[1])
    outside = rpix > diameter / 2 + 3.0
    film_level = sim.metadata["background_counts_per_px"]
    assert film_level > 0
    assert sim.expected[outside].mean() == pytest.approx(film_level, rel=0.1)
    assert sim.expected[outside].std() > 0.1 * film_level
    # the particle stands out of its support
    assert sim.expected[rpix < diameter / 2 - 3.0].mean() > 3 * film_level


def test_faceted_nanoparticle_turns_with_the_crystal():
    geo = Nanoparticle(diameter_A=24.0, sides=6, facet_angle_deg=0.0, center_offset_A=(2.0, -1.0))
    sim = simulate_image(
        "graphene", shape=300, pixel_size=0.1, rotation_deg=13.0, geometry=geo, rng=1
    )
    xy = sim.truth[["x_spec_A", "y_spec_A"]].to_numpy(float) - _centre_A(sim)
    assert geo.contains(xy, crystal_angle_deg=13.0).all()
    cell = load_material("graphene")
    assert len(sim.truth) == pytest.approx(geo.area_A2 / cell.area_A2 * cell.n_columns, rel=0.06)
    # the outline turns with the crystal: turned by half a corner (30°), corners stick out
    assert not geo.contains(xy, crystal_angle_deg=13.0 + 30.0).all()
    turned = simulate_image(
        "graphene", shape=300, pixel_size=0.1, rotation_deg=43.0, geometry=geo, rng=1
    )
    xy2 = turned.truth[["x_spec_A", "y_spec_A"]].to_numpy(float) - _centre_A(turned)
    assert geo.contains(xy2, crystal_angle_deg=43.0).all()
    assert not geo.contains(xy2, crystal_angle_deg=13.0).all()


def test_geometry_dicts_round_trip_and_bad_input_is_refused():
    for geo in (Bicrystal(misorientation_deg=5.0), Nanoparticle(diameter_A=10.0, sides=4)):
        assert geometry_from_dict(json.loads(json.dumps(geo.to_dict()))) == geo
    with pytest.raises(ValueError, match="misorientation_deg"):
        Bicrystal(misorientation_deg=float("nan"))
    with pytest.raises(ValueError, match="min_distance_A"):
        Bicrystal(misorientation_deg=5.0, min_distance_A=-1.0)
    with pytest.raises(ValueError, match="diameter_A"):
        Nanoparticle(diameter_A=0.0)
    with pytest.raises(ValueError, match="sides"):
        Nanoparticle(diameter_A=10.0, sides=2)
    with pytest.raises(ValueError, match="center_offset_A"):
        Nanoparticle(diameter_A=10.0, center_offset_A=(1.0,))
    with pytest.raises(ValueError, match="unknown geometry keys"):
        geometry_from_dict({"kind": "nanoparticle", "diameter_A": 5.0, "radius_A": 2.0})
    with pytest.raises(ValueError, match="geometry kind"):
        geometry_from_dict({"kind": "sphere"})
    with pytest.raises(TypeError, match="geometry"):
        simulate_image("graphene", shape=32, geometry="bicrystal", rng=0)
