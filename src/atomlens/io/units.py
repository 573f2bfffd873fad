"""Lengths in the units microscopy files use, converted to Å."""

from __future__ import annotations

__all__ = ["length_unit_to_A"]

_TO_A = {
    "pm": 0.01,
    "å": 1.0,
    "a": 1.0,
    "angstrom": 1.0,
    "ångström": 1.0,
    "ang": 1.0,
    "nm": 10.0,
    "nanometer": 10.0,
    "nanometre": 10.0,
    "µm": 1e4,
    "μm": 1e4,  # Greek mu, not the micro sign
    "um": 1e4,
    "micron": 1e4,
    "micrometer": 1e4,
    "micrometre": 1e4,
    "\\u00b5m": 1e4,
    "mm": 1e7,
    "m": 1e10,
}


def length_unit_to_A(unit: object) -> float | None:
    """Å per ``unit`` (``"nm"`` → 10), or None when it is not a length unit atomlens knows.

    Parameters
    ----------
    unit : object
        Unit as a file writes it (case and surrounding space ignored).

    Returns
    -------
    float or None
    """
    if not isinstance(unit, str):
        return None
    return _TO_A.get(unit.strip().lower())
