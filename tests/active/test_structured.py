"""Structured GP: known parameters back from noise-free data, intervals that cover them,
the reference hypotheses, and one-line errors on bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import LogNormal, Normal, Uniform

from atomlens.active import physics_models as pm
from atomlens.active.structured import NUTSSettings, StructuredGP, gp_only, parametric_only

TRUE = {"a": 1.0, "b": 1.5, "t": 1.6}
PRIORS = {"a": LogNormal(0.0, 0.5), "b": LogNormal(0.0, 0.5), "t": Uniform(0.5, 2.0)}


def _plateau(x: np.ndarray, params=TRUE) -> np.ndarray:
    p = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    return pm.power_law_plateau(torch.as_tensor(x, dtype=torch.float64), p).numpy()


def test_structured_gp_recovers_known_parameters_on_noise_free_data():
    x = np.linspace(0.0, 2.5, 16)
    model = StructuredGP(pm.power_law_plateau, PRIORS, restarts=4, rng=0).fit(x, _plateau(x))
    params = model.parameters()
    for name, value in TRUE.items():
        assert params[name]["estimate"] == pytest.approx(value, abs=2e-3), name
        assert params[name]["low"] <= value + 1e-3 and params[name]["high"] >= value - 1e-3
    mean, var = model.predict(np.linspace(0.0, 2.5, 41))
    np.testing.assert_allclose(mean, _plateau(np.linspace(0.0, 2.5, 41)), atol=5e-3)
    assert np.median(np.sqrt(var)) < 0.01


def test_parametric_model_alone_recovers_parameters_and_has_no_kernel():
    x = np.linspace(0.0, 2.5, 12)
    model = parametric_only(pm.power_law_plateau, PRIORS, restarts=4, rng=1).fit(x, _plateau(x))
    params = model.parameters()
    assert set(params) == {"a", "b", "t", "noise"}
    for name, value in TRUE.items():
        assert params[name]["estimate"] == pytest.approx(value, abs=2e-3), name


def test_intervals_cover_the_truth_on_noisy_data_and_shrink_with_more_points():
    rng = np.random.default_rng(3)
    widths = []
    for n in (12, 48):
        x = np.linspace(0.0, 2.5, n)
        y = _plateau(x) + rng.normal(0.0, 0.05, n)
        params = (
            parametric_only(pm.power_law_plateau, PRIORS, restarts=3, rng=0).fit(x, y).parameters()
        )
        assert params["t"]["low"] <= TRUE["t"] <= params["t"]["high"]
        widths.append(params["t"]["high"] - params["t"]["low"])
    assert widths[1] < widths[0]


def test_gp_alone_interpolates_a_smooth_function():
    x = np.linspace(0.0, 1.0, 10)
    gp = gp_only(mean_prior=Normal(0.0, 2.0), rng=0, restarts=2).fit(x, np.sin(3 * x))
    xs = np.linspace(0.05, 0.95, 7)
    mean, _ = gp.predict(xs)
    np.testing.assert_allclose(mean, np.sin(3 * xs), atol=0.02)
    assert gp.sample(xs, 3, rng=0).shape == (3, 7)


def test_same_seed_same_fit():
    x = np.linspace(0.0, 2.5, 10)
    y = _plateau(x) + np.random.default_rng(0).normal(0, 0.1, 10)
    a = StructuredGP(pm.power_law_plateau, PRIORS, restarts=2, rng=5).fit(x, y).predict(x)
    b = StructuredGP(pm.power_law_plateau, PRIORS, restarts=2, rng=5).fit(x, y).predict(x)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_nuts_split_rhat_below_1_1_and_interval_covers_the_truth():
    x = np.linspace(0.0, 1.0, 8)
    y = 2.0 * x + np.random.default_rng(1).normal(0.0, 0.1, 8)
    model = parametric_only(
        lambda x, p: p["k"] * x,
        {"k": Normal(0.0, 5.0)},
        noise_prior=LogNormal(math.log(0.1), 0.3),
        method="nuts",
        nuts=NUTSSettings(warmup=60, samples=60, chains=2, max_tree_depth=4),
        restarts=1,
        rng=0,
    ).fit(x, y)
    assert max(model.rhat_.values()) < 1.1
    k = model.parameters()["k"]
    assert k["low"] < 2.0 < k["high"]


def test_bad_inputs_give_one_line_errors():
    with pytest.raises(TypeError, match="`priors\\['a'\\]` must be a torch"):
        StructuredGP(pm.power_law_plateau, {"a": (0, 1)})
    with pytest.raises(ValueError, match="'noise' is reserved"):
        StructuredGP(pm.power_law_plateau, {"noise": Normal(0.0, 1.0)})
    with pytest.raises(ValueError, match="`kernel` must be"):
        StructuredGP(pm.power_law_plateau, PRIORS, kernel="cubic")
    model = StructuredGP(pm.power_law_plateau, PRIORS, restarts=1, rng=0)
    with pytest.raises(ValueError, match="`y` has 3 values for 4 points"):
        model.fit(np.arange(4.0), np.arange(3.0))
    with pytest.raises(ValueError, match="`y` holds NaN"):
        model.fit(np.arange(2.0), [1.0, np.nan])
    with pytest.raises(ValueError, match=r"model 'bad'.*NaN or infinite"):
        StructuredGP(lambda x, p: x * np.nan, {"a": Normal(0.0, 1.0)}, name="bad", rng=0).fit(
            np.arange(3.0), np.arange(3.0)
        )
    with pytest.raises(ValueError, match="returned 1 values for 3 points"):
        StructuredGP(lambda x, p: p["a"].reshape(1), {"a": Normal(0.0, 1.0)}, rng=0).fit(
            np.arange(3.0), np.arange(3.0)
        )
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(np.arange(3.0))
