"""`atomlens analyze` on an atoms table with a strain and a Stone–Wales defect."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from atomlens.cli import app
from atomlens.cli.app import exposed_flags, flag_names


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


def test_a_110_image_against_the_001_reference_names_the_zone_axis(tmp_path, caplog):
    """SrTiO3 down [110] read against the default [001] cell is "−29 % strain": analyze
    says so and names --zone-axis 1,1,0; with it, the strain is zero."""
    from atomlens.simulate import load_material

    cell = load_material("srtio3", zone_axis=(1, 1, 0))
    n1, n2 = np.meshgrid(np.arange(14), np.arange(10))
    rows = []
    for pos, label in zip(cell.positions, cell.column_labels(), strict=True):
        xy = pos + n1.reshape(-1, 1) * cell.a + n2.reshape(-1, 1) * cell.b
        rows.append(pd.DataFrame({"x_A": xy[:, 0], "y_A": xy[:, 1], "class": label}))
    pd.concat(rows).to_csv(tmp_path / "atoms.csv", index=False)
    args = ["analyze", str(tmp_path / "atoms.csv"), "--material", "srtio3"]
    args += ["--species", "SrO=Sr", "--cutoff", "2.2"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    said = summary["reference_warning"]
    assert "29% off srtio3[001]" in said and "`zone_axis=1,1,0`" in said  # Python's name here
    assert said in caplog.text  # logged, as a warning line on the command line
    flags = exposed_flags(_analyze_command())
    assert "pass --zone-axis 1,1,0" in flag_names(said, flags)
    r = CliRunner().invoke(app, [*args, "--zone-axis", "1,1,0", "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["reference"] == "srtio3[110]" and "reference_warning" not in summary
    strain = summary["strain_vs_srtio3"]
    assert max(abs(strain[k]) for k in ("exx", "eyy", "exy")) < 1e-4
    assert "strain vs srtio3[110]: exx +0.00%" in r.output
    r = CliRunner().invoke(app, [*args, "--zone-axis", "1,1", "--out", str(tmp_path / "c")])
    assert r.exit_code == 2 and "--zone-axis" in r.output


def _analyze_command():
    import typer.main

    return typer.main.get_command(app).commands["analyze"]


def test_one_class_for_two_column_sites_is_measured_against_their_joint_lattice(tmp_path):
    """The default model calls SrO and Ti columns alike ('atom'): down [110] they form a
    2.76 × 1.95 Å lattice, and a 1 % strain is read against it, not called 50 % off."""
    from atomlens.analysis.analyze import analyze
    from atomlens.simulate import load_material

    cell = load_material("srtio3", zone_axis=(1, 1, 0))
    n1, n2 = np.meshgrid(np.arange(14), np.arange(10))
    strain = np.array([[1.01, 0.0], [0.0, 0.995]])
    xy = (
        np.concatenate(
            [
                p + n1.reshape(-1, 1) * cell.a + n2.reshape(-1, 1) * cell.b
                for p in cell.positions[:2]
            ]
        )
        @ strain.T
    )
    table = pd.DataFrame({"x_A": xy[:, 0], "y_A": xy[:, 1], "class": "atom"})
    s = analyze(table, out=tmp_path / "a", material="srtio3", zone_axis=(1, 1, 0), cutoff_A=2.2)
    assert s["reference"] == "srtio3[110], columns SrO+Ti as one"
    assert "reference_warning" not in s
    got = s["strain_vs_srtio3"]
    assert got["exx"] == pytest.approx(0.01, abs=1e-4) and got["eyy"] == pytest.approx(
        -0.005, abs=1e-4
    )


def test_a_stack_without_trackpy_gets_per_frame_figures_and_a_warning(
    tmp_path, monkeypatch, caplog
):
    """Without trackpy, analyze still writes everything but the tracks (it wrote nothing)."""
    import builtins

    from tests.analysis.test_graph_rings_ase import graphene_xy

    xy = graphene_xy(8)
    frames = [
        pd.DataFrame({"frame": f, "x_A": xy[f:, 0], "y_A": xy[f:, 1], "class": "C"})
        for f in range(3)
    ]  # one atom fewer per frame
    pd.concat(frames).to_csv(tmp_path / "atoms.csv", index=False)
    real_import = builtins.__import__

    def no_trackpy(name, *args, **kwargs):
        if name == "trackpy":
            raise ImportError("No module named 'trackpy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_trackpy)
    out = tmp_path / "o"
    r = CliRunner().invoke(app, ["analyze", str(tmp_path / "atoms.csv"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    per_frame = pd.read_csv(out / "frames.csv")
    assert per_frame["atoms"].tolist() == [len(xy), len(xy) - 1, len(xy) - 2]
    assert per_frame["median_bond_A"].round(3).tolist() == [1.42] * 3
    assert (out / "rings.csv").exists() and not (out / "tracks.csv").exists()
    assert "tracks.csv, drift.csv and transitions.csv not written" in caplog.text
    assert "trackpy" in json.loads((out / "summary.json").read_text())["tracks"]
