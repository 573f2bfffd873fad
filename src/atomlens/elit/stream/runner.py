"""The live automated-experiment loop: find atoms in frames as they arrive, watch for drift
of the imaging conditions, and act on it without stopping (ELIT's "stream" step).

For every frame the active ensemble finds the atoms and the frame gets an
**out-of-distribution score** (:func:`ood_score`): the ensemble's mean epistemic
uncertainty (mutual information between the members [nats]) over the pixels the ensemble
takes for atoms or their neighbourhood (mean foreground probability ≥ ``foreground``).
It needs no labels and costs nothing beyond the prediction :func:`atomlens.pipeline.finder.find`
already makes. Members trained apart agree on data like their training data and disagree
off it: with the bundled graphene ensemble the score rises ≈ 5× at 1e3 e⁻/Å² and ≈ 10×
under a 10 Å amorphous film against 1e5 e⁻/Å² frames. Background pixels are left out so
that the score does not depend on how densely the frame is covered with atoms. An
ensemble of one has no epistemic part; it is scored by its predictive entropy instead.

**Baseline.** The score is read as a ratio to the level the same ensemble shows on
training-like data, measured once before the first frame and again whenever the active
ensemble changes:

- ``"simulated"`` (default): a few noise-realistic frames (``baseline_dose`` e⁻/Å², the
  default probe) of the material the ensemble was trained on (its provenance
  ``"materials"``), simulated **at the stream's pixel size** and field of view (≤
  ``baseline_side`` px). It needs nothing from the user and is never itself drifted. The
  stream's sampling, not the model's, is used because resampling alone changes the level
  (by 2–3× between 0.12 and 0.25 Å/px for the same ensemble), and the ratio must reflect
  the imaging conditions only.
- ``"reference"``: frames the user passes (``reference=``), known to be good, at the
  stream's pixel size: best when the specimen is not the training material.
- ``"first"``: the first ``baseline_frames`` frames of the stream itself, for when neither
  applies; it assumes the run starts under good conditions, and no drift is looked for
  until they are in.

**Decisions.** A frame is *over* when its score exceeds ``threshold`` × baseline. After
``patience`` consecutive frames over, drift is declared (once per episode; the episode
ends after ``patience`` frames under) and, by ``on_drift``:

- ``"select"``: :func:`atomlens.elit.select.select` ranks the members on the drifted
  frames of the recent window and the stream switches, before the next frame, to the
  ``n_best`` best (the choice is among all members, not only the active ones);
- ``"adapt"``: :func:`atomlens.elit.adapt.adapt` of (a copy of) the active ensemble on
  those frames is submitted to an executor (a ``ThreadPoolExecutor`` by default, or a
  ``dask.distributed.Client``) and the stream goes on; when it finishes, the adapted
  ensemble is swapped in at the next frame. One adaptation at a time;
- ``"both"``: select now, then adapt the selected members in the background;
- ``"none"``: only report.

Each change of the active ensemble re-measures the baseline and starts the drift count
afresh. Every decision (baseline, drift, recovery, switch, adaptation launched, finished
or failed, skipped frame, rejection by ``p_real`` stopped or resumed) is logged and kept,
with its evidence, in :attr:`Stream.decisions`.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens._shared.atomic import check_output_directory
from atomlens._shared.validate import validate_pixel_size
from atomlens.elit.adapt import AdaptConfig, adapt
from atomlens.elit.select import select
from atomlens.elit.stream.config import StreamConfig
from atomlens.elit.stream.record import FRAME_COLUMNS, FrameRecord
from atomlens.elit.stream.scoring import (
    Baseline,
    DriftState,
    ood_score,
    reference_frames,
    score_kind,
)
from atomlens.elit.stream.source import FrameSource, checked_frame
from atomlens.elit.stream.writer import StreamWriter
from atomlens.ensemble import Ensemble, as_ensemble
from atomlens.pipeline import (
    find,
    p_real_threshold,
)

__all__ = ["FrameRecord", "Stream", "StreamConfig", "ood_score", "stream"]

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------ stream
def _p_real_applied(ens: Any, cfg: StreamConfig) -> float | None:
    """The ``p_real`` threshold ``find`` applies with ``ens``, or None where ``ens`` lacks
    the calibration it needs (members chosen by ``select``)."""
    try:
        return p_real_threshold(ens, cfg.p_real_min)
    except ValueError:  # the value itself was checked by StreamConfig
        return None


def _is_dask(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed"


class Stream:
    """The live loop over a source of frames; iterate it for :class:`FrameRecord`.

    Made by :func:`stream` (see there for the parameters). Single use.

    Attributes
    ----------
    ensemble : Ensemble
        The active ensemble (changes on a switch or a swap).
    baseline : float or None
        Baseline level of the active ensemble [nats].
    decisions : list of dict
        Every decision so far: ``event`` (``"baseline"``, ``"drift"``, ``"recovered"``,
        ``"switch"``, ``"select_kept"``, ``"adapt_launched"``, ``"adapt_busy"``,
        ``"adapt_finished"``, ``"adapt_failed"``, ``"frame_skipped"``, ``"p_real_off"``,
        ``"p_real_on"``), ``frame`` (index,
        or None before the first; what happens after the last frame has ``at_end``),
        ``time`` (Unix time [s]) and the evidence (scores, ratios, threshold, members, …).
    """

    def __init__(
        self,
        ensemble: Any,
        source: Any,
        *,
        pixel_size: float | None,
        config: StreamConfig,
        out: str | PathLike[str] | None,
        overwrite: bool,
        reference: Sequence[np.ndarray] | None,
        adapt_fn: Callable[..., Any] | None,
        executor: Any,
        device: str,
    ) -> None:
        if not isinstance(config, StreamConfig):
            raise TypeError(f"config must be a StreamConfig, got {type(config).__name__}.")
        self.config = config
        self.pixel_size = None if pixel_size is None else validate_pixel_size(pixel_size)
        self._source = FrameSource(
            source, pixel_size=self.pixel_size, config=config, model=lambda: self.ensemble
        )
        self._baseline = Baseline(config, reference_frames(reference, config))
        if adapt_fn is not None and not callable(adapt_fn):
            raise TypeError(f"adapt_fn must be callable, got {adapt_fn!r}.")
        if executor is not None and not callable(getattr(executor, "submit", None)):
            raise TypeError(
                "executor must have a submit method (concurrent.futures.Executor or "
                f"dask.distributed.Client), got {type(executor).__name__}."
            )
        self.ensemble = as_ensemble(ensemble)
        p_real_threshold(self.ensemble, config.p_real_min)  # the start must be calibrated
        self._pool = self.ensemble
        n = len(self.ensemble)
        if config.n_best is not None and config.n_best > n:
            raise ValueError(f"n_best is {config.n_best} but the ensemble has {n} members.")
        self._n_best = config.n_best or min(n, max(2, n // 2))
        self._members = tuple(range(n))
        self._generation = 0
        self._adapt_fn = adapt_fn
        self._executor = executor
        self._own_executor: Any = None
        self._future: Any = None
        self._future_info: dict[str, Any] = {}
        self.device = device
        self._score_kind = score_kind(self.ensemble)
        if n == 1 and config.score == "epistemic":
            logger.info(
                "an ensemble of one has no epistemic uncertainty; its OOD score is the "
                "predictive entropy"
            )
        self.decisions: list[dict[str, Any]] = []
        self._writer: StreamWriter | None = None
        if out is not None:
            check_output_directory(Path(out), overwrite=overwrite)
            self._writer = StreamWriter(Path(out))
        self._drift = DriftState(config.patience)
        self._window: deque[tuple[int, np.ndarray, float, bool]] = deque(maxlen=config.window)
        self._started = False

    @property
    def baseline(self) -> float | None:
        """Baseline level of the active ensemble [nats]; None until it is known."""
        return self._baseline.level

    # -------------------------------------------------------------- decisions
    def _decide(self, event: str, frame: int | None, level: int = logging.INFO, **ev: Any) -> None:
        d = {"event": event, "frame": frame, "time": time.time(), **ev}
        self.decisions.append(d)
        brief = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in ev.items()
            if not isinstance(v, list | dict) or k in ("members", "chosen")
        )
        logger.log(level, "stream %s at frame %s: %s", event, frame, brief)
        if self._writer is not None:
            self._writer.decision(d)

    def _score_of(self, res: Any) -> float:
        kind = self.config.score if self._score_kind == "epistemic" else "entropy"
        return ood_score(res.prediction, kind=kind, foreground=self.config.foreground)

    def _find(self, frame: np.ndarray, ps: float, ens: Any = None) -> Any:
        model = ens if ens is not None else self.ensemble
        return find(
            frame,
            model=model,
            pixel_size=ps,
            p_min=self.config.p_min,
            p_real_min=_p_real_applied(model, self.config),
            device=self.device,
        )

    def _record_baseline(self, frame: int | None, reason: str, scores: list[float]) -> None:
        self._decide(
            "baseline",
            frame,
            source=self.config.baseline,
            reason=reason,
            baseline=self.baseline,
            scores=scores,
            score_kind=self._score_kind,
            pixel_size=self._baseline.pixel_size,
            generation=self._generation,
            members=list(self._members),
        )

    def _measure_baseline(self, frame: int | None, reason: str) -> None:
        self._score_kind = score_kind(self.ensemble)
        self._drift.reset()
        scores = self._baseline.measure(lambda f, ps: self._score_of(self._find(f, ps)))
        self._record_baseline(frame, reason, scores)

    def _ensure_baseline(self, index: int, frame: np.ndarray, ps: float) -> None:
        due = self._baseline.prepare(self.ensemble, index, frame.shape, ps)
        if due is not None:
            self._measure_baseline(*due)

    # ---------------------------------------------------------------- actions
    def _switch(self, ens: Any, members: tuple[int, ...], frame: int, **ev: Any) -> None:
        old = list(self._members)
        if self.config.p_real_min is not None:
            before = _p_real_applied(self.ensemble, self.config)
            after = _p_real_applied(ens, self.config)
            if before is not None and after is None:
                self._decide(
                    "p_real_off",
                    frame,
                    level=logging.WARNING,
                    reason="the new members have no calibration of their own (a calibration "
                    "describes the members it was measured on): nothing is rejected by "
                    f"p_real {self.config.p_real_min} while they are active",
                )
            elif after is not None and before is None:
                self._decide("p_real_on", frame, p_real_min=after)
        self.ensemble = ens
        self._members = members
        self._decide(
            "switch",
            frame,
            members_before=old,
            members=list(members),
            generation=self._generation,
            **ev,
        )
        self._measure_baseline(frame, "the active ensemble changed")

    def _select(self, frames: list[np.ndarray], indices: list[int], ps: float, at: int) -> None:
        t = time.perf_counter()
        sel = select(self._pool, frames, pixel_size=ps, n_best=self._n_best, device=self.device)
        seconds = time.perf_counter() - t
        chosen = tuple(sorted(int(m) for m in sel.chosen))
        scores = sel.scores.to_dict(orient="records")
        if chosen == tuple(sorted(self._members)):
            self._decide(
                "select_kept",
                at,
                members=list(chosen),
                frames=indices,
                seconds=seconds,
                ranking=scores,
            )
            return
        pool = self._pool
        sub = Ensemble(
            [pool.networks[i] for i in chosen],
            pool.config,
            [pool.member_provenance[i] for i in chosen],
        )
        # the calibration described all members together, not this subset
        sub.calibration = None
        self._switch(
            sub, chosen, at, cause="select", frames=indices, seconds=seconds, ranking=scores
        )

    def _launch_adapt(
        self, frames: list[np.ndarray], indices: list[int], ps: float, at: int
    ) -> None:
        if self._future is not None:
            self._decide(
                "adapt_busy",
                at,
                launched_at=self._future_info.get("frame"),
                note="one adaptation at a time; this drift is left to the one running",
            )
            return
        fn = self._adapt_fn
        if fn is None:
            fn = adapt
        cfg = self.config.adapt
        if cfg is None:
            cfg = AdaptConfig()
        ex = self._executor
        if ex is None:
            if self._own_executor is None:
                from concurrent.futures import ThreadPoolExecutor

                self._own_executor = ThreadPoolExecutor(1, thread_name_prefix="atomlens-adapt")
            ex = self._own_executor
        extra = {"pure": False} if _is_dask(ex) else {}
        # a copy: the loop keeps predicting with the live ensemble while this one trains
        ens = copy.deepcopy(self.ensemble)
        ens._stacked = None  # the copy re-stacks its own weights if it needs them
        self._future = ex.submit(fn, ens, list(frames), pixel_size=ps, config=cfg, **extra)
        self._future_info = {
            "frame": at,
            "t0": time.perf_counter(),
            "members": self._members,
            "frames": indices,
        }
        self._decide(
            "adapt_launched",
            at,
            frames=indices,
            members=list(self._members),
            executor=type(ex).__name__,
        )

    def _poll_adapt(self, at: int | None, wait: bool = False) -> None:
        fut = self._future
        if fut is None:
            return
        if wait:
            logger.info(
                "the source ended; waiting for the adaptation launched at frame %s",
                self._future_info.get("frame"),
            )
        elif not fut.done():
            return
        info = self._future_info
        self._future, self._future_info = None, {}
        ev: dict[str, Any] = {"launched_at": info["frame"]}
        if wait:
            ev["at_end"] = True
        try:
            result = fut.result()
            new = getattr(result, "ensemble", result)
            self._check_adapted(new)
        except Exception as exc:
            ev["seconds"] = time.perf_counter() - info["t0"]
            self._decide(
                "adapt_failed",
                at,
                level=logging.WARNING,
                error=f"{type(exc).__name__}: {exc}",
                **ev,
            )
            return
        ev["seconds"] = time.perf_counter() - info["t0"]
        history = getattr(result, "history", None)
        if isinstance(history, pd.DataFrame) and "kept" in history:
            ev["rounds_kept"] = int(history["kept"].iloc[1:].sum())
            if ev["rounds_kept"] == 0:
                # every round was undone by adapt's guards: nothing to swap in
                self._decide("adapt_finished", at, swapped=False, **ev)
                return
        self._generation += 1
        self._decide("adapt_finished", at, swapped=True, generation=self._generation, **ev)
        self._pool = new
        self._drift.active = False
        if not self._baseline.ready:
            self.ensemble, self._members = new, tuple(range(len(new)))
            self._score_kind = score_kind(new)
            return
        self._switch(new, tuple(range(len(new))), at, cause="adapt", launched_at=info["frame"])

    def _check_adapted(self, new: Any) -> None:
        if not isinstance(new, Ensemble):
            raise TypeError(f"the adaptation returned {type(new).__name__}, not an Ensemble")
        a, b = new.config, self.ensemble.config
        if (a.class_names, a.pixel_size_A) != (b.class_names, b.pixel_size_A):
            raise ValueError("the adapted ensemble has other classes or another sampling")

    def _on_drift(self, at: int, ps: float) -> None:
        drifted = [(i, f) for i, f, _s, over in self._window if over]
        indices = [i for i, _ in drifted]
        frames = [f for _, f in drifted]
        mode = self.config.on_drift
        if mode in ("select", "both"):
            self._select(frames, indices, ps, at)
        if mode in ("adapt", "both"):
            self._launch_adapt(frames, indices, ps, at)

    def _close(self, finished: bool) -> None:
        try:
            if self._future is not None and finished and self.config.finish_adaptation:
                self._poll_adapt(self._last_index, wait=True)
        finally:
            if self._own_executor is not None:
                self._own_executor.shutdown(wait=False, cancel_futures=True)
                self._own_executor = None
            if self._writer is not None:
                self._writer.close()

    # ------------------------------------------------------------------- loop
    def __iter__(self) -> Iterator[FrameRecord]:
        if self._started:
            raise RuntimeError("a Stream can be iterated once; make a new one with stream().")
        self._started = True
        return self._loop()

    def _loop(self) -> Iterator[FrameRecord]:
        cfg = self.config
        finished = False
        self._last_index: int | None = None
        if self._writer is not None:
            self._writer.open()
        try:
            for item in self._source:
                self._last_index = item.index
                self._poll_adapt(item.index)
                if item.error is None:
                    try:
                        frame = checked_frame(
                            item, model_pixel_size=self.ensemble.config.pixel_size_A
                        )
                    except ValueError as exc:
                        item.error = str(exc)
                if item.error is not None:
                    self._decide(
                        "frame_skipped",
                        item.index,
                        level=logging.WARNING,
                        name=item.name,
                        reason=item.error,
                    )
                    continue
                ps = float(item.pixel_size)
                self._ensure_baseline(item.index, frame, ps)
                t0 = time.perf_counter()
                try:
                    res = self._find(frame, ps)
                except ValueError as exc:
                    self._decide(
                        "frame_skipped",
                        item.index,
                        level=logging.WARNING,
                        name=item.name,
                        reason=str(exc),
                    )
                    continue
                score = self._score_of(res)
                latency = time.perf_counter() - t0
                if cfg.baseline == "first" and self.baseline is None:
                    scores = self._baseline.add_first(frame, ps, score)
                    if scores is not None:
                        self._record_baseline(item.index, "start", scores)
                base = self.baseline if self.baseline is not None else math.nan
                ratio = score / base if self.baseline is not None else math.nan
                over = bool(ratio > cfg.threshold)
                rec = FrameRecord(
                    index=item.index,
                    name=item.name,
                    n_atoms=len(res.atoms),
                    latency_s=latency,
                    score=score,
                    baseline=base,
                    ratio=ratio,
                    over=over,
                    generation=self._generation,
                    members=self._members,
                    pixel_size=ps,
                    atoms=res.atoms,
                )
                self._window.append((item.index, frame, score, over))
                if self.baseline is not None:
                    self._update_drift(item.index, ps, ratio, over)
                if self._writer is not None:
                    self._writer.frame(rec)
                yield rec
            finished = True
        finally:
            self._close(finished)

    def _update_drift(self, at: int, ps: float, ratio: float, over: bool) -> None:
        cfg = self.config
        event = self._drift.update(over)
        recent = [(i, s) for i, _f, s, _o in self._window]
        if event == "drift":
            self._decide(
                "drift",
                at,
                level=logging.WARNING,
                ratio=ratio,
                threshold=cfg.threshold,
                baseline=self.baseline,
                patience=cfg.patience,
                recent_frames=[i for i, _ in recent],
                recent_scores=[s for _, s in recent],
                action=cfg.on_drift,
                members=list(self._members),
            )
            if cfg.on_drift != "none":
                self._drift.n_over = 0
                self._on_drift(at, ps)
        elif event == "recovered":
            self._decide(
                "recovered",
                at,
                ratio=ratio,
                threshold=cfg.threshold,
                baseline=self.baseline,
                recent_frames=[i for i, _ in recent],
                recent_scores=[s for _, s in recent],
            )

    def run(self) -> pd.DataFrame:
        """Go through the whole source; the per-frame table (``frames.csv``'s rows).

        Returns
        -------
        pandas.DataFrame
            One row per processed frame (see :meth:`FrameRecord.row`).
        """
        rows = [rec.row() for rec in self]
        return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def stream(
    ensemble: Any,
    source: Iterable[np.ndarray] | np.ndarray | str | PathLike[str],
    /,
    *,
    pixel_size: float | None = None,
    config: StreamConfig | None = None,
    out: str | PathLike[str] | None = None,
    overwrite: bool = False,
    reference: Sequence[np.ndarray] | None = None,
    adapt_fn: Callable[..., Any] | None = None,
    executor: Any = None,
    device: str = "cpu",
) -> Stream:
    """Find atoms in frames as they come, watch for drift and act on it (module notes).

    Parameters
    ----------
    ensemble : Ensemble or path
        The ensemble (or its directory, or a bundled name's directory).
    source : iterable of ndarray (H, W), ndarray (N, H, W), or path
        Frames in memory (a list, a generator, a stack); a **directory** that is being
        filled (image files are processed in name order as they appear and once they have
        stopped changing; the stream ends after ``idle_timeout_s`` without a new file); or
        a **file** (a stack is read one frame at a time).
    pixel_size : float, optional
        [Å/px]; required for arrays; overrides the files' calibration (a file without one
        gets a pixel size estimated from its lattice, logged).
    config : StreamConfig, optional
        Settings.
    out : path, optional
        Write ``atoms.csv`` (all atoms, ``frame`` first), ``frames.csv`` (one row per
        frame, see :meth:`FrameRecord.row`) and ``decisions.jsonl`` (one decision per line)
        here, a line at a time as the stream goes, so that an interruption leaves valid
        files. Nothing is written without it.
    overwrite : bool
        Write into an existing, non-empty ``out``.
    reference : sequence of ndarray (H, W), optional
        Good frames at the stream's pixel size for ``StreamConfig(baseline="reference")``.
    adapt_fn : callable, optional
        Instead of :func:`atomlens.elit.adapt.adapt`: called as ``adapt_fn(ensemble,
        frames, pixel_size=..., config=...)``; returns an ``AdaptResult`` or an
        ``Ensemble``.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Where adaptations run; a one-thread ``ThreadPoolExecutor`` if omitted (shut down
        at the end; an executor passed in is left open).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``: where the ensemble predicts.

    Returns
    -------
    Stream
        Iterate it for one :class:`FrameRecord` per frame (corrupt frames are skipped and
        logged); ``.run()`` goes through it all; ``.decisions`` holds what was decided.

    Raises
    ------
    ValueError
        Contradictory or missing arguments (arrays without ``pixel_size``, reference frames
        without ``baseline="reference"``, ``n_best`` above the number of members).
    FileNotFoundError
        ``source`` is a path that does not exist.
    FileExistsError
        ``out`` is not empty and ``overwrite`` is not set.

    Examples
    --------
    >>> from atomlens.simulate import simulate_image
    >>> frames = [simulate_image("graphene", shape=64, pixel_size=0.2, rng=i).image for i in (1, 2)]
    >>> st = stream("graphene", frames, pixel_size=0.2, config=StreamConfig(on_drift="none"))
    >>> [(r.index, r.n_atoms > 40, r.over) for r in st]
    [(0, True, False), (1, True, False)]
    >>> [d["event"] for d in st.decisions]
    ['baseline']
    """
    return Stream(
        ensemble,
        source,
        pixel_size=pixel_size,
        config=config if config is not None else StreamConfig(),
        out=out,
        overwrite=overwrite,
        reference=reference,
        adapt_fn=adapt_fn,
        executor=executor,
        device=device,
    )
