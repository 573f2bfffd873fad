"""Hypothesis learning: a bandit over candidate physical models decides which one to
refine with the next measurement, and learns which one is right.

The rule (Ziatdinov et al., arXiv:2112.06649): the correct model's predictive uncertainty
falls fastest as measurements come in, so each measurement is a bandit arm pull.

1. **Seed**: ``n_seed`` candidates drawn at random are measured.
2. **Warm-up** (``warmup`` rounds): in each round every model in turn is fit to all the
   data, the candidate where its predictive standard deviation is largest is measured,
   the model is refit, and it earns its reward.
3. **Steps** (``steps``): the bandit picks one model per step (below), which is fit,
   picks the next point at its largest predictive standard deviation, is refit with the
   new measurement and earns its reward.
4. The **winner** is the model with the highest average reward (ties: more pulls, then
   the order the models were given); it is fit to all the data for its parameters and
   reconstruction.

Reward (``reward="lowest"``, the default): +1 when, after the refit, the model's
uncertainty over all candidates (the median predictive standard deviation,
``metric="median"``, or the mean, ``"mean"``) is strictly lower than every other running
model's at its latest fit, −1 otherwise. ``reward="decrease"`` (the paper's rule): +1
when the model's uncertainty is strictly lower after the refit than before the
measurement, −1 otherwise (an unchanged value earns −1). Why the default is not the
paper's: every model's uncertainty usually falls when it gets a point, so the decrease
paid the right and the wrong models alike (+1 in 74 % and 73 % of their pulls) and chose
the right model in 2 of 9 runs of ``benchmarks/hypotheses.py``'s toy; ``"lowest"`` paid
the right one 97 % and the wrong ones 31 %, and chose right in 8 of 9.

Bandit: the value of a model is its average reward so far (sum of rewards / pulls).
``policy="epsilon"``: with probability ``epsilon`` a model drawn uniformly from those
still running, otherwise the one with the highest value (ties: the first in the given
order). ``policy="softmax"``: a model drawn with probability ∝ exp(value / temperature);
a small temperature (0.1) almost always takes the best, a large one (10) draws almost
uniformly.

A model whose fit or prediction raises, or returns NaN/inf, is dropped with the reason
recorded under its name; the loop goes on with the others.

The record (``record.json`` in ``out``, rewritten atomically after every measurement, and
``steps.csv``) holds the settings, the seed points and every step: the model, why it was
chosen, the point, the value, the uncertainty before and after, the reward and the
counts, reward sums and values of every model, with the random generator's state, so an
interrupted run resumes from it exactly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

__all__ = [
    "Bandit",
    "HypothesisResult",
    "HypothesisSettings",
    "SurrogateModel",
    "instrument_measure",
    "learn_hypotheses",
    "load_models",
    "load_record",
    "read_candidates",
    "run_hypotheses_files",
]

logger = logging.getLogger(__name__)

RECORD_VERSION = 1


class SurrogateModel(Protocol):
    """What the loop needs of a model: ``fit`` and ``predict`` (a StructuredGP, or any
    GP of :mod:`atomlens.active` with the same interface)."""

    def fit(self, X: Any, y: Any) -> Any: ...

    def predict(self, X: Any) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class HypothesisSettings:
    """Settings of :func:`learn_hypotheses`.

    Parameters
    ----------
    steps : int
        Bandit steps after the warm-up (one measurement each).
    warmup : int
        Warm-up rounds; each measures once per model.
    n_seed : int
        Random seed points measured first (ignored when ``seed_indices`` is given).
    policy : {"epsilon", "softmax"}
        How the bandit picks a model (see the module docstring).
    epsilon : float
        Probability of a uniformly random model under ``policy="epsilon"``.
    temperature : float
        Softmax temperature [reward units] under ``policy="softmax"``.
    metric : {"median", "mean"}
        Uncertainty whose decrease is rewarded: the median or mean (integrated)
        predictive standard deviation over all candidates.
    noise : bool
        Reward the uncertainty of a new measurement (the models' predictive variance
        with their noise variance, ``predict(X, noise=True)``) rather than of the
        noise-free function (the default: a structured GP takes a misfit up in its kernel
        and noise alike, so the noise estimates of right and wrong models end up close).
    reward : {"decrease", "lowest"}
        The reward rule (see the module docstring).
    seed : int
        Seed of the seed points and the bandit.
    """

    steps: int = 12
    warmup: int = 3
    n_seed: int = 4
    policy: Literal["epsilon", "softmax"] = "epsilon"
    epsilon: float = 0.1
    temperature: float = 0.5
    metric: Literal["median", "mean"] = "median"
    noise: bool = False
    reward: Literal["decrease", "lowest"] = "lowest"
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name, low in (("steps", 0), ("warmup", 0), ("n_seed", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                problems.append(f"`{name}` must be an integer ≥ {low}, got {v!r}")
        if self.steps == 0 and self.warmup == 0:
            problems.append("`steps` and `warmup` are both 0: nothing would be measured")
        if self.policy not in ("epsilon", "softmax"):
            problems.append(f"`policy` must be 'epsilon' or 'softmax', got {self.policy!r}")
        if not (0.0 <= float(self.epsilon) <= 1.0):
            problems.append(f"`epsilon` must be within [0, 1], got {self.epsilon!r}")
        if not (math.isfinite(float(self.temperature)) and float(self.temperature) > 0):
            problems.append(f"`temperature` must be positive, got {self.temperature!r}")
        if self.reward not in ("decrease", "lowest"):
            problems.append(f"`reward` must be 'decrease' or 'lowest', got {self.reward!r}")
        if self.metric not in ("median", "mean"):
            problems.append(f"`metric` must be 'median' or 'mean', got {self.metric!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            problems.append(f"`seed` must be an integer, got {self.seed!r}")
        if problems:
            raise ValueError("HypothesisSettings: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HypothesisSettings:
        """Settings from :meth:`to_dict`; unknown keys raise ``ValueError``."""
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"HypothesisSettings: unknown keys {unknown}.")
        return cls(**d)


class Bandit:
    """Average-reward bandit over named arms (the models).

    Parameters
    ----------
    names : sequence of str
        The arms, in the order that breaks ties.
    policy : {"epsilon", "softmax"}
        Choice rule (see the module docstring).
    epsilon, temperature : float
        Parameters of the two rules.
    """

    def __init__(
        self,
        names: Sequence[str],
        *,
        policy: Literal["epsilon", "softmax"] = "epsilon",
        epsilon: float = 0.1,
        temperature: float = 0.5,
    ) -> None:
        self.names = list(names)
        self.policy = policy
        self.epsilon = float(epsilon)
        self.temperature = float(temperature)
        self.counts = {n: 0 for n in self.names}
        self.sums = {n: 0.0 for n in self.names}
        self.active = list(self.names)

    def value(self, name: str) -> float:
        """Average reward of ``name`` (0 before its first pull)."""
        c = self.counts[name]
        return self.sums[name] / c if c else 0.0

    def update(self, name: str, reward: float) -> None:
        """Add one pull of ``name`` with ``reward``."""
        self.counts[name] += 1
        self.sums[name] += float(reward)

    def drop(self, name: str) -> None:
        """Stop offering ``name`` (a model that failed)."""
        if name in self.active:
            self.active.remove(name)

    def best(self) -> str:
        """The active arm with the highest value; ties go to the first in ``names``."""
        if not self.active:
            raise ValueError("every model has been dropped; nothing to choose from.")
        return max(self.active, key=lambda n: (self.value(n), -self.names.index(n)))

    def choose(self, rng: np.random.Generator) -> tuple[str, str]:
        """Pick an arm: ``(name, why)`` where ``why`` is ``"greedy"``, ``"explore"`` or
        ``"softmax"``."""
        if not self.active:
            raise ValueError("every model has been dropped; nothing to choose from.")
        if self.policy == "epsilon":
            if rng.random() < self.epsilon:
                return self.active[int(rng.integers(len(self.active)))], "explore"
            return self.best(), "greedy"
        v = np.array([self.value(n) for n in self.active]) / self.temperature
        p = np.exp(v - v.max())
        p /= p.sum()
        return self.active[int(rng.choice(len(self.active), p=p))], "softmax"

    def winner(self) -> str:
        """Highest value, then most pulls, then the first in ``names``."""
        if not self.active:
            raise ValueError("every model has been dropped; there is no winner.")
        return max(
            self.active,
            key=lambda n: (self.value(n), self.counts[n], -self.names.index(n)),
        )


@dataclass
class HypothesisResult:
    """What :func:`learn_hypotheses` found.

    Attributes
    ----------
    winner : str
        The winning model's name.
    parameters : dict
        The winner's parameters (``StructuredGP.parameters()``: estimate, mean, sd and
        90 % interval each), or ``{}`` for a model without them.
    mean, std : ndarray of shape (M,)
        The winner's reconstruction over the candidates and its predictive standard
        deviation.
    predictions : dict
        Every surviving model's final ``(mean, std)`` over the candidates.
    counts, values : dict
        Pulls and average reward per model at the end.
    dropped : dict
        Model name → why it was dropped.
    measured : ndarray of shape (K,)
        Indices of the measured candidates, in order (seed points first).
    values_measured : ndarray of shape (K,)
        Their measured values.
    record : dict
        The full run record (as written to ``record.json``).
    """

    winner: str
    parameters: dict[str, dict[str, float]]
    mean: np.ndarray
    std: np.ndarray
    predictions: dict[str, tuple[np.ndarray, np.ndarray]]
    counts: dict[str, int]
    values: dict[str, float]
    dropped: dict[str, str]
    measured: np.ndarray
    values_measured: np.ndarray
    record: dict[str, Any] = field(repr=False)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _steps_csv(record: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    names = record["models"]
    cols = ["step", "phase", "model", "why", "index", "value", "before", "after", "reward"]
    cols += [f"count_{n}" for n in names] + [f"value_{n}" for n in names]
    w = csv.writer(buf)
    w.writerow(cols)
    for s in record["steps"]:
        w.writerow(
            [s[c] for c in cols[:9]]
            + [s["counts"][n] for n in names]
            + [s["values"][n] for n in names]
        )
    return buf.getvalue()


def _candidates_hash(X: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(X, dtype=np.float64).tobytes()).hexdigest()[:16]


def load_record(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the run record ``record.json`` of a hypothesis-learning run.

    Parameters
    ----------
    out : str or path-like
        The run's output directory (or the record file itself).

    Returns
    -------
    dict
        The record.
    """
    path = Path(out)
    if path.is_dir():
        path = path / "record.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run record here; pass the `out` of a run.")
    rec = json.loads(path.read_text(encoding="utf-8"))
    if rec.get("version") != RECORD_VERSION:
        raise ValueError(
            f"{path}: record version {rec.get('version')!r}, expected {RECORD_VERSION}."
        )
    return rec


def learn_hypotheses(
    candidates: Any,
    /,
    *,
    models: Mapping[str, SurrogateModel],
    measure: Callable[[int], float] | Sequence[float] | np.ndarray,
    settings: HypothesisSettings | None = None,
    seed_indices: Sequence[int] | None = None,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool | Callable[..., Any] = False,
) -> HypothesisResult:
    """Run hypothesis learning over a set of candidate points.

    Parameters
    ----------
    candidates : array_like of shape (M,) or (M, D)
        Where a measurement can be made (a composition, a voltage, a position (x, y) [Å]).
    models : mapping of str to model
        The hypotheses, by name; each with ``fit(X, y)`` and ``predict(X) → (mean,
        variance)`` (e.g. :class:`~atomlens.active.structured.StructuredGP`). Their order
        breaks ties.
    measure : callable or array_like of shape (M,)
        ``measure(index) → value`` (an instrument or a simulator), or the values of all
        candidates, revealed only when measured.
    settings : HypothesisSettings, optional
        Steps, warm-up, seed points, bandit rule, reward metric and seed.
    seed_indices : sequence of int, optional
        Candidates to measure first instead of ``settings.n_seed`` random ones.
    out : str or path-like, optional
        Directory for ``record.json`` and ``steps.csv`` (written after every measurement).
        If it holds the record of an unfinished run with the same settings, candidates and
        models, that run resumes.
    overwrite : bool
        Start afresh in an ``out`` that holds another run.
    progress : bool or callable
        A tqdm progress bar (``True``) or a tqdm-compatible callable.

    Returns
    -------
    HypothesisResult

    Raises
    ------
    ValueError
        Bad inputs; a measurement that is NaN; every model dropped.
    """
    s = settings if settings is not None else HypothesisSettings()
    if not isinstance(s, HypothesisSettings):
        raise TypeError(f"`settings` must be HypothesisSettings, got {type(s).__name__}.")
    X = np.asarray(candidates, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"`candidates` must have shape (M,) or (M, D) with M ≥ 1, got {X.shape}.")
    if not np.all(np.isfinite(X)):
        raise ValueError("`candidates` holds NaN or infinite coordinates; remove those points.")
    M = X.shape[0]
    if not isinstance(models, Mapping) or not models:
        raise ValueError("`models` must be a non-empty mapping of names to models.")
    names = [str(k) for k in models]
    for k, m in models.items():
        if not (hasattr(m, "fit") and hasattr(m, "predict")):
            raise TypeError(f"`models`[{k!r}] has no fit/predict; pass a StructuredGP or alike.")
        if getattr(m, "_named", True) is False:  # errors and logs call it by its key
            m.name = str(k)
    if callable(measure):
        measure_fn = measure
    else:
        targets = np.asarray(measure, dtype=float).reshape(-1)
        if targets.shape[0] != M:
            raise ValueError(
                f"`measure` holds {targets.shape[0]} values for {M} candidates; pass one per "
                "candidate or a callable."
            )

        def measure_fn(i: int) -> float:
            return float(targets[i])

    needed = s.warmup * len(names) + s.steps
    if seed_indices is not None:
        seeds = [int(i) for i in seed_indices]
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) >= M:
            raise ValueError(
                f"`seed_indices` must be distinct indices into the {M} candidates, got {seeds}."
            )
    else:
        seeds = None
    n_first = len(seeds) if seeds is not None else s.n_seed
    if n_first + needed > M:
        raise ValueError(
            f"{n_first} seed points + {needed} measurements exceed the {M} candidates; lower "
            "`steps` or `warmup`, or give more candidates."
        )

    header = {
        "version": RECORD_VERSION,
        "settings": s.to_dict(),
        "models": names,
        "model_settings": {
            n: (m.describe() if hasattr(m, "describe") else type(m).__name__)
            for n, m in models.items()
        },
        "candidates": {"n": M, "dims": X.shape[1], "sha256_16": _candidates_hash(X)},
    }
    out_dir = Path(out) if out is not None else None
    record = _open_record(out_dir, header, overwrite=overwrite)
    rng = np.random.default_rng(s.seed)
    bandit = Bandit(names, policy=s.policy, epsilon=s.epsilon, temperature=s.temperature)

    # ---- seed points (or the resumed state) ---------------------------------------------
    if record.get("seed_indices") is None:
        idx = (
            seeds if seeds is not None else [int(i) for i in rng.choice(M, s.n_seed, replace=False)]
        )
        vals = [_checked(measure_fn(i), i) for i in idx]
        record["seed_indices"], record["seed_values"] = idx, vals
        record["rng_state"] = rng.bit_generator.state
        _save(out_dir, record)
    measured = list(record["seed_indices"])
    values = list(record["seed_values"])
    for step in record["steps"]:
        measured.append(step["index"])
        values.append(step["value"])
        bandit.update(step["model"], step["reward"])
    for name in record["dropped"]:
        bandit.drop(name)
    rng.bit_generator.state = (
        record["steps"][-1]["rng_state"] if record["steps"] else record["rng_state"]
    )
    done = len(record["steps"])
    if done:
        logger.info("resuming %s after %d steps", out_dir, done)

    cache: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}  # name → (n data, mean, std)
    latest = {st["model"]: st["after"] for st in record["steps"] if st.get("after") is not None}

    def fit_predict(name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The model's (mean, std) over all candidates on all data so far, or None if it
        failed (then it is dropped)."""
        n = len(measured)
        if name in cache and cache[name][0] == n:
            return cache[name][1], cache[name][2]
        model = models[name]
        try:
            model.fit(X[measured], np.asarray(values))
            mean, var = model.predict(X, noise=True) if s.noise else model.predict(X)
            mean, var = np.asarray(mean, dtype=float), np.asarray(var, dtype=float)
            if mean.shape != (M,) or var.shape != (M,):
                raise ValueError(
                    f"predict returned shapes {mean.shape}, {var.shape} for {M} points"
                )
            if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var))):
                raise ValueError("predict returned NaN or infinite values")
        except Exception as exc:  # any failure of a user's model drops that model only
            reason = f"{type(exc).__name__}: {exc}"
            logger.warning("model %r dropped: %s", name, reason)
            record["dropped"][name] = reason
            bandit.drop(name)
            cache.pop(name, None)
            if not bandit.active:
                _save(out_dir, record)
                raise ValueError(
                    "every model failed and was dropped: "
                    + "; ".join(f"{k}: {v}" for k, v in record["dropped"].items())
                ) from exc
            return None
        std = np.sqrt(np.clip(var, 0.0, None))
        cache[name] = (n, mean, std)
        return mean, std

    def summary(std: np.ndarray) -> float:
        return float(np.median(std) if s.metric == "median" else np.mean(std))

    def one_step(name: str, phase: str, why: str) -> None:
        before = fit_predict(name)
        if before is None:
            return
        _, std = before
        open_ = np.ones(M, bool)
        open_[measured] = False
        masked = np.where(open_, std, -np.inf)
        i = int(np.argmax(masked))  # ties: the lowest candidate index
        value = _checked(measure_fn(i), i)
        measured.append(i)
        values.append(value)
        after = fit_predict(name)
        u_before = summary(std)
        if after is None:
            u_after, reward = float("nan"), -1.0
        else:
            u_after = summary(after[1])
            latest[name] = u_after
            if s.reward == "decrease":
                reward = 1.0 if u_after < u_before else -1.0
            else:
                others = [latest[n] for n in bandit.active if n != name and n in latest]
                reward = 1.0 if all(u_after < o for o in others) else -1.0
            bandit.update(name, reward)
        record["steps"].append(
            {
                "step": len(record["steps"]),
                "phase": phase,
                "model": name,
                "why": why,
                "index": i,
                "x": X[i].tolist(),
                "value": value,
                "before": u_before,
                "after": u_after,
                "reward": reward if after is not None else None,
                "counts": dict(bandit.counts),
                "values": {n: bandit.value(n) for n in names},
                "rng_state": rng.bit_generator.state,
            }
        )
        _save(out_dir, record)

    plan = [("warmup", n) for _ in range(s.warmup) for n in names] + [("bandit", None)] * s.steps
    bar = _progress(progress, total=len(plan), initial=min(done, len(plan)))
    try:
        for phase, name in plan[done:]:
            if phase == "warmup":
                if name not in bandit.active:
                    record["steps"].append(_skipped(len(record["steps"]), name, bandit, names, rng))
                    _save(out_dir, record)
                else:
                    one_step(name, "warmup", "warmup")
            else:
                chosen, why = bandit.choose(rng)
                one_step(chosen, "bandit", why)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None and hasattr(bar, "close"):
            bar.close()

    # ---- the end: every surviving model on all the data, the winner ------------------------
    predictions = {}
    for name in list(bandit.active):
        r = fit_predict(name)
        if r is not None:
            predictions[name] = r
    winner = bandit.winner()
    model = models[winner]
    params = model.parameters() if hasattr(model, "parameters") else {}
    evidence = {n: float(getattr(models[n], "log_evidence_", float("nan"))) for n in predictions}
    record["result"] = {
        "winner": winner,
        "parameters": params,
        "counts": dict(bandit.counts),
        "values": {n: bandit.value(n) for n in names},
        "log_evidence": evidence,
    }
    record["finished"] = True
    _save(out_dir, record)
    mean, std = predictions[winner]
    return HypothesisResult(
        winner=winner,
        parameters=params,
        mean=mean,
        std=std,
        predictions=predictions,
        counts=dict(bandit.counts),
        values={n: bandit.value(n) for n in names},
        dropped=dict(record["dropped"]),
        measured=np.asarray(measured, dtype=int),
        values_measured=np.asarray(values, dtype=float),
        record=record,
    )


def instrument_measure(
    instrument: Any,
    positions_px: Any,
    scalarizer: Callable[[np.ndarray, np.ndarray], float],
    /,
) -> Callable[[int], float]:
    """``measure(index)`` for :func:`learn_hypotheses` from an instrument of the automated
    experiment: the spectrum at candidate ``index``'s position, reduced to one number.

    Parameters
    ----------
    instrument : object
        Anything with ``measure(x, y) → spectrum`` and an ``energy`` axis:
        :class:`atomlens.experiment.SimulatedMicroscope`,
        :class:`atomlens.experiment.SpectrumImageReplay`, or a real microscope's
        :class:`atomlens.experiment.InstrumentAdapter`.
    positions_px : array_like of shape (M, 2)
        Where each candidate is measured: (x, y) [px of the instrument's overview].
    scalarizer : callable
        ``scalarizer(spectrum, energy) → value``, e.g.
        :class:`atomlens.active.scalarizers.BandIntensity`.

    Returns
    -------
    callable
        ``measure(index) → float``.

    Raises
    ------
    ValueError
        ``positions_px`` is not (M, 2) or holds NaN; later, a spectrum that scalarizes to a
        non-finite value (the index and position are named).
    """
    pos = np.asarray(positions_px, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 2 or len(pos) == 0:
        raise ValueError(f"`positions_px` must be (M, 2) pixel positions, got shape {pos.shape}.")
    if not np.isfinite(pos).all():
        raise ValueError("`positions_px` holds NaN or infinite positions.")

    def measure(index: int) -> float:
        x, y = pos[int(index)]
        value = float(scalarizer(instrument.measure(float(x), float(y)), instrument.energy))
        if not np.isfinite(value):
            raise ValueError(f"candidate {index} at x={x:g}, y={y:g} px gave {value}.")
        return value

    return measure


def _skipped(step: int, name: str, bandit: Bandit, names: list[str], rng) -> dict[str, Any]:
    """A warm-up turn of a dropped model: nothing measured, recorded so steps stay aligned."""
    return {
        "step": step,
        "phase": "warmup",
        "model": name,
        "why": "dropped",
        "index": None,
        "x": None,
        "value": None,
        "before": None,
        "after": None,
        "reward": None,
        "counts": dict(bandit.counts),
        "values": {n: bandit.value(n) for n in names},
        "rng_state": rng.bit_generator.state,
    }


def _checked(value: Any, i: int) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(
            f"the measurement at candidate {i} is {v}; `measure` must return finite values."
        )
    return v


def _progress(progress: bool | Callable[..., Any], *, total: int, initial: int):
    if progress is False or progress is None:
        return None
    if progress is True:
        # deferred: tqdm only when a bar is asked for
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc="hypotheses", unit="step")
    return progress(total=total, initial=initial)


def _open_record(out: Path | None, header: dict[str, Any], *, overwrite: bool) -> dict[str, Any]:
    fresh = {
        **header,
        "seed_indices": None,
        "seed_values": None,
        "steps": [],
        "dropped": {},
        "finished": False,
    }
    if out is None:
        return fresh
    path = out / "record.json"
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory; choose another `out`.")
    if path.is_file() and not overwrite:
        old = load_record(out)
        same = all(old.get(k) == header[k] for k in ("settings", "models", "candidates"))
        if not same:
            raise FileExistsError(
                f"{out} holds a run with other settings, models or candidates; choose another "
                "`out` or pass `overwrite=True`."
            )
        if old.get("finished"):
            raise FileExistsError(
                f"{out} holds a finished run; choose another `out` or pass `overwrite=True`."
            )
        old["steps"] = [st for st in old["steps"]]
        return old
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out} exists and is not empty; choose another `out` or pass `overwrite=True`."
        )
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for name in ("record.json", "steps.csv"):
            (out / name).unlink(missing_ok=True)
    return fresh


def _save(out: Path | None, record: Mapping[str, Any]) -> None:
    if out is None:
        return
    _write_atomic(out / "record.json", json.dumps(record, indent=1, default=_json_default))
    _write_atomic(out / "steps.csv", _steps_csv(record))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-able: {type(o).__name__}")


def read_candidates(path: str | os.PathLike[str], /) -> tuple[np.ndarray, np.ndarray]:
    """Read candidates and their (hidden) values from ``.npz`` or ``.csv``.

    Parameters
    ----------
    path : path
        ``.npz`` with arrays ``candidates`` (M,) or (M, D) and ``values`` (M,); or ``.csv``
        with a column ``value`` and the coordinates in the other columns.

    Returns
    -------
    candidates : ndarray of shape (M, D)
    values : ndarray of shape (M,)
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file; pass a .npz or .csv of candidates.")
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            missing = {"candidates", "values"} - set(z.files)
            if missing:
                raise ValueError(
                    f"{p}: lacks the arrays {sorted(missing)}; save candidates (M, D) and "
                    "values (M,) with np.savez."
                )
            X, y = np.asarray(z["candidates"], float), np.asarray(z["values"], float)
    elif p.suffix == ".csv":
        # deferred: pandas only for CSV input
        import pandas as pd

        df = pd.read_csv(p)
        if "value" not in df.columns or df.shape[1] < 2:
            raise ValueError(
                f"{p}: needs a column 'value' and at least one coordinate column, got "
                f"{list(df.columns)}."
            )
        y = df["value"].to_numpy(float)
        X = df.drop(columns="value").to_numpy(float)
    else:
        raise ValueError(f"{p}: unsupported extension {p.suffix!r}; pass a .npz or .csv file.")
    X = X[:, None] if X.ndim == 1 else X
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{p}: {X.shape[0]} candidates but {y.shape[0]} values.")
    return X, y


def load_models(path: str | os.PathLike[str], /, *, seed: int = 0) -> dict[str, SurrogateModel]:
    """The candidate models defined in a Python file.

    The file defines ``MODELS``, a dict of name → model, or ``models(seed)`` returning
    one. It is run as Python: load only files you trust.

    Parameters
    ----------
    path : path
        The ``.py`` file.
    seed : int
        Passed to ``models(seed)``.

    Returns
    -------
    dict
    """
    # deferred: importlib machinery only to load a user's models file
    import importlib.util

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file; pass `models` as a .py file defining MODELS.")
    if p.suffix != ".py":
        raise ValueError(f"{p}: `models` must be a Python file (.py) defining MODELS.")
    spec = importlib.util.spec_from_file_location(f"atomlens_user_models_{p.stem}", p)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "models") and callable(module.models):
        found = module.models(seed)
    elif hasattr(module, "MODELS"):
        found = module.MODELS
    else:
        raise ValueError(f"{p}: defines neither MODELS nor models(seed); add one of them.")
    if not isinstance(found, Mapping) or not found:
        raise ValueError(f"{p}: MODELS must be a non-empty dict of name → model.")
    return dict(found)


def run_hypotheses_files(
    data: str | os.PathLike[str],
    /,
    *,
    models: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: HypothesisSettings | None = None,
    overwrite: bool = False,
    progress: bool | Callable[..., Any] = False,
) -> HypothesisResult:
    """Hypothesis learning from files: what ``atomlens hypotheses`` runs.

    Writes into ``out``: ``record.json`` and ``steps.csv`` (as the run goes), then
    ``winner.json`` (winner, parameters with 90 % intervals, counts, average rewards,
    dropped models, log evidences), ``reconstruction.csv`` (the candidates with every
    surviving model's mean and σ), ``rewards.png`` and ``reconstruction.png``.

    Parameters
    ----------
    data : path
        Candidates and their values (:func:`read_candidates`); a value is revealed only
        when its candidate is measured.
    models : path
        The ``.py`` file of candidate models (:func:`load_models`).
    out : path
        The output directory; an unfinished run there resumes.
    settings : HypothesisSettings, optional
        Steps, warm-up, seed points, bandit rule and seed.
    overwrite : bool
        Start afresh in an ``out`` that holds another run.
    progress : bool or callable
        A tqdm progress bar.

    Returns
    -------
    HypothesisResult
    """
    s = settings if settings is not None else HypothesisSettings()
    X, y = read_candidates(data)
    found = load_models(models, seed=s.seed)
    result = learn_hypotheses(
        X, models=found, measure=y, settings=s, out=out, overwrite=overwrite, progress=progress
    )
    out_dir = Path(out)
    winner = {
        "winner": result.winner,
        "parameters": result.parameters,
        "counts": result.counts,
        "values": result.values,
        "dropped": result.dropped,
        "log_evidence": result.record["result"]["log_evidence"],
    }
    _write_atomic(out_dir / "winner.json", json.dumps(winner, indent=1, default=_json_default))
    buf = io.StringIO()
    w = csv.writer(buf)
    coords = [f"x{i}" for i in range(X.shape[1])]
    names = list(result.predictions)
    w.writerow([*coords, "measured", *(f"{c}_{n}" for n in names for c in ("mean", "std"))])
    measured = set(result.measured.tolist())
    for i in range(X.shape[0]):
        row = [*X[i].tolist(), int(i in measured)]
        for n in names:
            row += [float(result.predictions[n][0][i]), float(result.predictions[n][1][i])]
        w.writerow(row)
    _write_atomic(out_dir / "reconstruction.csv", buf.getvalue())
    # deferred: matplotlib only once the run is done
    from atomlens.report.hypotheses_figures import save_hypothesis_figures

    save_hypothesis_figures(out_dir, candidates=X, result=result)
    return result
