import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from typer.testing import CliRunner

from atomlens.cli import app
from atomlens.simulate import ImagingConditions, simulate_image

runner = CliRunner()


def test_find_warns_about_a_bf_image_and_inverts_it_when_told(tmp_path, caplog):
    sim = simulate_image(
        "srtio3", shape=160, pixel_size=0.1, conditions=ImagingConditions(mode="bf"), rng=2
    )
    np.save(tmp_path / "bf.npy", sim.image)
    base = ["find", str(tmp_path / "bf.npy"), "--pixel-size", "0.1"]
    with caplog.at_level("WARNING"):
        r = runner.invoke(app, [*base, "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "looks like an image of dark atoms" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        r = runner.invoke(app, [*base, "--contrast", "dark", "--out", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    assert "looks like" not in caplog.text  # asked for: no warning
    assert "dark (as set)" in (tmp_path / "d/report.html").read_text()
    atoms = pd.read_csv(tmp_path / "d/atoms.csv")
    d, _ = cKDTree(sim.truth[["x_A", "y_A"]]).query(atoms[["x_A", "y_A"]])
    assert np.median(d) < 0.2
    r = runner.invoke(app, [*base, "--contrast", "abf", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--contrast must be 'auto', 'bright'" in r.output
    assert not (tmp_path / "x").exists()
