"""report.analysis_figures: strain/rotation and cluster maps of atoms, with the colour scale
and positions checked on the rendered pixels; and no plotting outside report/."""

from __future__ import annotations

import ast
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import atomlens
from atomlens.report import analysis_figures
from atomlens.report.analysis_figures import (
    plot_clusters,
    plot_strain_map,
    save_clusters_png,
    save_strain_map_png,
)
from tests.report.helpers import canvas_rgb, pixel_of, read_png, square_lattice

# three atoms [Å] far apart: (2, 2), (6, 2), (4, 6)
THREE = pd.DataFrame({"x_A": [2.0, 6.0, 4.0], "y_A": [2.0, 2.0, 6.0]})


def _rgb255(colour) -> np.ndarray:
    return np.round(np.asarray(colour, float)[:3] * 255)


def _assert_dot_colours(rgb: np.ndarray, ax, atoms: pd.DataFrame, colours) -> None:
    """The pixel at each atom's centre has that atom's colour (filled dots)."""
    for (x, y), colour in zip(atoms[["x_A", "y_A"]].to_numpy(), colours, strict=True):
        got = rgb[pixel_of(ax, x, y, rgb.shape[0])].astype(int)
        assert np.abs(got - _rgb255(colour)).max() <= 2, ((x, y), got, _rgb255(colour))


def _spy_figures(monkeypatch) -> list:
    """Record the figures the save_* functions render (after rendering: laid out)."""
    figs: list = []
    real = analysis_figures.figure_to_png

    def spy(fig):
        png = real(fig)
        figs.append(fig)
        return png

    monkeypatch.setattr(analysis_figures, "figure_to_png", spy)
    return figs


def test_strain_map_scale_is_symmetric_at_the_98th_percentile_of_the_magnitude():
    atoms = square_lattice(6, spacing_px=10.0, pixel_size=0.2)
    values = np.linspace(-0.01, 0.03, len(atoms))
    ax = plot_strain_map(atoms, values=values, title="exx (vs the mean lattice)")
    sc = ax.collections[0]
    lim = np.percentile(np.abs(values), 98)
    np.testing.assert_allclose(sc.get_clim(), (-lim, lim))
    assert sc.get_cmap().name == "RdBu_r"
    np.testing.assert_allclose(sc.get_offsets(), atoms[["x_A", "y_A"]].to_numpy())
    np.testing.assert_allclose(sc.get_array(), values)
    assert sc.colorbar is not None
    assert ax.yaxis_inverted() and ax.get_aspect() == 1.0  # as in the image: rows down
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x [Å]", "y [Å]")
    assert ax.get_title() == "exx (vs the mean lattice)"


def test_strain_map_ignores_nan_in_the_scale_and_falls_back_to_one_when_all_are_nan():
    v = np.array([np.nan, -0.02, 0.01])
    sc = plot_strain_map(THREE, values=pd.Series(v)).collections[0]
    np.testing.assert_allclose(sc.get_clim(), np.array([-1, 1]) * np.nanpercentile(abs(v), 98))
    sc = plot_strain_map(THREE, values=np.full(3, np.nan)).collections[0]
    assert sc.get_clim() == (-1.0, 1.0)


def test_strain_map_draws_each_atom_in_the_colour_of_its_value():
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=100)
    plot_strain_map(THREE, values=[-0.02, 0.0, 0.02], cmap="PuOr", ax=ax)
    cmap = plt.get_cmap("PuOr")  # −lim, 0, +lim: the ends and the middle of the scale
    _assert_dot_colours(canvas_rgb(fig), ax, THREE, [cmap(0.0), cmap(0.5), cmap(1.0)])


@pytest.mark.parametrize("plot", [plot_strain_map, plot_clusters])
def test_maps_refuse_tables_without_angstrom_columns_and_misaligned_values(plot):
    key = "values" if plot is plot_strain_map else "labels"
    with pytest.raises(ValueError, match=r"x_A and y_A.*lacks \['y_A'\]"):
        plot(THREE[["x_A"]], **{key: [0, 1, 2]})
    with pytest.raises(ValueError, match=rf"`{key}` must hold one value per atom, shape \(3,\)"):
        plot(THREE, **{key: [0, 1]})


def test_cluster_map_gives_label_k_the_kth_tab10_colour():
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=100)
    plot_clusters(THREE, labels=np.array([0, 1, 2]), title="3 clusters", ax=ax)
    sc = ax.collections[0]
    assert sc.get_clim() == (0, 9) and sc.get_cmap().name == "tab10"
    assert sc.colorbar.ax.get_ylabel() == "cluster"
    assert ax.yaxis_inverted() and ax.get_title() == "3 clusters"
    tab10 = plt.get_cmap("tab10")
    _assert_dot_colours(canvas_rgb(fig), ax, THREE, [tab10(0), tab10(1), tab10(2)])


def test_save_strain_map_png_writes_the_map_at_520_by_460_px(tmp_path, monkeypatch):
    figs = _spy_figures(monkeypatch)
    n_open = len(plt.get_fignums())
    save_strain_map_png(
        tmp_path / "exx.png", THREE, values=[0.03, -0.03, 0.0], cmap="RdBu_r", title="exx"
    )
    assert len(plt.get_fignums()) == n_open
    rgb = read_png(tmp_path / "exx.png", size=(520, 460))
    ax = figs[0].axes[0]
    assert ax.get_title() == "exx"
    cmap = plt.get_cmap("RdBu_r")
    _assert_dot_colours(rgb, ax, THREE, [cmap(1.0), cmap(0.0), cmap(0.5)])


def test_save_clusters_png_writes_the_clusters_at_520_by_460_px(tmp_path, monkeypatch):
    figs = _spy_figures(monkeypatch)
    n_open = len(plt.get_fignums())
    save_clusters_png(tmp_path / "clusters.png", THREE, labels=[3, 3, 0], title="2 clusters")
    assert len(plt.get_fignums()) == n_open
    rgb = read_png(tmp_path / "clusters.png", size=(520, 460))
    ax = figs[0].axes[0]
    assert ax.get_title() == "2 clusters"
    tab10 = plt.get_cmap("tab10")
    _assert_dot_colours(rgb, ax, THREE, [tab10(3), tab10(3), tab10(0)])


def test_no_module_outside_report_imports_matplotlib():
    """Plotting only in report/ (STYLE.md): the analysis chain calls report's functions."""
    root = Path(atomlens.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "report":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "matplotlib" or n.startswith("matplotlib.") for n in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, f"matplotlib imported outside report/: {offenders}"
