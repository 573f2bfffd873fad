"""Tests for atomlens.metrics.border: the one border rule of validation, calibration and
benchmarks (``score_atoms``, ``inside_margin``), on tables small enough to score by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atomlens.metrics import inside_margin, score_atoms, shown_columns


def _table(xy) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(xy, float).reshape(-1, 2), columns=["x_px", "y_px"])


def test_inside_margin_is_inclusive_and_reads_x_along_the_width():
    # (H, W) = (20, 30), margin 2 px: inside is 2 ≤ x ≤ 27 and 2 ≤ y ≤ 17
    xy = np.array(
        [
            [2.0, 2.0],  # on the margin: inside
            [27.0, 17.0],  # on the far margin: inside
            [1.99, 10.0],  # just outside on the left
            [10.0, 17.01],  # just outside at the bottom
            [25.0, 5.0],  # inside a 20 × 30 image, outside a 30 × 20 one
        ]
    )
    assert inside_margin(xy, (20, 30), 2.0).tolist() == [True, True, False, False, True]
    assert inside_margin(xy, (30, 20), 2.0).tolist() == [True, False, False, True, False]
    # leading dimensions (a stack, channels) are ignored
    assert inside_margin(xy, (3, 20, 30), 2.0).tolist() == [True, True, False, False, True]
    assert inside_margin(np.zeros((0, 2)), (20, 30), 2.0).shape == (0,)


# An image of (H, W) = (20, 30) px at 0.5 Å/px: radius 0.5 Å = 1 px, margin 1 Å = 2 px.
PS, SHAPE = 0.5, (20, 30)
TRUTH = _table(
    [
        [10.0, 10.0],  # T0 inside, matched by F0
        [2.5, 10.0],  # T1 inside, matched by F1 which lies in the border band
        [1.5, 5.0],  # T2 in the band, matched by F2 which lies inside
        [15.0, 15.0],  # T3 inside, unmatched: a false negative
        [0.5, 18.0],  # T4 in the band, unmatched: not counted
    ]
)
FOUND = _table(
    [
        [10.3, 9.6],  # F0 → T0, error (+0.3, −0.4) px = (+0.15, −0.20) Å
        [1.7, 10.0],  # F1 → T1 across the margin, error (−0.8, 0) px = (−0.40, 0) Å
        [2.3, 5.0],  # F2 → T2 across the margin the other way
        [20.0, 5.0],  # F3 inside, unmatched: a false positive
        [29.0, 10.0],  # F4 in the band, unmatched: not counted
    ]
)


def test_score_atoms_counts_by_the_true_atom_and_leaves_the_border_band_out():
    s = score_atoms(FOUND, TRUTH, shape=SHAPE, pixel_size=PS)
    # pairs count when their true atom is inside (T0, T1, not T2); unmatched atoms count
    # when they are inside themselves (T3, F3, not T4, F4)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 1)
    assert s["true_index"].tolist() == [0, 1]
    # squared x and y errors [Å²] of the pairs counted, x then y per pair, in found order
    np.testing.assert_allclose(s["sq_err_A2"], [0.0225, 0.04, 0.16, 0.0], atol=1e-12)
    # the pair whose found atom is inside but whose true atom is not (F2 → T2) is matched,
    # so F2 is no false positive either
    assert 2 not in s["true_index"]


def test_score_atoms_margin_and_radius_are_in_angstrom():
    # no margin: every atom counts
    s = score_atoms(FOUND, TRUTH, shape=SHAPE, pixel_size=PS, margin_A=0.0)
    assert (s["tp"], s["fp"], s["fn"]) == (3, 2, 2)
    assert s["true_index"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(s["sq_err_A2"][4:], [0.16, 0.0], atol=1e-12)  # F2 → T2
    # a radius of 0.3 Å (0.6 px) keeps F0 → T0 (0.5 px) and loses the pairs 0.8 px apart:
    # T1 (inside) becomes a false negative and F2 (inside) a false positive, while F1 and
    # T2, in the band, count neither way
    s = score_atoms(FOUND, TRUTH, shape=SHAPE, pixel_size=PS, radius_A=0.3)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 2, 2)
    np.testing.assert_allclose(s["sq_err_A2"], [0.0225, 0.04], atol=1e-12)
    # the same tables at 0.25 Å/px: the margin (4 px) now takes in T1 and the radius (2 px)
    # lets F2 → T2 stand as before
    s = score_atoms(FOUND, TRUTH, shape=SHAPE, pixel_size=0.25)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1)
    assert s["true_index"].tolist() == [0]


def test_score_atoms_matches_within_half_an_angstrom_by_default():
    # one atom 0.45 Å from its column, one 0.55 Å: by default only the first is a pair
    truth = _table([[30, 30], [60, 30]])
    found = _table([[34.5, 30], [65.5, 30]])
    s = score_atoms(found, truth, shape=(100, 100), pixel_size=0.1)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1)
    assert s["true_index"].tolist() == [0]


def test_score_atoms_with_nothing_found_or_nothing_true():
    s = score_atoms(FOUND.iloc[:0], TRUTH, shape=SHAPE, pixel_size=PS)
    assert (s["tp"], s["fp"], s["fn"]) == (0, 0, 3)  # T0, T1, T3
    s = score_atoms(FOUND, TRUTH.iloc[:0], shape=SHAPE, pixel_size=PS)
    assert (s["tp"], s["fp"], s["fn"]) == (0, 3, 0)  # F0, F2, F3
    assert s["sq_err_A2"].shape == (0,) and s["true_index"].shape == (0,)


@pytest.mark.parametrize("shift_px", [0.3, -0.45])
def test_score_atoms_sees_a_shift_of_every_atom_in_its_errors(shift_px):
    """What the end-to-end tests read off ``sq_err_A2``: a shift of every found atom along
    x shows as its square in the x errors and leaves the y errors alone."""
    g = np.arange(4.0, 26.0, 3.0)
    truth = _table(np.stack(np.meshgrid(g, g[:4]), -1).reshape(-1, 2))
    found = truth.assign(x_px=truth["x_px"] + shift_px)
    s = score_atoms(found, truth, shape=SHAPE, pixel_size=PS)
    assert s["tp"] == len(truth) and s["fp"] == s["fn"] == 0
    err = s["sq_err_A2"].reshape(-1, 2)
    np.testing.assert_allclose(err[:, 0], (shift_px * PS) ** 2)
    np.testing.assert_allclose(err[:, 1], 0.0, atol=1e-24)


def test_ignored_true_atoms_and_the_atoms_on_them_count_neither_way():
    truth = _table([[20, 20], [40, 20], [60, 20], [80, 20]])
    found = _table([[20.5, 20], [40, 20.5], [70, 40]])  # on T0, on T1, and a false one
    ignore = np.array([False, True, False, False])  # T1 is a column the image does not show
    s = score_atoms(found, truth, shape=(100, 100), pixel_size=0.1, ignore=ignore)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 2)  # T0 found; F2 false; T2, T3 missed
    assert s["true_index"].tolist() == [0]
    plain = score_atoms(found, truth, shape=(100, 100), pixel_size=0.1)
    assert (plain["tp"], plain["fp"], plain["fn"]) == (2, 1, 2)
    with pytest.raises(ValueError, match="one flag per true atom"):
        score_atoms(found, truth, shape=(100, 100), pixel_size=0.1, ignore=[True])


def test_bright_level_is_the_90th_percentile_and_the_share_is_inclusive():
    from atomlens.metrics import bright_level

    z = np.arange(1.0, 101.0)
    assert bright_level(z) == pytest.approx(np.percentile(z, 90))
    assert bright_level(z) != pytest.approx(np.percentile(z, 91))
    # a column at exactly min_share of the bright level (4.0: ten bright columns) shows
    truth = pd.DataFrame({"z_gamma_sum": [4.0] * 10 + [1.0]})
    assert bright_level(truth["z_gamma_sum"].to_numpy()) == 4.0
    assert shown_columns(truth, min_share=0.25).all()


def test_shown_columns_of_no_columns_is_empty():
    empty = pd.DataFrame({"z_gamma_sum": np.zeros(0)})
    shown = shown_columns(empty)
    assert shown.shape == (0,) and shown.dtype == bool


def test_shown_columns_follow_the_z_contrast():
    """SrTiO3 [110] in HAADF (γ 1.7): the SrO and Ti columns show, the pure O columns (0.13
    of SrO's Σ Z^γ) do not; in bright field's γ 0.5 every column shows."""
    from atomlens.simulate import ImagingConditions, Substitution, simulate_image

    for gamma, shown in ((1.7, {"SrO", "Ti"}), (0.5, {"SrO", "Ti", "O"})):
        sim = simulate_image(
            "srtio3[110]", shape=64, conditions=ImagingConditions(gamma=gamma), rng=0
        )
        assert set(sim.truth["class"][shown_columns(sim.truth)]) == shown
    # a few heavy dopants (Si at 4× a C column's Σ Z^γ) do not hide the lattice
    sim = simulate_image(
        "graphene", shape=192, defects=[Substitution("C", "Si", density=0.03)], rng=1
    )
    assert (sim.truth["class"] == "Si").any() and shown_columns(sim.truth).all()
