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
``metric="median"``, or the mean, ``"mean"``) is strictly lower than that of every other
running model refit on the same data, −1 otherwise. ``reward="lowest-stale"`` compares
with every other model's uncertainty at its own latest fit instead (half the fits per step,
but the model being pulled has the most data, so whichever model leads keeps leading).
``reward="decrease"`` (the paper's rule): +1 when the model's uncertainty is strictly lower
after the refit than before the measurement, −1 otherwise (an unchanged value earns −1).

Why the default is not the paper's, from ``benchmarks/hypotheses.py`` (2026-12-05): every
model's uncertainty usually falls when it gets a point, so the decrease paid the right and
the wrong models alike (+1 in 72 % and 74 % of their pulls) and chose the right model in 4
of 9 runs of the 1D toy. ``"lowest-stale"`` paid the right one 95 % and the wrong ones 45 %
and chose right in 7 of 9; on the 2D domain structures it once took stripes for a bubble:
the stripes model lost its warm-up turns on few points and was never compared again on
more. ``"lowest"`` paid the right one 92 % and the wrong ones 19 %, chose right in 8 of 9
and in 11 of 12 2D runs (four structures × three seeds), at 1.8× the time per step in 1D.

Bandit: the value of a model is its average reward so far (sum of rewards / pulls).
``policy="epsilon"``: with probability ``epsilon`` a model drawn uniformly from those
still running, otherwise the one with the highest value (ties: the first in the given
order). ``policy="softmax"``: a model drawn with probability ∝ exp(value / temperature);
a small temperature (0.1) almost always takes the best, a large one (10) draws almost
uniformly.

A model whose fit or prediction raises, or returns NaN/inf, is dropped with the reason
recorded under its name; the loop goes on with the others.

The run record is the automated experiment's (:class:`atomlens.active.record.RunRecord`,
the same files :func:`atomlens.active.run` writes, with ``"kind": "hypotheses"`` in
``run.json``): one row of ``path.csv`` per measurement, whose ``why`` names the phase and the
model (``seed``, ``warmup peak``, ``greedy onset``, ``explore plateau``, ``softmax peak``)
and whose ``acquisition`` is the chosen model's predictive standard deviation at the point;
one line of ``steps.jsonl`` per measurement holding the uncertainty before and after, the
reward, the counts, reward sums and values of every model, the dropped models and the random
generator's state, so an interrupted run resumes from it exactly; the chosen model's mean and
variance before each step in ``maps/``; ``bandit.csv``, the counts and average rewards per
model per step as a table; and ``winner.json`` once the run has ended.
:func:`replay_hypotheses` re-decides every step from the record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from atomlens._shared.atomic import write_atomic as _write_atomic
from atomlens._shared.checksum import file_sha256
from atomlens._shared.config import json_default
from atomlens.active.record import RunRecord

__all__ = [
    "Bandit",
    "HypothesisReplay",
    "HypothesisResult",
    "HypothesisSettings",
    "SurrogateModel",
    "instrument_measure",
    "learn_hypotheses",
    "load_models",
    "load_record",
    "read_candidates",
    "replay_hypotheses",
    "run_hypotheses_files",
]

logger = logging.getLogger(__name__)

#: Version of the hypothesis record (2: the automated experiment's RunRecord; 1 was
#: ``record.json`` and ``steps.csv``).
RECORD_VERSION = 2

#: The figures a finished command-line run writes.
_FIGURES = ("rewards.png", "reconstruction.png")


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
    reward : {"lowest", "lowest-stale", "decrease"}
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
    reward: Literal["decrease", "lowest", "lowest-stale"] = "lowest"
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
        if self.reward not in ("decrease", "lowest", "lowest-stale"):
            problems.append(
                f"`reward` must be 'decrease', 'lowest' or 'lowest-stale', got {self.reward!r}"
            )
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
        The run as one dict (what :func:`load_record` reads back from ``out``).
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


def _bandit_csv(names: Sequence[str], steps: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    cols = ["step", "phase", "model", "why", "index", "value", "before", "after", "reward"]
    cols += [f"count_{n}" for n in names] + [f"value_{n}" for n in names]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for st in steps:
        w.writerow(
            [st[c] for c in cols[:9]]
            + [st["counts"][n] for n in names]
            + [st["values"][n] for n in names]
        )
    return buf.getvalue()


def _candidates_hash(X: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(X, dtype=np.float64).tobytes()).hexdigest()[:16]


def _record_dict(meta: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The run as one dict (``HypothesisResult.record``) from ``run.json`` and the
    ``steps.jsonl`` lines of a :class:`~atomlens.active.record.RunRecord`."""
    seeds = [ln for ln in lines if ln["why"] == "seed"]
    steps = [dict(ln["model"], index=ln["index"], value=ln["value"]) for ln in lines]
    steps = [st for st in steps if st["phase"] != "seed"]
    for k, st in enumerate(steps):
        st["step"] = k
    last = lines[-1]["model"] if lines else {}
    return {
        "kind": "hypotheses",
        "version": meta.get("version"),
        "settings": meta["settings"],
        "models": list(meta["models"]),
        "model_settings": meta.get("model_settings"),
        "candidates": meta["candidates"],
        "seed_indices": [ln["index"] for ln in seeds],
        "seed_values": [ln["value"] for ln in seeds],
        "steps": steps,
        "dropped": dict(last.get("dropped", {})),
        "result": None,
        "finished": False,
    }


def load_record(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the run record of a hypothesis-learning run as one dict.

    The record on disk is the automated experiment's
    (:class:`~atomlens.active.record.RunRecord`: ``run.json``, ``path.csv``,
    ``steps.jsonl``, ``raw.npy``, ``maps/``) plus ``bandit.csv`` and, once the run has
    ended, ``winner.json``.

    Parameters
    ----------
    out : str or path-like
        The run's output directory.

    Returns
    -------
    dict
        ``settings``, ``models``, ``seed_indices``, ``seed_values``, ``steps`` (one dict per
        measurement after the seed points: ``step``, ``phase``, ``model``, ``why``,
        ``index``, ``x``, ``value``, ``before``, ``after``, ``reward``, ``counts``,
        ``values``), ``dropped``, ``finished`` and ``result`` (``winner.json``, or None).

    Raises
    ------
    FileNotFoundError
        ``out`` holds no run record.
    ValueError
        ``out`` holds the record of another kind of run (``atomlens explore``) or of an
        older version.
    """
    path = Path(out)
    rec = RunRecord.read(path)
    _check_kind(rec.meta, path)
    d = _record_dict(rec.meta, rec.step_lines())
    winner = path / "winner.json"
    if winner.is_file():
        d["result"] = json.loads(winner.read_text(encoding="utf-8"))
        d["finished"] = True
    return d


def _check_kind(meta: Mapping[str, Any], path: Path) -> None:
    if meta.get("kind") != "hypotheses":
        raise ValueError(
            f"{path} records an automated-experiment run (atomlens explore), not hypothesis "
            "learning; read it with atomlens.active.RunRecord.read."
        )
    if meta.get("version") != RECORD_VERSION:
        raise ValueError(
            f"{path}: hypothesis record version {meta.get('version')!r}, expected "
            f"{RECORD_VERSION}; rerun with this version of atomlens."
        )


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
    positions_px: Any = None,
    overview: Any = None,
    provenance: Mapping[str, Any] | None = None,
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
        ``measure(index) → value`` (an instrument through :func:`instrument_measure`, or a
        simulator), or the values of all candidates, revealed only when measured.
    settings : HypothesisSettings, optional
        Steps, warm-up, seed points, bandit rule, reward metric and seed.
    seed_indices : sequence of int, optional
        Candidates to measure first instead of ``settings.n_seed`` random ones.
    out : str or path-like, optional
        Directory of the run record, written after every measurement: the automated
        experiment's :class:`~atomlens.active.record.RunRecord` (``run.json``,
        ``path.csv``, ``steps.jsonl``, ``raw.npy``, ``inputs.npy``, the chosen model's mean
        and variance before each step in ``maps/``) plus ``bandit.csv`` (counts and average
        rewards per model per step) and, at the end, ``winner.json`` and
        ``maps/final.npz``. If it holds an unfinished run with the same settings,
        candidates and models, that run resumes where it stopped.
    overwrite : bool
        Start afresh in an ``out`` that holds another run.
    progress : bool or callable
        A tqdm progress bar (``True``) or a tqdm-compatible callable.
    positions_px : array_like of shape (M, 2), optional
        Where each candidate lies on ``overview`` (x, y) [px], for the record's ``x_px``,
        ``y_px`` and figures (instrument runs).
    overview : ndarray of shape (H, W), optional
        The overview image the positions refer to, saved with the record.
    provenance : mapping, optional
        JSON-able facts saved in ``run.json`` under ``provenance`` (e.g. the models file
        and its checksum, so that :func:`replay_hypotheses` can find it).

    Returns
    -------
    HypothesisResult

    Raises
    ------
    ValueError
        Bad inputs; a measurement that is NaN; every model dropped; ``out`` recording
        another run.
    FileExistsError
        ``out`` holds other files, or a finished run, and ``overwrite`` is not set.
    """
    s = settings if settings is not None else HypothesisSettings()
    if not isinstance(s, HypothesisSettings):
        raise TypeError(f"`settings` must be HypothesisSettings, got {type(s).__name__}.")
    X = _checked_candidates(candidates)
    _check_models(models)
    measure_fn = _measure_function(measure, len(X))
    pos = _checked_positions(positions_px, len(X))
    seeds = _checked_seeds(seed_indices, len(X), settings=s, n_models=len(models))
    meta = _run_meta(X, models=models, settings=s, seeds=seeds, provenance=provenance)
    out_dir = Path(out) if out is not None else None
    rec = None
    if out_dir is not None:
        rec = _open_record(
            out_dir, meta=meta, positions=pos, overview=overview, inputs=X, overwrite=overwrite
        )
    run = _HypothesisRun(
        X, models=models, measure=measure_fn, settings=s, meta=meta, rec=rec, out_dir=out_dir
    )
    run.start(seeds)
    run.play(progress)
    return run.finish()


def _checked_candidates(candidates: Any) -> np.ndarray:
    """The candidates as an (M, D) float array; a 1D array is one column."""
    X = np.asarray(candidates, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"`candidates` must have shape (M,) or (M, D) with M ≥ 1, got {X.shape}.")
    if not np.all(np.isfinite(X)):
        raise ValueError("`candidates` holds NaN or infinite coordinates; remove those points.")
    return X


def _check_models(models: Any) -> None:
    """Raise unless ``models`` is a non-empty mapping of models with ``fit`` and
    ``predict``; a model that asks for a name (``_named`` False) gets its key."""
    if not isinstance(models, Mapping) or not models:
        raise ValueError("`models` must be a non-empty mapping of names to models.")
    for k, m in models.items():
        if not (hasattr(m, "fit") and hasattr(m, "predict")):
            raise TypeError(f"`models`[{k!r}] has no fit/predict; pass a StructuredGP or alike.")
        if getattr(m, "_named", True) is False:  # errors and logs call it by its key
            m.name = str(k)


def _measure_function(measure: Any, M: int) -> Callable[[int], float]:
    """``measure`` itself if it is callable, else a look-up in the M values it holds."""
    if callable(measure):
        return measure
    targets = np.asarray(measure, dtype=float).reshape(-1)
    if targets.shape[0] != M:
        raise ValueError(
            f"`measure` holds {targets.shape[0]} values for {M} candidates; pass one per "
            "candidate or a callable."
        )

    def measure_fn(i: int) -> float:
        return float(targets[i])

    return measure_fn


def _checked_positions(positions_px: Any, M: int) -> np.ndarray | None:
    """The candidates' pixel positions as an (M, 2) float array, or None."""
    if positions_px is None:
        return None
    pos = np.asarray(positions_px, dtype=np.float64)
    if pos.shape != (M, 2) or not np.isfinite(pos).all():
        raise ValueError(
            f"`positions_px` must be ({M}, 2) finite pixel positions, got {pos.shape}."
        )
    return pos


def _checked_seeds(
    seed_indices: Sequence[int] | None, M: int, *, settings: HypothesisSettings, n_models: int
) -> list[int] | None:
    """The given seed points as a list (None: draw them), after checking that they and the
    measurements the settings ask for fit in the M candidates."""
    seeds = None
    if seed_indices is not None:
        seeds = [int(i) for i in seed_indices]
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) >= M:
            raise ValueError(
                f"`seed_indices` must be distinct indices into the {M} candidates, got {seeds}."
            )
    needed = settings.warmup * n_models + settings.steps
    n_first = len(seeds) if seeds is not None else settings.n_seed
    if n_first + needed > M:
        raise ValueError(
            f"{n_first} seed points + {needed} measurements exceed the {M} candidates; lower "
            "`steps` or `warmup`, or give more candidates."
        )
    return seeds


def _run_meta(
    X: np.ndarray,
    *,
    models: Mapping[str, SurrogateModel],
    settings: HypothesisSettings,
    seeds: list[int] | None,
    provenance: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """What ``run.json`` records of a run: a resumed run must match it."""
    return {
        "kind": "hypotheses",
        "version": RECORD_VERSION,
        "settings": settings.to_dict(),
        "models": [str(k) for k in models],
        "model_settings": {
            n: (m.describe() if hasattr(m, "describe") else type(m).__name__)
            for n, m in models.items()
        },
        "candidates": {"n": X.shape[0], "dims": X.shape[1], "sha256_16": _candidates_hash(X)},
        "seed_indices": seeds,
        "provenance": dict(provenance) if provenance is not None else None,
    }


def _open_record(
    out_dir: Path,
    *,
    meta: Mapping[str, Any],
    positions: np.ndarray | None,
    overview: Any,
    inputs: np.ndarray,
    overwrite: bool,
) -> RunRecord:
    """The run record in ``out_dir``: an unfinished run's to resume, or a new one (the
    files of a run it replaces removed first)."""
    resume = (out_dir / "run.json").is_file() and not overwrite
    if resume and (out_dir / "winner.json").is_file():
        raise FileExistsError(
            f"{out_dir} holds a finished run; choose another `out` or pass `overwrite=True`."
        )
    if overwrite:
        for old in ("winner.json", "bandit.csv", "reconstruction.csv", *_FIGURES):
            (out_dir / old).unlink(missing_ok=True)
    return RunRecord.open(
        out_dir,
        meta=meta,
        positions=positions,
        image=overview,
        energy=None,
        resume=resume,
        overwrite=overwrite,
        inputs=inputs,
    )


def _write_final(out_dir: Path, mean: np.ndarray, std: np.ndarray, result: Mapping) -> None:
    """The winner's reconstruction (``maps/final.npz``), then ``winner.json``."""
    buf = io.BytesIO()
    np.savez(buf, mean=mean.astype(np.float32), variance=(std**2).astype(np.float32))
    _write_atomic(out_dir / "maps" / "final.npz", buf.getvalue())
    # written last: a run with winner.json is finished
    _write_atomic(out_dir / "winner.json", json.dumps(result, indent=1, default=json_default))


class _HypothesisRun:
    """One run of :func:`learn_hypotheses` as it goes: the measurements so far, the bandit
    and its random generator, each model's latest fit and uncertainty, and the record.

    Parameters
    ----------
    X : ndarray of shape (M, D)
        The candidates.
    models : mapping of str to model
        The hypotheses.
    measure : callable
        ``measure(index) → value``.
    settings : HypothesisSettings
        The run's settings.
    meta : dict
        What ``run.json`` records (:func:`_run_meta`).
    rec : RunRecord or None
        The record to write to, and to resume from.
    out_dir : pathlib.Path or None
        Its directory.
    """

    def __init__(
        self,
        X: np.ndarray,
        *,
        models: Mapping[str, SurrogateModel],
        measure: Callable[[int], float],
        settings: HypothesisSettings,
        meta: Mapping[str, Any],
        rec: RunRecord | None,
        out_dir: Path | None,
    ) -> None:
        s = settings
        self.X, self.models, self.measure_fn, self.s = X, models, measure, s
        self.meta, self.rec, self.out_dir = meta, rec, out_dir
        self.names: list[str] = list(meta["models"])
        self.lines: list[dict[str, Any]] = rec.step_lines() if rec is not None else []
        self.rng = np.random.default_rng(s.seed)
        self.bandit = Bandit(
            self.names, policy=s.policy, epsilon=s.epsilon, temperature=s.temperature
        )
        self.measured = [int(ln["index"]) for ln in self.lines]
        self.values = [float(ln["value"]) for ln in self.lines]
        self.done = 0  # plan entries finished
        self.latest: dict[str, float] = {}  # name → its uncertainty at its latest fit
        self.dropped: dict[str, str] = {}  # name → why
        self.cache: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}  # name → (n data, mean, std)

    # ---- the start: seed points, or where a recorded run stopped --------------------------

    def start(self, seeds: list[int] | None) -> None:
        """Draw the seed points (or take the given ones), take up the recorded run where it
        stopped, and measure the seed points it has not measured."""
        M = len(self.X)
        first = (
            seeds
            if seeds is not None
            else [int(i) for i in self.rng.choice(M, self.s.n_seed, replace=False)]
        )
        self._resume(first)
        for i in first[len(self.measured) :]:
            value = _checked(self.measure_fn(i), i)
            self.measured.append(i)
            self.values.append(value)
            self._write(i, value, "seed", math.nan, {"phase": "seed"}, None)

    def _resume(self, first: list[int]) -> None:
        """The bandit, the random generator, the dropped models and the latest
        uncertainties as the record left them."""
        if self.measured[: len(first)] != first[: len(self.measured)]:
            raise ValueError(
                f"{self.out_dir}: the recorded seed points are not this run's; pass `overwrite`."
            )
        state = self.lines[-1]["model"] if self.lines else {}
        if state.get("phase", "seed") != "seed":
            self.done = int(state["plan"]) + 1
            self.bandit.counts = {n: int(state["counts"][n]) for n in self.names}
            self.bandit.sums = {n: float(state["sums"][n]) for n in self.names}
            self.rng.bit_generator.state = state["rng_state"]
        self.dropped = dict(state.get("dropped", {}))
        for name in self.dropped:
            self.bandit.drop(name)
        for st in _record_dict(self.meta, self.lines)["steps"]:
            if st["after"] is not None:
                self.latest[st["model"]] = st["after"]
        if self.lines:
            logger.info("resuming %s after %d measurements", self.out_dir, len(self.lines))

    # ---- the models: fit, predict, drop ---------------------------------------------------

    def fit_predict(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The model's (mean, std) over all candidates on all data so far, or None if it
        failed (then it is dropped)."""
        n = len(self.measured)
        if name in self.cache and self.cache[name][0] == n:
            return self.cache[name][1], self.cache[name][2]
        model = self.models[name]
        try:
            mean, var = self._fit_and_predict(model)
        except Exception as exc:  # any failure of a user's model drops that model only
            self._drop(name, exc)
            return None
        std = np.sqrt(np.clip(var, 0.0, None))
        self.cache[name] = (n, mean, std)
        return mean, std

    def _fit_and_predict(self, model: SurrogateModel) -> tuple[np.ndarray, np.ndarray]:
        """``model`` fit to the measurements, its (mean, variance) over the candidates;
        raises on a wrong shape or a non-finite value."""
        M = len(self.X)
        model.fit(self.X[self.measured], np.asarray(self.values))
        mean, var = model.predict(self.X, noise=True) if self.s.noise else model.predict(self.X)
        mean, var = np.asarray(mean, dtype=float), np.asarray(var, dtype=float)
        if mean.shape != (M,) or var.shape != (M,):
            raise ValueError(f"predict returned shapes {mean.shape}, {var.shape} for {M} points")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var))):
            raise ValueError("predict returned NaN or infinite values")
        return mean, var

    def _drop(self, name: str, exc: Exception) -> None:
        """Drop the model ``name`` that raised ``exc``; raise if none is left."""
        reason = f"{type(exc).__name__}: {exc}"
        logger.warning("model %r dropped: %s", name, reason)
        self.dropped[name] = reason
        self.bandit.drop(name)
        self.cache.pop(name, None)
        if not self.bandit.active:
            raise ValueError(
                "every model failed and was dropped: "
                + "; ".join(f"{k}: {v}" for k, v in self.dropped.items())
            ) from exc

    def uncertainty(self, std: np.ndarray) -> float:
        """The metric rewarded: median or mean predictive standard deviation."""
        return float(np.median(std) if self.s.metric == "median" else np.mean(std))

    # ---- one step: acquire, measure, reward, write ----------------------------------------

    def play(self, progress: bool | Callable[..., Any]) -> None:
        """The warm-up turns and bandit steps the record has not done, in order."""
        s = self.s
        plan = [("warmup", n) for _ in range(s.warmup) for n in self.names]
        plan += [("bandit", None)] * s.steps
        bar = _progress(progress, total=len(plan), initial=min(self.done, len(plan)))
        try:
            for k in range(self.done, len(plan)):
                self._turn(k, *plan[k])
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None and hasattr(bar, "close"):
                bar.close()

    def _turn(self, k: int, phase: str, name: str | None) -> None:
        """Plan entry ``k``: a warm-up turn of model ``name``, or a step of the bandit's choice."""
        if phase == "warmup":
            if name in self.bandit.active:  # a dropped model's turn measures nothing
                self.step(k, name, "warmup", "warmup")
        else:
            chosen, why = self.bandit.choose(self.rng)
            self.step(k, chosen, "bandit", why)

    def step(self, k: int, name: str, phase: str, why: str) -> None:
        """Model ``name`` measures where it is least sure, is refit, earns its reward, and
        the step is written."""
        before = self.fit_predict(name)
        if before is None:
            return
        mean_b, std = before
        open_ = np.ones(len(self.X), bool)
        open_[self.measured] = False
        i = int(np.argmax(np.where(open_, std, -np.inf)))  # ties: the lowest candidate index
        value = _checked(self.measure_fn(i), i)
        self.measured.append(i)
        self.values.append(value)
        after = self.fit_predict(name)
        u_before = self.uncertainty(std)
        u_after = reward = None
        if after is not None:
            u_after = self.uncertainty(after[1])
            self.latest[name] = u_after
            reward = self._reward(name, u_before, u_after)
            self.bandit.update(name, reward)
        summary = self._summary(k, i, name, phase, why, (u_before, u_after, reward))
        self._write(i, value, f"{why} {name}", float(std[i]), summary, (mean_b, std**2))

    def _reward(self, name: str, u_before: float, u_after: float) -> float:
        """+1 or −1 by the settings' reward rule (see the module docstring)."""
        if self.s.reward == "decrease":
            return 1.0 if u_after < u_before else -1.0
        if self.s.reward == "lowest-stale":
            others = [self.latest[n] for n in self.bandit.active if n != name and n in self.latest]
        else:  # "lowest": every other running model refit on the same data
            others = []
            for n in list(self.bandit.active):
                if n != name and (fit := self.fit_predict(n)) is not None:
                    self.latest[n] = self.uncertainty(fit[1])
                    others.append(self.latest[n])
        return 1.0 if all(u_after < o for o in others) else -1.0

    def _summary(
        self,
        k: int,
        i: int,
        name: str,
        phase: str,
        why: str,
        outcome: tuple[float, float | None, float | None],
    ) -> dict[str, Any]:
        """The ``steps.jsonl`` entry of a step: enough to resume after it exactly."""
        u_before, u_after, reward = outcome
        return {
            "phase": phase,
            "model": name,
            "why": why,
            "plan": k,
            "x": self.X[i].tolist(),
            "before": u_before,
            "after": u_after,
            "reward": reward,
            "counts": dict(self.bandit.counts),
            "sums": dict(self.bandit.sums),
            "values": {n: self.bandit.value(n) for n in self.names},
            "dropped": dict(self.dropped),
            "rng_state": self.rng.bit_generator.state,
        }

    def _write(
        self,
        i: int,
        value: float,
        why: str,
        acq: float,
        summary: dict[str, Any],
        maps: tuple[np.ndarray, np.ndarray] | None,
    ) -> None:
        """Add a measurement to the lines and, with a record, to ``path.csv``,
        ``steps.jsonl``, ``maps/`` and ``bandit.csv``."""
        self.lines.append({"index": i, "value": value, "why": why, "model": summary})
        if self.rec is None:
            return
        step = len(self.lines) - 1  # the recorded steps, this one included
        self.rec.append(
            step=step,
            round_=step,
            index=i,
            value=value,
            raw=value,
            why=why,
            acquisition=acq,
            summary=summary,
            maps=maps,
        )
        if summary["phase"] != "seed":
            steps = _record_dict(self.meta, self.lines)["steps"]
            _write_atomic(self.out_dir / "bandit.csv", _bandit_csv(self.names, steps))

    # ---- the end: every surviving model on all the data, the winner -----------------------

    def finish(self) -> HypothesisResult:
        """Every surviving model fit to all the data, the winner and its parameters; with a
        record, ``maps/final.npz`` and ``winner.json``."""
        predictions = {}
        for name in list(self.bandit.active):
            r = self.fit_predict(name)
            if r is not None:
                predictions[name] = r
        winner = self.bandit.winner()
        model = self.models[winner]
        params = model.parameters() if hasattr(model, "parameters") else {}
        record = self._final_record(winner, params, predictions)
        mean, std = predictions[winner]
        if self.out_dir is not None:
            _write_final(self.out_dir, mean, std, record["result"])
        return HypothesisResult(
            winner=winner,
            parameters=params,
            mean=mean,
            std=std,
            predictions=predictions,
            counts=dict(self.bandit.counts),
            values={n: self.bandit.value(n) for n in self.names},
            dropped=dict(self.dropped),
            measured=np.asarray(self.measured, dtype=int),
            values_measured=np.asarray(self.values, dtype=float),
            record=record,
        )

    def _final_record(
        self,
        winner: str,
        params: dict[str, Any],
        predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ) -> dict[str, Any]:
        """``HypothesisResult.record`` of the finished run; ``result`` is ``winner.json``."""
        models = self.models
        evidence = {
            n: float(getattr(models[n], "log_evidence_", float("nan"))) for n in predictions
        }
        record = _record_dict(self.meta, self.lines)
        record["dropped"] = dict(self.dropped)
        record["result"] = {
            "winner": winner,
            "parameters": params,
            "counts": dict(self.bandit.counts),
            "values": {n: self.bandit.value(n) for n in self.names},
            "dropped": dict(self.dropped),
            "log_evidence": evidence,
        }
        record["finished"] = True
        return record


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
    axis_labels: Sequence[str] | None = None,
    value_label: str | None = None,
) -> HypothesisResult:
    """Hypothesis learning from files: what ``atomlens hypotheses`` runs.

    Writes into ``out`` the run record as it goes (see :func:`learn_hypotheses`; ``run.json``
    names the data and models files with their checksums, so ``atomlens replay OUT``
    re-decides the run), then ``winner.json`` (winner, parameters with 90 % intervals,
    counts, average rewards, dropped models, log evidences), ``reconstruction.csv`` (the
    candidates with every surviving model's mean and σ), ``rewards.png`` and
    ``reconstruction.png``.

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
    axis_labels : sequence of str, optional
        The figures' label of each candidate column, with its unit, e.g. ``("x [Å]", "y
        [Å]")``; by default ``x`` (and ``y``), the units not being known.
    value_label : str, optional
        The measured quantity with its unit, e.g. ``"Ti offset [pm]"``, for the figures'
        value axis and colour bars.

    Returns
    -------
    HypothesisResult
    """
    s = settings if settings is not None else HypothesisSettings()
    X, y = read_candidates(data)
    if axis_labels is not None and (isinstance(axis_labels, str) or len(axis_labels) != X.shape[1]):
        raise ValueError(
            f"`axis_labels` must be {X.shape[1]} strings, one per candidate column of {data}, "
            f"got {axis_labels!r}."
        )
    found = load_models(models, seed=s.seed)
    provenance = {
        "data_file": str(Path(data).resolve()),
        "data_sha256": file_sha256(Path(data)),
        "models_file": str(Path(models).resolve()),
        "models_sha256": file_sha256(Path(models)),
    }
    result = learn_hypotheses(
        X,
        models=found,
        measure=y,
        settings=s,
        out=out,
        overwrite=overwrite,
        progress=progress,
        provenance=provenance,
    )
    out_dir = Path(out)
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

    save_hypothesis_figures(
        out_dir, candidates=X, result=result, axis_labels=axis_labels, value_label=value_label
    )
    return result


@dataclass
class HypothesisReplay:
    """What :func:`replay_hypotheses` found.

    Attributes
    ----------
    indices : ndarray of shape (K,)
        The candidates the replay measured, in order (it stops at the first that differs
        from the record).
    recorded : ndarray of shape (N,)
        The recorded ones.
    mismatches : list of dict
        ``{"step", "logged", "replayed"}`` for the step where the paths part.
    winner, recorded_winner : str or None
        The replay's winner, and the one in ``winner.json`` (None for an unfinished run).
    """

    indices: np.ndarray
    recorded: np.ndarray
    mismatches: list[dict[str, Any]]
    winner: str | None
    recorded_winner: str | None

    @property
    def exact(self) -> bool:
        """The whole recorded path, and the winner, reproduced."""
        return (
            not self.mismatches
            and len(self.indices) == len(self.recorded)
            and self.winner == self.recorded_winner
        )


class _PathParts(Exception):
    """The replay asked for a measurement the record does not have at that step."""


def replay_hypotheses(
    out: str | os.PathLike[str],
    /,
    *,
    models: Mapping[str, SurrogateModel] | str | os.PathLike[str] | None = None,
) -> HypothesisReplay:
    """Re-decide every step of a recorded hypothesis-learning run from its own
    measurements, and say whether the same points, in the same order, and the same winner
    come out.

    Every model is refitted at every step as in the run; the measurements are the
    recorded ones, so nothing is measured again.

    Parameters
    ----------
    out : str or path-like
        The run's record (the ``out`` of :func:`learn_hypotheses` or ``atomlens
        hypotheses``).
    models : mapping, path or None
        The candidate models, or the ``.py`` file defining them; by default the models file
        recorded in ``run.json`` by ``atomlens hypotheses`` (its checksum must match).

    Returns
    -------
    HypothesisReplay

    Raises
    ------
    FileNotFoundError
        No record in ``out``, or the recorded models file is gone.
    ValueError
        Not a hypothesis-learning record; a models file that changed since the run; no
        models given for a run started from Python.
    """
    path = Path(out)
    rec = RunRecord.read(path)
    _check_kind(rec.meta, path)
    meta = rec.meta
    X = rec.inputs
    if X is None or _candidates_hash(X) != meta["candidates"]["sha256_16"]:
        raise ValueError(f"{path}: inputs.npy is missing or not the recorded candidates.")
    s = HypothesisSettings.from_dict(meta["settings"])
    if models is None:
        prov = meta.get("provenance") or {}
        if "models_file" not in prov:
            raise ValueError(
                f"{path} was run from Python and records no models file; pass `models`."
            )
        file = Path(prov["models_file"])
        if not file.is_file():
            raise FileNotFoundError(
                f"{file}: the run's models file is gone; pass `models` where it is now."
            )
        if file_sha256(file) != prov.get("models_sha256"):
            raise ValueError(
                f"{file} changed since the run (its checksum differs); a replay needs the "
                "models the run used."
            )
        models = load_models(file, seed=s.seed)
    elif not isinstance(models, Mapping):
        models = load_models(models, seed=s.seed)
    done = rec.finished()
    recorded = [int(i) for i in done["indices"]]
    vals = [float(v) for v in done["values"]]
    asked: list[int] = []

    def measure(i: int) -> float:
        k = len(asked)
        asked.append(int(i))
        if k >= len(recorded) or recorded[k] != int(i):
            raise _PathParts
        return vals[k]

    mismatches: list[dict[str, Any]] = []
    winner = None
    try:
        winner = learn_hypotheses(
            X, models=models, measure=measure, settings=s, seed_indices=meta["seed_indices"]
        ).winner
    except _PathParts:
        k = len(asked) - 1
        if k < len(recorded):
            mismatches.append({"step": k, "logged": recorded[k], "replayed": asked[k]})
        asked.pop()
    win_file = path / "winner.json"
    recorded_winner = (
        json.loads(win_file.read_text(encoding="utf-8"))["winner"] if win_file.is_file() else None
    )
    return HypothesisReplay(
        indices=np.asarray(asked, dtype=int),
        recorded=np.asarray(recorded, dtype=int),
        mismatches=mismatches,
        winner=winner,
        recorded_winner=recorded_winner,
    )
