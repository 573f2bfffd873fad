"""Data files as something to explore: a saved simulated sample, a spectrum image, or
``features.npy`` + ``targets.npy`` — the one reader behind ``atomlens explore``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from atomlens.active.loop import ExploreResult, ExploreSettings, TableSource, run
from atomlens.active.scalarizers import parse_scalarizer
from atomlens.experiment.microscope import load_sample
from atomlens.experiment.replay import read_spectrum_image

__all__ = ["explore_files", "open_source"]


def open_source(
    data: str | os.PathLike[str],
    /,
    *,
    targets: str | os.PathLike[str] | None = None,
    image: str | os.PathLike[str] | None = None,
    energy: tuple[float, float] | None = None,
    pixel_size: float | None = None,
) -> Any:
    """What ``data`` names, ready for :func:`atomlens.active.run`.

    Parameters
    ----------
    data : str or path
        A directory written by :func:`~atomlens.experiment.save_sample`; a spectrum image
        (``.npy`` (H, W, E) or ``.hspy``); or ``features.npy`` (N, F) with ``targets``.
    targets : str or path, optional
        ``targets.npy`` (N,) for a features file (revealed only when measured).
    image : str or path, optional
        The structural image (H, W) ``.npy`` of a spectrum image.
    energy : (float, float), optional
        ``(start, step)`` of a ``.npy`` spectrum image's energy axis [eV].
    pixel_size : float, optional
        [Å/px] of a ``.npy`` spectrum image.

    Returns
    -------
    SimulatedMicroscope, SpectrumImageReplay or TableSource
    """
    p = Path(data)
    if p.is_dir():
        return load_sample(p)
    if not p.exists():
        raise FileNotFoundError(
            f"{p} does not exist; pass a saved sample directory, a spectrum image or "
            "features.npy with `targets`."
        )
    if targets is not None:
        t = Path(targets)
        if not t.is_file():
            raise FileNotFoundError(f"{t} does not exist; pass the `targets` .npy file.")
        return TableSource(np.load(p, allow_pickle=False), np.load(t, allow_pickle=False))
    if p.suffix == ".npy" and np.load(p, mmap_mode="r", allow_pickle=False).ndim == 2:
        raise ValueError(
            f"{p} is a 2-D array: features need their `targets` (targets.npy), or pass a "
            "(H, W, E) spectrum image."
        )
    src = read_spectrum_image(p, image=image, pixel_size=pixel_size)
    if energy is not None:
        start, step = (float(v) for v in energy)
        src.energy = start + step * np.arange(len(src.energy))
    return src


def explore_files(
    data: str | os.PathLike[str],
    /,
    *,
    out: str | os.PathLike[str],
    scalarizer: str | None = None,
    settings: ExploreSettings | None = None,
    targets: str | os.PathLike[str] | None = None,
    image: str | os.PathLike[str] | None = None,
    energy: tuple[float, float] | None = None,
    pixel_size: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> ExploreResult:
    """Open ``data`` (:func:`open_source`) and run the loop into ``out``.

    Parameters
    ----------
    data, targets, image, energy, pixel_size
        As for :func:`open_source`.
    out : str or path
        The run record directory.
    scalarizer : str, optional
        Command-line form (:func:`atomlens.active.parse_scalarizer`); needed for spectra.
    settings : ExploreSettings, optional
    resume, overwrite, progress
        As for :func:`atomlens.active.run`.

    Returns
    -------
    ExploreResult
    """
    source = open_source(data, targets=targets, image=image, energy=energy, pixel_size=pixel_size)
    scal = None
    if not isinstance(source, TableSource):
        if scalarizer is None:
            raise ValueError(
                "spectra need a `scalarizer`, e.g. `scalarizer='band:99:115:85:97'` "
                "(energies in eV)."
            )
        scal = parse_scalarizer(scalarizer)
    return run(
        source,
        scalarizer=scal,
        settings=settings,
        out=out,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
    )
