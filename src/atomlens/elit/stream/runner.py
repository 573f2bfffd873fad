"""The live loop: :class:`Stream` takes frames from its source, finds their atoms, scores
them against the baseline and acts on drift; :func:`stream` makes one. How it reads, scores,
adapts and writes is in the other modules of :mod:`atomlens.elit.stream`."""

from __future__ import annotations

import functools
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
from atomlens._shared.device import resolve_device
from atomlens._shared.validate import validate_pixel_size
from atomlens.elit.select import default_n_best
from atomlens.elit.stream.background import BackgroundAdaptation
from atomlens.elit.stream.config import StreamConfig
from atomlens.elit.stream.members import p_real_applied, select_members
from atomlens.elit.stream.record import FRAME_COLUMNS, FrameRecord
from atomlens.elit.stream.scoring import (
    Baseline,
    DriftState,
    ood_score,
    reference_frames,
    score_kind,
)
from atomlens.elit.stream.source import FrameSource, Item, checked_frame
from atomlens.elit.stream.writer import StreamWriter
from atomlens.ensemble import Ensemble, as_ensemble
from atomlens.pipeline import find, p_real_threshold

__all__ = ["Stream", "stream"]

logger = logging.getLogger(__name__)


def _find_atoms(ens: Any, frame: np.ndarray, ps: float, config: StreamConfig, device: str) -> Any:
    """The stream's :func:`atomlens.pipeline.find` of one frame with ``ens``."""
    return find(
        frame,
        model=ens,
        pixel_size=ps,
        p_min=config.p_min,
        p_real_min=p_real_applied(ens, config),
        device=device,
    )


def _score(res: Any, kind_of_ensemble: str, config: StreamConfig) -> float:
    """The OOD score of one frame's result (the predictive entropy for an ensemble of one)."""
    kind = config.score if kind_of_ensemble == "epistemic" else "entropy"
    return ood_score(res.prediction, kind=kind, foreground=config.foreground)


def _baseline_scores(
    ens: Any,
    *,
    frames: list[np.ndarray],
    pixel_size: float,
    version: int,
    config: StreamConfig,
    device: str,
) -> dict[str, Any]:
    """An adapted ensemble's scores of the baseline frames (their pixel size [Å/px] and
    :attr:`Baseline.version`), made where it was adapted."""
    ens = as_ensemble(ens)
    kind = score_kind(ens)
    scores = [_score(_find_atoms(ens, f, pixel_size, config, device), kind, config) for f in frames]
    return {
        "baseline_scores": scores,
        "baseline_pixel_size": pixel_size,
        "baseline_version": version,
        "score_kind": kind,
    }


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
        ``"adapt_finished"``, ``"adapt_failed"``, ``"adapt_requested"``, ``"frame_skipped"``,
        ``"p_real_off"``,
        ``"p_real_on"``), ``frame`` (index,
        or None before the first; what happens after the last frame has ``at_end``),
        ``time`` (Unix time [s]) and the evidence (scores, ratios, drift_ratio, members, …).
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
        self._adaptation = BackgroundAdaptation(adapt_fn, executor)
        self.ensemble = as_ensemble(ensemble)
        p_real_threshold(self.ensemble, config.p_real_min)  # the start must be calibrated
        self._pool = self.ensemble
        n = len(self.ensemble)
        if config.n_best is not None and config.n_best > n:
            raise ValueError(f"n_best is {config.n_best} but the ensemble has {n} members.")
        self._n_best = config.n_best or default_n_best(n)
        self._members = tuple(range(n))
        self._generation = 0
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
        self._last_index: int | None = None
        self._started = False
        self._adapt_requested = False

    def request_adaptation(self) -> None:
        """Adapt on the recent window's frames after the next frame, drift or not (the
        "adapt now" of :mod:`atomlens.live`); an ``adapt_requested`` decision records it.
        Thread-safe: it only sets a flag the loop reads."""
        self._adapt_requested = True

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

    def _skip(self, item: Item, reason: str) -> None:
        self._decide(
            "frame_skipped", item.index, level=logging.WARNING, name=item.name, reason=reason
        )

    # ---------------------------------------------------------------- scoring
    def _score_of(self, res: Any) -> float:
        return _score(res, self._score_kind, self.config)

    def _find(self, frame: np.ndarray, ps: float) -> Any:
        return _find_atoms(self.ensemble, frame, ps, self.config, self.device)

    def _record_baseline(
        self, frame: int | None, reason: str, scores: list[float], **ev: Any
    ) -> None:
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
            **ev,
        )

    def _measure_baseline(
        self, frame: int | None, reason: str, measured: dict[str, Any] | None = None
    ) -> None:
        self._score_kind = score_kind(self.ensemble)
        self._drift.reset()
        pre = measured or {}
        b = self._baseline
        if (
            pre.get("baseline_version") == b.version
            and pre.get("baseline_pixel_size") == b.pixel_size
            and len(pre.get("baseline_scores", ())) == len(b.frames)
            and pre.get("score_kind") == self._score_kind
        ):
            # scored in the adaptation's job on these very frames: the next frame does not
            # wait for it
            scores = b.accept(pre["baseline_scores"], version=b.version)
            self._record_baseline(frame, reason, scores, measured_in="background")
            return
        scores = b.measure(lambda f, ps: self._score_of(self._find(f, ps)))
        self._record_baseline(frame, reason, scores)

    def _ensure_baseline(self, index: int, frame: np.ndarray, ps: float) -> None:
        due = self._baseline.prepare(self.ensemble, index, frame.shape, ps)
        if due is not None:
            self._measure_baseline(*due)

    # ---------------------------------------------------------------- actions
    def _switch(
        self,
        ens: Any,
        members: tuple[int, ...],
        frame: int,
        measured: dict[str, Any] | None = None,
        **ev: Any,
    ) -> None:
        old = list(self._members)
        if self.config.p_real_min is not None:
            before = p_real_applied(self.ensemble, self.config)
            after = p_real_applied(ens, self.config)
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
        self._measure_baseline(frame, "the active ensemble changed", measured)

    def _select(self, frames: list[np.ndarray], indices: list[int], ps: float, at: int) -> None:
        c = select_members(
            self._pool,
            frames,
            pixel_size=ps,
            n_best=self._n_best,
            device=self.device,
            active=self._members,
        )
        ev = {"frames": indices, "seconds": c.seconds, "ranking": c.ranking}
        if c.ensemble is None:
            self._decide("select_kept", at, members=list(c.members), **ev)
        else:
            self._switch(c.ensemble, c.members, at, cause="select", **ev)

    def _launch_adapt(
        self, frames: list[np.ndarray], indices: list[int], ps: float, at: int
    ) -> None:
        if self._adaptation.running:
            self._decide(
                "adapt_busy",
                at,
                launched_at=self._adaptation.info.get("frame"),
                note="one adaptation at a time; this drift is left to the one running",
            )
            return
        b = self._baseline
        after = None
        if b.ready:  # the adapted ensemble's baseline is measured in the adaptation's job
            after = functools.partial(
                _baseline_scores,
                frames=list(b.frames),
                pixel_size=b.pixel_size,
                version=b.version,
                config=self.config,
                # resolved here: a Dask worker's "auto" could differ from the loop's
                device=str(resolve_device(self.device)),
            )
        executor = self._adaptation.launch(
            self.ensemble,
            frames,
            pixel_size=ps,
            config=self.config.adapt,
            at=at,
            members=self._members,
            indices=indices,
            after=after,
        )
        self._decide(
            "adapt_launched",
            at,
            frames=indices,
            members=list(self._members),
            executor=executor,
        )

    def _poll_adapt(self, at: int | None, wait: bool = False) -> None:
        done = self._adaptation.collect(self.ensemble, wait=wait)
        if done is None:
            return
        if done.error is not None:
            self._decide(
                "adapt_failed", at, level=logging.WARNING, error=done.error, **done.evidence
            )
        elif done.ensemble is None:
            self._decide("adapt_finished", at, swapped=False, **done.evidence)
        else:
            self._swap_in(done.ensemble, at, done.evidence, done.measured)

    def _swap_in(
        self, new: Ensemble, at: int | None, ev: dict[str, Any], measured: dict[str, Any]
    ) -> None:
        """Make the adapted ensemble the active one and the pool ``select`` chooses from."""
        self._generation += 1
        self._decide("adapt_finished", at, swapped=True, generation=self._generation, **ev)
        self._pool = new
        self._drift.active = False
        if not self._baseline.ready:
            self.ensemble, self._members = new, tuple(range(len(new)))
            self._score_kind = score_kind(new)
            return
        self._switch(
            new,
            tuple(range(len(new))),
            at,
            measured,
            cause="adapt",
            launched_at=ev["launched_at"],
        )

    def _on_drift(self, at: int, ps: float) -> None:
        drifted = [(i, f) for i, f, _s, over in self._window if over]
        indices = [i for i, _ in drifted]
        frames = [f for _, f in drifted]
        mode = self.config.on_drift
        if mode in ("select", "both"):
            self._select(frames, indices, ps, at)
        if mode in ("adapt", "both"):
            self._launch_adapt(frames, indices, ps, at)

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
                drift_ratio=cfg.drift_ratio,
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
                drift_ratio=cfg.drift_ratio,
                baseline=self.baseline,
                recent_frames=[i for i, _ in recent],
                recent_scores=[s for _, s in recent],
            )

    # ------------------------------------------------------------------- loop
    def __iter__(self) -> Iterator[FrameRecord]:
        if self._started:
            raise RuntimeError("a Stream can be iterated once; make a new one with stream().")
        self._started = True
        return self._loop()

    def _loop(self) -> Iterator[FrameRecord]:
        finished = False
        if self._writer is not None:
            self._writer.open()
        try:
            for item in self._source:
                self._last_index = item.index
                self._poll_adapt(item.index)
                rec = self._process(item)
                if rec is None:
                    continue
                if self._writer is not None:
                    self._writer.frame(rec)
                yield rec
            finished = True
        finally:
            self._close(finished)

    def _process(self, item: Item) -> FrameRecord | None:
        """One frame: its atoms, score and record, and the decisions on it; None (and a
        ``frame_skipped`` decision) when it cannot be used."""
        cfg = self.config
        if item.error is None:
            try:
                frame = checked_frame(
                    item,
                    model_pixel_size=self.ensemble.config.pixel_size_A,
                    n_maps=self.ensemble.n_maps,
                )
            except ValueError as exc:
                item.error = str(exc)
        if item.error is not None:
            self._skip(item, item.error)
            return None
        ps = float(item.pixel_size)
        self._ensure_baseline(item.index, frame, ps)
        t0 = time.perf_counter()
        try:
            res = self._find(frame, ps)
        except ValueError as exc:
            self._skip(item, str(exc))
            return None
        t_score = time.perf_counter()
        score = self._score_of(res)
        latency = time.perf_counter() - t0
        seconds = {**res.seconds, "score": latency - (t_score - t0)}
        if cfg.baseline == "first" and self.baseline is None:
            scores = self._baseline.add_first(frame, ps, score)
            if scores is not None:
                self._record_baseline(item.index, "start", scores)
        base = self.baseline if self.baseline is not None else math.nan
        ratio = score / base if self.baseline is not None else math.nan
        over = bool(ratio > cfg.drift_ratio)
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
            frame=frame,
            prediction=res.prediction,
            seconds=seconds,
        )
        self._window.append((item.index, frame, score, over))
        if self.baseline is not None:
            self._update_drift(item.index, ps, ratio, over)
        if self._adapt_requested:
            self._adapt_requested = False
            self._decide("adapt_requested", item.index, frames=[i for i, *_ in self._window])
            self._launch_adapt(
                [f for _i, f, *_ in self._window], [i for i, *_ in self._window], ps, item.index
            )
        return rec

    def _close(self, finished: bool) -> None:
        try:
            if self._adaptation.running and finished and self.config.finish_adaptation:
                self._poll_adapt(self._last_index, wait=True)
        finally:
            self._adaptation.shutdown()
            if self._writer is not None:
                self._writer.close()

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
    """Find atoms in frames as they come, watch for drift and act on it.

    How the frames are scored, what the baseline is and what is done on drift:
    :mod:`atomlens.elit.stream`.

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
