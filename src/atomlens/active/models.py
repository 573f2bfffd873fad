"""Surrogate models of a property against structure: exact GP, sparse GP, deep kernel
learning (DKL) and ensembles of DKLs, all with one interface.

Every model follows the :class:`Surrogate` protocol, so an acquisition function never cares
which model it scores:

- ``fit(X, y)`` learns hyperparameters (and network weights) from scratch, seeded;
- ``predict(X) -> (mean, variance)`` of the latent function (noise not included);
- ``sample(X, n, rng=...)`` draws ``n`` joint posterior samples of the latent function;
- ``condition(X, y)`` adds points without refitting (used to fantasise batches).

Inputs are ``(N, F)`` float arrays that should be of order one (the active-learning loop
scales coordinates and patches over the whole candidate pool once); targets are ``(N,)`` and
are standardised inside the model, so predictions come back in the targets' own units.
Everything is computed in float64 with GPyTorch (Cholesky solves).

GPyTorch and PyTorch are imported inside the functions, so ``import atomlens.active`` stays
light.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["DKL", "DKLEnsemble", "ExactGP", "IndependentGPs", "SparseGP", "Surrogate"]

Kernel = Literal["matern52", "matern32", "rbf"]


@runtime_checkable
class Surrogate(Protocol):
    """What every surrogate model implements (GP, sparse GP, DKL, ensembles)."""

    def fit(self, X: np.ndarray, y: np.ndarray, /) -> Surrogate:
        """Learn from inputs ``X`` (N, F) and targets ``y`` (N,); returns ``self``."""
        ...

    def predict(self, X: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent function at ``X``, each (M,)."""
        ...

    def sample(
        self, X: np.ndarray, n: int, /, *, rng: int | np.random.Generator | None = None
    ) -> np.ndarray:
        """``n`` joint posterior samples at ``X``, shape (n, M)."""
        ...

    def condition(self, X: np.ndarray, y: np.ndarray, /) -> Surrogate:
        """A copy with ``(X, y)`` added to the data and the hyperparameters kept."""
        ...

    def summary(self) -> dict[str, Any]:
        """Hyperparameters and fit statistics, JSON-ready."""
        ...


def check_training_data(X: Any, y: Any, /) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (N, F) and ``y`` (N,) as float64 arrays after checking shapes and values.

    Raises
    ------
    ValueError
        Mismatched lengths, no points, wrong dimensions, NaN or infinite values.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"`X` must be an (N, F) array of features, got shape {X.shape}.")
    if y.ndim != 1:
        raise ValueError(f"`y` must be an (N,) array of targets, got shape {y.shape}.")
    if len(X) != len(y):
        raise ValueError(
            f"`X` has {len(X)} rows but `y` has {len(y)} targets; pass one target per row."
        )
    if len(X) == 0:
        raise ValueError("`X` and `y` are empty; fit needs at least one measured point.")
    if not np.isfinite(X).all():
        raise ValueError("`X` holds NaN or infinite values; drop or impute those rows.")
    if not np.isfinite(y).all():
        raise ValueError("`y` holds NaN or infinite values; drop those measurements.")
    return X, y


def _check_inputs(X: Any, n_features: int) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(
            f"`X` must have shape (M, {n_features}) like the training inputs, got {X.shape}."
        )
    if len(X) == 0:
        raise ValueError("`X` is empty; pass at least one candidate.")
    if not np.isfinite(X).all():
        raise ValueError("`X` holds NaN or infinite values.")
    return X


def _seed_of(rng: int | np.random.Generator | None) -> int:
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**31))
    if rng is None:
        return int(np.random.default_rng().integers(2**31))
    return int(rng)


def _base_kernel(kernel: Kernel, dims: int):
    # GPyTorch is heavy: imported only when a model is built
    import gpytorch
    from gpytorch.priors import GammaPrior

    prior = GammaPrior(3.0, 6.0)  # lengthscales of order 0.5 for inputs of order one
    if kernel == "rbf":
        return gpytorch.kernels.RBFKernel(ard_num_dims=dims, lengthscale_prior=prior)
    nu = 2.5 if kernel == "matern52" else 1.5
    return gpytorch.kernels.MaternKernel(nu=nu, ard_num_dims=dims, lengthscale_prior=prior)


def _negative_log_marginal(module, x, y):
    """The exact GP's negative log marginal likelihood plus log priors, per point (as
    GPyTorch's ``ExactMarginalLogLikelihood``), by one Cholesky factorisation."""
    import torch

    z = module.extractor(x) if module.extractor is not None else x
    k = module.covar_module(z).to_dense()
    n = len(y)
    k = k + module.likelihood.noise * torch.eye(n, dtype=k.dtype)
    chol = torch.linalg.cholesky(k)
    r = (y - module.mean_module.constant)[:, None]
    w = torch.linalg.solve_triangular(chol, r, upper=False)
    nll = 0.5 * (w * w).sum() + torch.log(torch.diagonal(chol)).sum() + 0.5 * n * np.log(2 * np.pi)
    for _, prior_module, prior, closure, _ in module.named_priors():
        nll = nll - prior.log_prob(closure(prior_module)).sum()
    return nll / n


class _GPModule:
    """Builds the GPyTorch exact-GP module (one class, made on first use)."""

    cls: Any = None

    @classmethod
    def make(cls, x, y, likelihood, covar, extractor=None):
        if cls.cls is None:
            import gpytorch

            class ExactModule(gpytorch.models.ExactGP):
                def __init__(self, x, y, likelihood, covar, extractor):
                    super().__init__(x, y, likelihood)
                    self.mean_module = gpytorch.means.ConstantMean()
                    self.covar_module = covar
                    self.extractor = extractor

                def forward(self, x):
                    z = self.extractor(x) if self.extractor is not None else x
                    return gpytorch.distributions.MultivariateNormal(
                        self.mean_module(z), self.covar_module(z)
                    )

            cls.cls = ExactModule
        return cls.cls(x, y, likelihood, covar, extractor)


class ExactGP:
    """Exact Gaussian process regression (float64, Cholesky), Matérn or RBF kernel with one
    lengthscale per input (ARD) and Gamma priors on lengthscales, signal and noise.

    Parameters
    ----------
    kernel : {"matern52", "matern32", "rbf"}
        Covariance function.
    fit_iterations : int
        Adam steps on the marginal likelihood (plus priors) per :meth:`fit`; 0 keeps the
        initial or fixed hyperparameters.
    lr : float
        Adam learning rate.
    lengthscale, outputscale, noise : float, optional
        Fixed hyperparameters (in standardised target units when ``standardize``); a fixed
        one is not trained.
    standardize : bool
        Standardise the targets (zero mean, unit variance) inside the model.
    seed : int
        Seed of the fit (initialisation of any network, order of operations).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(0, 1, 8)[:, None]
    >>> gp = ExactGP(fit_iterations=50).fit(X, np.sin(6 * X[:, 0]))
    >>> mean, var = gp.predict(X)
    >>> bool(np.abs(mean - np.sin(6 * X[:, 0])).max() < 0.1)
    True
    """

    def __init__(
        self,
        *,
        kernel: Kernel = "matern52",
        fit_iterations: int = 100,
        lr: float = 0.05,
        lengthscale: float | None = None,
        outputscale: float | None = None,
        noise: float | None = None,
        standardize: bool = True,
        seed: int = 0,
    ) -> None:
        if kernel not in ("matern52", "matern32", "rbf"):
            raise ValueError(f"`kernel` must be matern52, matern32 or rbf, got {kernel!r}.")
        if int(fit_iterations) < 0:
            raise ValueError(f"`fit_iterations` must be >= 0, got {fit_iterations!r}.")
        self.kernel = kernel
        self.fit_iterations = int(fit_iterations)
        self.lr = float(lr)
        self.lengthscale = lengthscale
        self.outputscale = outputscale
        self.noise = noise
        self.standardize = bool(standardize)
        self.seed = int(seed)
        self._module: Any = None
        self._loss = float("nan")

    # -- building blocks (DKL overrides these) ---------------------------------------------------
    def _extractor(self, n_features: int):
        return None

    def _embedding_dims(self, n_features: int) -> int:
        return n_features

    def _build(self, x, y):
        import gpytorch
        from gpytorch.constraints import GreaterThan
        from gpytorch.priors import GammaPrior

        dims = self._embedding_dims(x.shape[1])
        covar = gpytorch.kernels.ScaleKernel(
            _base_kernel(self.kernel, dims), outputscale_prior=GammaPrior(2.0, 0.15)
        )
        likelihood = gpytorch.likelihoods.GaussianLikelihood(
            noise_prior=GammaPrior(1.1, 0.05), noise_constraint=GreaterThan(1e-6)
        )
        module = _GPModule.make(x, y, likelihood, covar, self._extractor(x.shape[1]))
        module = module.double()
        if self.lengthscale is not None:
            covar.base_kernel.lengthscale = float(self.lengthscale)
            covar.base_kernel.raw_lengthscale.requires_grad_(False)
        else:
            covar.base_kernel.lengthscale = 0.5
        if self.outputscale is not None:
            covar.outputscale = float(self.outputscale)
            covar.raw_outputscale.requires_grad_(False)
        else:
            covar.outputscale = 1.0
        if self.noise is not None:
            likelihood.noise = float(self.noise)
            likelihood.raw_noise.requires_grad_(False)
        else:
            likelihood.noise = 1e-2
        return module

    def _param_groups(self, module):
        return [{"params": [p for p in module.parameters() if p.requires_grad], "lr": self.lr}]

    # -- public interface ------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, /) -> ExactGP:
        """Fit the hyperparameters to ``(X, y)`` from a fresh, seeded start.

        Parameters
        ----------
        X : ndarray of shape (N, F)
            Inputs (of order one).
        y : ndarray of shape (N,)
            Targets.

        Returns
        -------
        ExactGP
            ``self``.
        """
        # PyTorch is heavy: imported when a model is fitted
        import torch

        X, y = check_training_data(X, y)
        self._n_features = X.shape[1]
        self._y_mean = float(y.mean()) if self.standardize else 0.0
        sd = float(y.std()) if self.standardize and len(y) > 1 else 1.0
        self._y_std = sd if sd > 1e-12 else 1.0
        x_t = torch.as_tensor(X, dtype=torch.float64)
        y_t = torch.as_tensor((y - self._y_mean) / self._y_std, dtype=torch.float64)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            module = self._build(x_t, y_t)
            module.train()
            groups = [g for g in self._param_groups(module) if g["params"]]
            loss = torch.tensor(float("nan"))
            if self.fit_iterations and groups:
                opt = torch.optim.Adam(groups)
                for _ in range(self.fit_iterations):
                    opt.zero_grad()
                    loss = _negative_log_marginal(module, x_t, y_t)
                    loss.backward()
                    opt.step()
        module.eval()
        self._module = module
        self._loss = float(loss.detach())
        return self

    def _require_fit(self) -> None:
        if self._module is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(X, y) first.")

    def _solve(self):
        """Cholesky factor and weights of the training data (cached per data set)."""
        import torch

        m = self._module
        x, y = m.train_inputs[0], m.train_targets
        key = (id(x), id(y))
        if getattr(self, "_cache_key", None) != key:
            with torch.no_grad():
                z = m.extractor(x) if m.extractor is not None else x
                k = m.covar_module(z).to_dense()
                k = k + m.likelihood.noise * torch.eye(len(y), dtype=k.dtype)
                chol = torch.linalg.cholesky(k)
                c = float(m.mean_module.constant)
                alpha = torch.cholesky_solve((y - c)[:, None], chol)[:, 0]
            self._cache = (z, chol, alpha, c)
            self._cache_key = key
        return self._cache

    def _test_terms(self, X: np.ndarray):
        import torch

        self._require_fit()
        X = _check_inputs(X, self._n_features)
        m = self._module
        z_train, chol, alpha, c = self._solve()
        with torch.no_grad():
            x_t = torch.as_tensor(X, dtype=torch.float64)
            z = m.extractor(x_t) if m.extractor is not None else x_t
            k_sx = m.covar_module(z, z_train).to_dense()
            v = torch.linalg.solve_triangular(chol, k_sx.T, upper=False)
        return z, k_sx, v, alpha, c

    def predict(self, X: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent function (noise not included).

        Parameters
        ----------
        X : ndarray of shape (M, F)
            Where to predict.

        Returns
        -------
        mean, variance : ndarray of shape (M,)
            In the targets' units (and squared units).
        """
        # PyTorch is heavy: imported when a model is used
        import torch

        means, variances = [], []
        X = np.asarray(X, dtype=np.float64)
        for start in range(0, max(len(X), 1), 4096):
            z, k_sx, v, alpha, c = self._test_terms(X[start : start + 4096])
            with torch.no_grad():
                prior = self._module.covar_module(z, diag=True)
                means.append((c + k_sx @ alpha).numpy())
                variances.append((prior - (v * v).sum(0)).clamp_min(0.0).numpy())
        mean = np.concatenate(means) * self._y_std + self._y_mean
        return mean, np.concatenate(variances) * self._y_std**2

    def sample(
        self, X: np.ndarray, n: int, /, *, rng: int | np.random.Generator | None = None
    ) -> np.ndarray:
        """Joint posterior samples of the latent function.

        Parameters
        ----------
        X : ndarray of shape (M, F)
            Where to sample.
        n : int
            Number of samples.
        rng : int, Generator or None
            Seed of the draws.

        Returns
        -------
        ndarray of shape (n, M)
        """
        import torch

        if int(n) < 1:
            raise ValueError(f"`n` must be >= 1 samples, got {n!r}.")
        z, k_sx, v, alpha, c = self._test_terms(X)
        with torch.no_grad():
            cov = self._module.covar_module(z).to_dense() - v.T @ v
            cov = 0.5 * (cov + cov.T)
            jitter = 1e-8 * float(cov.diagonal().mean().clamp_min(1e-12))
            eye = torch.eye(len(cov), dtype=cov.dtype)
            for _ in range(6):
                chol, info = torch.linalg.cholesky_ex(cov + jitter * eye)
                if int(info) == 0:
                    break
                jitter *= 10
            gen = torch.Generator().manual_seed(_seed_of(rng))
            eps = torch.randn(len(cov), int(n), generator=gen, dtype=cov.dtype)
            draws = (c + k_sx @ alpha)[:, None] + chol @ eps
        return draws.T.numpy() * self._y_std + self._y_mean

    def condition(self, X: np.ndarray, y: np.ndarray, /) -> ExactGP:
        """A copy of the fitted model with ``(X, y)`` added and the hyperparameters kept.

        Parameters
        ----------
        X : ndarray of shape (K, F)
            New inputs.
        y : ndarray of shape (K,)
            Their (measured or fantasised) targets.

        Returns
        -------
        ExactGP
        """
        import torch

        self._require_fit()
        X, y = check_training_data(X, y)
        new = copy.copy(self)
        new._module = copy.deepcopy(self._module)
        x_old = new._module.train_inputs[0]
        y_old = new._module.train_targets
        x_new = torch.cat([x_old, torch.as_tensor(X, dtype=torch.float64)])
        y_new = torch.cat(
            [y_old, torch.as_tensor((y - self._y_mean) / self._y_std, dtype=torch.float64)]
        )
        new._module.set_train_data(x_new, y_new, strict=False)
        return new

    def summary(self) -> dict[str, Any]:
        """Hyperparameters (standardised units) and the final loss, JSON-ready."""
        self._require_fit()
        m = self._module
        ls = m.covar_module.base_kernel.lengthscale.detach().numpy().ravel()
        return {
            "model": type(self).__name__,
            "kernel": self.kernel,
            "n_points": int(m.train_targets.shape[0]),
            "lengthscale": [round(float(v), 6) for v in ls],
            "outputscale": round(float(m.covar_module.outputscale.detach()), 6),
            "noise": round(float(m.likelihood.noise.detach()), 8),
            "loss": round(self._loss, 6),
            "y_mean": self._y_mean,
            "y_std": self._y_std,
        }


class DKL(ExactGP):
    """Deep kernel learning: a small network maps each input (an image patch, flattened) to
    a low-dimensional embedding, and an exact GP works on the embedding; network and GP are
    trained together on the marginal likelihood (Wilson et al. 2016; as in Roccapriore et
    al. 2022 and Liu et al. 2022 for microscopy).

    Parameters
    ----------
    embedding_dim : int
        Size of the embedding the GP sees (2 in the papers).
    hidden : tuple of int
        Widths of the hidden layers (ReLU).
    fit_iterations : int
        Adam steps per :meth:`fit` (network and GP together).
    lr : float
        Learning rate of the GP hyperparameters; the network uses ``lr / 5``.
    kernel : {"matern52", "matern32", "rbf"}
        Covariance on the embedding.
    seed : int
        Seed of the network initialisation.

    Notes
    -----
    The embedding is squashed with ``tanh`` into (−1, 1)², so its scale never drifts away
    from the lengthscale prior.

    References
    ----------
    A. G. Wilson, Z. Hu, R. Salakhutdinov, E. P. Xing, "Deep kernel learning", AISTATS 2016.
    K. M. Roccapriore, S. V. Kalinin, M. Ziatdinov, "Physics discovery in nanoplasmonic systems
    via autonomous experiments in scanning transmission electron microscopy", Adv. Sci. 9,
    2203422 (2022).
    """

    def __init__(
        self,
        *,
        embedding_dim: int = 2,
        hidden: tuple[int, ...] = (64, 32),
        fit_iterations: int = 150,
        lr: float = 0.05,
        kernel: Kernel = "matern52",
        seed: int = 0,
    ) -> None:
        super().__init__(kernel=kernel, fit_iterations=fit_iterations, lr=lr, seed=seed)
        if int(embedding_dim) < 1:
            raise ValueError(f"`embedding_dim` must be >= 1, got {embedding_dim!r}.")
        self.embedding_dim = int(embedding_dim)
        self.hidden = tuple(int(h) for h in hidden)

    def _embedding_dims(self, n_features: int) -> int:
        return self.embedding_dim

    def _extractor(self, n_features: int):
        import torch

        layers: list[Any] = []
        width = n_features
        for h in self.hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
            width = h
        layers += [torch.nn.Linear(width, self.embedding_dim), torch.nn.Tanh()]
        return torch.nn.Sequential(*layers)

    def _param_groups(self, module):
        net = [p for p in module.extractor.parameters() if p.requires_grad]
        ids = {id(p) for p in net}
        gp = [p for p in module.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": gp, "lr": self.lr}, {"params": net, "lr": self.lr / 5}]

    def embed(self, X: np.ndarray, /) -> np.ndarray:
        """The learned embedding of ``X``.

        Parameters
        ----------
        X : ndarray of shape (M, F)

        Returns
        -------
        ndarray of shape (M, embedding_dim)
        """
        import torch

        self._require_fit()
        X = _check_inputs(X, self._n_features)
        with torch.no_grad():
            return self._module.extractor(torch.as_tensor(X, dtype=torch.float64)).numpy()

    def summary(self) -> dict[str, Any]:
        """Hyperparameters, embedding size and the final loss, JSON-ready."""
        out = super().summary()
        out.update(embedding_dim=self.embedding_dim, hidden=list(self.hidden))
        return out


class DKLEnsemble:
    """Several DKLs from different seeds; their posteriors are pooled as an equal mixture
    (mean of means; variance = mean of variances + variance of means), which makes the
    acquisition robust to one network's unlucky embedding.

    Parameters
    ----------
    n_members : int
        Number of DKLs.
    seed : int
        Member ``k`` is seeded ``seed + k``.
    member : DKL, optional
        Template whose settings every member copies (seeds aside).
    """

    def __init__(self, n_members: int = 3, *, seed: int = 0, member: DKL | None = None) -> None:
        if int(n_members) < 1:
            raise ValueError(f"`n_members` must be >= 1, got {n_members!r}.")
        template = member if member is not None else DKL()
        self.members = []
        for k in range(int(n_members)):
            m = copy.deepcopy(template)
            m.seed = int(seed) + k
            self.members.append(m)

    def fit(self, X: np.ndarray, y: np.ndarray, /) -> DKLEnsemble:
        """Fit every member (see :meth:`DKL.fit`); returns ``self``."""
        for m in self.members:
            m.fit(X, y)
        return self

    def predict(self, X: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
        """Mixture mean and variance over the members, each (M,)."""
        preds = [m.predict(X) for m in self.members]
        means = np.stack([p[0] for p in preds])
        variances = np.stack([p[1] for p in preds])
        return means.mean(0), variances.mean(0) + means.var(0)

    def sample(
        self, X: np.ndarray, n: int, /, *, rng: int | np.random.Generator | None = None
    ) -> np.ndarray:
        """``n`` samples of the mixture: each from a member drawn at random, (n, M)."""
        gen = np.random.default_rng(rng)
        which = gen.integers(len(self.members), size=int(n))
        out = []
        for k, m in enumerate(self.members):
            count = int((which == k).sum())
            if count:
                out.append(m.sample(X, count, rng=gen))
        return np.concatenate(out)

    def condition(self, X: np.ndarray, y: np.ndarray, /) -> DKLEnsemble:
        """A copy with ``(X, y)`` added to every member, hyperparameters kept."""
        new = copy.copy(self)
        new.members = [m.condition(X, y) for m in self.members]
        return new

    def summary(self) -> dict[str, Any]:
        """The members' summaries."""
        return {"model": "DKLEnsemble", "members": [m.summary() for m in self.members]}


class SparseGP:
    """Variational sparse GP (SVGP, Hensman et al. 2015) for many measured points: ``M``
    inducing points, learned with the data, make a fit cost O(N M²) instead of O(N³).

    Parameters
    ----------
    n_inducing : int
        Number of inducing points (started on a random subset of the inputs).
    kernel : {"matern52", "matern32", "rbf"}
        Covariance function (ARD, Gamma prior on lengthscales).
    fit_iterations : int
        Adam steps on the ELBO (full batch).
    lr : float
        Learning rate.
    seed : int
        Seed of the inducing-point start.
    """

    def __init__(
        self,
        *,
        n_inducing: int = 128,
        kernel: Kernel = "matern52",
        fit_iterations: int = 300,
        lr: float = 0.05,
        seed: int = 0,
    ) -> None:
        if int(n_inducing) < 1:
            raise ValueError(f"`n_inducing` must be >= 1, got {n_inducing!r}.")
        self.n_inducing = int(n_inducing)
        self.kernel = kernel
        self.fit_iterations = int(fit_iterations)
        self.lr = float(lr)
        self.seed = int(seed)
        self._module: Any = None
        self._data: tuple[np.ndarray, np.ndarray] | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, /) -> SparseGP:
        """Fit inducing points, variational distribution and hyperparameters; ``self``."""
        # PyTorch and GPyTorch are heavy: imported when a model is fitted
        import gpytorch
        import torch
        from gpytorch.priors import GammaPrior

        X, y = check_training_data(X, y)
        self._data = (X, y)
        self._n_features = X.shape[1]
        self._y_mean = float(y.mean())
        sd = float(y.std()) if len(y) > 1 else 1.0
        self._y_std = sd if sd > 1e-12 else 1.0
        x_t = torch.as_tensor(X, dtype=torch.float64)
        y_t = torch.as_tensor((y - self._y_mean) / self._y_std, dtype=torch.float64)
        gen = np.random.default_rng(self.seed)
        m = min(self.n_inducing, len(X))
        start = x_t[torch.as_tensor(np.sort(gen.choice(len(X), m, replace=False)))].clone()
        kernel = self.kernel

        class SVGP(gpytorch.models.ApproximateGP):
            def __init__(self, inducing):
                dist = gpytorch.variational.CholeskyVariationalDistribution(inducing.shape[0])
                strategy = gpytorch.variational.VariationalStrategy(
                    self, inducing, dist, learn_inducing_locations=True
                )
                super().__init__(strategy)
                self.mean_module = gpytorch.means.ConstantMean()
                self.covar_module = gpytorch.kernels.ScaleKernel(
                    _base_kernel(kernel, inducing.shape[1]),
                    outputscale_prior=GammaPrior(2.0, 0.15),
                )

            def forward(self, x):
                return gpytorch.distributions.MultivariateNormal(
                    self.mean_module(x), self.covar_module(x)
                )

        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            module = SVGP(start).double()
            likelihood = gpytorch.likelihoods.GaussianLikelihood(
                noise_constraint=gpytorch.constraints.GreaterThan(1e-6)
            ).double()
            module.covar_module.base_kernel.lengthscale = 0.5
            likelihood.noise = 1e-2
            module.train()
            likelihood.train()
            opt = torch.optim.Adam([*module.parameters(), *likelihood.parameters()], lr=self.lr)
            elbo = gpytorch.mlls.VariationalELBO(likelihood, module, num_data=len(X))
            loss = torch.tensor(float("nan"))
            for _ in range(self.fit_iterations):
                opt.zero_grad()
                loss = -elbo(module(x_t), y_t)
                loss.backward()
                opt.step()
        module.eval()
        likelihood.eval()
        self._module, self._likelihood, self._loss = module, likelihood, float(loss.detach())
        return self

    def _posterior(self, X: np.ndarray):
        import torch

        if self._module is None:
            raise RuntimeError("SparseGP is not fitted; call fit(X, y) first.")
        X = _check_inputs(X, self._n_features)
        with torch.no_grad():
            return self._module(torch.as_tensor(X, dtype=torch.float64))

    def predict(self, X: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent function, each (M,)."""
        post = self._posterior(X)
        mean = post.mean.numpy() * self._y_std + self._y_mean
        return mean, post.variance.clamp_min(0.0).numpy() * self._y_std**2

    def sample(
        self, X: np.ndarray, n: int, /, *, rng: int | np.random.Generator | None = None
    ) -> np.ndarray:
        """``n`` joint posterior samples at ``X``, (n, M)."""
        import gpytorch
        import torch

        post = self._posterior(X)
        with torch.random.fork_rng(), torch.no_grad(), gpytorch.settings.cholesky_jitter(1e-8):
            torch.manual_seed(_seed_of(rng))
            draws = post.rsample(torch.Size([int(n)]))
        return draws.numpy() * self._y_std + self._y_mean

    def condition(self, X: np.ndarray, y: np.ndarray, /) -> SparseGP:
        """A refit copy with ``(X, y)`` added (a sparse GP has no cheap exact update)."""
        if self._data is None:
            raise RuntimeError("SparseGP is not fitted; call fit(X, y) first.")
        X, y = check_training_data(X, y)
        new = copy.copy(self)
        return new.fit(np.concatenate([self._data[0], X]), np.concatenate([self._data[1], y]))

    def summary(self) -> dict[str, Any]:
        """Hyperparameters and the final negative ELBO, JSON-ready."""
        ls = self._module.covar_module.base_kernel.lengthscale.detach().numpy().ravel()
        return {
            "model": "SparseGP",
            "n_inducing": int(self._module.variational_strategy.inducing_points.shape[0]),
            "lengthscale": [round(float(v), 6) for v in ls],
            "noise": round(float(self._likelihood.noise.detach()), 8),
            "loss": round(self._loss, 6),
        }


class IndependentGPs:
    """Vector targets (several scalarizers) as one independent surrogate per column.

    Parameters
    ----------
    make : callable
        ``make(k)`` returns a fresh surrogate for target column ``k``, e.g.
        ``lambda k: ExactGP(seed=k)``.
    n_targets : int
        Number of target columns T.

    Notes
    -----
    :meth:`predict` and :meth:`sample` return the columns stacked last: ``(M, T)`` and
    ``(n, M, T)``.
    """

    def __init__(self, make: Any, n_targets: int) -> None:
        if int(n_targets) < 1:
            raise ValueError(f"`n_targets` must be >= 1, got {n_targets!r}.")
        self.models = [make(k) for k in range(int(n_targets))]

    def fit(self, X: np.ndarray, Y: np.ndarray, /) -> IndependentGPs:
        """Fit column ``k`` of ``Y`` (N, T) with model ``k``; returns ``self``."""
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim != 2 or Y.shape[1] != len(self.models):
            raise ValueError(
                f"`Y` must have shape (N, {len(self.models)}), one column per target, "
                f"got {Y.shape}."
            )
        for k, m in enumerate(self.models):
            m.fit(X, Y[:, k])
        return self

    def predict(self, X: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
        """Means and variances, each (M, T)."""
        preds = [m.predict(X) for m in self.models]
        return np.stack([p[0] for p in preds], -1), np.stack([p[1] for p in preds], -1)

    def sample(
        self, X: np.ndarray, n: int, /, *, rng: int | np.random.Generator | None = None
    ) -> np.ndarray:
        """Joint samples per target, independent across targets, (n, M, T)."""
        gen = np.random.default_rng(rng)
        return np.stack([m.sample(X, n, rng=gen) for m in self.models], -1)

    def summary(self) -> dict[str, Any]:
        """The models' summaries."""
        return {"model": "IndependentGPs", "targets": [m.summary() for m in self.models]}
