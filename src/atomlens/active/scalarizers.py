"""Scalarizers: the number a spectrum is worth, as the user defines it.

A scalarizer turns a spectrum ``(E,)`` (or a stack ``(N, E)``) on its energy axis ``(E,)``
[eV, or any unit of the axis] into one value per spectrum, the target the agent maximises.
Each is a small frozen dataclass, callable as ``s(spectra, energy)``, with a text form for the
command line (:func:`parse_scalarizer`) and a JSON form for the run record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "BandIntensity",
    "PeakHeight",
    "PeakPosition",
    "PeakRatio",
    "Scalarizer",
    "UserScalarizer",
    "parse_scalarizer",
    "scalarizer_from_dict",
]


def _check(spectra: Any, energy: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    s = np.asarray(spectra, dtype=np.float64)
    e = np.asarray(energy, dtype=np.float64)
    single = s.ndim == 1
    s2 = s[None] if single else s
    if s2.ndim != 2:
        raise ValueError(f"`spectra` must be (E,) or (N, E), got shape {s.shape}.")
    if e.ndim != 1 or e.shape[0] != s2.shape[1]:
        raise ValueError(
            f"`energy` must be (E,) with E = {s2.shape[1]} channels like the spectra, "
            f"got shape {e.shape}."
        )
    if not np.isfinite(s2).all():
        raise ValueError(
            "a spectrum holds NaN or infinite values; remeasure it or drop that position."
        )
    return s2, e, single


def _window(energy: np.ndarray, window: tuple[float, float], name: str) -> np.ndarray:
    lo, hi = window
    sel = (energy >= lo) & (energy <= hi)
    if not sel.any():
        raise ValueError(
            f"`{name}` {window} holds no channel of the energy axis "
            f"({energy.min():g}–{energy.max():g}); choose a window inside it."
        )
    return sel


def _pair(window: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in window)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be (low, high), got {window!r}.") from None
    if not lo < hi:
        raise ValueError(f"`{name}` must have low < high, got {window!r}.")
    return lo, hi


@dataclass(frozen=True)
class BandIntensity:
    """Summed counts in an energy window, optionally above a background.

    With ``background`` (a pre-edge window), a power law ``A E^−r`` fitted there (in log–log)
    is extrapolated under ``window`` and subtracted, as for an EELS core-loss edge.

    Parameters
    ----------
    window : (float, float)
        Integration window [eV].
    background : (float, float), optional
        Pre-edge window for the power-law background [eV].

    Examples
    --------
    >>> e = np.arange(10.0)
    >>> BandIntensity((2, 4))(np.ones(10), e)
    3.0
    """

    window: tuple[float, float]
    background: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _pair(self.window, "window"))
        if self.background is not None:
            object.__setattr__(self, "background", _pair(self.background, "background"))

    def __call__(self, spectra: Any, energy: Any) -> Any:
        s, e, single = _check(spectra, energy)
        sel = _window(e, self.window, "window")
        signal = s[:, sel].sum(1)
        if self.background is not None:
            bsel = _window(e, self.background, "background")
            if (e[bsel] <= 0).any():
                raise ValueError("`background` needs positive energies for a power law.")
            lx = np.log(e[bsel])
            ly = np.log(np.maximum(s[:, bsel], 1e-9))
            slope, icpt = np.polyfit(lx, ly.T, 1)
            bg = np.exp(icpt[:, None] + slope[:, None] * np.log(e[sel])[None])
            signal = signal - bg.sum(1)
        return float(signal[0]) if single else signal

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see :func:`scalarizer_from_dict`)."""
        return {"kind": "band", **asdict(self)}


@dataclass(frozen=True)
class PeakHeight:
    """Largest value in an energy window.

    Parameters
    ----------
    window : (float, float)
        Where to look [eV].

    Examples
    --------
    >>> PeakHeight((1, 3))(np.array([0.0, 1.0, 5.0, 2.0, 9.0]), np.arange(5.0))
    5.0
    """

    window: tuple[float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _pair(self.window, "window"))

    def __call__(self, spectra: Any, energy: Any) -> Any:
        s, e, single = _check(spectra, energy)
        out = s[:, _window(e, self.window, "window")].max(1)
        return float(out[0]) if single else out

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"kind": "height", **asdict(self)}


@dataclass(frozen=True)
class PeakPosition:
    """Energy of the largest value in a window, refined by a parabola through the top three
    channels (sub-channel).

    Parameters
    ----------
    window : (float, float)
        Where to look [eV].

    Examples
    --------
    >>> e = np.arange(0.0, 10.0, 0.5)
    >>> round(PeakPosition((2, 8))(np.exp(-((e - 4.2) ** 2)), e), 2)
    4.19
    """

    window: tuple[float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _pair(self.window, "window"))

    def __call__(self, spectra: Any, energy: Any) -> Any:
        s, e, single = _check(spectra, energy)
        idx = np.flatnonzero(_window(e, self.window, "window"))
        sub = s[:, idx]
        k = sub.argmax(1)
        pos = e[idx][k]
        inner = (k > 0) & (k < len(idx) - 1)
        rows = np.flatnonzero(inner)
        if rows.size:
            kk = k[rows]
            y0, y1, y2 = sub[rows, kk - 1], sub[rows, kk], sub[rows, kk + 1]
            denom = y0 - 2 * y1 + y2
            delta = np.where(denom != 0, 0.5 * (y0 - y2) / np.where(denom != 0, denom, 1), 0.0)
            step = e[idx][kk + 1] - e[idx][kk]
            pos[rows] = e[idx][kk] + delta * step
        return float(pos[0]) if single else pos

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"kind": "position", **asdict(self)}


@dataclass(frozen=True)
class PeakRatio:
    """Ratio of the summed counts in two windows, ``Σ window / Σ reference``.

    Parameters
    ----------
    window : (float, float)
        Numerator window [eV].
    reference : (float, float)
        Denominator window [eV].

    Examples
    --------
    >>> PeakRatio((0, 1), (2, 3))(np.array([1.0, 1.0, 2.0, 2.0]), np.arange(4.0))
    0.5
    """

    window: tuple[float, float]
    reference: tuple[float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _pair(self.window, "window"))
        object.__setattr__(self, "reference", _pair(self.reference, "reference"))

    def __call__(self, spectra: Any, energy: Any) -> Any:
        s, e, single = _check(spectra, energy)
        num = s[:, _window(e, self.window, "window")].sum(1)
        den = s[:, _window(e, self.reference, "reference")].sum(1)
        out = num / np.where(den == 0, np.nan, den)
        if not np.isfinite(out).all():
            raise ValueError("`reference` window sums to 0 for a spectrum; widen or move it.")
        return float(out[0]) if single else out

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"kind": "ratio", **asdict(self)}


@dataclass(frozen=True)
class UserScalarizer:
    """Any function of one spectrum and its energy axis returning a float.

    Parameters
    ----------
    function : callable
        ``function(spectrum (E,), energy (E,)) -> float``.
    name : str
        Name recorded in the run record (the function itself cannot be stored).

    Examples
    --------
    >>> s = UserScalarizer(lambda sp, e: float(sp[e > 1].mean()), name="tail mean")
    >>> s(np.array([0.0, 1.0, 2.0, 4.0]), np.arange(4.0))
    3.0
    """

    function: Callable[[np.ndarray, np.ndarray], float]
    name: str = "user"

    def __call__(self, spectra: Any, energy: Any) -> Any:
        s, e, single = _check(spectra, energy)
        out = np.array([float(self.function(row, e)) for row in s])
        if not np.isfinite(out).all():
            raise ValueError(f"scalarizer {self.name!r} returned NaN or inf for a spectrum.")
        return float(out[0]) if single else out

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the name only)."""
        return {"kind": "user", "name": self.name}


Scalarizer = BandIntensity | PeakHeight | PeakPosition | PeakRatio | UserScalarizer

_KINDS: dict[str, Any] = {
    "band": BandIntensity,
    "height": PeakHeight,
    "position": PeakPosition,
    "ratio": PeakRatio,
}


def scalarizer_from_dict(d: dict[str, Any], /) -> Scalarizer:
    """Inverse of ``to_dict`` for the built-in scalarizers.

    Raises
    ------
    ValueError
        A user scalarizer (its function is not stored) or an unknown kind.
    """
    d = dict(d)
    kind = d.pop("kind", None)
    if kind == "user":
        raise ValueError(
            f"the record used the user scalarizer {d.get('name')!r}; pass the same "
            "`scalarizer` again to replay it."
        )
    if kind not in _KINDS:
        raise ValueError(f"unknown scalarizer kind {kind!r}; known: {sorted(_KINDS)}.")
    return _KINDS[kind](**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def parse_scalarizer(text: str, /) -> Scalarizer:
    """A scalarizer from its command-line form.

    Forms: ``band:LO:HI`` (summed counts), ``band:LO:HI:BG_LO:BG_HI`` (above a power-law
    background fitted in the second window), ``height:LO:HI``, ``position:LO:HI``,
    ``ratio:LO:HI:REF_LO:REF_HI``; energies in the units of the energy axis [eV].

    Parameters
    ----------
    text : str

    Returns
    -------
    Scalarizer

    Examples
    --------
    >>> parse_scalarizer("band:99:110:85:97")
    BandIntensity(window=(99.0, 110.0), background=(85.0, 97.0))
    """
    parts = str(text).split(":")
    kind, nums = parts[0].strip().lower(), parts[1:]
    try:
        v = [float(p) for p in nums]
    except ValueError:
        v = []
        nums = ["?"]
    forms = {"band": (2, 4), "height": (2,), "position": (2,), "ratio": (4,)}
    if kind not in forms or len(v) not in forms[kind] or len(v) != len(nums):
        raise ValueError(
            f"`scalarizer` {text!r} is not understood; use band:LO:HI, band:LO:HI:BG_LO:BG_HI, "
            "height:LO:HI, position:LO:HI or ratio:LO:HI:REF_LO:REF_HI (energies in eV)."
        )
    if kind == "band":
        return BandIntensity((v[0], v[1]), None if len(v) == 2 else (v[2], v[3]))
    if kind == "height":
        return PeakHeight((v[0], v[1]))
    if kind == "position":
        return PeakPosition((v[0], v[1]))
    return PeakRatio((v[0], v[1]), (v[2], v[3]))
