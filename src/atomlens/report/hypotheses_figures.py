"""Figures of hypothesis learning (:mod:`atomlens.active.hypotheses`): the bandit's
rewards per model against the step, and the reconstruction with each model's posterior
band (1D) or the winner's mean and uncertainty maps (2D positions, y pointing down)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from atomlens._shared.atomic import write_atomic
from atomlens.report.figures import figure_to_png

__all__ = [
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
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize=8)
    return ax


def save_hypothesis_figures(
    out: str | PathLike[str],
    /,
    *,
    candidates: Any,
    result: Any,
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
            ax=ax,
        )
    else:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.0), dpi=_DPI)
        for a, values, title in (
            (axes[0], result.mean, f"{result.winner}: mean"),
            (axes[1], result.std, f"{result.winner}: σ"),
        ):
            sc = a.scatter(
                X[:, 0], X[:, 1], c=values, s=12, cmap="RdBu_r" if a is axes[0] else "viridis"
            )
            a.plot(X[result.measured, 0], X[result.measured, 1], "k+", ms=6)
            a.set_aspect("equal")
            a.invert_yaxis()
            a.set_title(title, fontsize=10)
            fig.colorbar(sc, ax=a, shrink=0.8)
    write_atomic(out / "reconstruction.png", figure_to_png(fig))
    written.append(out / "reconstruction.png")
    return written
