"""Acquisitions against BoTorch's analytic ones (to 1e-6), penalties and batches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from atomlens.active import acquisitions as acq
from atomlens.active.models import ExactGP


@pytest.fixture(scope="module")
def botorch_case():
    from botorch.models import SingleTaskGP

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(12, 2, generator=gen, dtype=torch.float64)
    y = torch.sin(6 * x[:, :1]) + x[:, 1:]
    model = SingleTaskGP(x, y)
    model.eval()
    test = torch.rand(200, 1, 2, generator=gen, dtype=torch.float64) * 1.6 - 0.3
    with torch.no_grad():
        post = model.posterior(test)
        mean = post.mean.reshape(-1).numpy()
        var = post.variance.reshape(-1).numpy()
    return model, test, mean, var, float(y.max())


def _bt(acqf, test):
    with torch.no_grad():
        return acqf(test).numpy()


def test_ucb_ei_pi_ue_match_botorch(botorch_case):
    from botorch.acquisition import analytic

    model, test, mean, var, best = botorch_case
    for beta in (0.0, 1.0, 4.0, 9.5):
        ref = _bt(analytic.UpperConfidenceBound(model, beta=beta), test)
        np.testing.assert_allclose(acq.upper_confidence_bound(mean, var, beta=beta), ref, atol=1e-6)
    from botorch.exceptions.warnings import NumericsWarning

    with warnings.catch_warnings():  # BoTorch recommends log-EI over EI and PI: tested too
        warnings.simplefilter("ignore", NumericsWarning)
        ei = analytic.ExpectedImprovement(model, best_f=best)
        pi = analytic.ProbabilityOfImprovement(model, best_f=best)
    ref = _bt(ei, test)
    np.testing.assert_allclose(acq.expected_improvement(mean, var, best=best), ref, atol=1e-6)
    ref = _bt(pi, test)
    np.testing.assert_allclose(acq.probability_of_improvement(mean, var, best=best), ref, atol=1e-6)
    ref = _bt(analytic.PosteriorStandardDeviation(model), test)
    np.testing.assert_allclose(acq.max_uncertainty(mean, var), ref, atol=1e-6)


def test_log_ei_matches_botorch_far_below_the_best(botorch_case):
    from botorch.acquisition import analytic

    model, test, mean, var, best = botorch_case
    for b in (best, best + 3.0, best + 30.0):  # z down to about −1000: EI underflows there
        ref = _bt(analytic.LogExpectedImprovement(model, best_f=b), test)
        mine = acq.log_expected_improvement(mean, var, best=b)
        np.testing.assert_allclose(mine, ref, atol=1e-6, rtol=1e-6)
    assert np.isfinite(acq.log_expected_improvement(mean, var, best=best + 30.0)).all()


def test_penalties_subtract_distance_and_dose():
    pos = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    out = acq.penalize(
        [1.0, 1.0, 1.0], positions=pos, last=(0, 0), distance_weight=0.1,
        dose=np.array([0.0, 1.0, 2.0]), dose_weight=0.25,
    )  # fmt: skip
    np.testing.assert_allclose(out, [1.0, 1.0 - 0.5 - 0.25, 1.0 - 1.0 - 0.5])


def test_batch_spreads_out_and_thompson_batches_are_distinct():
    x = np.linspace(0, 1, 201)[:, None]
    gp = ExactGP(lengthscale=0.1, outputscale=1.0, noise=1e-4, fit_iterations=0)
    gp.fit(np.array([[0.0], [1.0]]), np.array([0.0, 0.0]))
    picks, values = acq.select_batch(gp, x, 3, acquisition="ue")
    assert len(set(picks.tolist())) == 3
    gaps = np.diff(np.sort(x[picks, 0]))
    assert gaps.min() > 0.1  # the kriging believer pushes picks apart
    assert values[0] >= values[1] >= values[2]
    picks, _ = acq.select_batch(gp, x, 4, acquisition="thompson", rng=0)
    assert len(set(picks.tolist())) == 4


def test_bad_inputs_give_one_line_errors():
    with pytest.raises(ValueError, match="same shape"):
        acq.upper_confidence_bound([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        acq.expected_improvement([], [], best=0.0)
    with pytest.raises(ValueError, match="NaN"):
        acq.probability_of_improvement([np.nan], [1.0], best=0.0)
    with pytest.raises(ValueError, match="candidate set is empty"):
        acq.select_batch(None, np.zeros((0, 2)), 1)
    with pytest.raises(ValueError, match="`acquisition` must be one of"):
        acq.score("nope", None, np.zeros((1, 1)))
