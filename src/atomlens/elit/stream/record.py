"""What the live loop reports for one frame: :class:`FrameRecord`, and its row of
``frames.csv``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["FRAME_COLUMNS", "LATENCY_STAGES", "FrameRecord"]

#: The stages of a frame's latency, each a ``<stage>_s`` column of ``frames.csv``: those of
#: :attr:`atomlens.pipeline.FindResult.seconds` and the OOD ``score``.
LATENCY_STAGES = ("normalise", "network", "peaks", "consensus", "refinement", "sigma", "score")

#: The columns of ``frames.csv`` (:meth:`FrameRecord.row`), in order.
FRAME_COLUMNS = [
    "frame",
    "name",
    "n_atoms",
    "latency_s",
    "score",
    "baseline",
    "ratio",
    "over",
    "generation",
    "members",
    "pixel_size_A",
    *(f"{stage}_s" for stage in LATENCY_STAGES),
]


@dataclass(frozen=True, eq=False)
class FrameRecord:
    """What the stream reports for one frame.

    Attributes
    ----------
    index : int
        Position of the frame in the source (skipped frames count).
    name : str
        ``"frame 7"`` for arrays, the file name (``"a.tif[3]"`` for frame 3 of a stack).
    n_atoms : int
        Atoms found.
    latency_s : float
        Time from the frame being in memory to its atoms and score [s] (reading the file
        and decisions taken after it are not included).
    score : float
        OOD score (:func:`atomlens.elit.stream.ood_score`) [nats].
    baseline : float
        Baseline level of the active ensemble [nats]; NaN until it is known.
    ratio : float
        ``score / baseline``.
    over : bool
        ``ratio > drift_ratio``.
    generation : int
        Adaptations swapped in so far (0: the weights passed in).
    members : tuple of int
        Active members, as indices into the ensemble passed in (into the last adapted
        ensemble once ``generation`` > 0).
    pixel_size : float
        [Å/px].
    atoms : pandas.DataFrame
        The atoms (:attr:`atomlens.pipeline.finder.FindResult.atoms`).
    frame : ndarray of shape (H, W) or None
        The frame as it was found on (for a display such as :mod:`atomlens.live`).
    prediction : Prediction or None
        The ensemble's prediction on it (mean and uncertainty maps), for the same.
    seconds : dict of str to float
        ``latency_s`` per stage [s] (:data:`LATENCY_STAGES`).
    """

    index: int
    name: str
    n_atoms: int
    latency_s: float
    score: float
    baseline: float
    ratio: float
    over: bool
    generation: int
    members: tuple[int, ...]
    pixel_size: float
    atoms: pd.DataFrame
    frame: Any = field(default=None, repr=False)
    prediction: Any = field(default=None, repr=False)
    seconds: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The record without its atoms, as one row of ``frames.csv``."""
        return {
            "frame": self.index,
            "name": self.name,
            "n_atoms": self.n_atoms,
            "latency_s": self.latency_s,
            "score": self.score,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "over": self.over,
            "generation": self.generation,
            "members": " ".join(str(m) for m in self.members),
            "pixel_size_A": self.pixel_size,
            **{f"{k}_s": self.seconds.get(k, 0.0) for k in LATENCY_STAGES},
        }
