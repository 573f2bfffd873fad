"""The settings of the live loop: :class:`StreamConfig`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from atomlens._shared.config import ConfigDict
from atomlens.elit.adapt import AdaptConfig

__all__ = ["OnDrift", "StreamConfig"]

OnDrift = Literal["select", "adapt", "both", "none"]


@dataclass(frozen=True)
class StreamConfig(ConfigDict):
    """Settings of :func:`atomlens.elit.stream.stream`.

    Parameters
    ----------
    drift_ratio : float
        A frame is over when its OOD score exceeds this multiple of the baseline (> 1).
    patience : int
        Consecutive frames over (under) before drift is declared (ended).
    window : int
        Recent frames kept for ``select`` and ``adapt`` (≥ ``patience``); the frames of
        the window that are over are used.
    on_drift : {"select", "adapt", "both", "none"}
        What to do when drift is declared (see :mod:`atomlens.elit.stream`).
    n_best : int, optional
        Members to switch to on ``"select"``; by default half of them, at least 2.
    adapt : AdaptConfig, optional
        Settings of the adaptation; ``AdaptConfig()`` if omitted.
    score : {"epistemic", "entropy"}
        OOD score: mutual information between members, or predictive entropy [nats].
    foreground : float
        Pixels whose mean foreground probability is at least this are scored.
    baseline : {"simulated", "reference", "first"}
        Where the baseline level comes from (see :mod:`atomlens.elit.stream`).
    baseline_frames : int
        Frames the baseline is the median of (simulated, or the stream's first).
    baseline_dose : float
        Dose of the simulated baseline frames [e⁻/Å²].
    baseline_side : int
        Largest side of the simulated baseline frames [px].
    p_min : float
        Share of members that must find an atom (as in :func:`atomlens.pipeline.finder.find`).
    p_real_min : float or "auto", optional
        Reject the candidates whose calibrated ``p_real`` is below this (as in
        :func:`atomlens.pipeline.finder.find`; ``"auto"``: the calibration's F1-best threshold).
        The starting ensemble must be calibrated (with the F1 per threshold for
        ``"auto"``). Members chosen by ``select`` have no calibration of their own (it
        described all members together): while they are active nothing is rejected by
        ``p_real``, and a ``"p_real_off"`` decision says so; an adapted ensemble is
        calibrated by ``adapt`` and rejects again (``"p_real_on"``).
    poll_s : float
        How often a directory is listed [s].
    settle_s : float
        A file is read once its size and modification time have not changed for this
        long [s] (so that files still being written are not read half-way).
    idle_timeout_s : float
        A directory stream ends when no new file has appeared for this long [s].
    finish_adaptation : bool
        When the source ends with an adaptation running, wait for it (and swap it in, so
        that :attr:`Stream.ensemble` is the adapted one); otherwise leave it.
    seed : int
        Seed of the simulated baseline frames.

    Examples
    --------
    >>> StreamConfig(drift_ratio=3.0, on_drift="none").patience
    3
    >>> StreamConfig(patience=0, on_drift="retrain")
    Traceback (most recent call last):
    ...
    ValueError: invalid StreamConfig: patience must be an int ≥ 1, got 0; on_drift must be ...
    """

    drift_ratio: float = 2.0
    patience: int = 3
    window: int = 6
    on_drift: OnDrift = "select"
    n_best: int | None = None
    adapt: AdaptConfig | None = None
    score: Literal["epistemic", "entropy"] = "epistemic"
    foreground: float = 0.1
    baseline: Literal["simulated", "reference", "first"] = "simulated"
    baseline_frames: int = 3
    baseline_dose: float = 1e5
    baseline_side: int = 256
    p_min: float = 0.5
    p_real_min: float | str | None = None
    poll_s: float = 0.2
    settle_s: float = 0.5
    idle_timeout_s: float = 60.0
    finish_adaptation: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        errors = []

        def number(name: str, ok: Callable[[float], bool], want: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not ok(float(v)):
                errors.append(f"{name} must be {want}, got {v!r}")

        def integer(name: str, low: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                errors.append(f"{name} must be an int ≥ {low}, got {v!r}")

        number(
            "drift_ratio",
            lambda v: math.isfinite(v) and v > 1,
            "a number > 1 (a multiple of the baseline)",
        )
        integer("patience", 1)
        integer("window", 1)
        if isinstance(self.window, int) and isinstance(self.patience, int):
            if self.window < self.patience:
                errors.append(f"window ({self.window}) must be ≥ patience ({self.patience})")
        choices = {
            "on_drift": ("select", "adapt", "both", "none"),
            "score": ("epistemic", "entropy"),
            "baseline": ("simulated", "reference", "first"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                errors.append(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.n_best is not None:
            integer("n_best", 1)
        if self.adapt is not None and type(self.adapt).__name__ != "AdaptConfig":
            errors.append(f"adapt must be an atomlens.elit.adapt.AdaptConfig, got {self.adapt!r}")
        number("foreground", lambda v: 0 <= v < 1, "within [0, 1)")
        integer("baseline_frames", 1)
        number("baseline_dose", lambda v: math.isfinite(v) and v > 0, "a positive dose [e⁻/Å²]")
        integer("baseline_side", 32)
        number("p_min", lambda v: 0 < v <= 1, "within (0, 1]")
        if self.p_real_min is not None and self.p_real_min != "auto":
            number("p_real_min", lambda v: 0 <= v <= 1, "None, 'auto' or within [0, 1]")
        for name in ("poll_s", "settle_s", "idle_timeout_s"):
            number(name, lambda v: math.isfinite(v) and v >= 0, "a non-negative time [s]")
        if not isinstance(self.finish_adaptation, bool):
            errors.append(
                f"finish_adaptation must be True or False, got {self.finish_adaptation!r}"
            )
        integer("seed", 0)
        if errors:
            raise ValueError("invalid StreamConfig: " + "; ".join(errors) + ".")

    @classmethod
    def _nested_from_dict(cls, d: dict[str, Any], /) -> dict[str, Any]:
        if isinstance(d.get("adapt"), dict):
            d["adapt"] = AdaptConfig(**d["adapt"])
        return d
