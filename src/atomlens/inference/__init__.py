"""From an image to per-pixel class probabilities: normalisation, resampling, tiling."""

from atomlens.inference.normalize import PercentileNormalizer, normalize_percentile
from atomlens.inference.rescale import (
    image_to_model_coords,
    model_to_image_coords,
    resample,
    resize_to,
)
from atomlens.inference.tiling import blend_window, predict_tiled, tile_starts

__all__ = [
    "PercentileNormalizer",
    "blend_window",
    "image_to_model_coords",
    "model_to_image_coords",
    "normalize_percentile",
    "predict_tiled",
    "resample",
    "resize_to",
    "tile_starts",
]
