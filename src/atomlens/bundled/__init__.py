"""Pretrained ensembles shipped inside the package (safetensors + JSON; no download).

Each sub-directory is a model directory (``config.json``, ``weights.safetensors``,
``calibration.json``) made by ``scripts/train_bundled.py NAME``; ``docs/models.md`` is the
model card of each. ``atomlens find --model NAME`` and ``Ensemble.load(NAME)`` accept these
names wherever a model directory is expected.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = [
    "BUNDLED_DIR",
    "DEFAULT_BF_MODEL",
    "DEFAULT_MODEL",
    "bundled_directory",
    "bundled_models",
    "default_model",
    "resolve_model_path",
]

BUNDLED_DIR = Path(__file__).resolve().parent


def bundled_models() -> dict[str, dict[str, Any]]:
    """Name → summary (description, classes, sampling, members, size) of each bundled model."""
    out: dict[str, dict[str, Any]] = {}
    for d in sorted(p for p in BUNDLED_DIR.iterdir() if (p / "config.json").is_file()):
        cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
        prov = cfg.get("provenance", {})
        out[d.name] = {
            "description": prov.get("bundled", {}).get("description", ""),
            "classes": cfg.get("class_names"),
            "pixel_size_A": cfg.get("pixel_size_A"),
            "members": len(cfg.get("members") or [1]),
            "megabytes": round(sum(f.stat().st_size for f in d.iterdir()) / 2**20, 1),
            "path": str(d),
        }
    return out


def bundled_directory(name: str, /) -> Path | None:
    """The directory of the bundled model ``name``, or None when there is none so named."""
    d = BUNDLED_DIR / name
    return d if len(Path(name).parts) == 1 and (d / "config.json").is_file() else None


def resolve_model_path(model: str | PathLike[str], /) -> Path:
    """A model directory: ``model`` itself when it exists, else the bundled model so named.

    Raises
    ------
    FileNotFoundError
        Neither a directory nor a bundled name; the message lists the bundled names.
    """
    p = Path(model)
    if not p.is_dir() and len(p.parts) == 1:
        p = bundled_directory(p.name) or p
    if p.exists():
        return p
    names = ", ".join(bundled_models()) or "none installed"
    raise FileNotFoundError(
        f"model directory {p} does not exist; pass a directory written by `atomlens train` "
        f"(it holds config.json and weights.safetensors) or a bundled model ({names})."
    )


DEFAULT_MODEL = "haadf-generic"
#: The bundled model for bright-field (BF, ABF) images when none is named
#: (:func:`atomlens.pipeline.default_model_for`).
DEFAULT_BF_MODEL = "abf-any"


def default_model() -> Path:
    """The bundled model used when none is given (``haadf-generic``: bright columns of any
    lattice).

    Raises
    ------
    FileNotFoundError
        It is not installed; the message says what to pass instead.
    """
    d = BUNDLED_DIR / DEFAULT_MODEL
    if not (d / "config.json").is_file():
        names = ", ".join(bundled_models()) or "none installed"
        raise FileNotFoundError(
            f"no `model` given and the default bundled model {DEFAULT_MODEL} is not installed; "
            f"pass `model` with a model directory or a bundled name ({names})."
        )
    return d
