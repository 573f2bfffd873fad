"""The simulated microscope's hidden spectra against their closed form, noise, costs,
saving, and the replay of a spectrum image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atomlens.active.scalarizers import BandIntensity
from atomlens.experiment import (
    InstrumentAdapter,
    SimulatedMicroscope,
    SpectrumImageReplay,
    SpectrumModel,
    load_sample,
    read_spectrum_image,
    save_sample,
    simulate_sample,
)


def _micro(truth_rows, **spec):
    truth = pd.DataFrame(truth_rows, columns=["x_px", "y_px", "species"])
    return SimulatedMicroscope(
        image=np.zeros((60, 60)), truth=truth, pixel_size=0.2, spectrum=SpectrumModel(**spec)
    )


def test_expected_spectrum_is_the_documented_closed_form():
    # one Si with its three graphene neighbours 1.42 Å (7.1 px) away
    rows = [(30.0, 30.0, "Si")] + [
        (30 + 7.1 * np.cos(a), 30 + 7.1 * np.sin(a), "C") for a in (0, 2.094, 4.189)
    ]
    mic = _micro(rows)
    sp = mic.spectrum
    e = mic.energy
    assert mic.onsets_eV.tolist() == [sp.onset_eV]
    r_A = 0.6
    got = mic.expected([[30.0 + r_A / 0.2, 30.0]])[0]
    de = e - sp.onset_eV
    edge = np.exp(-de / 25.0) / (1 + np.exp(-de / 0.6))
    want = (
        sp.background * (e / e[0]) ** -3
        + sp.amplitude * np.exp(-(r_A**2) / (2 * sp.probe_width_A**2)) * edge
    )
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # a missing neighbour (vacancy) moves the onset up by 0.6 eV
    assert _micro(rows[:3]).onsets_eV.tolist() == [pytest.approx(sp.onset_eV + 0.6)]


def test_measurements_are_poisson_around_the_expected_counts_and_tallied():
    mic = _micro([(30.0, 30.0, "Si")], dwell_s=0.2)
    spectra = np.stack([mic.measure(30.0 + 0.001 * k, 30.0) for k in range(400)])
    lam = mic.expected([[30.0, 30.0]])[0]
    np.testing.assert_allclose(spectra.mean(0), lam, rtol=5 * (1 / np.sqrt(400 * lam)).max())
    np.testing.assert_allclose(spectra.var(0).mean() / lam.mean(), 1.0, atol=0.1)
    assert mic.time_s == pytest.approx(80.0)
    assert mic.dose_given == pytest.approx(400 * mic.spectrum.dose_per_spectrum)
    # the noise depends on the position and its visits, not on the order of measurements
    a, b = _micro([(30.0, 30.0, "Si")]), _micro([(30.0, 30.0, "Si")])
    a.measure(5, 5)
    np.testing.assert_array_equal(a.measure(30, 30), b.measure(30, 30))
    with pytest.raises(ValueError, match="outside the 60×60 overview"):
        mic.measure(70, 3)


def test_simulated_sample_has_its_dopants_and_round_trips(tmp_path):
    mic = simulate_sample(shape=120, n_dopants=2, n_vacancies=1, seed=3)
    assert len(mic.dopants_px) == 2
    assert sorted(mic.onsets_eV.round(3).tolist()) == [99.5, 100.1]  # one beside a vacancy
    s = BandIntensity((99, 115), background=(85, 97))
    at_dopant = mic.property_map(mic.dopants_px, s)
    far = mic.property_map(np.array([[2.0, 2.0]]), s)
    assert (at_dopant > 1000).all() and abs(far[0]) < 1.0
    # the Si columns are the brightest in the overview
    x, y = np.rint(mic.dopants_px[0]).astype(int)
    assert mic.image[y - 1 : y + 2, x - 1 : x + 2].max() > np.percentile(mic.image, 99.5)
    save_sample(mic, tmp_path / "s")
    back = load_sample(tmp_path / "s")
    np.testing.assert_array_equal(back.measure(40, 50), mic.measure(40, 50))
    with pytest.raises(FileNotFoundError, match="not a saved simulated sample"):
        load_sample(tmp_path)


def test_spectrum_image_replay(tmp_path):
    cube = np.random.default_rng(0).poisson(5.0, (8, 10, 30)).astype(float)
    np.save(tmp_path / "cube.npy", cube)
    src = read_spectrum_image(tmp_path / "cube.npy", pixel_size=0.5)
    np.testing.assert_array_equal(src.measure(7, 3), cube[3, 7])
    np.testing.assert_array_equal(src.overview(), cube.sum(-1))
    with pytest.raises(ValueError, match="outside the 8×10 spectrum image"):
        src.measure(10, 0)
    with pytest.raises(ValueError, match=r"must be \(H, W, E\)"):
        SpectrumImageReplay(np.zeros((4, 4)))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_spectrum_image(tmp_path / "none.npy")


def test_the_adapter_stub_names_what_a_driver_implements():
    with pytest.raises(TypeError, match="abstract"):
        InstrumentAdapter()  # type: ignore[abstract]
    assert {"overview", "measure"} <= InstrumentAdapter.__abstractmethods__
