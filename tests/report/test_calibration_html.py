"""The uncertainty sections of report.html: σ's parts per position source, the σ model's
validation, and an evaluation against a truth (scores, z histogram, p_real reliability),
added to a written report in place and replaced, not repeated, when added again."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from atomlens.cli import app
from atomlens.metrics import score_detections
from atomlens.report import add_evaluation_to_report
from atomlens.report.calibration_html import EVALUATION_END, EVALUATION_START
from atomlens.report.html import render_report, write_report
from tests.report.helpers import read_png
from tests.report.test_calibration_figures import _scene
from tests.report.test_html import _images, _rows

PIXEL_SIZE = 0.1  # [Å/px]


def _table_rows(text: str, heading: str, nth: int = 0) -> list[list[str]]:
    """The cells of every row of the ``nth`` table after ``heading``."""
    part = text.split(heading, 1)[1]
    table = re.findall(r"<table>(.*?)</table>", part, re.S)[nth]
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in table.split("<tr>")[1:]]


def _atoms() -> pd.DataFrame:
    """Ten fitted atoms and twenty from the network, with known σ parts [Å]."""
    n_fit, n_net = 10, 20
    src = ["fit"] * n_fit + ["network"] * n_net
    sig = np.r_[np.full(n_fit, 0.01), np.linspace(0.02, 0.04, n_net)]
    crlb = np.r_[np.full(n_fit, 0.008), np.full(n_net, 0.015)]
    xy = np.arange(n_fit + n_net, dtype=float)
    return pd.DataFrame(
        {
            "x_px": xy * 10 + 5,
            "y_px": 20.0,
            "x_A": (xy * 10 + 5) * PIXEL_SIZE,
            "y_A": 2.0,
            "class": "C",
            "score": 0.9,
            "position_source": src,
            "sigma_x_A": sig,
            "sigma_y_A": sig,
            "fit_sigma_x_A": np.r_[np.full(n_fit, 0.009), np.full(n_net, np.nan)],
            "fit_sigma_y_A": np.r_[np.full(n_fit, 0.009), np.full(n_net, np.nan)],
            "crlb_x_A": crlb,
            "crlb_y_A": crlb,
            "member_spread_x_A": 0.005,
            "member_spread_y_A": 0.005,
        }
    )


VALIDATION = {
    "clean": {"z_rms": 0.952, "within_1sigma": 0.7656, "within_2sigma": 0.9647, "n": 3400},
    "all": {"z_rms": 1.0543, "within_1sigma": 0.7376, "within_2sigma": 0.9413, "n": 17176},
}


def test_uncertainty_section_gives_the_medians_of_each_part_per_source_and_the_validation():
    page = render_report(
        np.zeros((40, 320)), _atoms(), pixel_size=PIXEL_SIZE, sigma_validation=VALIDATION
    )
    rows = _table_rows(page, "<h2>Uncertainty</h2>")
    assert rows[0] == [
        "position from",
        "atoms",
        "σ reported",
        "fit&#x27;s own σ",
        "Cramér–Rao bound",
        "members&#x27; spread",
    ]
    by = {r[0]: r[1:] for r in rows[1:]}
    # medians in pm: fit σ 1 pm; the network's σ from 2 to 4 pm (median 3); "—" where the
    # part is missing for every atom of the source
    assert by["fit"] == ["10", "1.00", "0.90", "0.80", "0.50"]
    assert by["network"] == ["20", "3.00", "—", "1.50", "0.50"]
    assert by["all"][:2] == ["30", f"{np.median(_atoms()['sigma_x_A']) * 100:.2f}"]
    assert "σ for 100.0% of the atoms" in page
    # with find's sigma_rescale, its median per source beside the parts
    moved = _atoms().assign(sigma_rescale=np.r_[np.full(10, 1.0), np.linspace(0.7, 0.9, 20)])
    rows = _table_rows(
        render_report(np.zeros((40, 320)), moved, pixel_size=PIXEL_SIZE), "<h2>Uncertainty</h2>"
    )
    assert rows[0][-1] == "σ rescaled by"
    assert {r[0]: r[-1] for r in rows[1:]} == {"fit": "×1.00", "network": "×0.80", "all": "×0.85"}
    val = _table_rows(page, "<h2>Uncertainty</h2>", nth=1)
    assert val[1:] == [
        ["clean", "0.95", "76.6%", "96.5%", "3400"],
        ["all", "1.05", "73.8%", "94.1%", "17176"],
    ]
    # the p_real logistic's validation, where the model has one ("—": no false atoms)
    p_val = {
        "film": {"auroc": 0.955, "auroc_p_detect": 0.7291, "n_false": 77, "n_real": 6490},
        "dose 1e+07": {"auroc": None, "auroc_p_detect": None, "n_false": 0, "n_real": 6864},
    }
    page = render_report(
        np.zeros((40, 320)),
        _atoms(),
        pixel_size=PIXEL_SIZE,
        sigma_validation=VALIDATION,
        p_real_validation=p_val,
    )
    assert _table_rows(page, "<h2>Uncertainty</h2>", nth=2) == [
        ["left out", "AUROC p_real", "AUROC vote share", "false", "real"],
        ["film", "0.955", "0.729", "77", "6490"],
        ["dose 1e+07", "—", "—", "0", "6864"],
    ]
    # without σ columns there is no section; an empty evaluation slot is always there
    bare = render_report(
        np.zeros((40, 320)),
        _atoms()[["x_px", "y_px", "x_A", "y_A", "class", "score"]],
        pixel_size=0.1,
    )
    assert "<h2>Uncertainty</h2>" not in bare and EVALUATION_START + EVALUATION_END in bare


def test_an_evaluation_added_to_a_report_shows_the_printed_scores_and_both_figures(tmp_path):
    pred, truth = _scene(np.random.default_rng(3))
    pred = pred.assign(
        x_px=pred["x_A"] / PIXEL_SIZE, y_px=pred["y_A"] / PIXEL_SIZE, **{"class": "C"}
    )
    path = write_report(tmp_path / "report.html", np.zeros((64, 64)), pred, pixel_size=PIXEL_SIZE)
    before = path.read_text(encoding="utf-8")
    r = score_detections(pred, truth, radius_A=0.3)
    assert add_evaluation_to_report(path, r, truth_name="truth <t>.csv") == path
    text = path.read_text(encoding="utf-8")
    # the rest of the page is unchanged; the section sits in the slot, titled escaped
    head, _, tail = before.partition(EVALUATION_START + EVALUATION_END)
    assert text.startswith(head) and text.endswith(tail)
    assert "<h2>Against truth &lt;t&gt;.csv</h2>" in text
    rows = _rows(text, "<h2>Against truth")
    u = r.uncertainty
    assert rows["F1"] == f"{r.f1:.4f}"
    assert rows["true / false / missed"] == "3000 / 600 / 0"
    assert rows["z RMS, z = error / σ per axis (ideal 1)"] == f"{u['z_rms']:.2f}"
    assert rows["within 1σ (ideal 68.3 %)"] == f"{u['within_1sigma']:.1%}"
    assert rows["AUROC of p_real, true against false atoms"] == f"{u['auroc_p_real']:.3f}"
    assert abs(u["z_rms"] - 1) < 0.05  # the scene's errors are N(0, σ)
    images = _images(text)
    for name in ("z_hist.png", "reliability.png"):
        read_png(images[name])
    # added again (another truth): replaced, not repeated
    add_evaluation_to_report(path, score_detections(pred, truth, radius_A=0.05))
    again = path.read_text(encoding="utf-8")
    assert again.count(EVALUATION_START) == 1 and again.count("<h2>Against") == 1
    assert "<h2>Against the truth</h2>" in again and again.startswith(head)


def test_add_evaluation_refuses_a_missing_report_and_a_file_that_is_not_one(tmp_path):
    pred, truth = _scene(np.random.default_rng(4), n=50, n_false=5)
    r = score_detections(pred, truth, radius_A=0.3)
    with pytest.raises(FileNotFoundError, match=r"no such report; pass the report\.html"):
        add_evaluation_to_report(tmp_path / "gone.html", r)
    (tmp_path / "notes.txt").write_text("not html")
    with pytest.raises(ValueError, match=r"notes\.txt is not an HTML report"):
        add_evaluation_to_report(tmp_path / "notes.txt", r)
    assert (tmp_path / "notes.txt").read_text() == "not html"


def test_evaluate_report_option_updates_finds_report_in_place(tmp_path):
    pred, truth = _scene(np.random.default_rng(5), n=400, n_false=40)
    pred = pred.assign(x_px=pred["x_A"] / PIXEL_SIZE, y_px=pred["y_A"] / PIXEL_SIZE)
    pred.to_csv(tmp_path / "atoms.csv", index=False)
    truth.assign(x_px=truth["x_A"] / PIXEL_SIZE, y_px=truth["y_A"] / PIXEL_SIZE).to_csv(
        tmp_path / "truth.csv", index=False
    )
    write_report(
        tmp_path / "report.html", np.zeros((64, 64)), pred.assign(**{"class": "C"}), pixel_size=0.1
    )
    args = ["evaluate", str(tmp_path / "atoms.csv"), str(tmp_path / "truth.csv")]
    res = CliRunner().invoke(
        app, [*args, "--radius-A", "0.3", "--report", str(tmp_path / "report.html")]
    )
    assert res.exit_code == 0, res.output
    assert f"wrote {tmp_path / 'report.html'}" in res.output
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    printed = re.search(r"F1 ([\d.]+)", res.output)
    assert printed and _rows(text, "<h2>Against truth.csv")["F1"].startswith(printed.group(1))
    res = CliRunner().invoke(
        app, [*args, "--report", str(tmp_path / "none.html"), "--figures", str(tmp_path / "f")]
    )
    assert res.exit_code == 2 and "none.html: no such report" in res.output
    assert not (tmp_path / "f").exists()  # refused before any figure was written
