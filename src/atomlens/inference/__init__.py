"""From an image to per-pixel class probabilities: normalisation, resampling, tiling,
and the arithmetic of the forward passes."""

from atomlens._shared.device import PRECISIONS, Precision, inference_precision
from atomlens.inference.normalize import PercentileNormalizer, normalize_percentile
from atomlens.inference.rescale import (
    MAX_MODEL_MAPS_BYTES,
    MAX_UPSAMPLING,
    UNRESOLVED_ABOVE_A_PER_PX,
    check_resampling,
    image_to_model_coords,
    model_to_image_coords,
    resample,
    resize_to,
)
from atomlens.inference.tiling import (
    AUTO_TILE,
    PIXELS_PER_PASS,
    auto_tile,
    blend_window,
    predict_tiled,
    tile_starts,
)

__all__ = [
    "AUTO_TILE",
    "MAX_MODEL_MAPS_BYTES",
    "MAX_UPSAMPLING",
    "PIXELS_PER_PASS",
    "PRECISIONS",
    "UNRESOLVED_ABOVE_A_PER_PX",
    "PercentileNormalizer",
    "Precision",
    "auto_tile",
    "blend_window",
    "check_resampling",
    "image_to_model_coords",
    "inference_precision",
    "model_to_image_coords",
    "normalize_percentile",
    "predict_tiled",
    "resample",
    "resize_to",
    "tile_starts",
]
