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
  prior means, then draws from the priors), and a Laplace approximation around the best
  mode (a Gaussian with the inverse Hessian as covariance) for intervals, predictive
  uncertainty and the log evidence (the approximate marginal likelihood).
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
        MAP with restarts and a Laplace approximation (fast), or NUTS (fully Bayesian).
    restarts : int
        Starting points of the MAP search (the first at the prior means, the others drawn
        from the priors). NUTS starts from the MAP mode found with them.
    nuts : NUTSSettings, optional
        Settings of ``method="nuts"``.
    posterior_samples : int
        Draws of the Laplace approximation used for predictions and intervals (MAP); for
        NUTS the chains' draws, thinned to at most this many for predictions.
    name : str, optional
        How logs and errors call the model.
    rng : int, Generator or None
        Seed of the restarts, the Laplace draws and NUTS; the same seed and data give the
        same fit.

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
        d = A.shape[1]
        names = ["kernel_lengthscale"] if d == 1 else [f"kernel_lengthscale_{i}" for i in range(d)]
        ls = torch.stack([theta[n] for n in names])
        diff = (A[:, None, :] - B[None, :, :]) / ls
        r2 = (diff**2).sum(-1)
        amp2 = theta["kernel_amplitude"] ** 2
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
            self._z_map = z_map
            self.log_evidence_, samples = self._laplace(z_map, value)
            self.rhat_: dict[str, float] | None = None
            if self.method == "nuts":
                samples = self._run_nuts(z_map)
        self._z_samples = samples
        self._theta_samples = torch.stack(
            [torch.stack(list(self._constrain(z)[0].values())) for z in samples]
        )
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
        failures = []
        for z0 in self._initial_points():
            z = z0.clone().requires_grad_(True)
            start = float(self._log_joint(z.detach()))
            if not math.isfinite(start):
                failures.append(start)
                continue
            opt = torch.optim.LBFGS(
                [z],
                lr=1.0,
                max_iter=200,
                line_search_fn="strong_wolfe",
                tolerance_grad=1e-7,
                tolerance_change=1e-12,
            )

            def closure(z=z, opt=opt) -> torch.Tensor:
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
            if not math.isfinite(value) or not bool(torch.all(torch.isfinite(zf))):
                zf, value = z0, start
            if value > best:
                best_z, best = zf, value
        if best_z is None:
            raise ValueError(
                f"model {self.name!r}: the log density is NaN or infinite at every starting "
                "point (does the mean function return NaN, or are the priors far from the "
                "data?)."
            )
        return best_z, best

    def _neg_log_joint_hessian(self, z: torch.Tensor) -> torch.Tensor:
        return torch.autograd.functional.hessian(lambda v: -self._log_joint(v), z)

    def _laplace(self, z_map: torch.Tensor, value: float) -> tuple[float, torch.Tensor]:
        H = self._neg_log_joint_hessian(z_map)
        H = 0.5 * (H + H.T)
        H = torch.nan_to_num(H, nan=0.0)
        lam, V = torch.linalg.eigh(H)
        floor = max(1e-8 * float(lam.abs().max()), 1e-6)
        lam = lam.abs().clamp_min(floor)  # a saddle or a flat direction: its curvature's size
        p = z_map.shape[0]
        log_evidence = value + 0.5 * p * math.log(2 * math.pi) - 0.5 * float(torch.log(lam).sum())
        # common random numbers: the same standard normal draws at every fit of this model
        g = torch.Generator().manual_seed(self._seed)
        eps = torch.randn(self.posterior_samples, p, generator=g, dtype=_DTYPE)
        samples = z_map + (eps / torch.sqrt(lam)) @ V.T
        self._laplace_cov = V @ torch.diag(1.0 / lam) @ V.T
        return log_evidence, samples

    def _run_nuts(self, z_map: torch.Tensor) -> torch.Tensor:
        # deferred: Pyro loads only for the fully Bayesian fit
        from pyro.infer.mcmc import MCMC, NUTS
        from pyro.ops.stats import split_gelman_rubin

        s = self.nuts
        chains = []
        for c in range(s.chains):
            kernel = NUTS(
                potential_fn=lambda p: -self._log_joint(p["z"]),
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
            Averaged over the posterior draws (Laplace or NUTS): the variance is the mean
            GP variance plus the spread of the draws' means [units of y, squared].

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
        mean = M.mean(0).numpy()
        var = (V.mean(0) + M.var(0, unbiased=False)).numpy()
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
                z = self._z_samples[i % len(self._z_samples)]
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
            posterior median (``"nuts"``); the intervals come from the Laplace draws or the
            NUTS draws.
        """
        self._check_fitted()
        if not (0 < level < 1):
            raise ValueError(f"`level` must be within (0, 1), got {level!r}.")
        theta = self._nuts_theta if self.method == "nuts" else self._theta_samples
        q = torch.tensor([(1 - level) / 2, 0.5, (1 + level) / 2], dtype=_DTYPE)
        quant = torch.quantile(theta, q, dim=0)
        map_theta = torch.stack(list(self._constrain(self._z_map)[0].values()))
        out = {}
        for i, name in enumerate(self.param_names):
            est = map_theta[i] if self.method == "map" else quant[1, i]
            out[name] = {
                "estimate": float(est),
                "mean": float(theta[:, i].mean()),
                "sd": float(theta[:, i].std()),
                "low": float(quant[0, i]),
                "high": float(quant[2, i]),
            }
        return out

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
