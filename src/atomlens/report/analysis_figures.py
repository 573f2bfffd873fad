"""Figures of the analysis chain: per-atom maps of strain, rotation and descriptor clusters.

Every map draws the atoms at their physical positions (``x_A``, ``y_A`` [Å]) with ``y``
pointing down, as in the image the atoms were found in.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens.report.figures import figure_to_png

__all__ = ["plot_clusters", "plot_strain_map", "save_clusters_png", "save_strain_map_png"]

_FIGSIZE = (5.2, 4.6)  # [inches]; with _DPI a 520 × 460 px PNG
_DPI = 100


def _validate_per_atom(atoms: pd.DataFrame, values: Any, name: str) -> np.ndarray:
    need = {"x_A", "y_A"} - set(atoms.columns)
    if need:
        raise ValueError(
            f"`atoms` must have the columns x_A and y_A [Å]; it lacks {sorted(need)}. "
            "Pass an atoms table with physical coordinates."
        )
    v = np.asarray(values)
    if v.shape != (len(atoms),):
        raise ValueError(
            f"`{name}` must hold one value per atom, shape ({len(atoms)},); got shape "
            f"{v.shape}. Pass a column of `atoms` or an array aligned with it."
        )
    return v


def _decorate(ax: Any, title: str | None) -> None:
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.set_xlabel("x [Å]")
    ax.set_ylabel("y [Å]")
    if title:
        ax.set_title(title, fontsize=10)


def plot_strain_map(
    atoms: pd.DataFrame,
    /,
    *,
    values: pd.Series | np.ndarray | Sequence[float],
    cmap: str = "RdBu_r",
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Draw a signed per-atom quantity (strain, rotation) as coloured dots at the atoms.

    The colour scale is symmetric about zero, ±(98th percentile of ``|values|``), so that
    a few outliers do not wash out the map; NaN values are left out of the percentile and
    not drawn.

    Parameters
    ----------
    atoms : pandas.DataFrame
        The atoms (``x_A``, ``y_A`` [Å]), e.g. the table of
        :func:`atomlens.analysis.lattice.local_strain`.
    values : array_like of shape (N,)
        One value per row of ``atoms`` (e.g. ``exx`` [1] or ``rotation_deg`` [°]).
    cmap : str
        A diverging Matplotlib colour map.
    title : str, optional
        Axes title.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made if omitted. A colour bar is added beside it.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``; its first collection is the scatter of the atoms.

    Raises
    ------
    ValueError
        If ``atoms`` lacks ``x_A``/``y_A`` or ``values`` is not one value per atom.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    v = _validate_per_atom(atoms, values, "values").astype(float)
    if ax is None:
        _, ax = plt.subplots(figsize=_FIGSIZE, dpi=_DPI)
    lim = np.nanpercentile(np.abs(v), 98) if np.isfinite(v).any() else 1.0
    sc = ax.scatter(atoms["x_A"], atoms["y_A"], c=v, cmap=cmap, s=10, vmin=-lim, vmax=lim)
    ax.figure.colorbar(sc, ax=ax, fraction=0.046, pad=0.02)
    _decorate(ax, title)
    return ax


def plot_clusters(
    atoms: pd.DataFrame,
    /,
    *,
    labels: np.ndarray | Sequence[int],
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Draw atoms coloured by cluster label (``tab10``: label ``k`` in the ``k``-th colour).

    Parameters
    ----------
    atoms : pandas.DataFrame
        The clustered atoms (``x_A``, ``y_A`` [Å]).
    labels : array_like of int, shape (N,)
        Cluster of each row of ``atoms``, 0–9 (larger labels share the last colour).
    title : str, optional
        Axes title.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made if omitted. A colour bar labelled "cluster" is
        added beside it.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``; its first collection is the scatter of the atoms.

    Raises
    ------
    ValueError
        If ``atoms`` lacks ``x_A``/``y_A`` or ``labels`` is not one label per atom.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    c = _validate_per_atom(atoms, labels, "labels")
    if ax is None:
        _, ax = plt.subplots(figsize=_FIGSIZE, dpi=_DPI)
    sc = ax.scatter(atoms["x_A"], atoms["y_A"], c=c, cmap="tab10", s=10, vmin=0, vmax=9)
    ax.figure.colorbar(sc, ax=ax, fraction=0.046, pad=0.02, label="cluster")
    _decorate(ax, title)
    return ax


def save_strain_map_png(
    path: str | PathLike[str],
    atoms: pd.DataFrame,
    /,
    *,
    values: pd.Series | np.ndarray | Sequence[float],
    cmap: str = "RdBu_r",
    title: str | None = None,
) -> None:
    """Write :func:`plot_strain_map` to a 520 × 460 px PNG file at ``path``.

    Parameters
    ----------
    path : path
        The ``.png`` file to write (replaced if it exists).
    atoms : pandas.DataFrame
        The atoms (``x_A``, ``y_A`` [Å]).
    values : array_like of shape (N,)
        One value per row of ``atoms``.
    cmap : str
        A diverging Matplotlib colour map.
    title : str, optional
        Axes title.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=_FIGSIZE, dpi=_DPI)
    try:
        plot_strain_map(atoms, values=values, cmap=cmap, title=title, ax=ax)
        png = figure_to_png(fig)
    finally:
        plt.close(fig)
    Path(path).write_bytes(png)


def save_clusters_png(
    path: str | PathLike[str],
    atoms: pd.DataFrame,
    /,
    *,
    labels: np.ndarray | Sequence[int],
    title: str | None = None,
) -> None:
    """Write :func:`plot_clusters` to a 520 × 460 px PNG file at ``path``.

    Parameters
    ----------
    path : path
        The ``.png`` file to write (replaced if it exists).
    atoms : pandas.DataFrame
        The clustered atoms (``x_A``, ``y_A`` [Å]).
    labels : array_like of int, shape (N,)
        Cluster of each row of ``atoms``.
    title : str, optional
        Axes title.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=_FIGSIZE, dpi=_DPI)
    try:
        plot_clusters(atoms, labels=labels, title=title, ax=ax)
        png = figure_to_png(fig)
    finally:
        plt.close(fig)
    Path(path).write_bytes(png)
