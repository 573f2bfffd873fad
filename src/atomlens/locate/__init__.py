"""Probability maps → atoms: peak finding, batched sub-pixel refinement, uncertainty."""

from atomlens.locate.atoms import locate_atoms
from atomlens.locate.peaks import find_peaks, suppress_close
from atomlens.locate.refine import GaussianFit, refine_gaussian
from atomlens.locate.sigma import (
    DEFAULT_SIGMA_MODEL,
    OVERLAP_REACH,
    SIGMA_FEATURES,
    SigmaModel,
    column_kinds,
    lattice_scatter,
    rescale_to_lattice,
    sigma_features,
)

__all__ = [
    "DEFAULT_SIGMA_MODEL",
    "OVERLAP_REACH",
    "SIGMA_FEATURES",
    "GaussianFit",
    "SigmaModel",
    "column_kinds",
    "find_peaks",
    "lattice_scatter",
    "locate_atoms",
    "refine_gaussian",
    "rescale_to_lattice",
    "sigma_features",
    "suppress_close",
]
