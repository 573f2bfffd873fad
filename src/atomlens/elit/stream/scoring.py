"""How far a frame is from the ensemble's training data: the OOD score of one frame, the
baseline level it is read against, and the count of frames over it that declares drift.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from atomlens.elit.stream.config import StreamConfig
from atomlens.simulate import ImagingConditions, simulate_image

__all__ = [
    "BASELINE_FLOOR",
    "Baseline",
    "DriftState",
    "baseline_level",
    "ood_score",
    "reference_frames",
    "score_kind",
    "simulated_baseline_frames",
]

logger = logging.getLogger(__name__)

#: The lowest baseline level [nats]: a ratio to an ensemble that agrees everywhere stays finite.
BASELINE_FLOOR = 1e-9


def ood_score(
    prediction: Any,
    /,
    *,
    kind: Literal["epistemic", "entropy"] = "epistemic",
    foreground: float = 0.1,
) -> float:
    """Out-of-distribution score of one frame, from the ensemble's prediction [nats].

    The mean, over the pixels whose mean foreground probability is at least
    ``foreground``, of the mutual information between the members (``"epistemic"``) or of
    the predictive entropy (``"entropy"``). When fewer than 1 % of the pixels qualify (the
    ensemble sees no atoms at all), the mean over the whole frame.

    Parameters
    ----------
    prediction : Prediction
        :attr:`atomlens.pipeline.finder.FindResult.prediction`.
    kind : {"epistemic", "entropy"}
        Which uncertainty.
    foreground : float
        Foreground probability from which a pixel is scored.

    Returns
    -------
    float
        The score [nats].

    Examples
    --------
    >>> import numpy as np
    >>> from atomlens.ensemble import decompose
    >>> agree = np.stack([np.array([[[0.2, 0.95]], [[0.8, 0.05]]])] * 2)  # 2 members, 1×2 px
    >>> ood_score(decompose(agree, class_names=("C",)))
    0.0
    >>> split = np.array([[[[0.2, 0.95]], [[0.8, 0.05]]], [[[0.8, 0.95]], [[0.2, 0.05]]]])
    >>> round(ood_score(decompose(split, class_names=("C",))), 3)  # the atom pixel only
    0.193
    """
    if kind == "epistemic":
        u = np.asarray(prediction.mutual_information, dtype=np.float64)
    elif kind == "entropy":
        u = np.asarray(prediction.predictive_entropy, dtype=np.float64)
    else:
        raise ValueError(f"kind must be 'epistemic' or 'entropy', got {kind!r}.")
    fg = 1.0 - np.asarray(prediction.mean[0], dtype=np.float64)
    region = fg >= foreground
    if region.sum() < max(1, 0.01 * region.size):
        return float(u.mean())
    return float(u[region].mean())


def score_kind(ensemble: Any, /) -> str:
    """``"entropy"`` for an ensemble of one (it has no epistemic part), else ``"epistemic"``."""
    return "entropy" if len(ensemble) == 1 else "epistemic"


def baseline_level(scores: Sequence[float], /) -> float:
    """The baseline of a few training-like frames' scores: their median [nats], at least
    :data:`BASELINE_FLOOR`."""
    return max(float(np.median(scores)), BASELINE_FLOOR)


def simulated_baseline_frames(
    ensemble: Any, config: StreamConfig, /, *, pixel_size: float, shape: tuple[int, ...]
) -> list[np.ndarray]:
    """``config.baseline_frames`` noise-realistic frames of the ensemble's training material
    at the stream's pixel size [Å/px] and field of view (at most ``config.baseline_side``
    px a side), seeded from ``config.seed``.

    Raises
    ------
    ValueError
        The ensemble does not record its training material; the message names the other
        baselines.
    """
    c = ensemble.config
    mats = (c.provenance or {}).get("materials") or []
    if not mats:
        raise ValueError(
            "the ensemble does not record the material it was trained on (provenance "
            "'materials'), so no simulated baseline can be made; pass reference frames "
            "(StreamConfig(baseline='reference'), reference=[...]) or use "
            "StreamConfig(baseline='first')."
        )
    side = config.baseline_side
    shp = (min(shape[0], side), min(shape[1], side))
    cond = ImagingConditions(mode=c.contrast, dose_e_per_A2=config.baseline_dose)
    return [
        simulate_image(
            mats[0], shape=shp, pixel_size=pixel_size, conditions=cond, rng=config.seed + i
        ).image
        for i in range(config.baseline_frames)
    ]


def reference_frames(reference: Sequence[Any] | None, config: StreamConfig, /) -> list[np.ndarray]:
    """The user's reference frames as finite float32 images; none unless
    ``config.baseline`` is ``"reference"``.

    Raises
    ------
    ValueError
        Reference frames without ``baseline="reference"`` or the other way round, or a
        frame that is not a finite 2-D image.
    """
    if reference is not None and config.baseline != "reference":
        raise ValueError(
            f"reference frames were given but config.baseline is {config.baseline!r}; "
            "use StreamConfig(baseline='reference') or leave reference out."
        )
    if config.baseline != "reference":
        return []
    if reference is None or len(reference) == 0:
        raise ValueError("config.baseline='reference' needs reference frames (reference=[...]).")
    frames = []
    for i, f in enumerate(reference):
        a = np.asarray(f, dtype=np.float32)
        if a.ndim != 2 or not np.isfinite(a).all():
            raise ValueError(
                f"reference frame {i} must be a finite 2-D image, got shape {a.shape}"
                + ("" if a.ndim != 2 else " with NaN/inf pixels")
                + "."
            )
        frames.append(a)
    return frames


class Baseline:
    """The frames the baseline level is measured on, their pixel size and the level.

    Parameters
    ----------
    config : StreamConfig
        Its ``baseline`` (where the frames come from), ``baseline_frames`` and the
        settings of the simulated frames.
    reference : list of ndarray of shape (H, W)
        The reference frames (:func:`reference_frames`).

    Attributes
    ----------
    level : float or None
        The baseline [nats]; None until measured.
    pixel_size : float or None
        Of the baseline frames [Å/px].
    frames : list of ndarray of shape (H, W)
        The baseline frames, measured again for each new active ensemble.
    version : int
        Counts the changes of :attr:`frames` (scores made on other frames are refused by
        :meth:`accept`).
    """

    def __init__(self, config: StreamConfig, reference: list[np.ndarray]) -> None:
        self.config = config
        self.reference = reference
        self.level: float | None = None
        self.pixel_size: float | None = None
        self.frames: list[np.ndarray] = []
        self.version = 0
        self._first_scores: list[float] = []
        self._warned_ps = False

    @property
    def ready(self) -> bool:
        """Whether there are frames to measure a new ensemble's baseline on."""
        return self.pixel_size is not None and bool(self.frames)

    def prepare(
        self, ensemble: Any, index: int, shape: tuple[int, ...], pixel_size: float
    ) -> tuple[int | None, str] | None:
        """Get the frames ready for frame ``index`` of ``shape`` at ``pixel_size`` [Å/px].

        Returns
        -------
        tuple or None
            ``(frame, reason)`` when the baseline must be measured now (``frame`` None at
            the start); None otherwise. Simulated frames are made again when the pixel size
            changes by more than 2 %; other baselines then only warn, once.
        """
        mode = self.config.baseline
        ps = pixel_size
        if self.pixel_size is not None and abs(ps / self.pixel_size - 1) > 0.02:
            if mode == "simulated":
                self.pixel_size = ps
                self.frames = simulated_baseline_frames(
                    ensemble, self.config, pixel_size=ps, shape=shape
                )
                self.version += 1
                return index, f"the pixel size changed to {ps:.4g} Å/px"
            if not self._warned_ps:
                self._warned_ps = True
                logger.warning(
                    "frame %d is at %.4g Å/px, the %s baseline at %.4g Å/px; scores may not "
                    "compare",
                    index,
                    ps,
                    mode,
                    self.pixel_size,
                )
            return None
        if self.pixel_size is not None or mode == "first":
            return None
        self.pixel_size = ps
        if mode == "simulated":
            self.frames = simulated_baseline_frames(
                ensemble, self.config, pixel_size=ps, shape=shape
            )
        else:
            self.frames = list(self.reference)
        self.version += 1
        return None, "start"

    def measure(self, score: Callable[[np.ndarray, float], float], /) -> list[float]:
        """Score every baseline frame with ``score(frame, pixel_size)``; the scores, whose
        :func:`baseline_level` becomes :attr:`level`."""
        scores = [score(f, self.pixel_size) for f in self.frames]
        self.level = baseline_level(scores)
        return scores

    def accept(self, scores: Sequence[float], /, *, version: int) -> list[float]:
        """Take scores of the baseline frames measured elsewhere (an adapted ensemble's, in
        the adaptation's job) as :meth:`measure` would have made them.

        Parameters
        ----------
        scores : sequence of float
            One OOD score [nats] per baseline frame.
        version : int
            :attr:`version` when the frames were handed out for scoring.

        Returns
        -------
        list of float
            The scores; :attr:`level` is set from them.

        Raises
        ------
        ValueError
            The frames changed since (another ``version``) or the count differs.
        """
        if version != self.version or len(scores) != len(self.frames):
            raise ValueError(
                f"{len(scores)} scores of baseline frames version {version}; the frames now "
                f"are {len(self.frames)}, version {self.version}"
            )
        self.level = baseline_level(scores)
        return list(scores)

    def add_first(self, frame: np.ndarray, pixel_size: float, score: float) -> list[float] | None:
        """Keep one of the stream's first frames (``baseline="first"``); their scores once
        there are ``baseline_frames`` of them and :attr:`level` is set, else None."""
        self._first_scores.append(score)
        self.frames.append(frame)
        self.version += 1
        if len(self._first_scores) < self.config.baseline_frames:
            return None
        self.pixel_size = pixel_size
        self.level = baseline_level(self._first_scores)
        return list(self._first_scores)


@dataclass
class DriftState:
    """Consecutive frames over (``n_over``) and under (``n_under``) the drift ratio, and
    whether a drift episode is on (``active``): ``patience`` frames over start one,
    ``patience`` frames under end it."""

    patience: int
    n_over: int = 0
    n_under: int = 0
    active: bool = False

    def reset(self) -> None:
        """Start counting afresh (a new baseline); an episode on stays on."""
        self.n_over = self.n_under = 0

    def update(self, over: bool, /) -> Literal["drift", "recovered"] | None:
        """Count one frame; ``"drift"`` or ``"recovered"`` when an episode starts or ends."""
        if over:
            self.n_over, self.n_under = self.n_over + 1, 0
        else:
            self.n_over, self.n_under = 0, self.n_under + 1
        if not self.active and self.n_over >= self.patience:
            self.active = True
            return "drift"
        if self.active and self.n_under >= self.patience:
            self.active = False
            return "recovered"
        return None
