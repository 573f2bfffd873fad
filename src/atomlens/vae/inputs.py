"""Samples for the VAEs from atomlens files and plain arrays: patches cut at atoms,
``descriptors.npz``, ``(N, h, w)`` / ``(N, L)`` arrays and spectrum images."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from atomlens.analysis.descriptors import atom_patches
from atomlens.vae.fit import validate_samples

__all__ = ["load_samples", "patches_at_atoms", "spectra_at_atoms"]


def patches_at_atoms(
    image: np.ndarray,
    atoms: pd.DataFrame,
    /,
    *,
    pixel_size: float,
    patch_A: float = 4.0,
    samples: int = 21,
) -> np.ndarray:
    """Patches ``patch_A`` wide at every atom, ``(N, samples, samples)``, sampled at each
    atom's sub-pixel position (:func:`atomlens.analysis.atom_patches`).

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The image the atoms were found in.
    atoms : pandas.DataFrame
        ``x_px, y_px`` [px].
    pixel_size : float
        [Å/px] of ``image``.
    patch_A : float
        Patch side [Å].
    samples : int
        Samples per side.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"`image` must be one 2-D frame (H, W), got shape {img.shape}.")
    if not np.isfinite(img).all():
        raise ValueError("`image` has NaN or infinite pixels; fill them first.")
    missing = {"x_px", "y_px"} - set(atoms.columns)
    if missing:
        raise ValueError(f"the atoms table lacks the columns {sorted(missing)}; give x_px, y_px.")
    h, w = img.shape
    x, y = atoms["x_px"].to_numpy(float), atoms["y_px"].to_numpy(float)
    if len(x) and (x.max() > w + 1 or y.max() > h + 1 or min(x.min(), y.min()) < -1):
        raise ValueError(
            f"the atoms reach ({x.max():.0f}, {y.max():.0f}) px, beyond the {w}×{h} px `image`; "
            "give the image the atoms were found in."
        )
    return atom_patches(img, atoms, pixel_size=pixel_size, size_A=patch_A, samples=samples)


def spectra_at_atoms(cube: np.ndarray, atoms: pd.DataFrame, /) -> np.ndarray:
    """The spectrum at each atom's nearest pixel of a spectrum image, ``(N, L)``.

    Parameters
    ----------
    cube : ndarray of shape (H, W, L)
        Spectrum image, energy last.
    atoms : pandas.DataFrame
        ``x_px, y_px`` [px] in the same pixel grid.
    """
    c = np.asarray(cube)
    if c.ndim != 3:
        raise ValueError(f"a spectrum image must be (H, W, L), got shape {c.shape}.")
    h, w, _ = c.shape
    col = np.rint(atoms["x_px"].to_numpy(float)).astype(int)
    row = np.rint(atoms["y_px"].to_numpy(float)).astype(int)
    if len(col) and (col.min() < 0 or row.min() < 0 or col.max() >= w or row.max() >= h):
        raise ValueError(
            f"atoms lie outside the {w}×{h} px spectrum image; its pixels must match the image "
            "the atoms were found in."
        )
    return c[row, col].astype(np.float64)


def load_samples(
    path: str | PathLike[str],
    /,
    *,
    image: np.ndarray | str | PathLike[str] | None = None,
    pixel_size: float | None = None,
    patch_A: float = 4.0,
    samples: int = 21,
) -> tuple[np.ndarray, pd.DataFrame | None]:
    """Samples from a file: ``.npy`` ``(N, h, w)`` / ``(N, L)``, ``descriptors.npz`` (from
    ``atomlens analyze --image``), or an atoms table (``.csv``/``.parquet``) with ``image``.

    Parameters
    ----------
    path : path
        The samples, or the atoms table.
    image : ndarray or path, optional
        With an atoms table: the image the atoms were found in (any file
        :func:`atomlens.io.read_image` reads, or an array).
    pixel_size : float, optional
        [Å/px] of ``image`` (default: the table's ``x_A / x_px``, else the file's).
    patch_A : float
        Patch side [Å].
    samples : int
        Samples per patch side.

    Returns
    -------
    data : ndarray
        The samples.
    atoms : pandas.DataFrame or None
        The atoms the samples belong to (one row each), when the input has them.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found; give a .npy, descriptors.npz or atoms table.")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        if image is not None:
            raise ValueError("`image` goes with an atoms table, not with a .npy of samples.")
        return validate_samples(np.load(p, allow_pickle=False), name=p.name), None
    if suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if "patches" not in z:
                raise ValueError(
                    f"{p} has no `patches`; give the descriptors.npz that `analyze` writes "
                    "when it is given the image."
                )
            data = z["patches"]
            # the row of each patch's atom in the analysed atoms table, and its position
            cols = {k: z[k] for k in ("index", "x_A", "y_A") if k in z}
            table = pd.DataFrame(cols) if cols else None
        return validate_samples(data, name=p.name), table
    if suffix in (".csv", ".parquet"):
        atoms = pd.read_parquet(p) if suffix == ".parquet" else pd.read_csv(p)
        if image is None:
            raise ValueError(
                f"{p.name} is an atoms table: give the `image` the atoms were found in."
            )
        if isinstance(image, str | PathLike):
            # the image readers (tifffile, RosettaSciIO) only when a file is given
            from atomlens.io import read_image

            img = read_image(image, pixel_size=pixel_size)
            arr, ps = np.asarray(img.data, float), pixel_size or img.pixel_size
        else:
            arr, ps = np.asarray(image, float), pixel_size
        if ps is None:
            ok = (atoms["x_px"].abs() > 1e-9) if "x_A" in atoms else None
            if ok is None or not ok.any():
                raise ValueError("give the pixel size of the image (`pixel_size`) in Å/px.")
            ps = float(np.median(atoms.loc[ok, "x_A"] / atoms.loc[ok, "x_px"]))
        return patches_at_atoms(arr, atoms, pixel_size=ps, patch_A=patch_A, samples=samples), atoms
    raise ValueError(
        f"{p.name}: give samples as .npy, descriptors.npz or an atoms table (.csv/.parquet)."
    )
