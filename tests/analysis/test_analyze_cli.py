"""`atomlens analyze` on an atoms table with a strain and a Stone–Wales defect."""

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from atomlens.cli import app


def test_analyze_writes_tables_maps_and_the_known_answers(tmp_path):
    from tests.analysis.test_graph_rings_ase import graphene_xy, stone_wales

    xy = graphene_xy(14)
    xy = stone_wales(xy, xy.mean(axis=0)) @ np.array([[1.01, 0.0], [0.0, 1.0]]).T  # εxx = 1 %
    frames = [
        pd.DataFrame({"frame": f, "x_A": xy[:, 0] + 0.2 * f, "y_A": xy[:, 1], "class": "C"})
        for f in range(3)
    ]
    pd.concat(frames).to_csv(tmp_path / "atoms.csv", index=False)
    r = CliRunner().invoke(
        app,
        [
            "analyze",
            str(tmp_path / "atoms.csv"),
            "--material",
            "graphene",
            "--out",
            str(tmp_path / "a"),
        ],
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "a"
    for name in (
        "bonds.csv",
        "rings.csv",
        "strain.csv",
        "exx.png",
        "tracks.csv",
        "drift.csv",
        "structure.extxyz",
        "analysis.html",
    ):
        assert (out / name).exists(), name
    rings = pd.read_csv(out / "rings.csv")
    assert (rings["size"] == 5).sum() == 2 and (rings["size"] == 7).sum() == 2
    import json

    summary = json.loads((out / "summary.json").read_text())
    strain = summary["strain_vs_graphene"]  # homogeneous strain against graphene's lattice
    assert abs(strain["exx"] - 0.01) < 1e-4 and abs(strain["eyy"]) < 1e-4
    assert "exx" in (out / "analysis.html").read_text()
    drift = pd.read_csv(out / "drift.csv")
    np.testing.assert_allclose(drift["drift_x_A"], [0.0, 0.2, 0.4], atol=1e-6)
    assert "Traceback" not in r.output
    bad = CliRunner().invoke(
        app, ["analyze", str(tmp_path / "none.csv"), "--out", str(tmp_path / "b")]
    )
    assert bad.exit_code == 2 and "none.csv" in bad.output
