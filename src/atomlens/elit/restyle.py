"""Simulated images with the frames' own background and noise: exact labels that look like
the new data.

Self-training cannot fix errors every member shares: under an amorphous film the members
agree on false atoms in the film and miss real ones, and pseudo-labels teach exactly that.
Simulation has exact labels but not the new frames' look. This module joins the two,
without labels and without knowing what changed:

1. :func:`bragg_split` separates a frame of a crystal into its **lattice part** (the Bragg
   reflections of its Fourier transform) and its **aperiodic part** (everything else:
   amorphous film, contamination, shot and detector noise, scan noise);
2. :func:`fit_pixel_noise` fits a Poisson–Gaussian model (variance ``a·S + b`` at mean
   signal ``S``) to the fine-scale residual of the aperiodic part, and separates the film
   from the noise (Wiener filter);
3. :func:`extra_blur` reads from the decay of the Bragg shells how much more the frame's
   lattice is blurred than a noise-free simulation's (a wider or aberrated probe);
4. :func:`fit_film_thickness` reads how thick an amorphous film explains the power
   spectrum of the frame's background beyond the noise;
5. :class:`FrameStyledSource` adds to noise-free simulated images of the material the
   model was trained for either crops of the aperiodic part, or an amorphous film drawn
   anew at the frames' thickness (or crops of their film estimate) with noise drawn from
   the model for each new image; blurred as the frames are when asked, scaled so that the
   ratio of aperiodic to lattice signal on the reflections the frames show is the frames'
   own, with the simulation's exact labels.

This needs crystalline frames (a lattice in the Fourier transform) and a model trained on
simulated images of the same material; :func:`bragg_split` says when it finds no lattice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from atomlens.fourier import BraggSplit, bragg_split, relative_sampling, ring_power
from atomlens.simulate.dataset import SimulatedDataset
from atomlens.simulate.scene import film_counts
from atomlens.train import SimulatedSource

__all__ = [
    "BraggSplit",
    "FrameStyledSource",
    "PixelNoise",
    "bragg_split",
    "extra_blur",
    "fit_film_thickness",
    "fit_pixel_noise",
    "relative_sampling",
    "ring_power",
]

logger = logging.getLogger(__name__)

#: Thickest film [Å] a drawn film is believed at: beyond it the background is not an
#: amorphous film (or the lattice's gain is off), and the frame's film estimate is used.
_MAX_FILM_A = 100.0


def _blurred_share(ref: BraggSplit, shells: np.ndarray, blur_px: float) -> float:
    """Share of ``ref``'s lattice signal (std) on ``shells`` once blurred by ``blur_px``."""
    att = np.exp(-4 * np.pi**2 * blur_px**2 * ref.mask_freq**2)
    shells = np.asarray(shells, dtype=float)
    if not len(shells) or not len(ref.mask_freq):
        return 0.0
    near = np.min(np.abs(ref.mask_freq[:, None] / shells[None, :] - 1), axis=1) <= 0.06
    whole = float((ref.mask_excess * att).sum())
    part = float((ref.mask_excess * att)[near].sum())
    return float(np.sqrt(max(part, 0.0) / whole)) if whole > 0 else 0.0


def extra_blur(frame: BraggSplit, references: Sequence[BraggSplit], /, *, z: float = 3.0) -> float:
    """How much more a frame's lattice is blurred than noise-free simulations' [px].

    Each shell of the frame's lattice (its reflections at one spatial frequency ``k``) has a
    power per reflection ``P(k)``, and the references ``P_ref(k)`` (per reflection, since a
    frame may show only some of a shell's reflections). A Gaussian blur of ``σ`` multiplies
    their ratio by ``exp(−4π²σ²k²)`` whatever the contrast. Shells are taken from the
    lowest up while they stand above the noise (``z`` standard errors). With two or more,
    ``σ²`` is the weighted least-squares slope of ``−ln(P/P_ref)/4π²`` against ``k²``.
    With one, the next shell, which the noise hides, bounds ``σ`` from below, and that
    smallest blur consistent with the frame is returned (a 2× wider probe leaves only the
    first shell of graphene). It is 0 when the frame is as sharp as the references or
    sharper, or when its lowest shell is hidden (a thick film).

    Parameters
    ----------
    frame : BraggSplit
        The frame's split, at the references' sampling.
    references : sequence of BraggSplit
        Splits of noise-free simulations of the crystal.
    z : float
        Standard errors above which a shell counts as seen.

    Returns
    -------
    float
        Gaussian sigma [px].
    """
    if not len(frame.mask_freq) or not references:
        return 0.0
    # shells: the frame's lattice frequencies grouped where they are less than 6 % apart
    # (a strained or slightly anisotropic lattice splits one shell into several)
    freqs = np.sort(frame.mask_freq)
    cuts = np.nonzero(freqs[1:] > freqs[:-1] * 1.06)[0] + 1
    shells = [(g[0] / 1.03, g[-1] * 1.03, float(g.mean())) for g in np.split(freqs, cuts)]

    def power(split: BraggSplit, lo: float, hi: float) -> tuple[float, float]:
        # per reflection: a frame whose basis spans a sublattice (a film hides the first
        # order) masks only the reflections of a shell it detected, the reference all of
        # them; summed, the frame's shell would read weak, as if blurred
        near = (split.mask_freq >= lo) & (split.mask_freq <= hi)
        n = float(split.mask_reflections[near].sum())
        if n <= 0:
            return 0.0, 0.0
        err = np.sqrt((split.mask_background[near] ** 2).sum())
        return float(split.mask_excess[near].sum()) / n, float(err) / n

    # shells from the lowest up, until the first the noise hides: above it, a shell's
    # excess is the size of the errors of subtracting the background, not signal (and
    # until one the references lack: there is nothing to compare with)
    seen, hidden = [], None
    for lo, hi, k in shells:
        p, err = power(frame, lo, hi)
        ref = float(np.mean([power(r, lo, hi)[0] for r in references]))
        if not (ref > 0 and err > 0):
            break
        if p > z * err:
            seen.append((k, p / ref, err / ref))
        else:
            hidden = (k, p / ref, err / ref)
            break
    four_pi2 = 4 * np.pi**2
    if len(seen) >= 2:
        k, r, d = (np.array(v) for v in zip(*seen, strict=True))
        slope = np.polyfit(k**2, np.log(r), 1, w=r / d)[0]
        return float(np.sqrt(max(-slope / four_pi2, 0.0)))
    if len(seen) == 1 and hidden is not None:
        (k0, r0, _), (k, r, d) = seen[0], hidden
        bound = np.log(r0 / (max(r, 0.0) + z * d)) / (four_pi2 * (k**2 - k0**2))
        return float(np.sqrt(max(bound, 0.0)))
    return 0.0


def fit_film_thickness(
    split: BraggSplit,
    film_freq: np.ndarray,
    film_power: np.ndarray,
    /,
    *,
    background: np.ndarray | None = None,
    f_min: float = 0.04,
) -> tuple[float, float]:
    """Thickness of a film of known power spectrum per unit thickness in a frame's
    background, and the frame's white noise level, without labels.

    The background's power (:attr:`BraggSplit.ring_power`: everything but the lattice) is
    fitted as ``t · film_power(f) + N`` over rings from ``f_min`` to the Nyquist frequency
    (below ``f_min``, thickness gradients and contamination patches dominate), each ring
    weighted by its number of bins over its power squared (the relative error of a ring's
    mean power). An amorphous film of random atoms seen through the probe has a power
    spectrum of the probe's shape; pixel noise is white. The weights come from the fitted
    model (reweighted least squares).

    Parameters
    ----------
    split : BraggSplit
        The frame's split.
    film_freq, film_power : ndarray
        The film's power spectrum per unit thickness in the frame's units
        (:func:`ring_power` of a simulated film, scaled) [cycles/px], [frame units² / Å].
    background : ndarray, optional
        Power at ``film_freq`` that is there without film and noise [frame units²]: the
        aperiodic part of a noise-free simulation (dopants, vacancies, the lattice's
        leakage), which the images the film is drawn for already have. Fitted is the
        frame's power less this.
    f_min : float
        Lowest spatial frequency fitted [cycles/px].

    Returns
    -------
    thickness, noise : float
        ``t`` [Å] (0 when the background has no film-shaped power) and ``N`` [frame units²
        per bin].
    """
    f, p = split.ring_freq, split.ring_power
    ok = (f >= f_min) & (f <= 0.5) & np.isfinite(p) & (p > 0)
    if ok.sum() < 4:
        return 0.0, float(np.nanmean(p)) if len(p) else 0.0
    f, p = f[ok], p[ok]
    r = np.interp(f, film_freq, film_power)
    own = np.zeros_like(p) if background is None else np.interp(f, film_freq, background)
    y = p - own
    n_bins = 2 * np.pi * f / (f[1] - f[0])
    x = np.column_stack([r, np.ones_like(r)])
    model = p  # weights from the model, not the data: the data's own would favour the rings
    for _ in range(4):  # that happen to fall low and bias t down (reweighted least squares)
        w = np.sqrt(n_bins) / np.maximum(model, 1e-12 * p.max())
        t, n = np.linalg.lstsq(x * w[:, None], y * w, rcond=None)[0]
        if n < 0:  # no room for noise: all of it film-shaped
            t, n = float((r * y * w**2).sum() / max((r * r * w**2).sum(), 1e-300)), 0.0
        if t < 0:  # nothing film-shaped: white noise only
            t, n = 0.0, float((y * w**2).sum() / (w**2).sum())
        model = t * r + max(n, 0.0) + np.maximum(own, 0.0)
    return float(t), float(n)


@dataclass(frozen=True)
class PixelNoise:
    """A frame's pixel noise as a Poisson–Gaussian model: variance ``a·S + b`` at local mean
    signal ``S`` (the frame's units; ``a`` is the size of one counted quantum, ``b`` the
    signal-free variance, negative for a detector offset).

    Attributes
    ----------
    a, b : float
        The model, fitted to the fine-scale residual of the aperiodic part.
    film : ndarray
        The aperiodic part less its noise (Wiener-filtered: film and contamination), on the
        split's inner region.
    mean_signal : ndarray
        ``S``: the frame's mean plus its lattice part plus ``film``.
    poisson_share : float
        Share of the frame's noise variance that follows the signal (``a·mean(S)`` over the
        mean variance): 1 for counted electrons, 0 for signal-independent noise.
    film_noise_share : float
        Share of white noise's variance that the Wiener filter lets into ``film``.
    """

    a: float
    b: float
    film: np.ndarray = field(repr=False)
    mean_signal: np.ndarray = field(repr=False)
    poisson_share: float
    film_noise_share: float = 0.0

    def variance(self, signal: np.ndarray) -> np.ndarray:
        """Noise variance [frame units²] at ``signal``."""
        return np.maximum(self.a * signal + self.b, 0.0)

    def draw(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Zero-mean noise for a noise-free image ``signal`` [frame units]: counted quanta of
        size ``a`` (Poisson) where the model has them, Gaussian otherwise; less the share
        ``film`` already carries."""
        v = self.variance(signal) * (1.0 - self.film_noise_share)
        if self.a <= 0:
            return rng.normal(0.0, 1.0, signal.shape) * np.sqrt(v)
        lam = v / self.a**2
        big = lam > 1e4
        n = self.a * (rng.poisson(np.where(big, 0.0, lam)) - np.where(big, 0.0, lam))
        return np.where(big, rng.normal(0.0, 1.0, signal.shape) * np.sqrt(v), n)


def _highpass_share(sigma_px: float) -> float:
    """Share of white noise's variance that is left after subtracting its Gaussian smoothing
    of ``sigma_px`` (the filter ``δ − g``)."""
    from scipy import ndimage as ndi

    d = np.zeros((33, 33))
    d[16, 16] = 1.0
    return float(((d - ndi.gaussian_filter(d, sigma_px)) ** 2).sum())


def fit_pixel_noise(
    frame: np.ndarray, split: BraggSplit, /, *, smooth_px: float = 1.0
) -> PixelNoise:
    """Fit a Poisson–Gaussian noise model to a frame, without labels.

    The aperiodic part of :func:`bragg_split` is film plus noise. Film and lattice are
    blurred by the probe (several pixels at a model's sampling), pixel noise is not: the
    aperiodic part less its Gaussian smoothing (``smooth_px``) is noise, and its local
    variance is regressed on the local mean signal (frame mean + lattice + smoothed
    aperiodic part) in 24 quantile bins; the filter's share of white noise is divided out.

    Parameters
    ----------
    frame : ndarray (H, W)
        The frame the split was made of.
    split : BraggSplit
        Its split.
    smooth_px : float
        Gaussian sigma [px] separating film (smoother) from pixel noise.

    Returns
    -------
    PixelNoise
    """
    from scipy import ndimage as ndi

    ap = split.aperiodic.astype(np.float64)
    resid = ap - ndi.gaussian_filter(ap, smooth_px, mode="reflect")
    r2 = resid**2 / _highpass_share(smooth_px)
    mean = float(np.asarray(frame, dtype=np.float64).mean())
    base = mean + split.lattice.astype(np.float64)
    # the lattice part holds the noise of its masked bins: at a low dose that makes the
    # fit's signal noisy and its slope too small (regression dilution), so the fit uses
    # the lattice with each bin shrunk by its own Wiener gain
    fit_base = mean + _wiener_bins(split.lattice.astype(np.float64), float(r2.mean()))
    # first pass on the smoothed part as film, then the film as the Wiener estimate given
    # that noise level (the smoothed part still holds a share of the noise, which at a low
    # dose outweighs the lattice)
    film = ndi.gaussian_filter(ap, smooth_px, mode="reflect")
    a, b = _fit_variance(fit_base + film, r2)
    film, kept = _wiener(ap, float(np.maximum(a * (base + film) + b, 0).mean()))
    a, b = _fit_variance(fit_base + film, r2)
    sig = base + film
    var_mean = float(np.maximum(a * sig + b, 0).mean())
    share = float(a * sig.mean() / var_mean) if var_mean > 0 else 0.0
    return PixelNoise(
        a=float(a),
        b=float(b),
        film=film.astype(np.float32),
        mean_signal=sig.astype(np.float32),
        poisson_share=float(np.clip(share, 0.0, 1.0)),
        film_noise_share=kept,
    )


def _fit_variance(signal: np.ndarray, r2: np.ndarray, border: int = 3) -> tuple[float, float]:
    """``a, b`` of ``r2 ≈ a·signal + b`` by weighted least squares over 24 quantile bins of
    ``signal`` (``a = 0`` when the noise does not grow with the signal)."""
    s_in = signal[border:-border, border:-border].ravel()
    y = r2[border:-border, border:-border].ravel()
    edges = np.unique(np.quantile(s_in, np.linspace(0, 1, 25)))
    if len(edges) < 4:
        return 0.0, float(y.mean())
    idx = np.clip(np.searchsorted(edges, s_in, side="right") - 1, 0, len(edges) - 2)
    n_b = np.bincount(idx, minlength=len(edges) - 1)
    ok = n_b > 20
    xs = (np.bincount(idx, weights=s_in, minlength=len(n_b)) / np.maximum(n_b, 1))[ok]
    ys = (np.bincount(idx, weights=y, minlength=len(n_b)) / np.maximum(n_b, 1))[ok]
    if len(xs) < 3 or np.ptp(xs) <= 0:
        return 0.0, float(y.mean())
    a, b = np.polyfit(xs, ys, 1, w=np.sqrt(n_b[ok].astype(float)))
    if a <= 0:
        return 0.0, float(y.mean())
    return float(a), float(b)


def _wiener_bins(part: np.ndarray, noise_var: float) -> np.ndarray:
    """``part`` with each Fourier bin kept by ``1 − noise/power`` (its own power)."""
    h, w = part.shape
    f = np.fft.fft2(part)
    g = np.clip(1.0 - noise_var * h * w / np.maximum(np.abs(f) ** 2, 1e-30), 0.0, 1.0)
    g[0, 0] = 1.0
    return np.fft.ifft2(f * g).real


def _wiener(ap: np.ndarray, noise_var: float) -> tuple[np.ndarray, float]:
    """The film in ``ap``: each spatial frequency kept by ``1 − noise/power`` (ring-averaged
    power, white noise of ``noise_var``), and the share of white noise that passes."""
    h, w = ap.shape
    f = np.fft.fft2(ap - ap.mean())
    p = np.abs(f) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    ring = np.round(np.hypot(fy, fx) * max(h, w)).astype(int)
    mean_p = np.bincount(ring.ravel(), weights=p.ravel()) / np.maximum(np.bincount(ring.ravel()), 1)
    g = np.clip(1.0 - noise_var * h * w / np.maximum(mean_p, 1e-30), 0.0, 1.0)[ring]
    g[0, 0] = 0.0
    film = np.fft.ifft2(f * g).real + ap.mean()
    return film, float((g**2).mean())


class FrameStyledSource:
    """Simulated images with exact labels that carry the frames' own aperiodic part.

    Each image is a noise-free simulation (the ranges without film; the simulation's
    expected counts, no shot or read noise) plus a random crop (with a random 90° rotation
    and flip) of one frame's aperiodic part (:func:`bragg_split`). The crop is scaled so
    that its ratio to the lattice signal is the frame's, measured on the shells of
    reflections the frame shows: a film or a wide probe hides higher orders that the
    noise-free simulation still has, and matching the whole lattice signal would make the
    borrowed background too strong. (How much of a simulation's lattice signal lies on
    those shells is measured once, on two 256² px simulations.) Film, contamination and
    noise therefore come from the data; lattice, labels and sampling from the simulation.

    With ``pixel_noise="modelled"`` noise is drawn for each image from the frame's
    Poisson–Gaussian model at the new image's own signal (shot noise is strongest on the
    atoms, and borrowed noise sits on the frame's atoms, not the simulated ones), and the
    film is either drawn anew for each image (``film="drawn"``: amorphous carbon imaged
    as the simulation's columns, :func:`atomlens.simulate.film_counts`, at the thickness
    :func:`fit_film_thickness` reads off the frame beyond what the noise-free simulation
    has itself) or a crop of the frame's film estimate (``film="estimated"``,
    :attr:`PixelNoise.film`, which loses the film's sharpest speckle). With
    ``match_blur`` the simulation is blurred by the frame's :func:`extra_blur` first.
    With ``match_sampling`` the simulations are made at the frames' own pixel size
    (:func:`relative_sampling`, the median over frames) instead of across the training
    range (±12 % by default): a model that must accept any lattice spacing in that range
    takes film blobs for atoms more readily, and the frames' spacing is known from their
    Fourier transform. A stated pixel size more than 3 % off the frames' lattice is
    logged.

    Parameters
    ----------
    ranges : ConditionRanges
        What to simulate (the model's own training ranges; ``shape`` is the crop side).
    frames : sequence of ndarray (H, W)
        Frames at the model's sampling.
    seed : int
        Seed of the image stream and the crops.
    pixel_noise : {"borrowed", "modelled"}
        The frames' own noise, or noise drawn from a model fitted to them.
    match_blur : bool
        Blur the simulations as much more as the frames' lattice is blurred.
    match_sampling : bool
        Simulate at the frames' measured pixel size rather than across the ranges'.
    film : {"estimated", "drawn"}
        With modelled pixel noise, crops of the frame's Wiener film estimate, or a film drawn
        anew at each frame's fitted thickness (borrowed noise brings the frame's film with
        it: :attr:`film` is then ``"borrowed"``).

    Attributes
    ----------
    blur_px : list of float
        Each lending frame's extra blur [px at the model's sampling] (0 without
        ``match_blur``).
    frame_sampling : list of float
        Each lending frame's pixel size over the model's [ratio] (NaN where its lattice
        could not be matched; empty without ``match_sampling``).
    sampling : float
        The median of those, at which the simulations are made (1 without
        ``match_sampling`` or when no frame could be matched: the ranges' own).
    film : str
        ``"drawn"``, ``"estimated"`` or ``"borrowed"``.
    film_thickness_A : list of float
        Each lending frame's fitted film thickness [Å of the simulation's amorphous carbon,
        read through the lattice's gain] (0 unless the film is drawn; NaN where it read
        more than 100 Å and the frame's film estimate is used instead).

    Raises
    ------
    ValueError
        When no frame shows a crystal lattice (names the frames).
    """

    in_channels = 1

    def __init__(
        self,
        ranges: Any,
        frames: Sequence[np.ndarray],
        *,
        seed: int = 0,
        pixel_noise: str = "modelled",
        match_blur: bool = True,
        match_sampling: bool = True,
        film: str = "estimated",
    ) -> None:
        if pixel_noise not in ("borrowed", "modelled"):
            raise ValueError(f"pixel_noise must be 'borrowed' or 'modelled', got {pixel_noise!r}.")
        if film not in ("drawn", "estimated"):
            raise ValueError(f"film must be 'drawn' or 'estimated', got {film!r}.")
        self.pixel_noise = pixel_noise
        self.film = film if pixel_noise == "modelled" else "borrowed"
        self.match_blur = bool(match_blur)
        self.match_sampling = bool(match_sampling)
        if not len(frames):
            raise ValueError("FrameStyledSource needs at least one frame.")
        self._clean = replace(ranges, film_thickness_A=(0.0, 0.0))
        self.crop = int(ranges.shape if np.isscalar(ranges.shape) else ranges.shape[0])
        # the frames' split does not depend on the seed: done once (see reseeded)
        self._frames: list[tuple[int, BraggSplit, np.ndarray, PixelNoise | None, float]] = []
        refused = []
        for i, fr in enumerate(frames):
            try:
                s = bragg_split(fr)
            except ValueError as err:
                refused.append(f"frame {i}: {err}")
                continue
            if not (s.lattice_std_at(s.shells) > 0 or s.lattice_std > 0):
                refused.append(f"frame {i}: its lattice signal is below the noise")
                continue
            ap = s.aperiodic - s.aperiodic.mean()
            pad = [(0, max(0, self.crop - n)) for n in ap.shape]
            if any(p for _, p in pad):  # smaller than a crop: mirror it out
                ap = np.pad(ap, pad, mode="symmetric")
            noise = None
            if pixel_noise == "modelled":
                noise = fit_pixel_noise(fr, s)
                film = noise.film - noise.film.mean()
                if any(p for _, p in pad):
                    film = np.pad(film, pad, mode="symmetric")
                noise = replace(noise, film=film.astype(np.float32))
            self._frames.append((i, s, ap.astype(np.float32), noise, float(np.mean(fr))))
        if not self._frames:
            raise ValueError(
                f"none of the {len(refused)} frames shows a crystal lattice, so their "
                f"background cannot be borrowed ({refused[0].rstrip('.')}). Use "
                "simulated_background='simulated' (atomlens adapt --simulated-background "
                "simulated) or pseudo-labels only."
            )
        if refused:
            logger.warning("frame-styled simulation skips %s", "; ".join(refused))
        self.frame_sampling: list[float] = []
        self.sampling = 1.0
        if self.match_sampling:
            self._match_sampling()
        self._seed(seed)

    def _match_sampling(self) -> None:
        """Simulate at the frames' own sampling: each frame's pixel size against strain-free
        simulations of each material (:func:`relative_sampling`), the median over frames."""
        ps = float(np.mean(self._clean.pixel_size_A))
        refs = []
        for m in self._clean.materials:  # one strain-free reference per material
            one = replace(
                self._clean,
                materials=(m,),
                defects={k: v for k, v in self._clean.defects.items() if k == m},
                max_strain=0.0,
            )
            refs += self._references(one, 0, n=1)
        for _, s, *_ in self._frames:
            r = [relative_sampling(s, [ref]) for ref in refs]
            r = [v for v in r if np.isfinite(v)]
            self.frame_sampling.append(min(r, key=lambda v: abs(v - 1)) if r else float("nan"))
        seen = [v for v in self.frame_sampling if np.isfinite(v)]
        if not seen:
            logger.warning(
                "frame-styled simulation: no frame's lattice matches the model's crystal "
                "within 15 %% of the stated pixel size (7 %% where its first order is "
                "hidden); the simulations keep the training range of pixel sizes "
                "(%.4g–%.4g Å/px)",
                *self._clean.pixel_size_A,
            )
            return
        self.sampling = float(np.median(seen))
        if abs(self.sampling - 1) > 0.03:
            logger.warning(
                "the frames' lattice is %.1f %% %s than the model's crystal at the stated "
                "pixel size: is the pixel size right? The simulations follow the frames.",
                100 * abs(self.sampling - 1),
                "smaller" if self.sampling > 1 else "larger",
            )
        self._clean = replace(self._clean, pixel_size_A=(ps * self.sampling,) * 2)

    def _seed(self, seed: int) -> None:
        """The image stream of ``seed`` and each frame's gain against its references."""

        self.seed = int(seed)
        self._sim = SimulatedSource(self._clean, seed=seed)
        self.class_names = self._sim.class_names
        refs = self._references(self._clean, seed)
        film_refs = self._film_references(self._clean, seed) if self.film == "drawn" else []
        self._parts: list[tuple[np.ndarray, float, PixelNoise | None, float, float, float]] = []
        self.blur_px: list[float] = []
        self.film_thickness_A: list[float] = []
        for i, s, ap, noise, level in self._frames:
            blur = extra_blur(s, refs) if self.match_blur else 0.0
            self.blur_px.append(blur)
            # the ratio is matched on the shells the frame shows (a film or a wide probe
            # hides the others, which the noise-free simulation still has)
            shells = s.shells
            sd = s.lattice_std_at(shells)
            ref = [_blurred_share(r, shells, blur) for r in refs] or [0.0]
            if not (sd > 0 and min(ref) > 0):  # the simulation lacks those shells
                sd, ref = (s.lattice_std if s.lattice_std > 0 else sd), [1.0]
                logger.warning(
                    "frame %d: the simulated crystal has no reflections where the frame "
                    "has; matching the whole lattice signal instead",
                    i,
                )
            gain = float(np.mean(ref)) / sd
            thickness = 0.0
            if film_refs and noise is not None:
                thickness = self._fit_film(s, film_refs, gain, blur)
                if thickness <= _MAX_FILM_A:
                    # the drawn film carries no noise: the model's whole variance is drawn
                    noise = replace(noise, film_noise_share=0.0)
                else:
                    logger.warning(
                        "frame %d: its background reads as %.3g Å of amorphous carbon, more "
                        "than the %.3g Å a drawn film is believed at (not an amorphous film, "
                        "or a lattice whose contrast the simulation does not match); its film "
                        "estimate is used",
                        i,
                        thickness,
                        _MAX_FILM_A,
                    )
                    thickness = float("nan")
            self.film_thickness_A.append(thickness)
            self._parts.append((ap, gain, noise, level, blur, thickness))
        if film_refs:
            logger.info(
                "frame-styled simulation: amorphous film fitted to the frames' background: %s Å",
                ", ".join(f"{t:.3g}" for t in self.film_thickness_A),
            )

    def reseeded(self, seed: int, /) -> FrameStyledSource:
        """The same frames' background on the image stream of another seed (no new split)."""
        import copy

        if int(seed) == self.seed:
            return self
        new = copy.copy(self)
        new._seed(seed)
        return new

    @staticmethod
    def _references(clean: Any, seed: int, n: int = 2) -> list[BraggSplit]:
        """``n`` noise-free 256² px simulations at the middle of the sampling range, split
        (those without a lattice left out): how much of a simulation's lattice signal lies
        on each shell, and its reciprocal cell."""

        ps = float(np.mean(clean.pixel_size_A))
        ds = SimulatedDataset(replace(clean, shape=256, pixel_size_A=(ps, ps)), seed=seed)
        out = []
        for k in range(n):
            try:
                out.append(bragg_split(ds.sample(k).expected, hidden_orders=False))
            except ValueError:
                continue
        return out

    @staticmethod
    def _film_references(clean: Any, seed: int, n: int = 2) -> list[tuple[np.ndarray, ...]]:
        """``n`` noise-free 256² px simulations at the middle of the sampling range, the
        power spectrum (:func:`ring_power`) of a 1 Å amorphous carbon film drawn for each,
        and that of the simulation's own aperiodic part (:func:`bragg_split`):
        ``(expected, freq, power, own_freq, own_power)``."""

        ps = float(np.mean(clean.pixel_size_A))
        ds = SimulatedDataset(replace(clean, shape=256, pixel_size_A=(ps, ps)), seed=seed)
        out = []
        for k in range(n):
            sim = ds.sample(k)
            freq, power = ring_power(film_counts(sim, 1.0, rng=[seed, 2**30, k]))
            try:  # the simulation's own aperiodic part, which needs no film drawn for it
                own = bragg_split(sim.expected, hidden_orders=False)
                own_freq, own_power = own.ring_freq, own.ring_power
            except ValueError:
                own_freq, own_power = freq, np.zeros_like(freq)
            out.append((sim.expected, freq, power, own_freq, own_power))
        return out

    @staticmethod
    def _fit_film(
        split: BraggSplit, film_refs: list[tuple[np.ndarray, ...]], gain: float, blur: float
    ) -> float:
        """The film thickness [Å] whose simulated power, blurred by ``blur`` [px] and in
        the frame's units (simulation units over ``std(blurred image) × gain``), best
        explains the frame's background beyond the noise-free simulation's own aperiodic
        part (:func:`fit_film_thickness`)."""
        from scipy import ndimage as ndi

        freq = film_refs[0][1]
        per_A, own = np.zeros_like(freq), np.zeros_like(freq)
        for expected, f, p, bf, bp in film_refs:
            img = ndi.gaussian_filter(expected, blur, mode="reflect") if blur > 0 else expected
            k2 = float(img.var()) * gain**2  # (simulation units per frame unit)²
            att = np.exp(-4 * np.pi**2 * blur**2 * freq**2)
            per_A += np.interp(freq, f, p) * att / k2
            own += np.interp(freq, bf, np.nan_to_num(bp)) * att / k2
        n = len(film_refs)
        return fit_film_thickness(split, freq, per_A / n, background=own / n)[0]

    def _styled(self, sim: Any, rng: np.random.Generator) -> np.ndarray:
        """``sim``'s noise-free image plus a random crop of one frame's aperiodic part (or,
        with modelled pixel noise, of its film, and noise drawn for the new image)."""
        ap, gain, noise, level, blur, thickness = self._parts[int(rng.integers(len(self._parts)))]
        h, w = sim.expected.shape
        y0 = int(rng.integers(ap.shape[0] - h + 1))
        x0 = int(rng.integers(ap.shape[1] - w + 1))
        turns, flip = int(rng.integers(4)), rng.random() < 0.5

        def crop_of(a: np.ndarray) -> np.ndarray:
            c = np.rot90(a[y0 : y0 + h, x0 : x0 + w], turns)
            return c[:, ::-1] if flip else c

        from scipy import ndimage as ndi

        clean = sim.expected
        if blur > 0:  # the frame's lattice is blurred more than the simulation's
            clean = ndi.gaussian_filter(clean, blur, mode="reflect")
        k = float(clean.std()) * gain  # simulation units per frame unit
        if noise is None:
            return (clean + k * crop_of(ap)).astype(np.float32)
        if self.film == "drawn" and np.isfinite(thickness):  # a new film, imaged as sim was
            film = film_counts(sim, thickness, rng=rng)
            if blur > 0:
                film = ndi.gaussian_filter(film, blur, mode="reflect")
            signal = (clean + film) / k
        else:  # the simulation in the frame's units with the frame's film estimate
            signal = clean / k + crop_of(noise.film)
        signal += level - float(signal.mean())
        return (k * (signal + noise.draw(signal, rng))).astype(np.float32)

    def sample(self, index: int, /) -> tuple[np.ndarray, Any]:
        """One styled image [the simulation's units] and its true atoms (the simulation's
        ``truth`` table): a labelled validation image in the frames' style."""
        image, truth, _ = self.labelled(index)
        return image, truth

    def labelled(self, index: int, /) -> tuple[np.ndarray, Any, float]:
        """:meth:`sample` with the image's pixel size [Å/px] (the frames' sampling, or
        drawn from the training range without ``match_sampling``)."""
        sim = self._sim.dataset.sample(int(index))
        image = self._styled(sim, np.random.default_rng([self.seed, 2**31, int(index)]))
        return image, sim.truth, float(sim.pixel_size)

    def batch(self, step: int, /, *, batch_size: int) -> tuple[Any, Any]:
        """``batch_size`` styled images and their exact label masks."""
        import torch

        ds = self._sim.dataset
        xs, ms = [], []
        for i in range(batch_size):
            sim = ds.sample(step * batch_size + i)
            t = ds._tensors(sim, i)
            x = self._styled(sim, np.random.default_rng([self.seed, int(step), i]))
            xs.append(torch.from_numpy(np.ascontiguousarray(x))[None])
            ms.append(t["masks"])
        return torch.stack(xs), torch.stack(ms)

    def describe(self) -> dict:
        """The simulation, the number of frames lent, what was read off them (noise models,
        extra blur [px], sampling against the model's [ratio] and the pixel sizes simulated
        [Å/px]) and the seed."""
        return {
            "source": "frame-styled simulation",
            "simulated": self._sim.describe(),
            "frames": len(self._parts),
            "pixel_noise": self.pixel_noise,
            "film": self.film,
            "film_thickness_A": [
                round(t, 3) if np.isfinite(t) else None for t in self.film_thickness_A
            ],
            "noise_models": [
                {"a": round(n.a, 6), "b": round(n.b, 6), "poisson_share": round(n.poisson_share, 3)}
                for _, _, _, n, _ in self._frames
                if n is not None
            ],
            "extra_blur_px": [round(b, 3) for b in self.blur_px],
            "sampling": round(self.sampling, 4),
            "frame_sampling": [
                round(v, 4) if np.isfinite(v) else None for v in self.frame_sampling
            ],
            "pixel_size_A": [round(float(v), 5) for v in self._clean.pixel_size_A],
            "seed": self.seed,
        }
