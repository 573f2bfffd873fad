"""Seconds spent per stage of a computation, recorded only when someone asks.

Library code marks its stages with :func:`stage`; a caller that wants the figures wraps
the call in :func:`record_stages`. Outside a recording a stage costs one context-variable
lookup. Stages may nest: each records its own time, without that of the stages inside it,
so the figures add up to the wall time of the recording.

Examples
--------
>>> import time
>>> with record_stages() as seconds:
...     with stage("network"):
...         time.sleep(0.01)
>>> sorted(seconds), seconds["network"] >= 0.01
(['network'], True)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["record_stages", "stage"]

# (seconds per stage, stack of [name, start, seconds of nested stages])
_RECORD: ContextVar[tuple[dict[str, float], list[list]] | None] = ContextVar(
    "atomlens_stage_record", default=None
)


@contextmanager
def record_stages() -> Iterator[dict[str, float]]:
    """Record the stages run inside the ``with`` block.

    Yields
    ------
    dict of str to float
        Stage name → seconds [s], filled as the stages end (exclusive of nested stages).
    """
    seconds: dict[str, float] = {}
    token = _RECORD.set((seconds, []))
    try:
        yield seconds
    finally:
        _RECORD.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Count the time of the ``with`` block towards stage ``name`` of the recording, if any."""
    rec = _RECORD.get()
    if rec is None:
        yield
        return
    seconds, stack = rec
    frame = [name, time.perf_counter(), 0.0]
    stack.append(frame)
    try:
        yield
    finally:
        stack.pop()
        total = time.perf_counter() - frame[1]
        seconds[name] = seconds.get(name, 0.0) + total - frame[2]
        if stack:
            stack[-1][2] += total
