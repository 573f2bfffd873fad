"""Tests for atomlens.metrics.matching: optimal matching and localisation errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomlens.metrics import LocalisationErrors, Matching, localisation_errors, match_points


def _lattice(n: int = 10, spacing: float = 3.0) -> np.ndarray:
    """Square lattice of n×n points as (x, y)."""
    g = np.arange(n) * spacing
    return np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)


def _brute_force(pred: np.ndarray, true: np.ndarray, radius: float) -> tuple[int, float]:
    """Most pairs, then smallest total distance, by enumerating every matching."""
    d = np.hypot(*(pred[:, None, :] - true[None, :, :]).transpose(2, 0, 1))
    best = (0, 0.0)
    n, m = len(pred), len(true)
    for k in range(min(n, m), 0, -1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                dist = d[list(rows), list(cols)]
                if (dist <= radius).all():
                    total = float(dist.sum())
                    if best[0] < k or total < best[1]:
                        best = (k, total)
        if best[0] == k:
            return best
    return best


# --- known answers ------------------------------------------------------------------------


def test_identical_sets_are_all_matched_with_zero_error() -> None:
    xy = _lattice()
    m = match_points(xy, xy, radius=1.0)
    assert isinstance(m, Matching)
    assert (m.tp, m.fp, m.fn) == (len(xy), 0, 0)
    assert m.precision == m.recall == m.f1 == 1.0
    np.testing.assert_array_equal(m.pred_index, np.arange(len(xy)))
    np.testing.assert_array_equal(m.true_index, np.arange(len(xy)))
    np.testing.assert_array_equal(m.distance, 0.0)
    e = localisation_errors(xy[m.pred_index] - xy[m.true_index])
    assert e.rmse == e.median == e.p95 == e.mean_dx == e.mean_dy == 0.0
    assert e.n == len(xy)


def test_shift_within_radius_keeps_matches_and_gives_rmse() -> None:
    true = _lattice()
    pred = true + np.array([0.3, 0.4])
    m = match_points(pred, true, radius=1.0)
    assert (m.tp, m.fp, m.fn) == (len(true), 0, 0)
    np.testing.assert_allclose(m.distance, 0.5)
    e = localisation_errors(pred[m.pred_index] - true[m.true_index])
    assert e.rmse == pytest.approx(0.5)
    assert e.median == pytest.approx(0.5)
    assert e.p95 == pytest.approx(0.5)
    assert (e.mean_dx, e.mean_dy) == (pytest.approx(0.3), pytest.approx(0.4))
    assert (e.rmse_x, e.rmse_y) == (pytest.approx(0.3), pytest.approx(0.4))


def test_shift_beyond_radius_gives_fp_and_fn() -> None:
    true = _lattice()
    pred = true.copy()
    pred[:5] += [1.2, 0.0]  # farther than the radius, nearer than the next atom (3.0 away)
    m = match_points(pred, true, radius=1.0)
    assert (m.tp, m.fp, m.fn) == (len(true) - 5, 5, 5)
    assert not np.isin(np.arange(5), m.pred_index).any()


def test_radius_is_inclusive() -> None:
    m = match_points(np.array([[0.0, 0.0]]), np.array([[0.5, 0.0]]), radius=0.5)
    assert m.tp == 1


@pytest.mark.parametrize("k", [1, 7, 100])
def test_removed_atoms_are_false_negatives(k: int) -> None:
    true = _lattice(20)
    rng = np.random.default_rng(k)
    pred = np.delete(true, rng.choice(len(true), k, replace=False), axis=0)
    m = match_points(pred, true, radius=1.0)
    assert (m.tp, m.fp, m.fn) == (len(true) - k, 0, k)
    assert m.precision == 1.0
    assert m.recall == pytest.approx((len(true) - k) / len(true))


@pytest.mark.parametrize("k", [1, 7, 100])
def test_added_atoms_are_false_positives(k: int) -> None:
    true = _lattice(20)
    extra = true[:k] + np.array([1.5, 1.5])  # in the middle of lattice cells, 2.1 from any atom
    pred = np.vstack([true, extra])
    m = match_points(pred, true, radius=1.0)
    assert (m.tp, m.fp, m.fn) == (len(true), k, 0)
    assert m.recall == 1.0
    assert m.f1 == pytest.approx(2 * len(true) / (2 * len(true) + k))


def test_optimal_beats_greedy() -> None:
    # Greedy nearest-pair matching takes (P1, T0) at 0.1 first; P0 is then left alone.
    pred = np.array([[0.0, 0.0], [1.0, 0.0]])
    true = np.array([[0.9, 0.0], [1.8, 0.0]])
    m = match_points(pred, true, radius=1.0)
    assert m.tp == 2
    assert m.true_index.tolist() == [0, 1]
    assert m.distance.sum() == pytest.approx(1.7)


def test_minimises_total_distance_among_maximum_matchings() -> None:
    # Both pairings have two matches; the crossed one is longer.
    pred = np.array([[0.0, 0.0], [1.0, 0.0]])
    true = np.array([[0.1, 0.0], [1.1, 0.0]])
    m = match_points(pred[::-1], true, radius=2.0)
    assert m.pred_index.tolist() == [0, 1]
    assert m.true_index.tolist() == [1, 0]
    assert m.distance.sum() == pytest.approx(0.2)


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_matches_brute_force_on_clustered_points(scale) -> None:
    # scale 10: a radius of 8 (0.8 Å at 0.1 Å/px is such a radius in px), where a cost
    # for forbidden pairs written in the wrong unit no longer exceeds the real pairs'
    rng = np.random.default_rng(3)
    for _ in range(30):
        pred = rng.uniform(0, 2, (rng.integers(1, 6), 2)) * scale
        true = rng.uniform(0, 2, (rng.integers(1, 6), 2)) * scale
        m = match_points(pred, true, radius=0.8 * scale)
        tp, total = _brute_force(pred, true, 0.8 * scale)
        assert m.tp == tp
        assert m.distance.sum() == pytest.approx(total)


def test_many_separate_clusters_each_match_as_alone() -> None:
    # several clusters that each need the assignment algorithm, far apart: the pairs (by
    # index, not only their count) are those of each cluster matched on its own
    rng = np.random.default_rng(11)
    preds, trues, want_tp, want_total = [], [], 0, 0.0
    for k in range(8):
        offset = np.array([100.0 * k, 0.0])
        p = rng.uniform(0, 2, (rng.integers(2, 5), 2))
        t = rng.uniform(0, 2, (rng.integers(2, 5), 2))
        tp, total = _brute_force(p, t, 0.8)
        want_tp, want_total = want_tp + tp, want_total + total
        preds.append(p + offset)
        trues.append(t + offset)
    pred, true = np.concatenate(preds), np.concatenate(trues)
    m = match_points(pred, true, radius=0.8)
    assert m.tp == want_tp
    assert m.distance.sum() == pytest.approx(want_total)
    d = np.hypot(*(pred[m.pred_index] - true[m.true_index]).T)
    np.testing.assert_allclose(m.distance, d)  # each distance is its own pair's
    assert (d <= 0.8).all()


@pytest.mark.parametrize(
    ("pred", "true", "expected"),
    [
        (np.empty((0, 2)), np.empty((0, 2)), (0, 0, 0, 1.0, 1.0, 1.0)),
        (np.empty((0, 2)), np.zeros((3, 2)), (0, 0, 3, 0.0, 0.0, 0.0)),
        (np.zeros((2, 2)), np.empty((0, 2)), (0, 2, 0, 0.0, 0.0, 0.0)),
        ([], [[1.0, 1.0]], (0, 0, 1, 0.0, 0.0, 0.0)),
        (np.zeros((2, 2)), np.full((2, 2), 5.0), (0, 2, 2, 0.0, 0.0, 0.0)),
    ],
)
def test_empty_and_disjoint_inputs(pred, true, expected) -> None:
    m = match_points(pred, true, radius=1.0)
    assert (m.tp, m.fp, m.fn, m.precision, m.recall, m.f1) == expected
    assert m.pred_index.dtype.kind == m.true_index.dtype.kind == "i"
    assert m.pred_index.shape == m.true_index.shape == m.distance.shape == (0,)


def test_localisation_errors_of_nothing_are_nan() -> None:
    e = localisation_errors(np.empty((0, 2)))
    assert e.n == 0
    assert np.isnan([e.rmse, e.median, e.p95, e.mean_dx, e.mean_dy, e.rmse_x, e.rmse_y]).all()


def test_localisation_errors_statistics() -> None:
    d = np.array([[3.0, 4.0], [0.0, 0.0], [-3.0, -4.0], [0.0, 1.0]])
    e = localisation_errors(d)
    radial = np.array([5.0, 0.0, 5.0, 1.0])
    assert e.rmse == pytest.approx(np.sqrt(np.mean(radial**2)))
    assert e.rmse**2 == pytest.approx(e.rmse_x**2 + e.rmse_y**2)
    assert e.median == pytest.approx(3.0)
    assert e.p95 == pytest.approx(np.percentile(radial, 95))
    assert (e.mean_dx, e.mean_dy) == (pytest.approx(0.0), pytest.approx(0.25))
    scaled = e.scaled(10.0)
    assert isinstance(scaled, LocalisationErrors)
    for name in ("rmse", "median", "p95", "mean_dx", "mean_dy", "rmse_x", "rmse_y"):
        assert getattr(scaled, name) == pytest.approx(10 * getattr(e, name)), name
    assert scaled.n == e.n


def test_p95_is_the_95th_percentile_of_the_radial_error() -> None:
    radial = np.arange(1.0, 101.0)  # 1 … 100: the 95th and 96th percentiles differ
    e = localisation_errors(np.c_[radial, np.zeros(100)])
    assert e.p95 == pytest.approx(np.percentile(radial, 95))
    assert e.p95 != pytest.approx(np.percentile(radial, 96))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pred_xy": np.zeros((3, 3)), "true_xy": np.zeros((3, 2))}, ValueError, "pred_xy"),
        ({"pred_xy": np.zeros((3, 2)), "true_xy": np.zeros(4)}, ValueError, "true_xy"),
        ({"pred_xy": [[np.nan, 0.0]], "true_xy": np.zeros((1, 2))}, ValueError, "non-finite"),
        ({"pred_xy": "abc", "true_xy": np.zeros((1, 2))}, TypeError, "pred_xy"),
        (
            {"pred_xy": np.zeros((1, 2)), "true_xy": np.zeros((1, 2)), "radius": 0},
            ValueError,
            "radius",
        ),
        (
            {"pred_xy": np.zeros((1, 2)), "true_xy": np.zeros((1, 2)), "radius": np.inf},
            ValueError,
            "radius",
        ),
    ],
)
def test_bad_arguments_raise_with_the_parameter_name(kwargs, error, match) -> None:
    kwargs = {"radius": 1.0, **kwargs}
    pred = kwargs.pop("pred_xy")
    with pytest.raises(error, match=match):
        match_points(pred, **kwargs)


# --- properties ---------------------------------------------------------------------------

_points = st.lists(
    st.tuples(
        st.floats(0, 6, allow_nan=False, width=32), st.floats(0, 6, allow_nan=False, width=32)
    ),
    max_size=25,
).map(lambda pts: np.array(pts, dtype=float).reshape(-1, 2))


@settings(deadline=None)  # example count from the Hypothesis profile in conftest.py
@given(pred=_points, true=_points, radius=st.floats(0.05, 2.0), seed=st.integers(0, 2**32 - 1))
def test_counts_are_consistent_and_permutation_invariant(pred, true, radius, seed) -> None:
    m = match_points(pred, true, radius=radius)
    assert m.tp + m.fn == len(true)
    assert m.tp + m.fp == len(pred)
    assert len(np.unique(m.pred_index)) == len(np.unique(m.true_index)) == m.tp
    assert (m.distance <= radius + 1e-9).all()
    np.testing.assert_allclose(
        m.distance, np.hypot(*(pred[m.pred_index] - true[m.true_index]).T), atol=1e-12
    )
    rng = np.random.default_rng(seed)
    pp, pt = rng.permutation(len(pred)), rng.permutation(len(true))
    m2 = match_points(pred[pp], true[pt], radius=radius)
    assert (m2.tp, m2.fp, m2.fn) == (m.tp, m.fp, m.fn)
    assert m2.distance.sum() == pytest.approx(m.distance.sum(), abs=1e-9)
    swapped = match_points(true, pred, radius=radius)
    assert (swapped.tp, swapped.fp, swapped.fn) == (m.tp, m.fn, m.fp)


# --- scale --------------------------------------------------------------------------------


def test_20k_random_points_are_solved_in_small_clusters(monkeypatch) -> None:
    """The work of matching grows with the points, not with their square: each cluster of
    candidate pairs gets its own small dense assignment problem. Counted, not timed (the
    time is in ``benchmarks/speed.py``): here 20,000 true points and 19,983 predictions
    (5 % missing, 1,000 scattered at random) gave 3,372 clusters that needed the Hungarian
    algorithm, the largest 9 × 8, 22,394 matrix cells in all (1.1 a point; a dense problem
    would have 4·10⁸); it took 0.2 s and the test allowed 2 s of wall clock."""
    import atomlens.metrics.matching as matching

    shapes = []
    solve = matching.linear_sum_assignment

    def counted(cost):
        shapes.append(cost.shape)
        return solve(cost)

    monkeypatch.setattr(matching, "linear_sum_assignment", counted)
    rng = np.random.default_rng(20_000)
    n = 20_000
    side = np.sqrt(n)  # one point per unit area
    true = rng.uniform(0, side, (n, 2))
    pred = true + rng.normal(0, 0.05, (n, 2))
    keep = rng.random(n) > 0.05
    pred = np.vstack([pred[keep], rng.uniform(0, side, (1000, 2))])
    m = match_points(pred, true, radius=0.4)
    assert m.tp + m.fn == n and m.tp + m.fp == len(pred)
    assert m.recall == pytest.approx(keep.mean(), abs=0.01)
    sizes = np.array(shapes)
    assert len(sizes) > 1000  # the clusters with several points a side went this way
    # bars at about twice what was measured: no cluster beyond 16 points a side, and
    # fewer than 2.5 matrix cells per true point in all
    assert sizes.max() <= 16, sizes.max(axis=0)
    assert np.prod(sizes, axis=1).sum() < 2.5 * n, np.prod(sizes, axis=1).sum()
