"""Figures of how well the per-atom uncertainty holds against the truth: a histogram of
z = error / σ and a reliability diagram of ``p_real`` (from
:class:`atomlens.metrics.DetectionReport`)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens._shared.atomic import atomic_directory
from atomlens.report.figures import figure_to_png

__all__ = [
    "evaluation_pngs",
    "plot_reliability",
    "plot_z_histogram",
    "save_evaluation_figures",
]

#: The files :func:`save_evaluation_figures` writes.
EVALUATION_FIGURES: tuple[str, ...] = ("reliability.png", "z_hist.png")


def plot_z_histogram(z: np.ndarray, /, *, ax: Any = None, bins: int = 41) -> Any:
    """Histogram of z = error / σ (both axes pooled) against the standard normal.

    Parameters
    ----------
    z : ndarray of shape (N, 2) or (N,)
        Per-axis z of the matched atoms (:attr:`atomlens.metrics.DetectionReport.z`);
        non-finite values are left out.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure without one.
    bins : int
        Equal-width bins over [−5, 5]; values beyond are counted in the outer bins.

    Returns
    -------
    matplotlib.axes.Axes
        The title gives the RMS of z and the shares within 1σ and 2σ over all values, as
        ``atomlens evaluate`` prints them.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    v = np.asarray(z, float).ravel()
    v = v[np.isfinite(v)]
    edges = np.linspace(-5.0, 5.0, bins + 1)
    counts, _ = np.histogram(np.clip(v, -5.0, 5.0), bins=edges)
    width = edges[1] - edges[0]
    density = counts / max(len(v), 1) / width
    ax.bar(
        edges[:-1],
        density,
        width=width,
        align="edge",
        color="#4c72b0",
        alpha=0.8,
        label=f"z of {len(v)} axis errors",
    )
    x = np.linspace(-5, 5, 401)
    ax.plot(x, np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi), color="k", lw=1.2, label="N(0, 1)")
    ax.set_xlabel("z = error / σ (per axis)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    if len(v):
        ax.set_title(
            f"z RMS {np.sqrt(np.mean(v**2)):.3g} (ideal 1); within 1σ "
            f"{np.mean(np.abs(v) <= 1):.1%}, 2σ {np.mean(np.abs(v) <= 2):.1%}",
            fontsize=10,
        )
    return ax


def plot_reliability(reliability: pd.DataFrame, /, *, ax: Any = None) -> Any:
    """Reliability diagram: the share of real atoms against the mean ``p_real`` per bin.

    Parameters
    ----------
    reliability : pandas.DataFrame
        :attr:`atomlens.metrics.DetectionReport.reliability` (columns ``p_lo, p_hi, n,
        mean_p_real, share_real``).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure without one.

    Returns
    -------
    matplotlib.axes.Axes
        One marker per bin (the points' data are the table's ``mean_p_real`` and
        ``share_real``), the diagonal, the atoms per bin as bars on a second axis, and the
        ECE in the title.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    t = reliability
    n = t["n"].to_numpy(float)
    gap = np.abs(t["share_real"] - t["mean_p_real"]).to_numpy(float)
    ece = float((n * gap).sum() / n.sum()) if n.sum() else float("nan")
    ax2 = ax.twinx()
    ax2.bar(t["p_lo"], n, width=t["p_hi"] - t["p_lo"], align="edge", color="0.85", zorder=0)
    ax2.set_yscale("log")
    ax2.set_ylabel("atoms per bin")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--", label="ideal")
    ax.plot(t["mean_p_real"], t["share_real"], "o-", color="#c44e52", label="observed")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("mean p_real in the bin")
    ax.set_ylabel("share matched to a true atom")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"p_real reliability: ECE {ece:.3f} over {int(n.sum())} atoms", fontsize=10)
    return ax


def save_evaluation_figures(report: Any, directory: str | PathLike[str], /) -> dict[str, Path]:
    """Write ``reliability.png`` and ``z_hist.png`` of an evaluation into a new directory.

    Parameters
    ----------
    report : atomlens.metrics.DetectionReport
        From :func:`atomlens.metrics.score_detections` of a prediction with ``sigma_x_A,
        sigma_y_A`` (for the z histogram) and ``p_real`` (for the reliability diagram),
        both in Å coordinates.
    directory : str or path-like
        Created (atomically, with its parents); it must not exist or be empty.

    Returns
    -------
    dict of str to pathlib.Path
        The files written, by name; a figure whose data the report lacks is not written.

    Raises
    ------
    ValueError
        If the report has neither σ coverage nor a reliability table.
    FileExistsError
        If ``directory`` exists and is not empty.
    """
    final = Path(directory)
    if report.z is None and report.reliability is None:
        raise ValueError(
            "the prediction has no sigma_x_A/sigma_y_A and p_real columns to draw "
            "`figures` of; score a table from `atomlens find`."
        )
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise FileExistsError(
            f"{final} exists and is not an empty directory; choose a new `figures` directory."
        )
    pngs = evaluation_pngs(report)
    with atomic_directory(final) as tmp:
        for name, data in pngs.items():
            (tmp / name).write_bytes(data)
    return {name: final / name for name in pngs}


def evaluation_pngs(report: Any, /) -> dict[str, bytes]:
    """The PNG bytes of ``z_hist.png`` and ``reliability.png`` of an evaluation (see
    :func:`save_evaluation_figures`); a figure whose data the report lacks is left out.

    Parameters
    ----------
    report : atomlens.metrics.DetectionReport
        An evaluation.

    Returns
    -------
    dict of str to bytes
        By file name, z histogram first.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    pngs: dict[str, bytes] = {}
    if report.z is not None and np.isfinite(np.asarray(report.z, float)).any():
        fig, ax = plt.subplots(figsize=(5.5, 4), dpi=110)
        plot_z_histogram(report.z, ax=ax)
        pngs["z_hist.png"] = figure_to_png(fig)
    if report.reliability is not None and len(report.reliability):
        fig, ax = plt.subplots(figsize=(5.5, 4), dpi=110)
        plot_reliability(report.reliability, ax=ax)
        pngs["reliability.png"] = figure_to_png(fig)
    return pngs
