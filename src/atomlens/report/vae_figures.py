"""Figures of the VAEs: a latent (or class) map on the image, latent traversals and
reconstructions. Matplotlib is imported inside the functions."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens.report.figures import figure_size, figure_to_png

__all__ = [
    "plot_latent_map",
    "plot_sample_grid",
    "save_latent_map_png",
    "save_sample_grid_png",
]


def plot_latent_map(
    image: np.ndarray,
    atoms: pd.DataFrame,
    /,
    *,
    values: np.ndarray,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Draw one latent (or the class) of every atom as a coloured dot on the image.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The image the atoms were found in (drawn in grey).
    atoms : pandas.DataFrame
        ``x_px, y_px`` [px].
    values : ndarray of shape (N,)
        One value per atom.
    title : str, optional
        Axes title.
    ax : matplotlib.axes.Axes, optional
        Where to draw (a new figure if omitted).

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    v = np.asarray(values)
    if v.shape != (len(atoms),):
        raise ValueError(f"`values` must hold one value per atom ({len(atoms)}), got {v.shape}.")
    if ax is None:
        _, ax = plt.subplots(figsize=figure_size(np.shape(image), width_in=5.2), dpi=100)
    ax.imshow(image, cmap="gray")
    if np.issubdtype(v.dtype, np.integer):  # classes: a colour and a count each
        cmap = plt.get_cmap("tab10")
        for k in np.unique(v):
            sel = v == k
            ax.scatter(
                atoms["x_px"][sel],
                atoms["y_px"][sel],
                s=14,
                color=cmap(int(k) % 10),
                label=f"class {k} ({int(sel.sum())})",
            )
        ax.legend(loc="upper right", fontsize=8, framealpha=0.7)
    else:
        sc = ax.scatter(atoms["x_px"], atoms["y_px"], c=v, s=14, cmap="viridis")
        ax.figure.colorbar(sc, ax=ax, shrink=0.8)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def save_latent_map_png(
    path: str | PathLike[str],
    image: np.ndarray,
    atoms: pd.DataFrame,
    /,
    values: np.ndarray,
    *,
    title: str | None = None,
) -> Path:
    """:func:`plot_latent_map` into a PNG file at ``path``."""
    ax = plot_latent_map(image, atoms, values=values, title=title)
    out = Path(path)
    out.write_bytes(figure_to_png(ax.figure))
    return out


def plot_sample_grid(
    rows: list[np.ndarray], /, *, labels: list[str] | None = None, title: str | None = None
) -> Any:
    """Draw rows of samples: patches ``(n, h, w)`` as images, spectra ``(n, L)`` as curves
    (a traversal per row, or data above their reconstructions).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows), n, figsize=(1.2 * n, 1.2 * len(rows) + 0.4), dpi=100, squeeze=False
    )
    for i, r in enumerate(rows):
        for j in range(n):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(r):
                ax.set_axis_off()
                continue
            if r[j].ndim == 2:
                ax.imshow(r[j], cmap="gray")
            else:
                ax.plot(r[j], lw=0.8)
        if labels:
            axes[i, 0].set_ylabel(labels[i], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_sample_grid_png(
    path: str | PathLike[str],
    rows: list[np.ndarray],
    /,
    *,
    labels: list[str] | None = None,
    title: str | None = None,
) -> Path:
    """:func:`plot_sample_grid` into a PNG file at ``path``."""
    out = Path(path)
    out.write_bytes(figure_to_png(plot_sample_grid(rows, labels=labels, title=title)))
    return out
