"""The model class and what it predicts: ensembles of networks (a single network is an
ensemble of one), their file format, vectorised prediction, uncertainty maps, per-atom
consensus and applying a calibration.

Training ensembles and fitting calibrations lives in :mod:`atomlens.train`.
"""

from atomlens.ensemble.calibration import Calibration
from atomlens.ensemble.config import ModelConfig, ModelFileError
from atomlens.ensemble.consensus import ConsensusAtoms, consensus_atoms, merge_detections
from atomlens.ensemble.ensemble import Ensemble, Model, as_ensemble
from atomlens.ensemble.prediction import Prediction, decompose

__all__ = [
    "Calibration",
    "ConsensusAtoms",
    "Ensemble",
    "Model",
    "ModelConfig",
    "ModelFileError",
    "Prediction",
    "as_ensemble",
    "consensus_atoms",
    "decompose",
    "merge_detections",
]
