"""Figures of hypothesis learning (:mod:`atomlens.active.hypotheses`): the bandit's
rewards per model against the step, and the reconstruction with each model's posterior
band (1D) or the winner's mean and uncertainty maps (2D positions, y pointing down).

The library does not know the candidates' units or the measured quantity's: give them as
``axis_labels`` (one per candidate dimension, e.g. ``("x [Å]", "y [Å]")``) and
``value_label`` (e.g. ``"Ti offset [pm]"``); the colour bars of the maps are then the mean
and σ of that quantity, in its unit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from atomlens._shared.atomic import write_atomic
from atomlens.report.figures import figure_to_png

__all__ = [
    "plot_hypothesis_maps",
    "plot_hypothesis_reconstruction",
    "plot_hypothesis_rewards",
    "save_hypothesis_figures",
]

_DPI = 100


def plot_hypothesis_rewards(record: Mapping[str, Any], /, *, ax: Any = None) -> Any:
    """Cumulative reward of every model against the step, warm-up shaded.

    Parameters
    ----------
    record : dict
        A run record (``HypothesisResult.record`` or ``load_record(out)``).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.6), dpi=_DPI)
    steps = record["steps"]
    for name in record["models"]:
        total, xs, ys = 0.0, [0], [0.0]
        for s in steps:
            if s["model"] == name and s["reward"] is not None:
                total += s["reward"]
            xs.append(s["step"] + 1)
            ys.append(total)
        label = name + (" (dropped)" if name in record.get("dropped", {}) else "")
        ax.step(xs, ys, where="post", label=label)
    n_warm = sum(1 for s in steps if s["phase"] == "warmup")
    if n_warm:
        ax.axvspan(0, n_warm, color="0.9", zorder=0, label="warm-up")
    ax.set_xlabel("step")
    ax.set_ylabel("cumulative reward")
    winner = record.get("result", {}).get("winner")
    if winner:
        ax.set_title(f"winner: {winner}", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_hypothesis_reconstruction(
    candidates: Any,
    /,
    *,
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    measured_x: Any,
    measured_y: Sequence[float],
    winner: str | None = None,
    truth: Any = None,
    axis_label: str = "x",
    value_label: str = "y",
    ax: Any = None,
) -> Any:
    """Each model's reconstruction with its ±2σ posterior band over 1D candidates.

    Parameters
    ----------
    candidates : array_like of shape (M,) or (M, 1)
        The candidate inputs.
    predictions : dict
        Model name → ``(mean, std)``, each of shape (M,).
    measured_x, measured_y : array_like of shape (K,)
        The measurements.
    winner : str, optional
        Drawn on top, with a thicker line.
    truth : array_like of shape (M,), optional
        The noise-free truth, dashed (benchmarks).
    axis_label : str
        The candidates' axis, with its unit, e.g. ``"composition x"`` or ``"V [V]"``.
    value_label : str
        The measured quantity, with its unit, e.g. ``"I [counts]"``.
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    X = np.asarray(candidates, dtype=float).reshape(len(candidates), -1)
    if X.shape[1] != 1:
        raise ValueError(
            f"`candidates` must be 1D for this plot, got {X.shape[1]} dimensions; use "
            "save_hypothesis_figures for maps."
        )
    x = X[:, 0]
    order = np.argsort(x)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.8), dpi=_DPI)
    for name, (mean, std) in predictions.items():
        m, s = np.asarray(mean)[order], np.asarray(std)[order]
        lw = 2.2 if name == winner else 1.0
        (line,) = ax.plot(x[order], m, lw=lw, label=name + (" (winner)" if name == winner else ""))
        ax.fill_between(x[order], m - 2 * s, m + 2 * s, color=line.get_color(), alpha=0.2)
    if truth is not None:
        ax.plot(x[order], np.asarray(truth)[order], "k--", lw=1, label="truth")
    ax.plot(np.asarray(measured_x).reshape(-1), measured_y, "k.", ms=5, label="measured")
    ax.set_xlabel(axis_label)
    ax.set_ylabel(value_label)
    ax.legend(fontsize=8)
    return ax


def plot_hypothesis_maps(
    candidates: Any,
    /,
    *,
    mean: Any,
    std: Any,
    measured: Any = (),
    winner: str | None = None,
    axis_labels: Sequence[str] = ("x", "y"),
    value_label: str = "measured value",
    axes: Any = None,
) -> Any:
    """A model's mean and predictive standard deviation over 2D positions, with the
    measured points, y pointing down.

    Parameters
    ----------
    candidates : array_like of shape (M, 2)
        The positions (x, y).
    mean, std : array_like of shape (M,)
        The reconstruction and its standard deviation, in the unit of the measured value.
    measured : array_like of int, shape (K,)
        Indices of the measured candidates, marked with ``+``.
    winner : str, optional
        The model's name, for the titles.
    axis_labels : sequence of two str
        The x and y axes with their unit, e.g. ``("x [Å]", "y [Å]")``.
    value_label : str
        The measured quantity with its unit, e.g. ``"Ti offset [pm]"``: the colour bars
        read ``mean Ti offset [pm]`` and ``σ of Ti offset [pm]``.
    axes : sequence of two matplotlib.axes.Axes, optional
        Where to draw the mean and the σ; a new figure if omitted.

    Returns
    -------
    tuple of matplotlib.axes.Axes
        The mean's and the σ's axes (their colour bars are ``ax.collections[0].colorbar``).
    """
    import matplotlib.pyplot as plt

    X = np.asarray(candidates, dtype=float).reshape(len(candidates), -1)
    if X.shape[1] != 2:
        raise ValueError(
            f"`candidates` must be 2D positions (M, 2) for maps, got {X.shape[1]} "
            "dimensions; use plot_hypothesis_reconstruction for 1D."
        )
    labels = _checked_labels(axis_labels, 2)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9.0, 4.0), dpi=_DPI)
    idx = np.asarray(measured, dtype=int).reshape(-1)
    prefix = f"{winner}: " if winner else ""
    for a, values, cmap, title, bar in (
        (axes[0], mean, "RdBu_r", "mean", f"mean {value_label}"),
        (axes[1], std, "viridis", "σ", f"σ of {value_label}"),
    ):
        sc = a.scatter(X[:, 0], X[:, 1], c=np.asarray(values, dtype=float), s=12, cmap=cmap)
        a.plot(X[idx, 0], X[idx, 1], "k+", ms=6)
        a.set_aspect("equal")
        a.invert_yaxis()
        a.set_xlabel(labels[0])
        a.set_ylabel(labels[1])
        a.set_title(prefix + title, fontsize=10)
        a.figure.colorbar(sc, ax=a, shrink=0.8, label=bar)
    return axes[0], axes[1]


def _checked_labels(axis_labels: Sequence[str], dims: int) -> list[str]:
    """``axis_labels`` as a list of ``dims`` strings, or the error that says what is wrong."""
    labels = [] if isinstance(axis_labels, str) else list(axis_labels)  # a str is not a list
    if len(labels) != dims or not all(isinstance(s, str) for s in labels):
        raise ValueError(
            f"`axis_labels` must be {dims} strings, one per candidate dimension, got "
            f"{axis_labels!r}; e.g. ('x [Å]', 'y [Å]') for positions in Å."
        )
    return labels


def save_hypothesis_figures(
    out: str | PathLike[str],
    /,
    *,
    candidates: Any,
    result: Any,
    axis_labels: Sequence[str] | None = None,
    value_label: str | None = None,
) -> list[Path]:
    """Write ``rewards.png`` and ``reconstruction.png`` of a run into ``out``.

    Parameters
    ----------
    out : path
        An existing directory (the run's).
    candidates : array_like of shape (M,) or (M, D)
        The run's candidates; with D = 2 they are positions (x, y) and the reconstruction
        is the winner's mean and standard deviation maps.
    result : HypothesisResult
        What :func:`atomlens.active.hypotheses.learn_hypotheses` returned.
    axis_labels : sequence of str, optional
        One label per candidate dimension, with its unit, e.g. ``("x [Å]", "y [Å]")`` for
        positions in Å. By default ``x`` (1D) or ``x``, ``y`` (2D): the candidates' units
        are not known to the library.
    value_label : str, optional
        The measured quantity with its unit, e.g. ``"Ti offset [pm]"``: the 1D plot's y
        axis, and the maps' colour bars (``mean …`` and ``σ of …``). By default ``y`` (1D)
        or ``measured value`` (2D).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(out)
    if not out.is_dir():
        raise NotADirectoryError(f"{out} is not a directory; create it or pass the run's `out`.")
    X = np.asarray(candidates, dtype=float)
    X = X[:, None] if X.ndim == 1 else X
    labels = _checked_labels(axis_labels, X.shape[1]) if axis_labels is not None else None
    written = []
    fig, ax = plt.subplots(figsize=(5.2, 3.6), dpi=_DPI)
    plot_hypothesis_rewards(result.record, ax=ax)
    write_atomic(out / "rewards.png", figure_to_png(fig))
    written.append(out / "rewards.png")
    if X.shape[1] == 1:
        fig, ax = plt.subplots(figsize=(5.2, 3.8), dpi=_DPI)
        plot_hypothesis_reconstruction(
            X,
            predictions=result.predictions,
            measured_x=X[result.measured, 0],
            measured_y=result.values_measured,
            winner=result.winner,
            axis_label=labels[0] if labels else "x",
            value_label=value_label if value_label is not None else "y",
            ax=ax,
        )
    else:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.0), dpi=_DPI)
        plot_hypothesis_maps(
            X[:, :2],
            mean=result.mean,
            std=result.std,
            measured=result.measured,
            winner=result.winner,
            axis_labels=labels[:2] if labels else ("x", "y"),
            value_label=value_label if value_label is not None else "measured value",
            axes=axes,
        )
    write_atomic(out / "reconstruction.png", figure_to_png(fig))
    written.append(out / "reconstruction.png")
    return written
