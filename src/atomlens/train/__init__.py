"""Training: the loop, tensor augmentation, data sources, atom-level validation."""

from atomlens.train.augment import Augmentation, augment_batch, normalize_batch
from atomlens.train.data import BatchSource, PairSource, SimulatedSource
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
    "normalize_batch",
    "segmentation_loss",
]
