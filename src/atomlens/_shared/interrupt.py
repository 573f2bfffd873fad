"""Ctrl-C that loses nothing: the first SIGINT is deferred to a point where the work can be
saved (the end of a training step), a second one stops at once."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["deferred_interrupt"]

logger = logging.getLogger(__name__)


@contextmanager
def deferred_interrupt(what: str = "the current step") -> Iterator[Callable[[], bool]]:
    """Defer the first Ctrl-C (SIGINT) inside the block.

    Yields a function that says whether Ctrl-C was pressed: a loop checks it at a point
    where it can save its state, saves, and raises :class:`KeyboardInterrupt` itself. A
    second Ctrl-C raises at once. Outside the main thread (where Python cannot install
    signal handlers) nothing is deferred and the function always says False.

    Parameters
    ----------
    what : str
        What finishes before the stop, for the log line (e.g. "this training step").
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    pressed: list[bool] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if pressed:
            raise KeyboardInterrupt
        pressed.append(True)
        logger.warning(
            "interrupted: finishing %s and saving a checkpoint (Ctrl-C again stops at once)",
            what,
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(pressed)
    finally:
        signal.signal(signal.SIGINT, previous)
