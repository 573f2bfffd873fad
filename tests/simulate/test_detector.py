"""Detector effects: hot and dead pixels, saturation, gain drift and line-to-line gain jitter."""

import math
from dataclasses import replace

import numpy as np
import pytest

from atomlens.simulate import (
    Background,
    ConditionRanges,
    Detector,
    GaussianProbe,
    ImagingConditions,
    simulate_image,
)
from atomlens.simulate.imaging import apply_detector

SATURATION = 1e6  # far above any pixel's counts: only hot pixels reach it


def _binomial_sd(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def test_hot_and_dead_pixel_shares_follow_the_asked_shares():
    det = Detector(hot_pixel_share=0.01, dead_pixel_share=0.005, saturation_counts=SATURATION)
    film = Background(film_thickness_A=10.0)  # about 100 counts per pixel between columns
    cond = ImagingConditions(dose_e_per_A2=1e6, background=film, detector=det)
    sim = simulate_image("mos2", shape=128, pixel_size=0.1, conditions=cond, rng=0)
    n = sim.image.size
    hot = sim.image == np.float32(SATURATION)
    dead = sim.image == 0
    assert abs(hot.mean() - 0.01) < 4 * _binomial_sd(0.01, n)
    assert abs(dead.mean() - 0.005) < 4 * _binomial_sd(0.005, n)
    # every other pixel is what the detector counted: no zeros (dose ≫ 1 count) nor clipping
    assert sim.image.max() == np.float32(SATURATION)
    assert (sim.image[~hot & ~dead] > 0).all()
    # the truth and the expected image do not see the detector
    clean = simulate_image(
        "mos2", shape=128, pixel_size=0.1, conditions=replace(cond, detector=Detector()), rng=0
    )
    np.testing.assert_array_equal(sim.expected, clean.expected)
    np.testing.assert_array_equal(sim.truth[["x_px", "y_px"]], clean.truth[["x_px", "y_px"]])


def test_hot_pixels_without_a_saturation_level_read_the_frames_top_value():
    counts = np.random.default_rng(1).poisson(50.0, (200, 200)).astype(np.float32)
    out = apply_detector(
        counts, detector=Detector(hot_pixel_share=0.002), rng=np.random.default_rng(2)
    )
    hot = out != counts
    assert abs(hot.mean() - 0.002) < 4 * _binomial_sd(0.002, counts.size) + 1e-4
    assert (out[hot] == counts.max()).all()


def test_saturation_clips_the_bright_pixels():
    cond = ImagingConditions(dose_e_per_A2=1e6, detector=Detector(saturation_counts=300.0))
    sim = simulate_image("mos2", shape=96, pixel_size=0.1, conditions=cond, rng=3)
    assert sim.image.max() == np.float32(300.0)
    assert (sim.image[sim.expected > 400] == np.float32(300.0)).all()


def test_gain_drift_row_means_of_a_flat_image_follow_the_drift():
    # a flat field of 2000 counts per pixel: each row mean has 0.07 % shot noise
    h, w, drift = 200, 150, 0.05
    counts = np.random.default_rng(4).poisson(2000.0, (h, w)).astype(np.float32)
    out = apply_detector(
        counts, detector=Detector(gain_drift_per_100_rows=drift), rng=np.random.default_rng(5)
    )
    t = np.arange(h) + (w - 1) / (2 * w)  # mean scan time of each row [rows]
    ratio = out.mean(axis=1) / counts.mean(axis=1)
    np.testing.assert_allclose(ratio, 1 + drift * t / 100, rtol=1e-6)
    row_means = out.mean(axis=1) / 2000.0
    assert np.abs(row_means - (1 + drift * t / 100)).max() < 5 * math.sqrt(2000.0 / w) / 2000.0
    slope = np.polyfit(t, row_means, 1)[0]
    assert slope * 100 == pytest.approx(drift, abs=0.002)


def test_gain_drift_and_line_jitter_in_a_bright_field_frame():
    # bright field: the vacuum-like bright background carries the gain, row by row
    drift, jitter = -0.04, 0.01
    det = Detector(gain_drift_per_100_rows=drift, line_gain_jitter=jitter)
    cond = ImagingConditions(mode="bf", dose_e_per_A2=2e5, probe=GaussianProbe(), detector=det)
    sim = simulate_image("graphene", shape=(160, 128), pixel_size=0.1, conditions=cond, rng=6)
    ratio = sim.image.sum(axis=1) / sim.expected.sum(axis=1)
    t = np.arange(160) + 127 / 256
    trend = 1 + drift * t / 100
    fit = np.polyfit(t, ratio, 1)
    assert fit[0] * 100 == pytest.approx(drift, abs=0.004)
    resid = ratio / trend - 1
    shot = 1 / math.sqrt(sim.expected.sum(axis=1).mean())  # relative noise of a row sum
    measured = math.sqrt(max(resid.var() - shot**2, 0.0))
    assert measured == pytest.approx(jitter, rel=0.25)


def test_identity_detector_changes_nothing_and_draws_nothing():
    rng = np.random.default_rng(0)
    counts = rng.poisson(5.0, (32, 32)).astype(np.float32)
    g = np.random.default_rng(9)
    state = g.bit_generator.state
    np.testing.assert_array_equal(apply_detector(counts, detector=Detector(), rng=g), counts)
    assert g.bit_generator.state == state


def test_detector_round_trips_through_conditions_json():
    det = Detector(hot_pixel_share=1e-3, saturation_counts=4000.0, gain_drift_per_100_rows=-0.01)
    cond = ImagingConditions(detector=det)
    back = ImagingConditions.from_dict(cond.to_dict())
    assert back == cond
    assert ImagingConditions.from_dict({"read_noise": 1.0}).detector == Detector()
    with pytest.raises(ValueError, match="unknown detector keys"):
        ImagingConditions.from_dict({"detector": {"hot_pixels": 0.1}})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hot_pixel_share": 0.7}, "hot_pixel_share"),
        ({"dead_pixel_share": -0.1}, "dead_pixel_share"),
        ({"saturation_counts": 0.0}, "saturation_counts"),
        ({"gain_drift_per_100_rows": float("nan")}, "gain_drift_per_100_rows"),
        ({"line_gain_jitter": 0.5}, "line_gain_jitter"),
    ],
)
def test_detector_refuses_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Detector(**kwargs)


def test_a_drift_that_would_zero_the_gain_is_refused():
    with pytest.raises(ValueError, match="gain_drift_per_100_rows"):
        apply_detector(
            np.ones((300, 8)),
            detector=Detector(gain_drift_per_100_rows=-0.5),
            rng=np.random.default_rng(0),
        )


def test_condition_ranges_draw_detector_effects_only_when_asked():
    off = ConditionRanges(shape=64).draw(np.random.default_rng(0))
    assert off["conditions"].detector.is_identity
    on = ConditionRanges(
        shape=64,
        hot_pixel_share=(1e-4, 1e-3),
        dead_pixel_share=1e-4,
        gain_drift_per_100_rows=(0.0, 0.05),
        line_gain_jitter=(0.0, 0.02),
    )
    dets = [on.draw(np.random.default_rng(s))["conditions"].detector for s in range(20)]
    assert all(1e-4 <= d.hot_pixel_share <= 1e-3 for d in dets)
    assert all(d.dead_pixel_share == 1e-4 for d in dets)
    assert all(abs(d.gain_drift_per_100_rows) <= 0.05 for d in dets)
    assert {np.sign(d.gain_drift_per_100_rows) for d in dets} == {-1.0, 1.0}
    assert ConditionRanges.from_dict(on.to_dict()) == on
    with pytest.raises(ValueError, match="hot_pixel_share"):
        ConditionRanges(hot_pixel_share=(0.0, 0.6))
