"""Radially averaged power spectra of lattice images.

Two spectra, for two jobs, that differ on purpose (figures depend on each):

- :func:`radial_power_spectrum` high-passes the image and uses NumPy's Hann window and
  ``min(H, W) // 2`` bins from 0 to 0.5 cycles/px: the peaks of the lattice stand out for
  the pixel-size estimate (:func:`atomlens.fourier.estimate_pixel_size`);
- :func:`ring_power` keeps every spatial frequency and is in variance units, with rings one
  frequency step wide up to the corner of the Fourier plane: it is the background spectrum
  that :func:`atomlens.fourier.bragg_split` measures, so that a film's spectrum can be
  fitted to it (:func:`atomlens.elit.style.fit_film_thickness`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["radial_power_spectrum", "ring_power"]


def radial_power_spectrum(image: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a high-passed, Hann-windowed image.

    Returns
    -------
    k : ndarray
        Spatial frequency of each bin [cycles/px], 0–0.5.
    power : ndarray
        Mean power in the bin.
    """
    a = np.asarray(image, dtype=np.float64)
    a = a - ndimage.gaussian_filter(a, sigma=max(a.shape) / 16)
    h, w = a.shape
    f = np.abs(np.fft.fftshift(np.fft.fft2(a * np.outer(np.hanning(h), np.hanning(w))))) ** 2
    yy, xx = np.indices((h, w))
    k = np.hypot((yy - h // 2) / h, (xx - w // 2) / w)
    nb = min(h, w) // 2
    edges = np.linspace(0, 0.5, nb + 1)
    idx = np.digitize(k.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < nb)
    counts = np.maximum(np.bincount(idx[ok], minlength=nb), 1)
    power = np.bincount(idx[ok], weights=f.ravel()[ok], minlength=nb) / counts
    return (edges[:-1] + edges[1:]) / 2, power


def _hann(n: int) -> np.ndarray:
    """Hann window of ``n`` samples, ``sin²(π(i + ½)/n)``: no sample is zero."""
    return np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2


def _gauss_fft(shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Transfer function of a Gaussian blur of σ ``sigma_px`` (unshifted FFT layout)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    return np.exp(-2 * np.pi**2 * sigma_px**2 * (fy**2 + fx**2))


def _evened_texture(a: np.ndarray) -> np.ndarray:
    """The frame's texture (finer than a 4 px Gaussian) divided by its local RMS (over an
    8 px Gaussian): a bright contamination patch or a hole to vacuum then no longer fills
    the spectrum with its own power and edges, and a lattice's reflections stand out of
    their neighbourhood again (:func:`atomlens.fourier.region_map` finds them on it, and
    :func:`atomlens.fourier.bragg_split` when the frame itself shows none)."""
    h, w = a.shape
    F = np.fft.fft2(a - a.mean())
    fine = np.fft.ifft2(F * (1.0 - _gauss_fft((h, w), 4.0))).real
    norm = np.sqrt(np.fft.ifft2(np.fft.fft2(fine**2) * _gauss_fft((h, w), 8.0)).real)
    return fine / np.maximum(norm, 1e-12 + 1e-3 * float(norm.max()))


def _window(h: int, w: int) -> tuple[np.ndarray, float, float]:
    """The 2-D window of :func:`ring_power` and :func:`atomlens.fourier.bragg_split`, the
    width of their rings (one frequency step of the coarser axis) [cycles/px], and the
    factor that turns the power of a windowed ``(h, w)`` transform into variance
    (Parseval, with the window's energy)."""
    win = _hann(h)[:, None] * _hann(w)[None, :]
    return win, max(1 / h, 1 / w), h * w * float((win**2).sum())


def _rings(fy: np.ndarray, fx: np.ndarray, step: float) -> np.ndarray:
    """Ring of each Fourier bin at frequencies ``(fy, fx)`` [cycles/px]: its distance from
    zero in rings ``step`` wide, rounded."""
    return np.round(np.hypot(fy, fx) / step).astype(int)


def _ring_mean(
    ring: np.ndarray, power: np.ndarray, n_rings: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``power`` over the bins of each ring (0 where a ring has none), and the number
    of bins (at least ``n_rings`` rings)."""
    count = np.bincount(ring, minlength=n_rings)
    return np.bincount(ring, weights=power, minlength=n_rings) / np.maximum(count, 1), count


def ring_power(image: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrum of ``image`` by rings, as :func:`atomlens.fourier.bragg_split`
    measures a frame's background (Hann window, rings one frequency step wide, variance
    units).

    Returns
    -------
    freq, power : ndarray
        Each ring's spatial frequency [cycles/px] and mean power [image units²].
    """
    a = np.asarray(image, dtype=np.float64)
    h, w = a.shape
    win, step, norm = _window(h, w)
    p = np.abs(np.fft.fft2((a - a.mean()) * win)) ** 2
    ring = _rings(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :], step).ravel()
    mean, _ = _ring_mean(ring, p.ravel())
    return np.arange(len(mean)) * step, mean / norm
