"""Split a frame of a crystal into its lattice part (the Bragg reflections of its Fourier
transform) and its aperiodic part (everything else: amorphous film, contamination, shot
and detector noise, scan noise).

The reflections are indexed on one reciprocal lattice, whose every point up to the Nyquist
frequency is then taken as lattice, weak high orders and a first order too weak to be
detected included. :func:`bragg_split` says when a frame shows no lattice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from atomlens.fourier._indexing import _finer_basis, _reciprocal_basis
from atomlens.fourier.regions import _reflections
from atomlens.fourier.spectra import _evened_texture, _hann, _ring_mean, _rings, _window

__all__ = ["BraggSplit", "bragg_split"]

logger = logging.getLogger(__name__)

#: Window value below which the un-windowed parts are not trusted (the border is cut).
_WINDOW_MIN = 0.25
#: Largest share of the Fourier plane a completed lattice may mask.
_MAX_MASKED = 0.3


@dataclass(frozen=True)
class BraggSplit:
    """What :func:`bragg_split` returns.

    Attributes
    ----------
    lattice, aperiodic : ndarray (h, w), float32
        The two parts on the trusted inner region of the frame (where the Hann window is at
        least 0.25, about the middle two thirds of each side); they add up to the frame minus
        its mean there.
    region : tuple of slice
        Where that region lies in the frame.
    peaks : ndarray (n, 2)
        Detected Bragg reflections (one of each ± pair), as frequencies ``(fy, fx)``
        [cycles/px].
    basis : ndarray (2, 2) or None
        Reciprocal basis vectors (rows) [cycles/px] when the reflections index on one
        lattice; every point of that lattice up to the Nyquist frequency is then taken as
        lattice, including reflections too weak to detect above the noise.
    masked_share : float
        Share of the Fourier plane taken as lattice.
    lattice_std : float
        Standard deviation of the lattice signal (its Fourier energy less that of the
        background at the same spatial frequencies) [the frame's units].
    frame_shape : tuple of int
        The frame's shape (H, W) [px].
    mask_freq, mask_excess : ndarray
        Spatial frequency [cycles/px] of every Fourier bin taken as lattice, and its power
        above the background's, in units of variance (they sum to ``lattice_std**2``
        before clipping at 0).
    mask_background : ndarray
        The background's power in those bins (same units): a bin's excess is uncertain by
        about this much (the power of noise is exponentially distributed).
    mask_reflections : ndarray
        Each bin's share of the reflection whose main lobe it is in (1 / the lobe's bins):
        summed over a shell, the number of reflections masked there.
    ring_freq, ring_power : ndarray
        The background's power spectrum: spatial frequency of each ring of the Fourier
        plane (one frequency step wide) [cycles/px] and the mean power of its bins not
        taken as lattice (film and noise), in the units of ``mask_excess``.
    """

    lattice: np.ndarray
    aperiodic: np.ndarray
    region: tuple[slice, slice]
    peaks: np.ndarray
    basis: np.ndarray | None
    masked_share: float
    lattice_std: float
    frame_shape: tuple[int, int] = (0, 0)
    mask_freq: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    mask_excess: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    mask_background: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    mask_reflections: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    ring_freq: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    ring_power: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def shells(self) -> np.ndarray:
        """Spatial frequencies of the detected reflections [cycles/px], one per shell
        (within 4 %), lowest first."""
        p = self.peaks
        if self.basis is not None and len(p):  # stray maxima do not index on the lattice
            idx = np.round(np.linalg.solve(self.basis.T, p.T).T)
            on = np.hypot(*(idx @ self.basis - p).T) <= 1.5 / max(self.frame_shape)
            p = idx[on] @ self.basis  # sub-bin exact, unlike the peaks' own bins
        f = np.sort(np.hypot(*p.T))
        keep = np.concatenate([[True], f[1:] > f[:-1] * 1.04]) if len(f) else f.astype(bool)
        return f[keep]

    def lattice_std_at(self, shells: np.ndarray, /, *, rel: float = 0.06) -> float:
        """Standard deviation of the lattice signal within ``rel`` of the spatial
        frequencies ``shells`` [cycles/px] only (its Fourier energy there less the
        background's) [the frame's units]."""
        shells = np.asarray(shells, dtype=float)
        if not len(shells) or not len(self.mask_freq):
            return 0.0
        near = np.min(np.abs(self.mask_freq[:, None] / shells[None, :] - 1), axis=1) <= rel
        return float(np.sqrt(max(float(self.mask_excess[near].sum()), 0.0)))


@dataclass(frozen=True)
class _Spectrum:
    """The Hann-windowed Fourier transform of a frame (less its mean), centred, and what
    :func:`bragg_split` reads off it."""

    f: np.ndarray  # the transform (complex, zero frequency at (h // 2, w // 2))
    amp: np.ndarray  # its amplitude
    win: np.ndarray  # the window
    fy: np.ndarray  # frequency of each row and column [cycles/px]
    fx: np.ndarray
    radius: np.ndarray  # spatial frequency of each bin [cycles/px]
    step: float  # width of a ring [cycles/px]
    norm: float  # power → variance (Parseval, with the window's energy)
    ring: np.ndarray  # each bin's ring
    excess: np.ndarray  # log amplitude over the median of its ring


def _spectrum(a: np.ndarray) -> _Spectrum:
    """The windowed transform of ``a`` and each bin's log amplitude over its ring's median."""
    h, w = a.shape
    win, step, norm = _window(h, w)
    f = np.fft.fftshift(np.fft.fft2((a - a.mean()) * win))
    amp = np.abs(f)
    fy = (np.arange(h) - h // 2) / h
    fx = (np.arange(w) - w // 2) / w
    FY, FX = np.meshgrid(fy, fx, indexing="ij")
    # radial bins one frequency step of the coarser axis wide
    ring = _rings(FY, FX, step)
    log_amp = np.log(amp + 1e-30)
    med = np.asarray(ndi.median(log_amp, labels=ring + 1, index=np.arange(1, ring.max() + 2)))
    return _Spectrum(
        f, amp, win, fy, fx, np.hypot(FY, FX), step, norm, ring, excess=log_amp - med[ring]
    )


def _detect(
    s: _Spectrum, peak_ratio: float, min_f: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bragg reflections, one of each ± pair: frequencies ``(fy, fx)`` [cycles/px], their
    amplitudes, and their flat indices in the spectrum."""
    h, w = s.amp.shape
    peak = (
        (s.excess > np.log(peak_ratio))
        & (s.amp == ndi.maximum_filter(s.amp, size=7))  # not the window's side lobes
        & (s.radius > min_f)
    )
    iy, ix = np.nonzero(peak)
    keep = (iy > h // 2) | ((iy == h // 2) & (ix > w // 2))  # one of each ± pair
    peaks = np.column_stack([s.fy[iy[keep]], s.fx[ix[keep]]])
    # ranked by amplitude, not by excess: without noise the ring median near the Nyquist
    # frequency is tiny and faint high orders would outrank the strong low ones
    strength = s.amp[iy[keep], ix[keep]]
    if len(peaks) < 2:
        raise ValueError(
            f"no crystal lattice found in the frame ({len(peaks)} Bragg reflection(s) above "
            f"{peak_ratio}× the background); the frame's background can only be borrowed "
            "from frames of a crystal."
        )
    return peaks, strength, iy[keep] * w + ix[keep]


def _lattice_basis(
    s: _Spectrum,
    peaks: np.ndarray,
    strength: np.ndarray,
    detected_bins: np.ndarray,
    *,
    hidden_orders: bool,
) -> np.ndarray | None:
    """The reciprocal basis the reflections index on (or None), looking for weaker
    symmetry mates when too few clear the threshold, and for a finer lattice whose
    reflections lie under it when ``hidden_orders``."""
    h, w = s.amp.shape
    basis = _reciprocal_basis(peaks, strength, s.step)
    if basis is None:
        # too few reflections clear the threshold (a film or low dose buries them): their
        # symmetry mates sit at the same spatial frequency, so look there for weaker maxima
        shells = np.hypot(*peaks.T)
        fr = s.radius
        near = np.min(np.abs(fr[..., None] / shells[None, None, :] - 1), axis=-1) < 0.04
        weak = near & (s.excess > np.log(2.0)) & (s.amp == ndi.maximum_filter(s.amp, size=7))
        wy, wx = np.nonzero(weak)
        half = (wy > h // 2) | ((wy == h // 2) & (wx > w // 2))
        wy, wx = wy[half], wx[half]
        new = ~np.isin(wy * w + wx, detected_bins)
        basis = _reciprocal_basis(
            np.concatenate([peaks, np.column_stack([s.fy[wy[new]], s.fx[wx[new]]])]),
            np.concatenate([strength, s.amp[wy[new], wx[new]]]),
            s.step,
        )
    # the strongest reflections may span a sublattice (of index 2, 3, or 4, 6, 9 in two steps)
    for _ in range(2 if hidden_orders else 0):
        finer = None if basis is None else _finer_basis(basis, peaks, s.excess, s.step)
        if finer is None:
            break
        basis = finer
    return basis


def _lattice_mask(
    shape: tuple[int, int], basis: np.ndarray | None, peaks: np.ndarray, min_f: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Fourier bins taken as lattice, the lattice points they were drawn around
    [cycles/px] (none when only the detected reflections were masked), and the detected
    reflections with their ± mates."""
    h, w = shape
    detected = np.concatenate([peaks, -peaks])
    lattice_pts = np.zeros((0, 2))
    if basis is not None:
        n_max = int(np.ceil(0.75 / np.min(np.hypot(*basis.T)))) + 1
        m, n = np.meshgrid(np.arange(-n_max, n_max + 1), np.arange(-n_max, n_max + 1))
        pts = np.column_stack([m.ravel(), n.ravel()]) @ basis
        inside = (np.abs(pts[:, 0]) <= 0.5) & (np.abs(pts[:, 1]) <= 0.5)
        inside &= np.hypot(*pts.T) > min_f / 2
        lattice_pts = pts[inside]

    def mask_of(points: np.ndarray, radius: int) -> np.ndarray:
        m = np.zeros((h, w), dtype=bool)
        cy = np.round(points[:, 0] * h).astype(int) + h // 2
        cx = np.round(points[:, 1] * w).astype(int) + w // 2
        ok = (cy >= 0) & (cy < h) & (cx >= 0) & (cx < w)
        m[cy[ok], cx[ok]] = True
        disk = np.hypot(*np.mgrid[-radius : radius + 1, -radius : radius + 1]) <= radius
        return ndi.binary_dilation(m, structure=disk)

    # each reflection masks the window's main lobe (2 bins); a small frame has few bins per
    # reflection, so a narrower disk, and a completed lattice masking more than
    # _MAX_MASKED of the plane is a mis-indexing: then the detected reflections only
    for radius, pts in ((2, lattice_pts), (1, lattice_pts), (2, np.zeros((0, 2)))):
        centres = np.concatenate([pts, detected])  # lattice points first: they are exact
        mask = mask_of(centres, radius)
        if mask.mean() <= _MAX_MASKED:
            break
    if not len(lattice_pts) or mask.mean() > _MAX_MASKED:
        raise ValueError(
            f"no crystal lattice found in the frame: its {len(peaks)} strongest Fourier "
            "maxima do not index on one lattice; the frame's background can only be "
            "borrowed from frames of a crystal."
        )
    return mask, pts, detected


def _reflection_of_bins(
    mask: np.ndarray, pts: np.ndarray, detected: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each masked bin, the spatial frequency of the reflection whose main lobe it is
    in [cycles/px], and its share of that reflection (1 / the lobe's bins)."""
    h, w = mask.shape
    by, bx = np.nonzero(mask)
    # one centre per reflection: a detected peak within the main lobe of a lattice point is
    # that point's reflection, not another
    refl = np.concatenate([pts, detected])
    if len(pts) and len(detected):
        off = cKDTree(pts * [h, w]).query(detected * [h, w])[0] > 2.0
        refl = np.concatenate([pts, detected[off]])
    _, nearest = cKDTree(refl * [h, w]).query(np.column_stack([by - h // 2, bx - w // 2]))
    # each bin's share of its reflection: they sum to the number of reflections masked
    return np.hypot(*refl[nearest].T), 1.0 / np.bincount(nearest, minlength=len(refl))[nearest]


def bragg_split(
    image: np.ndarray, /, *, peak_ratio: float = 4.0, hidden_orders: bool = True
) -> BraggSplit:
    """Split a frame of a crystal into its lattice part and its aperiodic part.

    The frame (less its mean) is Hann-windowed and Fourier transformed. Bragg reflections
    are local maxima whose amplitude exceeds ``peak_ratio`` times the median amplitude at
    their spatial frequency; 60 % of the 12 strongest must index on one lattice (two basis
    vectors refined by least squares; weaker maxima need not). When that lattice is a
    sublattice whose missing points carry Bragg power under the threshold (a film that
    buries the first order), the finer lattice is taken (:func:`_finer_basis`). Every
    point of that lattice up to the Nyquist frequency counts as lattice (weak high orders
    included); each point masks a disk of 2 frequency bins (the window's main lobe). The
    two parts are transformed back and the window is divided out where it is at least
    0.25.

    Parameters
    ----------
    image : ndarray (H, W)
        One frame, at least 32 px a side.
    peak_ratio : float
        Detection threshold of a reflection over the amplitude median at its frequency.
    hidden_orders : bool
        Look for a finer lattice whose reflections lie under the threshold. False for
        noise-free simulations: nothing is hidden in them, and against their near-zero
        background the aliases of a sampled lattice's high orders (which the noise of any
        recorded frame buries) can read as a finer lattice (how often: ``docs/elit.md``,
        "Errors every member shares", item 1).

    Returns
    -------
    BraggSplit

    Raises
    ------
    ValueError
        When the frame is too small or shows no lattice (fewer than two reflections, or
        reflections that do not index on one lattice, e.g. noise or an amorphous region).
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 32:
        raise ValueError(f"bragg_split needs a 2-D frame of at least 32 px a side, got {a.shape}.")
    h, w = a.shape
    s = _spectrum(a)
    min_f = 4 * s.step  # fewer than 4 periods across the frame is background, not lattice
    try:
        peaks, strength, detected_bins = _detect(s, peak_ratio, min_f)
        found_on = s
    except ValueError:
        # a contamination patch or a hole to vacuum fills every ring with the power of its
        # edges and speckle, and two grains fill it with their reflections, so none clears
        # its ring's median (elit_contamination's frames with a wide probe: 0 or 1). Found
        # as region_map finds them (on the texture with its local contrast evened out,
        # against the median of their neighbourhood), they mask the frame's own spectrum
        # alike
        even = _evened_texture(a)
        found_on = _spectrum(even)
        refl = _reflections(even, peak_ratio)
        refl = refl[np.hypot(*refl.T) > min_f] if len(refl) else refl
        if len(refl) < 2:
            raise
        iy = np.round(refl[:, 0] * h).astype(int) + h // 2
        ix = np.round(refl[:, 1] * w).astype(int) + w // 2
        peaks = np.column_stack([found_on.fy[iy], found_on.fx[ix]])
        strength, detected_bins = found_on.amp[iy, ix], iy * w + ix
    # a finer lattice hidden under reflections found that way is not looked for: two
    # grains' reflections index on a fine oblique lattice more easily than on either grain's
    basis = _lattice_basis(
        found_on, peaks, strength, detected_bins, hidden_orders=hidden_orders and found_on is s
    )
    mask, pts, detected = _lattice_mask((h, w), basis, peaks, min_f)
    # lattice variance from its Fourier energy less the background's at the same frequency
    # (the mean power of the unmasked bins of that ring: film is not white noise)
    power = s.amp**2
    n_ring = s.ring.max() + 1
    bg, bg_n = _ring_mean(s.ring[~mask], power[~mask], n_ring)
    # summed before clipping: clipping bin by bin would add the noise of every masked bin
    # each masked bin belongs to the reflection whose main lobe it is in: its shell is that
    # reflection's spatial frequency, not the bin's own (2 bins off on a small frame)
    centre_freq, mask_reflections = _reflection_of_bins(mask, pts, detected)
    mask_excess = (power[mask] - bg[s.ring[mask]]) / s.norm
    lattice_var = max(float(mask_excess.sum()), 0.0)
    lat = np.fft.ifft2(np.fft.ifftshift(s.f * mask)).real
    ap = np.fft.ifft2(np.fft.ifftshift(s.f * ~mask)).real
    ys = np.nonzero(_hann(h) >= _WINDOW_MIN)[0]
    xs = np.nonzero(_hann(w) >= _WINDOW_MIN)[0]
    region = (slice(int(ys[0]), int(ys[-1]) + 1), slice(int(xs[0]), int(xs[-1]) + 1))
    inner = s.win[region]
    return BraggSplit(
        lattice=(lat[region] / inner).astype(np.float32),
        aperiodic=(ap[region] / inner).astype(np.float32),
        region=region,
        peaks=peaks,
        basis=basis,
        masked_share=float(mask.mean()),
        lattice_std=float(np.sqrt(lattice_var)),
        frame_shape=(h, w),
        mask_freq=centre_freq,
        mask_excess=mask_excess,
        mask_background=(bg[s.ring[mask]] / s.norm),
        mask_reflections=mask_reflections,
        ring_freq=np.arange(n_ring) * s.step,
        ring_power=np.where(bg_n > 0, bg, np.nan) / s.norm,
    )
