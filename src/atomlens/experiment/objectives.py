"""Closed-form objectives for benchmarks of Bayesian optimisation of instrument settings.

All are maximised and cheap, so a benchmark knows the true optimum exactly.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["DECOY_BOUNDS", "FOCUS_BOUNDS", "TRADEOFF_BOUNDS", "decoy", "focus_quality", "tradeoff"]

#: Box of :func:`decoy`.
DECOY_BOUNDS = ((0.0, 1.0), (0.0, 1.0))
#: Box of :func:`focus_quality`: defocus and two-fold astigmatism [nm].
FOCUS_BOUNDS = ((-30.0, 30.0), (-15.0, 15.0))
#: Box of :func:`tradeoff`.
TRADEOFF_BOUNDS = ((0.0, 1.0), (0.0, 1.0))


def decoy(x: Any, /) -> float:
    """Two Gaussian hills on the unit square: a broad, misleading one of height 0.8 at
    (0.25, 0.7) (σ = 0.2) and the narrower global maximum 1 at (0.78, 0.22) (σ = 0.15):
    0.7 % of the square scores ≥ 95 % of the maximum.

    Examples
    --------
    >>> round(decoy([0.78, 0.22]), 3), round(decoy([0.25, 0.7]), 3)
    (1.0, 0.8)
    """
    a, b = float(x[0]), float(x[1])
    broad = 0.8 * math.exp(-((a - 0.25) ** 2 + (b - 0.7) ** 2) / (2 * 0.2**2))
    narrow = math.exp(-((a - 0.78) ** 2 + (b - 0.22) ** 2) / (2 * 0.15**2))
    return max(broad, narrow)


def focus_quality(x: Any, /) -> float:
    """An image-quality score against defocus C1 and two-fold astigmatism A1 [nm].

    The score is high where the contrast transfer is good: a sharp optimum at C1 = −6 nm,
    A1 = 2 nm (score 1) and a broader, lower one (0.75) at the second pass band,
    C1 = +16 nm, A1 = 0, which a greedy search in focus alone finds first:
    ``exp(−(ΔC1² / 2·9² + ΔA1² / 2·4.5²))`` and ``0.75 exp(−(ΔC1² / 2·15² + A1² / 2·9²))``
    [nm], the larger of the two; 0.7 % of the box scores ≥ 0.95.

    Examples
    --------
    >>> round(focus_quality([-6.0, 2.0]), 3)
    1.0
    """
    c1, a1 = float(x[0]), float(x[1])
    sharp = math.exp(-((c1 + 6.0) ** 2 / (2 * 9.0**2) + (a1 - 2.0) ** 2 / (2 * 4.5**2)))
    second = 0.75 * math.exp(-((c1 - 16.0) ** 2 / (2 * 15.0**2) + a1**2 / (2 * 9.0**2)))
    return max(sharp, second)


def tradeoff(x: Any, /) -> tuple[float, float]:
    """Two competing objectives on the unit square (both maximised): the negated Branin
    and Currin functions (the BraninCurrin problem of multi-objective BO benchmarks), scaled
    to order one.

    Returns
    -------
    (float, float)

    Examples
    --------
    >>> [round(v, 3) for v in tradeoff([0.5, 0.5])]
    [-0.241, -0.741]
    """
    u, v = float(x[0]), float(x[1])
    x1, x2 = 15.0 * u - 5.0, 15.0 * v
    branin = (
        (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5.0 / math.pi * x1 - 6.0) ** 2
        + 10.0 * (1 - 1 / (8 * math.pi)) * math.cos(x1)
        + 10.0
    )
    v = max(v, 1e-9)
    currin = (
        (1 - math.exp(-1 / (2 * v)))
        * (2300 * u**3 + 1900 * u**2 + 2092 * u + 60)
        / (100 * u**3 + 500 * u**2 + 4 * u + 20)
    )
    return -branin / 100.0, -currin / 10.0
