"""An automated experiment a person can steer, every decision in the provenance log, and
its exact replay.

:class:`SteeredRun` drives the active-learning loop of :mod:`atomlens.active` one
measurement at a time. At every step the agent **proposes** a candidate (the same choice
:func:`atomlens.active.run` makes: a seed point, then the acquisition's best) and an
operator may, before it is measured:

- **accept** it (or do nothing);
- **veto** it: it is left out for the rest of the run and the agent proposes again;
- **measure elsewhere**: the candidate nearest a clicked pixel is measured instead;
- **change the policy**: acquisition, β or scalarizer from this step on (a new scalarizer
  rescores the spectra measured so far, so the model sees one quantity), and the agent
  proposes again.

Every proposal (with its acquisition value and the surrogate's summary), every human action
and every measurement (the raw spectrum and its value) is one entry of the run's
``provenance.jsonl`` (:mod:`atomlens.live.provenance`). :func:`replay_run` re-decides every
agent proposal from the log alone, applies the logged human actions in order, and reports
whether each proposal and the path are reproduced.

The operator is a callable ``operator(run, proposal) -> action`` (the scripted operator of
``benchmarks/human_in_the_loop.py``) or the web page (:mod:`atomlens.live.session`), which
turns clicks into the same actions.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from atomlens._shared.atomic import check_output_directory
from atomlens.live.provenance import LOG_NAME, ProvenanceLog, file_sha256, read_log

__all__ = [
    "Action",
    "Proposal",
    "ReplayResult",
    "SteeredRun",
    "replay_record",
    "replay_run",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Action:
    """What an operator does with a proposal.

    Parameters
    ----------
    kind : {"accept", "veto", "measure", "policy"}
        ``accept`` (measure the proposal), ``veto`` (leave it out, propose again),
        ``measure`` (measure candidate ``index``, or the one nearest ``(x, y)`` [px]
        instead), ``policy`` (change ``acquisition``, ``beta`` or ``scalarizer``; propose
        again).
    index : int, optional
        Candidate for ``measure``.
    x, y : float, optional
        Pixel for ``measure`` [px].
    acquisition : str, optional
    beta : float, optional
    scalarizer : str, optional
        In the form of ``atomlens explore --scalarizer`` (``band:LO:HI``, …).
    reason : str
        Why (kept in the log).
    """

    kind: str
    index: int | None = None
    x: float | None = None
    y: float | None = None
    acquisition: str | None = None
    beta: float | None = None
    scalarizer: str | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("accept", "veto", "measure", "policy"):
            raise ValueError(
                f"action `kind` must be accept, veto, measure or policy, got {self.kind!r}."
            )


@dataclass
class Proposal:
    """The agent's choice for the next measurement.

    Attributes
    ----------
    step : int
        Measurements made before it.
    index : int
        Candidate.
    x, y : float
        Its pixel [px].
    acquisition : float
        Acquisition value (NaN for a seed or model-free pick).
    why : str
        ``seed`` or the acquisition's name.
    model : dict or None
        The surrogate's summary.
    mean, variance : ndarray (N,) or None
        The surrogate's prediction over all candidates.
    """

    step: int
    index: int
    x: float
    y: float
    acquisition: float
    why: str
    model: dict[str, Any] | None = None
    mean: np.ndarray | None = field(default=None, repr=False)
    variance: np.ndarray | None = field(default=None, repr=False)


class _Overview:
    """The instrument as seen by a replay: the saved overview and energy, nothing measured."""

    def __init__(self, image: np.ndarray, energy: np.ndarray, pixel_size: float) -> None:
        self.image, self.energy, self.pixel_size = image, energy, pixel_size

    def overview(self) -> np.ndarray:
        return self.image

    def measure(self, x: float, y: float) -> np.ndarray:
        raise RuntimeError("a replay measures nothing")


def _npy(path: Path, array: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return file_sha256(path)


class SteeredRun:
    """An automated experiment stepped one measurement at a time (see the module notes).

    Parameters
    ----------
    source : Instrument
        ``overview()``, ``measure(x, y)``, ``energy``, ``pixel_size`` (e.g.
        :class:`atomlens.experiment.SimulatedMicroscope`).
    scalarizer : str or Scalarizer
        What a spectrum is worth (``band:LO:HI`` …, or a built-in scalarizer object).
    settings : ExploreSettings, optional
    out : str or path
        The run folder: ``provenance.jsonl``, ``overview.npy``, ``energy.npy``,
        ``candidates.npy`` (refused if it holds files, unless ``overwrite``).
    overwrite : bool
    log : ProvenanceLog, optional
        A log to share (the live page's, which also records frames); one in ``out`` if
        omitted.

    Attributes
    ----------
    measured, values : list
        Candidates measured and their values under the current scalarizer.
    vetoed : set of int
        Candidates left out by the operator.
    """

    def __init__(
        self,
        source: Any,
        /,
        *,
        scalarizer: Any,
        settings: Any = None,
        out: str | Path,
        overwrite: bool = False,
        log: ProvenanceLog | None = None,
    ) -> None:
        # the active-learning stack (torch, GPyTorch) loads with the first steered run
        from atomlens.active.loop import ExploreSettings, candidates
        from atomlens.active.scalarizers import parse_scalarizer

        self.settings = settings if settings is not None else ExploreSettings()
        if not isinstance(self.settings, ExploreSettings):
            raise TypeError(f"`settings` must be ExploreSettings, got {type(settings).__name__}.")
        self.scalarizer = (
            parse_scalarizer(scalarizer) if isinstance(scalarizer, str) else scalarizer
        )
        if not callable(getattr(self.scalarizer, "to_dict", None)):
            raise TypeError("`scalarizer` must be a built-in scalarizer or its text form.")
        self.out = Path(out)
        if log is None:
            check_output_directory(self.out, overwrite=overwrite)
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / LOG_NAME).unlink(missing_ok=True)
            log = ProvenanceLog(self.out / LOG_NAME)
        self.log = log
        self.source = source
        self.problem = candidates(source, scalarizer=self.scalarizer, settings=self.settings)
        p = self.problem
        self.total = self.settings.n_seed + self.settings.steps
        if len(p.features) < self.total:
            raise ValueError(
                f"{len(p.features)} candidates cannot hold {self.total} measurements; lower "
                "`steps` or the candidate grid's `grid_step_px`."
            )
        self.measured: list[int] = []
        self.values: list[float] = []
        self.raw: list[np.ndarray] = []
        self.why: list[str] = []
        self.vetoed: set[int] = set()
        files = {
            "overview.npy": _npy(self.out / "overview.npy", np.asarray(p.image, np.float64)),
            "energy.npy": _npy(self.out / "energy.npy", np.asarray(p.energy, np.float64)),
            "candidates.npy": _npy(self.out / "candidates.npy", np.asarray(p.positions)),
        }
        self.log.append(
            "system",
            "explore_start",
            inputs={
                "settings": self.settings.to_dict(),
                "scalarizer": self.scalarizer.to_dict(),
                "pixel_size_A": float(source.pixel_size),
                "n_candidates": len(p.features),
            },
            outputs={"wrote": sorted(files)},
            files=files,
        )

    # ------------------------------------------------------------------ state
    @property
    def done(self) -> bool:
        """Whether the budget (``n_seed + steps`` measurements) is spent."""
        return len(self.measured) >= self.total

    @property
    def positions(self) -> np.ndarray:
        """Candidate pixels (N, 2) as ``(x, y)`` [px]."""
        return self.problem.positions

    @property
    def path(self) -> np.ndarray:
        """Measured pixels (S, 2) as ``(x, y)`` [px], in order."""
        return self.positions[np.asarray(self.measured, dtype=int)].reshape(-1, 2)

    def _model_version(self) -> dict[str, Any]:
        s = self.settings
        return {
            "version": f"{s.model}/{s.acquisition}/beta={s.beta:g}/seed={s.seed}",
            "surrogate": s.model,
            "acquisition": s.acquisition,
            "beta": s.beta,
            "scalarizer": self.scalarizer.to_dict(),
        }

    # ---------------------------------------------------------------- actions
    def propose(self) -> Proposal:
        """The agent's next point (logged as ``propose``)."""
        from atomlens.active.loop import propose

        if self.done:
            raise ValueError("the run's budget is spent; nothing more to propose.")
        step = len(self.measured)
        idx, acq, model, pred = propose(
            self.problem,
            settings=self.settings,
            step=step,
            measured=self.measured,
            values=self.values,
            exclude=sorted(self.vetoed),
        )
        why = (
            "seed"
            if model is None and math.isnan(acq) and step < self.settings.n_seed
            else (self.settings.acquisition)
        )
        x, y = (float(v) for v in self.positions[idx])
        summary = model.summary() if model is not None else None
        prop = Proposal(
            step=step,
            index=idx,
            x=x,
            y=y,
            acquisition=acq,
            why=why,
            model=summary,
            mean=None if pred is None else np.asarray(pred[0]),
            variance=None if pred is None else np.asarray(pred[1]),
        )
        self.log.append(
            "agent",
            "propose",
            inputs={"step": step, "excluded": sorted(self.vetoed)},
            outputs={
                "index": idx,
                "x_px": x,
                "y_px": y,
                "acquisition": acq,
                "why": why,
                "surrogate": summary,
            },
            model=self._model_version(),
        )
        return prop

    def nearest(self, x: float, y: float) -> int:
        """The candidate nearest pixel ``(x, y)`` [px] that is not measured yet.

        Raises
        ------
        ValueError
            ``(x, y)`` outside the overview.
        """
        h, w = np.asarray(self.problem.image).shape
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < w and 0 <= y < h):
            raise ValueError(f"position x={x}, y={y} px is outside the {w}×{h} px overview.")
        d = np.hypot(self.positions[:, 0] - x, self.positions[:, 1] - y)
        d[self.measured] = np.inf
        return int(np.argmin(d))

    def measure(self, index: int, /, *, actor: str = "agent", why: str | None = None) -> float:
        """Measure candidate ``index`` (logged as ``measure`` with the raw spectrum); its
        value."""
        if not 0 <= int(index) < len(self.positions):
            raise ValueError(f"candidate {index} does not exist (0 … {len(self.positions) - 1}).")
        if self.done:
            raise ValueError("the run's budget is spent; nothing more is measured.")
        i = int(index)
        raw = np.asarray(self.problem.measure(i), dtype=np.float64)
        v = float(self.problem.value(raw))
        self.measured.append(i)
        self.values.append(v)
        self.raw.append(raw)
        reason = (
            why if why is not None else ("human" if actor == "human" else self.settings.acquisition)
        )
        self.why.append(reason)
        x, y = (float(c) for c in self.positions[i])
        self.log.append(
            actor,  # type: ignore[arg-type]
            "measure",
            inputs={"step": len(self.measured) - 1, "index": i, "x_px": x, "y_px": y},
            outputs={
                "value": v,
                "raw": raw.tolist(),
                "why": reason,
                "best_so_far": max(self.values),
            },
            model=self._model_version(),
        )
        return v

    def veto(self, proposal: Proposal, /, *, reason: str = "") -> None:
        """Leave the proposal's candidate out for the rest of the run (logged)."""
        self.vetoed.add(int(proposal.index))
        self.log.append(
            "human",
            "veto",
            inputs={"step": proposal.step, "index": int(proposal.index), "reason": reason},
        )

    def set_policy(
        self,
        *,
        acquisition: str | None = None,
        beta: float | None = None,
        scalarizer: str | None = None,
        reason: str = "",
        actor: str = "human",
    ) -> None:
        """Change the acquisition, β or scalarizer from the next proposal on (logged).

        Raises
        ------
        ValueError
            An unknown acquisition, a negative β or a scalarizer not understood.
        """
        # the active-learning stack (torch, GPyTorch) loads with the first steered run
        from atomlens.active.scalarizers import parse_scalarizer

        changes: dict[str, Any] = {}
        if acquisition is not None:
            changes["acquisition"] = str(acquisition)
        if beta is not None:
            changes["beta"] = float(beta)
        new_settings = dataclasses.replace(self.settings, **changes)  # validated here
        new_scal = self.scalarizer
        if scalarizer is not None:
            new_scal = parse_scalarizer(scalarizer)
        self.settings = new_settings
        if new_scal is not self.scalarizer:
            self.scalarizer = new_scal
            energy = self.problem.energy
            self.problem.value = lambda spec: float(new_scal(spec, energy))
            self.values = [float(new_scal(r, energy)) for r in self.raw]
        self.log.append(
            actor,  # type: ignore[arg-type]
            "policy",
            inputs={
                **changes,
                "scalarizer": None if scalarizer is None else new_scal.to_dict(),
                "reason": reason,
            },
            model=self._model_version(),
        )

    def apply(self, proposal: Proposal, action: Action | None, /) -> Proposal | None:
        """Carry out an operator's ``action`` on ``proposal``: the measurement it leads to
        is made and None returned, or the new proposal after a veto or a policy change."""
        if action is None or action.kind == "accept":
            if action is not None:
                self.log.append(
                    "human", "accept", inputs={"step": proposal.step, "index": proposal.index}
                )
            self.measure(proposal.index, actor="agent", why=proposal.why)
            return None
        if action.kind == "veto":
            self.veto(proposal, reason=action.reason)
            return self.propose()
        if action.kind == "policy":
            self.set_policy(
                acquisition=action.acquisition,
                beta=action.beta,
                scalarizer=action.scalarizer,
                reason=action.reason,
            )
            return self.propose()
        idx = action.index
        if idx is None:
            if action.x is None or action.y is None:
                raise ValueError("a `measure` action needs `index` or both `x` and `y`.")
            idx = self.nearest(float(action.x), float(action.y))
        self.measure(idx, actor="human", why="human")
        return None

    def run(
        self,
        operator: Callable[[SteeredRun, Proposal], Action | None] | None = None,
        /,
        *,
        progress: bool = False,
    ) -> np.ndarray:
        """Step to the end of the budget, asking ``operator`` about every proposal; the
        measured candidates (S,)."""
        bar = None
        if progress:
            # tqdm only when a bar is asked for
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total, initial=len(self.measured), desc="explore", unit="step")
        while not self.done:
            prop: Proposal | None = self.propose()
            answers = 0
            while prop is not None:
                act = operator(self, prop) if operator is not None else None
                prop = self.apply(prop, act)
                answers += 1
                if answers > 2 * len(self.positions):
                    raise RuntimeError(
                        f"the operator answered {answers} proposals of step {len(self.measured)} "
                        "without letting a point be measured; it must accept, veto or measure "
                        "eventually (a policy change on every proposal never ends)."
                    )
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        self.log.append(
            "system",
            "explore_end",
            outputs={"measured": list(self.measured), "best": max(self.values)},
        )
        return np.asarray(self.measured, dtype=int)


@dataclass
class ReplayResult:
    """What :func:`replay_run` found.

    Attributes
    ----------
    indices : ndarray of int, shape (S,)
        The path re-made from the log.
    recorded : ndarray of int, shape (S,)
        The path in the log.
    proposals : int
        Agent proposals re-decided.
    mismatches : list of dict
        Proposals whose re-decided candidate differs from the logged one (``seq``,
        ``logged``, ``replayed``).
    max_acquisition_error : float
        Largest relative difference between a logged and a re-decided acquisition value.
    human_actions : int
        Human actions applied (vetoes, policy changes, measurements elsewhere).
    """

    indices: np.ndarray
    recorded: np.ndarray
    proposals: int
    mismatches: list[dict[str, Any]]
    max_acquisition_error: float
    human_actions: int

    @property
    def exact(self) -> bool:
        """Whether every proposal and the path are reproduced."""
        return not self.mismatches and np.array_equal(self.indices, self.recorded)


def replay_run(run: str | Path, /) -> ReplayResult:
    """Re-decide every agent proposal of a steered run from its provenance log alone and
    apply the logged human actions in order.

    Parameters
    ----------
    run : str or path
        The run folder (``provenance.jsonl``, ``overview.npy``, ``energy.npy``).

    Returns
    -------
    ReplayResult

    Raises
    ------
    FileNotFoundError
        No log in ``run``.
    ValueError
        The log holds no automated experiment, or its files changed since they were
        logged.
    """
    # the active-learning stack (torch, GPyTorch) loads with the replay
    from atomlens.active.loop import ExploreSettings, candidates, propose
    from atomlens.active.scalarizers import scalarizer_from_dict

    run = Path(run)
    entries = read_log(run).entries
    start = next((e for e in entries if e["action"] == "explore_start"), None)
    if start is None:
        raise ValueError(f"{run} records no automated experiment (no explore_start entry).")
    for name, sha in start["files"].items():
        if not (run / name).is_file() or file_sha256(run / name) != sha:
            raise ValueError(f"{run / name} is missing or changed since the run logged it.")
    settings = ExploreSettings.from_dict(start["inputs"]["settings"])
    scal = scalarizer_from_dict(start["inputs"]["scalarizer"])
    image = np.load(run / "overview.npy", allow_pickle=False)
    energy = np.load(run / "energy.npy", allow_pickle=False)
    source = _Overview(image, energy, float(start["inputs"]["pixel_size_A"]))
    problem = candidates(source, scalarizer=scal, settings=settings)
    measured: list[int] = []
    values: list[float] = []
    raw: list[np.ndarray] = []
    vetoed: set[int] = set()
    mismatches: list[dict[str, Any]] = []
    n_prop = n_human = 0
    worst = 0.0
    recorded = []
    last: int | None = None  # the agent's last re-decided proposal
    for e in entries:
        act, out, inp = e["action"], e["outputs"], e["inputs"]
        if act == "propose":
            idx, acq, _m, _p = propose(
                problem,
                settings=settings,
                step=len(measured),
                measured=measured,
                values=values,
                exclude=sorted(vetoed),
            )
            n_prop += 1
            last = idx
            if idx != out["index"]:
                mismatches.append({"seq": e["seq"], "logged": out["index"], "replayed": idx})
            logged = out.get("acquisition")
            if logged is not None and math.isfinite(acq):
                worst = max(worst, abs(acq - logged) / max(abs(logged), 1e-12))
        elif act == "veto":
            vetoed.add(int(inp["index"]))
            n_human += 1
        elif act == "policy":
            changes = {k: inp[k] for k in ("acquisition", "beta") if inp.get(k) is not None}
            settings = dataclasses.replace(settings, **changes)
            if inp.get("scalarizer") is not None:
                scal = scalarizer_from_dict(inp["scalarizer"])
                values = [float(scal(r, energy)) for r in raw]
            n_human += e["actor"] == "human"
        elif act == "measure":
            recorded.append(int(inp["index"]))
            # the agent measures what it re-decided; a person what the log says they chose
            i = int(inp["index"]) if e["actor"] == "human" or last is None else last
            spectrum = np.asarray(out["raw"], dtype=np.float64)
            measured.append(i)
            raw.append(spectrum)
            values.append(float(scal(spectrum, energy)))
            if abs(values[-1] - out["value"]) > 1e-9 * max(1.0, abs(out["value"])):
                mismatches.append({"seq": e["seq"], "logged": out["value"], "replayed": values[-1]})
            n_human += e["actor"] == "human"
            last = None
    return ReplayResult(
        indices=np.asarray(measured, dtype=int),
        recorded=np.asarray(recorded, dtype=int),
        proposals=n_prop,
        mismatches=mismatches,
        max_acquisition_error=worst,
        human_actions=n_human,
    )


def replay_record(run: str | Path, /) -> ReplayResult:
    """Re-decide every step of a run record of ``atomlens explore`` /
    :func:`atomlens.active.run` (an instrument run: ``run.json``, ``overview.npy``,
    ``energy.npy``) with :func:`atomlens.active.replay`, from the record alone.

    The candidates' features are rebuilt from the recorded overview, which the record keeps
    in float32: a surrogate on image patches (DKL) sees them rounded and may decide
    otherwise where two candidates were nearly tied; the result says so.

    Raises
    ------
    FileNotFoundError
        No ``run.json`` in ``run``.
    ValueError
        A table run (features and targets): replay it from Python with its ``TableSource``.
    """
    # the active-learning stack (torch, GPyTorch) loads with the replay
    from atomlens.active.loop import replay
    from atomlens.active.record import RunRecord

    run = Path(run)
    rec = RunRecord.read(run)
    if rec.meta.get("kind") == "hypotheses":
        raise ValueError(
            f"{run} records hypothesis learning; replay it with `atomlens replay {run}` or "
            "atomlens.active.hypotheses.replay_hypotheses."
        )
    if rec.energy is None or not (run / "overview.npy").is_file():
        raise ValueError(
            f"{run} records a table run (features and targets); replay it from Python: "
            "atomlens.active.replay(TableSource(features, targets), run)."
        )
    image = np.load(run / "overview.npy", allow_pickle=False).astype(np.float64)
    res = replay(_Overview(image, rec.energy, 1.0), run)
    done = rec.finished()
    recorded = np.asarray(done["indices"], dtype=int)
    mism = [
        {"step": k, "logged": int(a), "replayed": int(b)}
        for k, (a, b) in enumerate(zip(recorded, res.indices, strict=True))
        if a != b
    ]
    logged = np.asarray(done["acquisition"], dtype=float)
    again = np.asarray(res.acquisition_values, dtype=float)
    ok = np.isfinite(logged) & np.isfinite(again)
    worst = float(
        np.max(np.abs(again[ok] - logged[ok]) / np.maximum(np.abs(logged[ok]), 1e-12), initial=0.0)
    )
    return ReplayResult(
        indices=np.asarray(res.indices, dtype=int),
        recorded=recorded,
        proposals=int(np.sum([w != "seed" for w in done["why"]])),
        mismatches=mism,
        max_acquisition_error=worst,
        human_actions=0,
    )
