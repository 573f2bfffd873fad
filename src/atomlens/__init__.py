"""atomlens: atoms you can trust from atom-resolved microscopy images.

Subpackages are imported lazily so that ``import atomlens`` stays light:

- :mod:`atomlens.simulate` -- structures, defects, the imaging model and labels (exact truth)
- :mod:`atomlens.metrics` -- detection matching, localisation error, Cramér–Rao bound
- :mod:`atomlens.nn` -- network architectures (U-Net)
- :mod:`atomlens.train` -- the training loop, augmentation, data sources, validation on atoms
- :mod:`atomlens.inference` -- normalisation, resampling, tiled prediction
- :mod:`atomlens.locate` -- probability maps to atoms: peaks, batched sub-pixel refinement
- :mod:`atomlens.model` -- a trained network with its sampling and classes (safetensors + JSON)
- :mod:`atomlens.io` -- microscope files in (DM, EMD, SER, MRC, HyperSpy, TIFF, PNG, NumPy)
- :mod:`atomlens.ensemble` -- ensembles, consensus, uncertainty, calibration
- :func:`atomlens.find` -- image, stack or file in, atoms table out (ensemble consensus)
- :func:`atomlens.find_atoms` -- image in, atoms out (one model)

Coordinates follow one convention everywhere: ``x`` is the column index, ``y`` the row index,
pixel centres sit at integer coordinates, and physical positions are ``x_A = x_px * pixel_size``
[Å] (see :mod:`atomlens.atoms_table`).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0.dev0"

__all__ = [
    "__version__",
    "atoms_table",
    "ensemble",
    "find",
    "find_atoms",
    "inference",
    "io",
    "locate",
    "metrics",
    "model",
    "nn",
    "simulate",
    "train",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())

_SUBMODULES = {
    "atoms_table",
    "ensemble",
    "io",
    "inference",
    "locate",
    "metrics",
    "model",
    "nn",
    "simulate",
    "train",
}


def __getattr__(name: str) -> Any:
    if name == "find":
        from atomlens.finder import find_table

        return find_table
    if name == "find_atoms":
        from atomlens.finder import find_atoms

        return find_atoms
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
