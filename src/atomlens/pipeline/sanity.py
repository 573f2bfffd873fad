"""Checks that a model suits an image, from what ``find`` already has: the image's own
lattice (its Bragg peaks) against the atoms found, and the calibrated ``p_real`` of those
atoms. A model used on a material, zone axis or pixel size it was not trained for can
find a confident lattice of its own; these checks turn that into a warning."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from atomlens.locate.atoms import AUTO_IMAGE_GAP_MAX

__all__ = [
    "LATTICE_AGREEMENT_MIN",
    "POSITIONS_GAP_MAX",
    "P_REAL_MEDIAN_MIN",
    "STRONGEST_SPACING_RANGE_A",
    "lattice_agreement",
    "positions_disagreement",
    "strongest_spacing_A",
    "suitability",
]

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

#: Above this median gap between the Gaussian fit's and the network's positions (in their
#: combined σ) ``positions="auto"`` reports the network's positions throughout (the same
#: line, :data:`atomlens.locate.atoms.AUTO_IMAGE_GAP_MAX`), and one of the two is biased.
#: Measured (December 2026, ``haadf-generic``, our simulator, 384–512 px): graphene,
#: graphene under an aberrated probe, MoS2 under a 10 Å film, SrTiO3 [001] and [110]
#: 0.6–1.3; graphene under 10 and 20 Å of film 2.2 and 3.1 (the fit is the biased one:
#: 28 and 32 pm against the network's 16 and 27 pm); Si [110] dumbbells 2.6–7.5 (the
#: network is the biased one: 5–13 pm against the fit's 0.8–3 pm). Real images: SrTiO3
#: ADF 1.7, DyScO3 2.2, gold 2.8, the perovskite ``03_afterimage`` 4.3, Si [110] 5.8
#: (dumbbell spacing 1.91 Å by the network, 1.44 Å by the fit; Si's is 1.36 Å).
POSITIONS_GAP_MAX = AUTO_IMAGE_GAP_MAX

#: Where the strongest Bragg spacing of a crystal image lies [Å] when its pixel size is
#: right. Measured (December 2026, ``_bragg_peaks``): every built-in crystal down each of
#: its listed zone axes and the held-out ones of ``benchmarks/generic_models.py`` (88
#: crystal/axis pairs), simulated at 0.1 and 0.3 Å/px in HAADF and at 0.1 Å/px in BF,
#: 1.25 Å (Ni [111]) to 6.2 Å (2H-MoS2 and WSe2 [110]); the real images at the pixel
#: sizes their sources give, 1.97 (SrTiO3 ABF) to 3.5 Å (the perovskite ``03_afterimage``).
#: A calibration read in the wrong unit (nm for Å: 10×) moves it far outside.
STRONGEST_SPACING_RANGE_A = (1.0, 8.0)


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


def strongest_spacing_A(image: np.ndarray, pixel_size: float, /) -> float | None:
    """The spacing [Å] of the image's strongest lattice reflection at ``pixel_size``
    [Å/px], or None when it shows no reflection (no lattice).

    A generic model cannot know the material, so it cannot estimate the pixel size; but a
    crystal's strongest projected spacing lies within :data:`STRONGEST_SPACING_RANGE_A`,
    and a calibration that puts it outside is most likely wrong.
    """
    k, _ = _bragg_peaks(image, 1)
    if not len(k):
        return None
    return float(pixel_size / np.hypot(*k[0]))


def positions_disagreement(atoms: pd.DataFrame, /) -> float | None:
    """How far the Gaussian fit's positions lie from the network's on an image where
    ``positions="auto"`` kept the network's throughout: the median over refined atoms of
    the larger per-axis ``|fit − network| / √(σ_fit² + σ²)`` [combined σ].

    Parameters
    ----------
    atoms : pandas.DataFrame
        Atoms of one frame from :func:`atomlens.find` (``net_x_px``, ``fit_x_px``,
        ``fit_sigma_x_A``, ``sigma_x_A``, ``refined``, ``position_source`` and the ``y``
        columns).

    Returns
    -------
    float or None
        None when fewer than 20 atoms were refined, the table lacks the columns, or some
        atoms report the fit's position (then the two agreed on the image as a whole).
    """
    need = ("net_x_px", "net_y_px", "fit_x_px", "fit_y_px", "fit_sigma_x_A", "fit_sigma_y_A")
    if not all(c in atoms for c in (*need, "sigma_x_A", "sigma_y_A", "refined", "x_A")):
        return None
    if "position_source" in atoms and (atoms["position_source"] == "fit").any():
        return None
    cut = atoms["border_cut"].to_numpy(bool) if "border_cut" in atoms else False
    use = atoms["refined"].to_numpy(bool) & ~cut
    a = atoms[use]
    if len(a) < 20:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        ps = np.nanmedian(a["x_A"].to_numpy(float) / a["x_px"].to_numpy(float))
        d = np.abs(a[["fit_x_px", "fit_y_px"]].to_numpy(float) - a[["net_x_px", "net_y_px"]])
        s = np.hypot(
            a[["fit_sigma_x_A", "fit_sigma_y_A"]].to_numpy(float),
            a[["sigma_x_A", "sigma_y_A"]].to_numpy(float),
        )
        gap = (d * ps / s).max(axis=1)
    gap = gap[np.isfinite(gap)]
    return float(np.median(gap)) if len(gap) >= 20 else None


def suitability(
    image: np.ndarray,
    atoms: pd.DataFrame,
    /,
    *,
    model_name: str,
    name: str,
    pixel_size: float | None = None,
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
    pixel_size : float, optional
        The pixel size [Å/px] the atoms were found at: checked against the image's
        strongest lattice spacing (:func:`strongest_spacing_A`).
    """
    out = []
    d = None if pixel_size is None else strongest_spacing_A(image, pixel_size)
    lo, hi = STRONGEST_SPACING_RANGE_A
    if d is not None and not lo <= d <= hi:
        out.append(
            f"{name}: at {pixel_size:g} Å/px the image's strongest lattice spacing is "
            f"{d:.3g} Å, where crystals' strongest projected spacings lie within "
            f"{lo:g}–{hi:g} Å: the pixel size is likely wrong (a calibration in nm read as Å "
            f"is 10× off; about {pixel_size * 2.5 / d:.2g} Å/px would put it at a typical "
            "2.5 Å); pass the right `pixel_size`"
        )
    fix = (
        "check overlay.png; another model (`atomlens models`: haadf-any for crystals down "
        "any zone axis, abf-any for bright field), or the right `pixel_size`, may suit it"
    )
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
    gap = positions_disagreement(atoms)
    if gap is not None and gap > POSITIONS_GAP_MAX:
        out.append(
            f"{name}: the Gaussian fit and the network place the atoms differently (median "
            f"{gap:.1f} combined σ apart; within about 1 σ on images like the model's "
            "training data), so one of them is biased and the reported (network) positions "
            "may be off by more than their σ. A film or non-Gaussian probe tails bias the "
            "fit; a structure the model was not trained for biases the network (simulated "
            "Si [110] dumbbells: network 5–13 pm off, fit 1–3 pm). Compare with "
            "`positions='fit'`"
        )
    return out
