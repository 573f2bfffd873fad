"""Calibrate an ensemble for new frames without labels: simulated images in the frames' own
look, with their exact atoms.

An ensemble's calibration (``p_real`` and the σ scale, :mod:`atomlens.ensemble.calibration`)
is measured on simulated images of its training conditions. Under another dose, probe or a
film the same evidence means something else: ``p_real`` becomes over-confident, and an
adapted ensemble's members have changed, so :func:`atomlens.elit.adapt` cannot keep the old
calibration. Labels for the new conditions are what nobody has. Simulated images that carry
the frames' own film, noise, blur and sampling (:class:`atomlens.elit.sources.FrameStyledSource`)
do have exact atoms, so the calibration is measured on those instead.

This needs what the styled images need: frames of a crystal of the model's material
(:func:`atomlens.fourier.bragg_split` refuses others and says so).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from atomlens._shared.validate import validate_pixel_size
from atomlens.elit.sources import simulated_source
from atomlens.ensemble import as_ensemble
from atomlens.inference import resample
from atomlens.train import fit_calibration
from atomlens.train.validation import ValidationSet

__all__ = ["recalibrate", "styled_validation"]

logger = logging.getLogger(__name__)

#: Side of the styled validation images [px at the model's sampling] (smaller frames: theirs).
_SIDE = 256


def styled_validation(
    ensemble: Any,
    frames: Sequence[np.ndarray],
    /,
    *,
    pixel_size: float,
    images: int = 12,
    seed: int = 0,
    simulated: Any = None,
    pixel_noise: str = "modelled",
    match_blur: bool = True,
    match_sampling: bool = True,
    film: str = "estimated",
) -> Any:
    """Simulated images of the ensemble's material in the look of ``frames``, with their
    exact atoms.

    Parameters
    ----------
    ensemble : Ensemble, Model or path
        Whose material, training conditions and sampling are simulated.
    frames : sequence of ndarray (H, W)
        Frames of the new conditions, at one sampling.
    pixel_size : float
        The frames' pixel size [Å/px].
    images : int
        How many images (256² px at the model's sampling, or the frames' size if smaller).
    seed : int
        Seed of the simulations and of the crops of the frames' film.
    simulated : ConditionRanges, optional
        What to simulate; by default the conditions the model was trained on, from its
        provenance (as :func:`atomlens.elit.adapt`).
    pixel_noise, match_blur, match_sampling, film
        How the frames' look is carried over (:class:`atomlens.elit.sources.FrameStyledSource`).

    Returns
    -------
    atomlens.train.validation.ValidationSet

    Raises
    ------
    ValueError
        When ``images`` < 1, or no frame shows a crystal lattice (names the frames).
    """

    if not (isinstance(images, int | np.integer) and images >= 1):
        raise ValueError(f"images must be an int ≥ 1, got {images!r}.")
    ps = validate_pixel_size(pixel_size)
    c = as_ensemble(ensemble).config
    at_model = [
        resample(np.asarray(f, dtype=np.float32), factor=ps / c.pixel_size_A) for f in frames
    ]
    if not at_model:
        raise ValueError("styled_validation needs at least one frame.")
    side = int(min(_SIDE, min(min(f.shape) for f in at_model) // 8 * 8))
    src = simulated_source(
        c, simulated, side, seed, at_model, pixel_noise, match_blur, match_sampling, film
    )
    val = [src.labelled(i) for i in range(int(images))]
    return ValidationSet(
        images=[v[0] for v in val],
        truths=[v[1] for v in val],
        pixel_sizes=[v[2] for v in val],
        hidden=[v[3] for v in val],
    )


def recalibrate(
    ensemble: Any,
    frames: Sequence[np.ndarray],
    /,
    *,
    pixel_size: float,
    images: int = 12,
    seed: int = 0,
    **style: Any,
) -> Any:
    """The ensemble's calibration measured for ``frames``: on :func:`styled_validation`
    images (their look, exact atoms), not on its training conditions.

    Set it with ``ensemble.calibration = recalibrate(ensemble, frames, pixel_size=…)``;
    :func:`atomlens.pipeline.finder.find` then reports ``p_real`` and σ as measured in the frames'
    look, and ``find(…, p_real_min=0.5)`` rejects the candidates more likely false than
    real there.

    Parameters
    ----------
    ensemble : Ensemble or path
        The ensemble (not modified).
    frames : sequence of ndarray (H, W)
        Frames of the new conditions; best frames the ensemble was not trained on.
    pixel_size : float
        The frames' pixel size [Å/px].
    images, seed, **style
        As in :func:`styled_validation` (``simulated``, ``pixel_noise``, ``match_blur``,
        ``match_sampling``, ``film``).

    Returns
    -------
    atomlens.ensemble.Calibration
    """

    ens = as_ensemble(ensemble)
    val = styled_validation(ens, frames, pixel_size=pixel_size, images=images, seed=seed, **style)
    cal = fit_calibration(ens, val.images, val.truths, val.pixel_sizes, hidden=val.hidden)
    logger.info("recalibrated on %d images in the frames' look: %s", images, cal)
    return cal
