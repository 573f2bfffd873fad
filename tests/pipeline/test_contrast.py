"""Bright or dark atoms: `contrast` (or, with "auto", the file's detector) says which, and
an image of the other contrast than the model's is inverted for the network; an image that
only looks opposite gets a warning naming the fix."""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from atomlens.pipeline import FindSettings, atom_contrast, find, find_files
from atomlens.simulate import ImagingConditions, simulate_image
from atomlens.simulate.imaging import Background

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "srtio3_atomap"


def _sim(material, mode, dose, film=0.0, seed=0, shape=160):
    c = ImagingConditions(
        mode=mode, dose_e_per_A2=dose, background=Background(film_thickness_A=film)
    )
    return simulate_image(material, shape=shape, pixel_size=0.1, conditions=c, rng=seed)


@pytest.mark.parametrize("material", ["srtio3", "mos2"])
@pytest.mark.parametrize("dose", [1e3, 1e4, 1e5, 1e6])
@pytest.mark.parametrize("film", [0.0, 30.0])
def test_auto_sees_dark_atoms_in_bf_but_keeps_the_model_s_contrast(material, dose, film):
    for mode, looks in (("haadf", None), ("bf", "dark")):
        im = _sim(material, mode, dose, film).image
        dec = atom_contrast(im, pixel_size=0.1)
        assert dec.atoms == "bright" and dec.looks == looks, (mode, dec)
        assert "skewness" in dec.reason and abs(dec.skewness) > 0.4  # margin over 0.2


def test_the_file_s_signal_type_comes_before_the_image():
    im = _sim("srtio3", "haadf", 1e5).image
    assert atom_contrast(im, pixel_size=0.1, signal_type="ABF").atoms == "dark"
    assert atom_contrast(im, pixel_size=0.1, signal_type="BF").atoms == "dark"
    bf = _sim("srtio3", "bf", 1e5).image
    dec = atom_contrast(bf, pixel_size=0.1, signal_type="HAADF")
    assert dec.atoms == "bright" and "signal type HAADF" in dec.reason
    says_nothing = atom_contrast(bf, pixel_size=0.1, signal_type="EELS")
    assert (says_nothing.atoms, says_nothing.looks) == ("bright", "dark")


def test_an_explicit_setting_overrides_everything():
    bf = _sim("srtio3", "bf", 1e5).image
    dec = atom_contrast(bf, pixel_size=0.1, contrast="bright", signal_type="ABF")
    assert (dec.atoms, dec.reason) == ("bright", "as set")


def test_an_image_that_does_not_tell_keeps_the_model_s_contrast():
    flat = np.random.default_rng(0).normal(100, 1, (64, 64))
    assert atom_contrast(flat, pixel_size=0.1, model_contrast="haadf").atoms == "bright"
    assert atom_contrast(flat, pixel_size=0.1, model_contrast="bf").atoms == "dark"
    assert atom_contrast(np.ones((64, 64)), pixel_size=0.1).skewness is None


def test_a_bad_contrast_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="contrast must be 'auto', 'bright'"):
        FindSettings(contrast="abf")
    with pytest.raises(ValueError, match="'dark'"):
        atom_contrast(np.zeros((8, 8)), pixel_size=0.1, contrast="inverted")


def test_a_bf_image_is_warned_about_and_inverted_when_told(caplog):
    sim = _sim("srtio3", "bf", 1e5, shape=192, seed=1)
    truth = sim.truth[["x_A", "y_A"]].to_numpy()
    with caplog.at_level("WARNING"):
        auto = find(sim.image, pixel_size=0.1)
    assert auto.contrast.atoms == "bright" and auto.contrast.looks == "dark"
    assert "pass `contrast='dark'`" in caplog.text
    d, _ = cKDTree(truth).query(auto.atoms[["x_A", "y_A"]].to_numpy())
    assert np.median(d) > 0.5  # between the columns, as the warning says
    told = find(sim.image, pixel_size=0.1, contrast="dark")
    assert told.contrast.reason == "as set"
    d, _ = cKDTree(truth).query(told.atoms[["x_A", "y_A"]].to_numpy())
    assert len(told.atoms) > 0.5 * len(truth)
    assert np.median(d) < 0.2  # on the columns, not between them (≈ 1 Å away)


def _median_offset(a, b):
    return float(np.median(cKDTree(b[["x_A", "y_A"]]).query(a[["x_A", "y_A"]])[0]))


@pytest.mark.skipif(not REAL.exists(), reason="../shared/data/real is not here")
def test_real_abf_atoms_sit_on_the_adf_columns_of_the_same_area(tmp_path, caplog):
    adf = find(REAL / "SrTiO3_ADF.hspy")
    assert adf.contrast.atoms == "bright" and adf.contrast.looks is None
    with caplog.at_level("WARNING"):
        auto = find(REAL / "SrTiO3_ABF.hspy")  # the file does not say its detector
    assert auto.contrast.looks == "dark" and "pass `contrast='dark'`" in caplog.text
    assert _median_offset(adf.atoms, auto.atoms) > 0.5  # between the columns: warned
    abf = find_files(
        REAL / "SrTiO3_ABF.hspy", model="haadf-generic", out=tmp_path / "abf", contrast="dark"
    )
    assert abf.files[0]["contrast"] == "dark (as set)"
    assert "dark (as set)" in (tmp_path / "abf" / "report.html").read_text()
    # every ADF column has an ABF atom on it (ABF also shows the O columns ADF does not)
    assert _median_offset(adf.atoms, abf.atoms) < 0.2
