"""Checks that a model suits an image, from what ``find`` already has: the image's own
lattice (its Bragg peaks) against the atoms found, and the calibrated ``p_real`` of those
atoms. A model used on a material, zone axis or pixel size it was not trained for can
find a confident lattice of its own; these checks turn that into a warning."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

__all__ = ["LATTICE_AGREEMENT_MIN", "P_REAL_MEDIAN_MIN", "lattice_agreement", "suitability"]

#: Below this agreement the atoms do not follow the image's lattice. Measured (December
#: 2026) with the bundled models: correct atoms gave 0.30 (simulated graphene), 0.46
#: (simulated SrTiO3), 0.58 (real SrTiO3 ADF), 0.20 (real Si [110], one atom per dumbbell)
#: and 0.069 (real DyScO3, whose brightest reflections come from the Dy columns alone);
#: the exact columns of a simulated SrTiO3 image, O included, 0.054 (the O columns cancel
#: the Sr/Ti reflections that HAADF shows): the closest to the line. Graphene's model on
#: the real gold grain boundary gave 0.023–0.025, haadf-generic there (many atoms between
#: the columns) 0.020. Graphene's model on a simulated SrTiO3 image follows its bright
#: columns (0.28): the ``p_real`` check is what catches that one.
LATTICE_AGREEMENT_MIN = 0.04

#: Below this median ``p_real`` the model itself takes most of its atoms for false ones
#: (graphene's model on the gold grain boundary: 0.001–0.04; on graphene: 0.998).
P_REAL_MEDIAN_MIN = 0.2


def _bragg_peaks(image: np.ndarray, n_peaks: int) -> tuple[np.ndarray, np.ndarray]:
    """Spatial frequencies [cycles/px] (x, y) of the strongest lattice reflections and
    their height over the radial median of the power spectrum."""
    a = np.asarray(image, float)
    a = a - a.mean()
    h, w = a.shape
    p = np.abs(np.fft.fftshift(np.fft.fft2(a * np.outer(np.hanning(h), np.hanning(w))))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(h))[:, None] * np.ones((1, w))
    fx = np.ones((h, 1)) * np.fft.fftshift(np.fft.fftfreq(w))[None]
    r = np.hypot(fx, fy)
    rings = np.round(r * min(h, w)).astype(int)
    med = np.asarray(ndimage.median(p, rings, index=np.arange(rings.max() + 1)))
    q = p / np.maximum(med[rings], 1e-12)
    q[(r < 4 / min(h, w)) | (r > 0.45)] = 0  # the mean and the corners are no reflections
    peak = (q == ndimage.maximum_filter(q, size=5)) & (q > 20)
    ys, xs = np.nonzero(peak)
    order = np.argsort(-q[ys, xs])[:n_peaks]
    ys, xs = ys[order], xs[order]
    return np.column_stack([fx[ys, xs], fy[ys, xs]]), q[ys, xs]


def lattice_agreement(
    image: np.ndarray, atoms: pd.DataFrame, /, *, n_peaks: int = 12, weight: str | None = None
) -> float | None:
    """How well the atoms follow the image's lattice: their structure factor
    ``|Σ w exp(−2πi k·r)|² / (Σ w)²`` at the image's strongest Bragg reflections ``k``,
    averaged with weights log(peak height). 1 for atoms on a lattice of one column per
    cell; near 0 for atoms that do not follow it.

    Equal weights ``w`` by default. Weighting by column intensity was measured too: it
    raised correct atoms of unlike brightness (DyScO₃ 0.069 → 0.204) but raised invented
    ones more (graphene's model on gold 0.023 → 0.131, against 0.176 for the lowest
    correct set), so it separates worse.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The frame the atoms were found in.
    atoms : pandas.DataFrame
        Its atoms (``x_px, y_px``).
    n_peaks : int
        Reflections used.
    weight : str, optional
        A column of ``atoms`` to weight by (e.g. ``"intensity"``).

    Returns
    -------
    float or None
        None when the image shows fewer than 4 reflections (no lattice to compare with) or
        fewer than 20 atoms were found.
    """
    if len(atoms) < 20:
        return None
    k, height = _bragg_peaks(image, n_peaks)
    if len(k) < 4:
        return None
    xy = atoms[["x_px", "y_px"]].to_numpy(float)
    w = np.ones(len(xy))
    if weight is not None and weight in atoms:
        v = atoms[weight].to_numpy(float)
        if np.isfinite(v).all() and (v > 0).any():
            w = np.clip(v, 0, None)
    s = np.abs((w[:, None] * np.exp(-2j * np.pi * (xy @ k.T))).sum(axis=0)) ** 2 / w.sum() ** 2
    wgt = np.log(height)
    return float(np.sum(wgt * s) / np.sum(wgt))


def suitability(
    image: np.ndarray, atoms: pd.DataFrame, /, *, model_name: str, name: str
) -> list[str]:
    """Warnings that the model may not suit the image (empty when none).

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The frame.
    atoms : pandas.DataFrame
        Its atoms.
    model_name : str
        How to name the model in the message (e.g. "graphene, trained on graphene").
    name : str
        The file or frame, for the message.
    """
    out = []
    fix = "check overlay.png; another model, or the right `pixel_size`, may suit it"
    agree = lattice_agreement(image, atoms)
    if agree is not None and agree < LATTICE_AGREEMENT_MIN:
        out.append(
            f"{name}: the {len(atoms)} atoms found do not follow the image's lattice "
            f"(agreement {agree:.3f} with its Bragg reflections; correct atoms give "
            f"0.07–0.6): the model ({model_name}) may not suit this material, zone axis or "
            f"pixel size; {fix}"
        )
    if "p_real" in atoms and len(atoms) >= 20:
        med = float(np.nanmedian(atoms["p_real"]))
        if med < P_REAL_MEDIAN_MIN:
            out.append(
                f"{name}: the model ({model_name}) takes most of its {len(atoms)} atoms for "
                f"false detections (median p_real {med:.3f}): the image is likely not what it "
                f"was trained for; {fix}"
            )
    return out
