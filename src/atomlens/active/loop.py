"""The active-learning loop: seed points, fit, acquire, measure, repeat — every step recorded.

:func:`run` drives any instrument with ``overview()``, ``measure(x, y)`` and an ``energy``
axis (the simulated microscope and the replay of a pre-acquired spectrum image of
:mod:`atomlens.experiment`, or a driver of a real microscope), or a :class:`TableSource`
(features and targets, a target revealed only when measured). The run record in ``out``
(:mod:`atomlens.active.record`) is written atomically after every step, so a run interrupted
at any point resumes with ``resume=True`` and follows the same path it would have followed,
and :func:`replay` re-fits every step from the record to check that the path is reproduced.

Every random choice comes from ``settings.seed`` and the step number, and every model is
refitted from a fresh start each step, so a run depends on nothing but its settings and its
measurements.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from atomlens._shared.config import ConfigDict
from atomlens.active.acquisitions import ACQUISITIONS, penalize, select_batch
from atomlens.active.features import grid_positions, patch_features
from atomlens.active.models import DKL, DKLEnsemble, ExactGP, SparseGP
from atomlens.active.record import RunRecord
from atomlens.active.scalarizers import Scalarizer

logger = logging.getLogger(__name__)

__all__ = [
    "ExploreResult",
    "ExploreSettings",
    "Instrument",
    "TableSource",
    "candidates",
    "counterfactual",
    "propose",
    "replay",
    "run",
]

Policy = Literal["ucb", "ei", "logei", "pi", "ue", "thompson", "random", "grid"]


@runtime_checkable
class Instrument(Protocol):
    """What :func:`run` needs from an instrument (simulated, replayed or real)."""

    energy: np.ndarray  #: the spectrum's energy axis (E,) [eV]
    pixel_size: float  #: of the overview [Å/px]

    def overview(self) -> np.ndarray:
        """The fast overview image (H, W)."""
        ...

    def measure(self, x: float, y: float) -> np.ndarray:
        """The spectrum (E,) at pixel ``(x, y)`` of the overview."""
        ...


class TableSource:
    """Candidates given as features, their targets revealed one at a time.

    Parameters
    ----------
    features : ndarray of shape (N, F)
        One row per candidate.
    targets : ndarray of shape (N,)
        The value each candidate would give when measured (hidden from the agent).
    positions : ndarray of shape (N, 2), optional
        Pixel positions ``(x, y)`` for the record and figures.
    image : ndarray of shape (H, W), optional
        The image the positions refer to.
    """

    def __init__(
        self,
        features: np.ndarray,
        targets: np.ndarray,
        *,
        positions: np.ndarray | None = None,
        image: np.ndarray | None = None,
    ) -> None:
        f = np.asarray(features, dtype=np.float64)
        t = np.asarray(targets, dtype=np.float64)
        if f.ndim != 2:
            raise ValueError(f"`features` must be (N, F), got shape {f.shape}.")
        if t.ndim != 1:
            raise ValueError(f"`targets` must be (N,), one value per candidate, got {t.shape}.")
        if len(f) != len(t):
            raise ValueError(
                f"`features` has {len(f)} rows but `targets` has {len(t)}; they must match "
                "one to one."
            )
        if len(f) == 0:
            raise ValueError("`features` is empty: the candidate set has no candidates.")
        if not np.isfinite(f).all():
            raise ValueError("`features` holds NaN or infinite values.")
        self.features, self.targets = f, t
        if positions is not None:
            positions = np.asarray(positions, dtype=np.float64)
            if positions.shape != (len(f), 2):
                raise ValueError(f"`positions` must be ({len(f)}, 2), got {positions.shape}.")
        self.positions = positions
        self.image = None if image is None else np.asarray(image)

    def measure_index(self, i: int, /) -> float:
        """The hidden target of candidate ``i``."""
        v = float(self.targets[int(i)])
        if not math.isfinite(v):
            raise ValueError(f"target {i} is NaN or infinite; fix `targets` or drop that row.")
        return v


@dataclass(frozen=True)
class ExploreSettings(ConfigDict):
    """Settings of an active-learning run (JSON round-trip, unknown keys refused).

    Parameters
    ----------
    model : {"dkl", "gp", "dkl-ensemble", "sparse"}
        The surrogate.
    inputs : {"auto", "patches", "coordinates"}
        What the model sees of a candidate: ``auto`` gives patches to DKL models and
        coordinates to GPs (features for a :class:`TableSource`, always).
    acquisition : {"ucb", "ei", "logei", "pi", "ue", "thompson", "random", "grid"}
        How the next point is chosen (``random`` and ``grid`` are the model-free baselines).
    steps : int
        Measurements after the seed points (≥ 1).
    n_seed : int
        Random seed points measured first (≥ 1).
    batch : int
        Points chosen per round (q).
    seed : int
        Seed of every random choice and every model fit.
    beta : float
        UCB weight on the variance (``μ + √β σ``).
    xi : float
        EI/PI margin.
    grid_step_px : int
        Spacing of the candidate grid over the overview [px].
    patch_px : int
        Side of the patch around each candidate [px].
    distance_weight : float
        Acquisition penalty per pixel travelled from the last point.
    dose_weight : float
        Acquisition penalty per measurement already made within ``patch_px / 2`` of a
        candidate.
    stop_value : float, optional
        Stop once a measured value reaches it.
    fit_iterations : int, optional
        Adam steps per fit (model default if ``None``).
    embedding_dim : int
        DKL embedding size.
    n_members : int
        Members of a ``dkl-ensemble``.
    maps_every : int
        Write the mean/variance maps every this many steps (and at the last).
    """

    model: Literal["dkl", "gp", "dkl-ensemble", "sparse"] = "dkl"
    inputs: Literal["auto", "patches", "coordinates"] = "auto"
    acquisition: Policy = "ucb"
    steps: int = 40
    n_seed: int = 5
    batch: int = 1
    seed: int = 0
    beta: float = 4.0
    xi: float = 0.0
    grid_step_px: int = 5
    patch_px: int = 16
    distance_weight: float = 0.0
    dose_weight: float = 0.0
    stop_value: float | None = None
    fit_iterations: int | None = None
    embedding_dim: int = 2
    n_members: int = 3
    maps_every: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.model not in ("dkl", "gp", "dkl-ensemble", "sparse"):
            problems.append(f"`model` must be dkl, gp, dkl-ensemble or sparse, got {self.model!r}")
        if self.inputs not in ("auto", "patches", "coordinates"):
            problems.append(f"`inputs` must be auto, patches or coordinates, got {self.inputs!r}")
        if self.acquisition not in (*ACQUISITIONS, "random", "grid"):
            problems.append(
                f"`acquisition` must be one of {', '.join((*ACQUISITIONS, 'random', 'grid'))}, "
                f"got {self.acquisition!r}"
            )
        for name in ("steps", "n_seed", "batch", "grid_step_px", "patch_px", "embedding_dim",
                     "n_members", "maps_every"):  # fmt: skip
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                problems.append(f"`{name}` must be an integer >= 1, got {v!r}")
        for name in ("beta", "xi", "distance_weight", "dose_weight"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                problems.append(f"`{name}` must be a finite number >= 0, got {v!r}")
        if self.fit_iterations is not None and self.fit_iterations < 0:
            problems.append(f"`fit_iterations` must be >= 0, got {self.fit_iterations!r}")
        if problems:
            raise ValueError("; ".join(problems) + ".")

    def make_model(self, step: int) -> Any:
        """A fresh surrogate for ``step`` (seeded from ``seed`` and ``step``)."""
        s = self.seed * 100_003 + step
        it = {} if self.fit_iterations is None else {"fit_iterations": self.fit_iterations}
        if self.model == "gp":
            return ExactGP(seed=s, **it)
        if self.model == "sparse":
            return SparseGP(seed=s, **it)
        dkl = DKL(embedding_dim=self.embedding_dim, seed=s, **it)
        if self.model == "dkl":
            return dkl
        return DKLEnsemble(self.n_members, seed=s, member=dkl)


@dataclass
class ExploreResult:
    """What a run measured.

    Attributes
    ----------
    indices : ndarray of int, shape (S,)
        Candidate chosen at each step (seed points first).
    values : ndarray of shape (S,)
        Scalarised measurement at each step.
    why : list of str
        ``seed``, the acquisition name, ``random`` or ``grid`` per step.
    acquisition_values : ndarray of shape (S,)
        Acquisition value of each pick (NaN for seed and baseline picks).
    positions : ndarray of shape (N, 2) or None
        Candidate positions ``(x, y)`` [px].
    mean, variance : ndarray of shape (N,) or None
        The last model's prediction over all candidates.
    raw : list
        The raw measurements (spectra or target values), in step order.
    seconds_per_step : list of float
        Wall time of fit + acquisition per acquisition step [s].
    out : pathlib.Path or None
        The run record.
    """

    indices: np.ndarray
    values: np.ndarray
    why: list[str]
    acquisition_values: np.ndarray
    positions: np.ndarray | None
    mean: np.ndarray | None = None
    variance: np.ndarray | None = None
    raw: list[Any] = field(default_factory=list)
    seconds_per_step: list[float] = field(default_factory=list)
    out: Path | None = None

    @property
    def best_so_far(self) -> np.ndarray:
        """Running maximum of :attr:`values`, (S,)."""
        return np.maximum.accumulate(self.values)


@dataclass
class _Problem:
    features: np.ndarray
    positions: np.ndarray | None
    image: np.ndarray | None
    measure: Callable[[int], Any]
    value: Callable[[Any], float]
    energy: np.ndarray | None


def _scale_columns(x: np.ndarray) -> np.ndarray:
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)


def _problem(source: Any, scalarizer: Any, settings: ExploreSettings) -> _Problem:
    if isinstance(source, TableSource):
        feats = _scale_columns(source.features)
        return _Problem(
            features=feats,
            positions=source.positions,
            image=source.image,
            measure=source.measure_index,
            value=float,
            energy=None,
        )
    if not isinstance(source, Instrument):
        raise TypeError(
            "`source` must be an instrument with overview(), measure(x, y), energy and "
            f"pixel_size, or a TableSource; got {type(source).__name__}."
        )
    if scalarizer is None:
        raise ValueError("`scalarizer` is needed to turn the instrument's spectra into values.")
    image = np.asarray(source.overview(), dtype=np.float64)
    half = settings.patch_px // 2
    pos = grid_positions(image.shape, step_px=settings.grid_step_px, margin_px=half)
    use_patches = settings.inputs == "patches" or (
        settings.inputs == "auto" and settings.model in ("dkl", "dkl-ensemble")
    )
    if use_patches:
        feats = patch_features(image, pos, size=settings.patch_px)
    else:
        feats = pos / max(image.shape)  # the field of view spans about one unit
    energy = np.asarray(source.energy, dtype=np.float64)

    def measure(i: int) -> np.ndarray:
        spec = np.asarray(source.measure(float(pos[i, 0]), float(pos[i, 1])), dtype=np.float64)
        if not np.isfinite(spec).all():
            raise ValueError(
                f"the spectrum at x={pos[i, 0]:g}, y={pos[i, 1]:g} px holds NaN or infinite "
                "values; check the instrument or the spectrum image."
            )
        return spec

    return _Problem(
        features=feats,
        positions=pos,
        image=image,
        measure=measure,
        value=lambda spec: float(scalarizer(spec, energy)),
        energy=energy,
    )


def _seed_indices(n: int, settings: ExploreSettings) -> np.ndarray:
    gen = np.random.default_rng([settings.seed, 7919])
    return gen.choice(n, size=min(settings.n_seed, n), replace=False)


def _grid_order(positions: np.ndarray | None, n: int, count: int) -> np.ndarray:
    """``count`` candidates nearest a regular lattice over the candidates, raster order."""
    if positions is None:
        return np.linspace(0, n - 1, count).round().astype(int)
    k = max(1, math.ceil(math.sqrt(count)))
    lo, hi = positions.min(0), positions.max(0)
    gx = np.linspace(lo[0], hi[0], k + 2)[1:-1]
    gy = np.linspace(lo[1], hi[1], k + 2)[1:-1]
    order: list[int] = []
    for y in gy:
        for x in gx:
            d = np.hypot(positions[:, 0] - x, positions[:, 1] - y)
            d[order] = np.inf
            order.append(int(np.argmin(d)))
    return np.array(order[:count])


def _choose(
    problem: _Problem,
    settings: ExploreSettings,
    step: int,
    measured: list[int],
    values: list[float],
    q: int,
    exclude: Any = (),
) -> tuple[np.ndarray, np.ndarray, Any, tuple[np.ndarray, np.ndarray] | None]:
    """The next ``q`` picks after ``measured``: (indices, acquisition values, model, pred)."""
    n = len(problem.features)
    available = np.ones(n, bool)
    available[measured] = False
    available[list(exclude)] = False
    if available.sum() < q:
        raise ValueError(
            f"only {int(available.sum())} unmeasured candidates are left; lower `steps`."
        )
    gen = np.random.default_rng([settings.seed, step])
    if settings.acquisition == "random":
        picks = gen.choice(np.flatnonzero(available), size=q, replace=False)
        return picks, np.full(q, np.nan), None, None
    if settings.acquisition == "grid":
        order = _grid_order(problem.positions, n, settings.steps + settings.n_seed)
        left = [i for i in order if available[i]]
        extra = [i for i in np.flatnonzero(available) if i not in set(left)]
        return np.array((left + extra)[:q]), np.full(q, np.nan), None, None
    X = problem.features
    model = settings.make_model(step)
    model.fit(X[measured], np.asarray(values))
    pred = model.predict(X)
    adjust = None
    if settings.distance_weight or settings.dose_weight:
        last = problem.positions[measured[-1]] if problem.positions is not None else None
        dose = None
        if settings.dose_weight and problem.positions is not None:
            p = problem.positions
            near = np.hypot(*(p[:, None, :] - p[measured][None, :, :]).transpose(2, 0, 1))
            dose = (near <= settings.patch_px / 2).sum(1).astype(float)

        def adjust(v: np.ndarray) -> np.ndarray:
            return penalize(
                v,
                positions=problem.positions,
                last=last,
                distance_weight=settings.distance_weight,
                dose=dose,
                dose_weight=settings.dose_weight,
            )

    picks, acq = select_batch(
        model,
        X,
        q,
        acquisition=settings.acquisition,  # type: ignore[arg-type]
        best=float(np.max(values)),
        beta=settings.beta,
        xi=settings.xi,
        available=available,
        rng=gen,
        adjust=adjust,
        prediction=pred,
    )
    return picks, acq, model, pred


def candidates(source: Any, /, *, scalarizer: Any, settings: ExploreSettings) -> Any:
    """The candidates :func:`run` chooses among, for a loop driven step by step (the live
    page of :mod:`atomlens.live` steers one).

    Parameters
    ----------
    source : Instrument or TableSource
    scalarizer : callable or None
        Required for an instrument.
    settings : ExploreSettings

    Returns
    -------
    object
        With ``features`` (N, F), ``positions`` (N, 2) ``(x, y)`` [px] or None, ``image``
        (H, W) or None, ``energy`` (E,) [eV] or None, ``measure(i)`` (the raw measurement of
        candidate ``i``) and ``value(raw)`` (its scalarised value).
    """
    return _problem(source, scalarizer, settings)


def propose(
    problem: Any,
    /,
    *,
    settings: ExploreSettings,
    step: int,
    measured: list[int],
    values: list[float],
    exclude: Any = (),
) -> tuple[int, float, Any, tuple[np.ndarray, np.ndarray] | None]:
    """The point :func:`run` would measure at ``step`` after ``measured`` (a seed point
    first, then the acquisition's best), leaving out the candidates in ``exclude``.

    Parameters
    ----------
    problem : object
        From :func:`candidates`.
    settings : ExploreSettings
        The settings in force at this step.
    step : int
        Measurements made so far (seeds the model and the random choices).
    measured : list of int
        Candidates measured so far, in order.
    values : list of float
        Their values.
    exclude : sequence of int
        Candidates the agent may not propose (e.g. vetoed by the operator).

    Returns
    -------
    index : int
        The candidate.
    acquisition : float
        Its acquisition value (NaN for a seed, random or grid pick).
    model : object or None
        The fitted surrogate (None for a seed or a model-free pick).
    prediction : (ndarray (N,), ndarray (N,)) or None
        Mean and variance over all candidates.
    """
    seeds = _seed_indices(len(problem.features), settings)
    left = [int(i) for i in seeds if int(i) not in set(measured) | {int(e) for e in exclude}]
    if step < len(seeds) and left:
        return left[0], math.nan, None, None
    picks, acq, model, pred = _choose(
        problem, settings, step, list(measured), list(values), 1, exclude
    )
    return int(picks[0]), float(acq[0]), model, pred


def run(
    source: Any,
    /,
    *,
    scalarizer: Scalarizer | Callable[[np.ndarray, np.ndarray], float] | None = None,
    settings: ExploreSettings | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | Callable[..., Any] = False,
) -> ExploreResult:
    """Run an automated experiment: seed points, then fit → acquire → measure for
    ``settings.steps`` measurements or until ``settings.stop_value`` is reached.

    Parameters
    ----------
    source : Instrument or TableSource
        What is measured: an instrument (``overview()``, ``measure(x, y)``, ``energy``,
        ``pixel_size``) whose candidates are a grid over the overview, or a
        :class:`TableSource`.
    scalarizer : callable, optional
        ``scalarizer(spectrum, energy) -> float`` (see :mod:`atomlens.active.scalarizers`);
        required for an instrument.
    settings : ExploreSettings, optional
        Model, acquisition, budget and seed.
    out : str or path, optional
        Run record directory (``path.csv``, ``steps.jsonl``, maps, raw measurements); nothing
        is written without it.
    resume : bool
        Continue the run recorded in ``out`` (same settings) after its last finished step.
    overwrite : bool
        Replace an existing, non-empty ``out``.
    progress : bool or callable
        A tqdm progress bar over the steps (or a tqdm-compatible callable).

    Returns
    -------
    ExploreResult

    Raises
    ------
    ValueError
        A step budget of 0, an empty candidate set, NaN spectra, settings that differ from
        the record being resumed.
    FileExistsError
        ``out`` holds files and neither ``resume`` nor ``overwrite`` is given.
    """
    settings = settings if settings is not None else ExploreSettings()
    if not isinstance(settings, ExploreSettings):
        raise TypeError(f"`settings` must be ExploreSettings, got {type(settings).__name__}.")
    problem = _problem(source, scalarizer, settings)
    n = len(problem.features)
    total = settings.n_seed + settings.steps
    if n < total:
        raise ValueError(
            f"{n} candidates cannot hold {settings.n_seed} seed points + {settings.steps} "
            "`steps`; lower `steps` or add candidates."
        )
    scal = getattr(scalarizer, "to_dict", None)
    meta = {
        "settings": settings.to_dict(),
        "scalarizer": scal() if scal is not None else None,
        "n_candidates": n,
        "features_checksum": float(np.round(problem.features.sum(), 6)),
    }
    record = None
    if out is not None:
        record = RunRecord.open(
            out,
            meta=meta,
            positions=problem.positions,
            image=problem.image,
            energy=problem.energy,
            resume=resume,
            overwrite=overwrite,
        )
    measured: list[int] = []
    values: list[float] = []
    raw: list[Any] = []
    why: list[str] = []
    acq_values: list[float] = []
    if record is not None and resume:
        done = record.finished()
        measured, values, raw = done["indices"], done["values"], done["raw"]
        why, acq_values = done["why"], done["acquisition"]
        logger.info("resuming %s after %d finished steps", record.path, len(measured))

    bar = None
    if progress:
        # tqdm only when a bar is asked for
        from tqdm.auto import tqdm

        make = progress if callable(progress) else tqdm
        bar = make(total=total, initial=len(measured), desc="explore", unit="step")

    timings: list[float] = []
    model = None
    pred = None
    seeds = _seed_indices(n, settings)
    # a run interrupted inside a batch finishes that batch, as chosen before the interruption
    pending_round, skip = None, 0
    if record is not None and resume and len(measured) > len(seeds):
        rounds = record.finished()["round"]
        last = rounds[-1]
        if rounds.count(last) < min(settings.batch, total - last):
            pending_round, skip = last, rounds.count(last)
    while len(measured) < total:
        step = len(measured) if pending_round is None else pending_round
        if step < len(seeds):
            picks, acq, reason = seeds[step : step + 1], np.array([np.nan]), "seed"
            model, pred = None, None
        else:
            if settings.stop_value is not None and max(values) >= settings.stop_value:
                logger.info(
                    "stopping: best %.6g >= stop_value %.6g", max(values), settings.stop_value
                )
                break
            q = min(settings.batch, total - step)
            t0 = time.perf_counter()
            picks, acq, model, pred = _choose(
                problem, settings, step, measured[:step], values[:step], q
            )
            timings.append((time.perf_counter() - t0) / q)
            reason = settings.acquisition
            picks, acq = picks[skip:], acq[skip:]
        first_of_round = skip == 0
        pending_round, skip = None, 0
        for k, (i, a) in enumerate(zip(picks, acq, strict=True)):
            i = int(i)
            r = problem.measure(i)
            v = problem.value(r)
            measured.append(i)
            values.append(v)
            raw.append(r)
            why.append(reason)
            acq_values.append(float(a))
            if record is not None:
                s = len(measured) - 1
                write_maps = (
                    pred is not None
                    and k == 0
                    and first_of_round
                    and ((s - settings.n_seed) % settings.maps_every == 0 or s + q >= total)
                )
                record.append(
                    step=s,
                    round_=step,
                    index=i,
                    value=v,
                    raw=r,
                    why=reason,
                    acquisition=float(a),
                    summary=model.summary() if model is not None and k == 0 else None,
                    maps=pred if write_maps else None,
                )
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    result = ExploreResult(
        indices=np.array(measured, dtype=int),
        values=np.array(values),
        why=why,
        acquisition_values=np.array(acq_values),
        positions=problem.positions,
        mean=None if pred is None else pred[0],
        variance=None if pred is None else pred[1],
        raw=raw,
        seconds_per_step=timings,
        out=None if record is None else record.path,
    )
    if record is not None:
        record.finish(result)
    return result


def replay(source: Any, out: str | Path, /, *, scalarizer: Any = None) -> ExploreResult:
    """Re-decide every step of a recorded run from its own measurements.

    Each step's model is refitted from the recorded settings and the measurements before it,
    and its choice compared with the recorded one; nothing is measured again.

    Parameters
    ----------
    source : Instrument or TableSource
        The same source the run used (for the candidates and their features).
    out : str or path
        The run record.
    scalarizer : callable, optional
        The run's scalarizer, if it was a user function (built-in ones are read from the
        record).

    Returns
    -------
    ExploreResult
        The replayed path (``indices``); equal to the record's when the run reproduces.

    Raises
    ------
    ValueError
        ``out`` records hypothesis learning (replay it with
        :func:`atomlens.active.hypotheses.replay_hypotheses`).
    """
    record = RunRecord.read(out)
    if record.meta.get("kind") == "hypotheses":
        raise ValueError(
            f"{record.path} records hypothesis learning; replay it with "
            "atomlens.active.hypotheses.replay_hypotheses."
        )
    settings = ExploreSettings.from_dict(record.meta["settings"])
    scal = scalarizer if scalarizer is not None else record.scalarizer()
    problem = _problem(source, scal, settings)
    done = record.finished()
    measured, values = done["indices"], done["values"]
    chosen: list[int] = []
    acq_values: list[float] = []
    step = 0
    seeds = _seed_indices(len(problem.features), settings)
    while step < len(measured):
        if step < len(seeds):
            picks, acq = seeds[step : step + 1], np.array([np.nan])
        else:
            q = min(settings.batch, len(measured) - step)
            picks, acq, _, _ = _choose(problem, settings, step, measured[:step], values[:step], q)
        chosen.extend(int(i) for i in picks)
        acq_values.extend(float(a) for a in acq)
        step += len(picks)
    return ExploreResult(
        indices=np.array(chosen[: len(measured)], dtype=int),
        values=np.array(values),
        why=done["why"],
        acquisition_values=np.array(acq_values[: len(measured)]),
        positions=problem.positions,
        out=record.path,
    )


def counterfactual(
    out: str | Path, /, scalarizer: Callable[[np.ndarray, np.ndarray], Any]
) -> np.ndarray:
    """The values the recorded path would have given under another scalarizer.

    Parameters
    ----------
    out : str or path
        A run record of spectra (an instrument run).
    scalarizer : callable
        ``scalarizer(spectra (S, E), energy (E,))``.

    Returns
    -------
    ndarray of shape (S,)
        One value per recorded step, in step order.
    """
    record = RunRecord.read(out)
    done = record.finished()
    if record.energy is None:
        raise ValueError(f"{record.path} records target values, not spectra; nothing to rescore.")
    spectra = np.asarray(done["raw"], dtype=np.float64)
    return np.atleast_1d(np.asarray(scalarizer(spectra, record.energy), dtype=np.float64))
