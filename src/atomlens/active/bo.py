"""Bayesian optimisation of instrument-like settings over a box: one objective (best value)
or two (Pareto front and its hypervolume).

The box is searched on a fixed, seeded Sobol set of candidates (scaled to the unit cube), an
:class:`~atomlens.active.models.ExactGP` is refitted every round, and the acquisitions of
:mod:`~atomlens.active.acquisitions` pick ``batch`` points per round. With two objectives each
gets its own GP and every round draws Thompson samples of both, scalarised with random
Chebyshev weights (ParEGO with Thompson sampling, Knowles 2006; Paria et al. 2019).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from atomlens.active.acquisitions import select_batch
from atomlens.active.models import ExactGP

logger = logging.getLogger(__name__)

__all__ = ["BOResult", "hypervolume", "maximize", "maximize_pareto", "pareto_mask"]


@dataclass
class BOResult:
    """Evaluations of a Bayesian optimisation.

    Attributes
    ----------
    X : ndarray of shape (S, D)
        Evaluated settings, in the box's units, in order.
    Y : ndarray of shape (S,) or (S, 2)
        Objective values.
    rounds : ndarray of int, shape (S,)
        Round of each evaluation (0 for the seed points).
    """

    X: np.ndarray
    Y: np.ndarray
    rounds: np.ndarray

    @property
    def best_so_far(self) -> np.ndarray:
        """Running maximum of a single objective, (S,)."""
        return np.maximum.accumulate(self.Y)


def _box(bounds: Sequence[Sequence[float]]) -> np.ndarray:
    b = np.asarray(bounds, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 2 or not (b[:, 0] < b[:, 1]).all():
        raise ValueError(
            f"`bounds` must be [(low, high), …] with low < high per dimension, got {bounds!r}."
        )
    return b


def _candidates(dims: int, n: int, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    return qmc.Sobol(dims, scramble=True, seed=seed).random(n)


def _check_budget(steps: int, n_seed: int, batch: int) -> None:
    if int(steps) < 1:
        raise ValueError(
            f"`steps` (the evaluation budget after the seeds) must be >= 1, got {steps}."
        )
    if int(n_seed) < 1 or int(batch) < 1:
        raise ValueError("`n_seed` and `batch` must be >= 1.")


def maximize(
    objective: Callable[[np.ndarray], float],
    /,
    bounds: Sequence[Sequence[float]],
    *,
    steps: int = 30,
    n_seed: int = 5,
    batch: int = 1,
    acquisition: str = "ucb",
    beta: float = 4.0,
    n_candidates: int = 4096,
    seed: int = 0,
    fit_iterations: int = 100,
    stop_value: float | None = None,
) -> BOResult:
    """Maximise an expensive function of a few settings.

    Parameters
    ----------
    objective : callable
        ``objective(x (D,)) -> float`` in the box's units.
    bounds : sequence of (low, high)
        The box, one pair per setting.
    steps : int
        Evaluations after the seed points.
    n_seed : int
        Random (Sobol) evaluations first.
    batch : int
        Evaluations per round (q).
    acquisition : {"ucb", "ei", "logei", "pi", "ue", "thompson", "random"}
        How a round is chosen (``random``: the baseline, no model).
    beta : float
        UCB weight on the variance (``μ + √β σ``).
    n_candidates : int
        Size of the Sobol candidate set.
    seed : int
        Seed of candidates, seed points and fits.
    fit_iterations : int
        Adam steps per GP fit.
    stop_value : float, optional
        Stop once an evaluation reaches it.

    Returns
    -------
    BOResult
    """
    b = _box(bounds)
    _check_budget(steps, n_seed, batch)
    cand = _candidates(len(b), n_candidates, seed)
    gen = np.random.default_rng([seed, 17])
    chosen = list(gen.choice(len(cand), size=n_seed, replace=False))
    ys = [float(objective(b[:, 0] + cand[i] * (b[:, 1] - b[:, 0]))) for i in chosen]
    rounds = [0] * n_seed
    r = 0
    while len(chosen) < n_seed + steps:
        if stop_value is not None and max(ys) >= stop_value:
            break
        r += 1
        q = min(batch, n_seed + steps - len(chosen))
        avail = np.ones(len(cand), bool)
        avail[chosen] = False
        rng = np.random.default_rng([seed, r])
        if acquisition == "random":
            picks = rng.choice(np.flatnonzero(avail), size=q, replace=False)
        else:
            gp = ExactGP(seed=seed * 1000 + r, fit_iterations=fit_iterations)
            gp.fit(cand[chosen], np.asarray(ys))
            picks, _ = select_batch(
                gp, cand, q, acquisition=acquisition,  # type: ignore[arg-type]
                best=max(ys), beta=beta, available=avail, rng=rng,
            )  # fmt: skip
        for i in picks:
            chosen.append(int(i))
            ys.append(float(objective(b[:, 0] + cand[i] * (b[:, 1] - b[:, 0]))))
            rounds.append(r)
    X = b[:, 0] + cand[chosen] * (b[:, 1] - b[:, 0])
    return BOResult(X=X, Y=np.asarray(ys), rounds=np.asarray(rounds))


def pareto_mask(Y: np.ndarray, /) -> np.ndarray:
    """Which rows of ``Y`` (N, K) are not dominated (all objectives maximised).

    Examples
    --------
    >>> pareto_mask(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.4, 0.4]])).tolist()
    [True, True, True, False]
    """
    Y = np.asarray(Y, dtype=np.float64)
    keep = np.ones(len(Y), bool)
    for start in range(0, len(Y), 512):  # chunks keep memory at 512 × N
        block = Y[start : start + 512]
        ge = (Y[None, :, :] >= block[:, None, :]).all(-1)
        gt = (Y[None, :, :] > block[:, None, :]).any(-1)
        keep[start : start + 512] = ~(ge & gt).any(1)
    return keep


def hypervolume(Y: np.ndarray, /, ref: Sequence[float]) -> float:
    """Hypervolume dominated by the points ``Y`` (N, 2) above the reference point (both
    objectives maximised).

    Parameters
    ----------
    Y : ndarray of shape (N, 2)
    ref : (float, float)
        Reference point, worse than every point of interest in both objectives.

    Returns
    -------
    float

    Examples
    --------
    >>> hypervolume(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), ref=(-1, -1))
    3.25
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] != 2:
        raise ValueError(f"`Y` must be (N, 2) for two objectives, got {Y.shape}.")
    r = np.asarray(ref, dtype=np.float64)
    Y = Y[(Y > r).all(1)]
    if len(Y) == 0:
        return 0.0
    Y = Y[np.lexsort((-Y[:, 1], -Y[:, 0]))]  # f1 descending; a sweep skips dominated points
    hv, prev_y = 0.0, r[1]
    for f1, f2 in Y:
        if f2 > prev_y:
            hv += (f1 - r[0]) * (f2 - prev_y)
            prev_y = f2
    return float(hv)


def maximize_pareto(
    objective: Callable[[np.ndarray], Sequence[float]],
    /,
    bounds: Sequence[Sequence[float]],
    *,
    steps: int = 40,
    n_seed: int = 6,
    n_candidates: int = 2048,
    seed: int = 0,
    fit_iterations: int = 100,
) -> BOResult:
    """Find the Pareto front of two expensive objectives (both maximised).

    Each round fits one GP per objective, draws a joint Thompson sample of each on the
    candidates, scales them by the observed ranges, and picks the argmax of the augmented
    Chebyshev scalarisation ``min_k λ_k ŷ_k + 0.05 Σ_k λ_k ŷ_k`` with random weights λ.

    Parameters
    ----------
    objective : callable
        ``objective(x (D,)) -> (f1, f2)``.
    bounds : sequence of (low, high)
        The box.
    steps : int
        Evaluations after the seed points.
    n_seed : int
        Sobol seed points.
    n_candidates : int
        Size of the candidate set.
    seed : int
        Seed of everything.
    fit_iterations : int
        Adam steps per GP fit.

    Returns
    -------
    BOResult
        ``Y`` is (S, 2); the front is ``Y[pareto_mask(Y)]``.

    References
    ----------
    J. Knowles, "ParEGO", IEEE Trans. Evol. Comput. 10, 50 (2006); B. Paria, K. Kandasamy,
    B. Póczos, "A flexible framework for multi-objective Bayesian optimization using random
    scalarizations", UAI 2019.
    """
    b = _box(bounds)
    _check_budget(steps, n_seed, 1)
    cand = _candidates(len(b), n_candidates, seed)
    gen = np.random.default_rng([seed, 23])
    chosen = list(gen.choice(len(cand), size=n_seed, replace=False))

    def evaluate(i: int) -> list[float]:
        out = [float(v) for v in objective(b[:, 0] + cand[i] * (b[:, 1] - b[:, 0]))]
        if len(out) != 2 or not all(math.isfinite(v) for v in out):
            raise ValueError("`objective` must return two finite values.")
        return out

    ys = [evaluate(i) for i in chosen]
    rounds = [0] * n_seed
    for r in range(1, steps + 1):
        Y = np.asarray(ys)
        rng = np.random.default_rng([seed, r])
        lam = rng.dirichlet([1.0, 1.0])
        lo, hi = Y.min(0), Y.max(0)
        span = np.where(hi > lo, hi - lo, 1.0)
        draws: list[Any] = []
        for k in range(2):
            gp = ExactGP(seed=seed * 1000 + 10 * r + k, fit_iterations=fit_iterations)
            gp.fit(cand[chosen], Y[:, k])
            draws.append((gp.sample(cand, 1, rng=rng)[0] - lo[k]) / span[k])
        s = np.stack(draws, -1) * lam
        val = s.min(-1) + 0.05 * s.sum(-1)
        val[chosen] = -np.inf
        i = int(np.argmax(val))
        chosen.append(i)
        ys.append(evaluate(i))
        rounds.append(r)
    X = b[:, 0] + cand[chosen] * (b[:, 1] - b[:, 0])
    return BOResult(X=X, Y=np.asarray(ys), rounds=np.asarray(rounds))
