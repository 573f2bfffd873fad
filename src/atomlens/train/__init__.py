"""Everything that trains or fits: the training loop, tensor augmentation, data sources,
atom-level validation, members trained together, ensembles, calibration fitting."""

from atomlens.train.augment import Augmentation, augment_batch, normalize_batch
from atomlens.train.calibration import fit_calibration
from atomlens.train.data import BatchSource, PairSource, SimulatedSource
from atomlens.train.ensemble import train_ensemble
from atomlens.train.trainer import TrainConfig, Trainer, TrainResult, segmentation_loss
from atomlens.train.validation import ValidationSet

__all__ = [
    "Augmentation",
    "BatchSource",
    "PairSource",
    "SimulatedSource",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "ValidationSet",
    "augment_batch",
    "fit_calibration",
    "normalize_batch",
    "segmentation_loss",
    "train_ensemble",
]
