"""Bayesian optimisation over a box and the hypervolume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atomlens.active.bo import hypervolume, maximize, pareto_mask


def test_hypervolume_equals_botorch():
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    Y = np.random.default_rng(0).uniform(size=(40, 2))
    ref = (-0.1, -0.2)
    ref_t = torch.tensor(ref, dtype=torch.float64)
    want = Hypervolume(ref_t).compute(torch.tensor(Y[pareto_mask(Y)], dtype=torch.float64))
    assert hypervolume(Y, ref) == pytest.approx(want, rel=1e-12)


def test_maximize_finds_a_smooth_maximum_faster_than_random():
    def f(x):
        return -((x[0] - 0.3) ** 2 + (x[1] + 1.0) ** 2)

    bounds = [(0.0, 1.0), (-2.0, 0.0)]
    res = maximize(f, bounds, steps=8, seed=0, fit_iterations=30, n_candidates=1024)
    rnd = maximize(f, bounds, steps=8, seed=0, acquisition="random", n_candidates=1024)
    assert res.X.shape == (13, 2) and (res.rounds[:5] == 0).all()
    assert res.best_so_far[-1] > -0.003
    assert res.best_so_far[-1] > rnd.best_so_far[-1]
    with pytest.raises(ValueError, match="`steps`"):
        maximize(f, bounds, steps=0)
    with pytest.raises(ValueError, match="low < high"):
        maximize(f, [(1.0, 0.0)])
