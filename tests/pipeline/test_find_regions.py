"""find(regions=…): each atom's region from the image's own lattice, and atoms outside the
crystal reported, flagged or dropped."""

import numpy as np
import pytest

from atomlens.ensemble import Calibration
from atomlens.pipeline import FindSettings, find
from atomlens.pipeline.finder import OUTSIDE_P_REAL
from atomlens.simulate import ImagingConditions
from atomlens.simulate.regions import SceneLayout, simulate_regions
from tests.common import perturbed_ensemble

PS = 0.12


@pytest.fixture(scope="module")
def scene():
    return simulate_regions(
        "graphene", shape=192, pixel_size=PS, conditions=ImagingConditions(dose_e_per_A2=5e4),
        layout=SceneLayout(grain_boundary=False, contamination_radius_A=(4.0, 5.0)), rng=21,
    )  # fmt: skip


def test_find_reports_flags_and_drops_atoms_outside_the_crystal(tiny_model, scene):
    ens = perturbed_ensemble(tiny_model)
    ens.calibration = Calibration(
        p_detect=[0.0, 1.0], p_real=[0.5, 0.9], counts=[1, 1], sigma_scale=1.0, ece_raw=0.0,
        n_images=1,
    )  # fmt: skip
    off = find(scene.image, model=ens, pixel_size=PS)
    keep = find(scene.image, model=ens, pixel_size=PS, regions="keep")
    assert "region" not in off.atoms.columns and off.regions is None
    assert len(keep.atoms) == len(off.atoms)
    regions = keep.atoms["region"]
    assert set(regions) <= {"crystal", "amorphous", "vacuum", "saturated"}
    outside = (regions != "crystal").to_numpy()
    assert outside.any() and (~outside).any()
    # the atoms called outside lie in the true contamination or hole, or near their edge
    xy = np.round(keep.atoms[["x_px", "y_px"]].to_numpy(float)).astype(int)
    true_outside = scene.regions[xy[:, 1], xy[:, 0]] != 0
    assert np.mean(true_outside[~outside]) < 0.05  # few atoms called crystal are outside
    flag = find(scene.image, model=ens, pixel_size=PS, regions="flag")
    assert (flag.atoms.loc[outside, "p_real"] <= OUTSIDE_P_REAL).all()
    np.testing.assert_allclose(
        flag.atoms.loc[~outside, "p_real"], keep.atoms.loc[~outside, "p_real"]
    )
    drop = find(scene.image, model=ens, pixel_size=PS, regions="drop")
    assert len(drop.atoms) == int((~outside).sum())
    assert (drop.atoms["region"] == "crystal").all()
    assert (drop.rejected["region"] != "crystal").sum() >= int(outside.sum())


def test_a_bad_regions_rule_is_named():
    with pytest.raises(ValueError, match="`regions` must be 'off', 'keep'"):
        FindSettings(regions="hide")
