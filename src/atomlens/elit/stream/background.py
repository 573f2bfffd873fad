"""Adaptation in the background: one :func:`atomlens.elit.adapt.adapt` at a time on an
executor (a one-thread ``ThreadPoolExecutor`` unless one is passed, or a
``dask.distributed.Client``), while the loop goes on with the live ensemble."""

from __future__ import annotations

import copy
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from atomlens.elit.adapt import AdaptConfig, adapt
from atomlens.ensemble import Ensemble

__all__ = ["BackgroundAdaptation", "Finished", "check_adapted"]

logger = logging.getLogger(__name__)


def _is_dask(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed"


def _yielding(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in this thread at a lower CPU priority (nice + 10, Linux
    only: there a thread has its own), so that the live loop's frames are not queued behind
    an adaptation for the CPU: on 2 cores a training thread at equal priority took half of
    them from every frame (``benchmarks/stream_latency.py --adapt``). The threads torch
    starts from here inherit it."""
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))
        except OSError:  # not permitted here: the adaptation runs at the loop's priority
            logger.debug("could not lower the adaptation thread's priority")
    return fn(*args, **kwargs)


def check_adapted(new: Any, current: Ensemble, /) -> None:
    """Refuse what an adaptation returned unless it is an ensemble with ``current``'s
    classes and sampling.

    Raises
    ------
    TypeError, ValueError
        Not an :class:`atomlens.ensemble.Ensemble`, or other classes or sampling.
    """
    if not isinstance(new, Ensemble):
        raise TypeError(f"the adaptation returned {type(new).__name__}, not an Ensemble")
    a, b = new.config, current.config
    if (a.class_names, a.pixel_size_A) != (b.class_names, b.pixel_size_A):
        raise ValueError("the adapted ensemble has other classes or another sampling")


def _kept_any(result: Any) -> bool:
    """Whether an adaptation's result holds a new ensemble (no history: assume so)."""
    history = getattr(result, "history", None)
    if isinstance(history, pd.DataFrame) and "kept" in history:
        return bool(history["kept"].iloc[1:].sum() > 0)
    return True


def _then(
    fn: Callable[..., Any], after: Callable[[Any], dict[str, Any]] | None, /, *args: Any, **kw: Any
) -> tuple[Any, dict[str, Any]]:
    """``fn(*args, **kw)`` and what ``after`` measured on the ensemble it returned (empty
    when nothing was kept, or when ``after`` failed: the loop then measures it itself)."""
    result = fn(*args, **kw)
    if after is None or not _kept_any(result):
        return result, {}
    try:
        return result, after(getattr(result, "ensemble", result))
    except Exception as exc:  # any failure: the loop measures it itself instead
        logger.warning("measuring the adapted ensemble in the background failed: %s", exc)
        return result, {}


@dataclass(frozen=True)
class Finished:
    """An adaptation collected by :meth:`BackgroundAdaptation.collect`.

    Attributes
    ----------
    ensemble : Ensemble or None
        The adapted ensemble; None when it failed or ``adapt`` kept no round.
    evidence : dict
        ``launched_at`` (frame), ``at_end`` (when waited for at the end), ``seconds``
        since the launch and, for an :class:`atomlens.elit.adapt.AdaptResult`,
        ``rounds_kept``.
    error : str or None
        What went wrong (``"TypeName: message"``), None if nothing.
    measured : dict
        What :meth:`BackgroundAdaptation.launch`'s ``after`` measured on the adapted
        ensemble in the adaptation's thread (empty if nothing).
    """

    ensemble: Ensemble | None
    evidence: dict[str, Any]
    error: str | None = None
    measured: dict[str, Any] = field(default_factory=dict)


class BackgroundAdaptation:
    """At most one adaptation running, and what it was launched on.

    Parameters
    ----------
    adapt_fn : callable, optional
        Called as ``adapt_fn(ensemble, frames, pixel_size=..., config=...)``;
        :func:`atomlens.elit.adapt.adapt` if omitted.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Where it runs; a one-thread ``ThreadPoolExecutor``, made when first needed and shut
        down by :meth:`shutdown`, if omitted (one passed in is left open).

    Raises
    ------
    TypeError
        ``adapt_fn`` is not callable, or ``executor`` has no ``submit``.

    Attributes
    ----------
    info : dict
        Of the running one: ``frame`` (where it was launched), ``t0``
        (``time.perf_counter()`` then), ``members`` and ``frames``; empty when none runs.
    """

    def __init__(self, adapt_fn: Callable[..., Any] | None, executor: Any) -> None:
        if adapt_fn is not None and not callable(adapt_fn):
            raise TypeError(f"adapt_fn must be callable, got {adapt_fn!r}.")
        if executor is not None and not callable(getattr(executor, "submit", None)):
            raise TypeError(
                "executor must have a submit method (concurrent.futures.Executor or "
                f"dask.distributed.Client), got {type(executor).__name__}."
            )
        self._adapt_fn = adapt_fn
        self._executor = executor
        self._own_executor: ThreadPoolExecutor | None = None
        self._future: Any = None
        self.info: dict[str, Any] = {}

    @property
    def running(self) -> bool:
        """Whether an adaptation was launched and not yet collected."""
        return self._future is not None

    def launch(
        self,
        ensemble: Ensemble,
        frames: list[np.ndarray],
        *,
        pixel_size: float,
        config: AdaptConfig | None,
        at: int,
        members: tuple[int, ...],
        indices: list[int],
        after: Callable[[Ensemble], dict[str, Any]] | None = None,
    ) -> str:
        """Submit the adaptation of a copy of ``ensemble`` on ``frames`` (those of the
        source's ``indices``), launched at frame ``at`` with the active ``members``; the
        executor's type name. ``after``, if given, runs on the adapted ensemble in the same
        job (e.g. its baseline scores, so that the loop need not stop for them); its dict
        comes back as :attr:`Finished.measured`."""
        fn = self._adapt_fn if self._adapt_fn is not None else adapt
        cfg = config if config is not None else AdaptConfig()
        ex = self._executor
        if ex is None:
            if self._own_executor is None:
                self._own_executor = ThreadPoolExecutor(1, thread_name_prefix="atomlens-adapt")
            ex = self._own_executor
        extra = {"pure": False} if _is_dask(ex) else {}
        # a copy: the loop keeps predicting with the live ensemble while this one trains
        ens = copy.deepcopy(ensemble)
        ens._stacked = ens._fast = None  # the copy makes its own inference copies if needed
        fn = functools.partial(_then, fn, after)
        if ex is self._own_executor:  # our thread: it yields the CPU to the loop
            fn = functools.partial(_yielding, fn)
        self._future = ex.submit(fn, ens, list(frames), pixel_size=pixel_size, config=cfg, **extra)
        self.info = {"frame": at, "t0": time.perf_counter(), "members": members, "frames": indices}
        return type(ex).__name__

    def collect(self, current: Ensemble, /, *, wait: bool = False) -> Finished | None:
        """The adaptation that finished (waited for, if ``wait``), checked against the
        active ensemble ``current`` and no longer running; None when none runs or it has
        not finished."""
        fut = self._future
        if fut is None:
            return None
        if wait:
            logger.info(
                "the source ended; waiting for the adaptation launched at frame %s",
                self.info.get("frame"),
            )
        elif not fut.done():
            return None
        info = self.info
        self._future, self.info = None, {}
        ev: dict[str, Any] = {"launched_at": info["frame"]}
        if wait:
            ev["at_end"] = True
        try:
            result, measured = fut.result()
            new = getattr(result, "ensemble", result)
            check_adapted(new, current)
        except Exception as exc:
            ev["seconds"] = time.perf_counter() - info["t0"]
            return Finished(None, ev, f"{type(exc).__name__}: {exc}")
        ev["seconds"] = time.perf_counter() - info["t0"]
        history = getattr(result, "history", None)
        if isinstance(history, pd.DataFrame) and "kept" in history:
            ev["rounds_kept"] = int(history["kept"].iloc[1:].sum())
            if ev["rounds_kept"] == 0:
                # every round was undone by adapt's guards: nothing to swap in
                return Finished(None, ev)
        return Finished(new, ev, measured=measured)

    def shutdown(self) -> None:
        """Shut down the executor made here (its queued work cancelled)."""
        if self._own_executor is not None:
            self._own_executor.shutdown(wait=False, cancel_futures=True)
            self._own_executor = None
