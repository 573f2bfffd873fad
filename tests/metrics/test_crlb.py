"""Tests for atomlens.metrics.crlb: the Cramér–Rao bound for locating a Gaussian spot."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from atomlens.metrics import crlb_gaussian_position, mortensen_lsq_std

SQRT2 = np.sqrt(2.0)


def test_reduces_to_sigma_over_sqrt_n_without_background_and_tiny_pixels() -> None:
    for sigma, counts in [(1.0, 100.0), (1.5, 2000.0), (0.3, 1e5)]:
        value = crlb_gaussian_position(sigma=sigma, counts=counts, pixel_size=sigma * 1e-3)
        assert isinstance(value, float)
        assert value == pytest.approx(sigma / np.sqrt(counts), rel=1e-3)


def test_pixel_term_without_background() -> None:
    # With b = 0 the variance is exactly (σ² + a²/12) / N.
    value = crlb_gaussian_position(sigma=1.0, counts=400.0, pixel_size=2.0)
    assert value == pytest.approx(np.sqrt((1.0 + 4.0 / 12.0) / 400.0))
    sizes = np.array([0.1, 0.5, 1.0, 2.0])
    values = crlb_gaussian_position(sigma=1.0, counts=400.0, pixel_size=sizes)
    assert np.all(np.diff(values) > 0)


def test_increases_with_background_and_decreases_with_counts() -> None:
    backgrounds = np.array([0.0, 0.1, 1.0, 10.0, 100.0])
    values = crlb_gaussian_position(sigma=1.5, counts=2000, background=backgrounds, pixel_size=1)
    assert values.shape == backgrounds.shape
    assert np.all(np.diff(values) > 0)
    counts = np.array([100.0, 1000.0, 10000.0])
    values = crlb_gaussian_position(sigma=1.5, counts=counts, background=2.0, pixel_size=1.0)
    assert np.all(np.diff(values) < 0)


def test_known_value_and_units() -> None:
    # σa² = 2.25 + 1/12, τ = 2π σa² b / N; std ≈ 0.0378 px for the Monte-Carlo case below.
    sa2 = 2.25 + 1.0 / 12.0
    tau = 2 * np.pi * sa2 * 2.0 / 2000.0
    expected = np.sqrt(sa2 / 2000.0 * (1 + 4 * tau + np.sqrt(2 * tau / (1 + 4 * tau))))
    value = crlb_gaussian_position(sigma=1.5, counts=2000, background=2.0, pixel_size=1.0)
    assert value == pytest.approx(expected)
    # Same spot in Å with 0.1 Å pixels: the result scales with the length unit.
    in_A = crlb_gaussian_position(sigma=0.15, counts=2000, background=2.0, pixel_size=0.1)
    assert in_A == pytest.approx(0.1 * value)


def test_broadcasting() -> None:
    values = crlb_gaussian_position(
        sigma=np.array([[1.0], [2.0]]), counts=np.array([100.0, 400.0, 1600.0]), pixel_size=0.01
    )
    assert values.shape == (2, 3)
    np.testing.assert_allclose(values[:, 0] / values[:, 2], 4.0, rtol=1e-6)


def test_mortensen_formula_is_above_the_bound() -> None:
    b0 = mortensen_lsq_std(sigma=1.0, counts=100.0, pixel_size=1e-3)
    assert b0 == pytest.approx(4.0 / 3.0 * 0.1, rel=1e-3)
    backgrounds = np.array([0.0, 1.0, 10.0])
    m = mortensen_lsq_std(sigma=1.5, counts=2000, background=backgrounds, pixel_size=1.0)
    c = crlb_gaussian_position(sigma=1.5, counts=2000, background=backgrounds, pixel_size=1.0)
    assert np.all(m > c)
    sa2 = 2.25 + 1.0 / 12.0
    assert m[1] == pytest.approx(np.sqrt(sa2 / 2000 * (16 / 9 + 8 * np.pi * sa2 * 1.0 / 2000)))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sigma": 0.0}, ValueError, "sigma"),
        ({"counts": -5.0}, ValueError, "counts"),
        ({"background": -1.0}, ValueError, "background"),
        ({"pixel_size": np.nan}, ValueError, "pixel_size"),
        ({"counts": np.array([10.0, 0.0])}, ValueError, "counts"),
        ({"sigma": "wide"}, TypeError, "sigma"),
        ({"sigma": np.ones(2), "counts": np.ones(3)}, ValueError, "broadcast"),
    ],
)
def test_bad_arguments(kwargs, error, match) -> None:
    args = {"sigma": 1.0, "counts": 100.0, "background": 0.0, "pixel_size": 1.0, **kwargs}
    for func in (crlb_gaussian_position, mortensen_lsq_std):
        with pytest.raises(error, match=match):
            func(**args)


# --- Monte Carlo: maximum-likelihood fits reach the bound --------------------------------


def _pixel_integrals(centre: np.ndarray, grid: np.ndarray, sigma: float):
    """Fraction of a 1D Gaussian falling in each unit pixel, and its derivative by centre.

    ``centre`` has shape (B,), ``grid`` (P,); both returned arrays have shape (B, P).
    """
    lo = (grid[None, :] - 0.5 - centre[:, None]) / (SQRT2 * sigma)
    hi = (grid[None, :] + 0.5 - centre[:, None]) / (SQRT2 * sigma)
    frac = 0.5 * (erf(hi) - erf(lo))
    dfrac = (np.exp(-(lo**2)) - np.exp(-(hi**2))) / (np.sqrt(2 * np.pi) * sigma)
    return frac, dfrac


def _model(theta: np.ndarray, grid: np.ndarray, sigma: float):
    """Expected counts (B, P, P) and their derivatives (B, 4, P, P) for θ = (x, y, N, b)."""
    x, y, n, b = theta.T
    fx, dfx = _pixel_integrals(x, grid, sigma)
    fy, dfy = _pixel_integrals(y, grid, sigma)
    shape = fy[:, :, None] * fx[:, None, :]  # rows are y, columns are x
    mu = n[:, None, None] * shape + b[:, None, None]
    jac = np.stack(
        [
            n[:, None, None] * fy[:, :, None] * dfx[:, None, :],
            n[:, None, None] * dfy[:, :, None] * fx[:, None, :],
            shape,
            np.ones_like(shape),
        ],
        axis=1,
    )
    return mu, jac


def _fit_mle(images: np.ndarray, start: np.ndarray, sigma: float, max_steps: int = 30):
    """Poisson maximum-likelihood fit of (x, y, N, b) by Fisher scoring, all images at once,
    until no position moves by 1e-8 px or more in a step.

    Returns the fitted parameters (B, 4) and the number of Fisher-scoring steps taken (each
    one evaluation of the model and its Jacobian on all B images).
    """
    grid = np.arange(images.shape[-1], dtype=float)
    theta = start.copy()
    steps = 0
    while steps < max_steps:
        steps += 1
        mu, jac = _model(theta, grid, sigma)
        weight = images / mu - 1.0
        grad = np.einsum("bkij,bij->bk", jac, weight)
        info = np.einsum("bkij,blij,bij->bkl", jac, jac, 1.0 / mu)
        step = np.linalg.solve(info, grad[:, :, None])[:, :, 0]
        theta = theta + step
        theta[:, 2:] = np.maximum(theta[:, 2:], 1e-3)  # keep N and b positive
        if np.abs(step[:, :2]).max() < 1e-8:
            break
    return theta, steps


def test_monte_carlo_mle_reaches_the_bound() -> None:
    rng = np.random.default_rng(2014)
    n_images, size, sigma, counts, background = 400, 15, 1.5, 2000.0, 2.0
    grid = np.arange(size, dtype=float)
    centre = (size - 1) / 2
    truth = np.column_stack(
        [
            centre + rng.uniform(-0.5, 0.5, n_images),
            centre + rng.uniform(-0.5, 0.5, n_images),
            np.full(n_images, counts),
            np.full(n_images, background),
        ]
    )
    mu, _ = _model(truth, grid, sigma)
    images = rng.poisson(mu).astype(float)
    # Start from the centroid and rough amplitude guesses, not from the truth.
    total = images.sum(axis=(1, 2))
    b0 = np.concatenate([images[:, 0, :], images[:, -1, :]], axis=1).mean(axis=1) + 0.5
    start = np.column_stack(
        [
            (images.sum(axis=1) * grid).sum(axis=1) / total,
            (images.sum(axis=2) * grid).sum(axis=1) / total,
            total - b0 * size**2,
            b0,
        ]
    )
    fit, steps = _fit_mle(images, start, sigma)
    # Converged from the centroid start, and cheaply: the largest position step fell
    # 0.18 → 0.019 → 4.5e-4 → … → 1.8e-8 → 6.4e-10 px, i.e. 7 steps (each one model and
    # Jacobian on 400 × 15² px). The bar, 10, counts work instead of timing it (this test
    # asserted < 5 s of wall clock, which a loaded machine can break; it took 0.2 s).
    assert steps <= 10, steps

    errors = (fit[:, :2] - truth[:, :2]).ravel()
    empirical = float(np.sqrt(np.mean(errors**2)))
    bound = crlb_gaussian_position(
        sigma=sigma, counts=counts, background=background, pixel_size=1.0
    )
    assert abs(np.mean(errors)) < 3 * bound / np.sqrt(errors.size)  # unbiased
    assert 0.9 * bound < empirical < 1.2 * bound
    # The closed form agrees with the exact Fisher information of this pixelated spot.
    _, jac = _model(truth, grid, sigma)
    exact_info = np.einsum("bkij,blij,bij->bkl", jac, jac, 1.0 / mu)
    exact = np.sqrt(np.linalg.inv(exact_info)[:, [0, 1], [0, 1]].mean())
    assert bound == pytest.approx(exact, rel=0.05)
    # Least-squares-type precision (Mortensen) is clearly worse than what MLE achieves.
    assert (
        mortensen_lsq_std(sigma=sigma, counts=counts, background=background, pixel_size=1.0)
        > 1.1 * empirical
    )
