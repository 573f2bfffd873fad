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
        "defects.csv",
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


def test_analyze_with_the_image_exports_descriptors_that_tell_si_from_c(tmp_path):
    from sklearn.metrics import adjusted_rand_score

    from atomlens.simulate import ImagingConditions, Substitution, simulate_image

    sim = simulate_image(
        "graphene",
        shape=256,
        pixel_size=0.1,
        rng=4,
        defects=[Substitution("C", "Si", density=0.03)],
        conditions=ImagingConditions(dose_e_per_A2=1e5),
    )
    np.save(tmp_path / "image.npy", sim.image)
    sim.truth[["x_px", "y_px", "x_A", "y_A"]].assign(**{"class": "atom"}).to_csv(
        tmp_path / "atoms.csv", index=False
    )  # classes hidden: the descriptors must find Si on their own
    args = ["analyze", str(tmp_path / "atoms.csv"), "--out", str(tmp_path / "a")]
    args += ["--species", "atom=C", "--image", str(tmp_path / "image.npy")]
    r = CliRunner().invoke(app, [*args, "--pixel-size", "0.1"])
    assert r.exit_code == 0, r.output
    assert "2 descriptor clusters" in r.output
    d = np.load(tmp_path / "a" / "descriptors.npz")
    n = len(d["index"])
    assert d["patches"].shape[0] == d["radial"].shape[0] == d["pca"].shape[0] == n > 200
    table = pd.read_csv(tmp_path / "a" / "atoms.csv")
    species = sim.truth["class"].to_numpy()[d["index"]]
    assert (species == "Si").sum() >= 6
    assert adjusted_rand_score(species, table["cluster"].to_numpy()[d["index"]]) >= 0.95
    assert (table["cluster"] == -1).sum() == len(table) - n  # border atoms: no whole patch
    assert (tmp_path / "a" / "clusters.png").exists()
    assert "clusters" in (tmp_path / "a" / "analysis.html").read_text()
    bad = CliRunner().invoke(app, [*args[:-2], "--image", str(tmp_path / "missing.npy")])
    assert bad.exit_code == 2 and "missing.npy" in bad.output


def test_a_class_that_is_no_element_names_the_flags_to_pass(tmp_path):
    """The default model's class is 'atom': the CLI names --species and --cutoff, Python
    the parameters (it said `species={'atom': 'Ti'}` on the command line before)."""
    import pytest

    from atomlens.analysis import neighbour_graph
    from tests.analysis.test_graph_rings_ase import graphene_xy

    xy = graphene_xy(6)
    table = pd.DataFrame({"x_A": xy[:, 0], "y_A": xy[:, 1], "class": "atom"})
    table.to_csv(tmp_path / "atoms.csv", index=False)
    r = CliRunner().invoke(app, ["analyze", str(tmp_path / "atoms.csv"), "--out", "o"])
    assert r.exit_code == 2
    assert "map it to one with --species" in r.output and "--cutoff." in r.output
    assert "{" not in r.output and "`" not in r.output
    with pytest.raises(ValueError, match=r"with `species`.*`cutoff_A`"):
        neighbour_graph(table)
