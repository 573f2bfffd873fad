"""Simulated frames with contamination, holes and a grain boundary: the truth of every
region is what the image shows."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from atomlens.simulate import ImagingConditions
from atomlens.simulate.regions import SceneLayout, simulate_regions

PS = 0.1


def test_regions_look_as_their_truth_says():
    s = simulate_regions(
        "graphene", shape=256, pixel_size=PS, conditions=ImagingConditions(dose_e_per_A2=1e5),
        rng=0,
    )  # fmt: skip
    share = s.region_share()
    assert share["amorphous"] > 0.02 and share["vacuum"] > 0.005 and share["crystal"] > 0.5
    inner = {k: ndi.binary_erosion(s.regions == k, iterations=5) for k in (0, 1, 2)}
    level = {k: float(s.expected[m].mean()) for k, m in inner.items()}
    # vacuum: nothing scatters; contamination (10–30 Å of carbon) outshines the lattice
    assert level[2] < 1e-3 * level[0]
    assert level[1] > 1.5 * level[0]
    # no column in vacuum; the columns under the contamination are in the truth, marked
    assert not (s.truth["region"] == "vacuum").any() or (
        s.truth.loc[s.truth["region"] == "vacuum", "x_px"].size
        < 0.05 * (s.truth["region"] == "crystal").sum()
    )
    assert (s.truth["region"] == "amorphous").any()
    assert len(s.crystal_truth()) == int((s.truth["region"] == "crystal").sum())
    # two grains, rotated against each other, and no two columns closer than 1 Å
    assert set(s.truth["grain"]) == {0, 1}
    rot = s.metadata["rotation_deg"]
    assert 12 <= abs(rot[1] - rot[0]) <= 25
    from scipy.spatial import cKDTree

    xy = s.truth[["x_A", "y_A"]].to_numpy(float)
    assert cKDTree(xy).query(xy, k=2)[0][:, 1].min() >= 1.0


def test_seeded_and_saturating():
    lay = SceneLayout(holes=0, saturate=1.2)
    a = simulate_regions("graphene", shape=128, pixel_size=PS, layout=lay, rng=3)
    b = simulate_regions("graphene", shape=128, pixel_size=PS, layout=lay, rng=3)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.image.max() <= a.metadata["saturation_counts"] + 1e-3
    assert (a.regions == 3).any()


def test_bad_layouts_are_named():
    with pytest.raises(ValueError, match="holes"):
        SceneLayout(holes=-1)
    with pytest.raises(ValueError, match="hole_radius_A"):
        SceneLayout(hole_radius_A=(5.0, 2.0))
    with pytest.raises(ValueError, match="HAADF"):
        simulate_regions("graphene", shape=64, conditions=ImagingConditions(mode="bf"))
