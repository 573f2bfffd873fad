"""Samples with known answers for the VAEs: isolated motifs at known rotations, peaks at
known centres and widths, and a spectrum image whose spectra follow the atoms around them.

Motifs are rendered with the simulator's imaging model (:func:`atomlens.simulate.imaging.
render_columns` with a Gaussian probe) and cut out with a circular mask, so that a rotation
of the motif is a rotation of the patch. On patches of a *periodic lattice* a rotation looks
like a translation and the rVAE's angle is not identifiable; use isolated motifs (dopants,
defects, clusters) to learn rotations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from atomlens.simulate.imaging import render_columns
from atomlens.simulate.probe import GaussianProbe

__all__ = ["MOTIFS", "motif_patches", "peak_spectra", "spectrum_image"]

_B = 1.42  # C–C / Si–C bond length in graphene [Å]
_S = np.sqrt(3) / 2

#: Built-in motifs: columns as (x [Å], y [Å], Z), centred on the first column.
MOTIFS: dict[str, list[tuple[float, float, int]]] = {
    # Si dopant with two of its three C neighbours (a vacancy on the third): no rotational
    # symmetry, so rotations are identifiable over a full turn
    "si_c2": [(0, 0, 14), (_B, 0, 6), (-_B / 2, _B * _S, 6)],
    # threefold Si dopant and pristine C with their three neighbours
    "si_c3": [(0, 0, 14), (_B, 0, 6), (-_B / 2, _B * _S, 6), (-_B / 2, -_B * _S, 6)],
    "c_c3": [(0, 0, 6), (_B, 0, 6), (-_B / 2, _B * _S, 6), (-_B / 2, -_B * _S, 6)],
    # three columns in a line (period π) and bent at a right angle (period 2π)
    "linear": [(0, 0, 6), (-_B, 0, 6), (_B, 0, 6)],
    "bent": [(0, 0, 6), (-_B, 0, 6), (0, _B, 6)],
}


def _rng(rng: int | np.random.Generator | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def motif_patches(
    motif: str,
    n: int,
    /,
    *,
    angles_rad: np.ndarray | tuple[float, float] = (-np.pi, np.pi),
    size_px: int = 24,
    pixel_size: float = 0.2,
    fwhm_A: float = 0.8,
    peak_counts: float = 100.0,
    background: float = 2.0,
    shift_px: float = 0.5,
    rng: int | np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy patches of an isolated motif at known rotations, in a circular mask.

    Parameters
    ----------
    motif : str
        A key of :data:`MOTIFS`.
    n : int
        Patches.
    angles_rad : ndarray of shape (n,) or (float, float)
        The rotations [rad] (x towards y, clockwise as displayed), or a range to draw them
        from uniformly.
    size_px : int
        Patch side [px].
    pixel_size : float
        [Å/px].
    fwhm_A : float
        Probe FWHM [Å].
    peak_counts : float
        Expected counts at the centre of a carbon column (Z^1.7 contrast).
    background : float
        Expected counts of the background.
    shift_px : float
        Standard deviation of a random offset of the motif [px].
    rng : int, Generator or None
        Seed.

    Returns
    -------
    patches : ndarray of shape (n, size_px, size_px)
        Poisson counts; outside the inscribed disc the background level.
    angles : ndarray of shape (n,)
        The rotations [rad].
    """
    if motif not in MOTIFS:
        raise ValueError(f"`motif` must be one of {sorted(MOTIFS)}, got {motif!r}.")
    g = _rng(rng)
    if isinstance(angles_rad, tuple):
        angles = g.uniform(angles_rad[0], angles_rad[1], n)
    else:
        angles = np.asarray(angles_rad, float).reshape(n)
    cols = np.asarray(MOTIFS[motif], float)
    w = (cols[:, 2] / 6.0) ** 1.7
    profile = GaussianProbe(fwhm_A).image_profile()
    unit = peak_counts / float(profile(np.zeros(1))[0])
    c = (size_px - 1) / 2
    yy, xx = np.indices((size_px, size_px))
    disc = np.hypot(yy - c, xx - c) <= size_px / 2
    out = np.empty((n, size_px, size_px))
    for i, a in enumerate(angles):
        ca, sa = np.cos(a), np.sin(a)
        xy = cols[:, :2] @ np.array([[ca, sa], [-sa, ca]])  # rows rotated by R(a)
        pos = xy / pixel_size + c + g.normal(0, shift_px, 2)
        lam = background + unit * render_columns(
            pos, weights=w, profile=profile, shape=(size_px, size_px), pixel_size=pixel_size
        )
        out[i] = np.where(disc, g.poisson(lam), background)
    return out, angles


def peak_spectra(
    n: int,
    /,
    *,
    length: int = 128,
    centre_range: tuple[float, float] = (-20.0, 20.0),
    width_range: tuple[float, float] = (3.0, 8.0),
    noise: float = 0.03,
    lorentzian_fraction: float = 0.5,
    rng: int | np.random.Generator | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """``n`` spectra of one peak each, Gaussian or Lorentzian, of known centre and width.

    Returns
    -------
    spectra : ndarray of shape (n, length)
        Unit-height peaks plus Gaussian noise of standard deviation ``noise``.
    truth : pandas.DataFrame
        ``centre`` (channels from the middle), ``width`` (half width at half maximum
        [channels]) and ``lorentzian`` (bool).
    """
    g = _rng(rng)
    centre = g.uniform(*centre_range, n)
    hwhm = g.uniform(*width_range, n)
    lor = g.random(n) < lorentzian_fraction
    e = np.arange(length) - (length - 1) / 2
    d = (e[None] - centre[:, None]) / hwhm[:, None]
    gauss = np.exp(-np.log(2) * d**2)
    lorentz = 1 / (1 + d**2)
    spectra = np.where(lor[:, None], lorentz, gauss) + g.normal(0, noise, (n, length))
    return spectra, pd.DataFrame({"centre": centre, "width": hwhm, "lorentzian": lor})


def spectrum_image(
    *,
    cells: int = 24,
    spacing_A: float = 3.0,
    pixel_size: float = 0.3,
    length: int = 96,
    peak_counts: float = 200.0,
    noise: float = 0.02,
    noise_free: bool = False,
    rng: int | np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """A HAADF image and a spectrum image in which every atom's surroundings set its spectrum.

    A square lattice of heavy columns (weight ``u``) with a light column (weight ``v``)
    halfway to each right-hand neighbour; ``u`` and ``v`` vary smoothly over the field
    (random long-wavelength waves), so each heavy column's patch is set by its ``u`` and the
    ``v`` of its two light neighbours. The spectrum of a heavy column (closed form) is one
    Gaussian peak of centre ``−15 + 30 (u − 0.5)`` channels (from the middle), height
    ``v_left + v_right`` and HWHM 4 channels, plus noise; every pixel carries the spectrum of
    the nearest heavy column.

    Parameters
    ----------
    cells : int
        Heavy columns per side.
    spacing_A : float
        Lattice spacing [Å].
    pixel_size : float
        [Å/px].
    length : int
        Energy channels.
    peak_counts : float
        Expected counts at the centre of a column of weight 1.
    noise : float
        Standard deviation of the Gaussian noise of the spectra.
    noise_free : bool
        Return the expected counts and the spectra without noise instead: the same atoms
        and fields as with noise for the same ``rng`` seed (the noise is drawn last), so the
        known answer a prediction of noisy data is scored against.
    rng : int, Generator or None
        Seed.

    Returns
    -------
    image : ndarray of shape (H, W)
        Poisson counts.
    cube : ndarray of shape (H, W, length)
        The spectrum image.
    atoms : pandas.DataFrame
        The heavy columns: ``x_px, y_px, x_A, y_A, u, v_left, v_right``.
    """
    g = _rng(rng)
    size = int(round(cells * spacing_A / pixel_size))
    k = g.normal(0, 1, (2, 3, 2)) * 2 * np.pi / (cells * spacing_A) * 1.5
    ph = g.uniform(0, 2 * np.pi, (2, 3))

    def field(i: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        s = sum(np.sin(k[i, j, 0] * x + k[i, j, 1] * y + ph[i, j]) for j in range(3))
        return 0.5 + 0.5 * np.tanh(s / 1.5)  # 0…1

    idx = np.arange(cells) + 0.5
    hx, hy = np.meshgrid(idx * spacing_A, idx * spacing_A)
    hx, hy = hx.ravel(), hy.ravel()
    lx, ly = hx + spacing_A / 2, hy
    u = 0.5 + field(0, hx, hy)  # 0.5…1.5
    v_light = 0.1 + 0.4 * field(1, lx, ly)
    pos = np.concatenate([np.stack([hx, hy], 1), np.stack([lx, ly], 1)]) / pixel_size
    wts = np.concatenate([u, v_light])
    profile = GaussianProbe(0.8).image_profile()
    unit = peak_counts / float(profile(np.zeros(1))[0])
    expected = 2.0 + unit * render_columns(
        pos, weights=wts, profile=profile, shape=(size, size), pixel_size=pixel_size
    )
    image = expected if noise_free else g.poisson(expected).astype(np.float64)
    v_right = v_light
    left_x = hx - spacing_A / 2
    v_left = 0.1 + 0.4 * field(1, left_x, hy)
    e = np.arange(length) - (length - 1) / 2
    centre = -15 + 30 * (u - 0.5)
    spec = (v_left + v_right)[:, None] * np.exp(-np.log(2) * ((e[None] - centre[:, None]) / 4) ** 2)
    yy, xx = np.indices((size, size))
    nearest_x = np.clip(np.floor(xx * pixel_size / spacing_A).astype(int), 0, cells - 1)
    nearest_y = np.clip(np.floor(yy * pixel_size / spacing_A).astype(int), 0, cells - 1)
    cube = spec[nearest_y * cells + nearest_x]
    if not noise_free:
        cube = cube + g.normal(0, noise, (size, size, length))
    atoms = pd.DataFrame(
        {
            "x_px": hx / pixel_size,
            "y_px": hy / pixel_size,
            "x_A": hx,
            "y_A": hy,
            "u": u,
            "v_left": v_left,
            "v_right": v_right,
        }
    )
    return image, cube, atoms
