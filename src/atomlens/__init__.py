"""atomlens: atoms you can trust from atom-resolved microscopy images.

Subpackages are imported lazily so that ``import atomlens`` stays light:

- :mod:`atomlens.simulate` -- structures, defects, the imaging model and labels (exact truth)
- :mod:`atomlens.metrics` -- detection matching, localisation error, Cramér–Rao bound

Coordinates follow one convention everywhere: ``x`` is the column index, ``y`` the row index,
pixel centres sit at integer coordinates, and physical positions are ``x_A = x_px * pixel_size``
[Å] (see :mod:`atomlens.atoms_table`).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "atoms_table", "metrics", "simulate"]

logging.getLogger(__name__).addHandler(logging.NullHandler())

_SUBMODULES = {"atoms_table", "metrics", "simulate"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
