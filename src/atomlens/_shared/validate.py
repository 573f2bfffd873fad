"""Validation helpers shared by the public functions.

Each helper raises ``ValueError`` (or ``TypeError``) with a message that names the parameter,
what was expected, what was received and how to fix it.
"""

from __future__ import annotations

import math

import numpy as np


def validate_pixel_size(pixel_size: float, *, name: str = "pixel_size") -> float:
    """Return ``pixel_size`` as a float after checking it is a plausible sampling [Å/px].

    Parameters
    ----------
    pixel_size : float
        Pixel size [Å/px].
    name : str
        Parameter name used in the error message.

    Returns
    -------
    float
        The validated pixel size [Å/px].
    """
    try:
        value = float(pixel_size)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a number in Å/px, got {pixel_size!r}. "
            "Pass e.g. 0.1 for 0.1 Å per pixel."
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive, finite size in Å/px, got {pixel_size!r}.")
    if value < 1e-3 or value > 50:
        raise ValueError(
            f"{name}={value} Å/px is outside the plausible range 0.001–50 Å/px for "
            "atom-resolved images. Check the unit: atomlens expects ångström per pixel "
            "(1 nm = 10 Å, 1 pm = 0.01 Å)."
        )
    return value


def validate_positive(
    value: float, *, name: str, unit: str = "", allow_zero: bool = False
) -> float:
    """Return ``value`` as a float after checking it is finite and positive (or zero).

    Parameters
    ----------
    value : float
        The value to check.
    name : str
        Parameter name used in the error message.
    unit : str
        Unit shown in the error message, e.g. ``"Å"``.
    allow_zero : bool
        Accept 0 as well.

    Returns
    -------
    float
        The validated value.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a number{(' in ' + unit) if unit else ''}, got {value!r}."
        ) from None
    ok = math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(
            f"{name} must be a {bound}, finite number{(' in ' + unit) if unit else ''}, "
            f"got {value!r}."
        )
    return v


def validate_threads(threads: object, *, name: str = "threads") -> int:
    """Return ``threads`` as an int after checking it is a whole number ≥ 1 (not a bool).

    Parameters
    ----------
    threads : int
        A count of CPU threads.
    name : str
        Parameter name used in the error message.

    Returns
    -------
    int
        The validated count.
    """
    if isinstance(threads, bool) or not (isinstance(threads, int | np.integer) and threads >= 1):
        raise ValueError(
            f"{name} must be a whole number ≥ 1 (e.g. torch.get_num_threads()), got {threads!r}."
        )
    return int(threads)


def validate_range(
    value: tuple[float, float] | float,
    *,
    name: str,
    unit: str = "",
    allow_zero: bool = False,
    allow_negative: bool = False,
) -> tuple[float, float]:
    """Return a ``(low, high)`` range from a pair or a single number (a fixed value).

    Parameters
    ----------
    value : float or tuple of float
        A single value or a ``(low, high)`` pair.
    name : str
        Parameter name used in the error message.
    unit : str
        Unit shown in the error message.
    allow_zero, allow_negative : bool
        Which values are allowed.

    Returns
    -------
    tuple of float
        ``(low, high)`` with ``low <= high``.
    """
    if isinstance(value, int | float | np.floating | np.integer):
        lo = hi = float(value)
    else:
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a number or a (low, high) pair{(' in ' + unit) if unit else ''}, "
                f"got {value!r}."
            ) from None
    for v in (lo, hi):
        if not math.isfinite(v) or (not allow_negative and (v < 0 or (v == 0 and not allow_zero))):
            raise ValueError(
                f"{name} must hold finite{'' if allow_negative else ' positive'} values"
                f"{(' in ' + unit) if unit else ''}, got {value!r}."
            )
    if lo > hi:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {value!r}. Swap them.")
    return lo, hi
