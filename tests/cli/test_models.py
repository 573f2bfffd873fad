"""`atomlens models`: one line per bundled model with its members, classes and sampling."""

import json

from typer.testing import CliRunner

import atomlens.bundled as bundled
from atomlens.cli import app

runner = CliRunner()


def test_models_lists_each_bundled_model_with_its_classes_and_sampling():
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0, r.output
    lines = {line.split()[0]: line for line in r.output.splitlines() if line.strip()}
    # every model directory shipped, read from its own config.json
    shipped = sorted(p for p in bundled.BUNDLED_DIR.iterdir() if (p / "config.json").is_file())
    assert sorted(lines) == [p.name for p in shipped]
    for d in shipped:
        cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
        line = lines[d.name]
        assert f"classes {', '.join(cfg['class_names'])}," in line, line
        assert f"{cfg['pixel_size_A']:g} Å/px" in line, line
        assert f"{len(cfg['members'])} members" in line, line
    # the graphene ensemble the demo runs, as docs/models.md describes it
    assert "4 members, classes C, Si, 0.2 Å/px" in lines["graphene"], lines["graphene"]


def test_models_says_when_none_are_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(bundled, "BUNDLED_DIR", tmp_path)
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0 and r.output.strip() == "no bundled models installed", r.output
