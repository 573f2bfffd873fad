"""Where a frame shows a crystal lattice, and where amorphous contamination, vacuum or a
saturated detector: a per-pixel region map from local periodicity, without a network.

The frame's Bragg reflections are found in its whole spectrum (every grain's: they need
not index on one lattice). A Gaussian band around each reflection (± pair) keeps the
lattice part of the frame; a high-pass keeps its texture (everything finer than the
lattice's longest period). Smoothed over a window of a few lattice periods, the share of
the local texture power that is lattice power is high on the crystal and low on
amorphous material (whose speckle has no preferred frequency) and on noise. A pixel is
**crystal** where that share is at least ``crystal_ratio`` times the frame's typical
crystal share (its 90th percentile). Of the rest, pixels darker than the crystal with
little texture are **vacuum**, pixels at the frame's maximum value in patches are
**saturated**, and everything else is **amorphous** (contamination, a thick film).

A hole smaller than the window is found apart: its sharp edge's texture leaks into the
window, but seen at a tenth of a lattice period it is dark over a disc of radius half a
period, which no gap between a lattice's columns holds (:data:`VACUUM_RADIUS`); vacuum
found by the window's texture is held to such discs too. Likewise the half window's
brightness test calls a pixel brighter than the crystal only where a disc of such pixels
fits (:data:`BRIGHT_RADIUS`), so that a lattice's brightest columns are not taken for
little patches. The reflections used are the lowest-frequency ones on the rings of the
strongest (and a weaker one whose second order is among the strongest), not simply the
strongest.

Contamination is found by its brightness twice: at half the window (a patch much brighter
than the crystal), and over the whole window, where a support film's speckle averages out
and a patch only a little brighter than the film-covered crystal stands out. The second
test's blobs are blurred by the window, so each is cut at half the height of its step
(half way from the crystal's brightness to the blob's), on the finer mean: that is where a
patch's edge lies, and a rim of crystal a window wide is not lost around every patch. It
does not apply where the lattice carries at least half of the local texture power
(:data:`LATTICE_DOMINATES`): a thick crystal is brighter too, and where its lattice
dominates, its columns are plainly there to be found.

It is a classical detector: it needs no training, it does not depend on the simulator
looking like the microscope, and it explains itself (``lattice_share``). What it cannot
see: a crystal whose lattice is not resolved at the frame's sampling, and crystal under a
film thin enough that the lattice still dominates the texture (that is crystal, for
finding atoms). Bright atoms on a dark background (HAADF) are assumed; pass
``contrast="dark"`` for BF/ABF frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from atomlens.fourier.spectra import _evened_texture, _gauss_fft, _hann

__all__ = ["LATTICE_DOMINATES", "MIN_SHARE", "REGIONS", "RegionMap", "region_map"]

#: Region names, in the order of their codes in :attr:`RegionMap.labels`.
REGIONS: tuple[str, ...] = ("crystal", "amorphous", "vacuum", "saturated")

#: The least lattice share of a crystal pixel, whatever the frame's typical share: a
#: graphene lattice at 10³ e⁻/Å² shows 0.02–0.03, noise with a few stray maxima < 0.004.
MIN_SHARE = 0.01

#: The window-wide brightness test (for contamination under a support film) does not
#: call a pixel amorphous where the lattice carries at least this share of the local
#: texture power: the thicker, brighter part of the real Si [110] frame in
#: ``../shared/data/real`` (lattice share about 0.8) was 14 % "amorphous" without it.
LATTICE_DOMINATES = 0.5

#: Holes smaller than the window: σ of the smoothing they are seen dark at [lattice
#: periods of the lowest reflection]...
VACUUM_SMOOTH = 0.1

#: ...how dark: below this fraction of the way from the frame's floor to the crystal's
#: median...
VACUUM_LEVEL = 0.15

#: ...and how large: a dark area is vacuum where it holds a disc of this radius [lattice
#: periods], which no gap between a lattice's columns does (graphene's hexagon centres
#: are dark over about 0.2 periods). Vacuum found by the window's texture is held to the
#: same discs, which drops the slivers it found at frame corners and patch edges. On
#: ``simulate_regions`` frames (graphene, MoS2 and SrTiO3; 2e3–1e6 e⁻/Å², a 1.3 Å probe,
#: 4 and 8 Å films; 4 frames each, seeds not used to choose the settings; 2026-12-07),
#: hole pixels more than 0.5 Å inside a hole called vacuum, mean per condition: 0.25–0.86
#: → 0.44–1.00 (SrTiO3's 0.44–0.46: its 2–4 Å holes hardly hold a disc of radius half
#: its 3.9 Å period); vacuum pixels more than 0.5 Å outside every hole 5598 → 469 in
#: all, and on frames without holes 92 → 0.
VACUUM_RADIUS = 0.5

#: The small-hole test needs at least this many of the lowest period found across the
#: frame: a first order fewer than 4 periods across is not looked for, and a square
#: lattice's (11) or (21), taken for the lowest, leaves gaps as wide as the discs (64 px
#: frames of a sparse 16 px lattice, whose lowest found was 10.5 px: 16–21 % vacuum at 6).
SMALL_HOLE_PERIODS = 8

#: The half window's brightness test calls a pixel brighter than the crystal
#: (contamination) only where a disc of this radius [lattice periods] of such pixels fits:
#: a sparse bright sublattice seen at the half window (SrTiO3's Sr columns, when the weak
#: (100) reflections that set the window are missed) is no patch. On the frames above,
#: with the choice of reflections (both changes together), the worst species' crystal
#: columns called crystal, mean (least) per frame: 0.725 (0.00) → 0.962 (0.65); in 15 of
#: the 24 SrTiO3 frames its worst species (Sr, in those looked at) was 0.00–0.07.
BRIGHT_RADIUS = 0.5

#: At most this many Bragg reflections (± pairs) are used, the lowest-frequency ones on
#: the rings of the strongest.
MAX_REFLECTIONS = 24


@dataclass(frozen=True)
class RegionMap:
    """A frame's regions.

    Attributes
    ----------
    labels : ndarray of shape (H, W), uint8
        The region of every pixel (codes of :data:`REGIONS`).
    lattice_share : ndarray of shape (H, W)
        Local share of the texture power that is lattice power (0–1).
    reflections : ndarray of shape (R, 2)
        The Bragg reflections used, ``(fy, fx)`` [cycles/px] (one of each ± pair).
    window_px : float
        σ of the smoothing window [px].
    """

    labels: np.ndarray
    lattice_share: np.ndarray
    reflections: np.ndarray
    window_px: float
    names: tuple[str, ...] = field(default=REGIONS)

    def at(self, xy_px: np.ndarray, /) -> np.ndarray:
        """The region name at points ``(N, 2)`` given as (x, y) [px] (nearest pixel)."""
        xy = np.asarray(xy_px, dtype=float).reshape(-1, 2)
        h, w = self.labels.shape
        ix = np.clip(np.round(xy[:, 0]).astype(int), 0, w - 1)
        iy = np.clip(np.round(xy[:, 1]).astype(int), 0, h - 1)
        return np.asarray(self.names, dtype=object)[self.labels[iy, ix]]

    def share(self) -> dict[str, float]:
        """Share of the frame's pixels in each region."""
        return {n: float(np.mean(self.labels == k)) for k, n in enumerate(self.names)}


def _reflections(a: np.ndarray, peak_ratio: float) -> np.ndarray:
    """Bragg reflections ``(fy, fx)`` [cycles/px] of ``a``, one of each ± pair: local maxima
    of its Hann-windowed amplitude spectrum that exceed ``peak_ratio`` times the median of
    their 11 × 11 neighbourhood (a ring's median, as :func:`atomlens.fourier.bragg_split`
    takes, is no background where two grains' reflections fill much of a ring), at least 4
    periods across the frame and below 0.4 cycles/px; on the rings of those, maxima above
    half the threshold, and off them maxima whose second order is one of the strongest; at
    most :data:`MAX_REFLECTIONS`, those of the lowest frequencies."""
    h, w = a.shape
    win = _hann(h)[:, None] * _hann(w)[None, :]
    amp = np.abs(np.fft.fftshift(np.fft.fft2((a - a.mean()) * win)))
    fy = (np.arange(h) - h // 2) / h
    fx = (np.arange(w) - w // 2) / w
    FY, FX = np.meshgrid(fy, fx, indexing="ij")
    log_amp = np.log(amp + 1e-30)
    background = ndi.median_filter(log_amp, size=11, mode="wrap")
    radius = np.hypot(FY, FX)
    excess = log_amp - background
    # 4 periods across the frame at least, and clear of the Nyquist frequency's edge
    local_max = (
        (amp == ndi.maximum_filter(amp, size=5)) & (radius > 4.0 / min(h, w)) & (radius < 0.4)
    )
    peak = local_max & (excess > np.log(peak_ratio))
    if not peak.any():
        return np.zeros((0, 2))
    # every grain of one material has its reflections on the same rings: on the rings of
    # the strongest, half the threshold finds a fainter grain's (a second grain at a low
    # dose)
    strongest = np.sort(excess[peak])[::-1][:MAX_REFLECTIONS]
    first = peak & (excess >= strongest[-1])
    rings = np.unique(np.round(radius[first] * min(h, w))).astype(int)
    rings = np.concatenate([rings - 1, rings, rings + 1])
    ring_of = np.round(radius * min(h, w)).astype(int)
    peak |= local_max & np.isin(ring_of, rings) & (excess > np.log(max(peak_ratio / 2, 1.5)))
    iy, ix = np.nonzero(peak)
    keep = (iy > h // 2) | ((iy == h // 2) & (ix > w // 2))
    iy, ix = iy[keep], ix[keep]
    # a maximum off those rings counts when its second order is one of the strongest (a
    # weak first order: SrTiO3's (100), whose (200) is strong); a stray maximum's is not
    on_rings = np.isin(ring_of[iy, ix], rings)
    sy, sx = np.nonzero(first)
    strong_bins = np.column_stack([sy - h // 2, sx - w // 2])
    double = 2 * np.column_stack([iy - h // 2, ix - w // 2])
    gap = np.min(np.hypot(*(double[:, None, :] - strong_bins[None]).transpose(2, 0, 1)), axis=1)
    sel = on_rings | (gap <= 1.5)
    iy, ix = iy[sel], ix[sel]
    # at most MAX_REFLECTIONS, lowest frequencies first (each ring's strongest first): a
    # sharp real lattice (and its 8-bit rounding) shows thousands of faint maxima on its
    # rings, which add nothing but time. Taken by strength alone, one grain's higher
    # orders crowded out the other grain's first (a whole grain was amorphous), and strong
    # high orders the weak lowest one that sets the window (SrTiO3's (100))
    order = np.lexsort((-excess[iy, ix], ring_of[iy, ix]))[:MAX_REFLECTIONS]
    return np.column_stack([fy[iy[order]], fx[ix[order]]])


def _discs(mask: np.ndarray, radius: float) -> np.ndarray:
    """The union of the discs of ``radius`` [px] that fit inside ``mask`` and the frame (a
    morphological opening by a disc, from two distance transforms: a structuring element a
    lattice period wide would cost its area per pixel)."""
    # padded with False: a disc must fit inside the frame (a hexagon's dark centre cut by
    # the frame's edge is no hole)
    core = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1] > radius
    if not core.any():
        return core
    return ndi.distance_transform_edt(~core) <= radius


def _window_bright(
    mean: np.ndarray,
    mean_w: np.ndarray,
    crystal: np.ndarray,
    share: np.ndarray,
    m_c: float,
    floor: float,
    margin_mads: float,
    window: float,
) -> np.ndarray:
    """Contamination by the window-wide mean ``mean_w``: blobs brighter than the crystal's
    median by ``margin_mads`` of its MAD there (and by 30 % of the crystal's height above
    the frame's floor ``floor``, and by 10 % of that median), each cut at half its step on
    the finer ``mean`` within a window of the blob, where the lattice does not dominate
    (:data:`LATTICE_DOMINATES`).

    Measured on ``elit_contamination.py``-like graphene frames (6 per condition), columns at
    least 1 Å inside a non-crystal region called crystal, per 1000 crystal columns: under an
    8 Å film 37.9 → 1.6, under a 4 Å film 3.0 → 1.5; clean, low-dose and wide-probe frames
    unchanged (0), and their crystal pixels too. Blobs not cut at half height lost a rim of
    crystal 1–2 Å wide around every patch (2–4 % of the crystal).
    """
    if not np.isfinite(margin_mads) or not crystal.any():
        return np.zeros(mean.shape, bool)
    m_w = float(np.median(mean_w[crystal]))
    s_w = float(np.median(np.abs(mean_w[crystal] - m_w)))
    # a clean crystal's window mean varies by ~1 %: 10 % is no fluctuation of it
    step = max(margin_mads * s_w, 0.3 * (m_c - floor), 0.1 * abs(m_w), 1e-12)
    core = mean_w > m_w + step
    if not core.any():
        return core
    zone = ndi.binary_dilation(core, iterations=max(int(window), 1))
    lab, n = ndi.label(zone)
    blob = np.asarray(ndi.median(mean, lab * core, index=np.arange(1, n + 1)), float)
    half = np.concatenate([[np.inf], 0.5 * (m_c + blob)])
    return zone & (mean > half[lab]) & (share < LATTICE_DOMINATES)


def region_map(
    image: np.ndarray,
    /,
    *,
    window_periods: float = 0.75,
    crystal_ratio: float = 0.3,
    peak_ratio: float = 4.0,
    bright_margin: float = 6.0,
    window_margin: float = 4.0,
    contrast: Literal["bright", "dark"] = "bright",
) -> RegionMap:
    """Per-pixel regions of a frame: crystal, amorphous, vacuum, saturated.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        One frame, at least 32 px a side.
    window_periods : float
        σ of the smoothing window in lattice periods (of the reflection with the lowest
        spatial frequency); the map's resolution.
    crystal_ratio : float
        A pixel is crystal where its lattice share is at least this times the frame's
        typical crystal share (the 90th percentile over the frame), and at least
        :data:`MIN_SHARE`.
    peak_ratio : float
        Detection threshold of a Bragg reflection over the amplitude median at its spatial
        frequency (as :func:`atomlens.fourier.bragg_split`).
    bright_margin : float
        A pixel whose local mean departs from the crystal's median by more than this many
        median absolute deviations (of the local mean over the crystal) is not crystal:
        brighter is thick amorphous material, darker with little texture is vacuum.
    window_margin : float
        The same margin for the mean over the whole window (contamination a little brighter
        than a film-covered crystal; see the module's notes); ``inf`` switches that test
        off.
    contrast : {"bright", "dark"}
        Atoms brighter than the background (HAADF) or darker (BF/ABF: the frame is inverted
        first).

    Returns
    -------
    RegionMap
        A frame with no lattice at all is amorphous (or vacuum, saturated) everywhere.

    Raises
    ------
    ValueError
        When the frame is not 2-D of at least 32 px a side, or a setting is out of range.
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 32:
        raise ValueError(f"region_map needs a 2-D frame of at least 32 px a side, got {a.shape}.")
    if not 0 < crystal_ratio < 1:
        raise ValueError(f"crystal_ratio must be within (0, 1), got {crystal_ratio!r}.")
    if not window_margin > 0:
        raise ValueError(f"window_margin must be > 0, got {window_margin!r}.")
    if not window_periods > 0:
        raise ValueError(f"window_periods must be > 0, got {window_periods!r}.")
    if contrast not in ("bright", "dark"):
        raise ValueError(f"contrast must be 'bright' or 'dark', got {contrast!r}.")
    if not np.isfinite(a).all():
        raise ValueError("region_map needs a frame of finite values (NaN or inf found).")
    if contrast == "dark":
        a = -a
    h, w = a.shape
    top = float(a.max())
    at_top = a >= top
    # a saturated detector: more than a few pixels at exactly the maximum, in patches
    saturated = (
        ndi.binary_opening(at_top, iterations=1)
        if at_top.mean() > 5e-4
        else np.zeros(a.shape, bool)
    )
    raw = a
    if saturated.any():  # a clipped patch's sharp edge has no lattice: flatten it
        a = np.where(ndi.binary_dilation(at_top, iterations=2), float(np.median(a)), a)
    # the reflections, found in the texture with its local contrast evened out, so that a
    # bright patch or a hole does not drown the lattice's spectrum
    refl = _reflections(_evened_texture(a), peak_ratio)
    f_lat = float(np.min(np.hypot(refl[:, 0], refl[:, 1]))) if len(refl) else 0.1
    window = window_periods / f_lat
    # filtered by FFT on the frame mirrored at its edges (no wrap-around from the far edge)
    pad = int(min(3 * window + 1, min(h, w) - 1))
    b = np.pad(a, pad, mode="reflect")
    hp, wp = b.shape
    Fb = np.fft.fft2(b - b.mean())
    fy = np.fft.fftfreq(hp)[:, None]
    fx = np.fft.fftfreq(wp)[None, :]
    # the band of each reflection: a Gaussian of the window's width in frequency
    sf = 1.0 / (2 * np.pi * window)
    band = np.zeros((hp, wp))
    for gy, gx in refl:
        for sgn in (1, -1):
            dy = (fy - sgn * gy + 0.5) % 1.0 - 0.5
            dx = (fx - sgn * gx + 0.5) % 1.0 - 0.5
            band = np.maximum(band, np.exp(-(dy**2 + dx**2) / (2 * sf**2)))
    # texture: everything finer than a little below the lowest lattice frequency
    high = 1.0 - _gauss_fft((hp, wp), 1.0 / (2 * np.pi * 0.5 * f_lat))
    lattice = np.fft.ifft2(Fb * band).real
    texture = np.fft.ifft2(Fb * high).real
    smooth = _gauss_fft((hp, wp), window)
    fine_smooth = _gauss_fft((hp, wp), 0.5 * window)
    crop = (slice(pad, pad + h), slice(pad, pad + w))
    e_lat = np.fft.ifft2(np.fft.fft2(lattice**2) * smooth).real[crop]
    e_tex = np.fft.ifft2(np.fft.fft2(texture**2) * smooth).real[crop]
    share = np.clip(e_lat / np.maximum(e_tex, 1e-30), 0.0, 1.0)
    # brightness and texture at half the window: holes and patches a few periods wide
    # (of the frame as recorded: the flattened one has no bright patch left where it clipped)
    F_raw = np.fft.fft2(np.pad(raw, pad, mode="reflect") if raw is not a else b)
    mean = np.fft.ifft2(F_raw * fine_smooth).real[crop]
    t_fine = np.fft.ifft2(np.fft.fft2(texture**2) * fine_smooth).real[crop]
    mean_w = np.fft.ifft2(F_raw * smooth).real[crop]
    labels = np.ones((h, w), np.uint8)  # amorphous unless shown otherwise
    crystal = np.zeros((h, w), bool)
    vacuum = np.zeros((h, w), bool)
    if len(refl):
        # brightness at a tenth of a period: the darkness of a hole smaller than the
        # window, where the frame is wide enough that its first order was looked for
        small_holes = f_lat * min(h, w) >= SMALL_HOLE_PERIODS
        if small_holes:
            fine_v = _gauss_fft((hp, wp), VACUUM_SMOOTH / f_lat)
            mean_v = np.fft.ifft2(F_raw * fine_v).real[crop]
        # a share of a few % is what noise leaves in the bands of a few stray maxima
        level = max(crystal_ratio * float(np.percentile(share, 90)), MIN_SHARE)
        # a clipped pixel tells nothing about the lattice under it
        crystal = (share >= level) & ~saturated
        floor = float(np.percentile(mean, 0.5))
        for _ in range(2):  # the crystal's brightness and texture, then what departs from it
            if not crystal.any():
                break
            m_c = float(np.median(mean[crystal]))
            spread = max(float(np.median(np.abs(mean[crystal] - m_c))), 1e-12)
            margin = max(bright_margin * spread, 0.3 * (m_c - floor))
            t_c = float(np.median(t_fine[crystal]))
            # vacuum: darker than the crystal, with little texture; amorphous: brighter.
            # Under a thick film the local mean spreads so much over the crystal that its
            # margin reached below the frame's floor, and a hole 30× darker than the
            # crystal was crystal (elit_contamination.py's 8 Å film: 100 % of the hole's
            # pixels; with this cap 35 %, its edges, and clean frames as they were): half
            # way from the crystal to the floor is dark enough
            dark = min(margin, 0.5 * (m_c - floor))
            vacuum = (mean < m_c - dark) & (t_fine < 0.3 * t_c)
            # a hole smaller than the window: its edges' texture leaks into t_fine, but at
            # a tenth of a period it is dark over a disc no lattice's gap holds. Both
            # tests' vacuum must hold such discs (no slivers at corners and patch edges)
            vacuum = _discs(vacuum, VACUUM_RADIUS / f_lat)
            if small_holes:
                dim = mean_v < floor + VACUUM_LEVEL * (m_c - floor)
                vacuum |= _discs(dim, VACUUM_RADIUS / f_lat)
            bright = _discs(mean > m_c + margin, BRIGHT_RADIUS / f_lat) | _window_bright(
                mean, mean_w, crystal, share, m_c, floor, window_margin, window
            )
            crystal = (share >= level) & ~(vacuum | bright | saturated)
        crystal = ndi.binary_opening(crystal, iterations=2)
    else:  # no crystal to compare with: vacuum is what has almost no texture
        vacuum = t_fine < 0.05 * float(np.median(t_fine))
    labels[crystal] = 0
    labels[vacuum & ~crystal] = 2
    labels[saturated] = 3
    return RegionMap(labels=labels, lattice_share=share, reflections=refl, window_px=window)
