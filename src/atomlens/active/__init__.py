"""Automated experiments: surrogate models of a property against structure, acquisition
functions, scalarizers, Bayesian optimisation and the active-learning loop with its record.

- :mod:`~atomlens.active.models`: :class:`ExactGP`, :class:`SparseGP`, :class:`DKL`,
  :class:`DKLEnsemble`, :class:`IndependentGPs`, all with ``fit(X, y)``,
  ``predict(X) -> (mean, variance)``, ``sample(X, n)`` and ``condition(X, y)``
  (the :class:`Surrogate` protocol);
- :mod:`~atomlens.active.acquisitions`: UCB (``μ + √β σ``), EI, log-EI, PI,
  max-uncertainty, Thompson sampling, penalties, batches;
- :mod:`~atomlens.active.scalarizers`: what a spectrum is worth;
- :mod:`~atomlens.active.loop`: :func:`run`, :func:`replay`, :func:`counterfactual`;
- :mod:`~atomlens.active.bo`: Bayesian optimisation over a box, one or two objectives;
- :mod:`~atomlens.active.structured`: structured Gaussian processes (a physical model with
  priors on its parameters as the mean, a GP kernel on the residual), MAP or NUTS;
- :mod:`~atomlens.active.hypotheses`: hypothesis learning, a bandit over candidate models;
- :mod:`~atomlens.active.physics_models`: physical models to start from.

Everything is imported lazily: ``import atomlens.active`` loads neither torch nor GPyTorch.
"""

from __future__ import annotations

from atomlens._shared.lazy import lazy_exports

_WHERE = {
    "ACQUISITIONS": "acquisitions",
    "BandIntensity": "scalarizers",
    "DKL": "models",
    "DKLEnsemble": "models",
    "ExactGP": "models",
    "ExploreResult": "loop",
    "ExploreSettings": "loop",
    "IndependentGPs": "models",
    "Instrument": "loop",
    "PeakHeight": "scalarizers",
    "PeakPosition": "scalarizers",
    "PeakRatio": "scalarizers",
    "RunRecord": "record",
    "SparseGP": "models",
    "Surrogate": "models",
    "TableSource": "loop",
    "UserScalarizer": "scalarizers",
    "counterfactual": "loop",
    "expected_improvement": "acquisitions",
    "grid_positions": "features",
    "hypervolume": "bo",
    "log_expected_improvement": "acquisitions",
    "max_uncertainty": "acquisitions",
    "pareto_mask": "bo",
    "BOResult": "bo",
    "maximize": "bo",
    "maximize_pareto": "bo",
    "parse_scalarizer": "scalarizers",
    "patch_features": "features",
    "penalize": "acquisitions",
    "probability_of_improvement": "acquisitions",
    "replay": "loop",
    "run": "loop",
    "select_batch": "acquisitions",
    "upper_confidence_bound": "acquisitions",
}

__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
