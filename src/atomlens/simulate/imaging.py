"""The imaging model: incoherent column images, amorphous background, dose and noise.

HAADF-STEM is modelled as incoherent imaging. Each column ``j`` scatters a fraction of the
beam into the detector with cross-section ``σ_j = σ_C · Σ_atoms (Z/6)^γ`` [Å²], carbon's
cross-section ``σ_C`` being an effective, detector-dependent constant; the scattered fraction
seen with the probe at ``r`` is ``s(r) = Σ_j σ_j P(|r − r_j|) + s_film(r)``, ``P`` the column
image profile [1/Å²] (:mod:`atomlens.simulate.probe`). The expected counts per pixel are
``λ = D·a²·s`` for a dose ``D`` [e⁻/Å²] and pixel size ``a`` [Å]; the detector records
``Poisson(λ)`` plus Gaussian read noise. Bright field (``mode="bf"``) records what is *not*
scattered, ``λ = D·a²·(T₀ − s)``: columns are dark on a bright background.

STEM pixels are point samples of the probe position, so nothing is integrated over the pixel
area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from atomlens._shared.validate import validate_positive
from atomlens.simulate.distortions import ScanField
from atomlens.simulate.probe import RadialProfile

__all__ = ["Background", "add_noise", "render_columns", "render_film"]

#: Areal number density of amorphous carbon per Å of film thickness [atoms/Å³] (2 g/cm³).
AMORPHOUS_CARBON_DENSITY = 0.1


def _core_and_tail_radius(profile: RadialProfile) -> tuple[float, float]:
    # The core is evaluated exactly per pixel; beyond it (Airy rings, aberration halo) the
    # profile is applied by an FFT convolution of bilinearly splatted weights, which keeps
    # each column's centroid exactly and costs one FFT instead of N large windows.
    # For broad profiles (heavily aberrated probes) the core stops at 2.5 σ, 1.5 Å at least:
    # windows grow as σ², and beyond that the profile is smooth on the pixel scale.
    core = min(4.0 * profile.sigma_A, max(2.5 * profile.sigma_A, 1.5))
    tail = profile.radius_enclosing(0.995)
    return core, max(tail, core)


def render_columns(
    positions_px: np.ndarray,
    /,
    *,
    weights: np.ndarray,
    profile: RadialProfile,
    shape: tuple[int, int],
    pixel_size: float,
    image_px: np.ndarray | None = None,
    scan: ScanField | None = None,
    jitter_margin_px: float = 0.0,
) -> np.ndarray:
    """Render ``Σ_j w_j P(|r − r_j|)`` at the probe positions of every pixel.

    The profile's core (the central maximum and the first rings) is evaluated exactly at every
    pixel around each column; its far tail is added by an FFT convolution of the column
    weights, splatted bilinearly, with the tail part of the profile.

    Parameters
    ----------
    positions_px : ndarray of shape (N, 2)
        Specimen positions of the columns (x, y) in undistorted pixel coordinates [px].
    weights : ndarray of shape (N,)
        Column weights (e.g. cross-sections [Å²]).
    profile : RadialProfile
        Column image profile ``P(r)`` [1/Å²].
    shape : tuple of int
        Image shape (H, W).
    pixel_size : float
        Pixel size [Å/px].
    image_px : ndarray of shape (N, 2), optional
        Where each column appears in the image (after scan distortion) [px]; defaults to
        ``positions_px``.
    scan : ScanField, optional
        Where the probe really was at each pixel (scan distortions); ``None`` for a perfect
        scan.
    jitter_margin_px : float
        Extra window margin covering pixel-to-pixel jumps of the scan (line jitter) [px].

    Returns
    -------
    ndarray of shape (H, W)
        The rendered signal, in units of ``weights`` per Å².
    """
    h, w = shape
    pos = np.asarray(positions_px, dtype=float).reshape(-1, 2)
    wts = np.asarray(weights, dtype=float).reshape(-1)
    img_pos = pos if image_px is None else np.asarray(image_px, dtype=float).reshape(-1, 2)
    if len(pos) == 0:
        return np.zeros((h, w))
    r_core, r_tail = _core_and_tail_radius(profile)
    half = int(math.ceil(r_core / pixel_size + jitter_margin_px)) + 1
    off = np.arange(-half, half + 1)
    ix = np.round(img_pos[:, 0]).astype(np.int64)
    iy = np.round(img_pos[:, 1]).astype(np.int64)
    keep = (ix + half >= 0) & (ix - half < w) & (iy + half >= 0) & (iy - half < h)
    ix, iy, pos_k, w_k = ix[keep], iy[keep], pos[keep], wts[keep]
    # Render on a canvas padded by 2·half so that every window pixel is in bounds: no masks,
    # one bincount, then crop (measured ~2× faster than masking out-of-bounds pixels).
    pad = 2 * half
    cw = w + 2 * pad
    cols = ix[:, None] + off[None, :]  # (N, K), image coordinates
    rows = iy[:, None] + off[None, :]
    # Distance from each window pixel's probe position to the column, using the separable
    # form of the scan displacement: x = j + ax[i] + bx[j], y = i + ay[i] + by[j].
    f32 = np.float32
    if scan is None:
        ddx = (cols - pos_k[:, :1]).astype(f32)  # (N, K) along columns
        ddy = (rows - pos_k[:, 1:]).astype(f32)  # (N, K) along rows
        r2 = ddy[:, :, None] ** 2 + ddx[:, None, :] ** 2  # (N, K, K): rows then columns
    else:
        ax, ay = scan.row_offsets(rows)
        bx, by = scan.col_offsets(cols)
        ddx = (cols + bx - pos_k[:, :1]).astype(f32)
        ddy = (rows + ay - pos_k[:, 1:]).astype(f32)
        r2 = (ddx[:, None, :] + ax.astype(f32)[:, :, None]) ** 2
        r2 += (ddy[:, :, None] + by.astype(f32)[:, None, :]) ** 2
    vals = profile.of_r2(r2 * np.float32(pixel_size**2), r_max_A=r_core) * w_k[:, None, None]
    flat = (rows + pad)[:, :, None] * cw + (cols + pad)[:, None, :]
    canvas = np.bincount(flat.ravel(), weights=vals.ravel(), minlength=(h + 2 * pad) * cw)
    out = canvas.reshape(h + 2 * pad, cw)[pad : pad + h, pad : pad + w].copy()
    if 1.0 - profile.enclosed(r_core) > 1e-3:
        out += _render_tail(img_pos, wts, profile, shape, pixel_size, r_core, r_tail)
    return out


def _render_tail(img_pos, wts, profile, shape, pixel_size, r_core, r_tail) -> np.ndarray:
    h, w = shape
    half = int(math.ceil(r_tail / pixel_size))
    # Bilinear splat of the weights onto a grid padded by the kernel half-width, so that
    # columns outside the field of view still send their tails in.
    ph, pw = h + 2 * half, w + 2 * half
    x = img_pos[:, 0] + half
    y = img_pos[:, 1] + half
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    grid = np.zeros(ph * pw)
    for ddx, ddy, f in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        xx, yy = x0 + ddx, y0 + ddy
        ok = (xx >= 0) & (xx < pw) & (yy >= 0) & (yy < ph)
        grid += np.bincount(yy[ok] * pw + xx[ok], weights=(wts * f)[ok], minlength=ph * pw)
    k = np.arange(-half, half + 1) * pixel_size
    rk = np.hypot(k[:, None], k[None, :])
    kernel = np.where((rk >= r_core) & (rk <= r_tail), profile(rk), 0.0)
    full = fftconvolve(grid.reshape(ph, pw), kernel, mode="same")
    return full[half : half + h, half : half + w]


@dataclass(frozen=True)
class Background:
    """A slowly varying background: an amorphous carbon support film and its variations.

    The film is made of randomly placed carbon atoms (areal density
    ``0.1 atoms/Å³ × thickness``) imaged with the same probe, so its texture (atom-scale
    speckle) and its brightness relative to the columns follow from the imaging model.

    Parameters
    ----------
    film_thickness_A : float
        Mean thickness of the amorphous carbon film [Å].
    gradient : float
        Relative change of the film thickness across the field of view along a random
        direction (0.5 = the thickness grows from 75 % to 125 % of the mean).
    variation : float
        Relative amplitude of smooth random thickness variations (standard deviation).
    variation_length_A : float
        Correlation length of those variations [Å].
    """

    film_thickness_A: float = 0.0
    gradient: float = 0.0
    variation: float = 0.0
    variation_length_A: float = 40.0

    def __post_init__(self) -> None:
        validate_positive(self.film_thickness_A, name="film_thickness_A", unit="Å", allow_zero=True)
        validate_positive(self.gradient, name="gradient", allow_zero=True)
        validate_positive(self.variation, name="variation", allow_zero=True)
        validate_positive(self.variation_length_A, name="variation_length_A", unit="Å")

    def to_dict(self) -> dict[str, float]:
        """JSON-serialisable description."""
        return {k: float(getattr(self, k)) for k in self.__dataclass_fields__}


def render_film(
    background: Background,
    /,
    *,
    shape: tuple[int, int],
    pixel_size: float,
    profile: RadialProfile,
    carbon_cross_section_A2: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Scattered fraction from the amorphous film at every pixel.

    Parameters
    ----------
    background : Background
        Film parameters.
    shape : tuple of int
        Image shape (H, W).
    pixel_size : float
        Pixel size [Å/px].
    profile : RadialProfile
        Image profile of one atom [1/Å²].
    carbon_cross_section_A2 : float
        Cross-section of one carbon atom [Å²].
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray of shape (H, W)
        Scattered fraction (dimensionless).
    """
    h, w = shape
    if background.film_thickness_A == 0:
        return np.zeros(shape)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    theta = rng.uniform(0.0, 2.0 * np.pi)
    ramp = ((xx - (w - 1) / 2) * np.cos(theta) + (yy - (h - 1) / 2) * np.sin(theta)) / max(h, w)
    rel = 1.0 + background.gradient * ramp
    if background.variation:
        # Gaussian-filtered white noise, scaled by its *expected* standard deviation
        # (Parseval), not the sample's: a correlation length beyond the field of view then
        # gives a gentle offset instead of amplified round-off.
        s = background.variation_length_A / pixel_size
        fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
        transfer = np.exp(-2 * np.pi**2 * s**2 * (fy**2 + fx**2))
        expected_std = math.sqrt(float(np.mean(transfer**2)))
        field = np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * transfer).real
        rel = rel + background.variation * field / expected_std
    rel = np.clip(rel, 0.0, None)
    atoms_per_px = AMORPHOUS_CARBON_DENSITY * background.film_thickness_A * pixel_size**2 * rel
    # Atoms at random positions: a Poisson number per pixel, splatted at the pixel and imaged
    # by one FFT convolution with the profile. Individual film atoms need no sub-pixel
    # placement (they are not part of the truth); this is ~10× faster than rendering each.
    n = rng.poisson(atoms_per_px).astype(float)
    r_max = profile.radius_enclosing(0.995)
    half = int(math.ceil(r_max / pixel_size))
    k = np.arange(-half, half + 1) * pixel_size
    kernel = profile(np.hypot(k[:, None], k[None, :]))
    padded = np.pad(n, half, mode="reflect" if half < min(h, w) else "wrap")
    film = fftconvolve(padded, kernel, mode="same")[half : half + h, half : half + w]
    return np.clip(film, 0.0, None) * carbon_cross_section_A2


def add_noise(
    expected: np.ndarray, /, *, read_noise: float, rng: np.random.Generator
) -> np.ndarray:
    """Draw detector counts: Poisson shot noise plus Gaussian read noise.

    Parameters
    ----------
    expected : ndarray of shape (H, W)
        Expected counts per pixel λ.
    read_noise : float
        Standard deviation of the read noise [counts].
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray of shape (H, W), float32
        Recorded counts.
    """
    counts = rng.poisson(np.clip(expected, 0.0, None)).astype(np.float32)
    if read_noise > 0:
        counts += rng.normal(0.0, read_noise, expected.shape).astype(np.float32)
    return counts
