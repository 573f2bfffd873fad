"""Surrogates: the GP posterior against its closed form, samples, conditioning, DKL."""

from __future__ import annotations

import numpy as np
import pytest

from atomlens.active.models import DKL, DKLEnsemble, ExactGP, IndependentGPs, SparseGP, Surrogate


def _rbf(a, b, ell, s2):
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return s2 * np.exp(-0.5 * d2 / ell**2)


def _closed_form(xt, yt, xs, ell, s2, noise):
    k = _rbf(xt, xt, ell, s2) + noise * np.eye(len(xt))
    ks = _rbf(xs, xt, ell, s2)
    mean = ks @ np.linalg.solve(k, yt)
    cov = _rbf(xs, xs, ell, s2) - ks @ np.linalg.solve(k, ks.T)
    return mean, cov


def test_gp_posterior_equals_the_closed_form():
    gen = np.random.default_rng(0)
    xt = gen.uniform(size=(6, 2))
    yt = gen.normal(size=6)
    xs = gen.uniform(size=(5, 2))
    gp = ExactGP(
        kernel="rbf", lengthscale=0.3, outputscale=1.7, noise=0.05, fit_iterations=0,
        standardize=False,
    ).fit(xt, yt)  # fmt: skip
    mean, var = gp.predict(xs)
    hp = gp._module  # the values GPyTorch holds after its constraint transforms (±1e-8)
    ell = float(hp.covar_module.base_kernel.lengthscale.flatten()[0])  # ARD, both equal
    s2 = float(hp.covar_module.outputscale)
    noise = float(hp.likelihood.noise)
    assert (ell, s2, noise) == pytest.approx((0.3, 1.7, 0.05), rel=1e-6)
    ref_mean, ref_cov = _closed_form(xt, yt, xs, ell, s2, noise)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-10)
    np.testing.assert_allclose(var, np.diag(ref_cov), atol=1e-10)
    # conditioning on one more point equals the closed form with it
    x_new, y_new = np.array([[0.5, 0.5]]), np.array([1.2])
    m2, v2 = gp.condition(x_new, y_new).predict(xs)
    r2, c2 = _closed_form(np.vstack([xt, x_new]), np.r_[yt, y_new], xs, ell, s2, noise)
    np.testing.assert_allclose(m2, r2, atol=1e-10)
    np.testing.assert_allclose(v2, np.diag(c2), atol=1e-10)
    # joint samples: mean and covariance of 20 000 draws
    draws = gp.sample(xs, 20000, rng=1)
    np.testing.assert_allclose(
        draws.mean(0), ref_mean, atol=5 * np.sqrt(np.diag(ref_cov).max() / 20000)
    )
    np.testing.assert_allclose(np.cov(draws.T), ref_cov, atol=0.03)
    assert isinstance(gp, Surrogate)


def test_fitted_gp_recovers_a_smooth_function_and_is_seeded():
    x = np.linspace(0, 1, 15)[:, None]
    y = np.sin(6 * x[:, 0])
    xs = np.linspace(0, 1, 101)[:, None]
    a = ExactGP(seed=3).fit(x, y)
    mean, var = a.predict(xs)
    assert np.abs(mean - np.sin(6 * xs[:, 0])).max() < 0.05
    assert var.max() < 0.01
    b = ExactGP(seed=3).fit(x, y)
    np.testing.assert_array_equal(a.predict(xs)[0], b.predict(xs)[0])


def test_dkl_learns_brightness_from_patches_where_coordinates_cannot():
    """The target is the brightness of a patch, scattered at random over the candidates:
    DKL on patches predicts held-out candidates, R² > 0.8."""
    gen = np.random.default_rng(0)
    n, f = 300, 16
    bright = gen.uniform(0, 1, n)
    X = gen.normal(0, 0.3, (n, f)) + 3 * bright[:, None]
    y = bright**2
    train = np.arange(60)
    m = DKL(fit_iterations=200, seed=0).fit(X[train], y[train])
    mean, _ = m.predict(X[60:])
    r2 = 1 - ((mean - y[60:]) ** 2).sum() / ((y[60:] - y[60:].mean()) ** 2).sum()
    assert r2 > 0.8
    assert m.embed(X[:3]).shape == (3, 2)
    ens = DKLEnsemble(2, member=DKL(fit_iterations=50)).fit(X[train], y[train])
    em, ev = ens.predict(X[60:])
    assert ev.shape == em.shape == (240,) and (ev > 0).all()
    assert ens.sample(X[:10], 3, rng=0).shape == (3, 10)


def test_sparse_gp_and_vector_targets():
    gen = np.random.default_rng(1)
    x = gen.uniform(size=(200, 1))
    y = np.sin(6 * x[:, 0]) + 0.05 * gen.normal(size=200)
    sp = SparseGP(n_inducing=16, fit_iterations=300, lr=0.1).fit(x, y)
    xs = np.linspace(0.05, 0.95, 50)[:, None]
    mean, _ = sp.predict(xs)
    assert np.abs(mean - np.sin(6 * xs[:, 0])).max() < 0.15
    Y = np.column_stack([y, -y])
    ind = IndependentGPs(lambda k: ExactGP(seed=k, fit_iterations=50), 2).fit(x[:40], Y[:40])
    mean, _ = ind.predict(xs)
    assert mean.shape == (50, 2)
    np.testing.assert_allclose(mean[:, 0], -mean[:, 1], atol=0.05)


def test_bad_training_data_give_one_line_errors():
    gp = ExactGP()
    with pytest.raises(ValueError, match="has 3 rows but `y` has 2"):
        gp.fit(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="`y` holds NaN"):
        gp.fit(np.zeros((2, 2)), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="empty"):
        gp.fit(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(RuntimeError, match="not fitted"):
        gp.predict(np.zeros((1, 2)))
    gp.fit(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(M, 2\)"):
        gp.predict(np.zeros((4, 3)))
