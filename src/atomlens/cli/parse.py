"""Parsing that several commands share: comma-separated numbers, class choices and the
``--p-real-min`` value."""

from __future__ import annotations

from enum import Enum

import typer


def floats(text: str, n: int, name: str) -> tuple[float, ...]:
    """``n`` comma-separated numbers from the option ``name``."""
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise typer.BadParameter(
            f"expected {n} comma-separated numbers, got {text!r}", param_hint=name
        ) from None
    if len(vals) != n:
        raise typer.BadParameter(
            f"expected {n} comma-separated numbers, got {text!r}", param_hint=name
        )
    return vals


class ClassBy(str, Enum):
    species = "species"
    content = "content"
    defect = "defect"
    atom = "atom"


def p_real_cut(value: str | None) -> float | str | None:
    """``--p-real-min``: None, "auto" or a number."""
    if value is None or value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise ValueError(
            f"--p-real-min must be a number within [0, 1] or 'auto', got {value!r}."
        ) from None
