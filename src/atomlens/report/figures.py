"""Figures of images with atoms on top."""

from __future__ import annotations

import base64
import io
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "figure_to_png",
    "plot_atoms",
    "plot_uncertainty",
    "png_data_uri",
    "save_atoms_png",
    "save_uncertainty_png",
]


def png_data_uri(png: bytes, /) -> str:
    """PNG bytes as a ``data:image/png;base64,…`` URI, for images inlined in HTML."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


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


def figure_size(
    shape: tuple[int, ...], /, *, width_in: float = 7.0, extra_in: float = 0.6
) -> tuple[float, float]:
    """A figure size [in] shaped like an image of ``shape`` (H, W): ``width_in`` wide and as
    tall as the image's aspect asks (within 1.5–10 in), plus ``extra_in`` for a title. A
    1312 × 224 px image gets a wide, short figure, not a square one it fills a sixth of.

    Examples
    --------
    >>> figure_size((512, 512)), figure_size((224, 1312))
    ((7.0, 7.6), (7.0, 2.1))
    """
    h, w = shape[-2:]
    return width_in, round(float(np.clip(width_in * h / w, 1.5, 10.0)) + extra_in, 2)


def scale_bar_nm(field_nm: float, /) -> float:
    """The length [nm] of a scale bar for a field ``field_nm`` wide: the longest of 0.2, 0.5,
    1, 2, 5, … nm within a quarter of it.

    Examples
    --------
    >>> scale_bar_nm(5.0), scale_bar_nm(51.2), scale_bar_nm(0.5)
    (1.0, 10.0, 0.1)
    """
    steps = [m * 10.0**e for e in range(-2, 4) for m in (1.0, 2.0, 5.0)]
    fit = [b for b in steps if b <= 0.25 * field_nm]
    return fit[-1] if fit else steps[0]


def draw_scale_bar(ax: Any, shape: tuple[int, ...], pixel_size: float, /) -> None:
    """A scale bar in the lower left of an image axis, white with a black outline so that
    it reads on bright (BF, ABF) and dark (HAADF) images alike."""
    from matplotlib import patheffects

    h, w = shape[-2:]
    nm = scale_bar_nm(w * pixel_size / 10.0)
    bar = nm * 10.0 / pixel_size
    outline = [patheffects.withStroke(linewidth=3.5, foreground="black")]
    x0, y0 = 0.05 * w, h - 0.06 * h
    (line,) = ax.plot([x0, x0 + bar], [y0, y0], color="white", lw=3, solid_capstyle="butt")
    line.set_path_effects(
        [patheffects.Stroke(linewidth=5, foreground="black"), patheffects.Normal()]
    )
    label = f"{nm:g} nm" if nm >= 1 else f"{nm * 10:g} Å"
    ax.text(
        x0 + bar / 2,
        y0 - 0.025 * h,
        label,
        color="white",
        ha="center",
        va="bottom",
        fontsize=9,
        path_effects=outline,
    )


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
        Pixel size [Å/px]; adds a scale bar (:func:`scale_bar_nm` long).

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
        draw_scale_bar(ax, image.shape, pixel_size)
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

    fig, ax = plt.subplots(figsize=figure_size(np.shape(image)), dpi=110)
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
    pixel_size: float | None = None,
) -> Any:
    """Show an epistemic-uncertainty map [nats] with the accepted atoms (white dots) and the
    candidates the members did not agree on (red rings), and a scale bar when
    ``pixel_size`` [Å/px] is given. Returns ``ax``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    im = ax.imshow(epistemic, cmap="magma", vmin=0, interpolation="nearest")
    # beside the image and as tall as it, whatever the image's aspect
    cax = make_axes_locatable(ax).append_axes("right", size=0.15, pad=0.08)
    plt.colorbar(im, cax=cax, label="mutual information [nats]")
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
    if pixel_size:
        draw_scale_bar(ax, epistemic.shape, pixel_size)
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
    pixel_size: float | None = None,
) -> None:
    """Write :func:`plot_uncertainty` to a PNG file at ``path``, shaped like the map."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figure_size(np.shape(epistemic), width_in=7.6), dpi=110)
    try:
        plot_uncertainty(
            epistemic, atoms=atoms, rejected=rejected, ax=ax, title=title, pixel_size=pixel_size
        )
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
