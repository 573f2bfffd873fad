import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from typer.testing import CliRunner

from atomlens.cli import app

runner = CliRunner()


def test_every_command_has_help():
    for args in ([], ["simulate"], ["evaluate"]):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


def test_simulate_writes_calibrated_outputs_then_evaluate_scores_them(tmp_path):
    out = tmp_path / "sim"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--material",
            "graphene",
            "--dose",
            "1e5",
            "--pixel-size",
            "0.1",
            "--size",
            "96",
            "--seed",
            "0",
            "--defect",
            "substitution:C:Si:0.05",
            "--out",
            str(out),
            "--masks",
        ],
    )
    assert result.exit_code == 0, result.output
    files = {p.name for p in out.iterdir()}
    assert {
        "image.tif",
        "image.npy",
        "truth.csv",
        "vacancies.csv",
        "metadata.json",
        "preview.png",
        "masks.npy",
    } <= files
    with tifffile.TiffFile(out / "image.tif") as tif:
        assert tif.imagej_metadata["unit"] == "nm"
        xres = tif.pages[0].tags["XResolution"].value
        assert xres[1] / xres[0] == pytest.approx(0.01)  # nm per px
        np.testing.assert_array_equal(tif.asarray(), np.load(out / "image.npy"))
    truth = pd.read_csv(out / "truth.csv")
    assert list(truth.columns[:5]) == ["x_px", "y_px", "x_A", "y_A", "class"]
    np.testing.assert_allclose(truth.x_A, truth.x_px * 0.1)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["pixel_size_A"] == 0.1 and meta["conditions"]["dose_e_per_A2"] == 1e5

    # Perfect prediction: F1 = 1; drop 3 atoms: 3 false negatives.
    pred = truth.iloc[3:]
    pred.to_csv(tmp_path / "pred.csv", index=False)
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "pred.csv"),
            str(out / "truth.csv"),
            "--radius-A",
            "0.5",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rep = json.loads(result.output)
    assert rep["fn"] == 3 and rep["fp"] == 0 and rep["tp"] == len(truth) - 3
    text = runner.invoke(app, ["evaluate", str(tmp_path / "pred.csv"), str(out / "truth.csv")])
    assert text.exit_code == 0, text.output
    # text mode prints the confusion matrix too (README and tutorials say it does)
    assert "confusion matrix of the matched pairs" in text.output, text.output
    assert "by class: " in text.output and "misclassified: " in text.output


def test_simulate_refuses_to_overwrite_and_leaves_nothing_partial(tmp_path):
    out = tmp_path / "sim"
    args = ["simulate", "--size", "32", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    before = sorted(p.name for p in out.iterdir())
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "--overwrite" in result.output
    assert sorted(p.name for p in out.iterdir()) == before
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["sim"]  # no temporary leftovers


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--material", "unobtainium"], "unobtainium"),
        (["--pixel-size", "-1"], "pixel_size"),
        (["--defect", "hole:C"], "vacancy:ELEMENT:DENSITY"),
        (["--strain", "0.1,0"], "--strain"),
    ],
)
def test_simulate_bad_input_gives_one_line_error(tmp_path, args, needle):
    out = tmp_path / "sim"
    result = runner.invoke(app, ["simulate", "--size", "32", "--out", str(out), *args])
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_evaluate_missing_file_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nope.csv"), str(tmp_path / "t.csv")])
    assert result.exit_code == 2
    assert "nope.csv" in result.output and "Traceback" not in result.output
