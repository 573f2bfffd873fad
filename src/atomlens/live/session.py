"""What the live page shows and steers: the stream of frames and the steered experiment,
each on its own thread, decoupled from the page.

**Decoupling.** The loops never wait for the page. After each frame the stream thread puts
the frame's record in a *latest-value slot* (a deque of a few items; older ones fall out)
and its provenance entry in the log queue, and goes on. A render thread takes the newest
record from the slot, draws it (PNG of the frame and of the epistemic map, the atoms as a
list) and hands the message to the :class:`Hub`, which offers it to every connected page
through a bounded queue per page (the oldest message is dropped when a page is slow); a
log thread writes the provenance. A slow, frozen or closed browser therefore costs the loop
nothing but the two ``append`` calls.

**Bounded.** The hub keeps the last ``keep_frames`` frames for a page that connects late,
the OOD history as one number per frame (at most ``history`` of them) and the last 200
decisions; the page keeps the same number of frames in its DOM.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from atomlens._shared.atomic import check_output_directory
from atomlens.live.provenance import LOG_NAME, ProvenanceLog, file_sha256
from atomlens.live.steer import Action

__all__ = ["CONTROL_ACTIONS", "Hub", "LiveSession", "png_data_url"]

logger = logging.getLogger(__name__)

#: The actions ``POST /api/control`` accepts (see :meth:`LiveSession.control`).
CONTROL_ACTIONS = (
    "pause",
    "resume",
    "accept",
    "veto",
    "measure",
    "policy",
    "label",
    "adapt",
)

#: The atom columns sent to the page (those present).
ATOM_COLUMNS = (
    "x_px",
    "y_px",
    "x_A",
    "y_A",
    "class",
    "p_detect",
    "p_real",
    "sigma_x_A",
    "sigma_y_A",
    "intensity",
)


def png_data_url(image: np.ndarray, /, *, max_side: int = 320, cmap: str = "gray") -> str:
    """An image as a ``data:image/png;base64,…`` URL: shrunk by block means to at most
    ``max_side`` px, scaled between its 1st and 99.5th percentiles, grey or ``"heat"``."""
    # Pillow writes the PNG; imported with the first frame drawn
    from PIL import Image as PILImage

    a = np.asarray(image, dtype=np.float32)
    step = max(1, math.ceil(max(a.shape) / max_side))
    if step > 1:
        h, w = (a.shape[0] // step) * step, (a.shape[1] // step) * step
        a = a[:h, :w].reshape(h // step, step, w // step, step).mean((1, 3))
    finite = np.isfinite(a)
    lo, hi = np.percentile(a[finite], (1, 99.5)) if finite.any() else (0.0, 1.0)
    u = np.clip((np.nan_to_num(a, nan=lo) - lo) / max(hi - lo, 1e-12), 0, 1)
    if cmap == "heat":  # black → red → yellow → white
        rgb = np.stack([np.clip(3 * u, 0, 1), np.clip(3 * u - 1, 0, 1), np.clip(3 * u - 2, 0, 1)])
        img = PILImage.fromarray((rgb.transpose(1, 2, 0) * 255).astype(np.uint8), "RGB")
    else:
        img = PILImage.fromarray((u * 255).astype(np.uint8), "L")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _finite(v: Any) -> Any:
    return v if not isinstance(v, float) or math.isfinite(v) else None


class Hub:
    """Messages for the pages: published from any thread without blocking, delivered to
    each page through its own bounded queue (oldest dropped when full).

    Parameters
    ----------
    keep_frames : int
        Frames kept for a page that connects late.
    history : int
        OOD points kept.
    client_queue : int
        Messages buffered per page.
    """

    def __init__(self, *, keep_frames: int = 12, history: int = 5000, client_queue: int = 64):
        self._lock = threading.Lock()
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]]] = {}
        self.frames: deque[dict[str, Any]] = deque(maxlen=keep_frames)
        self.ood: deque[dict[str, Any]] = deque(maxlen=history)
        self.decisions: deque[dict[str, Any]] = deque(maxlen=200)
        self.explore: dict[str, Any] | None = None
        self.explore_static: dict[str, Any] | None = None
        self.status: dict[str, Any] = {"paused": False}
        self.client_queue = client_queue
        self.published = 0
        self.dropped = 0

    def publish(self, msg: dict[str, Any], /) -> None:
        """Keep ``msg`` (by its ``type``) and offer it to every page; never blocks."""
        with self._lock:
            kind = msg.get("type")
            if kind == "frame":
                self.frames.append(msg)
            elif kind == "ood":
                self.ood.append(msg["point"])
            elif kind == "decision":
                self.decisions.append(msg)
            elif kind == "explore":
                self.explore = msg
            elif kind == "explore_static":
                self.explore_static = msg
            elif kind == "status":
                self.status = msg
            clients = list(self._clients.values())
            self.published += 1
        for loop, q in clients:
            try:
                loop.call_soon_threadsafe(self._offer, q, msg)
            except RuntimeError:  # the page's event loop is closed
                pass

    def _offer(self, q: asyncio.Queue[Any], msg: dict[str, Any]) -> None:
        if q.full():
            q.get_nowait()
            self.dropped += 1
        q.put_nowait(msg)

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> tuple[int, asyncio.Queue[Any]]:
        """A queue for a new page (call from its event loop) and its key."""
        q: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.client_queue)
        with self._lock:
            key = id(q)
            self._clients[key] = (loop, q)
        return key, q

    def unsubscribe(self, key: int) -> None:
        """Forget a page."""
        with self._lock:
            self._clients.pop(key, None)

    @property
    def n_clients(self) -> int:
        """Pages connected."""
        return len(self._clients)

    def snapshot(self) -> list[dict[str, Any]]:
        """What a page that connects now is sent first."""
        with self._lock:
            out: list[dict[str, Any]] = [self.status]
            if self.explore_static is not None:
                out.append(self.explore_static)
            out.append({"type": "ood_history", "points": list(self.ood)})
            out.extend(self.decisions)
            out.extend(self.frames)
            if self.explore is not None:
                out.append(self.explore)
            return out


class LiveSession:
    """The stream and the steered experiment behind the live page.

    Parameters
    ----------
    out : str or path
        The run folder (``provenance.jsonl``, the explore files); made if missing. A folder
        that holds files is refused unless ``overwrite``.
    stream : Stream, optional
        :func:`atomlens.elit.stream.stream`'s loop, made with ``adapt_fn=session.adapt_fn``
        (:meth:`adapt_fn`) so that labels from the page reach the adaptation.
    explore : callable, optional
        ``explore(log) -> SteeredRun``: made on the explore thread with the session's log.
    hold_s : float or None
        How long a proposal waits for the operator before the agent measures it [s]
        (None: until the operator accepts, vetoes or measures elsewhere).
    keep_frames : int
        Frames a late page is sent and the page keeps.
    render_interval_s : float
        Draw at most one frame per this many seconds [s] (the newest; its atoms, counts and
        OOD point reach the page and the log for every frame all the same). Drawing a frame
        holds Python's lock for about 10 ms, which slowed a loop of 44 ms frames by 19 %
        when every frame was drawn; no one watches more than a few frames a second.
    model_info : dict, optional
        The model version for the log (``version``, ``sha256``).
    source_dir : path, optional
        A watched folder: each frame's file hash goes into the log.
    overwrite : bool

    Attributes
    ----------
    hub : Hub
    log : ProvenanceLog
    labels : dict of int to list of dict
        Labels from the page per frame index.
    """

    def __init__(
        self,
        out: str | Path,
        /,
        *,
        stream: Any = None,
        explore: Callable[[ProvenanceLog], Any] | None = None,
        hold_s: float | None = 2.0,
        keep_frames: int = 12,
        render_interval_s: float = 0.2,
        model_info: dict[str, Any] | None = None,
        source_dir: str | Path | None = None,
        overwrite: bool = False,
    ) -> None:
        if stream is None and explore is None:
            raise ValueError("give a frame `stream`, an `explore` run, or both.")
        if hold_s is not None and not (math.isfinite(hold_s) and hold_s >= 0):
            raise ValueError(f"`hold_s` must be a number of seconds >= 0 or None, got {hold_s!r}.")
        if not (isinstance(keep_frames, int) and 1 <= keep_frames <= 500):
            raise ValueError(f"`keep_frames` must be an integer in 1…500, got {keep_frames!r}.")
        self.out = Path(out)
        check_output_directory(self.out, overwrite=overwrite)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / LOG_NAME).unlink(missing_ok=True)
        self.log = ProvenanceLog(self.out / LOG_NAME)
        self.hub = Hub(keep_frames=keep_frames)
        self.stream = stream
        self._make_explore = explore
        self.steered: Any = None
        self.hold_s = hold_s
        self.model_info = dict(model_info or {})
        self.source_dir = None if source_dir is None else Path(source_dir)
        self.labels: dict[int, list[dict[str, Any]]] = {}
        self._frames: dict[int, np.ndarray] = {}  # recent and labelled frames, for adapt
        self._frame_px: dict[int, float] = {}
        self._keep = keep_frames
        if not (math.isfinite(render_interval_s) and 0 <= render_interval_s <= 60):
            raise ValueError(f"`render_interval_s` must be 0–60 s, got {render_interval_s!r}.")
        self.render_interval_s = float(render_interval_s)
        self._slot: deque[Any] = deque(maxlen=4)  # latest-value slot for the renderer
        self._slot_event = threading.Event()
        self._logq: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._actions: queue.Queue[dict[str, Any]] = queue.Queue()
        self._running = threading.Event()
        self._running.set()  # set: not paused
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.errors: list[str] = []
        self.frames_done = 0
        self.render_seconds: deque[float] = deque(maxlen=1000)
        self.proposal: Any = None
        self.stream_done = threading.Event()
        self.explore_done = threading.Event()
        if stream is None:
            self.stream_done.set()
        if explore is None:
            self.explore_done.set()
        self.log.append(
            "system", "live_start", inputs={"hold_s": hold_s, "model": self.model_info or None}
        )

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the loop, render and log threads."""
        targets: list[tuple[str, Callable[[], None]]] = [
            ("atomlens-live-render", self._render_loop),
            ("atomlens-live-log", self._log_loop),
        ]
        if self.stream is not None:
            targets.append(("atomlens-live-stream", self._stream_loop))
        if self._make_explore is not None:
            targets.append(("atomlens-live-explore", self._explore_loop))
        for name, fn in targets:
            t = threading.Thread(target=self._guard(fn), name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self._publish_status()

    def _guard(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Exception as exc:  # a loop that fails is reported on the page and logged
                logger.exception("live: %s failed", fn.__name__)
                self.errors.append(f"{type(exc).__name__}: {exc}")
                self.hub.publish({"type": "error", "message": f"{type(exc).__name__}: {exc}"})
                self.stream_done.set() if fn == self._stream_loop else None
                self.explore_done.set() if fn == self._explore_loop else None

        return run

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loops (after the current frame or measurement) and flush the log."""
        self._stop.set()
        self._running.set()
        self._slot_event.set()
        self._logq.put(None)
        for t in self._threads:
            t.join(timeout)
        self.log.append(
            "system", "live_end", outputs={"frames": self.frames_done, "errors": self.errors}
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until both loops have ended; whether they have."""
        t0 = time.monotonic()
        for ev in (self.stream_done, self.explore_done):
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - t0))
            if not ev.wait(left):
                return False
        return True

    @property
    def paused(self) -> bool:
        """Whether the loops are paused."""
        return not self._running.is_set()

    def _publish_status(self) -> None:
        self.hub.publish(
            {
                "type": "status",
                "paused": self.paused,
                "stream": self.stream is not None,
                "explore": self._make_explore is not None,
                "stream_done": self.stream_done.is_set(),
                "explore_done": self.explore_done.is_set(),
                "frames": self.frames_done,
                "drift_ratio": None if self.stream is None else self.stream.config.drift_ratio,
                "labels": sum(len(v) for v in self.labels.values()),
            }
        )

    def _wait_running(self) -> None:
        while not self._running.wait(0.2):
            if self._stop.is_set():
                return

    # ---------------------------------------------------------------- stream
    def _model_version(self, rec: Any = None) -> dict[str, Any]:
        v = dict(self.model_info)
        if rec is not None:
            v["generation"] = int(rec.generation)
            v["members"] = list(rec.members)
            v["version"] = f"{v.get('version', 'model')}@gen{rec.generation}"
        return v

    def _stream_loop(self) -> None:
        st = self.stream
        seen = 0
        try:
            for rec in st:
                self._wait_running()
                if rec.frame is not None:
                    with self._lock:
                        self._frames[rec.index] = rec.frame
                        self._frame_px[rec.index] = float(rec.pixel_size)
                        old = [i for i in self._frames if i not in self.labels]
                        for i in old[: max(0, len(old) - max(self._keep, st.config.window))]:
                            self._frames.pop(i, None)
                            self._frame_px.pop(i, None)
                self._slot.append(rec)
                self._slot_event.set()
                self._logq.put(("frame", rec))
                new = st.decisions[seen:]
                seen += len(new)
                for d in new:
                    self._logq.put(("decision", d))
                self.frames_done += 1
                if self._stop.is_set():
                    break
        finally:
            for d in st.decisions[seen:]:
                self._logq.put(("decision", d))
            self.stream_done.set()
            self._publish_status()

    def _render_loop(self) -> None:
        last = -math.inf
        while not self._stop.is_set():
            if not self._slot:
                self._slot_event.wait(0.2)
                self._slot_event.clear()
                continue
            wait = last + self.render_interval_s - time.perf_counter()
            if wait > 0:  # at most one drawing per interval, of the newest frame by then
                self._stop.wait(wait)
                continue
            rec = None
            while self._slot:  # drain from the oldest: the last one taken is the newest
                try:
                    rec = self._slot.popleft()
                except IndexError:
                    break
            if rec is None:
                continue
            t0 = time.perf_counter()
            last = t0
            self.hub.publish(self.frame_message(rec))
            self.render_seconds.append(time.perf_counter() - t0)

    def frame_message(self, rec: Any, /) -> dict[str, Any]:
        """A frame record as the page's ``frame`` message (images as PNG data URLs)."""
        atoms = rec.atoms
        cols = [c for c in ATOM_COLUMNS if c in atoms.columns]
        table = atoms[cols].head(4000)
        rows = [
            [(round(float(v), 4) if isinstance(v, float | np.floating) else v) for v in row]
            for row in table.itertuples(index=False, name=None)
        ]
        msg: dict[str, Any] = {
            "type": "frame",
            "index": int(rec.index),
            "name": str(rec.name),
            "n_atoms": int(rec.n_atoms),
            "latency_ms": round(1000 * float(rec.latency_s), 2),
            "score": _finite(float(rec.score)),
            "ratio": _finite(float(rec.ratio)),
            "over": bool(rec.over),
            "generation": int(rec.generation),
            "members": list(rec.members),
            "columns": cols,
            "atoms": rows,
            "labels": self.labels.get(int(rec.index), []),
        }
        if rec.frame is not None:
            msg["width"], msg["height"] = int(rec.frame.shape[1]), int(rec.frame.shape[0])
            msg["image"] = png_data_url(rec.frame)
        if rec.prediction is not None:
            msg["epistemic"] = png_data_url(rec.prediction.mutual_information, cmap="heat")
        return msg

    def _log_loop(self) -> None:
        while True:
            item = self._logq.get()
            if item is None:
                return
            kind, obj = item
            if kind == "frame":
                self._log_frame(obj)
            elif kind == "decision":
                d = {k: v for k, v in obj.items() if k not in ("event", "frame", "time")}
                self.log.append(
                    "agent", f"stream_{obj['event']}", inputs={"frame": obj.get("frame")}, outputs=d
                )
                self.hub.publish(
                    {
                        "type": "decision",
                        "event": obj["event"],
                        "frame": obj.get("frame"),
                        "brief": {
                            k: v for k, v in d.items() if isinstance(v, int | float | str | bool)
                        },
                    }
                )
            elif kind == "entry":
                self.log.append(*obj[0], **obj[1])

    def _log_frame(self, rec: Any) -> None:
        files = {}
        if self.source_dir is not None:
            f = self.source_dir / str(rec.name).split("[")[0]
            if f.is_file():
                files[f"source/{f.name}"] = file_sha256(f)
        point = {
            "frame": int(rec.index),
            "score": _finite(float(rec.score)),
            "ratio": _finite(float(rec.ratio)),
            "baseline": _finite(float(rec.baseline)),
            "over": bool(rec.over),
            "n_atoms": int(rec.n_atoms),
            "latency_ms": round(1000 * float(rec.latency_s), 3),
            "generation": int(rec.generation),
        }
        self.log.append(
            "agent",
            "frame",
            inputs={
                "frame": int(rec.index),
                "name": str(rec.name),
                "pixel_size_A": float(rec.pixel_size),
            },
            outputs=point,
            model=self._model_version(rec),
            files=files,
        )
        self.hub.publish({"type": "ood", "point": point})

    def adapt_fn(
        self, ensemble: Any, frames: list[np.ndarray], *, pixel_size: float, config: Any
    ) -> Any:
        """The stream's ``adapt_fn``: :func:`atomlens.elit.adapt.adapt` on ``frames`` plus
        the labelled frames not among them (first, so that they are trained on), with the
        page's labels as ``human_labels``; logged when it starts and ends."""
        # the adaptation's training stack loads with the first adaptation
        from atomlens.elit.adapt import adapt

        with self._lock:
            by_id = {id(f): i for i, f in self._frames.items()}
            ids = [by_id.get(id(f)) for f in frames]
            extra = [
                i
                for i in sorted(self.labels)
                if self.labels[i] and i not in ids and i in self._frames
            ]
            labels = {i: list(v) for i, v in self.labels.items()}
            all_frames = [self._frames[i] for i in extra] + list(frames)
        all_ids = extra + ids
        human = [labels.get(i, []) if i is not None else [] for i in all_ids]
        n_human = sum(len(h) for h in human)
        start = {
            "frames": [i for i in all_ids if i is not None],
            "human_labels": human,
            "pixel_size_A": pixel_size,
        }
        self._logq.put(
            (
                "entry",
                (("agent", "adapt_start"), {"inputs": start, "model": self.model_info or None}),
            )
        )
        t0 = time.perf_counter()
        result = adapt(
            ensemble,
            all_frames,
            pixel_size=pixel_size,
            config=config,
            human_labels=human if n_human else None,
        )
        hist = result.history
        rows = [
            {
                k: _finite(float(v))
                if isinstance(v, float | np.floating)
                else (bool(v) if isinstance(v, np.bool_) else v)
                for k, v in r.items()
            }
            for r in hist.to_dict("records")
        ]
        end = {"history": rows, "seconds": time.perf_counter() - t0}
        self._logq.put(("entry", (("agent", "adapt_end"), {"outputs": end})))
        self.hub.publish({"type": "adaptation", "history": rows})
        return result

    # --------------------------------------------------------------- explore
    def _explore_loop(self) -> None:
        try:
            run = self._make_explore(self.log)  # type: ignore[misc]
            self.steered = run
            self.hub.publish(
                {
                    "type": "explore_static",
                    "overview": png_data_url(run.problem.image),
                    "width": int(np.asarray(run.problem.image).shape[1]),
                    "height": int(np.asarray(run.problem.image).shape[0]),
                    "positions": np.round(run.positions, 2).tolist(),
                    "grid_step": int(run.settings.grid_step_px),
                    "budget": int(run.total),
                }
            )
            while not run.done and not self._stop.is_set():
                self._wait_running()
                prop = run.propose()
                while prop is not None and not self._stop.is_set():
                    self.proposal = prop
                    self._publish_explore(run, prop)
                    act = self._next_action(prop)
                    prop = run.apply(prop, act)
                self.proposal = None
                self._publish_explore(run, None)
            if run.done:
                self.log.append(
                    "system",
                    "explore_end",
                    outputs={"measured": list(run.measured), "best": max(run.values)},
                )
        finally:
            self.explore_done.set()
            self._publish_status()

    def _next_action(self, prop: Any) -> Any:
        """The operator's action on ``prop``: the first queued action that refers to it (or
        to no proposal), or None when ``hold_s`` passes without one (the agent goes on)."""
        deadline = None if self.hold_s is None else time.monotonic() + self.hold_s
        while not self._stop.is_set():
            left = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if left <= 0 and not self.paused:
                return None
            try:
                a = self._actions.get(timeout=max(left, 0.01))
            except queue.Empty:
                continue
            if a.get("index_of_proposal") not in (None, prop.index):
                self.log.append("system", "stale_action", inputs=a)
                continue
            kw = {
                k: a[k]
                for k in ("index", "x", "y", "acquisition", "beta", "scalarizer", "reason")
                if a.get(k) is not None
            }
            return Action(a["action"] if a["action"] != "accept" else "accept", **kw)
        return None

    def _publish_explore(self, run: Any, prop: Any) -> None:
        msg: dict[str, Any] = {
            "type": "explore",
            "step": len(run.measured),
            "budget": int(run.total),
            "path": np.round(run.path, 2).tolist(),
            "values": [round(float(v), 6) for v in run.values],
            "why": list(run.why),
            "best_so_far": np.maximum.accumulate(run.values).round(6).tolist()
            if run.values
            else [],
            "settings": {
                "acquisition": run.settings.acquisition,
                "beta": run.settings.beta,
                "model": run.settings.model,
                "scalarizer": run.scalarizer.to_dict(),
            },
            "vetoed": sorted(run.vetoed),
            "proposal": None,
        }
        if prop is not None:
            msg["proposal"] = {
                "step": prop.step,
                "index": prop.index,
                "x": prop.x,
                "y": prop.y,
                "acquisition": _finite(prop.acquisition),
                "why": prop.why,
                "model": prop.model,
            }
            if prop.mean is not None:
                msg["mean"] = np.round(prop.mean, 5).tolist()
                msg["sd"] = np.round(np.sqrt(np.maximum(prop.variance, 0)), 5).tolist()
        self.hub.publish(msg)

    # -------------------------------------------------------------- controls
    def control(self, request: dict[str, Any], /) -> dict[str, Any]:
        """Carry out one control from the page (logged as the human's action).

        ``action`` is one of :data:`CONTROL_ACTIONS`:

        - ``pause`` / ``resume``: both loops, between frames and measurements;
        - ``accept`` / ``veto``: the current proposal (``index``: the proposal's candidate;
          an action about an older proposal is dropped);
        - ``measure``: the candidate nearest ``x``, ``y`` [px of the overview];
        - ``policy``: ``acquisition``, ``beta``, ``scalarizer``;
        - ``label``: ``frame``, ``kind`` (``false`` or ``missed``), ``x_px``, ``y_px``,
          ``class`` (missed atoms): the next adaptation's labels;
        - ``adapt``: start an adaptation after the next frame.

        Returns
        -------
        dict
            ``{"ok": True, ...}``.

        Raises
        ------
        ValueError
            An unknown action, a missing or malformed field, or an action the session
            cannot take (no explore run, no stream, an unknown frame).
        """
        if not isinstance(request, dict):
            raise ValueError("the request body must be a JSON object with an `action`.")
        action = request.get("action")
        if action not in CONTROL_ACTIONS:
            raise ValueError(
                f"unknown `action` {action!r}; use one of {', '.join(CONTROL_ACTIONS)}."
            )
        if action in ("pause", "resume"):
            (self._running.clear if action == "pause" else self._running.set)()
            self.log.append("human", action)
            self._publish_status()
            return {"ok": True, "paused": self.paused}
        if action == "label":
            return self._label(request)
        if action == "adapt":
            if self.stream is None:
                raise ValueError("there is no frame stream to adapt to (start with a SOURCE).")
            self.stream.request_adaptation()
            self.log.append(
                "human",
                "adapt_now",
                inputs={"labels": {str(k): len(v) for k, v in self.labels.items()}},
            )
            return {"ok": True}
        if self._make_explore is None:
            raise ValueError(
                f"{action!r} steers an automated experiment, and none runs: start the "
                "session with `explore`."
            )
        a: dict[str, Any] = {"action": action}
        if action in ("accept", "veto"):
            idx = request.get("index")
            if idx is not None and not isinstance(idx, int):
                raise ValueError("`index` must be an integer (the proposal's candidate).")
            a["index_of_proposal"] = idx
            a["reason"] = str(request.get("reason", ""))[:500]
        elif action == "measure":
            x, y = _number(request, "x"), _number(request, "y")
            if self.steered is None:
                raise ValueError("the automated experiment is still starting; try again.")
            self.steered.nearest(x, y)  # checks the position now, not later on the loop
            a.update(x=x, y=y)
        else:
            # the active-learning stack (torch, GPyTorch) is loaded by the experiment
            from atomlens.active.acquisitions import ACQUISITIONS
            from atomlens.active.scalarizers import parse_scalarizer

            acq = request.get("acquisition")
            if acq is not None and acq not in (*ACQUISITIONS, "random", "grid"):
                raise ValueError(f"unknown `acquisition` {acq!r}.")
            beta = request.get("beta")
            if beta is not None:
                beta = _number(request, "beta")
                if beta < 0:
                    raise ValueError(f"`beta` must be >= 0, got {beta}.")
            scal = request.get("scalarizer")
            if scal is not None:
                parse_scalarizer(str(scal))
            if acq is None and beta is None and scal is None:
                raise ValueError("a `policy` change needs `acquisition`, `beta` or `scalarizer`.")
            a.update(
                acquisition=acq,
                beta=beta,
                scalarizer=scal,
                reason=str(request.get("reason", ""))[:500],
            )
        self._actions.put(a)
        return {"ok": True}

    def _label(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.stream is None:
            raise ValueError("there are no frames to label (start with a SOURCE).")
        frame = request.get("frame")
        if not isinstance(frame, int):
            raise ValueError("`frame` must be the integer index of a frame shown on the page.")
        kind = request.get("kind")
        if kind not in ("false", "missed"):
            raise ValueError(f"`kind` must be false or missed, got {kind!r}.")
        x, y = _number(request, "x_px"), _number(request, "y_px")
        with self._lock:
            if frame not in self._frames:
                raise ValueError(f"frame {frame} is no longer kept; label a recent frame.")
            h, w = self._frames[frame].shape
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"x_px={x}, y_px={y} is outside frame {frame} ({w}×{h} px).")
        lab: dict[str, Any] = {"kind": kind, "x_px": x, "y_px": y}
        if kind == "missed":
            cls = request.get("class")
            names = tuple(self.stream.ensemble.config.class_names)
            if cls is not None and cls not in names:
                raise ValueError(f"`class` {cls!r} is not one of the model's {names}.")
            lab["class"] = cls or names[0]
        with self._lock:
            self.labels.setdefault(frame, []).append(lab)
        digest = hashlib.sha256(np.ascontiguousarray(self._frames[frame]).tobytes()).hexdigest()
        self.log.append(
            "human", "label", inputs={"frame": frame, **lab}, files={f"frame/{frame}": digest}
        )
        self._publish_status()
        return {"ok": True, "labels": len(self.labels[frame])}


def _number(request: dict[str, Any], name: str) -> float:
    v = request.get(name)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"`{name}` must be a finite number, got {v!r}.")
    return float(v)
