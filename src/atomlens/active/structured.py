"""Structured Gaussian processes: a physical model as the mean, a GP on what it misses.

A plain GP knows nothing about physics. A structured GP takes the user's parametric model
``f(x, params)`` with a prior on every parameter (a distribution, not just bounds) as its
mean function and a GP kernel on the residual ``y − f(x, params)``: a few measurements pin
down the physics, and the kernel absorbs what the model leaves out. The same class gives
the two reference hypotheses: the parametric model alone (no kernel, independent Gaussian
noise; :func:`parametric_only`) and the GP alone (a constant mean; :func:`gp_only`).

Inference
---------
Both methods work on one log joint density over all parameters in an unconstrained space
(each prior's support mapped to the real line with ``torch.distributions.biject_to``, the
Jacobian included):

- ``method="map"`` (default): the mode by L-BFGS from ``restarts`` starting points (the
  prior means, then draws from the priors), a Laplace approximation around the best mode
  (a Gaussian with the inverse Hessian as covariance) for the log evidence (the
  approximate marginal likelihood), and importance sampling from it for the intervals
  and the predictive uncertainty. The Gaussian alone is too narrow where the posterior
  has heavier tails or is skewed (a wall between two sparse measurements can move
  further than the curvature at the mode says): on a 2D domain band (5 parameters and
  the GP's 4) fitted to 56 sets of 26–30 noisy points, its 90 % intervals held the truth
  for 79 % of the parameters, 10–23 % narrower than NUTS'. So the draws come from a
  split Student-t around the mode (Geweke 1989: Student-t with 4 degrees of freedom
  along the Hessian's principal axes, each side stretched to how far the density falls
  at probes 2 standard deviations out) and are weighted by posterior / proposal density:
  the same fits held the truth for 88 % (a converged importance sampler: 90 %), with
  widths within 3 % of NUTS', for 4 % more time per fit. ``ess_`` is the effective number
  of the weighted draws; below 1/16 of them, the weights are flattened toward the wider
  proposal.
- ``method="nuts"``: Pyro's No-U-Turn sampler on the same density, started at the MAP
  mode, ``chains`` chains one after the other, with the split-R̂ of every parameter.

Why not ``pyro.contrib.gp``: its ``GPRegression`` takes a mean function with
``PyroSample`` priors, but its MAP is SVI with Adam (hundreds of noisy steps, no restarts)
and it has no evidence; hypothesis learning refits models twice per step, and the explicit
density gives L-BFGS, the Laplace evidence and NUTS over exactly the same model.

Everything is float64. Inputs are ``(N, D)`` arrays (or ``(N,)`` for one dimension); the
mean function receives them as a float64 tensor of shape ``(N,)`` when ``D == 1`` and
``(N, D)`` otherwise, and the parameters as a dict of 0-d tensors; it must return a tensor
of shape ``(N,)`` built from torch operations (the gradients flow through it).

References
----------
M. Ziatdinov, Y. Liu, A. N. Morozovska, E. A. Eliseev, X. Zhang, I. Takeuchi,
S. V. Kalinin, "Hypothesis learning in automated experiment: application to combinatorial
materials libraries", Adv. Mater. 34, 2201345 (2022); arXiv:2112.06649.

J. Geweke, "Bayesian inference in econometric models using Monte Carlo integration",
Econometrica 57, 1317 (1989): the split Student-t importance sampler.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.distributions import Distribution, LogNormal, Normal, biject_to

__all__ = [
    "MeanFunction",
    "NUTSSettings",
    "StructuredGP",
    "gp_only",
    "parametric_only",
]

logger = logging.getLogger(__name__)

#: ``f(x, params) → y``: x a float64 tensor (N,) or (N, D), params a dict of 0-d tensors.
MeanFunction = Callable[[torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor]

_RESERVED = ("noise", "kernel_amplitude", "kernel_lengthscale")
_JITTER = 1e-8
_DTYPE = torch.float64
# the importance sampler around the MAP mode (method="map")
_PROPOSAL_FACTOR = 4  # proposal draws per posterior sample
_PROPOSAL_DOF = 4  # Student-t degrees of freedom of the proposal
_PROBE_STEP = 2.0  # probes of each principal axis at ±2 Laplace standard deviations…
_PROBE_HALVINGS = 3  # …and at 1, 0.5, 0.25 where the density is zero there
_MAX_STRETCH = 4.0  # a side of an axis is at most 4× (at least 1/4) its Laplace scale
_MIN_ESS = 1 / 16  # weights are flattened until this fraction of the draws counts


@dataclass(frozen=True)
class NUTSSettings:
    """Settings of the fully Bayesian fit (``method="nuts"``).

    Parameters
    ----------
    warmup : int
        Adaptation steps per chain (step size and diagonal mass matrix).
    samples : int
        Kept draws per chain.
    chains : int
        Chains, run one after the other (≥ 2 for a split-R̂ across chains; one chain is
        split in halves).
    max_tree_depth : int
        Largest tree depth of a NUTS step (at most 2**depth − 1 gradient evaluations).
    target_accept : float
        Target acceptance probability of the step-size adaptation.
    """

    warmup: int = 150
    samples: int = 150
    chains: int = 2
    max_tree_depth: int = 6
    target_accept: float = 0.8

    def __post_init__(self) -> None:
        problems = []
        for name in ("warmup", "samples", "chains", "max_tree_depth"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                problems.append(f"`{name}` must be a positive integer, got {v!r}")
        if self.samples < 4 and not problems:
            problems.append(f"`samples` must be at least 4 for split-R̂, got {self.samples}")
        if not (0.5 <= float(self.target_accept) < 1.0):
            problems.append(f"`target_accept` must be within [0.5, 1), got {self.target_accept!r}")
        if problems:
            raise ValueError("NUTSSettings: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict."""
        return asdict(self)


def _torch_seed(rng: int | np.random.Generator | None) -> int:
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**62))
    if rng is None:
        return int(np.random.default_rng().integers(0, 2**62))
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return int(rng)
    raise TypeError(f"`rng` must be an int, a numpy Generator or None, got {rng!r}.")


def _as_inputs(X: Any, *, name: str) -> torch.Tensor:
    arr = np.asarray(X, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"`{name}` must be an array of shape (N,) or (N, D), got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` holds NaN or infinite values; remove those points.")
    return torch.tensor(arr, dtype=_DTYPE)  # a copy: the caller's array may be read-only


class StructuredGP:
    """A parametric physical model with priors as the mean of a GP on the residual.

    ``fit(X, y)`` / ``predict(X) → (mean, variance)`` / ``sample(X, n)``, like every
    surrogate model of :mod:`atomlens.active`.

    Parameters
    ----------
    mean_fn : callable
        ``f(x, params) → y``: x a float64 tensor of shape (N,) for 1D inputs or (N, D),
        params a dict of 0-d tensors named as ``priors``; returns shape (N,). Built from
        torch operations. Guard powers and logarithms at 0 (``x.clamp_min(1e-12)``):
        ``torch.where`` passes NaN gradients from the branch it does not take.
    priors : mapping of str to torch.distributions.Distribution
        One scalar prior per parameter of ``mean_fn`` (``pyro.distributions`` work too),
        in the parameter's own units. The names ``noise``, ``kernel_amplitude`` and
        ``kernel_lengthscale`` are reserved.
    kernel : {"rbf", "matern52"} or None
        Kernel on the residual, with one length scale per input dimension (ARD); ``None``
        for the parametric model alone with independent Gaussian noise.
    lengthscale_prior : Distribution, optional
        Prior of each length scale [units of x]; LogNormal(0, 1) by default (scale x to
        order 1, or pass a prior in your units).
    amplitude_prior : Distribution, optional
        Prior of the kernel's standard deviation [units of y]; LogNormal(log 0.1, 1) by
        default: the residual the physics leaves is expected to be small.
    noise_prior : Distribution, optional
        Prior of the measurement noise standard deviation [units of y];
        LogNormal(log 0.1, 1) by default.
    method : {"map", "nuts"}
        MAP with restarts, a Laplace approximation and importance sampling around it
        (fast), or NUTS (fully Bayesian).
    restarts : int
        Starting points of the MAP search (the first at the prior means, the others drawn
        from the priors). NUTS starts from the MAP mode found with them.
    nuts : NUTSSettings, optional
        Settings of ``method="nuts"``.
    posterior_samples : int
        Posterior draws used for predictions. MAP: 4× as many importance-weighted draws
        give the intervals, and this many are resampled from them (systematic
        resampling, each distinct draw kept once with its multiplicity as its weight) for
        ``predict`` and ``sample``. NUTS: the chains' draws, thinned to at most this many
        for predictions.
    name : str, optional
        How logs and errors call the model.
    rng : int, Generator or None
        Seed of the restarts, the importance draws and NUTS; the same seed and data give
        the same fit (the same draws at every fit: common random numbers).

    Attributes
    ----------
    log_evidence_ : float
        Laplace approximation of the log marginal likelihood, after ``fit``.
    ess_ : float or None
        ``method="map"``: effective sample size of the importance weights (of
        ``4 * posterior_samples`` draws; below 1/16 of them the weights were flattened
        toward the proposal and the intervals are wider than the posterior's). ``None``
        for NUTS.
    rhat_ : dict or None
        ``method="nuts"``: split-R̂ of every parameter; ``None`` for MAP.

    Examples
    --------
    >>> import torch
    >>> from torch.distributions import Normal
    >>> line = StructuredGP(lambda x, p: p["a"] * x, {"a": Normal(0.0, 5.0)}, restarts=1, rng=0)
    >>> x = np.linspace(0, 1, 8)
    >>> round(line.fit(x, 2 * x).parameters()["a"]["estimate"], 2)
    2.0
    """

    def __init__(
        self,
        mean_fn: MeanFunction,
        priors: Mapping[str, Distribution],
        *,
        kernel: Literal["rbf", "matern52"] | None = "rbf",
        lengthscale_prior: Distribution | None = None,
        amplitude_prior: Distribution | None = None,
        noise_prior: Distribution | None = None,
        method: Literal["map", "nuts"] = "map",
        restarts: int = 8,
        nuts: NUTSSettings | None = None,
        posterior_samples: int = 128,
        name: str | None = None,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        if not callable(mean_fn):
            raise TypeError(f"`mean_fn` must be a callable f(x, params), got {mean_fn!r}.")
        if not isinstance(priors, Mapping):
            raise TypeError(
                f"`priors` must map parameter names to distributions, got {type(priors).__name__}."
            )
        for key, prior in priors.items():
            if not isinstance(key, str) or not key.isidentifier():
                raise ValueError(f"`priors`: parameter names must be identifiers, got {key!r}.")
            if key in _RESERVED:
                raise ValueError(
                    f"`priors`: {key!r} is reserved for the kernel and noise; rename the "
                    "mean function's parameter."
                )
            _check_prior(prior, f"priors[{key!r}]")
        if kernel not in ("rbf", "matern52", None):
            raise ValueError(f"`kernel` must be 'rbf', 'matern52' or None, got {kernel!r}.")
        if method not in ("map", "nuts"):
            raise ValueError(f"`method` must be 'map' or 'nuts', got {method!r}.")
        if not isinstance(restarts, int) or isinstance(restarts, bool) or restarts < 1:
            raise ValueError(f"`restarts` must be a positive integer, got {restarts!r}.")
        if not isinstance(posterior_samples, int) or posterior_samples < 8:
            raise ValueError(
                f"`posterior_samples` must be an integer ≥ 8, got {posterior_samples!r}."
            )
        self.mean_fn = mean_fn
        self.priors = dict(priors)
        self.kernel = kernel
        self.lengthscale_prior = lengthscale_prior or LogNormal(0.0, 1.0)
        self.amplitude_prior = amplitude_prior or LogNormal(math.log(0.1), 1.0)
        self.noise_prior = noise_prior or LogNormal(math.log(0.1), 1.0)
        for label, p in (
            ("lengthscale_prior", self.lengthscale_prior),
            ("amplitude_prior", self.amplitude_prior),
            ("noise_prior", self.noise_prior),
        ):
            _check_prior(p, label)
        self.method = method
        self.restarts = restarts
        self.nuts = nuts if nuts is not None else NUTSSettings()
        if not isinstance(self.nuts, NUTSSettings):
            raise TypeError(f"`nuts` must be NUTSSettings, got {type(nuts).__name__}.")
        self.posterior_samples = posterior_samples
        self.name = name or getattr(mean_fn, "__name__", "model")
        self._named = name is not None  # else the loop names it by its key
        self._seed = _torch_seed(rng)
        self._fitted = False

    # ------------------------------------------------------------------ the density
    def _layout(self, d: int) -> list[tuple[str, Distribution]]:
        out = list(self.priors.items())
        if self.kernel is not None:
            out.append(("kernel_amplitude", self.amplitude_prior))
            names = (
                ["kernel_lengthscale"] if d == 1 else [f"kernel_lengthscale_{i}" for i in range(d)]
            )
            out += [(n, self.lengthscale_prior) for n in names]
        out.append(("noise", self.noise_prior))
        return out

    def _constrain(self, z: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        theta, log_det = {}, torch.zeros((), dtype=_DTYPE)
        for i, ((name, _), t) in enumerate(zip(self._params, self._transforms, strict=True)):
            theta[name] = t(z[i])
            log_det = log_det + t.log_abs_det_jacobian(z[i], theta[name])
        return theta, log_det

    def _mean(self, X: torch.Tensor, theta: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = X[:, 0] if X.shape[1] == 1 else X
        out = self.mean_fn(x, {k: theta[k] for k in self.priors})
        if not isinstance(out, torch.Tensor):
            out = torch.as_tensor(np.asarray(out, dtype=float), dtype=_DTYPE)
        out = out.to(_DTYPE).reshape(-1)
        if out.shape[0] != X.shape[0]:
            raise ValueError(
                f"model {self.name!r}: the mean function returned {out.shape[0]} values for "
                f"{X.shape[0]} points; it must return one value per point, shape (N,)."
            )
        return out

    def _kernel(self, A: torch.Tensor, B: torch.Tensor, theta: Mapping[str, torch.Tensor]):
        # theta's values are 0-d, or of shape (S,) for S parameter sets: then (S, N, M)
        d = A.shape[1]
        names = ["kernel_lengthscale"] if d == 1 else [f"kernel_lengthscale_{i}" for i in range(d)]
        ls = torch.stack([theta[n] for n in names], -1)
        diff = (A[:, None, :] - B[None, :, :]) / ls[..., None, None, :]
        r2 = (diff**2).sum(-1)
        amp2 = (theta["kernel_amplitude"] ** 2)[..., None, None]
        if self.kernel == "rbf":
            return amp2 * torch.exp(-0.5 * r2)
        r = torch.sqrt(r2 + 1e-30) * math.sqrt(5.0)
        return amp2 * (1.0 + r + r**2 / 3.0) * torch.exp(-r)

    def _log_joint(self, z: torch.Tensor) -> torch.Tensor:
        if not bool(torch.isfinite(z).all()):
            return torch.full((), -math.inf, dtype=_DTYPE)
        theta, log_det = self._constrain(z)
        lp = log_det
        for name, prior in self._params:
            lp = lp + prior.log_prob(theta[name])
        resid = self._y - self._mean(self._X, theta)
        if not bool(torch.isfinite(resid).all()):
            return torch.full((), -math.inf, dtype=_DTYPE)
        n = resid.shape[0]
        if self.kernel is None:
            noise = Normal(torch.zeros((), dtype=_DTYPE), theta["noise"], validate_args=False)
            return lp + noise.log_prob(resid).sum()
        K = self._kernel(self._X, self._X, theta)
        K = K + (theta["noise"] ** 2 + _JITTER * (1 + K.diagonal().mean().detach())) * torch.eye(
            n, dtype=_DTYPE
        )
        L, info = torch.linalg.cholesky_ex(K)
        if int(info) != 0:
            return torch.full((), -math.inf, dtype=_DTYPE)
        a = torch.cholesky_solve(resid[:, None], L)[:, 0]
        ll = -0.5 * resid @ a - torch.log(L.diagonal()).sum() - 0.5 * n * math.log(2 * math.pi)
        return lp + ll

    def _log_joint_batch(self, Z: torch.Tensor) -> torch.Tensor:
        """``_log_joint`` of every row of ``Z`` (S, P), without gradients: shape (S,).

        The priors, the transforms and the GP are evaluated for all rows at once (the
        mean function once per row: it takes 0-d parameters), in chunks that keep the
        (S, N, N) kernel matrices to about 32 MB.
        """
        n, d = self._X.shape
        chunk = max(1, 4_000_000 // (n * n * (d + 1)))
        if Z.shape[0] > chunk:
            return torch.cat(
                [self._log_joint_batch(Z[i : i + chunk]) for i in range(0, len(Z), chunk)]
            )
        with torch.no_grad():
            ok = torch.isfinite(Z).all(1)
            Z = torch.where(ok[:, None], Z, torch.zeros_like(Z))
            theta, lp = {}, torch.zeros(Z.shape[0], dtype=_DTYPE)
            for i, ((name, prior), t) in enumerate(
                zip(self._params, self._transforms, strict=True)
            ):
                theta[name] = t(Z[:, i])
                lp = lp + t.log_abs_det_jacobian(Z[:, i], theta[name]) + prior.log_prob(theta[name])
            means = torch.stack(
                [self._mean(self._X, {k: theta[k][s] for k in self.priors}) for s in range(len(Z))]
            )
            resid = self._y - means
            ok = ok & torch.isfinite(resid).all(1) & torch.isfinite(lp)
            resid = torch.where(ok[:, None], resid, torch.zeros_like(resid))
            if self.kernel is None:
                noise = theta["noise"][:, None]
                ll = (-0.5 * (resid / noise) ** 2 - torch.log(noise)).sum(1) - 0.5 * n * math.log(
                    2 * math.pi
                )
            else:
                K = self._kernel(self._X, self._X, theta)
                diag = theta["noise"] ** 2 + _JITTER * (1 + K.diagonal(dim1=1, dim2=2).mean(1))
                K = K + diag[:, None, None] * torch.eye(n, dtype=_DTYPE)
                K = torch.where(ok[:, None, None], K, torch.eye(n, dtype=_DTYPE))
                L, info = torch.linalg.cholesky_ex(K)
                ok = ok & (info == 0)
                a = torch.cholesky_solve(resid[..., None], L)[..., 0]
                ll = (
                    -0.5 * (resid * a).sum(1)
                    - torch.log(L.diagonal(dim1=1, dim2=2)).sum(1)
                    - 0.5 * n * math.log(2 * math.pi)
                )
            out = lp + ll
        return torch.where(ok & torch.isfinite(out), out, torch.full_like(out, -math.inf))

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any) -> StructuredGP:
        """Fit the model to measurements.

        Parameters
        ----------
        X : array_like of shape (N,) or (N, D)
            Where the measurements were made [units of the model's x].
        y : array_like of shape (N,)
            The measured values [units of the model's y].

        Returns
        -------
        StructuredGP
            ``self``, fitted.

        Raises
        ------
        ValueError
            Bad inputs, or when the mean function returns NaN/inf at every starting point
            (the message names the model).
        """
        X_t = _as_inputs(X, name="X")
        y_arr = np.asarray(y, dtype=float).reshape(-1)
        if y_arr.shape[0] != X_t.shape[0]:
            raise ValueError(
                f"`y` has {y_arr.shape[0]} values for {X_t.shape[0]} points in `X`; pass one "
                "value per point."
            )
        if not np.all(np.isfinite(y_arr)):
            raise ValueError("`y` holds NaN or infinite values; remove those measurements.")
        self._X, self._y = X_t, torch.as_tensor(y_arr, dtype=_DTYPE)
        # copies without argument validation: it costs more than the density itself
        self._params = [(n, _unvalidated(p)) for n, p in self._layout(X_t.shape[1])]
        self._transforms = [biject_to(p.support) for _, p in self._params]
        self.param_names = [n for n, _ in self._params]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed)
            z_map, value = self._map()
            z_map, value, scale, V, stretch = self._laplace(z_map, value)
            self._z_map = z_map
            self.rhat_: dict[str, float] | None = None
            self.ess_: float | None = None
            self._fit_method = self.method
            if self.method == "nuts":
                samples = self._run_nuts(z_map)
                self._z_samples = samples
                self._sample_weights = torch.full((len(samples),), 1.0 / len(samples), dtype=_DTYPE)
                self._sample_order = torch.arange(len(samples))
            else:
                self._importance(z_map, value, scale, V, stretch)
        self._fitted = True
        return self

    def _initial_points(self) -> list[torch.Tensor]:
        starts = []
        for r in range(self.restarts):
            vals = []
            for name, prior in self._params:
                kernel_param = name not in self.priors
                v = None
                if r == 0 or kernel_param:
                    try:
                        v = prior.mean
                        if not bool(torch.isfinite(v)) or not bool(prior.support.check(v)):
                            v = None
                    except NotImplementedError:
                        v = None
                    if v is not None and isinstance(prior, LogNormal):
                        v = torch.exp(prior.loc)  # the median: the mean sits in the tail
                if v is None:
                    v = prior.sample()
                vals.append(biject_to(prior.support).inv(torch.as_tensor(v, dtype=_DTYPE)))
            starts.append(torch.stack(vals).to(_DTYPE).detach())
        return starts

    def _map(self) -> tuple[torch.Tensor, float]:
        best_z, best = None, -math.inf
        for z0 in self._initial_points():
            start = float(self._log_joint(z0))
            if not math.isfinite(start):
                continue
            zf, value = self._climb(z0, start)
            if value > best:
                best_z, best = zf, value
        if best_z is None:
            raise ValueError(
                f"model {self.name!r}: the log density is NaN or infinite at every starting "
                "point (does the mean function return NaN, or are the priors far from the "
                "data?)."
            )
        return best_z, best

    def _climb(self, z0: torch.Tensor, start: float) -> tuple[torch.Tensor, float]:
        """L-BFGS from ``z0`` (log joint ``start``): the point reached and its log joint."""
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.LBFGS(
            [z],
            lr=1.0,
            max_iter=200,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-7,
            tolerance_change=1e-12,
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = -self._log_joint(z)
            if not torch.isfinite(loss):
                return torch.tensor(1e30, dtype=_DTYPE)
            loss.backward()
            if not torch.all(torch.isfinite(z.grad)):
                z.grad = torch.nan_to_num(z.grad, nan=0.0, posinf=0.0, neginf=0.0)
            return loss

        try:
            opt.step(closure)
        except RuntimeError as exc:  # a linear-algebra failure at one start only
            logger.debug("%s: a MAP start failed (%s)", self.name, exc)
        with torch.no_grad():
            zf = z.detach().clone()
            value = float(self._log_joint(zf))
        if not math.isfinite(value) or not bool(torch.all(torch.isfinite(zf))) or value < start:
            return z0, start
        return zf, value

    def _neg_log_joint_hessian(self, z: torch.Tensor) -> torch.Tensor:
        return torch.autograd.functional.hessian(lambda v: -self._log_joint(v), z)

    def _laplace(self, z_map: torch.Tensor, value: float):
        """The Laplace approximation at the mode, checked along its principal axes.

        The log joint is probed at ±2, 1, 0.5 and 0.25 Laplace standard deviations along
        each eigenvector of the Hessian. Returns the mode and its log joint (moved when a
        probe is higher: the search had stopped at a saddle, and climbs on from there
        once), the scale of each axis (1/√λ in the unconstrained space; 1 where the
        curvature λ is not positive, a saddle or a flat direction, which the probes then
        size), the eigenvectors (P, P), and the stretch (2, P) of each axis on its + and −
        side: the Gaussian scale that the fall of the density at the farthest usable probe
        implies, over the Laplace one, within [1/4, 4] (4 where it does not fall at all).
        Sets ``log_evidence_``: the Laplace evidence, each curvature taken by its size.
        """
        for attempt in range(2):
            H = self._neg_log_joint_hessian(z_map)
            H = torch.nan_to_num(0.5 * (H + H.T), nan=0.0)
            lam, V = torch.linalg.eigh(H)
            floor = max(1e-8 * float(lam.abs().max()), 1e-6)
            # probes at ±_PROBE_STEP scales along each axis, then half, quarter, eighth
            scale = torch.where(lam > floor, lam.clamp_min(floor).rsqrt(), torch.ones_like(lam))
            p = z_map.shape[0]
            steps = _PROBE_STEP * 0.5 ** torch.arange(_PROBE_HALVINGS + 1, dtype=_DTYPE)
            sign = torch.tensor([1.0, -1.0], dtype=_DTYPE)
            offsets = sign[:, None, None] * steps[None, :, None] * scale[None, None, :]  # (2, K, P)
            probes = z_map + offsets[..., None] * V.T[None, None, :, :]  # (2, K, P, P)
            drop = value - self._log_joint_batch(probes.reshape(-1, p)).reshape(2, -1, p)
            best = int(torch.argmin(drop.nan_to_num(math.inf)))
            if attempt == 0 and float(drop.flatten()[best]) < -1e-6 * max(1.0, abs(value)):
                # not a maximum: climb on from the best probe, once
                z_try = probes.reshape(-1, p)[best]
                z_new, v_new = self._climb(z_try, value - float(drop.flatten()[best]))
                logger.debug(
                    "%s: the mode was a saddle; climbed %.3g higher", self.name, v_new - value
                )
                z_map, value = z_new, v_new
                continue
            break
        # the Gaussian scale each side implies: a drop d at step h ↔ sd h / sqrt(2 d)
        usable = torch.isfinite(drop) & (drop > 0)
        implied = steps[None, :, None] / torch.sqrt(2 * drop.clamp_min(1e-300))  # in scales
        first = torch.where(usable, torch.arange(len(steps))[None, :, None], len(steps)).amin(1)
        stretch = torch.gather(implied, 1, first.clamp_max(len(steps) - 1)[:, None, :])[:, 0, :]
        flat = (torch.isfinite(drop) & (drop <= 0)).any(1)  # rises or stays: widest
        stretch = torch.where(first < len(steps), stretch, torch.where(flat, _MAX_STRETCH, 1.0))
        stretch = stretch.clamp(1.0 / _MAX_STRETCH, _MAX_STRETCH)
        lam_abs = lam.abs().clamp_min(floor)  # the evidence: a curvature's size, as before
        self.log_evidence_ = (
            value + 0.5 * p * math.log(2 * math.pi) - 0.5 * float(torch.log(lam_abs).sum())
        )
        return z_map, value, scale, V, stretch

    def _importance(
        self,
        z_map: torch.Tensor,
        value: float,
        scale: torch.Tensor,
        V: torch.Tensor,
        stretch: torch.Tensor,
    ) -> None:
        """Importance-weighted draws of the posterior around the mode.

        The proposal is a split Student-t (Geweke 1989): Student-t with ``_PROPOSAL_DOF``
        degrees of freedom along the Hessian's principal axes, each side stretched to how
        the density actually falls there. Each draw is weighted by posterior / proposal
        density. Weights so uneven that fewer than a fraction ``_MIN_ESS`` of the draws
        count are flattened (``w**a``, the largest ``a`` that reaches it): the draws then
        stand between the weighted posterior and the wider proposal.
        """
        p = z_map.shape[0]
        n = _PROPOSAL_FACTOR * self.posterior_samples
        nu = _PROPOSAL_DOF
        # common random numbers: the same draws at every fit of this model
        g = torch.Generator().manual_seed(self._seed)
        eps = torch.randn(n, p, generator=g, dtype=_DTYPE)
        chi2 = (torch.randn(n, nu, generator=g, dtype=_DTYPE) ** 2).sum(1)
        u = float(torch.rand((), generator=g, dtype=_DTYPE))
        e = eps / torch.sqrt(chi2 / nu)[:, None]
        side = torch.where(e >= 0, stretch[0], stretch[1])
        log_q = -0.5 * (nu + p) * torch.log1p((e**2).sum(1) / nu) - torch.log(side).sum(1)
        Z = z_map + (e * side * scale) @ V.T
        log_w = self._log_joint_batch(Z) - value - log_q
        finite = torch.isfinite(log_w)
        if not bool(finite.any()):
            raise ValueError(
                f"model {self.name!r}: the log density is NaN or infinite all around its mode; "
                "check the mean function and the priors."
            )
        log_w = torch.where(finite, log_w - log_w[finite].max(), -math.inf)
        self.ess_ = _ess(log_w)
        min_ess = min(_MIN_ESS * n, float(finite.sum()))
        if self.ess_ < min_ess:

            def flattened(a: float) -> torch.Tensor:
                return torch.where(finite, a * log_w, -math.inf)

            lo, hi = 0.0, 1.0
            for _ in range(40):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if _ess(flattened(mid)) >= min_ess else (lo, mid)
            log_w = flattened(lo)
            # debug, not info: a hypothesis loop refits every model at every step, and at
            # info this line came dozens of times between the progress bar's updates;
            # ``ess_`` gives it to a caller
            logger.debug(
                "%s: the posterior is far from the Laplace approximation (%.1f of %d "
                "importance draws count); its intervals are widened toward the proposal. "
                "More restarts or method='nuts' may help.",
                self.name,
                self.ess_,
                n,
            )
        w = torch.exp(log_w)
        w = w / w.sum()
        self._draw_weights = w
        self._draw_theta = torch.stack([t(Z[:, i]) for i, t in enumerate(self._transforms)], 1)
        # predictions: posterior_samples draws by systematic resampling, each kept once
        # with its multiplicity as its weight
        cdf = torch.cumsum(w, 0)
        pos = (u + torch.arange(self.posterior_samples, dtype=_DTYPE)) / self.posterior_samples
        # right: a draw of zero weight (no rise of the cdf) is never taken
        idx = torch.searchsorted(cdf, pos * cdf[-1], right=True).clamp_max(n - 1)
        keep, order, counts = torch.unique(idx, return_inverse=True, return_counts=True)
        self._z_samples = Z[keep]
        self._sample_weights = counts.to(_DTYPE) / self.posterior_samples
        self._sample_order = order

    def _run_nuts(self, z_map: torch.Tensor) -> torch.Tensor:
        # deferred: Pyro loads only for the fully Bayesian fit
        from pyro.infer.mcmc import MCMC, NUTS
        from pyro.ops.stats import split_gelman_rubin

        def potential(p: dict[str, torch.Tensor]) -> torch.Tensor:
            z = p["z"]
            energy = -self._log_joint(z)
            if energy.grad_fn is None:  # zero density (a failed Cholesky, a NaN): +inf,
                energy = energy + 0.0 * torch.nan_to_num(z).sum()  # still with a gradient
            return energy

        s = self.nuts
        chains = []
        for c in range(s.chains):
            kernel = NUTS(
                potential_fn=potential,
                max_tree_depth=s.max_tree_depth,
                target_accept_prob=s.target_accept,
            )
            init = z_map + 0.1 * torch.randn(z_map.shape, dtype=_DTYPE) * (c > 0)
            mcmc = MCMC(
                kernel,
                num_samples=s.samples,
                warmup_steps=s.warmup,
                initial_params={"z": init},
                disable_progbar=True,
            )
            mcmc.run()
            chains.append(mcmc.get_samples()["z"].to(_DTYPE))
        Z = torch.stack(chains)  # (C, S, P)
        theta = torch.stack(
            [
                torch.stack([torch.stack(list(self._constrain(z)[0].values())) for z in ch])
                for ch in Z
            ]
        )
        rhat = split_gelman_rubin(theta, chain_dim=0, sample_dim=1)
        self.rhat_ = {n: float(r) for n, r in zip(self.param_names, rhat, strict=True)}
        flat = Z.reshape(-1, Z.shape[-1])
        keep = torch.linspace(0, flat.shape[0] - 1, min(self.posterior_samples, flat.shape[0]))
        self._nuts_theta = theta.reshape(-1, theta.shape[-1])
        return flat[keep.round().long()]

    # ------------------------------------------------------------------ results
    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError(f"model {self.name!r} is not fitted; call fit(X, y) first.")

    def _posterior_at(self, Xs: torch.Tensor, z: torch.Tensor, *, full_cov: bool = False):
        theta, _ = self._constrain(z)
        m_star = self._mean(Xs, theta)
        if self.kernel is None:
            n = Xs.shape[0]
            zero = torch.zeros((n, n) if full_cov else (n,), dtype=_DTYPE)
            return m_star, zero
        resid = self._y - self._mean(self._X, theta)
        K = self._kernel(self._X, self._X, theta)
        n = K.shape[0]
        K = K + (theta["noise"] ** 2 + _JITTER * (1 + K.diagonal().mean())) * torch.eye(
            n, dtype=_DTYPE
        )
        L, info = torch.linalg.cholesky_ex(K)
        if int(info) != 0:
            raise ValueError(f"model {self.name!r}: the kernel matrix is not positive definite.")
        Ks = self._kernel(self._X, Xs, theta)
        a = torch.cholesky_solve(resid[:, None], L)[:, 0]
        mean = m_star + Ks.T @ a
        v = torch.linalg.solve_triangular(L, Ks, upper=False)
        if full_cov:
            return mean, self._kernel(Xs, Xs, theta) - v.T @ v
        var = theta["kernel_amplitude"] ** 2 - (v**2).sum(0)
        return mean, var.clamp_min(0.0)

    def predict(self, X: Any, *, noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Posterior predictive mean and variance of the function (or of a measurement).

        Parameters
        ----------
        X : array_like of shape (M,) or (M, D)
            Where to predict.
        noise : bool
            Add the measurement noise variance: the variance of a new measurement rather
            than of the noise-free function.

        Returns
        -------
        mean, variance : ndarray of shape (M,)
            Weighted averages over the posterior draws (MAP: the ``posterior_samples``
            draws resampled from the importance-weighted ones, each weighted by its
            multiplicity; NUTS: equal weights) [units of y]: the variance is the mean GP
            variance plus the spread of the draws' means [units of y, squared].

        Raises
        ------
        ValueError
            When the model predicts NaN or infinite values (the message names it).
        """
        self._check_fitted()
        Xs = _as_inputs(X, name="X")
        means, variances = [], []
        with torch.no_grad():
            for z in self._z_samples:
                m, v = self._posterior_at(Xs, z)
                if noise:
                    v = v + self._constrain(z)[0]["noise"] ** 2
                means.append(m)
                variances.append(v)
        M, V = torch.stack(means), torch.stack(variances)
        w = self._sample_weights[:, None]
        mean_t = (w * M).sum(0)
        mean = mean_t.numpy()
        var = ((w * V).sum(0) + (w * (M - mean_t) ** 2).sum(0)).numpy()
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var))):
            raise ValueError(f"model {self.name!r} predicts NaN or infinite values.")
        return mean, var

    def sample(self, X: Any, n: int, *, rng: int | np.random.Generator | None = None) -> np.ndarray:
        """Draws of the noise-free function from the posterior.

        Parameters
        ----------
        X : array_like of shape (M,) or (M, D)
            Where to draw.
        n : int
            Number of draws.
        rng : int, Generator or None
            Seed of the draws.

        Returns
        -------
        ndarray of shape (n, M)
        """
        self._check_fitted()
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"`n` must be a positive integer, got {n!r}.")
        Xs = _as_inputs(X, name="X")
        g = torch.Generator().manual_seed(_torch_seed(rng))
        out = []
        with torch.no_grad():
            for i in range(n):
                z = self._z_samples[self._sample_order[i % len(self._sample_order)]]
                m, C = self._posterior_at(Xs, z, full_cov=True)
                if self.kernel is None:
                    out.append(m)
                    continue
                C = 0.5 * (C + C.T) + 1e-9 * (1 + C.diagonal().abs().mean()) * torch.eye(
                    C.shape[0], dtype=_DTYPE
                )
                lam, U = torch.linalg.eigh(C)
                e = torch.randn(C.shape[0], generator=g, dtype=_DTYPE)
                out.append(m + U @ (lam.clamp_min(0).sqrt() * e))
        return torch.stack(out).numpy()

    def parameters(self, *, level: float = 0.9) -> dict[str, dict[str, float]]:
        """Posterior of every parameter: estimate, mean, sd and a central interval.

        Parameters
        ----------
        level : float
            Probability of the central interval (0.9: from the 5th to the 95th percentile).

        Returns
        -------
        dict
            Parameter name → ``{"estimate", "mean", "sd", "low", "high"}`` in the
            parameter's units. ``estimate`` is the MAP value (``method="map"``) or the
            posterior median (``"nuts"``). ``mean``, ``sd`` and the interval are those of
            the importance-weighted draws around the mode (MAP; weighted quantiles, the
            weighted empirical distribution interpolated between draws) or of the NUTS
            draws. The MAP intervals are the posterior's to the accuracy of
            ``4 * posterior_samples`` weighted draws (see ``ess_``), not the Laplace
            Gaussian's, which is too narrow where the posterior has heavy tails.
        """
        self._check_fitted()
        if not (0 < level < 1):
            raise ValueError(f"`level` must be within (0, 1), got {level!r}.")
        lo, hi = (1 - level) / 2, (1 + level) / 2
        map_theta = torch.stack(list(self._constrain(self._z_map)[0].values()))
        if self._fit_method == "nuts":
            theta = self._nuts_theta
            quant = torch.quantile(theta, torch.tensor([lo, 0.5, hi], dtype=_DTYPE), dim=0)
            low, est, high = quant
            mean, sd = theta.mean(0), theta.std(0)
        else:
            theta, w = self._draw_theta, self._draw_weights
            est = map_theta
            low, high = _weighted_quantiles(theta, w, [lo, hi])
            mean = (w[:, None] * theta).sum(0)
            sd = torch.sqrt((w[:, None] * (theta - mean) ** 2).sum(0))
        return {
            name: {
                "estimate": float(est[i]),
                "mean": float(mean[i]),
                "sd": float(sd[i]),
                "low": float(low[i]),
                "high": float(high[i]),
            }
            for i, name in enumerate(self.param_names)
        }

    def describe(self) -> dict[str, Any]:
        """The model's settings as a JSON-able dict (priors by their repr)."""
        return {
            "name": self.name,
            "mean_fn": getattr(self.mean_fn, "__name__", repr(self.mean_fn)),
            "priors": {k: repr(v) for k, v in self.priors.items()},
            "kernel": self.kernel,
            "lengthscale_prior": repr(self.lengthscale_prior),
            "amplitude_prior": repr(self.amplitude_prior),
            "noise_prior": repr(self.noise_prior),
            "method": self.method,
            "restarts": self.restarts,
            "nuts": self.nuts.to_dict(),
        }


def _ess(log_w: torch.Tensor) -> float:
    """Effective sample size of importance weights given by their logs (−inf: zero)."""
    w = torch.exp(log_w - log_w.max())
    return float(w.sum() ** 2 / (w**2).sum())


def _weighted_quantiles(
    theta: torch.Tensor, w: torch.Tensor, probs: list[float]
) -> list[torch.Tensor]:
    """Quantiles of each column of ``theta`` (S, P) under normalised weights ``w`` (S,).

    Each draw holds its weight centred on its value: the weighted empirical distribution
    function at the sorted draws is ``cumsum(w) − w/2``, interpolated linearly between.
    """
    out = [torch.empty(theta.shape[1], dtype=_DTYPE) for _ in probs]
    for i in range(theta.shape[1]):
        order = torch.argsort(theta[:, i])
        xs, ws = theta[order, i], w[order]
        keep = ws > 0
        xs, ws = xs[keep], ws[keep]
        cdf = (torch.cumsum(ws, 0) - 0.5 * ws).numpy()
        for k, prob in enumerate(probs):
            out[k][i] = float(np.interp(prob, cdf, xs.numpy()))
    return out


def _unvalidated(prior: Distribution) -> Distribution:
    out = copy.copy(prior)
    out._validate_args = False
    if hasattr(out, "base_dist"):  # LogNormal and other transformed distributions
        out.base_dist = _unvalidated(out.base_dist)
    return out


def _check_prior(prior: Any, label: str) -> None:
    if not isinstance(prior, Distribution):
        raise TypeError(
            f"`{label}` must be a torch (or Pyro) distribution such as Normal(0, 1), got {prior!r}."
        )
    if prior.batch_shape != torch.Size() or prior.event_shape != torch.Size():
        raise ValueError(
            f"`{label}` must be a scalar distribution (one parameter), got batch shape "
            f"{tuple(prior.batch_shape)} and event shape {tuple(prior.event_shape)}."
        )


def _constant_mean(x: torch.Tensor, p: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return p["mean"] * torch.ones(x.shape[0], dtype=x.dtype)


def gp_only(
    *,
    mean_prior: Distribution | None = None,
    kernel: Literal["rbf", "matern52"] = "rbf",
    name: str = "gp",
    **kwargs: Any,
) -> StructuredGP:
    """The GP alone (a constant mean with a prior): the reference that knows no physics.

    Parameters
    ----------
    mean_prior : Distribution, optional
        Prior of the constant mean [units of y]; Normal(0, 10) by default.
    kernel : {"rbf", "matern52"}
        The kernel.
    name : str
        The model's name.
    **kwargs
        The other keyword arguments of :class:`StructuredGP` (``lengthscale_prior``,
        ``amplitude_prior``, ``noise_prior``, ``method``, ``restarts``, ``nuts``, ``rng``…).

    Returns
    -------
    StructuredGP
    """
    if kernel is None:
        raise ValueError("`kernel` must be 'rbf' or 'matern52' for the GP alone.")
    amplitude = kwargs.pop("amplitude_prior", None) or LogNormal(0.0, 1.0)
    return StructuredGP(
        _constant_mean,
        {"mean": mean_prior or Normal(0.0, 10.0)},
        kernel=kernel,
        amplitude_prior=amplitude,
        name=name,
        **kwargs,
    )


def parametric_only(
    mean_fn: MeanFunction,
    priors: Mapping[str, Distribution],
    *,
    name: str | None = None,
    **kwargs: Any,
) -> StructuredGP:
    """The parametric model alone: ``y = f(x, params) + noise``, no kernel.

    Parameters
    ----------
    mean_fn, priors
        As for :class:`StructuredGP`.
    name : str, optional
        The model's name.
    **kwargs
        The other keyword arguments of :class:`StructuredGP` except ``kernel``.

    Returns
    -------
    StructuredGP
    """
    if "kernel" in kwargs:
        raise ValueError("`kernel` cannot be set for the parametric model alone.")
    return StructuredGP(mean_fn, priors, kernel=None, name=name, **kwargs)
