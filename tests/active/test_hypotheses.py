"""Hypothesis learning: the bandit's arithmetic on a scripted reward sequence, failing
models dropped by name, the record, resume, and the structured GP in the loop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atomlens.active.hypotheses import (
    Bandit,
    HypothesisSettings,
    learn_hypotheses,
    load_record,
    run_hypotheses_files,
)


class ScriptedRng:
    """A stand-in for numpy's Generator: ``random()`` returns the scripted values."""

    def __init__(self, randoms, integers=()):
        self._r, self._i = list(randoms), list(integers)

    def random(self):
        return self._r.pop(0)

    def integers(self, n):
        return self._i.pop(0)


def test_bandit_update_is_exact_on_a_scripted_reward_sequence():
    b = Bandit(["a", "b", "c"], policy="epsilon", epsilon=0.2)
    for name, reward in [("a", 1), ("b", -1), ("c", 1), ("a", -1), ("b", 1), ("c", 1), ("c", -1)]:
        b.update(name, reward)
    assert b.counts == {"a": 2, "b": 2, "c": 3}
    assert b.sums == {"a": 0.0, "b": 0.0, "c": 1.0}
    assert b.value("c") == pytest.approx(1 / 3)
    assert b.choose(ScriptedRng([0.5])) == ("c", "greedy")  # 0.5 ≥ ε: the best
    assert b.choose(ScriptedRng([0.1], [1])) == ("b", "explore")  # 0.1 < ε: uniform pick
    b.update("c", -1)  # c: 0/4, now a three-way tie at 0
    assert b.best() == "a"  # ties: the first in the given order
    assert b.winner() == "c"  # ties in value: the most pulls
    b.drop("c")
    assert b.best() == "a" and b.winner() == "a"


def test_softmax_probabilities_follow_the_temperature():
    b = Bandit(["a", "b"], policy="softmax", temperature=0.5)
    b.update("a", 1)
    b.update("b", -1)
    rng = np.random.default_rng(0)
    picks = [b.choose(rng)[0] for _ in range(4000)]
    p_a = 1 / (1 + np.exp(-(1 - (-1)) / 0.5))
    assert picks.count("a") / len(picks) == pytest.approx(p_a, abs=0.02)


class Linear:
    """A cheap model: least squares on [1, x] with the textbook predictive variance."""

    def __init__(self, degree=1):
        self.degree = degree

    def fit(self, X, y):
        A = np.vander(np.asarray(X)[:, 0], self.degree + 1)
        self.coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        dof = max(len(y) - self.degree - 1, 1)
        self.s2 = max(float(np.sum((A @ self.coef - y) ** 2)) / dof, 1e-6)
        self.cov = self.s2 * np.linalg.pinv(A.T @ A)
        return self

    def predict(self, X, noise=False):
        A = np.vander(np.asarray(X)[:, 0], self.degree + 1)
        var = np.einsum("ij,jk,ik->i", A, self.cov, A) + (self.s2 if noise else 0.0)
        return A @ self.coef, var


class Raises(Linear):
    def fit(self, X, y):
        raise RuntimeError("diverged")


class NaNs(Linear):
    def predict(self, X, noise=False):
        m, v = super().predict(X, noise)
        return m * np.nan, v


X = np.linspace(0.0, 1.0, 60)
Y = 1.0 + 2.0 * X + 0.05 * np.sin(40 * X)


def test_models_that_raise_or_return_nan_are_dropped_by_name(caplog):
    models = {"raises": Raises(), "nan": NaNs(), "line": Linear()}
    settings = HypothesisSettings(steps=4, warmup=1, n_seed=4, seed=0)
    with caplog.at_level("WARNING"):
        result = learn_hypotheses(X, models=models, measure=Y, settings=settings)
    assert result.dropped == {
        "raises": "RuntimeError: diverged",
        "nan": "ValueError: predict returned NaN or infinite values",
    }
    assert "model 'raises' dropped" in caplog.text and "model 'nan' dropped" in caplog.text
    assert result.winner == "line"
    assert result.counts["line"] == 5 and result.counts["raises"] == result.counts["nan"] == 0
    assert len(result.measured) == 4 + 5  # the dropped models' turns measured nothing
    np.testing.assert_allclose(result.mean, 1.0 + 2.0 * X, atol=0.05)


def test_every_model_failing_is_one_error():
    with pytest.raises(ValueError, match=r"every model failed.*a: RuntimeError: diverged"):
        learn_hypotheses(X, models={"a": Raises()}, measure=Y)


def test_record_matches_the_result_and_a_stopped_run_resumes_exactly(tmp_path):
    """The run record is the automated experiment's RunRecord: path.csv names the model of
    every step, steps.jsonl the bandit's state; a run stopped mid-way resumes to the same
    path, counts and winner."""
    from atomlens.active.record import RunRecord

    models = lambda: {"line": Linear(1), "quad": Linear(2)}  # noqa: E731
    settings = HypothesisSettings(steps=6, warmup=1, n_seed=3, seed=4, policy="softmax")
    full = learn_hypotheses(X, models=models(), measure=Y, settings=settings, out=tmp_path / "a")
    rec = load_record(tmp_path / "a")
    assert rec["finished"] and rec["result"]["winner"] == full.winner
    assert rec["steps"] == full.record["steps"] and rec["seed_indices"] == list(full.measured[:3])
    assert [s["model"] for s in rec["steps"]].count("line") == full.counts["line"]
    sums = {n: sum(s["reward"] for s in rec["steps"] if s["model"] == n) for n in rec["models"]}
    assert {n: sums[n] / max(full.counts[n], 1) for n in sums} == pytest.approx(full.values)

    run = RunRecord.read(tmp_path / "a")
    assert run.meta["kind"] == "hypotheses"
    table = run.path_table()
    assert list(table["index"]) == list(full.measured)
    np.testing.assert_allclose(table["value"], Y[full.measured])
    assert list(table["why"][:3]) == ["seed"] * 3
    assert [w.split()[1] for w in table["why"][3:]] == [s["model"] for s in rec["steps"]]
    assert set(w.split()[0] for w in table["why"][3:5]) == {"warmup"}
    np.testing.assert_array_equal(run.inputs[:, 0], X)
    # the acquisition is the chosen model's σ at the point: the largest of its map's
    for k, line in enumerate(run.step_lines()[3:], start=3):
        with np.load(tmp_path / "a" / line["maps"]) as maps:
            open_ = np.setdiff1d(np.arange(X.size), full.measured[:k])
            sd = np.sqrt(maps["variance"].astype(float))
            assert line["acquisition"] == pytest.approx(sd[open_].max(), rel=1e-6)
            assert line["index"] == open_[np.argmax(sd[open_])]
    bandit = (tmp_path / "a" / "bandit.csv").read_text().splitlines()
    assert len(bandit) == 1 + len(rec["steps"]) and bandit[0].startswith("step,phase,model")

    calls = []

    def stops(i):
        calls.append(i)
        if len(calls) == 3 + 4:  # seed points, then four steps
            raise KeyboardInterrupt
        return float(Y[i])

    with pytest.raises(KeyboardInterrupt):
        learn_hypotheses(X, models=models(), measure=stops, settings=settings, out=tmp_path / "b")
    assert len(load_record(tmp_path / "b")["steps"]) == 3
    assert not load_record(tmp_path / "b")["finished"]
    resumed = learn_hypotheses(X, models=models(), measure=Y, settings=settings, out=tmp_path / "b")
    np.testing.assert_array_equal(resumed.measured, full.measured)
    assert resumed.counts == full.counts and resumed.winner == full.winner
    assert load_record(tmp_path / "b")["steps"] == rec["steps"]
    with pytest.raises(FileExistsError, match="holds a finished run"):
        learn_hypotheses(X, models=models(), measure=Y, settings=settings, out=tmp_path / "b")
    other = HypothesisSettings(steps=5, warmup=1, n_seed=3, seed=4)
    (tmp_path / "b" / "winner.json").unlink()
    with pytest.raises(ValueError, match=r"records another run \(differs in settings\)"):
        learn_hypotheses(X, models=models(), measure=Y, settings=other, out=tmp_path / "b")
    again = learn_hypotheses(
        X, models=models(), measure=Y, settings=other, out=tmp_path / "b", overwrite=True
    )
    assert len(RunRecord.read(tmp_path / "b").finished()["indices"]) == len(again.measured)


def test_a_run_resumes_after_a_model_was_dropped(tmp_path):
    """The dropped model stays dropped after a resume, and its warm-up turns measure
    nothing, as in the uninterrupted run."""
    models = lambda: {"raises": Raises(), "line": Linear(1), "quad": Linear(2)}  # noqa: E731
    settings = HypothesisSettings(steps=4, warmup=2, n_seed=3, seed=2)
    full = learn_hypotheses(X, models=models(), measure=Y, settings=settings)
    calls = []

    def stops(i):
        calls.append(i)
        if len(calls) == 3 + 3:
            raise KeyboardInterrupt
        return float(Y[i])

    with pytest.raises(KeyboardInterrupt):
        learn_hypotheses(X, models=models(), measure=stops, settings=settings, out=tmp_path)
    resumed = learn_hypotheses(X, models=models(), measure=Y, settings=settings, out=tmp_path)
    np.testing.assert_array_equal(resumed.measured, full.measured)
    assert resumed.dropped == full.dropped == {"raises": "RuntimeError: diverged"}
    assert resumed.counts == full.counts and resumed.counts["raises"] == 0


def test_replay_reproduces_a_recorded_run_and_finds_where_it_parts(tmp_path):
    from atomlens.active.hypotheses import replay_hypotheses

    models = lambda: {"line": Linear(1), "quad": Linear(2)}  # noqa: E731
    settings = HypothesisSettings(steps=5, warmup=1, n_seed=3, seed=7)
    full = learn_hypotheses(X, models=models(), measure=Y, settings=settings, out=tmp_path)
    same = replay_hypotheses(tmp_path, models=models())
    assert same.exact and same.winner == full.winner
    np.testing.assert_array_equal(same.indices, full.measured)
    # other models decide otherwise: the replay stops where the path parts, and says so
    other = replay_hypotheses(tmp_path, models={"line": Linear(3), "quad": Linear(2)})
    assert not other.exact and len(other.mismatches) == 1
    k = other.mismatches[0]["step"]
    assert k >= 3 and other.mismatches[0]["logged"] == full.measured[k]
    with pytest.raises(ValueError, match="run from Python and records no models file"):
        replay_hypotheses(tmp_path)
    # the automated experiment's replay knows the record is not its own
    from atomlens.active import replay

    with pytest.raises(ValueError, match="records hypothesis learning; replay it with"):
        replay(None, tmp_path)


def test_structured_gps_in_the_loop_pick_the_model_that_made_the_data():
    import torch
    from torch.distributions import LogNormal, Normal

    from atomlens.active.structured import parametric_only

    x = np.linspace(0.0, 2.0, 41)
    y = 0.5 * x**2 + np.random.default_rng(0).normal(0.0, 0.02, x.size)
    models = {
        "line": parametric_only(
            lambda x, p: p["a"] + p["b"] * x,
            {"a": Normal(0.0, 2.0), "b": Normal(0.0, 2.0)},
            noise_prior=LogNormal(-3.0, 0.5),
            restarts=1,
            rng=0,
        ),
        "parabola": parametric_only(
            lambda x, p: p["c"] * x**2,
            {"c": Normal(0.0, 2.0)},
            noise_prior=LogNormal(-3.0, 0.5),
            restarts=1,
            rng=0,
        ),
    }
    settings = HypothesisSettings(steps=4, warmup=1, n_seed=3, seed=1, reward="lowest")
    r = learn_hypotheses(x, models=models, measure=y, settings=settings)
    assert r.winner == "parabola"
    assert r.parameters["c"]["estimate"] == pytest.approx(0.5, abs=0.02)
    assert torch.get_default_dtype() == torch.float32  # nothing global was changed


def test_bad_settings_and_inputs_give_one_line_errors():
    with pytest.raises(ValueError, match="`epsilon` must be within"):
        HypothesisSettings(epsilon=2)
    with pytest.raises(ValueError, match="both 0"):
        HypothesisSettings(steps=0, warmup=0)
    with pytest.raises(ValueError, match="unknown keys"):
        HypothesisSettings.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="exceed the 10 candidates"):
        learn_hypotheses(np.arange(10.0), models={"a": Linear()}, measure=np.arange(10.0))
    with pytest.raises(ValueError, match="`measure` holds 3 values for 60"):
        learn_hypotheses(X, models={"a": Linear()}, measure=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="measurement at candidate"):
        learn_hypotheses(X, models={"a": Linear()}, measure=np.full(60, np.nan))


MODELS_PY = """
import math
from torch.distributions import LogNormal, Normal
from atomlens.active.structured import parametric_only

def models(seed):
    kw = dict(noise_prior=LogNormal(-3.0, 0.5), restarts=1, rng=seed)
    return {
        "line": parametric_only(lambda x, p: p["a"] + p["b"] * x,
                                {"a": Normal(0.0, 2.0), "b": Normal(0.0, 2.0)}, **kw),
        "parabola": parametric_only(lambda x, p: p["c"] * x**2, {"c": Normal(0.0, 2.0)}, **kw),
        "broken": parametric_only(lambda x, p: p["c"] * x / 0.0 * 0.0, {"c": Normal(0.0, 1.0)},
                                  **kw),
    }
"""


def test_cli_writes_record_winner_and_figures(tmp_path):
    from typer.testing import CliRunner

    from atomlens.cli import app

    x = np.linspace(0.0, 2.0, 41)
    np.savez(tmp_path / "data.npz", candidates=x, values=0.5 * x**2)
    (tmp_path / "models.py").write_text(MODELS_PY)
    args = ["hypotheses", str(tmp_path / "data.npz"), "--models", str(tmp_path / "models.py")]
    args += ["--steps", "3", "--warmup", "1", "--seed-points", "3", "--reward", "lowest"]
    run = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert run.exit_code == 0, run.output
    assert (
        "winner: parabola (c=0.5" in run.output
        and "dropped: broken: ValueError: model 'broken': the log density is NaN" in run.output
    )
    winner = json.loads((tmp_path / "run" / "winner.json").read_text())
    assert winner["winner"] == "parabola" and set(winner["dropped"]) == {"broken"}
    for name in (
        "run.json",
        "path.csv",
        "steps.jsonl",
        "bandit.csv",
        "reconstruction.csv",
        "rewards.png",
        "reconstruction.png",
    ):
        assert (tmp_path / "run" / name).stat().st_size > 0, name
    again = CliRunner().invoke(app, ["replay", str(tmp_path / "run")])
    assert again.exit_code == 0, again.output
    assert "the path and the winner are reproduced exactly" in again.output
    (tmp_path / "models.py").write_text(MODELS_PY.replace('p["c"] * x**2', 'p["c"] * x**3'))
    changed = CliRunner().invoke(app, ["replay", str(tmp_path / "run")])
    assert changed.exit_code == 2 and "changed since the run" in changed.output
    bad = CliRunner().invoke(app, [*args[:2], "--models", "nope.py", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2
    assert "error: nope.py: no such file; pass --models as a .py file" in bad.output
    # figure labels: one per input axis, checked before the run, named as the flag
    labels = ["--axis-label", "x [Å]", "--axis-label", "y [Å]", "--value-label", "E [eV]"]
    two = CliRunner().invoke(app, [*args, *labels, "--out", str(tmp_path / "two")])
    assert two.exit_code == 2 and "--axis-label must be 1 strings" in two.output, two.output
    assert not (tmp_path / "two" / "path.csv").exists()
    one = CliRunner().invoke(app, [*args, *labels[:2], *labels[4:], "--out", str(tmp_path / "one")])
    assert one.exit_code == 0 and (tmp_path / "one" / "reconstruction.png").stat().st_size > 0


def test_figures_of_a_2d_run(tmp_path):
    from atomlens.report.hypotheses_figures import save_hypothesis_figures

    g = np.stack(np.meshgrid(np.arange(8.0), np.arange(6.0)), -1).reshape(-1, 2)  # (x, y) [Å]
    y = 0.5 * g[:, 0]
    settings = HypothesisSettings(steps=2, warmup=1, n_seed=3, seed=0)
    r = learn_hypotheses(g, models={"a": Linear(), "b": Linear(2)}, measure=y, settings=settings)
    files = save_hypothesis_figures(tmp_path, candidates=g, result=r)
    assert [f.name for f in files] == ["rewards.png", "reconstruction.png"]
    assert all(f.read_bytes().startswith(b"\x89PNG") for f in files)
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        save_hypothesis_figures(tmp_path / "none", candidates=g, result=r)


def test_the_2d_maps_carry_the_axis_and_colour_bar_labels(tmp_path):
    """The candidates' and the measured quantity's units reach the maps' axes and colour
    bars when given; without them the labels say what is known and no unit."""
    import matplotlib.pyplot as plt

    from atomlens.report.hypotheses_figures import plot_hypothesis_maps, save_hypothesis_figures

    g = np.stack(np.meshgrid(np.arange(8.0), np.arange(6.0)), -1).reshape(-1, 2)  # (x, y) [Å]
    settings = HypothesisSettings(steps=2, warmup=1, n_seed=3, seed=0)
    r = learn_hypotheses(
        g, models={"a": Linear(), "b": Linear(2)}, measure=g[:, 0], settings=settings
    )
    ax_mean, ax_std = plot_hypothesis_maps(
        g,
        mean=r.mean,
        std=r.std,
        measured=r.measured,
        winner=r.winner,
        axis_labels=("x [Å]", "y [Å]"),
        value_label="Ti offset [pm]",
    )
    for ax in (ax_mean, ax_std):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("x [Å]", "y [Å]")
        assert ax.yaxis_inverted()  # image convention: y down
    assert ax_mean.collections[0].colorbar.ax.get_ylabel() == "mean Ti offset [pm]"
    assert ax_std.collections[0].colorbar.ax.get_ylabel() == "σ of Ti offset [pm]"
    assert ax_mean.get_title() == f"{r.winner}: mean"
    plt.close(ax_mean.figure)
    ax_mean, ax_std = plot_hypothesis_maps(g, mean=r.mean, std=r.std)
    assert (ax_mean.get_xlabel(), ax_mean.get_ylabel()) == ("x", "y")
    assert ax_std.collections[0].colorbar.ax.get_ylabel() == "σ of measured value"
    plt.close(ax_mean.figure)
    with pytest.raises(ValueError, match=r"`axis_labels` must be 2 strings"):
        save_hypothesis_figures(tmp_path, candidates=g, result=r, axis_labels="x [Å]")
    with pytest.raises(ValueError, match=r"must be 2D positions \(M, 2\) for maps"):
        plot_hypothesis_maps(g[:, :1], mean=r.mean, std=r.std)
    files = save_hypothesis_figures(
        tmp_path, candidates=g, result=r, axis_labels=["x [Å]", "y [Å]"], value_label="P [pm]"
    )
    assert files[1].read_bytes().startswith(b"\x89PNG")
    # from files: a wrong count is refused before the run, not after it
    np.savez(tmp_path / "data.npz", candidates=g, values=g[:, 0])
    with pytest.raises(ValueError, match=r"`axis_labels` must be 2 strings, one per candidate"):
        run_hypotheses_files(
            tmp_path / "data.npz", models="unread.py", out=tmp_path / "run", axis_labels=["x"]
        )
    assert not (tmp_path / "run").exists()


def test_the_1d_reconstruction_carries_the_given_labels():
    import matplotlib.pyplot as plt

    from atomlens.report.hypotheses_figures import plot_hypothesis_reconstruction

    settings = HypothesisSettings(steps=2, warmup=1, n_seed=3, seed=0)
    r = learn_hypotheses(X, models={"line": Linear(1)}, measure=Y, settings=settings)
    ax = plot_hypothesis_reconstruction(
        X,
        predictions=r.predictions,
        measured_x=X[r.measured],
        measured_y=r.values_measured,
        axis_label="V [V]",
        value_label="I [nA]",
    )
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("V [V]", "I [nA]")
    plt.close(ax.figure)


def test_the_loop_measures_through_an_instrument_of_the_automated_experiment():
    """Hypotheses learnt from a spectrum image replayed by atomlens.experiment: each
    measurement is the band intensity of the spectrum at the candidate's pixel, and the
    model that generated the cube (a line in x, not a parabola's curvature) wins."""
    from atomlens.active.hypotheses import instrument_measure
    from atomlens.active.scalarizers import BandIntensity
    from atomlens.experiment import SpectrumImageReplay

    energy = np.linspace(0.0, 10.0, 21)
    xs = np.arange(60)
    height = 1.0 + 2.0 * X + 0.05 * np.sin(40 * X)  # the property along the row, as Y
    cube = np.zeros((3, 60, len(energy)))
    cube[1] = height[:, None] * np.exp(-0.5 * ((energy - 5.0) / 0.5) ** 2)[None, :]
    replay = SpectrumImageReplay(cube, energy=energy, pixel_size=0.5)
    band = BandIntensity((3.0, 7.0))
    measure = instrument_measure(replay, np.column_stack([xs, np.ones(60)]), band)
    assert measure(10) == pytest.approx(band(cube[1, 10], energy))
    settings = HypothesisSettings(steps=6, warmup=1, n_seed=3, seed=1)
    models = {"quad": Linear(2), "line": Linear(1)}
    result = learn_hypotheses(X, models=models, measure=measure, settings=settings)
    assert result.winner == "line", result.values
    with pytest.raises(ValueError, match=r"`positions_px` must be \(M, 2\)"):
        instrument_measure(replay, xs, band)


def test_the_simulated_microscope_in_the_loop_and_its_record(tmp_path):
    """Hypotheses about the Si edge's signal along a line through one dopant of the
    simulated microscope (atomlens.experiment): a flat background against a peak whose
    width is the probe's. The peak wins, centred on the dopant with the probe's width
    (1.2 Å), and the record is an instrument run's: pixel positions and the overview."""
    import torch
    from torch.distributions import LogNormal, Normal, Uniform

    from atomlens.active.hypotheses import instrument_measure
    from atomlens.active.record import RunRecord
    from atomlens.active.scalarizers import BandIntensity
    from atomlens.active.structured import parametric_only
    from atomlens.experiment import simulate_sample

    mic = simulate_sample(shape=96, n_dopants=1, seed=0)
    dx, dy = mic.dopants_px[0]
    xs = np.linspace(dx - 20, dx + 20, 41)
    pos = np.column_stack([xs, np.full_like(xs, dy)])
    measure = instrument_measure(mic, pos, BandIntensity((99.0, 115.0)))
    kw = dict(noise_prior=LogNormal(np.log(20.0), 1.0), restarts=2, rng=0)
    b = Normal(1000.0, 1000.0)

    def peak(x, p):
        return p["b"] + p["a"] * torch.exp(-((x - p["c"]) ** 2) / (2 * p["s"] ** 2))

    models = {
        "flat": parametric_only(lambda x, p: p["b"] + 0 * x, {"b": b}, **kw),
        "peak": parametric_only(
            peak,
            {
                "b": b,
                "a": LogNormal(np.log(100.0), 1.5),
                "c": Uniform(-4, 4),
                "s": LogNormal(0, 0.7),
            },
            **kw,
        ),
    }
    x_A = (xs - dx) * mic.pixel_size
    settings = HypothesisSettings(steps=4, warmup=1, n_seed=3, seed=0)
    r = learn_hypotheses(
        x_A,
        models=models,
        measure=measure,
        settings=settings,
        out=tmp_path,
        positions_px=pos,
        overview=mic.overview(),
    )
    assert r.winner == "peak"
    assert abs(r.parameters["c"]["estimate"]) < 0.3  # Å from the dopant
    assert r.parameters["s"]["estimate"] == pytest.approx(mic.spectrum.probe_width_A, abs=0.3)
    table = RunRecord.read(tmp_path).path_table()
    np.testing.assert_allclose(table[["x_px", "y_px"]], pos[r.measured])
    assert np.load(tmp_path / "overview.npy").shape == mic.overview().shape


class Shrinking:
    """A model whose predictive σ is ``c / (points seen)`` everywhere: more data, less doubt."""

    def __init__(self, c):
        self.c = c

    def fit(self, X, y):
        self.n = len(y)
        return self

    def predict(self, X, noise=False):
        m = len(np.asarray(X))
        return np.zeros(m), np.full(m, (self.c / self.n) ** 2)


def test_the_lowest_reward_compares_models_on_the_same_data():
    """B is always surer than A on the same points. 'lowest' pays B every pull and A never;
    'lowest-stale' pays A too, whenever A's newest fit meets B's older one."""
    settings = dict(steps=6, warmup=1, n_seed=3, seed=0, epsilon=0.0)
    fair = learn_hypotheses(
        X,
        models={"A": Shrinking(1.0), "B": Shrinking(0.9)},
        measure=Y,
        settings=HypothesisSettings(**settings, reward="lowest"),
    )
    rewards = {n: [s["reward"] for s in fair.record["steps"] if s["model"] == n] for n in "AB"}
    assert set(rewards["A"]) == {-1.0} and set(rewards["B"]) == {1.0}
    assert fair.winner == "B"
    stale = learn_hypotheses(
        X,
        models={"A": Shrinking(1.0), "B": Shrinking(0.9)},
        measure=Y,
        settings=HypothesisSettings(**settings, reward="lowest-stale"),
    )
    assert 1.0 in [s["reward"] for s in stale.record["steps"] if s["model"] == "A"]
