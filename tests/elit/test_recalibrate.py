"""Calibration for new frames without labels, and rejecting atoms by their p_real."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from atomlens.elit.recalibrate import recalibrate, styled_validation
from atomlens.metrics import match_points
from atomlens.pipeline import find
from atomlens.simulate import Background, ConditionRanges, ImagingConditions, simulate_image
from atomlens.train import fit_calibration
from atomlens.train.validation import ValidationSet
from tests.common import perturbed_ensemble

PS = 0.12  # Å/px (the tiny model was trained at 0.25 Å/px)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _training_calibration(ens, model):
    """What train_ensemble measures: simulated images of the training conditions."""
    ranges = ConditionRanges.from_dict(model.config.provenance["simulation"])
    val = ValidationSet.simulated(ranges, n_images=8, shape=192, seed=20_000)
    return fit_calibration(ens, val.images, val.truths, val.pixel_sizes)


def _brier(ens, sims):
    """Mean squared difference between p_real and "is a true atom" over all candidates."""
    out = []
    for s in sims:
        a = find(s.image, model=ens, pixel_size=PS, p_min=1e-6).atoms
        t = s.truth[["x_px", "y_px"]].to_numpy(float)
        m = match_points(a[["x_px", "y_px"]].to_numpy(float), t, radius=0.5 / PS)
        real = np.zeros(len(a))
        real[m.pred_index] = 1
        out.append(np.mean((a["p_real"].to_numpy(float) - real) ** 2))
    return float(np.mean(out))


def test_recalibration_in_the_frames_look_tells_real_atoms_better_under_a_film(tiny_model):
    """The tiny model never saw a film: a calibration measured on its training conditions
    is over-confident under one; measured on simulated images that carry the frames' own
    film and noise (no labels of the frames used), p_real matches the truth better."""
    film = ImagingConditions(dose_e_per_A2=2e5, background=Background(film_thickness_A=10.0))
    sims = [
        simulate_image("graphene", shape=192, pixel_size=PS, rng=300 + i, conditions=film)
        for i in range(9)
    ]
    frames, held = [s.image for s in sims[:3]], sims[3:]
    ens = perturbed_ensemble(tiny_model)
    ens.calibration = _training_calibration(ens, tiny_model)
    before = [_brier(ens, [s]) for s in held]
    ens.calibration = recalibrate(ens, frames, pixel_size=PS)
    after = [_brier(ens, [s]) for s in held]
    # Measured (2026-12-05) on these 6 held frames: 0.356 → 0.310 (−12.7 %), each frame
    # by 10–16 %. The styled images' seed here (0) is the weakest of those measured: seeds
    # 1–8 −15 to −27 % (median −25 %), two other sets of frames −16 % and −17 %; no effect,
    # recalibrated on 3 film-free frames instead, 0.0 %. The bar (−10 %) keeps a fifth of
    # the effect as margin and stays far from no effect; every frame must gain. On the
    # first 2 frames: 0.42 → 0.30 when the test was written, 0.352 → 0.301 before find
    # placed border columns by their cut disks (2026-11-29), 0.349 → 0.303 after (the
    # uncalibrated p_real improved, and a fixed drop of 0.05 no longer held).
    assert np.mean(after) < 0.9 * np.mean(before), (before, after)
    assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)


def test_styled_validation_images_have_the_frames_sampling_and_exact_atoms(tiny_model):
    frames = [
        simulate_image("graphene", shape=192, pixel_size=PS, rng=310 + i).image for i in range(2)
    ]
    val = styled_validation(tiny_model, frames, pixel_size=PS, images=3, seed=5)
    assert len(val.images) == 3 and len(val.truths) == 3
    # the frames are at 0.12 Å/px, the model at 0.25: the images are at the model's sampling
    # (its range, read off the frames' lattice) and of the frames' size there (92 → 88 px)
    assert all(im.shape == (88, 88) for im in val.images)
    assert all(abs(ps / tiny_model.config.pixel_size_A - 1) < 0.05 for ps in val.pixel_sizes)
    assert all(len(t) > 20 for t in val.truths)
    again = styled_validation(tiny_model, frames, pixel_size=PS, images=3, seed=5)
    np.testing.assert_array_equal(val.images[1], again.images[1])  # seeded
    with pytest.raises(ValueError, match="images must be"):
        styled_validation(tiny_model, frames, pixel_size=PS, images=0)
    noise = np.random.default_rng(0).normal(size=(192, 192)).astype(np.float32)
    with pytest.raises(ValueError, match="crystal lattice"):
        styled_validation(tiny_model, [noise], pixel_size=PS)


def test_p_real_min_moves_unlikely_atoms_to_rejected(tiny_model):
    ens = perturbed_ensemble(tiny_model)
    film = ImagingConditions(dose_e_per_A2=2e5, background=Background(film_thickness_A=10.0))
    sims = [
        simulate_image("graphene", shape=192, pixel_size=PS, rng=330 + i, conditions=film)
        for i in range(3)
    ]
    sim = sims[2]
    with pytest.raises(ValueError, match=r"p_real_min.*no calibration"):
        find(sim.image, model=ens, pixel_size=PS, p_real_min=0.5)
    ens.calibration = recalibrate(ens, [s.image for s in sims[:2]], pixel_size=PS, images=6)
    with pytest.raises(ValueError, match="within"):
        find(sim.image, model=ens, pixel_size=PS, p_real_min=1.5)
    plain = find(sim.image, model=ens, pixel_size=PS)
    strict = find(sim.image, model=ens, pixel_size=PS, p_real_min=0.5)
    assert (strict.atoms["p_real"] >= 0.5).all()
    low = plain.atoms[plain.atoms["p_real"] < 0.5]
    assert len(low) > 0, "the test needs candidates below p_real 0.5"
    assert len(strict.atoms) == len(plain.atoms) - len(low)
    assert len(strict.rejected) == len(plain.rejected) + len(low)
    # nothing is lost: the rejected table holds them with their evidence
    moved = strict.rejected.tail(len(low))
    pd.testing.assert_frame_equal(
        moved.reset_index(drop=True)[["x_px", "y_px", "p_real"]],
        low.reset_index(drop=True)[["x_px", "y_px", "p_real"]],
    )
    # "auto": the threshold with the best F1 on the calibration's own images
    cal = ens.calibration
    assert cal.p_real_thresholds[0] == 0 and len(cal.f1) == len(cal.p_real_thresholds)
    assert all(0 < f <= 1 for f in cal.f1) and cal.best_p_real_min in cal.p_real_thresholds
    auto = find(sim.image, model=ens, pixel_size=PS, p_real_min="auto")
    cut = find(sim.image, model=ens, pixel_size=PS, p_real_min=cal.best_p_real_min)
    pd.testing.assert_frame_equal(auto.atoms, cut.atoms)
    ens.calibration = replace(cal, f1=None, p_real_thresholds=None)  # an older calibration
    with pytest.raises(ValueError, match="predates"):
        find(sim.image, model=ens, pixel_size=PS, p_real_min="auto")
