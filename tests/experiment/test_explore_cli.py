"""``atomlens explore`` and the file reader behind it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from atomlens.cli import app


def test_explore_features_and_targets(tmp_path):
    gen = np.random.default_rng(0)
    feats = gen.normal(size=(120, 3))
    targets = -((feats - 0.5) ** 2).sum(1)
    np.save(tmp_path / "features.npy", feats)
    np.save(tmp_path / "targets.npy", targets)
    runner = CliRunner()
    args = ["explore", str(tmp_path / "features.npy"), "--targets", str(tmp_path / "targets.npy"),
            "--model", "gp", "--steps", "6", "--out", str(tmp_path / "run")]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    path = pd.read_csv(tmp_path / "run" / "path.csv")
    assert len(path) == 11
    np.testing.assert_allclose(path["value"], targets[path["index"]])
    assert (tmp_path / "run" / "best_so_far.png").is_file()


def test_explore_errors_are_one_line(tmp_path):
    runner = CliRunner()
    np.save(tmp_path / "features.npy", np.zeros((5, 2)))
    res = runner.invoke(
        app, ["explore", str(tmp_path / "features.npy"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "features need their --targets (targets.npy)" in res.output
    np.save(tmp_path / "t.npy", np.zeros(4))
    res = runner.invoke(app, ["explore", str(tmp_path / "features.npy"), "--targets",
                              str(tmp_path / "t.npy"), "--out", str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 2 and "`features` has 5 rows but --targets has 4" in res.output
    res = runner.invoke(app, ["explore", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(app, ["explore", str(tmp_path / "features.npy"), "--steps", "0",
                              "--out", str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 2 and "--steps must be an integer >= 1, got 0" in res.output
