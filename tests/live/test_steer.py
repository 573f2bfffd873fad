"""The steered experiment: a veto changes what is measured, every human action is logged,
and the replay from the log alone reproduces the path and the decisions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atomlens.active.loop import ExploreSettings, run
from atomlens.active.scalarizers import BandIntensity
from atomlens.live.steer import Action, SteeredRun, replay_run
from tests.active.test_loop import ToyInstrument

SETTINGS = ExploreSettings(
    model="gp", steps=5, n_seed=3, seed=2, grid_step_px=4, patch_px=6, fit_iterations=30
)
SCAL = BandIntensity((4.0, 6.0))


def test_without_an_operator_the_path_is_the_loops(tmp_path):
    ref = run(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS)
    steered = SteeredRun(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=tmp_path / "r")
    np.testing.assert_array_equal(steered.run(), ref.indices)
    np.testing.assert_allclose(steered.values, ref.values)


def test_human_actions_change_the_path_and_replay_exactly(tmp_path):
    alone = SteeredRun(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=tmp_path / "a")
    path_alone = alone.run()
    vetoed = int(path_alone[4])

    def operator(r, prop):
        if prop.step == 4 and prop.index == vetoed:
            return Action("veto", reason="not there")
        if prop.step == 5:
            return Action("measure", x=2.0, y=35.0)
        if prop.step == 6 and r.settings.acquisition == "ucb":
            return Action("policy", acquisition="ue", beta=1.0, scalarizer="band:3:7")
        return None

    out = tmp_path / "h"
    steered = SteeredRun(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=out)
    path = steered.run(operator)
    assert path[4] != vetoed and vetoed not in path  # the veto changed the next point
    near = steered.positions[path[5]]
    assert np.hypot(near[0] - 2.0, near[1] - 35.0) <= 4  # measured where clicked
    assert steered.why[5] == "human" and steered.settings.acquisition == "ue"
    # the new scalarizer rescored the spectra measured before it
    np.testing.assert_allclose(
        steered.values, [BandIntensity((3.0, 7.0))(r, steered.problem.energy) for r in steered.raw]
    )
    entries = [json.loads(x) for x in (out / "provenance.jsonl").read_text().splitlines()]
    human = [(e["action"], e["actor"]) for e in entries if e["actor"] == "human"]
    assert human == [("veto", "human"), ("measure", "human"), ("policy", "human")]
    res = replay_run(out)
    assert res.exact and res.human_actions == 3 and res.proposals == 10
    np.testing.assert_array_equal(res.indices, path)
    assert res.max_acquisition_error < 1e-9
    # a replay that is given another history does not reproduce: the veto removed
    lines = (out / "provenance.jsonl").read_text().splitlines()
    keep = [x for x in lines if '"action":"veto"' not in x]
    (tmp_path / "cut").mkdir()
    for f in ("overview.npy", "energy.npy", "candidates.npy"):
        (tmp_path / "cut" / f).write_bytes((out / f).read_bytes())
    (tmp_path / "cut" / "provenance.jsonl").write_text("\n".join(keep) + "\n")
    with pytest.raises(ValueError, match="does not follow"):
        replay_run(tmp_path / "cut")


def test_bad_actions_and_files_are_refused(tmp_path):
    r = SteeredRun(ToyInstrument(), scalarizer="band:4:6", settings=SETTINGS, out=tmp_path / "r")
    with pytest.raises(ValueError, match="action `kind` must be accept, veto, measure or policy"):
        Action("jump")
    with pytest.raises(ValueError, match="outside the 40×40 px overview"):
        r.nearest(50.0, 3.0)
    with pytest.raises(ValueError, match="`acquisition` must be one of"):
        r.set_policy(acquisition="greedy")
    with pytest.raises(ValueError, match="candidate 9999 does not exist"):
        r.measure(9999)
    with pytest.raises(FileExistsError, match="not empty"):
        SteeredRun(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=tmp_path / "r")
    (tmp_path / "r" / "overview.npy").write_bytes(b"changed")
    with pytest.raises(ValueError, match="missing or changed since the run logged it"):
        replay_run(tmp_path / "r")


def test_an_operator_that_never_lets_a_point_be_measured_is_stopped(tmp_path):
    r = SteeredRun(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=tmp_path / "r")
    with pytest.raises(RuntimeError, match="without letting a point be measured"):
        r.run(lambda run, prop: Action("policy", beta=1.0) if prop.step == 0 else None)
