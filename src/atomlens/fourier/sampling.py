"""Estimate an image's pixel size from its lattice, against simulations of the material
the model was trained on.

:func:`estimate_pixel_size` needs no lattice indexing. The radially averaged power
spectrum of a crystal image has peaks at the lattice's spatial frequencies. On a
logarithmic frequency axis a change of sampling is a shift, so the pixel size is found by
cross-correlating the image's whitened log-spectrum with the reference's (a noise-free
simulation of the model's materials at the model's sampling): every order of reflection
votes, so a strong second order cannot be mistaken for the first (which a single-peak
estimate does: +72 % on one graphene image at 0.17 Å/px, measured once when this estimator
was added in November 2026; no benchmark repeats it). Its error on simulated graphene is in
``docs/tutorials/find.md`` ("The pixel size"); ``tests/fourier/test_sampling.py`` holds
it within 2 %.

:func:`relative_sampling` compares the reciprocal cells that :func:`~atomlens.fourier.bragg_split`
indexed on a frame and on noise-free simulations (ELIT simulates at the frames' own
sampling with it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from atomlens.fourier.bragg import BraggSplit
from atomlens.fourier.spectra import radial_power_spectrum

__all__ = [
    "SamplingEstimate",
    "estimate_for_model",
    "estimate_pixel_size",
    "reference_image",
    "relative_sampling",
]

logger = logging.getLogger(__name__)

_GRID = np.linspace(np.log(1 / 256), np.log(0.5), 480)  # log spatial frequency [cycles/px]

#: Sublattice indices a frame's reciprocal basis may have against the crystal's other than
#: 1: its lowest reflections hidden (3: graphene's second shell; 2 and 4: a square
#: lattice's), or stray maxima indexed as a finer lattice (1/2, 1/3, 1/4).
_CELL_INDICES = (2.0, 3.0, 4.0, 1 / 2, 1 / 3, 1 / 4)


@dataclass(frozen=True)
class SamplingEstimate:
    """An estimated pixel size.

    Attributes
    ----------
    pixel_size : float
        [Å/px].
    contrast : float
        Height of the best correlation over the best one at a clearly different scale
        (1: no preference; below ``min_contrast`` the estimate is refused).
    """

    pixel_size: float
    contrast: float


def _whitened_log_spectrum(image: np.ndarray) -> np.ndarray:
    k, p = radial_power_spectrum(image)
    sel = k > 0
    g = np.interp(_GRID, np.log(k[sel]), np.log(p[sel] + 1e-30), left=np.nan, right=np.nan)
    g = np.where(np.isfinite(g), g, np.nanmin(g))
    g = g - ndimage.gaussian_filter1d(g, 20)  # peaks above the falling trend
    return np.clip(g, 0, None)


def reference_image(materials: list[str], pixel_size: float, /, *, side: int = 256) -> np.ndarray:
    """A noise-free HAADF image of the first material at ``pixel_size`` (the reference)."""
    # deferred: the simulator is needed only when a file has no pixel size, and importing
    # it would make every ``atomlens.find`` load it
    from atomlens.simulate import ImagingConditions, simulate_image

    return simulate_image(
        materials[0],
        shape=side,
        pixel_size=pixel_size,
        rng=0,
        conditions=ImagingConditions(dose_e_per_A2=1e9),
    ).image


def estimate_pixel_size(
    image: np.ndarray,
    /,
    *,
    reference: np.ndarray,
    reference_pixel_size: float,
    max_ratio: float = 5.0,
    min_contrast: float = 1.15,
    min_peak: float = 2.0,
) -> SamplingEstimate:
    """Estimate the pixel size of ``image`` from its lattice.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The image (at least a few lattice periods across).
    reference : ndarray of shape (h, w)
        An image of the same material at a known sampling (:func:`reference_image`).
    reference_pixel_size : float
        Its pixel size [Å/px].
    max_ratio : float
        Search pixel sizes within ``reference_pixel_size`` ÷/× this.
    min_contrast : float
        Refuse when the best scale is not this much better than any clearly different one.
    min_peak : float
        Refuse when no spatial frequency carries this many times the power of its
        neighbourhood (Poisson noise alone reached about 1.5, lattices 2.5–100, measured
        when this estimator was added in November 2026; no benchmark repeats it).

    Returns
    -------
    SamplingEstimate

    Raises
    ------
    ValueError
        The image shows no lattice that matches the reference.
    """
    a, b = _whitened_log_spectrum(image), _whitened_log_spectrum(reference)
    if a.max() < np.log(min_peak):
        raise ValueError(
            f"the image shows no periodic lattice (strongest spatial frequency "
            f"{np.exp(a.max()):.2f}× its surroundings, below {min_peak:g}×)"
        )
    dg = _GRID[1] - _GRID[0]
    n = int(np.log(max_ratio) / dg)
    shifts = np.arange(-n, n + 1)
    cc = np.array([float(np.sum(a * np.roll(b, s))) for s in shifts])
    j = int(np.argmax(cc))
    if cc[j] <= 0:
        raise ValueError("the image shows no periodic lattice to estimate the pixel size from")
    d = 0.0
    if 0 < j < len(cc) - 1:
        y0, y1, y2 = cc[j - 1 : j + 2]
        den = y0 - 2 * y1 + y2
        d = 0.5 * (y0 - y2) / den if den != 0 else 0.0
    far = np.abs(shifts - shifts[j]) * dg > np.log(1.15)  # > 15 % away
    runner_up = float(cc[far].max()) if far.any() else 0.0
    contrast = float(cc[j] / runner_up) if runner_up > 0 else float("inf")
    ps = float(reference_pixel_size * np.exp((shifts[j] + d) * dg))
    if contrast < min_contrast:
        raise ValueError(
            f"the lattice does not fix the pixel size (best guess {ps:.4g} Å/px, contrast "
            f"{contrast:.2f})"
        )
    return SamplingEstimate(ps, contrast)


def estimate_for_model(image: np.ndarray, config: Any, /) -> SamplingEstimate:
    """:func:`estimate_pixel_size` against the model's training material.

    Raises
    ------
    ValueError
        The model does not record its training materials, was trained on several (then the
        lattice does not fix the scale), or no lattice was found.
    """
    mats = (config.provenance or {}).get("materials")
    if not mats:
        raise ValueError("the model does not record the materials it was trained on")
    if len(mats) > 1:
        # a lattice fixes the scale only when the material is known: graphene at 0.1 Å/px
        # and a perovskite at 0.17 Å/px can give the same spectrum
        raise ValueError(
            f"the model was trained on several materials ({', '.join(mats)}), so the lattice "
            "alone does not tell the scale"
        )
    ref = reference_image(list(mats), float(config.pixel_size_A))
    return estimate_pixel_size(image, reference=ref, reference_pixel_size=config.pixel_size_A)


def relative_sampling(
    frame: BraggSplit,
    references: Sequence[BraggSplit],
    /,
    *,
    tolerance: float = 0.15,
    index_tolerance: float = 0.07,
) -> float:
    """How much larger a frame's pixels are than the references' [ratio], read off the
    area of their reciprocal cells.

    A lattice's reciprocal cell, ``|det(basis)|`` [cycles²/px²], grows as the pixel size
    squared, whatever the rotation. The ratio is believed within ``tolerance`` of 1. When
    it is not, the frame's basis may span a sublattice of index ``k`` (its lowest
    reflections hidden: a thick film hides graphene's first order, leaving the second
    shell, ``k = 3``), or a finer one (``1/k``); geometry alone cannot tell a sublattice
    of index 3 from one of index 4 at a 15 % different scale, so those readings are
    believed only within ``index_tolerance`` of 1, where at most one index fits. A frame's
    strain (a few %) is in its figure; the references should be unstrained.

    Parameters
    ----------
    frame : BraggSplit
        The frame's split, resampled to the references' nominal sampling.
    references : sequence of BraggSplit
        Splits of noise-free, unstrained simulations of the crystal, at one pixel size.
    tolerance, index_tolerance : float
        Largest relative difference from the references' sampling that is believed, for the
        crystal's own cell and for a sublattice of it.

    Returns
    -------
    float
        The frame's pixel size over the references' (1: the same sampling), or NaN when
        either has no indexed lattice or no reading lies within its tolerance.
    """
    cells = [abs(np.linalg.det(r.basis)) for r in references if r.basis is not None]
    if frame.basis is None or not cells:
        return float("nan")
    ratio = float(np.sqrt(abs(np.linalg.det(frame.basis)) / float(np.mean(cells))))
    if abs(ratio - 1) <= tolerance:
        return ratio
    best = min((ratio / np.sqrt(k) for k in _CELL_INDICES), key=lambda v: abs(np.log(v)))
    return float(best) if abs(best - 1) <= index_tolerance else float("nan")
