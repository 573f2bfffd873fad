"""Figures of an automated experiment: the path over the overview, best-so-far against the
step, and the model's mean and uncertainty maps over the candidates.

They take plain arrays (the run record's contents), so they draw any run, live or replayed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from atomlens.report.figures import figure_to_png

__all__ = ["explore_figures", "plot_best_so_far", "plot_explore_maps", "plot_explore_path"]


def _axes(ax: Any, size: tuple[float, float] = (5.0, 4.6)) -> Any:
    if ax is not None:
        return ax
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=100).add_subplot()


def plot_explore_path(
    image: np.ndarray | None,
    positions: np.ndarray,
    /,
    *,
    values: np.ndarray | None = None,
    ax: Any = None,
) -> Any:
    """The measured positions in order, over the overview image.

    Parameters
    ----------
    image : ndarray of shape (H, W) or None
        The overview.
    positions : ndarray of shape (S, 2)
        Measured ``(x, y)`` [px] in step order.
    values : ndarray of shape (S,), optional
        Colours the points by measured value.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    if image is not None:
        ax.imshow(image, cmap="gray", origin="upper")
    p = np.asarray(positions, dtype=float)
    ax.plot(p[:, 0], p[:, 1], "-", color="tab:orange", lw=0.7, alpha=0.7)
    sc = ax.scatter(p[:, 0], p[:, 1], c=values, s=16, cmap="viridis", zorder=3)
    if values is not None:
        ax.figure.colorbar(sc, ax=ax, label="value")
    ax.set_xlabel("x [px]")
    ax.set_ylabel("y [px]")
    ax.set_title("path", fontsize=10)
    if image is None:
        ax.invert_yaxis()
    return ax


def plot_best_so_far(values: np.ndarray, /, *, n_seed: int = 0, ax: Any = None) -> Any:
    """Best value found against the measurement number.

    Parameters
    ----------
    values : ndarray of shape (S,)
        Measured values in step order.
    n_seed : int
        Seed points, marked by a vertical line.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax, (5.0, 3.4))
    v = np.asarray(values, dtype=float)
    ax.plot(np.arange(len(v)), np.maximum.accumulate(v), "-o", ms=3)
    if n_seed:
        ax.axvline(n_seed - 0.5, color="gray", ls=":", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("best so far")
    return ax


def plot_explore_maps(
    positions: np.ndarray, mean: np.ndarray, variance: np.ndarray, /, *, axes: Any = None
) -> Any:
    """Predicted mean and standard deviation at every candidate.

    Parameters
    ----------
    positions : ndarray of shape (N, 2)
        Candidate ``(x, y)`` [px].
    mean, variance : ndarray of shape (N,)
        The model's prediction.
    axes : pair of matplotlib.axes.Axes, optional

    Returns
    -------
    pair of matplotlib.axes.Axes
    """
    if axes is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9.0, 4.2), dpi=100)
        axes = fig.subplots(1, 2)
    p = np.asarray(positions, dtype=float)
    for ax, v, title in (
        (axes[0], np.asarray(mean), "predicted mean"),
        (axes[1], np.sqrt(np.maximum(variance, 0)), "uncertainty σ"),
    ):
        sc = ax.scatter(p[:, 0], p[:, 1], c=v, s=6, marker="s", cmap="magma")
        ax.figure.colorbar(sc, ax=ax)
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x [px]")
    return axes


def explore_figures(
    *,
    image: np.ndarray | None,
    positions: np.ndarray | None,
    indices: np.ndarray,
    values: np.ndarray,
    n_seed: int,
    mean: np.ndarray | None = None,
    variance: np.ndarray | None = None,
) -> dict[str, bytes]:
    """PNG bytes of a run's figures: ``path.png`` (with positions), ``best_so_far.png`` and
    ``maps.png`` (with a model's prediction and positions).

    Returns
    -------
    dict of str to bytes
    """
    out = {}
    ax = plot_best_so_far(values, n_seed=n_seed)
    out["best_so_far.png"] = figure_to_png(ax.figure)
    if positions is not None:
        ax = plot_explore_path(image, positions[np.asarray(indices)], values=values)
        out["path.png"] = figure_to_png(ax.figure)
        if mean is not None and variance is not None:
            axes = plot_explore_maps(positions, mean, variance)
            out["maps.png"] = figure_to_png(axes[0].figure)
    return out
