"""Tests for atomlens.metrics.detection: scoring atoms tables against the truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from atomlens.io.atoms_table import make_atoms_table
from atomlens.metrics import DetectionReport, evaluate_files, score_detections

PIXEL_SIZE = 0.1  # Å/px


def _truth(n: int = 12, spacing: float = 20.0) -> pd.DataFrame:
    """n×n lattice of atoms [px], classes alternating Mo and S by column."""
    g = np.arange(n) * spacing + 5.0
    xy = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    classes = np.where(np.arange(len(xy)) % 2 == 0, "Mo", "S")
    return make_atoms_table(xy, pixel_size=PIXEL_SIZE, classes=classes)


def _moved(table: pd.DataFrame, dxy_px: tuple[float, float]) -> pd.DataFrame:
    xy = table[["x_px", "y_px"]].to_numpy() + np.asarray(dxy_px)
    classes = table["class"].to_numpy(copy=True)  # make_atoms_table keeps the array it gets
    return make_atoms_table(xy, pixel_size=PIXEL_SIZE, classes=classes)


def test_identical_tables_score_perfectly() -> None:
    truth = _truth()
    r = score_detections(truth, truth, radius_A=0.5)
    assert isinstance(r, DetectionReport)
    assert (r.tp, r.fp, r.fn) == (len(truth), 0, 0)
    assert r.precision == r.recall == r.f1 == 1.0
    assert r.errors_px.rmse == 0.0 and r.errors_pm.rmse == 0.0
    assert r.class_accuracy == 1.0
    assert r.pixel_size == pytest.approx(PIXEL_SIZE)
    assert (r.per_class["f1"] == 1.0).all()
    assert np.trace(r.confusion.to_numpy()) == len(truth)


def test_shift_gives_rmse_in_px_and_pm() -> None:
    truth = _truth()
    pred = _moved(truth, (0.3, 0.4))  # 0.5 px = 0.05 Å = 5 pm
    r = score_detections(pred, truth, radius_px=1.0)
    assert (r.tp, r.fp, r.fn) == (len(truth), 0, 0)
    assert r.radius_unit == "px"
    assert r.errors_px.rmse == pytest.approx(0.5)
    assert (r.errors_px.mean_dx, r.errors_px.mean_dy) == (pytest.approx(0.3), pytest.approx(0.4))
    assert r.errors_pm.rmse == pytest.approx(5.0)
    assert (r.errors_pm.mean_dx, r.errors_pm.mean_dy) == (pytest.approx(3.0), pytest.approx(4.0))
    assert r.errors_pm.rmse_x == pytest.approx(3.0)
    assert r.errors_pm.n == len(truth)


def test_radius_A_and_radius_px_agree() -> None:
    truth = _truth()
    pred = _moved(truth, (0.3, 0.4))
    in_A = score_detections(pred, truth, radius_A=0.06)  # 0.6 px
    in_px = score_detections(pred, truth, radius_px=0.6)
    assert in_A.radius_unit == "Å"
    assert (in_A.tp, in_A.fp, in_A.fn) == (in_px.tp, in_px.fp, in_px.fn) == (len(truth), 0, 0)
    too_small = score_detections(pred, truth, radius_A=0.04)  # 0.4 px
    assert (too_small.tp, too_small.fp, too_small.fn) == (0, len(truth), len(truth))


def test_removed_and_added_atoms() -> None:
    truth = _truth()
    pred = truth.drop(index=[0, 5, 17]).reset_index(drop=True)
    extra = make_atoms_table(np.array([[15.0, 15.0], [35.0, 15.0]]), pixel_size=PIXEL_SIZE)
    pred = pd.concat([pred, extra], ignore_index=True)
    r = score_detections(pred, truth, radius_A=0.5)
    assert (r.tp, r.fp, r.fn) == (len(truth) - 3, 2, 3)
    assert r.per_class.loc["atom", ["tp", "fp", "fn", "n_pred", "n_true"]].tolist() == [
        0,
        2,
        0,
        2,
        0,
    ]


def test_changed_class_counts_per_class() -> None:
    truth = _truth()
    pred = truth.copy()
    changed = [0, 2, 4]  # three Mo atoms labelled S
    pred.loc[changed, "class"] = "S"
    r = score_detections(pred, truth, radius_A=0.5)
    n_mo = int((truth["class"] == "Mo").sum())
    n_s = len(truth) - n_mo
    assert (r.tp, r.fp, r.fn) == (len(truth), 0, 0)  # overall detection ignores class
    assert list(r.per_class.index) == ["Mo", "S"]
    assert list(r.per_class.columns) == [
        "tp",
        "fp",
        "fn",
        "precision",
        "recall",
        "f1",
        "n_true",
        "n_pred",
    ]
    mo, s = r.per_class.loc["Mo"], r.per_class.loc["S"]
    assert (mo.tp, mo.fp, mo.fn, mo.n_true, mo.n_pred) == (n_mo - 3, 0, 3, n_mo, n_mo - 3)
    assert (s.tp, s.fp, s.fn, s.n_true, s.n_pred) == (n_s, 3, 0, n_s, n_s + 3)
    assert mo.recall == pytest.approx((n_mo - 3) / n_mo)
    assert s.precision == pytest.approx(n_s / (n_s + 3))
    assert r.class_accuracy == pytest.approx((len(truth) - 3) / len(truth))
    assert r.confusion.loc["Mo", "S"] == 3
    assert r.confusion.loc["S", "Mo"] == 0
    assert r.confusion.loc["Mo", "Mo"] == n_mo - 3
    assert r.confusion.index.name == "truth" and r.confusion.columns.name == "predicted"


def test_classes_are_the_union_of_both_tables() -> None:
    truth = _truth(2)
    pred = truth.copy()
    pred["class"] = ["Mo", "W", "W", "S"]
    r = score_detections(pred, truth, radius_A=0.5)
    assert list(r.per_class.index) == ["Mo", "S", "W"]
    assert r.per_class.loc["W", "n_true"] == 0 and r.per_class.loc["W", "fp"] == 2
    assert r.confusion.shape == (3, 3)


def test_by_class_false_or_missing_class_column() -> None:
    truth = _truth()
    r = score_detections(truth, truth, radius_A=0.5, by_class=False)
    assert r.per_class is None and r.class_accuracy is None and r.confusion is None
    r = score_detections(truth.drop(columns="class"), truth, radius_A=0.5)
    assert r.per_class is None


def test_tables_with_only_one_unit() -> None:
    truth = _truth()
    pred = _moved(truth, (0.3, 0.4))
    only_px = score_detections(
        pred[["x_px", "y_px"]], truth[["x_px", "y_px", "class"]], radius_px=1.0
    )
    assert only_px.errors_px.rmse == pytest.approx(0.5)
    assert only_px.errors_pm is None and only_px.pixel_size is None
    assert only_px.per_class is None
    only_A = score_detections(pred[["x_A", "y_A"]], truth[["x_A", "y_A"]], radius_A=0.1)
    assert only_A.errors_pm.rmse == pytest.approx(5.0)
    assert only_A.errors_px is None
    # One table with both units lets the other be converted.
    mixed = score_detections(pred[["x_A", "y_A"]], truth, radius_A=0.1)
    assert mixed.errors_px.rmse == pytest.approx(0.5)
    assert mixed.pixel_size == pytest.approx(PIXEL_SIZE)


def test_empty_tables() -> None:
    truth = _truth()
    empty = truth.iloc[:0]
    r = score_detections(empty, empty, radius_A=0.5)
    assert (r.tp, r.fp, r.fn, r.f1) == (0, 0, 0, 1.0)
    assert r.errors_pm.n == 0 and np.isnan(r.errors_pm.rmse)
    assert r.per_class is not None and r.per_class.empty
    assert np.isnan(r.class_accuracy)
    r = score_detections(empty, truth, radius_A=0.5)
    assert (r.tp, r.fp, r.fn, r.precision, r.recall, r.f1) == (0, 0, len(truth), 0.0, 0.0, 0.0)
    assert "no matched pairs" in r.format()
    json.dumps(r.to_dict())


def test_format_and_to_dict() -> None:
    truth = _truth()
    pred = _moved(truth, (0.3, 0.4))
    pred.loc[0, "class"] = "S"
    r = score_detections(pred, truth, radius_A=0.5)
    text = r.format()
    first, second = text.splitlines()[:2]
    assert first == (
        f"F1 1.000  precision 1.000  recall 1.000  (TP {len(truth)}, FP 0, FN 0) within 0.50 Å"
    )
    assert second == "RMSE 5 pm  median 5 pm  p95 5 pm  (0.5 px)"
    assert "class accuracy" in text and "Mo" in text and "precision" in text
    assert "by class: Mo 71/72, S 72/72 found; misclassified: 1 Mo called S" in text
    # the confusion matrix, which README and the tutorials promise `evaluate` prints
    assert text.splitlines()[-5:] == [
        "confusion matrix of the matched pairs (rows truth, columns predicted):",
        "predicted  Mo   S",
        "truth            ",
        "Mo         71   1",
        "S           0  72",
    ]
    assert str(r) == text
    d = r.to_dict()
    back = json.loads(json.dumps(d))
    assert back["tp"] == len(truth) and back["radius_unit"] == "Å"
    assert back["errors_pm"]["rmse"] == pytest.approx(5.0)
    assert back["per_class"]["Mo"]["fn"] == 1
    assert isinstance(d["per_class"]["Mo"]["tp"], int)
    assert isinstance(d["per_class"]["Mo"]["f1"], float)
    assert back["confusion"]["Mo"]["S"] == 1
    assert back["pixel_size"] == pytest.approx(PIXEL_SIZE)
    assert "matching" not in d


def test_matching_indices_point_at_table_rows() -> None:
    truth = _truth()
    pred = truth.sample(frac=1.0, random_state=np.random.RandomState(0)).reset_index(drop=True)
    r = score_detections(pred, truth, radius_px=1.0)
    m = r.matching
    np.testing.assert_array_equal(
        pred.loc[m.pred_index, ["x_px", "y_px"]].to_numpy(),
        truth.loc[m.true_index, ["x_px", "y_px"]].to_numpy(),
    )


def test_different_pixel_sizes_warn() -> None:
    truth = _truth()
    pred = make_atoms_table(truth[["x_px", "y_px"]].to_numpy(), pixel_size=0.2)
    with pytest.warns(UserWarning, match="different pixel sizes"):
        score_detections(pred, truth, radius_px=1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "got neither"),
        ({"radius_A": 0.5, "radius_px": 5.0}, "only one"),
        ({"radius_A": -1.0}, "radius_A"),
        ({"radius_px": "big"}, "radius_px"),
    ],
)
def test_radius_errors(kwargs, match) -> None:
    truth = _truth(2)
    with pytest.raises((ValueError, TypeError), match=match):
        score_detections(truth, truth, **kwargs)


def test_missing_columns_name_the_table_and_the_fix() -> None:
    truth = _truth(2)
    with pytest.raises(ValueError, match=r"pred has no x_A, y_A.*radius_px"):
        score_detections(truth[["x_px", "y_px"]], truth, radius_A=0.5)
    with pytest.raises(ValueError, match=r"truth has no x_px, y_px.*radius_A"):
        score_detections(truth, truth[["x_A", "y_A"]], radius_px=5.0)
    with pytest.raises(TypeError, match="pred must be a pandas DataFrame"):
        score_detections(np.zeros((3, 2)), truth, radius_px=5.0)
    with pytest.raises(TypeError, match="by_class"):
        score_detections(truth, truth, radius_px=5.0, by_class="yes")
    bad = truth.copy()
    bad.loc[0, "class"] = None
    with pytest.raises(ValueError, match="missing value"):
        score_detections(bad, truth, radius_px=5.0)


def test_evaluate_files(tmp_path) -> None:
    truth = _truth()
    pred = _moved(truth, (0.3, 0.4)).drop(index=[3])
    pred_path, truth_path = tmp_path / "pred.csv", tmp_path / "truth.csv"
    pred.to_csv(pred_path, index=False)
    truth.to_csv(truth_path, index=False)
    r = evaluate_files(pred_path, truth_path, radius_A=0.1)
    assert (r.tp, r.fp, r.fn) == (len(truth) - 1, 0, 1)
    assert r.errors_pm.rmse == pytest.approx(5.0)
    assert r.per_class is not None
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        evaluate_files(tmp_path / "nope.csv", truth_path, radius_A=0.1)
    with pytest.raises(ValueError, match="got neither"):
        evaluate_files(pred_path, truth_path)
    pred[["x_px", "y_px"]].to_csv(pred_path, index=False)
    with pytest.raises(ValueError, match=r"pred file .*pred\.csv has no x_A"):
        evaluate_files(pred_path, truth_path, radius_A=0.1)


def test_evaluate_reports_the_coverage_of_sigma(tmp_path) -> None:
    """Predictions off by Gaussian errors of the σ they report: z RMS 1, 68 % within 1σ."""
    import json

    from typer.testing import CliRunner

    from atomlens.cli import app

    rng = np.random.default_rng(3)
    n = 4000
    xy = rng.uniform(5, 995, (n, 2))  # 99 Å square: far fewer atoms than match radii
    sig = rng.uniform(0.01, 0.05, (n, 1)) * np.ones((1, 2))  # [Å]
    truth = pd.DataFrame(
        {"x_px": xy[:, 0], "y_px": xy[:, 1], "x_A": xy[:, 0] * 0.1, "y_A": xy[:, 1] * 0.1}
    )
    p = xy * 0.1 + rng.normal(size=(n, 2)) * sig
    pred = pd.DataFrame(
        {
            "x_px": p[:, 0] / 0.1,
            "y_px": p[:, 1] / 0.1,
            "x_A": p[:, 0],
            "y_A": p[:, 1],
            "sigma_x_A": sig[:, 0],
            "sigma_y_A": sig[:, 1],
        }
    )
    pred.to_csv(tmp_path / "p.csv", index=False)
    truth.to_csv(tmp_path / "t.csv", index=False)
    res = CliRunner().invoke(
        app, ["evaluate", str(tmp_path / "p.csv"), str(tmp_path / "t.csv"), "--radius-A", "0.3"]
    )
    assert res.exit_code == 0, res.output
    assert "σ: 100.0% of matched atoms have one" in res.output and "within 1σ" in res.output
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "p.csv"),
            str(tmp_path / "t.csv"),
            "--radius-A",
            "0.3",
            "--json",
        ],
    )
    u = json.loads(res.output)["uncertainty"]
    assert abs(u["z_rms"] - 1) < 0.05 and abs(u["within_1sigma"] - 0.683) < 0.02
    assert abs(u["within_2sigma"] - 0.954) < 0.015 and u["n"] == n
