"""Self-contained HTML reports of a find run and of an analysis: figures inlined, no network,
no scripts."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import atomlens
from atomlens.io.tables import unrefined_phrase
from atomlens.report.calibration_html import (
    EVALUATION_END,
    EVALUATION_START,
    evaluation_html,
    html_table,
    uncertainty_html,
)
from atomlens.report.figures import (
    figure_size,
    figure_to_png,
    plot_atoms,
    plot_uncertainty,
    png_data_uri,
)

__all__ = [
    "nearest_neighbour_distances_A",
    "render_analysis_html",
    "render_report",
    "write_report",
]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;
max-width:1180px;color:#222;padding:0 1em}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.6em;
border-bottom:1px solid #ddd}
.sub{color:#666;margin-top:0}.grid{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;flex:1 1 360px;max-width:560px}figure img{width:100%;border:1px solid #ccc}
figcaption{font-size:.85em;color:#555}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left}th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em;max-height:22em}
"""


def _png(fig: Any) -> str:
    """``fig`` as a ``data:`` URI of its PNG (closes ``fig``)."""

    return png_data_uri(figure_to_png(fig))


def nearest_neighbour_distances_A(atoms: pd.DataFrame, /) -> np.ndarray:
    """Distance from each atom to its nearest neighbour [Å] (``x_A``, ``y_A`` columns)."""
    from scipy.spatial import cKDTree

    if len(atoms) < 2:
        return np.zeros(0)
    xy = atoms[["x_A", "y_A"]].to_numpy(float)
    d, _ = cKDTree(xy).query(xy, k=2)
    return d[:, 1]


#: How the report tints each region of a region map (none: left as it is).
REGION_COLOURS: dict[str, str | None] = {
    "crystal": None,
    "amorphous": "#ff8c00",
    "vacuum": "#1f77ff",
    "saturated": "#e41a1c",
}


def _region_figure(image: np.ndarray, regions: Any, atoms: pd.DataFrame, pixel_size: float) -> str:
    """The image with every region but the crystal tinted, and the atoms on it."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=figure_size(image.shape, width_in=6.6), dpi=100)
    plot_atoms(image, atoms=None, ax=ax, title="regions", pixel_size=pixel_size)
    labels = np.asarray(regions.labels)
    rgba = np.zeros((*labels.shape, 4))
    share = regions.share()
    handles = []
    for k, name in enumerate(regions.names):
        colour = REGION_COLOURS.get(name, "#999999")
        if colour is not None:
            rgba[labels == k] = (*to_rgb(colour), 0.45)
        handles.append(
            Patch(
                facecolor=colour or "none",
                edgecolor="k",
                alpha=0.6 if colour else 1.0,
                label=f"{name} {share.get(name, 0.0):.1%}",
            )
        )
    ax.imshow(rgba, interpolation="nearest")
    if len(atoms):
        ax.scatter(atoms["x_px"], atoms["y_px"], s=6, c="w", linewidths=0)
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.8)
    return _png(fig)


def _figures(
    image: np.ndarray,
    atoms: pd.DataFrame,
    rejected: pd.DataFrame | None,
    epistemic: np.ndarray | None,
    pixel_size: float,
    regions: Any = None,
) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = {}
    fig, ax = plt.subplots(figsize=figure_size(image.shape, width_in=6), dpi=100)
    plot_atoms(image, atoms=atoms, ax=ax, title="atoms by class", pixel_size=pixel_size)
    out["classes"] = _png(fig)

    conf_col = "p_real" if "p_real" in atoms else "p_detect" if "p_detect" in atoms else "score"
    fig, ax = plt.subplots(figsize=figure_size(image.shape, width_in=6.6), dpi=100)
    plot_atoms(image, atoms=None, ax=ax, title=f"atoms by confidence ({conf_col})")
    if len(atoms):
        sc = ax.scatter(
            atoms["x_px"],
            atoms["y_px"],
            c=atoms[conf_col],
            cmap="viridis",
            vmin=0,
            vmax=1,
            s=14,
            linewidths=0,
        )
        fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.02, label=conf_col)
    if rejected is not None and len(rejected):
        ax.scatter(
            rejected["x_px"],
            rejected["y_px"],
            marker="x",
            c="red",
            s=14,
            linewidths=0.8,
            label=f"rejected ({len(rejected)})",
        )
        ax.legend(loc="upper right", fontsize=8, framealpha=0.7)
    out["confidence"] = _png(fig)

    if epistemic is not None:
        fig, ax = plt.subplots(figsize=figure_size(epistemic.shape, width_in=6.6), dpi=100)
        plot_uncertainty(
            epistemic,
            atoms=atoms,
            rejected=rejected,
            ax=ax,
            title="epistemic uncertainty",
            pixel_size=pixel_size,
        )
        out["uncertainty"] = _png(fig)

    if regions is not None:
        out["regions"] = _region_figure(image, regions, atoms, pixel_size)

    nn = nearest_neighbour_distances_A(atoms)
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    if len(nn):
        hi = float(np.percentile(nn, 99.5)) * 1.1
        ax.hist(nn, bins=np.linspace(0, max(hi, 0.5), 80), color="#4c72b0")
        ax.axvline(float(np.median(nn)), color="k", lw=0.8, ls="--")
        ax.text(
            float(np.median(nn)),
            ax.get_ylim()[1] * 0.9,
            f" median {np.median(nn):.3f} Å",
            fontsize=8,
        )
    ax.set_xlabel("nearest-neighbour distance [Å]")
    ax.set_ylabel("atoms")
    out["nn"] = _png(fig)
    return out


def _region_phrase(regions: Any, atoms: pd.DataFrame, rejected: pd.DataFrame | None) -> str:
    """Each region's share of the pixels and its atoms, e.g. "crystal 93.1% (812 atoms),
    amorphous 6.9% (12 atoms; 30 rejected)"."""
    share = regions.share()
    parts = []
    for name in regions.names:
        n = int((atoms["region"] == name).sum()) if "region" in atoms else 0
        moved = ""
        if rejected is not None and "region" in rejected and name != "crystal":
            k = int((rejected["region"] == name).sum())
            moved = f"; {k} rejected" if k else ""
        if share.get(name, 0.0) > 0 or n:
            parts.append(f"{name} {share.get(name, 0.0):.1%} ({n} atoms{moved})")
    return ", ".join(parts)


def render_report(
    image: np.ndarray,
    atoms: pd.DataFrame,
    /,
    *,
    pixel_size: float,
    rejected: pd.DataFrame | None = None,
    epistemic: np.ndarray | None = None,
    title: str = "atomlens report",
    settings: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    sigma_validation: Mapping[str, Mapping[str, float]] | None = None,
    p_real_validation: Mapping[str, Mapping[str, float | None]] | None = None,
    evaluation: Any = None,
    regions: Any = None,
) -> str:
    """The HTML text of a report (see :func:`write_report`)."""
    figs = _figures(np.asarray(image, float), atoms, rejected, epistemic, pixel_size, regions)
    counts = atoms["class"].astype(str).value_counts() if len(atoms) else pd.Series(dtype=int)
    count_rows = [(k, int(v)) for k, v in counts.items()] + [("all", len(atoms))]
    if rejected is not None:
        count_rows.append(("rejected (below p_min)", len(rejected)))
    h, w = np.shape(image)[-2:]
    summary = [
        ("image", f"{w} × {h} px = {w * pixel_size / 10:.2f} × {h * pixel_size / 10:.2f} nm"),
        ("pixel size", f"{pixel_size:.4g} Å/px"),
    ]
    for col, label in [("sigma_x_A", "median σx"), ("sigma_y_A", "median σy")]:
        if col in atoms and len(atoms):
            has = int(np.isfinite(atoms[col].to_numpy(float)).sum())
            summary.append(
                (
                    label,
                    f"{np.nanmedian(atoms[col]) * 100:.2f} pm (over {has} of {len(atoms)} atoms)",
                )
            )
    if "position_source" in atoms and len(atoms):
        src = atoms["position_source"].astype(str).value_counts()
        summary.append(("positions from", ", ".join(f"{k} {v}" for k, v in src.items())))
    if "refined" in atoms and len(atoms):
        bad = atoms.loc[~atoms["refined"].fillna(False).astype(bool), "class"].astype(str)
        summary.append(
            ("Gaussian fit", unrefined_phrase(counts.to_dict(), bad.value_counts().to_dict()))
        )
    if regions is not None:
        summary.append(
            ("regions (share of pixels, atoms)", _region_phrase(regions, atoms, rejected))
        )
    nn = nearest_neighbour_distances_A(atoms)
    if len(nn):
        summary.append(("median nearest-neighbour distance", f"{np.median(nn):.3f} Å"))
    captions = {
        "classes": "Each atom circled in the colour of its class; scale bar 1 nm.",
        "confidence": "Atoms coloured by confidence; red crosses: candidates rejected "
        "because too few ensemble members found them.",
        "uncertainty": "Epistemic uncertainty (the members' disagreement, mutual information "
        "in nats): bright where the ensemble does not know.",
        "regions": "Regions from the image's own lattice texture: crystal untinted, "
        "amorphous film or contamination orange, vacuum blue, saturated red; the atoms "
        "as white dots.",
    }
    fig_html = "".join(
        f"<figure><img alt='{k}' src='{figs[k]}'><figcaption>{captions[k]}</figcaption></figure>"
        for k in ("classes", "confidence", "uncertainty", "regions")
        if k in figs
    )
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    settings_rows = [(k, v) for k, v in (settings or {}).items()]
    prov = json.dumps(provenance or {}, indent=1, default=str)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="sub">atomlens {html.escape(atomlens.__version__)} · {html.escape(stamp)}</p>
<div class="grid">{fig_html}</div>
<h2>Counts per class</h2>{html_table(count_rows, ("class", "atoms"))}
<h2>Summary</h2>{html_table(summary)}
<h2>Nearest-neighbour distances</h2>
<figure><img alt="nearest-neighbour histogram" src="{figs["nn"]}"></figure>
{uncertainty_html(atoms, sigma_validation=sigma_validation, p_real_validation=p_real_validation)}
{evaluation_html(evaluation) if evaluation is not None else EVALUATION_START + EVALUATION_END}
<h2>Settings</h2>{html_table(settings_rows, ("setting", "value"))}
<h2>Model provenance</h2><details><summary>show</summary><pre>{html.escape(prov)}</pre>
</details>
</body></html>
"""


def write_report(
    path: str | PathLike[str],
    image: np.ndarray,
    atoms: pd.DataFrame,
    /,
    **kwargs: Any,
) -> Path:
    """Write one self-contained HTML report (figures inlined as PNG; opens offline).

    Parameters
    ----------
    path : path
        The ``.html`` file to write.
    image : ndarray of shape (H, W)
        The image.
    atoms : pandas.DataFrame
        Its atoms (``x_px, y_px, x_A, y_A, class`` and, from an ensemble, ``p_detect``,
        ``sigma_x_A``, ``sigma_y_A``, ``p_real``).
    **kwargs
        ``pixel_size`` [Å/px] (required), ``rejected``, ``epistemic`` (map), ``title``,
        ``settings`` and ``provenance`` (dicts shown as tables/JSON), ``sigma_validation``
        (the σ model's validation, :attr:`atomlens.ensemble.Calibration.sigma_validation`),
        ``p_real_validation`` (the ``p_real`` logistic's,
        :attr:`atomlens.ensemble.Calibration.p_real_validation`), ``evaluation`` (a
        :class:`atomlens.metrics.DetectionReport` of these atoms against a truth, shown
        with its z histogram and reliability diagram; one can be
        added later with :func:`atomlens.report.add_evaluation_to_report`) and
        ``regions`` (the image's :class:`atomlens.fourier.regions.RegionMap`, shown tinted
        over the image with each region's share of pixels and atoms): see
        :func:`render_report`.

    Returns
    -------
    pathlib.Path
    """
    p = Path(path)
    p.write_text(render_report(image, atoms, **kwargs), encoding="utf-8")
    return p


_ANALYSIS_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto}"
    "td{border:1px solid #ccc;padding:3px 8px}table{border-collapse:collapse}"
    "figure{display:inline-block;margin:4px}"
)


def render_analysis_html(
    summary: Mapping[str, Any], /, *, figures: Mapping[str, bytes] | None = None
) -> str:
    """The HTML text of ``atomlens analyze``'s ``analysis.html``: one self-contained page.

    Parameters
    ----------
    summary : mapping
        Shown as a two-column table, one row per key, values as ``str(value)``.
    figures : mapping of str to bytes, optional
        PNG files by name, inlined as ``data:`` URIs in this order after the table; the
        name is each image's ``alt`` text.

    Returns
    -------
    str
        The page, ending in a newline; it loads nothing from the network.
    """
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in summary.items()
    )
    sections = "".join(
        f"<figure><img alt='{html.escape(name)}' src='{png_data_uri(png)}'></figure>"
        for name, png in (figures or {}).items()
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>atomlens "
        f"analysis</title><style>{_ANALYSIS_CSS}</style></head><body>"
        f"<h2>Analysis</h2><table>{rows}</table>{sections}</body></html>\n"
    )
