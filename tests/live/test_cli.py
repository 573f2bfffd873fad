"""``atomlens replay`` and ``atomlens live``'s one-line errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from atomlens.cli import app
from atomlens.live.steer import Action, SteeredRun
from tests.active.test_loop import ToyInstrument
from tests.live.test_steer import SCAL, SETTINGS


def test_replay_says_whether_the_run_is_reproduced(tmp_path):
    run = SteeredRun(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=tmp_path / "r")
    run.run(lambda r, p: Action("veto") if p.step == 4 and not r.vetoed else None)
    res = CliRunner().invoke(app, ["replay", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "8 measurements" in res.output and "1 human actions applied" in res.output
    assert "reproduced exactly" in res.output


def test_bad_inputs_end_with_one_line(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["replay", str(tmp_path)])
    assert res.exit_code == 2 and "not a provenance log" in res.output
    res = runner.invoke(app, ["live", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "give a SOURCE of frames" in res.output
    res = runner.invoke(
        app, ["live", "--explore", str(tmp_path / "no.json"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "--explore configuration" in res.output
    (tmp_path / "bad.json").write_text(json.dumps({"simulate": {}, "steps": 3}))
    res = runner.invoke(
        app, ["live", "--explore", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "steps" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, ["live", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_replay_also_takes_a_run_record_of_explore(tmp_path):
    from atomlens.active.loop import run as explore_run

    explore_run(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=tmp_path / "e")
    res = CliRunner().invoke(app, ["replay", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    assert "8 measurements, 5 agent proposals" in res.output and "exactly" in res.output
