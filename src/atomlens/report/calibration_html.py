"""The uncertainty sections of a find report: where each atom's σ comes from, how the
model's σ held on simulated shifts, and, once the atoms are scored against a truth, how σ
and ``p_real`` held on this image (a z histogram and a reliability diagram)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atomlens._shared.atomic import write_atomic
from atomlens.report.calibration_figures import evaluation_pngs
from atomlens.report.figures import png_data_uri

__all__ = [
    "add_evaluation_to_report",
    "check_report",
    "evaluation_html",
    "html_table",
    "uncertainty_html",
]

#: The comments that enclose the evaluation in a report (:func:`add_evaluation_to_report`).
EVALUATION_START = "<!-- atomlens:evaluation -->"
EVALUATION_END = "<!-- /atomlens:evaluation -->"

#: The σ parts of a find table, per axis (x then y), and what the report calls them.
_SIGMA_PARTS: tuple[tuple[str, str], ...] = (
    ("sigma", "σ reported"),
    ("fit_sigma", "fit's own σ"),
    ("crlb", "Cramér–Rao bound"),
    ("member_spread", "members' spread"),
)
#: The lattice scatter of each estimator's positions (one column each, not per axis).
_LATTICE_PARTS: tuple[tuple[str, str], ...] = (
    ("lattice_fit_A", "fit's lattice scatter"),
    ("lattice_network_A", "network's lattice scatter"),
)


def html_table(rows: list[tuple[Any, ...]], header: tuple[str, ...] | None = None) -> str:
    """An HTML table of ``rows`` (escaped; cells after the first right-aligned)."""
    h = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in header) + "</tr>" if header else ""
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=n' if j else ''}>{html.escape(str(v))}</td>" for j, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table>{h}{body}</table>"


def _pm(values: np.ndarray) -> str:
    v = values[np.isfinite(values)]
    return f"{np.median(v) * 100:.2f}" if len(v) else "—"


def uncertainty_html(
    atoms: pd.DataFrame,
    /,
    *,
    sigma_validation: Mapping[str, Mapping[str, float]] | None = None,
    p_real_validation: Mapping[str, Mapping[str, float | None]] | None = None,
) -> str:
    """The report's "Uncertainty" section: σ's parts per position source, and the σ
    model's and the ``p_real`` logistic's leave-one-condition-out validation where the
    model has them.

    Parameters
    ----------
    atoms : pandas.DataFrame
        A find table (``sigma_x_A, sigma_y_A``; ``position_source``, ``fit_sigma_*_A``,
        ``crlb_*_A`` and ``member_spread_*_A`` where present).
    sigma_validation : mapping, optional
        :attr:`atomlens.ensemble.Calibration.sigma_validation`: per simulated condition
        ``z_rms``, ``within_1sigma``, ``within_2sigma`` and ``n``.
    p_real_validation : mapping, optional
        :attr:`atomlens.ensemble.Calibration.p_real_validation`: per condition and dose
        ``auroc``, ``auroc_p_detect``, ``n_false``, ``n_real``.

    Returns
    -------
    str
        HTML; empty when the table has no σ.
    """
    if not {"sigma_x_A", "sigma_y_A"} <= set(atoms.columns) or not len(atoms):
        return ""
    src = (
        atoms["position_source"].astype(str)
        if "position_source" in atoms
        else pd.Series("—", index=atoms.index)
    )
    parts = [(p, label) for p, label in _SIGMA_PARTS if f"{p}_x_A" in atoms]
    lattice = [(c, label) for c, label in _LATTICE_PARTS if c in atoms]
    # the factor each atom's σ was moved by towards its lattice scatter (median)
    rescale = "sigma_rescale" in atoms
    rows = []
    for name in [*sorted(src.unique()), "all"]:
        sel = np.ones(len(atoms), bool) if name == "all" else (src == name).to_numpy()
        cells: list[Any] = [name, int(sel.sum())]
        for p, _ in parts:
            v = atoms.loc[sel, [f"{p}_x_A", f"{p}_y_A"]].to_numpy(float).ravel()
            cells.append(_pm(v))
        for col, _ in lattice:
            cells.append(_pm(atoms.loc[sel, col].to_numpy(float)))
        if rescale:
            f = atoms.loc[sel, "sigma_rescale"].to_numpy(float)
            f = f[np.isfinite(f)]
            cells.append(f"×{np.median(f):.2f}" if len(f) else "—")
        rows.append(tuple(cells))
    share = np.isfinite(atoms[["sigma_x_A", "sigma_y_A"]].to_numpy(float)).all(axis=1).mean()
    out = [
        "<h2>Uncertainty</h2>",
        f"<p>σ for {share:.1%} of the atoms. Medians per axis [pm] by where each atom's "
        "position came from: σ is made from the fit's own σ (fitted positions) or the "
        "Cramér–Rao bound of the column's signal (the network's), and the members' "
        "spread, by the model's σ model (which may scale the base by the atom's overlap "
        "with its nearest neighbour and its faintness: columns <code>overlap</code>, "
        "<code>faintness</code>, and add how far each estimator's positions of the atom's "
        "kind of column stray from their own local lattice: <code>lattice_fit_A</code>, "
        "<code>lattice_network_A</code>; where the model says so, each group's σ is then "
        "moved towards that scatter by the factor in <code>sigma_rescale</code>).</p>",
        html_table(
            rows,
            (
                "position from",
                "atoms",
                *(label for _, label in parts),
                *(label for _, label in lattice),
                *(("σ rescaled by",) if rescale else ()),
            ),
        ),
    ]
    if sigma_validation:
        vrows = [
            (
                cond,
                f"{v.get('z_rms', float('nan')):.2f}",
                f"{v.get('within_1sigma', float('nan')):.1%}",
                f"{v.get('within_2sigma', float('nan')):.1%}",
                int(v.get("n", 0)),
            )
            for cond, v in sigma_validation.items()
        ]
        out += [
            "<p>The σ model on simulated images under shifted conditions, each condition "
            "left out of the fit it is scored on (ideal: z RMS 1, 68 % within 1σ, 95 % "
            "within 2σ). Images unlike all of them (a very low dose, another physics) "
            "can be off: score a few against a truth to check.</p>",
            html_table(vrows, ("condition", "z RMS", "within 1σ", "within 2σ", "axis errors")),
        ]
    if p_real_validation:

        def auc(v: float | None) -> str:
            return "—" if v is None else f"{v:.3f}"

        prows = [
            (
                key,
                auc(v.get("auroc")),
                auc(v.get("auroc_p_detect")),
                int(v.get("n_false", 0)),
                int(v.get("n_real", 0)),
            )
            for key, v in p_real_validation.items()
        ]
        out += [
            "<p><code>p_real</code> on simulated images under shifted conditions, each "
            "condition left out of the logistic it is scored by: the AUROC for telling the "
            "false atoms from the real ones (1: every false atom below every real one; "
            "0.5: chance), beside the members' vote share alone.</p>",
            html_table(prows, ("left out", "AUROC p_real", "AUROC vote share", "false", "real")),
        ]
    return "".join(out)


def evaluation_html(report: Any, /, *, truth_name: str = "the truth") -> str:
    """The report's "Against the truth" section of one evaluation: detection and
    localisation scores, σ's calibration with a z histogram, and the reliability diagram
    of ``p_real``.

    Parameters
    ----------
    report : atomlens.metrics.DetectionReport
        The atoms scored against a truth (:func:`atomlens.metrics.evaluate_files`).
    truth_name : str
        What the truth is called in the section's text (e.g. its file name).

    Returns
    -------
    str
        HTML, enclosed in :data:`EVALUATION_START` and :data:`EVALUATION_END`.
    """
    rows: list[tuple[Any, ...]] = [
        ("F1", f"{report.f1:.4f}"),
        ("true / false / missed", f"{report.tp} / {report.fp} / {report.fn}"),
        ("match radius", f"{report.radius:g} {report.radius_unit}"),
    ]
    if report.errors_pm is not None and report.errors_pm.n:
        rows.append(("position RMSE (radial)", f"{report.errors_pm.rmse:.2f} pm"))
    u = report.uncertainty or {}
    for key, label, fmt in (
        ("sigma_share", "matched atoms with σ", "{:.1%}"),
        ("z_rms", "z RMS, z = error / σ per axis (ideal 1)", "{:.2f}"),
        ("within_1sigma", "within 1σ (ideal 68.3 %)", "{:.1%}"),
        ("within_2sigma", "within 2σ (ideal 95.4 %)", "{:.1%}"),
        ("auroc_p_real", "AUROC of p_real, true against false atoms", "{:.3f}"),
        ("ece_p_real", "ECE of p_real", "{:.3f}"),
    ):
        if key in u and np.isfinite(u[key]):
            rows.append((label, fmt.format(u[key])))
    captions = {
        "z_hist.png": "Per-axis error of each matched atom divided by its σ, against the "
        "standard normal: too wide means σ is too small.",
        "reliability.png": "Share of the reported atoms that match a true one, per bin of "
        "p_real: on the diagonal when p_real can be read as a probability.",
    }
    figs = "".join(
        f"<figure><img alt='{html.escape(name)}' src='{png_data_uri(png)}'>"
        f"<figcaption>{captions[name]}</figcaption></figure>"
        for name, png in evaluation_pngs(report).items()
    )
    return (
        f"{EVALUATION_START}<h2>Against {html.escape(truth_name)}</h2>"
        f"{html_table(rows)}<div class='grid'>{figs}</div>{EVALUATION_END}"
    )


def add_evaluation_to_report(
    path: str | PathLike[str], report: Any, /, *, truth_name: str = "the truth"
) -> Path:
    """Put an evaluation (:func:`evaluation_html`) into a find report, in place of the one
    it holds, if any; the file is replaced whole, so an interruption leaves the old one.

    Parameters
    ----------
    path : path
        A ``report.html`` written by :func:`atomlens.pipeline.find_files`.
    report : atomlens.metrics.DetectionReport
        Its atoms scored against a truth.
    truth_name : str
        What the truth is called in the section's title.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` is not an HTML report.
    """
    p = Path(path)
    text = check_report(p)
    section = evaluation_html(report, truth_name=truth_name)
    if EVALUATION_START in text and EVALUATION_END in text:
        head, rest = text.split(EVALUATION_START, 1)
        text = head + section + rest.split(EVALUATION_END, 1)[1]
    else:
        text = text.replace("</body>", section + "</body>", 1)
    write_atomic(p, text.encode("utf-8"))
    return p


def check_report(path: str | PathLike[str], /) -> str:
    """The text of a find report that :func:`add_evaluation_to_report` can add to, so a
    caller can refuse a wrong path before doing any work.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If ``path`` is not an HTML report.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such report; pass the report.html that find wrote.")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = ""
    if "</body>" not in text:
        raise ValueError(f"{p} is not an HTML report; pass the report.html that find wrote.")
    return text
