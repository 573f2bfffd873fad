"""Ensembles: members, uncertainty maps, per-atom consensus (a model is an ensemble of one)."""

from atomlens.ensemble.calibration import Calibration, fit_calibration
from atomlens.ensemble.consensus import ConsensusAtoms, consensus_atoms, merge_detections
from atomlens.ensemble.ensemble import Ensemble
from atomlens.ensemble.prediction import Prediction, decompose
from atomlens.ensemble.train import train_ensemble

__all__ = [
    "Calibration",
    "ConsensusAtoms",
    "Ensemble",
    "Prediction",
    "consensus_atoms",
    "decompose",
    "fit_calibration",
    "merge_detections",
    "train_ensemble",
]
