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
    # the result holds the map the regions were read from (it was lost on the way out)
    np.testing.assert_array_equal(
        keep.regions.at(keep.atoms[["x_px", "y_px"]].to_numpy(float)), regions.to_numpy()
    )
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


def test_find_files_report_shows_the_region_map_and_the_atoms_per_region(
    tiny_model, scene, tmp_path
):
    import re

    import tifffile

    from atomlens.pipeline import find_files

    tifffile.imwrite(
        tmp_path / "scene.tif",
        scene.image.astype(np.float32),
        imagej=True,
        resolution=(1 / (PS / 10), 1 / (PS / 10)),
        metadata={"unit": "nm"},
    )
    find_files(
        [tmp_path / "scene.tif"],
        model=perturbed_ensemble(tiny_model),
        out=tmp_path / "o",
        regions="keep",
    )
    page = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "<img alt='regions'" in page
    atoms = __import__("pandas").read_csv(tmp_path / "o" / "atoms.csv")
    row = re.search(r"<td>regions \(share of pixels, atoms\)</td><td[^>]*>(.*?)</td>", page)
    assert row, "no regions row in the summary"
    # each region's atom count is the table's
    for name, n in atoms["region"].value_counts().items():
        assert f"{name} " in row.group(1) and f"({n} atoms" in row.group(1), (name, n, row.group(1))
