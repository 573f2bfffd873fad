"""`atomlens demo`: the bundled graphene ensemble on a fresh simulated image."""

from typer.testing import CliRunner

from atomlens.bundled import bundled_models
from atomlens.cli import app


def test_bundled_models_are_listed_and_small():
    models = bundled_models()
    assert "graphene" in models
    g = models["graphene"]
    assert g["classes"] == ["C", "Si"] and g["members"] >= 4
    assert sum(m["megabytes"] for m in models.values()) <= 25


def test_demo_finds_the_atoms_and_the_dopants(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["-q", "demo"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "atomlens-demo"
    for name in ("report.html", "atoms.csv", "image.tif", "truth.csv", "overlay.png"):
        assert (out / name).exists(), name
    from atomlens.demo import run_demo

    res = run_demo(tmp_path / "again", seed=1)
    assert res.f1 >= 0.98, res
    assert res.rmse_pm < 12.0, res  # a 1.5 Å carbon film sets a floor near 10 pm (model card)
    assert res.si_found == "3/3", res
    assert "F1" in r.output and "RMSE" in r.output
