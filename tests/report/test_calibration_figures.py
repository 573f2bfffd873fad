"""Calibration figures of an evaluation: the z histogram and the reliability diagram of
``p_real`` draw exactly the numbers ``atomlens evaluate`` prints."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from atomlens.cli import app
from atomlens.metrics import score_detections
from atomlens.report import plot_reliability, plot_z_histogram, save_evaluation_figures


def _scene(rng: np.random.Generator, n: int = 3000, n_false: int = 600):
    """True atoms on a 99 Å square, predictions off by N(0, σ) per axis, plus false atoms
    beyond them; ``p_real`` mostly high for the true and low for the false ones."""
    xy = rng.uniform(5, 995, (n, 2))
    sig = rng.uniform(0.01, 0.05, (n, 1)) * np.ones((1, 2))  # [Å]
    truth = pd.DataFrame({"x_A": xy[:, 0] * 0.1, "y_A": xy[:, 1] * 0.1})
    p = xy * 0.1 + rng.normal(size=(n, 2)) * sig
    far = rng.uniform(100, 110, (n_false, 2))  # [Å], beyond every true atom
    p_true = rng.beta(8, 1, n)  # mostly high
    p_false = rng.beta(1, 3, n_false)  # mostly low
    pred = pd.DataFrame(
        {
            "x_A": np.r_[p[:, 0], far[:, 0]],
            "y_A": np.r_[p[:, 1], far[:, 1]],
            "sigma_x_A": np.r_[sig[:, 0], np.full(n_false, 0.03)],
            "sigma_y_A": np.r_[sig[:, 1], np.full(n_false, 0.03)],
            "p_real": np.r_[p_true, p_false],
        }
    )
    return pred, truth


def test_z_histogram_holds_the_z_of_the_report_and_titles_its_printed_figures():
    pred, truth = _scene(np.random.default_rng(0))
    r = score_detections(pred, truth, radius_A=0.3)
    ax = plot_z_histogram(r.z)
    widths = np.array([b.get_width() for b in ax.patches])
    heights = np.array([b.get_height() for b in ax.patches])
    # a density: the bars integrate to 1, and count every per-axis z of the matched atoms
    assert (heights * widths).sum() == pytest.approx(1.0)
    assert r.z.size == 2 * r.tp == 6000
    title = ax.get_title()
    u = r.uncertainty
    assert f"z RMS {u['z_rms']:.3g}" in title
    assert f"within 1σ {u['within_1sigma']:.1%}" in title
    assert f"2σ {u['within_2sigma']:.1%}" in title
    # errors drawn from N(0, σ): RMS near 1
    assert abs(u["z_rms"] - 1) < 0.05


def test_reliability_diagram_plots_the_report_table_and_its_ece():
    pred, truth = _scene(np.random.default_rng(1))
    r = score_detections(pred, truth, radius_A=0.3)
    t = r.reliability
    assert t["n"].sum() == len(pred) and (r.tp, r.fp) == (3000, 600)
    ax = plot_reliability(t)
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "observed")
    np.testing.assert_allclose(line.get_xdata(), t["mean_p_real"])
    np.testing.assert_allclose(line.get_ydata(), t["share_real"])
    # the share of real atoms per bin, counted by hand
    real = np.r_[np.ones(3000, bool), np.zeros(600, bool)]
    top = pred["p_real"].to_numpy() >= 0.9
    assert t["share_real"].iloc[-1] == pytest.approx(real[top].mean())
    assert f"ECE {r.uncertainty['ece_p_real']:.3f}" in ax.get_title()


def test_evaluate_figures_writes_both_files_with_the_printed_numbers(tmp_path):
    pred, truth = _scene(np.random.default_rng(2))
    pred.to_csv(tmp_path / "p.csv", index=False)
    truth.to_csv(tmp_path / "t.csv", index=False)
    args = ["evaluate", str(tmp_path / "p.csv"), str(tmp_path / "t.csv"), "--radius-A", "0.3"]
    res = CliRunner().invoke(app, [*args, "--figures", str(tmp_path / "figs")])
    assert res.exit_code == 0, res.output
    for name in ("reliability.png", "z_hist.png"):
        data = (tmp_path / "figs" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert f"wrote {tmp_path / 'figs' / name}" in res.output
    printed = re.search(r"RMS ([\d.]+) \(ideal 1\), within 1σ ([\d.]+)%", res.output)
    ece = re.search(r"ECE of p_real ([\d.]+)", res.output)
    as_json = json.loads(CliRunner().invoke(app, [*args, "--json"]).output)
    u = as_json["uncertainty"]
    assert float(printed.group(1)) == pytest.approx(u["z_rms"], rel=1e-2)
    assert float(printed.group(2)) == pytest.approx(100 * u["within_1sigma"], abs=0.06)
    assert float(ece.group(1)) == pytest.approx(u["ece_p_real"], abs=6e-4)
    assert sum(row["n"] for row in as_json["reliability"]) == len(pred)
    # the same numbers are what the figures were drawn from
    r = score_detections(pred, truth, radius_A=0.3)
    assert f"ECE {u['ece_p_real']:.3f}" in plot_reliability(r.reliability).get_title()
    # a second run into the same directory is refused with a one-line error
    res = CliRunner().invoke(app, [*args, "--figures", str(tmp_path / "figs")])
    assert res.exit_code == 2 and "choose a new --figures directory" in res.output


def test_save_evaluation_figures_refuses_a_table_without_sigma_or_p_real(tmp_path):
    truth = pd.DataFrame({"x_A": [1.0, 5.0], "y_A": [1.0, 5.0]})
    r = score_detections(truth.copy(), truth, radius_A=0.3)
    with pytest.raises(ValueError, match="no sigma_x_A/sigma_y_A and p_real"):
        save_evaluation_figures(r, tmp_path / "f")
    assert not (tmp_path / "f").exists()
