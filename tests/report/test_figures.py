"""report.figures: valid PNGs of the stated size, atoms drawn where they are, colour scales
that cover the data, no figure left open."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from atomlens.report import figures
from atomlens.report.figures import (
    figure_to_png,
    plot_atoms,
    plot_uncertainty,
    save_atoms_png,
    save_uncertainty_png,
)
from tests.report.helpers import colour_near, pixel_of, read_png

TAB10 = plt.get_cmap("tab10")


def _spy(monkeypatch, name: str) -> list:
    """Record the axes that ``figures.<name>`` returns when a save_* function calls it."""
    seen: list = []
    real = getattr(figures, name)

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(figures, name, spy)
    return seen


def test_figure_to_png_renders_at_the_figure_size_and_closes_it():
    fig, ax = plt.subplots(figsize=(3, 2), dpi=50)
    ax.plot([0, 1], [0, 1])
    png = figure_to_png(fig)
    read_png(png, size=(150, 100))
    assert not plt.fignum_exists(fig.number)


def test_figure_to_png_closes_the_figure_when_rendering_fails(monkeypatch):
    fig, _ = plt.subplots(figsize=(3, 2), dpi=50)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", fail)
    with pytest.raises(OSError, match="disk full"):
        figure_to_png(fig)
    assert not plt.fignum_exists(fig.number)


def test_save_atoms_png_circles_each_class_in_its_colour_where_the_atoms_are(tmp_path, monkeypatch):
    axes = _spy(monkeypatch, "plot_atoms")
    image = np.zeros((64, 64))  # shown black: the rings stand out in their own hue
    atoms = pd.DataFrame(
        {"x_px": [10.0, 22.0, 44.0], "y_px": [32.0, 52.0, 48.0], "class": ["C", "C", "Si"]}
    )
    n_open = len(plt.get_fignums())
    save_atoms_png(tmp_path / "overlay.png", image, atoms=atoms, title="known atoms")
    assert len(plt.get_fignums()) == n_open
    rgb = read_png(tmp_path / "overlay.png", size=(770, 836))  # 7 × (7 + 0.6 title) in × 110 dpi
    ax = axes[0]
    assert ax.get_title() == "known atoms"
    for x, y, name in atoms[["x_px", "y_px", "class"]].itertuples(index=False):
        row, col = pixel_of(ax, x, y, rgb.shape[0])
        own, other = (TAB10(0), TAB10(1)) if name == "C" else (TAB10(1), TAB10(0))
        assert colour_near(rgb, row, col, own), (name, x, y)
        assert not colour_near(rgb, row, col, other), (name, x, y)
    row, col = pixel_of(ax, 10.0, 10.0, rgb.shape[0])  # no atom here
    assert (rgb[row - 4 : row + 5, col - 4 : col + 5] == 0).all()


def test_plot_atoms_labels_counts_scales_grey_by_percentiles_and_draws_a_scale_bar():
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 10.0, (80, 100))
    atoms = pd.DataFrame(
        {
            "x_px": [10.0, 20.0, 30.0, 40.0, 50.0],
            "y_px": [10.0, 20.0, 30.0, 40.0, 50.0],
            "class": ["C", "Si", "C", "C", "Si"],
        }
    )
    ax = plot_atoms(image, atoms=atoms, pixel_size=0.2, title="t")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["C (3)", "Si (2)"]
    c_ring = ax.collections[0]  # the C atoms, drawn first
    np.testing.assert_allclose(c_ring.get_offsets(), [[10, 10], [30, 30], [40, 40]])
    np.testing.assert_allclose(ax.images[0].get_clim(), np.percentile(image, [0.5, 99.5]))
    assert ax.images[0].get_cmap().name == "gray"
    (bar,) = ax.lines  # a 2 nm field: the longest bar within a quarter is 0.5 nm
    assert np.ptp(bar.get_xdata()) == pytest.approx(5.0 / 0.2)  # 0.5 nm at 0.2 Å/px
    assert [t.get_text() for t in ax.texts] == ["5 Å"]
    assert bar.get_path_effects() and ax.texts[0].get_path_effects()  # outlined: reads on BF
    wide = plot_atoms(np.zeros((80, 2000)), pixel_size=0.5)  # a 100 nm field: a 20 nm bar
    assert np.ptp(wide.lines[0].get_xdata()) == pytest.approx(200.0 / 0.5)
    assert [t.get_text() for t in wide.texts] == ["20 nm"]
    assert ax.get_xlim() == (-0.5, 99.5) and ax.get_ylim() == (79.5, -0.5)  # rows down
    assert ax.get_title() == "t"


def test_plot_atoms_without_atoms_or_pixel_size_draws_only_the_image():
    image = np.full((30, 40), 7.0)  # flat: the grey scale still has a range
    ax = plot_atoms(image)
    assert not ax.collections and ax.get_legend() is None
    assert not ax.lines and not ax.texts
    assert ax.images[0].get_clim() == (7.0, 8.0)


def test_plot_uncertainty_colour_scale_covers_the_map_and_legend_counts():
    epistemic = np.random.default_rng(1).uniform(0.0, 0.7, (40, 50))
    atoms = pd.DataFrame({"x_px": [5.0, 15.0, 25.0], "y_px": [5.0, 15.0, 25.0]})
    rejected = pd.DataFrame({"x_px": [35.0, 45.0], "y_px": [30.0, 10.0]})
    ax = plot_uncertainty(epistemic, atoms=atoms, rejected=rejected, title="u")
    im = ax.images[0]
    lo, hi = im.get_clim()
    assert lo == 0.0 <= epistemic.min() and hi == epistemic.max()
    assert im.get_cmap().name == "magma"
    assert (im.colorbar.norm.vmin, im.colorbar.norm.vmax) == (lo, hi)
    assert im.colorbar.ax.get_ylabel() == "mutual information [nats]"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "atoms (3)",
        "members disagree (2)",
    ]
    assert ax.get_title() == "u"
    assert plot_uncertainty(epistemic).get_legend() is None


def test_save_uncertainty_png_shows_the_map_maximum_at_the_top_of_the_scale(tmp_path, monkeypatch):
    axes = _spy(monkeypatch, "plot_uncertainty")
    epistemic = np.zeros((60, 60))
    epistemic[:12, :12] = 0.5  # the maximum: shown in magma's top colour
    atoms = pd.DataFrame({"x_px": [20.0, 40.0], "y_px": [40.0, 40.0]})
    rejected = pd.DataFrame({"x_px": [30.0], "y_px": [20.0]})
    n_open = len(plt.get_fignums())
    save_uncertainty_png(tmp_path / "u.png", epistemic, atoms=atoms, rejected=rejected)
    assert len(plt.get_fignums()) == n_open
    rgb = read_png(tmp_path / "u.png", size=(836, 902)).astype(int)  # 7.6 × 8.2 in × 110 dpi
    ax, magma = axes[0], plt.get_cmap("magma")
    h = rgb.shape[0]
    top = np.round(np.array(magma(1.0)[:3]) * 255)
    bottom = np.round(np.array(magma(0.0)[:3]) * 255)
    assert np.abs(rgb[pixel_of(ax, 5.0, 5.0, h)] - top).max() <= 1
    assert np.abs(rgb[pixel_of(ax, 50.0, 55.0, h)] - bottom).max() <= 1
    for x, y in atoms.to_numpy():  # white dots
        row, col = pixel_of(ax, x, y, h)
        assert rgb[row - 1 : row + 2, col - 1 : col + 2].min(axis=2).max() > 150
        assert not colour_near(rgb, row, col, (1.0, 0.0, 0.0), radius=7)
    row, col = pixel_of(ax, 30.0, 20.0, h)  # a red ring, no white dot
    assert colour_near(rgb, row, col, (1.0, 0.0, 0.0), radius=7, cos=0.99)
    assert rgb[row - 1 : row + 2, col - 1 : col + 2].min(axis=2).max() < 60


def test_figures_are_shaped_like_the_image(tmp_path):
    """A 224 × 1312 px image gets a wide, short figure (it was drawn into a square one)."""
    from atomlens.report.figures import figure_size

    save_atoms_png(tmp_path / "wide.png", np.zeros((224, 1312)), pixel_size=0.1)
    read_png(tmp_path / "wide.png", size=(770, 231))  # 7 × (1.5 at least + 0.6 title) in
    assert figure_size((224, 1312)) == (7.0, 2.1) and figure_size((2000, 100))[1] == 10.6
