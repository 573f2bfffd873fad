"""Replay of a pre-acquired spectrum image: the "pre-acquired data" mode of the papers.

A spectrum image ``(H, W, E)`` and the image it was taken with ``(H, W)`` stand in for the
instrument: :meth:`SpectrumImageReplay.measure` returns the recorded spectrum at a pixel, so
an agent's path can be scored against the full data it never saw.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from atomlens._shared.validate import validate_pixel_size

__all__ = ["SpectrumImageReplay", "read_spectrum_image"]


class SpectrumImageReplay:
    """A pre-acquired spectrum image served one spectrum at a time.

    Parameters
    ----------
    cube : ndarray of shape (H, W, E)
        Spectra at every pixel.
    energy : ndarray of shape (E,), optional
        Energy axis [eV]; channel indices if omitted.
    image : ndarray of shape (H, W), optional
        The structural image; the cube summed over energy if omitted.
    pixel_size : float
        [Å/px].

    Examples
    --------
    >>> cube = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    >>> SpectrumImageReplay(cube, pixel_size=0.1).measure(2, 1).tolist()
    [20.0, 21.0, 22.0, 23.0]
    """

    def __init__(
        self,
        cube: np.ndarray,
        *,
        energy: np.ndarray | None = None,
        image: np.ndarray | None = None,
        pixel_size: float = 1.0,
    ) -> None:
        c = np.asarray(cube)
        if c.ndim != 3:
            raise ValueError(f"a spectrum image must be (H, W, E), got shape {c.shape}.")
        if c.shape[0] == 0 or c.shape[1] == 0 or c.shape[2] == 0:
            raise ValueError(f"the spectrum image {c.shape} is empty.")
        self.cube = c
        e = np.arange(c.shape[2], dtype=np.float64) if energy is None else np.asarray(energy, float)
        if e.shape != (c.shape[2],):
            raise ValueError(
                f"`energy` must have {c.shape[2]} channels like the cube, got {e.shape}."
            )
        self.energy = e
        img = c.sum(-1) if image is None else np.asarray(image)
        if img.shape != c.shape[:2]:
            raise ValueError(
                f"`image` {img.shape} must have the cube's spatial shape {c.shape[:2]}."
            )
        self.image = np.asarray(img, dtype=np.float64)
        self.pixel_size = validate_pixel_size(pixel_size)

    def overview(self) -> np.ndarray:
        """The structural image (H, W)."""
        return self.image

    def measure(self, x: float, y: float) -> np.ndarray:
        """The recorded spectrum at the pixel nearest ``(x, y)``, (E,)."""
        h, w = self.image.shape
        col, row = round(float(x)), round(float(y))
        if not (0 <= col < w and 0 <= row < h):
            raise ValueError(f"position x={x}, y={y} px is outside the {h}×{w} spectrum image.")
        return np.asarray(self.cube[row, col], dtype=np.float64)


def read_spectrum_image(
    path: str | os.PathLike[str],
    /,
    *,
    image: str | os.PathLike[str] | None = None,
    pixel_size: float | None = None,
) -> SpectrumImageReplay:
    """Read a spectrum image from ``.npy`` (H, W, E) or a HyperSpy ``.hspy`` file.

    Parameters
    ----------
    path : str or path
        The cube. A ``.hspy`` file gives its energy axis and pixel size (converted to Å).
    image : str or path, optional
        ``.npy`` structural image (H, W); the cube summed over energy if omitted.
    pixel_size : float, optional
        [Å/px]; required for ``.npy`` cubes unless 1 Å/px is meant.

    Returns
    -------
    SpectrumImageReplay
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist; pass a spectrum image (.npy or .hspy).")
    energy: Any = None
    px = pixel_size
    if p.suffix == ".npy":
        cube = np.load(p, allow_pickle=False)
    elif p.suffix in (".hspy", ".zspy"):
        # RosettaSciIO is optional: only needed for HyperSpy files
        try:
            from rsciio.hspy import file_reader
        except ImportError as exc:
            raise ImportError(
                "reading .hspy needs RosettaSciIO: pip install 'atomlens[formats]'"
            ) from exc
        d = file_reader(str(p))[0]
        cube = np.asarray(d["data"])
        axes = d["axes"]
        nav = [a for a in axes if a.get("navigate", True)]
        sig = [a for a in axes if not a.get("navigate", True)] or [axes[-1]]
        e_ax = sig[-1]
        energy = e_ax.get("offset", 0.0) + e_ax.get("scale", 1.0) * np.arange(cube.shape[-1])
        if px is None and nav:
            scale = float(nav[-1].get("scale", 1.0))
            unit = str(nav[-1].get("units", "")).strip()
            px = scale * {"nm": 10.0, "Å": 1.0, "A": 1.0, "pm": 0.01}.get(unit, 1.0)
    else:
        raise ValueError(f"{p}: spectrum images are read from .npy or .hspy, not {p.suffix!r}.")
    img = None if image is None else np.load(Path(image), allow_pickle=False)
    return SpectrumImageReplay(cube, energy=energy, image=img, pixel_size=px or 1.0)
