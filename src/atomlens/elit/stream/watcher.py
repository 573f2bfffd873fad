"""Following a directory that is being filled: its image files in name order, each once it
has stopped changing, until no new file has come for a while."""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from pathlib import Path

from atomlens.io import SUFFIXES

__all__ = ["signature", "watch"]

logger = logging.getLogger(__name__)

Signature = tuple[int, int]


def signature(path: Path, /) -> Signature | None:
    """``(size, mtime_ns)`` of ``path``, or None when it cannot be looked at (gone)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def watch(
    directory: Path, /, *, poll_s: float, settle_s: float, idle_timeout_s: float
) -> Generator[tuple[Path, Signature], bool | None, None]:
    """Files of a growing directory, in name order as they settle; ends after the idle
    timeout.

    The image files (the suffixes :func:`atomlens.io.expand_inputs` takes from a
    folder; hidden ones, such as partial copies, left out) are listed every ``poll_s``
    [s]. A file is yielded with its :func:`signature` once that has not changed for
    ``settle_s`` [s] (at once if it was already that old when first seen), and only once.
    The consumer may ``send`` True to have it looked at again when it changes (it could
    not be read). The generator returns when no file has appeared or been changing for
    ``idle_timeout_s`` [s]; empty files do not count as changing.

    The listing is this module's own rather than ``expand_inputs``: a folder that holds no
    image yet is the normal start of a run here, and a file already done is not looked at
    (stat) again on each poll, which matters on a network share.

    Raises
    ------
    FileNotFoundError
        The directory can no longer be listed.
    """
    done: dict[Path, Signature] = {}
    retry: dict[Path, Signature] = {}
    seen: dict[Path, tuple[Signature, float]] = {}
    last = time.monotonic()
    while True:
        now = time.monotonic()
        ready = []
        try:
            names = sorted(directory.iterdir())
        except OSError as exc:
            raise FileNotFoundError(f"{directory} can no longer be listed: {exc}") from None
        for f in names:
            if f.name.startswith(".") or f.suffix.lower() not in SUFFIXES or f in done:
                continue
            sig = signature(f)
            if sig is None or not f.is_file() or retry.get(f) == sig:
                continue
            prev = seen.get(f)
            if prev is not None and prev[0] == sig:
                if sig[0] > 0 and now - prev[1] >= settle_s:
                    ready.append((f, sig))
                continue
            seen[f] = (sig, now)
            last = now
            # a file already there, untouched for settle_s (by its mtime), is ready at once
            if prev is None and sig[0] > 0 and time.time() - sig[1] / 1e9 >= settle_s:
                ready.append((f, sig))
        present = set(names)
        for f in [f for f in seen if f not in present]:  # removed before it settled
            del seen[f]
        for f, sig in ready:
            again = yield f, sig
            seen.pop(f, None)
            if again:
                retry[f] = sig
            else:
                done[f] = sig
                retry.pop(f, None)
        now = time.monotonic()
        # files that are there but still settling keep the stream alive (empty ones do not)
        pending = any(sig[0] > 0 for sig, _t in seen.values())
        if ready or pending:
            last = now
        elif now - last >= idle_timeout_s:
            logger.info("no new file in %s for %.3g s; the stream ends", directory, idle_timeout_s)
            return
        time.sleep(poll_s)
