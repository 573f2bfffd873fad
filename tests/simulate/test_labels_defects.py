import numpy as np
import pytest

from atomlens.simulate import Substitution, Vacancy, defects_for_materials, parse_defect
from atomlens.simulate.labels import render_masks


def test_disk_masks_have_the_right_area_and_background():
    xy = np.array([[20.3, 30.7], [40.0, 10.0]])
    m = render_masks(xy, class_index=np.array([0, 1]), n_classes=2, shape=(64, 64), radius_px=5.0)
    assert m.shape == (3, 64, 64)
    assert m[1].sum() == pytest.approx(np.pi * 25, rel=0.06)
    assert m[2].sum() == pytest.approx(np.pi * 25, rel=0.06)
    np.testing.assert_array_equal(m[0], 1 - m[1] - m[2])


def test_gaussian_masks_peak_at_one():
    m = render_masks(
        np.array([[10.0, 10.0]]),
        class_index=np.array([0]),
        n_classes=1,
        shape=(21, 21),
        radius_px=2.0,
        kind="gaussian",
    )
    assert m[1, 10, 10] == pytest.approx(1.0)
    assert m[1, 10, 12] == pytest.approx(np.exp(-0.5), rel=1e-5)


def test_parse_defect_forms_and_errors():
    assert parse_defect("vacancy:S:0.02") == Vacancy("S", density=0.02)
    assert parse_defect("sub:C:Si:0.1") == Substitution("C", "Si", density=0.1)
    with pytest.raises(ValueError, match="vacancy:ELEMENT:DENSITY"):
        parse_defect("hole:S")
    with pytest.raises(ValueError, match="chemical element"):
        parse_defect("vacancy:Xx:0.1")
    with pytest.raises(ValueError, match="0–1"):
        parse_defect("vacancy:S:2")


def test_defects_for_materials_gives_each_material_the_defects_of_its_elements():
    specs = ["sub:C:Si:0.1", "vacancy:S:0.02", "vacancy:C:0.01"]
    got = defects_for_materials(specs, materials=["graphene", "mos2", "hbn"])
    assert got == {
        "graphene": [Substitution("C", "Si", density=0.1), Vacancy("C", density=0.01)],
        "mos2": [Vacancy("S", density=0.02)],
    }
    assert defects_for_materials([], materials=["graphene"]) == {}
    with pytest.raises(ValueError, match=r"^defect vacancy:Mo:0.1 names an element none of"):
        defects_for_materials(["vacancy:C:0.1", "vacancy:Mo:0.1"], materials=["graphene"])
    with pytest.raises(ValueError, match="vacancy:ELEMENT:DENSITY"):  # parsed before loading
        defects_for_materials(["hole:S"], materials=["no-such-material"])
