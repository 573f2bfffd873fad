"""Figures of images with atoms on top."""

from __future__ import annotations

import io
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "figure_to_png",
    "plot_atoms",
    "plot_uncertainty",
    "save_atoms_png",
    "save_uncertainty_png",
]


def figure_to_png(fig: Any, /) -> bytes:
    """Lay out a figure, render it as PNG and close it.

    The one way the report package turns a figure into PNG bytes, for files and for images
    inlined in HTML alike.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; closed afterwards, also when rendering fails.

    Returns
    -------
    bytes
        The PNG file, at the figure's own size and dpi after ``tight_layout``.
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _display_range(image: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(image, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def plot_atoms(
    image: np.ndarray,
    /,
    *,
    atoms: pd.DataFrame | None = None,
    ax: Any = None,
    marker_size: float = 12.0,
    title: str | None = None,
    pixel_size: float | None = None,
) -> Any:
    """Show an image with atoms coloured by class.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The image; shown with a 0.5–99.5 percentile grey scale.
    atoms : pandas.DataFrame, optional
        Atoms table (``x_px, y_px, class``).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made if omitted.
    marker_size : float
        Marker area [points²].
    title : str, optional
        Axes title.
    pixel_size : float, optional
        Pixel size [Å/px]; adds a 1 nm scale bar.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    lo, hi = _display_range(image)
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    if atoms is not None and len(atoms):
        classes = list(dict.fromkeys(atoms["class"].astype(str)))
        cmap = plt.get_cmap("tab10")
        for k, name in enumerate(classes):
            sel = atoms["class"].astype(str) == name
            ax.scatter(
                atoms.loc[sel, "x_px"],
                atoms.loc[sel, "y_px"],
                s=marker_size,
                facecolors="none",
                edgecolors=[cmap(k % 10)],
                linewidths=0.8,
                label=f"{name} ({int(sel.sum())})",
            )
        ax.legend(loc="upper right", fontsize=8, framealpha=0.7)
    if pixel_size:
        h, w = image.shape
        bar = 10.0 / pixel_size
        ax.plot([0.05 * w, 0.05 * w + bar], [0.95 * h, 0.95 * h], color="white", lw=3)
        ax.text(0.05 * w + bar / 2, 0.93 * h, "1 nm", color="white", ha="center", fontsize=9)
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def save_atoms_png(
    path: str | PathLike[str],
    image: np.ndarray,
    /,
    *,
    atoms: pd.DataFrame | None = None,
    title: str | None = None,
    pixel_size: float | None = None,
) -> None:
    """Write :func:`plot_atoms` of ``image`` to a PNG file at ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 7), dpi=110)
    try:
        plot_atoms(image, atoms=atoms, ax=ax, title=title, pixel_size=pixel_size)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def plot_uncertainty(
    epistemic: np.ndarray,
    /,
    *,
    atoms: pd.DataFrame | None = None,
    rejected: pd.DataFrame | None = None,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Show an epistemic-uncertainty map [nats] with the accepted atoms (white dots) and the
    candidates the members did not agree on (red rings). Returns ``ax``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    im = ax.imshow(epistemic, cmap="magma", vmin=0, interpolation="nearest")
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="mutual information [nats]")
    if atoms is not None and len(atoms):
        ax.scatter(
            atoms["x_px"],
            atoms["y_px"],
            s=3,
            c="white",
            linewidths=0,
            label=f"atoms ({len(atoms)})",
        )
    if rejected is not None and len(rejected):
        ax.scatter(
            rejected["x_px"],
            rejected["y_px"],
            s=40,
            facecolors="none",
            edgecolors="red",
            linewidths=1.0,
            label=f"members disagree ({len(rejected)})",
        )
    if (atoms is not None and len(atoms)) or (rejected is not None and len(rejected)):
        ax.legend(loc="upper right", fontsize=8, framealpha=0.7)
    ax.set_xlim(-0.5, epistemic.shape[1] - 0.5)
    ax.set_ylim(epistemic.shape[0] - 0.5, -0.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def save_uncertainty_png(
    path: str | PathLike[str],
    epistemic: np.ndarray,
    /,
    *,
    atoms: pd.DataFrame | None = None,
    rejected: pd.DataFrame | None = None,
    title: str | None = None,
) -> None:
    """Write :func:`plot_uncertainty` to a PNG file at ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.6, 7), dpi=110)
    try:
        plot_uncertainty(epistemic, atoms=atoms, rejected=rejected, ax=ax, title=title)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
