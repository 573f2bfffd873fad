"""What a frame of a crystal looks like besides its lattice, read off without labels:
its pixel noise, its amorphous film, and how much more its lattice is blurred than a
noise-free simulation's.

Each reads the frame's :func:`atomlens.fourier.bragg_split`:

- :func:`fit_pixel_noise` fits a Poisson–Gaussian model (variance ``a·S + b`` at mean
  signal ``S``) to the fine-scale residual of the aperiodic part, and separates the film
  from the noise (Wiener filter);
- :func:`fit_film_thickness` reads how thick an amorphous film explains the power
  spectrum of the frame's background beyond the noise;
- :func:`extra_blur` reads from the decay of the Bragg shells how much more the frame's
  lattice is blurred than a noise-free simulation's (a wider or aberrated probe).

:class:`atomlens.elit.sources.FrameStyledSource` gives simulated images this look; what it
compares the frames with, noise-free simulations of the model's crystal, is made here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from atomlens.fourier import BraggSplit, bragg_split, ring_power
from atomlens.simulate.dataset import SimulatedDataset
from atomlens.simulate.scene import film_counts

__all__ = ["PixelNoise", "extra_blur", "fit_film_thickness", "fit_pixel_noise"]


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
    d = np.zeros((33, 33))
    d[16, 16] = 1.0
    return float(((d - ndi.gaussian_filter(d, sigma_px)) ** 2).sum())


def fit_pixel_noise(
    frame: np.ndarray, split: BraggSplit, /, *, smooth_px: float = 1.0
) -> PixelNoise:
    """Fit a Poisson–Gaussian noise model to a frame, without labels.

    The aperiodic part of :func:`atomlens.fourier.bragg_split` is film plus noise. Film and
    lattice are blurred by the probe (several pixels at a model's sampling), pixel noise is
    not: the aperiodic part less its Gaussian smoothing (``smooth_px``) is noise, and its local
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
        (:func:`atomlens.fourier.ring_power` of a simulated film, scaled) [cycles/px],
        [frame units² / Å].
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


def _reference_splits(clean: Any, seed: int, n: int = 2) -> list[BraggSplit]:
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


def _fit_film(
    split: BraggSplit, film_refs: list[tuple[np.ndarray, ...]], gain: float, blur: float
) -> float:
    """The film thickness [Å] whose simulated power, blurred by ``blur`` [px] and in
    the frame's units (simulation units over ``std(blurred image) × gain``), best
    explains the frame's background beyond the noise-free simulation's own aperiodic
    part (:func:`fit_film_thickness`)."""
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
