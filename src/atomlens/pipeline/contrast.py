"""Are the atoms bright (HAADF, ADF) or dark (BF, ABF) in an image, and does the network
need the image inverted?

A network trained on one contrast sees the other's background as atoms: an ABF image
through a HAADF model gives an atom between every pair of columns, each as confident as a
real one. :func:`atom_contrast` takes the polarity from the setting or the file's detector
when either says, and :func:`atomlens.pipeline.find` then inverts the image for the network
when it differs from the model's. When neither says, the image is measured, and an image
whose atoms look opposite to the model's gets a warning that names the fix
(``contrast="dark"``) but is not inverted: the statistic is not safe enough to act on
alone (below).

The image statistic is the skewness of the intensities after a Gaussian smoothing of
``SMOOTH_A`` (0.3 Å, which takes the Poisson noise's own positive skew out): sharp bright
columns on a dark background skew positive, dark columns on a bright one negative. Measured
(``benchmarks``-style, 192² px at 0.1 Å/px, SrTiO3/MoS2/graphene, doses 1e3–1e6 e⁻/Å², with
and without a 30 Å carbon film): HAADF ≥ +0.04 (graphene without film; SrTiO3 and MoS2
≥ +1.4), BF of SrTiO3 and MoS2 ≤ −0.83, BF of graphene −0.56…+0.13 (its lattice barely
shows); the real SrTiO3 ABF −0.50, its ADF +1.14, the AtomSegNet HAADF PNGs +0.44…+1.30.
Beyond −``SKEW_THRESHOLD`` (0.2) the image looks dark-atomed. Why that only warns: a
honeycomb (graphene) under a broad probe is a bright network around dark hole centres and
skews negative in HAADF too (−0.41 and −0.36 on the tests' training validation images,
0.14–0.16 Å/px, Gaussian probe), close to the real ABF image's −0.50; inverting on the
statistic alone would break those HAADF images.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

__all__ = [
    "CONTRASTS",
    "ContrastDecision",
    "atom_contrast",
    "check_contrast",
    "model_polarity",
    "signal_polarity",
]

logger = logging.getLogger(__name__)

CONTRASTS = ("auto", "bright", "dark")
SMOOTH_A = 0.3
SKEW_THRESHOLD = 0.2

Polarity = Literal["bright", "dark"]


@dataclass(frozen=True)
class ContrastDecision:
    """How the atoms look in an image and why.

    Attributes
    ----------
    atoms : {"bright", "dark"}
        The atoms' polarity in the image.
    reason : str
        Where it comes from (the setting, the file's signal type, the image's skewness).
    skewness : float or None
        The smoothed intensity skewness, when the image was measured.
    looks : {"bright", "dark"} or None
        What the image statistic suggests when it disagrees with ``atoms`` (then a warning
        is due), else None.
    """

    atoms: Polarity
    reason: str
    skewness: float | None = None
    looks: Polarity | None = None

    def __str__(self) -> str:
        return f"{self.atoms} ({self.reason})"


def check_contrast(contrast: object, /, *, name: str = "`contrast`") -> None:
    """Refuse a ``contrast`` setting that is not "auto", "bright" or "dark".

    Raises
    ------
    ValueError
        The message names the three values.
    """
    if contrast not in CONTRASTS:
        raise ValueError(
            f"{name} must be 'auto', 'bright' (atoms bright: HAADF, ADF) or 'dark' (atoms "
            f"dark: BF, ABF), got {contrast!r}."
        )


def model_polarity(model_contrast: str, /) -> Polarity:
    """The atoms' polarity in the images a model was trained on (config ``contrast``)."""
    return "bright" if model_contrast == "haadf" else "dark"


def signal_polarity(signal_type: str | None, /) -> Polarity | None:
    """The atoms' polarity a detector's ``signal_type`` names (BF, ABF: "dark"; ADF,
    HAADF, DF: "bright"), or None when it names neither."""
    if not signal_type:
        return None
    s = re.sub(r"[^A-Z]", "", signal_type.upper())
    if "BF" in s or "BRIGHTFIELD" in s:
        return "dark"
    if "DF" in s or "DARKFIELD" in s:
        return "bright"
    return None


def _skewness(image: np.ndarray, pixel_size: float) -> float | None:
    a = np.asarray(image, dtype=np.float64)
    a = a if a.ndim == 2 else a[0]
    a = ndimage.gaussian_filter(a, SMOOTH_A / pixel_size)
    d = a - a.mean()
    d2 = d * d
    sd = float(np.sqrt(np.mean(d2)))
    if not sd > 0:
        return None
    return float(np.mean(d2 * d) / sd**3)  # d2 * d, not d**3: 10× faster than pow


def atom_contrast(
    image: np.ndarray,
    /,
    *,
    pixel_size: float,
    contrast: str = "auto",
    signal_type: str | None = None,
    model_contrast: str = "haadf",
) -> ContrastDecision:
    """Decide whether the atoms in ``image`` are bright or dark.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (C, H, W)
        The raw image (its first channel is measured).
    pixel_size : float
        [Å/px], for the smoothing.
    contrast : {"auto", "bright", "dark"}
        "bright" or "dark" are taken as given; "auto" reads ``signal_type`` (BF, ABF:
        dark; HAADF, ADF, DF: bright) and, failing that, assumes the model's contrast and
        measures the image's smoothed intensity skewness: when it clearly says the
        opposite, ``looks`` is set (see the module notes for the measured values).
    signal_type : str, optional
        The file's detector or signal type (:attr:`atomlens.io.Image.signal_type`).
    model_contrast : {"haadf", "bf"}
        The model's contrast, assumed when the image does not tell.

    Returns
    -------
    ContrastDecision

    Raises
    ------
    ValueError
        ``contrast`` is not one of the three.
    """
    check_contrast(contrast)
    if contrast != "auto":
        return ContrastDecision(contrast, "as set")  # type: ignore[arg-type]
    pol = signal_polarity(signal_type)
    if pol is not None:
        return ContrastDecision(pol, f"from the file's signal type {signal_type}")
    sk = _skewness(image, pixel_size)
    own = model_polarity(model_contrast)
    looks: Polarity | None = None
    if sk is not None and sk <= -SKEW_THRESHOLD:
        looks = "dark"
    elif sk is not None and sk >= SKEW_THRESHOLD:
        looks = "bright"
    shown = "undefined" if sk is None else f"{sk:+.2f}"
    return ContrastDecision(
        own,
        f"the model's; the file does not say (intensity skewness {shown})",
        sk,
        looks if looks is not None and looks != own else None,
    )


def network_input(image: np.ndarray, atoms: Polarity, model_contrast: str, /) -> np.ndarray:
    """``image`` as the network expects it: inverted (``max + min − image`` per channel)
    when its atoms' polarity differs from the model's, else unchanged."""
    if atoms == model_polarity(model_contrast):
        return image
    a = np.asarray(image, dtype=np.float64)
    hi = a.max(axis=(-2, -1), keepdims=True)
    lo = a.min(axis=(-2, -1), keepdims=True)
    return hi + lo - a
