"""Old home of the frame-styled simulation, kept as re-exports while the code that names
it moves to the new paths (remove once nothing imports it):

- Fourier analysis of a frame: :mod:`atomlens.fourier` (``BraggSplit``, ``bragg_split``,
  ``ring_power``, ``relative_sampling``);
- the frames' noise, film and blur: :mod:`atomlens.elit.style` (``PixelNoise``,
  ``fit_pixel_noise``, ``fit_film_thickness``, ``extra_blur``);
- the training source: :class:`atomlens.elit.sources.FrameStyledSource`.
"""

from atomlens.elit.sources import FrameStyledSource
from atomlens.elit.style import PixelNoise, extra_blur, fit_film_thickness, fit_pixel_noise
from atomlens.fourier import BraggSplit, bragg_split, relative_sampling, ring_power

__all__ = [
    "BraggSplit",
    "FrameStyledSource",
    "PixelNoise",
    "bragg_split",
    "extra_blur",
    "fit_film_thickness",
    "fit_pixel_noise",
    "relative_sampling",
    "ring_power",
]
