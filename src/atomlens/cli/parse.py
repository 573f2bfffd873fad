"""Parsing that several commands share: comma-separated numbers, class choices, the
``--p-real-min`` value, and the defaults of ``--model`` and ``--out``."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path

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


def model_or_default(model: Path | None, inputs: list[str] | None = None) -> Path:
    """``--model``, or the bundled default model with a warning: every command that runs a
    model takes the same default, ``haadf-generic``, or ``abf-any`` when every input file's
    detector says BF/ABF (:func:`atomlens.pipeline.default_model_for`; ``inputs`` are the
    command's files, None where they are not known yet, as for ``stream``)."""
    if model is not None:
        return model
    if inputs:
        # light: file headers only, no torch
        from atomlens.pipeline.model_choice import default_model_for

        choice = default_model_for(inputs)
        logging.getLogger("atomlens").warning("no --model given: %s", choice.reason)
        return choice.path
    from atomlens.bundled import DEFAULT_MODEL, default_model  # light: file paths only

    logging.getLogger("atomlens").warning(
        "no --model given: using the bundled %s model", DEFAULT_MODEL
    )
    return default_model()


def default_out(inputs: list[str], suffix: str) -> Path:
    """The output folder a command writes to when ``--out`` is not given: in the current
    directory, named after the one input (``scan.dm4`` → ``scan-atoms``, a folder ``run3``
    → ``run3-atoms``), or ``atomlens-<suffix>`` for several inputs or a pattern.

    Examples
    --------
    >>> default_out(["data/scan.dm4"], "atoms"), default_out(["a.tif", "b.tif"], "atoms")
    (PosixPath('scan-atoms'), PosixPath('atomlens-atoms'))
    """
    if len(inputs) == 1 and not any(c in inputs[0] for c in "*?["):
        p = Path(inputs[0])
        name = p.name if p.is_dir() else p.stem
        if name not in ("", ".", ".."):
            return Path(f"{name}-{suffix}")
    return Path(f"atomlens-{suffix}")


def pixel_sizes(values: list[str] | None) -> float | dict[str, float] | None:
    """``--pixel-size`` as given (repeatable): one number for all files, or ``NAME=VALUE``
    pairs (with a bare number for the files not named) as a mapping for
    :func:`atomlens.pipeline.read_frames`.

    Examples
    --------
    >>> pixel_sizes(["0.1"]), pixel_sizes(["a.png=0.08", "0.1"])
    (0.1, {'a.png': 0.08, '*': 0.1})
    """
    if not values:
        return None
    out: dict[str, float] = {}
    for item in values:
        name, _, value = item.rpartition("=")
        try:
            size = float(value)
        except ValueError:
            raise ValueError(
                f"--pixel-size {item!r}: give Å/px as a number (0.1) or NAME=VALUE (scan1.png=0.1)."
            ) from None
        key = name.strip() or "*"
        if key in out:
            raise ValueError(f"--pixel-size gives {key if key != '*' else 'a bare value'} twice.")
        out[key] = size
    return out["*"] if list(out) == ["*"] else out
