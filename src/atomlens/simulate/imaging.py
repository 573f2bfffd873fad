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

The detector then adds what real frames show besides shot and read noise
(:class:`Detector`, all off by default): a gain that drifts slowly during the scan and jitters
from line to line, hot pixels stuck at the top of the range, dead pixels that read zero, and
saturation (:func:`apply_detector`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from atomlens._shared.validate import validate_positive
from atomlens.simulate.distortions import ScanField
from atomlens.simulate.probe import RadialProfile

__all__ = [
    "Background",
    "Detector",
    "add_noise",
    "apply_detector",
    "record",
    "render_columns",
    "render_film",
]

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


@dataclass(frozen=True)
class Detector:
    """What the detector and its electronics do to the recorded counts (all off by default).

    The recorded value of pixel ``(row i, column j)`` is
    ``g(i, j) · counts(i, j)`` with the gain
    ``g = (1 + gain_drift_per_100_rows · (i + j/W)/100) · (1 + ε_i)``, ``ε_i`` drawn per scan
    line with standard deviation ``line_gain_jitter``; then the counts are clipped at
    ``saturation_counts``, and hot pixels (a random ``hot_pixel_share`` of all pixels) read the
    saturation level while dead pixels (``dead_pixel_share``) read 0. The gain multiplies the
    detected signal after shot noise (an amplifier does not change the electron statistics)
    and before read noise is added.

    Parameters
    ----------
    hot_pixel_share : float
        Share of pixels stuck at the top of the range, in [0, 0.5) [fraction of pixels];
        each pixel is hot independently with this probability.
    dead_pixel_share : float
        Share of pixels that read 0 whatever the signal, in [0, 0.5) [fraction of pixels].
    saturation_counts : float or None
        Highest value the detector records [counts]: brighter pixels are clipped to it, and
        hot pixels read it. ``None``: nothing is clipped and hot pixels read the frame's
        highest recorded value.
    gain_drift_per_100_rows : float
        Relative change of the gain per 100 scan lines [1/(100 rows)], linear in scan time:
        0.02 makes row 100 read 2 % more than row 0 for the same signal (negative: the
        gain falls). The gain starts at 1 on the first pixel and must stay positive over
        the frame.
    line_gain_jitter : float
        Standard deviation of an independent relative gain change per scan line
        [fraction], e.g. 0.01 for 1 % line-to-line flicker.

    Examples
    --------
    >>> Detector().is_identity
    True
    >>> Detector(hot_pixel_share=1e-4, gain_drift_per_100_rows=0.01).is_identity
    False
    """

    hot_pixel_share: float = 0.0
    dead_pixel_share: float = 0.0
    saturation_counts: float | None = None
    gain_drift_per_100_rows: float = 0.0
    line_gain_jitter: float = 0.0

    def __post_init__(self) -> None:
        for name in ("hot_pixel_share", "dead_pixel_share"):
            v = validate_positive(getattr(self, name), name=name, allow_zero=True)
            if v >= 0.5:
                raise ValueError(
                    f"{name} is a share of pixels and must be within [0, 0.5), got {v!r}; "
                    "e.g. 1e-4 for one pixel in ten thousand."
                )
        if self.saturation_counts is not None:
            validate_positive(self.saturation_counts, name="saturation_counts", unit="counts")
        try:
            g = float(self.gain_drift_per_100_rows)
        except (TypeError, ValueError):
            g = math.nan
        if not math.isfinite(g):
            raise ValueError(
                "gain_drift_per_100_rows must be a finite relative change per 100 rows, got "
                f"{self.gain_drift_per_100_rows!r}; e.g. 0.01 for +1 % per 100 rows."
            )
        v = validate_positive(self.line_gain_jitter, name="line_gain_jitter", allow_zero=True)
        if v >= 0.3:
            raise ValueError(
                f"line_gain_jitter is a relative standard deviation and must stay below 0.3 "
                f"(30 %) so that the gain stays positive, got {v!r}; e.g. 0.01 for 1 %."
            )

    @property
    def is_identity(self) -> bool:
        """True when the detector records the counts as they are."""
        return not any(
            (
                self.hot_pixel_share,
                self.dead_pixel_share,
                self.saturation_counts is not None,
                self.gain_drift_per_100_rows,
                self.line_gain_jitter,
            )
        )

    def gain(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """The gain at every pixel of a frame of ``shape`` (H, W), drawing the line jitter.

        Parameters
        ----------
        shape : tuple of int
            Frame shape (H, W) [px].
        rng : numpy.random.Generator
            Source of the line jitter (not used when ``line_gain_jitter`` is 0).

        Returns
        -------
        ndarray of shape (H, W)
            Relative gain (1 = no change).

        Raises
        ------
        ValueError
            If the drift makes the gain reach 0 within the frame.
        """
        h, w = shape
        t_rows = np.arange(h)[:, None] + np.arange(w)[None, :] / w  # scan time [rows]
        gain = 1.0 + float(self.gain_drift_per_100_rows) * t_rows / 100.0
        if float(gain.min()) <= 0.05:
            raise ValueError(
                f"gain_drift_per_100_rows={self.gain_drift_per_100_rows!r} drives the gain to "
                f"{float(gain.min()):.3g} within a frame of {h} rows; it must stay above 0.05. "
                "Use a smaller drift (|drift| · rows/100 < 0.95)."
            )
        if self.line_gain_jitter:
            jitter = rng.normal(0.0, float(self.line_gain_jitter), h)
            gain = gain * (1.0 + np.clip(jitter, -0.9, None))[:, None]
        return gain

    def to_dict(self) -> dict[str, float | None]:
        """JSON-serialisable description."""
        return {
            k: (None if getattr(self, k) is None else float(getattr(self, k)))
            for k in self.__dataclass_fields__
        }


def apply_detector(
    counts: np.ndarray,
    /,
    *,
    detector: Detector,
    read_noise: float = 0.0,
    rng: np.random.Generator,
) -> np.ndarray:
    """What the detector records from ``counts`` detected electrons.

    Gain (drift and line jitter), read noise, saturation, then hot and dead pixels, as
    described in :class:`Detector`. :func:`add_noise` followed by this function with
    ``read_noise=0`` there and the read noise here is the full detector model; with an
    identity ``detector`` and no read noise ``counts`` come back unchanged and nothing is
    drawn from ``rng``.

    Parameters
    ----------
    counts : ndarray of shape (H, W)
        Detected counts (after shot noise) [counts].
    detector : Detector
        The detector's effects.
    read_noise : float
        Standard deviation of the read noise, added after the gain [counts].
    rng : numpy.random.Generator
        Source of the line jitter, read noise and hot/dead pixel positions.

    Returns
    -------
    ndarray of shape (H, W), float32
        Recorded values [counts].

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> out = apply_detector(np.full((200, 200), 10.0), detector=Detector(hot_pixel_share=0.01,
    ...                      saturation_counts=1000.0), rng=rng)
    >>> round(float(np.mean(out == 1000.0)), 2)
    0.01
    """
    if not isinstance(detector, Detector):
        raise TypeError(f"detector must be an atomlens.simulate.Detector, got {detector!r}.")
    validate_positive(read_noise, name="read_noise", unit="counts", allow_zero=True)
    out = np.asarray(counts, dtype=np.float32)
    if out.ndim != 2:
        raise ValueError(f"counts must be an ndarray of shape (H, W), got shape {out.shape}.")
    if detector.gain_drift_per_100_rows or detector.line_gain_jitter:
        out = (out * detector.gain(out.shape, rng)).astype(np.float32)
    else:
        out = out.copy()
    if read_noise > 0:
        out += rng.normal(0.0, read_noise, out.shape).astype(np.float32)
    if detector.saturation_counts is not None:
        out = np.minimum(out, np.float32(detector.saturation_counts))
    if detector.hot_pixel_share or detector.dead_pixel_share:
        u = rng.random(out.shape)
        hot = u < detector.hot_pixel_share
        dead = (u >= detector.hot_pixel_share) & (
            u < detector.hot_pixel_share + detector.dead_pixel_share
        )
        top = (
            float(out.max(initial=0.0))
            if detector.saturation_counts is None
            else float(detector.saturation_counts)
        )
        out[hot] = np.float32(top)
        out[dead] = np.float32(0.0)
    return out


def record(
    expected: np.ndarray,
    /,
    *,
    detector: Detector,
    read_noise: float = 0.0,
    rng: np.random.Generator,
) -> np.ndarray:
    """An image as recorded from ``expected`` counts: shot noise, then the detector's
    effects and read noise (:func:`add_noise`, :func:`apply_detector`).

    With an identity ``detector`` it is :func:`add_noise` alone, drawing from ``rng``
    exactly as before the detector model existed (seeded images stay the same).

    Parameters
    ----------
    expected : ndarray of shape (H, W)
        Expected detected counts per pixel [counts].
    detector : Detector
        The detector's effects.
    read_noise : float
        Standard deviation of the read noise, after the gain [counts].
    rng : numpy.random.Generator
        Source of every random draw.

    Returns
    -------
    ndarray of shape (H, W), float32
    """
    if detector.is_identity:
        return add_noise(expected, read_noise=read_noise, rng=rng)
    # read noise comes after the detector's gain
    return apply_detector(
        add_noise(expected, read_noise=0.0, rng=rng),
        detector=detector,
        read_noise=read_noise,
        rng=rng,
    )
