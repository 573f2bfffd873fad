"""Acquisition functions: how much a measurement at each candidate is worth.

They work on a posterior's ``(mean, variance)`` (or on posterior samples), so they score any
:class:`~atomlens.active.models.Surrogate`; all maximise. Conventions, identical to BoTorch's
analytic acquisitions (``tests/active/test_acquisitions.py`` checks them to 1e-6):

- **UCB** ``= μ + √β · σ``: β multiplies the *variance* (BoTorch's ``UpperConfidenceBound``),
  so β = 4 puts the bound two standard deviations above the mean.
- **EI**, **log-EI** and **PI** improve on ``best``, the best value *observed* so far (not the
  best predicted mean), optionally raised by a margin ``xi``.
- **Max-uncertainty** scores the posterior standard deviation σ.
- **Thompson sampling** scores one joint posterior sample.

Penalties for distance travelled and dose already given are subtracted from a score
(:func:`penalize`), and :func:`select_batch` picks ``q > 1`` points per round by fantasising
each chosen point at its predicted mean (the "kriging believer").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy import special

__all__ = [
    "ACQUISITIONS",
    "expected_improvement",
    "log_expected_improvement",
    "max_uncertainty",
    "penalize",
    "probability_of_improvement",
    "score",
    "select_batch",
    "upper_confidence_bound",
]

Acquisition = Literal["ucb", "ei", "logei", "pi", "ue", "thompson"]

#: The acquisitions :func:`score` knows, by name.
ACQUISITIONS = ("ucb", "ei", "logei", "pi", "ue", "thompson")

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _mean_sigma(mean: Any, variance: Any) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(mean, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    if mean.shape != variance.shape:
        raise ValueError(
            f"`mean` and `variance` must have the same shape, got {mean.shape} and "
            f"{variance.shape}."
        )
    if mean.size == 0:
        raise ValueError("no candidates to score: `mean` is empty.")
    if not (np.isfinite(mean).all() and np.isfinite(variance).all()):
        raise ValueError("`mean` or `variance` holds NaN or infinite values.")
    if (variance < 0).any():
        raise ValueError("`variance` must be non-negative.")
    return mean, np.sqrt(np.maximum(variance, 1e-18))


def upper_confidence_bound(mean: Any, variance: Any, /, *, beta: float = 4.0) -> np.ndarray:
    """Upper confidence bound ``μ + √β σ`` (BoTorch's convention: β scales the variance).

    Parameters
    ----------
    mean, variance : array_like of shape (M,)
        Posterior mean and variance.
    beta : float
        Exploration weight on the variance (≥ 0); 0 is pure exploitation.

    Returns
    -------
    ndarray of shape (M,)

    Examples
    --------
    >>> upper_confidence_bound([0.0, 1.0], [1.0, 0.25], beta=4.0).tolist()
    [2.0, 2.0]
    """
    if not (beta >= 0 and math.isfinite(beta)):
        raise ValueError(f"`beta` must be a finite number >= 0, got {beta!r}.")
    mean, sigma = _mean_sigma(mean, variance)
    return mean + math.sqrt(beta) * sigma


def _z(mean: Any, variance: Any, best: float, xi: float) -> tuple[np.ndarray, np.ndarray]:
    if not math.isfinite(best):
        raise ValueError(f"`best` must be the best observed value (finite), got {best!r}.")
    mean, sigma = _mean_sigma(mean, variance)
    return (mean - best - xi) / sigma, sigma


def expected_improvement(
    mean: Any, variance: Any, /, *, best: float, xi: float = 0.0
) -> np.ndarray:
    """Expected improvement over the best observed value, ``σ [z Φ(z) + φ(z)]`` with
    ``z = (μ − best − ξ) / σ``.

    Parameters
    ----------
    mean, variance : array_like of shape (M,)
        Posterior mean and variance.
    best : float
        The best value observed so far (not the best predicted mean).
    xi : float
        Margin the improvement must exceed (≥ 0).

    Returns
    -------
    ndarray of shape (M,)
    """
    z, sigma = _z(mean, variance, best, xi)
    return sigma * (z * special.ndtr(z) + np.exp(-0.5 * z * z) / _SQRT_2PI)


def log_expected_improvement(
    mean: Any, variance: Any, /, *, best: float, xi: float = 0.0
) -> np.ndarray:
    """Logarithm of :func:`expected_improvement`, accurate where EI underflows to 0.

    Far below ``best`` EI is ~1e-300 or less and its ranking is lost in float64; its log
    stays ordered (Ament et al. 2023, as BoTorch's ``LogExpectedImprovement``).

    Parameters
    ----------
    mean, variance : array_like of shape (M,)
        Posterior mean and variance.
    best : float
        The best value observed so far.
    xi : float
        Margin the improvement must exceed.

    Returns
    -------
    ndarray of shape (M,)

    References
    ----------
    S. Ament, S. Daulton, D. Eriksson, M. Balandat, E. Bakshy, "Unexpected improvements to
    expected improvement for Bayesian optimization", NeurIPS 2023.
    """
    z, sigma = _z(mean, variance, best, xi)
    out = np.empty_like(z)
    hi = z > -1.0
    zh = z[hi]
    out[hi] = np.log(zh * special.ndtr(zh) + np.exp(-0.5 * zh * zh) / _SQRT_2PI)
    zl = z[~hi]
    # h(z) = φ(z) [1 + z Φ(z)/φ(z)] and Φ(z)/φ(z) = √(π/2) erfcx(−z/√2)
    log_phi = -0.5 * zl * zl - math.log(_SQRT_2PI)
    ratio = zl * math.sqrt(math.pi / 2.0) * special.erfcx(-zl / math.sqrt(2.0))
    tail = np.log1p(ratio)
    far = zl < -1e4  # 1 + ratio ≈ 1/z² there
    tail[far] = -2.0 * np.log(-zl[far])
    out[~hi] = log_phi + tail
    return out + np.log(sigma)


def probability_of_improvement(
    mean: Any, variance: Any, /, *, best: float, xi: float = 0.0
) -> np.ndarray:
    """Probability that the value beats ``best + ξ``: ``Φ((μ − best − ξ) / σ)``.

    Parameters
    ----------
    mean, variance : array_like of shape (M,)
        Posterior mean and variance.
    best : float
        The best value observed so far.
    xi : float
        Margin.

    Returns
    -------
    ndarray of shape (M,)
    """
    z, _ = _z(mean, variance, best, xi)
    return special.ndtr(z)


def max_uncertainty(mean: Any, variance: Any, /) -> np.ndarray:
    """Pure exploration: the posterior standard deviation σ (BoTorch's
    ``PosteriorStandardDeviation``).

    Parameters
    ----------
    mean, variance : array_like of shape (M,)
        Posterior mean and variance.

    Returns
    -------
    ndarray of shape (M,)
    """
    return _mean_sigma(mean, variance)[1]


def penalize(
    values: Any,
    /,
    *,
    positions: np.ndarray | None = None,
    last: Sequence[float] | None = None,
    distance_weight: float = 0.0,
    dose: np.ndarray | None = None,
    dose_weight: float = 0.0,
) -> np.ndarray:
    """Subtract costs from acquisition values: ``values − w_d · |x − x_last| − w_D · dose``.

    Parameters
    ----------
    values : array_like of shape (M,)
        Acquisition values.
    positions : ndarray of shape (M, 2), optional
        Candidate positions (x, y) [px].
    last : (float, float), optional
        Where the probe is now (x, y) [px].
    distance_weight : float
        Cost per pixel travelled, in the acquisition's units.
    dose : ndarray of shape (M,), optional
        Dose already given at each candidate [e⁻/Å²] (or any cost already spent there).
    dose_weight : float
        Cost per unit of ``dose``.

    Returns
    -------
    ndarray of shape (M,)

    Examples
    --------
    >>> pos = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> penalize([1.0, 1.0], positions=pos, last=(0, 0), distance_weight=0.1).tolist()
    [1.0, 0.5]
    """
    out = np.asarray(values, dtype=np.float64).copy()
    if distance_weight:
        if positions is None or last is None:
            raise ValueError("`distance_weight` needs `positions` and `last`.")
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape != (len(out), 2):
            raise ValueError(f"`positions` must have shape ({len(out)}, 2), got {pos.shape}.")
        out -= distance_weight * np.hypot(*(pos - np.asarray(last, dtype=np.float64)).T)
    if dose_weight:
        if dose is None:
            raise ValueError("`dose_weight` needs `dose`, the dose given at each candidate.")
        d = np.asarray(dose, dtype=np.float64)
        if d.shape != out.shape:
            raise ValueError(f"`dose` must have shape {out.shape}, got {d.shape}.")
        out -= dose_weight * d
    return out


def score(
    acquisition: Acquisition,
    model: Any,
    X: np.ndarray,
    /,
    *,
    best: float | None = None,
    beta: float = 4.0,
    xi: float = 0.0,
    rng: int | np.random.Generator | None = None,
    prediction: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Score candidates ``X`` with a named acquisition on a fitted surrogate.

    Parameters
    ----------
    acquisition : {"ucb", "ei", "logei", "pi", "ue", "thompson"}
        Which acquisition.
    model : Surrogate
        A fitted model.
    X : ndarray of shape (M, F)
        Candidates.
    best : float, optional
        Best value observed so far (needed by ei, logei, pi).
    beta : float
        UCB's weight on the variance.
    xi : float
        EI/PI margin.
    rng : int, Generator or None
        Seed of the Thompson sample.
    prediction : (mean, variance), optional
        ``model.predict(X)`` if already computed.

    Returns
    -------
    ndarray of shape (M,)
    """
    if acquisition not in ACQUISITIONS:
        raise ValueError(
            f"`acquisition` must be one of {', '.join(ACQUISITIONS)}; got {acquisition!r}."
        )
    if acquisition == "thompson":
        return model.sample(X, 1, rng=rng)[0]
    mean, var = prediction if prediction is not None else model.predict(X)
    if acquisition == "ucb":
        return upper_confidence_bound(mean, var, beta=beta)
    if acquisition == "ue":
        return max_uncertainty(mean, var)
    if best is None:
        raise ValueError(f"acquisition {acquisition!r} needs `best`, the best observed value.")
    if acquisition == "ei":
        return expected_improvement(mean, var, best=best, xi=xi)
    if acquisition == "logei":
        return log_expected_improvement(mean, var, best=best, xi=xi)
    return probability_of_improvement(mean, var, best=best, xi=xi)


def select_batch(
    model: Any,
    X: np.ndarray,
    q: int,
    /,
    *,
    acquisition: Acquisition = "ucb",
    best: float | None = None,
    beta: float = 4.0,
    xi: float = 0.0,
    available: np.ndarray | None = None,
    rng: int | np.random.Generator | None = None,
    adjust: Any = None,
    prediction: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``q`` candidates for one round.

    Thompson sampling takes the best candidate of each of ``q`` posterior samples (distinct);
    the other acquisitions pick greedily, each chosen point fantasised at its predicted mean
    before the next is scored (kriging believer: the variance shrinks around it, so the batch
    spreads out).

    Parameters
    ----------
    model : Surrogate
        A fitted model with ``condition``.
    X : ndarray of shape (M, F)
        Candidates.
    q : int
        Batch size (≥ 1).
    acquisition, best, beta, xi
        As for :func:`score`.
    available : ndarray of bool, shape (M,), optional
        Candidates that may be chosen (e.g. not measured yet).
    rng : int, Generator or None
        Seed of Thompson samples.
    adjust : callable, optional
        ``adjust(values) -> values`` applied to each score before the argmax (penalties).
    prediction : (mean, variance), optional
        ``model.predict(X)`` if already computed (used for the first pick).

    Returns
    -------
    indices : ndarray of int, shape (q,)
    values : ndarray of float, shape (q,)
        The acquisition value of each pick when it was picked.
    """
    X = np.asarray(X, dtype=np.float64)
    if len(X) == 0:
        raise ValueError("the candidate set is empty; there is nothing to choose from.")
    mask = np.ones(len(X), bool) if available is None else np.asarray(available, bool).copy()
    if int(q) < 1:
        raise ValueError(f"`q` (the batch size) must be >= 1, got {q!r}.")
    if mask.sum() < q:
        raise ValueError(f"only {int(mask.sum())} candidates are left for a batch of `q`={q}.")
    gen = np.random.default_rng(rng)
    picks: list[int] = []
    values: list[float] = []
    if acquisition == "thompson":
        draws = model.sample(X, int(q), rng=gen)
        for d in draws:
            v = adjust(d) if adjust is not None else d
            v = np.where(mask, v, -np.inf)
            i = int(np.argmax(v))
            picks.append(i)
            values.append(float(v[i]))
            mask[i] = False
        return np.array(picks), np.array(values)
    current = model
    for k in range(int(q)):
        pred = prediction if k == 0 and prediction is not None else current.predict(X)
        v = score(acquisition, current, X, best=best, beta=beta, xi=xi, prediction=pred)
        v = adjust(v) if adjust is not None else v
        v = np.where(mask, v, -np.inf)
        i = int(np.argmax(v))
        picks.append(i)
        values.append(float(v[i]))
        mask[i] = False
        if k + 1 < q:
            current = current.condition(X[i : i + 1], pred[0][i : i + 1])
    return np.array(picks), np.array(values)
