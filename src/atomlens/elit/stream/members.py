"""Which members are active: the ``p_real`` threshold they can apply, and choosing members
with :func:`atomlens.elit.select.select` on drifted frames."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from atomlens.elit.select import select
from atomlens.elit.stream.config import StreamConfig
from atomlens.ensemble import Ensemble
from atomlens.pipeline import p_real_threshold

__all__ = ["Choice", "p_real_applied", "select_members"]


def p_real_applied(ensemble: Any, config: StreamConfig, /) -> float | None:
    """The ``p_real`` threshold ``find`` applies with ``ensemble``, or None where it lacks
    the calibration it needs (members chosen by ``select``)."""
    try:
        return p_real_threshold(ensemble, config.p_real_min)
    except ValueError:  # the value itself was checked by StreamConfig
        return None


@dataclass(frozen=True)
class Choice:
    """The members :func:`select_members` chose.

    Attributes
    ----------
    members : tuple of int
        Their indices into the pool, sorted.
    ensemble : Ensemble or None
        Those members as an ensemble without calibration; None when they are the active
        ones already.
    seconds : float
        How long ``select`` took [s].
    ranking : list of dict
        ``select``'s scores of every member, one dict per member.
    """

    members: tuple[int, ...]
    ensemble: Ensemble | None
    seconds: float
    ranking: list[dict[str, Any]]


def select_members(
    pool: Ensemble,
    frames: list[np.ndarray],
    /,
    *,
    pixel_size: float,
    n_best: int,
    device: str,
    active: tuple[int, ...],
) -> Choice:
    """The ``n_best`` members of ``pool`` that :func:`atomlens.elit.select.select` prefers
    on ``frames`` at ``pixel_size`` [Å/px], compared with the ``active`` ones."""
    t = time.perf_counter()
    sel = select(pool, frames, pixel_size=pixel_size, n_best=n_best, device=device)
    seconds = time.perf_counter() - t
    chosen = tuple(sorted(int(m) for m in sel.chosen))
    ranking = sel.scores.to_dict(orient="records")
    if chosen == tuple(sorted(active)):
        return Choice(chosen, None, seconds, ranking)
    sub = Ensemble(
        [pool.networks[i] for i in chosen],
        pool.config,
        [pool.member_provenance[i] for i in chosen],
    )
    # the calibration described all members together, not this subset
    sub.calibration = None
    return Choice(chosen, sub, seconds, ranking)
