"""Lengths in the units microscopy files use, converted to Å."""

from __future__ import annotations

__all__ = ["axis_pixel_size", "length_unit_to_A"]

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


def axis_pixel_size(scale: float, unit: object, /) -> tuple[float | None, str | None]:
    """The pixel size [Å/px] of an image axis with ``scale`` in ``unit``, and what was
    assumed to get it.

    A length unit gives it directly. HyperSpy and RosettaSciIO files often carry no unit
    (``None``, ``""`` or ``"<undefined>"``): a scale of 0.001–0.2 is then read as nm (the
    unit of DM, Velox and HyperSpy's examples; atom-resolved sampling is 0.01–2 Å/px), with
    the assumption returned for the caller to log; any other scale gives None.

    Examples
    --------
    >>> axis_pixel_size(0.0093, "nm")
    (0.093, None)
    >>> axis_pixel_size(0.0093, "<undefined>")
    (0.093, 'the scale 0.0093 has no unit; read as nm')
    >>> axis_pixel_size(1.0, None)
    (None, None)
    """
    per = length_unit_to_A(unit)
    if per is not None:
        return float(scale) * per, None
    if (unit is None or str(unit).strip() in ("", "<undefined>")) and 0.001 <= scale <= 0.2:
        return float(scale) * 10.0, f"the scale {scale:g} has no unit; read as nm"
    return None, None
