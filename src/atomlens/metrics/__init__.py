"""Metrics: detection matching (precision, recall, F1), localisation error, Cramér–Rao bound.

- :func:`match_points` -- optimal one-to-one matching of two point sets within a radius
- :func:`localisation_errors` -- RMSE, median, 95th percentile and bias of matched pairs
- :func:`score_detections`, :func:`evaluate_files` -- score atoms tables (or CSV files)
  against the truth, overall and per class
- :func:`reliability_table` -- the reliability of a probability such as ``p_real`` and its ECE
- :func:`score_atoms`, :func:`inside_margin` -- the border-aware score of validation,
  calibration and benchmarks (atoms within a margin of the border count neither way);
  :func:`shown_columns` -- the columns a HAADF image shows, to leave the others out
- :func:`crlb_gaussian_position`, :func:`mortensen_lsq_std` -- how precisely a Gaussian spot
  can be located
"""

from __future__ import annotations

from atomlens.metrics.border import bright_level, inside_margin, score_atoms, shown_columns
from atomlens.metrics.crlb import crlb_gaussian_position, mortensen_lsq_std
from atomlens.metrics.detection import (
    DetectionReport,
    evaluate_files,
    reliability_table,
    score_detections,
)
from atomlens.metrics.matching import (
    LocalisationErrors,
    Matching,
    localisation_errors,
    match_points,
)

__all__ = [
    "DetectionReport",
    "LocalisationErrors",
    "Matching",
    "bright_level",
    "crlb_gaussian_position",
    "evaluate_files",
    "inside_margin",
    "localisation_errors",
    "match_points",
    "mortensen_lsq_std",
    "reliability_table",
    "score_atoms",
    "score_detections",
    "shown_columns",
]
