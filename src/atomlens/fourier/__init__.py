"""Fourier analysis of lattice images: radial power spectra, Bragg reflections (a frame
split into its lattice and aperiodic parts) and pixel-size estimation."""

from atomlens.fourier.bragg import BraggSplit, bragg_split
from atomlens.fourier.sampling import (
    SamplingEstimate,
    estimate_for_model,
    estimate_pixel_size,
    reference_image,
    relative_sampling,
)
from atomlens.fourier.spectra import radial_power_spectrum, ring_power

__all__ = [
    "BraggSplit",
    "SamplingEstimate",
    "bragg_split",
    "estimate_for_model",
    "estimate_pixel_size",
    "radial_power_spectrum",
    "reference_image",
    "relative_sampling",
    "ring_power",
]
