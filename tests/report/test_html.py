"""report.html: self-contained pages (no network, no scripts) with the counts, settings,
summary and figures of the run; nearest-neighbour distances in Å."""

from __future__ import annotations

import base64
import html
import json
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from atomlens.report.figures import figure_to_png
from atomlens.report.html import (
    nearest_neighbour_distances_A,
    render_analysis_html,
    render_report,
    write_report,
)
from tests.report.helpers import read_png, square_lattice

PIXEL_SIZE = 0.25  # [Å/px]
SETTINGS = {"p_min": 0.5, "note": "<b>raw</b>"}
PROVENANCE = {"model": "tiny & co", "members": 3}


def _atoms() -> pd.DataFrame:
    """A 7 × 7 square lattice, 8 px = 2 Å apart: 40 C and 9 Si."""
    atoms = square_lattice(7, spacing_px=8.0, pixel_size=PIXEL_SIZE, origin_px=8.0)
    return atoms.assign(
        **{"class": ["C"] * 40 + ["Si"] * 9, "score": 0.9, "sigma_x_A": 0.01, "sigma_y_A": 0.02}
    )


@pytest.fixture(scope="module")
def page() -> str:
    epistemic = np.zeros((64, 64))
    epistemic[20:30, 20:30] = 0.4
    rejected = pd.DataFrame({"x_px": [12.0, 28.0], "y_px": [12.0, 20.0]})
    return render_report(
        np.random.default_rng(0).normal(size=(64, 64)),
        _atoms(),
        pixel_size=PIXEL_SIZE,
        rejected=rejected,
        epistemic=epistemic,
        title="run <1>",
        settings=SETTINGS,
        provenance=PROVENANCE,
    )


def _rows(text: str, heading: str) -> dict[str, str]:
    """The two-column rows of the first table after ``heading``."""
    table = re.search(rf"{re.escape(heading)}.*?<table>(.*?)</table>", text, re.S)
    assert table, heading
    return dict(re.findall(r"<tr><td>(.*?)</td><td[^>]*>(.*?)</td></tr>", table.group(1)))


def _images(text: str) -> dict[str, bytes]:
    """alt → decoded PNG of every inlined image, in page order."""
    found = re.findall(
        r"<img alt=[\"']([^\"']*)[\"'] src=[\"']data:image/png;base64,([^\"']*)", text
    )
    return {alt: base64.b64decode(data, validate=True) for alt, data in found}


def _assert_self_contained(text: str) -> None:
    links = re.findall(r"\b(?:src|href)\s*=\s*[\"']([^\"']*)", text, re.I)
    assert links and all(u.startswith("data:image/png;base64,") for u in links), links
    for remote in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert remote not in text.lower(), remote


def test_report_is_self_contained_with_four_inlined_pngs(page):
    _assert_self_contained(page)
    images = _images(page)
    assert list(images) == [
        "classes",
        "confidence",
        "uncertainty",
        "nearest-neighbour histogram",
    ]
    for png in images.values():
        read_png(png)
    read_png(images["classes"], size=(600, 660))  # 6 × (6 + 0.6 title) in × 100 dpi


def test_report_counts_atoms_per_class_and_the_rejected(page):
    assert _rows(page, "<h2>Counts per class</h2>") == {
        "C": "40",
        "Si": "9",
        "all": "49",
        "rejected (below p_min)": "2",
    }


def test_report_shows_the_settings_escaped_and_the_provenance(page):
    assert _rows(page, "<h2>Settings</h2>") == {
        "p_min": "0.5",
        "note": "&lt;b&gt;raw&lt;/b&gt;",
    }
    assert "<b>raw</b>" not in page
    assert html.escape(json.dumps(PROVENANCE, indent=1)) in page
    assert "<title>run &lt;1&gt;</title>" in page and "<h1>run &lt;1&gt;</h1>" in page


def test_report_summary_has_size_sigmas_and_the_lattice_constant(page):
    summary = _rows(page, "<h2>Summary</h2>")
    assert summary["image"] == "64 × 64 px = 1.60 × 1.60 nm"
    assert summary["pixel size"] == "0.25 Å/px"
    # the median over the atoms that have a σ, and how many they are
    assert (summary["median σx"], summary["median σy"]) == (
        "1.00 pm (over 49 of 49 atoms)",
        "2.00 pm (over 49 of 49 atoms)",
    )
    assert summary["median nearest-neighbour distance"] == "2.000 Å"


def test_write_report_writes_the_page_and_leaves_out_the_uncertainty_without_a_map(tmp_path):
    atoms = _atoms()
    path = write_report(tmp_path / "report.html", np.zeros((64, 64)), atoms, pixel_size=PIXEL_SIZE)
    assert path == tmp_path / "report.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    _assert_self_contained(text)
    assert "uncertainty" not in _images(text)
    assert _rows(text, "<h2>Counts per class</h2>") == {"C": "40", "Si": "9", "all": "49"}
    assert _rows(text, "<h2>Settings</h2>") == {}
    with pytest.raises(TypeError, match="pixel_size"):
        write_report(tmp_path / "no.html", np.zeros((64, 64)), atoms)


@pytest.mark.parametrize("angle_deg", [0.0, 30.0])
def test_nearest_neighbour_distance_of_a_square_lattice_is_its_constant_in_angstrom(angle_deg):
    a = 2.46  # [Å]
    atoms = square_lattice(5, spacing_px=1.0, pixel_size=a)
    t = np.deg2rad(angle_deg)
    xy = atoms[["x_A", "y_A"]].to_numpy() @ np.array(
        [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    )
    atoms = atoms.assign(x_A=xy[:, 0] + 100.0, y_A=xy[:, 1] - 7.0, x_px=0.0, y_px=0.0)
    d = nearest_neighbour_distances_A(atoms)  # from the Å columns, not the pixels
    assert d.shape == (25,)
    np.testing.assert_allclose(d, a)


def test_nearest_neighbour_distances_of_fewer_than_two_atoms_are_empty():
    one = pd.DataFrame({"x_A": [1.0], "y_A": [2.0]})
    assert nearest_neighbour_distances_A(one).shape == (0,)
    assert nearest_neighbour_distances_A(one.iloc[:0]).shape == (0,)


def test_analysis_page_tabulates_the_summary_and_inlines_the_figures_in_order():
    pngs = {}
    for name in ("exx", "clusters"):
        fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
        ax.set_title(name)
        pngs[name] = figure_to_png(fig)
    summary = {"atoms": 12, "rings": {6: 3}, "<k>": "a&b"}
    text = render_analysis_html(summary, figures=pngs)
    assert text.startswith("<!DOCTYPE html>") and text.endswith("</body></html>\n")
    _assert_self_contained(text)
    assert _rows(text, "<h2>Analysis</h2>") == {
        "atoms": "12",
        "rings": "{6: 3}",
        "&lt;k&gt;": "a&amp;b",
    }
    assert list(_images(text).items()) == list(pngs.items())  # names, order, bytes
    empty = render_analysis_html({"atoms": 0})
    assert "<img" not in empty and _rows(empty, "<h2>Analysis</h2>") == {"atoms": "0"}
