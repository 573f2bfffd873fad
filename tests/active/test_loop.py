"""The loop: resume after an interruption, replay, counterfactuals, baselines, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from atomlens.active.loop import ExploreSettings, TableSource, counterfactual, replay, run
from atomlens.active.scalarizers import BandIntensity, PeakHeight

E = np.linspace(0.0, 10.0, 21)


class ToyInstrument:
    """A 40 × 40 image, one bright spot at (30, 10): the spectrum's band 4–6 grows near it."""

    pixel_size = 0.2
    energy = E

    def __init__(self, fail_at: int | None = None) -> None:
        yy, xx = np.mgrid[0:40, 0:40]
        self.r2 = (xx - 30.0) ** 2 + (yy - 10.0) ** 2
        self.image = 1.0 + 5.0 * np.exp(-self.r2 / 8.0)
        self.calls = 0
        self.fail_at = fail_at

    def overview(self):
        return self.image

    def measure(self, x, y):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt  # the run is killed here
        amp = 10.0 * np.exp(-((x - 30.0) ** 2 + (y - 10.0) ** 2) / 18.0)
        return 1.0 + amp * ((E >= 4) & (E <= 6)) + 0.01 * np.sin(x + 3 * y)


SETTINGS = ExploreSettings(
    model="gp", steps=6, n_seed=3, seed=2, grid_step_px=4, patch_px=6, fit_iterations=30
)
SCAL = BandIntensity((4.0, 6.0))


def test_run_finds_the_spot_and_writes_the_record(tmp_path):
    res = run(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=tmp_path / "r")
    assert res.values.max() > 0.5 * SCAL(1.0 + 10.0 * ((E >= 4) & (E <= 6)), E)
    path = pd.read_csv(tmp_path / "r" / "path.csv")
    assert list(path.columns) == [
        "step", "round", "index", "x_px", "y_px", "value", "best_so_far", "acquisition", "why",
    ]  # fmt: skip
    assert len(path) == 9 and (path["why"][:3] == "seed").all() and (path["why"][3:] == "ucb").all()
    np.testing.assert_array_equal(path["best_so_far"], np.maximum.accumulate(path["value"]))
    np.testing.assert_array_equal(path["index"], res.indices)
    steps = [json.loads(s) for s in (tmp_path / "r" / "steps.jsonl").read_text().splitlines()]
    assert steps[3]["model"]["model"] == "ExactGP" and steps[3]["maps"] == "maps/step-0003.npz"
    maps = np.load(tmp_path / "r" / steps[3]["maps"])
    assert maps["mean"].shape == maps["variance"].shape == (len(res.positions),)
    for name in ("path.png", "best_so_far.png", "maps.png", "raw.npy"):
        assert (tmp_path / "r" / name).is_file()


def test_an_interrupted_run_resumes_to_the_same_path_and_replays(tmp_path):
    full = run(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run(ToyInstrument(fail_at=6), scalarizer=SCAL, settings=SETTINGS, out=tmp_path / "cut")
    assert len(pd.read_csv(tmp_path / "cut" / "path.csv")) == 5
    with pytest.raises(FileExistsError, match="not empty"):
        run(ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=tmp_path / "cut")
    resumed = run(
        ToyInstrument(), scalarizer=SCAL, settings=SETTINGS, out=tmp_path / "cut", resume=True
    )
    np.testing.assert_array_equal(resumed.indices, full.indices)
    np.testing.assert_array_equal(resumed.values, full.values)
    a = pd.read_csv(tmp_path / "full" / "path.csv")
    b = pd.read_csv(tmp_path / "cut" / "path.csv")
    pd.testing.assert_frame_equal(a, b)
    again = replay(ToyInstrument(), tmp_path / "full")
    np.testing.assert_array_equal(again.indices, full.indices)
    np.testing.assert_allclose(again.acquisition_values, full.acquisition_values, equal_nan=True)
    # the same path scored by another scalarizer
    other = counterfactual(tmp_path / "full", PeakHeight((4.0, 6.0)))
    np.testing.assert_allclose(other, [PeakHeight((4.0, 6.0))(r, E) for r in full.raw])
    with pytest.raises(ValueError, match="records another run"):
        run(
            ToyInstrument(), scalarizer=SCAL, out=tmp_path / "cut", resume=True,
            settings=ExploreSettings(**{**SETTINGS.to_dict(), "seed": 3}),
        )  # fmt: skip


def test_table_source_dkl_batches_and_baselines():
    gen = np.random.default_rng(0)
    feats = gen.normal(size=(200, 8))
    targets = feats[:, 0] + 0.5 * feats[:, 1]
    src = TableSource(feats, targets)
    res = run(src, settings=ExploreSettings(model="dkl", steps=8, batch=4, fit_iterations=40))
    assert len(res.indices) == 13 and len(set(res.indices.tolist())) == 13
    assert res.values.max() > np.quantile(targets, 0.9)
    rnd = run(src, settings=ExploreSettings(acquisition="random", steps=8))
    grid = run(src, settings=ExploreSettings(acquisition="grid", steps=8))
    assert len(set(rnd.indices.tolist())) == len(set(grid.indices.tolist())) == 13


class Interrupted(TableSource):
    def __init__(self, *args, fail_at=None, **kw):
        super().__init__(*args, **kw)
        self.calls, self.fail_at = 0, fail_at

    def measure_index(self, i):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        return super().measure_index(i)


def test_a_run_interrupted_inside_a_batch_resumes_on_the_same_path(tmp_path):
    gen = np.random.default_rng(1)
    feats = gen.normal(size=(150, 3))
    targets = np.sin(2 * feats[:, 0]) + feats[:, 1]
    settings = ExploreSettings(model="gp", steps=9, n_seed=3, batch=3, fit_iterations=20)
    full = run(TableSource(feats, targets), settings=settings, out=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(Interrupted(feats, targets, fail_at=8), settings=settings, out=tmp_path / "b")
    again = run(TableSource(feats, targets), settings=settings, out=tmp_path / "b", resume=True)
    np.testing.assert_array_equal(again.indices, full.indices)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "path.csv"), pd.read_csv(tmp_path / "b" / "path.csv")
    )
    np.testing.assert_array_equal(
        replay(TableSource(feats, targets), tmp_path / "b").indices, full.indices
    )


class NaNInstrument(ToyInstrument):
    def measure(self, x, y):
        return np.full_like(E, np.nan)


def test_bad_inputs_give_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="`features` has 3 rows but `targets` has 2"):
        TableSource(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="candidate set has no candidates"):
        TableSource(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ValueError, match="`steps` must be an integer >= 1, got 0"):
        ExploreSettings(steps=0)
    with pytest.raises(ValueError, match="NaN or infinite values; check the instrument"):
        run(NaNInstrument(), scalarizer=SCAL, settings=SETTINGS)
    with pytest.raises(ValueError, match="cannot hold"):
        run(TableSource(np.zeros((4, 1)), np.zeros(4)), settings=SETTINGS)
    with pytest.raises(ValueError, match="unknown ExploreSettings keys"):
        ExploreSettings.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="`scalarizer` is needed"):
        run(ToyInstrument(), settings=SETTINGS)
