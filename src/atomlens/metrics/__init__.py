"""Metrics: detection matching (precision, recall, F1), localisation error, Cramér–Rao bound.

- :func:`match_points` -- optimal one-to-one matching of two point sets within a radius
- :func:`localisation_errors` -- RMSE, median, 95th percentile and bias of matched pairs
- :func:`score_detections`, :func:`evaluate_files` -- score atoms tables (or CSV files)
  against the truth, overall and per class
- :func:`crlb_gaussian_position`, :func:`mortensen_lsq_std` -- how precisely a Gaussian spot
  can be located
"""

from __future__ import annotations

from atomlens.metrics.crlb import crlb_gaussian_position, mortensen_lsq_std
from atomlens.metrics.detection import DetectionReport, evaluate_files, score_detections
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
    "crlb_gaussian_position",
    "evaluate_files",
    "localisation_errors",
    "match_points",
    "mortensen_lsq_std",
    "score_detections",
]
