"""A σ for every atom, describing the position reported for it.

Each atom's position comes from one of two estimators (``position_source``): the Gaussian
fit on the raw image (``"fit"``) or the network's probability disk (``"network"``); a
column cut by the border reports their mean (``"mean"``). The uncertainty of each is built
from what the data says about that atom, per axis:

- ``fit_sigma_x_A`` / ``_y_A``: the fit's own σ (its curvature, scaled by its reduced χ²);
- ``crlb_x_A`` / ``_y_A``: a Cramér–Rao-type bound from the local signal (the column's
  height and width and the noise model learnt from the residuals,
  :func:`atomlens.locate.refine_gaussian`); present for every atom, fitted or not;
- ``member_spread_x_A`` / ``_y_A``: the ensemble members' spread (epistemic);
- ``neighbour_A`` with ``width_A`` and ``signal_snr``: how close the nearest column is in
  units of the column's width, and how faint the column is (:func:`sigma_features`).

:class:`SigmaModel` maps them to σ: ``σ² = (a · m · base)² + (b · spread)² + c²`` with
``base`` the fit's σ for a fitted position and the bound for the network's,
``m = exp(w_overlap · overlap + w_faint · faintness)`` and one ``(a, b, c, w_overlap, w_faint)``
per source. The multiplier is there because a Gaussian fit's own σ counts the noise only:
a neighbour whose probe tails reach into the column pulls the fit by more than that
(``haadf-any``'s σ images, fitted positions: z RMS 3.2 with the nearest column within 3
widths, 1.1 beyond 5), and at a few counts the fit's curvature says less than it seems.
The coefficients are fitted on simulated images with known atoms under shifted conditions
(:func:`atomlens.train.fit_sigma_model`) and live in the model's ``calibration.json``;
without one, :data:`DEFAULT_SIGMA_MODEL` holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DEFAULT_SIGMA_MODEL",
    "OVERLAP_REACH",
    "SIGMA_FEATURES",
    "SOURCES",
    "SigmaModel",
    "sigma_features",
]

#: The estimators a reported position can come from.
SOURCES: tuple[str, ...] = ("fit", "network", "mean")

#: The per-atom evidence that scales σ's base (:func:`sigma_features`).
SIGMA_FEATURES: tuple[str, ...] = ("overlap", "faintness")

#: Neighbours farther than this many column widths (Gaussian σ) do not count as overlap.
OVERLAP_REACH = 5.0


def sigma_features(
    neighbour_A: np.ndarray, width_A: np.ndarray, signal_snr: np.ndarray, /
) -> np.ndarray:
    """The evidence that scales σ's base, per atom: ``(overlap, faintness)``, shape (N, 2).

    Parameters
    ----------
    neighbour_A : ndarray
        Distance to the nearest other atom found [Å] (NaN: none).
    width_A : ndarray
        The column's width, the Gaussian σ of its fit [Å] (a class's median is the steadier
        choice; NaN: unknown).
    signal_snr : ndarray
        The column's peak height over its σ (NaN: unknown).

    Returns
    -------
    ndarray of shape (N, 2)
        ``overlap = max(0, OVERLAP_REACH − neighbour / width)``: 0 for an isolated column,
        growing as a neighbour's tails reach in; ``faintness = 10 / max(signal_snr, 1)``. Unknown
        inputs give 0 (the base alone).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.asarray(neighbour_A, float) / np.asarray(width_A, float)
        overlap = np.nan_to_num(np.clip(OVERLAP_REACH - u, 0.0, OVERLAP_REACH), nan=0.0)
        faintness = np.nan_to_num(10.0 / np.maximum(np.asarray(signal_snr, float), 1.0), nan=0.0)
    return np.c_[overlap, faintness]


def _default_coef() -> dict[str, list[float]]:
    # uncalibrated: the fit's σ as it is; the network's the bound, the members' spread
    # and a floor of 1 pm (the network's positions level off near 1 pm at high dose on
    # the bundled graphene ensemble: benchmarks/accuracy_vs_dose.py)
    return {"fit": [1.0, 0.0, 0.0], "network": [1.5, 1.0, 0.01]}


@dataclass(frozen=True)
class SigmaModel:
    """Per-source coefficients of ``σ² = (a · m · base)² + (b · spread)² + c²`` [c in Å],
    ``m = exp(w_overlap · overlap + w_faint · faintness)`` (:func:`sigma_features`).

    Attributes
    ----------
    coef : dict of str to [a, b, c] or [a, b, c, w_overlap, w_faint]
        For ``"fit"`` (base: the fit's σ) and ``"network"`` (base: the Cramér–Rao-type
        bound); three numbers mean no multiplier (the σ models saved before it). A
        ``"mean"`` position takes the larger σ of the two (the error of a mean is never
        larger than the larger error). Optionally ``"fit_decision"`` and
        ``"network_decision"``: the ``(a, b, c)`` without a multiplier that
        ``positions="auto"`` decides by (see
        :func:`atomlens.train.calibration.fit_sigma_model`); without them auto decides by
        the reported σ.
    """

    coef: Mapping[str, list[float]] = field(default_factory=_default_coef)

    def __post_init__(self) -> None:
        weights = (
            f"optionally followed by the non-negative weights of {', '.join(SIGMA_FEATURES)}; "
        )
        checks = [(src, (3, 3 + len(SIGMA_FEATURES)), weights) for src in ("fit", "network")]
        checks += [(k, (3,), "") for k in ("fit_decision", "network_decision") if k in self.coef]
        for key, lengths, also in checks:
            v = self.coef.get(key)
            if v is None or len(v) not in lengths or not all(np.isfinite(v)) or min(v) < 0:
                raise ValueError(
                    f"SigmaModel coef[{key!r}] must be three non-negative numbers (a, b, c), "
                    f"{also}got {v!r}."
                )

    def multiplier(
        self, source: str, features: np.ndarray | None, /, ndim: int = 2
    ) -> np.ndarray | float:
        """``m`` of ``source`` for per-atom ``features`` ((N, 2), :func:`sigma_features`),
        shaped to multiply a base of ``ndim`` dimensions whose first axis is the atom
        ((N,) or (N, 1)); 1 without features or weights."""
        w = np.asarray(self.coef[source][3:], float)
        if features is None or not len(w):
            return 1.0
        m = np.exp(np.asarray(features, float) @ w)
        return m.reshape(m.shape + (1,) * max(ndim - 1, 0))

    def sigma(
        self,
        source: str,
        base: np.ndarray,
        spread: np.ndarray | float = 0.0,
        /,
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        """σ [Å] of positions from ``source`` with the given ``base`` and members'
        ``spread`` [Å] (arrays of one shape, (N, 2) per axis; NaN spread counts as 0) and
        per-atom ``features`` ((N, 2), :func:`sigma_features`; none: m = 1)."""
        a, b, c = self.coef[source][:3]
        sp = np.nan_to_num(np.asarray(spread, float), nan=0.0)
        base = np.asarray(base, float)
        if features is not None and len(features) != len(base):
            raise ValueError(
                f"SigmaModel.sigma: {len(features)} rows of features for {len(base)} atoms."
            )
        m = self.multiplier(source, features, base.ndim)
        return np.sqrt((a * m * base) ** 2 + (b * sp) ** 2 + c * c)

    def decision_sigma(
        self,
        source: str,
        base: np.ndarray,
        spread: np.ndarray | float = 0.0,
        /,
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        """σ [Å] that ``positions="auto"`` decides by: ``"<source>_decision"``'s plain
        ``(a, b, c)`` where the model has it, else :meth:`sigma` (the reported σ)."""
        key = f"{source}_decision"
        if key in self.coef:
            return self.sigma(key, base, spread)
        return self.sigma(source, base, spread, features=features)

    def to_dict(self) -> dict[str, list[float]]:
        """The coefficients as plain lists (JSON)."""
        return {k: [float(x) for x in v] for k, v in self.coef.items()}


#: What an ensemble without a fitted σ model uses.
DEFAULT_SIGMA_MODEL = SigmaModel()
