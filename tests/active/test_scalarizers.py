"""Scalarizers on spectra with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from atomlens.active.scalarizers import (
    BandIntensity,
    PeakHeight,
    PeakPosition,
    PeakRatio,
    UserScalarizer,
    parse_scalarizer,
    scalarizer_from_dict,
)

E = np.arange(80.0, 130.0, 0.5)


def test_band_intensity_removes_a_power_law_background_exactly():
    background = 5e6 * E**-3.0
    edge = np.where(E >= 100.0, 2.0, 0.0)
    s = BandIntensity((100, 110), background=(85, 97))
    assert s(background + edge, E) == pytest.approx(2.0 * 21, rel=1e-9)
    assert BandIntensity((100, 110))(edge, E) == pytest.approx(42.0)
    stack = np.stack([background + edge, background + 2 * edge])
    np.testing.assert_allclose(s(stack, E), [42.0, 84.0], rtol=1e-9)


def test_peak_height_position_and_ratio():
    spec = 3.0 * np.exp(-0.5 * ((E - 104.3) / 1.5) ** 2) + 1.0
    assert PeakHeight((95, 115))(spec, E) == spec[E == 104.5][0]  # the top channel
    assert PeakPosition((95, 115))(spec, E) == pytest.approx(104.3, abs=0.02)
    flat = np.ones_like(E)
    assert PeakRatio((80, 89.5), (90, 109.5))(flat, E) == pytest.approx(0.5)
    assert UserScalarizer(lambda s, e: float(s.max()), name="max")(spec, E) == spec.max()


def test_text_and_json_forms_round_trip():
    for text in ("band:99:110", "band:99:110:85:97", "height:1:2", "position:1:2", "ratio:1:2:3:4"):
        s = parse_scalarizer(text)
        assert scalarizer_from_dict(s.to_dict()) == s


def test_bad_inputs_give_one_line_errors():
    with pytest.raises(ValueError, match="NaN"):
        BandIntensity((100, 110))(np.full_like(E, np.nan), E)
    with pytest.raises(ValueError, match="holds no channel"):
        BandIntensity((200, 210))(np.ones_like(E), E)
    with pytest.raises(ValueError, match="channels like the spectra"):
        PeakHeight((90, 100))(np.ones(5), E)
    with pytest.raises(ValueError, match="not understood"):
        parse_scalarizer("band:99")
    with pytest.raises(ValueError, match="low < high"):
        BandIntensity((110, 100))
    with pytest.raises(ValueError, match="pass the same `scalarizer`"):
        scalarizer_from_dict({"kind": "user", "name": "f"})
