"""Graphene frames from abTEM's multislice, for benchmarks that need a shift from outside
atomlens's own simulator (``elit_shift.py``).

Each *cell* is a periodic graphene sheet of 5 × 3 orthogonal unit cells (12.4 × 12.8 Å after
the < 1 % strain that makes it span whole pixels) with one carbon replaced by Si at a site
drawn from the cell's seed, imaged as in ``independent_physics.py`` (80 kV, 30 mrad probe,
60–180 mrad HAADF detector, Lobato potentials, PRISM, 0.2 Å Gaussian source size) at
0.2 Å/px. Its image is band-limited and exactly periodic, so it is Fourier-resampled to the
frame's sampling and moved by a sub-pixel offset without loss; a *frame* tiles one cell
(its defect repeats every 12 Å), is cropped at a random offset and gets Poisson noise at
``dose`` [e⁻/Å²] on the physical scale (a carbon column sends about 8·10⁻⁴ Å² of the beam
to the detector; atomlens's simulator uses 0.01 Å², so about 12× the counts at one nominal
dose). Truth: every column of the frame, class ``C`` or ``Si``.

The cells are cached under ``cache`` (3–15 s each on 2 CPU cores the first time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import independent_physics as ip

CELL_PIXEL_A = ip.PIXEL_A  # sampling the cells are simulated at [Å/px]


@dataclass
class Frame:
    """A noisy frame and its true columns (``x_px, y_px, class``), as ``simulate_image``'s
    result offers them to the benchmarks."""

    image: np.ndarray
    truth: pd.DataFrame


def _cell_structure(seed: int):
    import abtem
    from ase.build import graphene as ase_graphene

    atoms = ip.commensurate(abtem.orthogonalize_cell(ase_graphene(a=2.46, vacuum=2.0)), (5, 3))
    atoms.numbers[int(np.random.default_rng(seed).integers(len(atoms)))] = 14
    atoms.center(vacuum=2.0, axis=2)
    return atoms


def cell(seed: int, cache: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Noiseless image (detected fraction per pixel at 0.2 Å/px) and true columns
    (``x_px, y_px`` at 0.2 Å/px, ``class``) of the cell drawn by ``seed``."""

    def make() -> tuple[np.ndarray, pd.DataFrame]:
        atoms = _cell_structure(seed)
        cols = ip.columns(atoms)
        truth = pd.DataFrame(
            {"x_px": cols["x_px"], "y_px": cols["y_px"], "class": cols["species"].astype(str)}
        )
        return ip.haadf_image(atoms, "graphene"), truth

    return ip.cached(f"abtem-cell-{seed}", cache, make)


def frame(
    cell_image: np.ndarray,
    cell_truth: pd.DataFrame,
    *,
    seed: int,
    dose: float,
    shape: int = 256,
    pixel_size: float = 0.1,
) -> Frame:
    """A ``shape``² frame at ``pixel_size`` [Å/px] tiled from one cell (see the module's
    docstring), offset and noised by ``seed``, at ``dose`` [e⁻/Å²]."""
    rng = np.random.default_rng(seed)
    factor = CELL_PIXEL_A / pixel_size
    ny, nx = (round(n * factor) for n in cell_image.shape)
    if any(abs(n / m - factor) > 1e-9 for n, m in zip((ny, nx), cell_image.shape, strict=True)):
        raise ValueError(
            f"pixel_size {pixel_size} Å/px does not divide the cell into whole pixels; "
            f"use {CELL_PIXEL_A} / k"
        )
    img = ip.fourier_resample(cell_image, (ny, nx))
    # a sub-pixel offset (dx, dy) [px], exact for a periodic band-limited image
    dx, dy = rng.uniform(0, nx), rng.uniform(0, ny)
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.fftfreq(nx)[None, :]
    img = np.real(np.fft.ifft2(np.fft.fft2(img) * np.exp(-2j * np.pi * (kx * dx + ky * dy))))
    reps = (-(-shape // ny) + 1, -(-shape // nx) + 1)
    big = np.tile(img, reps)[:shape, :shape]
    frac = np.clip(big, 0.0, None)
    counts = rng.poisson(dose * pixel_size**2 * frac).astype(np.float32)
    xy = cell_truth[["x_px", "y_px"]].to_numpy(float) * factor
    xy = np.mod(xy + np.array([dx, dy]), [nx, ny])
    rows = []
    for iy in range(-1, reps[0] + 1):
        for ix in range(-1, reps[1] + 1):
            rows.append(xy + np.array([ix * nx, iy * ny]))
    all_xy = np.concatenate(rows)
    cls = np.tile(cell_truth["class"].to_numpy(str), len(rows))
    inside = np.all((all_xy >= -0.5) & (all_xy < shape - 0.5), axis=1)
    truth = pd.DataFrame(
        {"x_px": all_xy[inside, 0], "y_px": all_xy[inside, 1], "class": cls[inside]}
    )
    return Frame(counts, truth.reset_index(drop=True))
