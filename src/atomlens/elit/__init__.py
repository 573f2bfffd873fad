"""ELIT: ensemble learning and iterative training for new imaging conditions without labels
(Ghosh, Sumpter, Dyck, Kalinin, Ziatdinov, npj Comput. Mater. 7, 100 (2021)).

- :func:`select` ranks the members of an ensemble on unlabeled frames;
- :func:`adapt` trains the members on their own confident atoms, round by round, with
  uncertain regions left out of the loss and a guard on held-out frames, optionally on
  simulated images that carry the frames' own background and noise
  (:class:`atomlens.elit.sources.FrameStyledSource`, fitted by :mod:`atomlens.elit.style`);
  with ``checkpoint=default_checkpoint(out)`` it keeps its finished rounds
  (:class:`AdaptCheckpoint`) and resumes after an interruption;
- :func:`recalibrate` measures an ensemble's calibration (``p_real``, σ) on simulated
  images in the frames' look, as :func:`adapt` does for every round it keeps;
- :func:`stream` runs the live loop: atoms per frame, a drift score against training-like
  data, and selection or background adaptation when the conditions change.

See ``docs/elit.md``.
"""

from atomlens.elit.adapt import AdaptConfig, AdaptResult, adapt, pseudo_labels
from atomlens.elit.checkpoint import AdaptCheckpoint, default_checkpoint, finished_rounds
from atomlens.elit.recalibrate import recalibrate
from atomlens.elit.select import Selection, default_n_best, select
from atomlens.elit.stream import FrameRecord, Stream, StreamConfig, ood_score, stream

__all__ = [
    "AdaptCheckpoint",
    "AdaptConfig",
    "AdaptResult",
    "FrameRecord",
    "Selection",
    "Stream",
    "StreamConfig",
    "adapt",
    "default_checkpoint",
    "default_n_best",
    "finished_rounds",
    "ood_score",
    "pseudo_labels",
    "recalibrate",
    "select",
    "stream",
]
