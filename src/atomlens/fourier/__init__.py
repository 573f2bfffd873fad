"""Fourier analysis of lattice images: radial power spectra, Bragg reflections (a frame
split into its lattice and aperiodic parts), pixel-size estimation, and where a frame
shows a lattice at all (region maps: crystal, amorphous, vacuum, saturated)."""

from atomlens.fourier.bragg import BraggSplit, bragg_split
from atomlens.fourier.regions import REGIONS, RegionMap, region_map
from atomlens.fourier.sampling import (
    SamplingEstimate,
    estimate_for_model,
    estimate_pixel_size,
    reference_image,
    relative_sampling,
)
from atomlens.fourier.spectra import radial_power_spectrum, ring_power

__all__ = [
    "REGIONS",
    "BraggSplit",
    "RegionMap",
    "SamplingEstimate",
    "bragg_split",
    "estimate_for_model",
    "estimate_pixel_size",
    "radial_power_spectrum",
    "reference_image",
    "region_map",
    "relative_sampling",
    "ring_power",
]
