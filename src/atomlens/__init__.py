"""atomlens: atoms you can trust from atom-resolved microscopy images.

Subpackages are imported lazily so that ``import atomlens`` stays light. They follow the
data path, and imports point down it only:

- :mod:`atomlens.io` -- microscope files in (DM, EMD, SER, MRC, HyperSpy, TIFF, PNG, NumPy),
  the atoms-table schema and writers
- :mod:`atomlens.simulate` -- structures, defects, the imaging model and labels (exact truth)
- :mod:`atomlens.nn` -- network architectures (U-Net)
- :mod:`atomlens.inference` -- normalisation, resampling, tiled prediction
- :mod:`atomlens.fourier` -- radial spectra and pixel-size estimation from the lattice
- :mod:`atomlens.ensemble` -- the model class (a single network is an ensemble of one), its
  files, uncertainty maps, consensus, calibration
- :mod:`atomlens.locate` -- probability maps to atoms: peaks, batched sub-pixel refinement
- :mod:`atomlens.metrics` -- detection matching, localisation error, Cramér–Rao bound
- :mod:`atomlens.pipeline` -- the one :func:`find`, its settings and input reader, output
  files, Dask fan-out
- :mod:`atomlens.train` -- training members and ensembles, validation on atoms, calibration
- :mod:`atomlens.elit` -- label-free selection, adaptation and the stream loop
- :mod:`atomlens.analysis` -- bonds, rings, lattice and strain, descriptors, tracking, ASE
- :mod:`atomlens.vae` -- invariant VAEs of patches and spectra, im2spec/spec2im
- :mod:`atomlens.active` -- automated experiments: GP, DKL, acquisitions, Bayesian
  optimisation, the active-learning loop and its run record
- :mod:`atomlens.experiment` -- the simulated microscope, replay of spectrum images, the
  instrument adapter interface
- :mod:`atomlens.report` -- figures and HTML reports
- :func:`atomlens.find` -- image, stack or files in, atoms table out (ensemble consensus)
- :func:`atomlens.find_atoms` -- image in, atoms out (one network)

Coordinates follow one convention everywhere: ``x`` is the column index, ``y`` the row index,
pixel centres sit at integer coordinates, and physical positions are ``x_A = x_px * pixel_size``
[Å] (see :mod:`atomlens.io.atoms_table`).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0.dev0"

__all__ = [
    "__version__",
    "active",
    "analysis",
    "elit",
    "ensemble",
    "experiment",
    "find",
    "find_atoms",
    "fourier",
    "inference",
    "io",
    "locate",
    "metrics",
    "nn",
    "pipeline",
    "report",
    "simulate",
    "train",
    "vae",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())

_SUBMODULES = set(__all__) - {"__version__", "find", "find_atoms"}


def __getattr__(name: str) -> Any:
    if name == "find":
        from atomlens.pipeline.finder import find_table

        return find_table
    if name == "find_atoms":
        from atomlens.pipeline.finder import find_atoms

        return find_atoms
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
