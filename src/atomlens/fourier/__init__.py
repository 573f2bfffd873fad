"""Fourier analysis of lattice images: radial power spectra and pixel-size estimation."""

from atomlens.fourier.sampling import (
    SamplingEstimate,
    estimate_for_model,
    estimate_pixel_size,
    radial_power_spectrum,
    reference_image,
)

__all__ = [
    "SamplingEstimate",
    "estimate_for_model",
    "estimate_pixel_size",
    "radial_power_spectrum",
    "reference_image",
]
