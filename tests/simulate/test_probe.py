import math

import numpy as np
import pytest

from atomlens.simulate import AberratedProbe, GaussianProbe
from atomlens.simulate.probe import electron_wavelength_A


def _fwhm(profile) -> float:
    half = profile.value[0] / 2
    return 2 * float(np.interp(-half, -profile.value, profile.r_A))


def test_wavelength_known_values():
    # Relativistic wavelengths: 2.508 pm at 200 keV, 1.969 pm at 300 keV, 4.866 pm at 60 keV.
    assert electron_wavelength_A(200) == pytest.approx(0.02508, abs=2e-5)
    assert electron_wavelength_A(300) == pytest.approx(0.01969, abs=2e-5)
    assert electron_wavelength_A(60) == pytest.approx(0.04866, abs=2e-5)


def test_gaussian_profile_normalised_and_width():
    prof = GaussianProbe(fwhm_A=0.8).image_profile(0.0)
    dr = prof.r_A[1] - prof.r_A[0]
    assert np.sum(2 * np.pi * prof.value * prof.r_A) * dr == pytest.approx(1.0, abs=2e-3)
    assert _fwhm(prof) == pytest.approx(0.8, abs=0.01)
    # Column spread adds in quadrature.
    wide = GaussianProbe(fwhm_A=0.8).image_profile(0.2)
    assert wide.sigma_A == pytest.approx(math.hypot(0.8 / 2.3548, 0.2), rel=1e-3)


def test_aberration_free_probe_is_an_airy_disc():
    # Diffraction-limited probe: intensity FWHM = 0.514 λ/α, first zero at 0.61 λ/α.
    p = AberratedProbe(
        energy_keV=200, convergence_mrad=25, cs_mm=0.0, defocus_A=0.0, source_fwhm_A=0.0
    )
    prof = p.image_profile(0.0)
    lam_over_alpha = p.wavelength_A / 25e-3
    assert _fwhm(prof) == pytest.approx(0.514 * lam_over_alpha, rel=0.02)
    inner = prof.r_A < 0.8 * lam_over_alpha
    first_min = prof.r_A[inner][np.argmin(prof.value[inner])]
    assert first_min == pytest.approx(0.61 * lam_over_alpha, rel=0.03)
    # Encircled energy of an Airy pattern within the first dark ring: 83.8 %.
    assert prof.enclosed(0.61 * lam_over_alpha) == pytest.approx(0.838, abs=0.01)


def test_aberrations_and_source_size_broaden_the_probe():
    base = AberratedProbe(source_fwhm_A=0.0, cs_mm=0.0)
    defocused = AberratedProbe(source_fwhm_A=0.0, cs_mm=0.0, defocus_A=60.0)
    blurred = AberratedProbe(source_fwhm_A=0.8, cs_mm=0.0)
    uncorrected = AberratedProbe(source_fwhm_A=0.0, cs_mm=1.2, convergence_mrad=25)
    s0 = base.image_profile().sigma_A
    assert defocused.image_profile().sigma_A > 1.3 * s0
    assert blurred.image_profile().sigma_A > 1.3 * s0
    assert uncorrected.image_profile().sigma_A > 2 * s0
    for p in (defocused, blurred, uncorrected):
        prof = p.image_profile()
        dr = prof.r_A[1] - prof.r_A[0]
        assert np.sum(2 * np.pi * prof.value * prof.r_A) * dr == pytest.approx(1.0, abs=1e-6)


def test_r2_lookup_matches_interpolation():
    prof = AberratedProbe(defocus_A=20).image_profile(0.08)
    r = np.linspace(0, 5, 1001)
    got = prof.of_r2((r**2).astype(np.float32))
    np.testing.assert_allclose(got, prof(r), atol=1e-3 * prof.value[0])
    assert (prof.of_r2(np.float32([4.0]), r_max_A=1.0) == 0).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"convergence_mrad": 0},
        {"convergence_mrad": 300},
        {"energy_keV": -1},
        {"source_fwhm_A": -0.1},
    ],
)
def test_bad_probe_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        AberratedProbe(**kwargs)
