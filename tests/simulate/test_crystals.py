"""The built-in crystals give the projected column spacings a microscopist knows."""

import math

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from scipy.spatial import cKDTree

from atomlens.simulate import (
    MATERIALS,
    ImagingConditions,
    load_material,
    material_table,
    simulate_image,
)
from atomlens.simulate.structures import tile_cell
from tests.common import assert_coordinates_close


def _nearest_column_A(cell) -> float:
    xy, _ = tile_cell(cell, radius_A=15.0)
    d, _ = cKDTree(xy).query(xy, k=2)
    return float(d[:, 1].min())


@pytest.mark.parametrize(
    ("name", "expected_A"),
    [
        ("au[001]", 4.078 / 2),  # fcc [001]: a/2
        ("au[110]", 4.078 * math.sqrt(3 / 8)),  # fcc [110]: centred a × a/√2
        ("si[110]", 5.431 / 4),  # the dumbbell
        ("gaas[110]", 5.653 / 4),
        ("fe[001]", 2.866 / math.sqrt(2)),  # bcc [001]: centred square of side a
        ("mg[001]", 3.209 / math.sqrt(3)),  # hcp [0001]: honeycomb of A and B columns
        ("mgo[001]", 4.212 / 2),  # rock salt [001]: Mg and O columns alternate
        ("srtio3[110]", 3.905 / (2 * math.sqrt(2))),  # O columns beside the Ti–O ones
    ],
)
def test_projected_column_spacing(name, expected_A):
    assert _nearest_column_A(load_material(name)) == pytest.approx(expected_A, abs=0.005)


def test_every_listed_axis_projects_and_columns_are_resolvable():
    for key, spec in MATERIALS.items():
        for axis in spec.zone_axes or (spec.zone_axis,):
            cell = load_material(key, zone_axis=axis)
            assert len(cell.positions) >= 1
            # columns closer than 0.5 Å are one blur to any STEM: none are listed apart
            # except the wurtzite [10-10] pairs (0.6 Å), which are real
            assert _nearest_column_A(cell) > 0.55, (key, axis)


def test_column_contents_per_thickness():
    """Atoms per column per Å of thickness = the crystal's density × the column's area."""
    si = load_material("si[110]")
    assert sorted(set(si.column_labels())) == ["Si"]
    area = abs(si.a[0] * si.b[1] - si.a[1] * si.b[0]) / len(si.positions)  # [Å²] per column
    per_column = si.counts.sum() / len(si.positions) / si.thickness_A
    assert per_column == pytest.approx(8 / 5.431**3 * area, rel=1e-6)
    assert sorted(set(load_material("gan[110]").column_labels())) == ["Ga", "N"]


def test_name_with_zone_axis():
    assert load_material("si[110]") is load_material("si", zone_axis=(1, 1, 0))
    assert load_material("SI[1,1,0]") is load_material("si", zone_axis=(1, 1, 0))
    assert load_material("au[1-10]").name == "au[1-10]"
    assert load_material("si[110]", zone_axis=(1, 1, 0)).name == "si[110]"
    with pytest.raises(ValueError, match="names zone axis"):
        load_material("si[110]", zone_axis=(0, 0, 1))
    with pytest.raises(ValueError, match="three integers"):
        load_material("si[11]")


def test_table_lists_every_material_with_its_axes():
    rows = material_table()
    assert [r["name"] for r in rows] == list(MATERIALS)
    assert next(r for r in rows if r["name"] == "gan")["zone_axes"].startswith("[110]")


def test_a_new_crystal_simulates_with_truth():
    sim = simulate_image("si[110]", shape=128, pixel_size=0.1, rng=0)
    d, _ = cKDTree(sim.truth[["x_A", "y_A"]].to_numpy()).query(
        sim.truth[["x_A", "y_A"]].to_numpy(), k=2
    )
    assert np.median(d[:, 1]) == pytest.approx(5.431 / 4, abs=0.01)


@pytest.mark.parametrize(
    ("builder", "zone", "expected_A"),
    [
        (lambda: bulk("Si", "diamond", a=5.431, cubic=True), (1, 1, 0), 5.431 / 4),  # the dumbbell
        (lambda: bulk("Au", "fcc", a=4.078, cubic=True), (0, 0, 1), 4.078 / 2),
        (lambda: bulk("Fe", "bcc", a=2.866, cubic=True), (1, 1, 1), 2.866 * math.sqrt(2 / 3)),
    ],
)
def test_structure_from_a_cif_and_zone_axis(tmp_path, builder, zone, expected_A):
    """A CIF written by another program (here ASE) and a zone axis give the projected
    column spacing a microscopist knows (bcc [111]: a hexagonal net of side a·√(2/3))."""
    path = tmp_path / "crystal.cif"
    ase.io.write(path, builder(), format="cif")
    assert _nearest_column_A(load_material(path, zone_axis=zone)) == pytest.approx(
        expected_A, abs=0.005
    )


def test_abf_shows_light_columns_as_dips():
    """Bright field with ABF's slow Z dependence (γ 0.5) shows SrTiO3 [110]'s pure O columns
    as dips below the background, a third or more as deep as the Sr ones; HAADF's γ 1.7
    makes them far fainter relative to Sr."""

    def dips(mode, gamma):
        cond = ImagingConditions(mode=mode, gamma=gamma, dose_e_per_A2=1e6)
        sim = simulate_image("srtio3[110]", shape=128, pixel_size=0.1, conditions=cond, rng=3)
        t = sim.truth[sim.truth.x_px.between(8, 119) & sim.truth.y_px.between(8, 119)]
        ex = sim.expected
        at = ex[np.round(t.y_px).astype(int), np.round(t.x_px).astype(int)]
        depth = np.abs(at - np.percentile(ex, 50 if mode == "bf" else 5))
        o = t["composition"].str.fullmatch(r"O\d*").to_numpy()
        sr = (t["class"] == "SrO").to_numpy()  # Sr and O share these columns
        assert o.sum() >= 10 and sr.sum() >= 10
        if mode == "bf":
            assert (at[o] < np.median(ex)).all()  # every O column is a dip
        return np.median(depth[o]) / np.median(depth[sr])

    abf, haadf = dips("bf", 0.5), dips("haadf", 1.7)
    assert abf > 0.33
    assert abf > 2 * haadf


def test_columns_the_image_does_not_show_are_not_labelled():
    """``label_min_share`` leaves columns fainter than that share of the bright ones (Σ Z^γ)
    out of labels and truth: SrTiO3 [110]'s pure O columns (0.13 of SrO's at γ 1.7) in
    HAADF, not in ABF-like bright field (γ 0.5, 0.6 of SrO's); Si's equal columns stay."""

    def classes(material, mode, gamma, share):
        cond = ImagingConditions(mode=mode, gamma=gamma)
        sim = simulate_image(
            material, shape=96, pixel_size=0.1, conditions=cond, rng=2, label_min_share=share
        )
        labelled = int((sim.masks[1:].sum(axis=0) > 0).sum())
        return set(sim.truth["class"]), labelled

    every, px_every = classes("srtio3[110]", "haadf", 1.7, 0.0)
    shown, px_shown = classes("srtio3[110]", "haadf", 1.7, 0.25)
    assert every == {"SrO", "Ti", "O"} and shown == {"SrO", "Ti"}
    assert px_shown < 0.75 * px_every  # the O disks are gone from the masks too
    assert classes("srtio3[110]", "bf", 0.5, 0.25)[0] == {"SrO", "Ti", "O"}
    assert classes("si[110]", "haadf", 1.7, 0.25)[1] == classes("si[110]", "haadf", 1.7, 0.0)[1]
    # the columns left out are kept apart as `hidden`: together with the truth, every column
    cond = ImagingConditions(mode="haadf", gamma=1.7)
    full, part = (
        simulate_image(
            "srtio3[110]", shape=96, pixel_size=0.1, conditions=cond, rng=2, label_min_share=s
        )
        for s in (0.0, 0.25)
    )
    assert len(full.hidden) == 0 and set(part.hidden["class"]) == {"O"}
    assert len(part.truth) + len(part.hidden) == len(full.truth)
    both = np.r_[part.truth[["x_px", "y_px"]], part.hidden[["x_px", "y_px"]]]
    assert_coordinates_close(both, full.truth[["x_px", "y_px"]].to_numpy(), atol=1e-9)
    with pytest.raises(ValueError, match="label_min_share"):
        simulate_image("graphene", shape=32, label_min_share=1.0)
