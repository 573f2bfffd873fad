"""A σ for every atom, describing the position reported for it.

Each atom's position comes from one of two estimators (``position_source``): the Gaussian
fit on the raw image (``"fit"``) or the network's probability disk (``"network"``); a
column cut by the border reports their mean (``"mean"``). The uncertainty of each is built
from what the data says about that atom, per axis:

- ``fit_sigma_x_A`` / ``_y_A``: the fit's own σ (its curvature, scaled by its reduced χ²);
- ``crlb_x_A`` / ``_y_A``: a Cramér–Rao-type bound from the local signal (the column's
  height and width and the noise model learnt from the residuals,
  :func:`atomlens.locate.refine_gaussian`); present for every atom, fitted or not;
- ``member_spread_x_A`` / ``_y_A``: the ensemble members' spread (epistemic).

:class:`SigmaModel` maps them to σ: ``σ² = (a · base)² + (b · spread)² + c²`` with
``base`` the fit's σ for a fitted position and the bound for the network's, and one
``(a, b, c)`` per source. The coefficients are fitted on simulated images with known atoms
under shifted conditions (:func:`atomlens.train.fit_sigma_model`) and live in the model's
``calibration.json``; without one, :data:`DEFAULT_SIGMA_MODEL` holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DEFAULT_SIGMA_MODEL", "SOURCES", "SigmaModel"]

#: The estimators a reported position can come from.
SOURCES: tuple[str, ...] = ("fit", "network", "mean")


def _default_coef() -> dict[str, list[float]]:
    # uncalibrated: the fit's σ as it is; the network's the bound, the members' spread
    # and a floor of 1 pm (the network's positions level off near 1 pm at high dose on
    # the bundled graphene ensemble: benchmarks/accuracy_vs_dose.py)
    return {"fit": [1.0, 0.0, 0.0], "network": [1.5, 1.0, 0.01]}


@dataclass(frozen=True)
class SigmaModel:
    """Per-source coefficients of ``σ² = (a · base)² + (b · spread)² + c²`` [c in Å].

    Attributes
    ----------
    coef : dict of str to [a, b, c]
        For ``"fit"`` (base: the fit's σ) and ``"network"`` (base: the Cramér–Rao-type
        bound). A ``"mean"`` position takes the larger σ of the two (the error of a mean
        is never larger than the larger error).
    """

    coef: Mapping[str, list[float]] = field(default_factory=_default_coef)

    def __post_init__(self) -> None:
        for src in ("fit", "network"):
            v = self.coef.get(src)
            if v is None or len(v) != 3 or not all(np.isfinite(v)) or min(v) < 0:
                raise ValueError(
                    f"SigmaModel coef[{src!r}] must be three non-negative numbers (a, b, c), "
                    f"got {v!r}."
                )

    def sigma(
        self, source: str, base: np.ndarray, spread: np.ndarray | float = 0.0, /
    ) -> np.ndarray:
        """σ [Å] of positions from ``source`` with the given ``base`` and members'
        ``spread`` [Å] (arrays of one shape; NaN spread counts as 0)."""
        a, b, c = self.coef[source]
        sp = np.nan_to_num(np.asarray(spread, float), nan=0.0)
        return np.sqrt((a * np.asarray(base, float)) ** 2 + (b * sp) ** 2 + c * c)

    def to_dict(self) -> dict[str, list[float]]:
        """The coefficients as plain lists (JSON)."""
        return {k: [float(x) for x in v] for k, v in self.coef.items()}


#: What an ensemble without a fitted σ model uses.
DEFAULT_SIGMA_MODEL = SigmaModel()
