"""Scan distortions of a raster-scanned (STEM) image, applied to image and truth alike.

The probe visits pixel ``(row i, column j)`` at time ``t = (i·W + j)/(H·W)`` of the frame, but
it is not exactly where the scan generator thinks: it sits at specimen position
``(j + dx, i + dy)`` [px] with

- *slow drift*: ``dx, dy += drift · t`` (the specimen moves steadily during the frame);
- *line jitter*: a random offset per scan line, ``dx += J_x[i]``, ``dy += J_y[i]``;
- *flyback*: the probe lags at the start of each line after the fast return,
  ``dx += A·exp(−j/τ)``.

The image records the specimen at the probe position, so a column at specimen position ``u``
appears where ``probe(i, j) = u``. :meth:`ScanField.image_positions` solves this for the truth,
using for the jitter its average over the rows that the column covers (weighted by the
column's profile), which is where the column's intensity centroid lands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from atomlens._shared.validate import validate_positive

__all__ = ["ScanDistortion", "ScanField", "default_flyback_decay"]


def default_flyback_decay(flyback_px: float, /) -> float:
    """The decay length [px] of a flyback lag of amplitude ``flyback_px`` [px] when only the
    amplitude is chosen: three times the amplitude and at least 8 px, so that
    ``flyback_px / flyback_decay_px`` stays below the 0.5 at which the scan folds.

    Examples
    --------
    >>> default_flyback_decay(1.0), default_flyback_decay(4.0)
    (8.0, 12.0)
    """
    return max(8.0, 3.0 * flyback_px)


@dataclass(frozen=True)
class ScanDistortion:
    """Parameters of the scan distortions (all 0 = a perfect scan).

    Parameters
    ----------
    line_jitter_px : float
        Standard deviation of the per-line offset along the fast scan (x) [px].
    line_jitter_y_px : float
        Standard deviation of the per-line offset along the slow scan (y) [px].
    drift_x_px, drift_y_px : float
        Specimen displacement accumulated over the whole frame [px].
    flyback_px : float
        Amplitude of the lag at the start of each line [px].
    flyback_decay_px : float
        Decay length of the flyback lag along the line [px]; ``flyback_px/flyback_decay_px``
        must stay below 0.5 so that the scan stays monotonic.
    """

    line_jitter_px: float = 0.0
    line_jitter_y_px: float = 0.0
    drift_x_px: float = 0.0
    drift_y_px: float = 0.0
    flyback_px: float = 0.0
    flyback_decay_px: float = 8.0

    def __post_init__(self) -> None:
        validate_positive(self.line_jitter_px, name="line_jitter_px", unit="px", allow_zero=True)
        validate_positive(
            self.line_jitter_y_px, name="line_jitter_y_px", unit="px", allow_zero=True
        )
        validate_positive(self.flyback_px, name="flyback_px", unit="px", allow_zero=True)
        validate_positive(self.flyback_decay_px, name="flyback_decay_px", unit="px")
        for name in ("drift_x_px", "drift_y_px"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)!r}.")
        if self.flyback_px / self.flyback_decay_px >= 0.5:
            raise ValueError(
                f"flyback_px/flyback_decay_px = {self.flyback_px / self.flyback_decay_px:.2f} "
                "folds the scan (must be < 0.5); lower flyback_px or raise flyback_decay_px."
            )

    @property
    def is_identity(self) -> bool:
        """True when no distortion is applied."""
        return not any(
            (
                self.line_jitter_px,
                self.line_jitter_y_px,
                self.drift_x_px,
                self.drift_y_px,
                self.flyback_px,
            )
        )

    def draw(self, shape: tuple[int, int], rng: np.random.Generator) -> ScanField:
        """Draw the random parts (line jitter) for an image of ``shape`` (H, W)."""
        h, _ = shape
        jx = rng.normal(0.0, self.line_jitter_px, h) if self.line_jitter_px else np.zeros(h)
        jy = rng.normal(0.0, self.line_jitter_y_px, h) if self.line_jitter_y_px else np.zeros(h)
        return ScanField(params=self, shape=shape, jitter_x=jx, jitter_y=jy)

    def to_dict(self) -> dict[str, float]:
        """JSON-serialisable description."""
        return {k: float(getattr(self, k)) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class ScanField:
    """One concrete realisation of :class:`ScanDistortion` for an image of a given shape."""

    params: ScanDistortion
    shape: tuple[int, int]
    jitter_x: np.ndarray
    jitter_y: np.ndarray

    def _smooth(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Drift and flyback at (possibly fractional) pixel coordinates.
        h, w = self.shape
        p = self.params
        t = (y * w + x) / (h * w)
        dx = p.drift_x_px * t
        dy = p.drift_y_px * t
        if p.flyback_px:
            dx = dx + p.flyback_px * np.exp(-np.clip(x, 0.0, None) / p.flyback_decay_px)
        return dx, dy

    def row_offsets(self, rows: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
        """Parts of the probe displacement that depend on the row only.

        The displacement is separable: ``x = j + ax[i] + bx[j]`` and ``y = i + ay[i] + by[j]``
        (drift is linear in time, jitter depends on the line, flyback on the position along
        it). Rows outside the image continue the drift with no jitter.

        Parameters
        ----------
        rows : ndarray of int
            Row indices (any shape, may lie outside the image).

        Returns
        -------
        ax, ay : ndarray
            Row terms [px], same shape as ``rows``.
        """
        h = self.shape[0]
        p = self.params
        inside = (rows >= 0) & (rows < h)
        r = np.clip(rows, 0, h - 1)
        jx = np.where(inside, self.jitter_x[r], 0.0)
        jy = np.where(inside, self.jitter_y[r], 0.0)
        return p.drift_x_px * rows / h + jx, p.drift_y_px * rows / h + jy

    def col_offsets(self, cols: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
        """Parts of the probe displacement that depend on the column only (see row_offsets)."""
        h, w = self.shape
        p = self.params
        bx = p.drift_x_px * cols / (h * w)
        if p.flyback_px:
            bx = bx + p.flyback_px * np.exp(-np.clip(cols, 0.0, None) / p.flyback_decay_px)
        return bx, p.drift_y_px * cols / (h * w)

    def scan_positions(self) -> np.ndarray:
        """Specimen position of the probe at every pixel.

        Returns
        -------
        ndarray of shape (2, H, W)
            ``(x, y)`` in undistorted pixel coordinates [px].
        """
        h, w = self.shape
        rows, cols = np.arange(h), np.arange(w)
        ax, ay = self.row_offsets(rows)
        bx, by = self.col_offsets(cols)
        x = cols[None, :] + ax[:, None] + bx[None, :]
        y = rows[:, None] + ay[:, None] + by[None, :]
        return np.stack([x, y]).astype(float)

    def _effective_jitter(self, y: np.ndarray, sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
        # Jitter averaged over rows with the column's vertical profile as weight.
        h = self.shape[0]
        if not (self.jitter_x.any() or self.jitter_y.any()):
            return np.zeros_like(y), np.zeros_like(y)
        s = max(sigma_px, 0.3)
        half = int(math.ceil(4 * s))
        rows = np.round(y)[:, None] + np.arange(-half, half + 1)[None, :]
        wgt = np.exp(-0.5 * ((rows - y[:, None]) / s) ** 2)
        inside = (rows >= 0) & (rows < h)
        wgt = np.where(inside, wgt, 0.0)
        norm = wgt.sum(axis=1)
        norm = np.where(norm > 0, norm, 1.0)
        r = np.clip(rows, 0, h - 1).astype(int)
        return (wgt * self.jitter_x[r]).sum(1) / norm, (wgt * self.jitter_y[r]).sum(1) / norm

    def image_positions(self, specimen_xy: np.ndarray, /, *, sigma_px: float) -> np.ndarray:
        """Where columns at ``specimen_xy`` appear in the distorted image.

        Parameters
        ----------
        specimen_xy : ndarray of shape (N, 2)
            Undistorted positions (x, y) [px].
        sigma_px : float
            Width of the column profile [px], used to average the line jitter.

        Returns
        -------
        ndarray of shape (N, 2)
            Image positions (x, y) [px].
        """
        u = np.asarray(specimen_xy, dtype=float)
        if self.params.is_identity:
            return u.copy()
        x, y = u[:, 0].copy(), u[:, 1].copy()
        # Fixed-point iteration; converges because the displacement changes by far less than
        # one pixel per pixel (flyback slope < 0.5 is enforced, drift is slow).
        for _ in range(30):
            dx, dy = self._smooth(x, y)
            jx, jy = self._effective_jitter(y, sigma_px)
            x_new = u[:, 0] - dx - jx
            y_new = u[:, 1] - dy - jy
            done = np.max(np.abs(x_new - x) + np.abs(y_new - y), initial=0.0) < 1e-9
            x, y = x_new, y_new
            if done:
                break
        return np.stack([x, y], axis=1)
