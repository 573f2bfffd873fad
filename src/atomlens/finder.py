"""Image in, atoms out: :func:`find_atoms`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from atomlens._validate import validate_pixel_size
from atomlens.locate import locate_atoms
from atomlens.model import Model

__all__ = ["find_atoms", "save_find_results"]

logger = logging.getLogger(__name__)


def find_atoms(
    image: np.ndarray,
    /,
    *,
    model: Model | str | PathLike[str],
    pixel_size: float,
    device: str | torch.device = "cpu",
    threshold: float = 0.5,
    min_separation_A: float | None = None,
    refine: bool = True,
    tile: int = 256,
    batch_size: int = 8,
    progress: bool | Callable[..., object] = False,
) -> pd.DataFrame:
    """Find the atoms in an image with a trained model.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (C, H, W)
        The raw image (any linear intensity unit).
    model : Model or path
        A :class:`atomlens.model.Model` or a model directory.
    pixel_size : float
        Pixel size of the image [Å/px]; the image is resampled to the model's sampling
        for the network and the atoms are refined on the original pixels.
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    threshold : float
        Minimum foreground probability of an atom.
    min_separation_A : float, optional
        Minimum distance between atoms [Å]; the model's default if omitted.
    refine : bool
        Sub-pixel Gaussian refinement on the raw image.
    tile, batch_size : int
        Tile side [px at the model's sampling] and tiles per forward pass.
    progress : bool or callable
        Progress bar over tiles.

    Returns
    -------
    pandas.DataFrame
        The atoms table of :func:`atomlens.locate.locate_atoms`.
    """
    ps = validate_pixel_size(pixel_size)
    mdl = model if isinstance(model, Model) else Model.load(model)
    probs = mdl.predict(
        image, pixel_size=ps, device=device, tile=tile, batch_size=batch_size, progress=progress
    )
    raw = np.asarray(image, dtype=np.float64)
    raw = raw if raw.ndim == 2 else raw[0]
    c = mdl.config
    atoms = locate_atoms(
        probs,
        raw,
        pixel_size=ps,
        class_names=c.class_names,
        min_separation_A=min_separation_A if min_separation_A is not None else c.min_separation_A,
        threshold=threshold,
        label_radius_A=c.label_radius_A,
        refine=refine,
        contrast="bright" if c.contrast == "haadf" else "dark",
    )
    logger.info("found %d atoms", len(atoms))
    return atoms


def save_find_results(
    out: str | PathLike[str],
    /,
    image: np.ndarray,
    atoms: pd.DataFrame,
    *,
    pixel_size: float,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``atoms.csv`` and ``overlay.png`` into the directory ``out``, atomically.

    Parameters
    ----------
    out : path
        Output directory; refused if it exists and is not empty, unless ``overwrite``.
    image : ndarray of shape (H, W)
        The image the atoms were found in.
    atoms : pandas.DataFrame
        The atoms table from :func:`find_atoms`.
    pixel_size : float
        Pixel size [Å/px] (for the scale bar).
    title : str, optional
        Title of the overlay.
    overwrite : bool
        Replace an existing directory.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    from atomlens._atomic import atomic_directory
    from atomlens.report.figures import save_atoms_png

    final = Path(out)
    with atomic_directory(final, overwrite=overwrite) as tmp:
        atoms.to_csv(tmp / "atoms.csv", index=False, float_format="%.6g")
        img = np.asarray(image)
        save_atoms_png(
            tmp / "overlay.png",
            img if img.ndim == 2 else img[0],
            atoms=atoms,
            title=title,
            pixel_size=pixel_size,
        )
    return final
