"""The live loop: atoms per frame, corrupt frames skipped, drift detected and acted on."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from atomlens.cli import app
from atomlens.elit.stream import FrameRecord, StreamConfig, ood_score, stream
from atomlens.ensemble import Ensemble
from atomlens.metrics import match_points
from atomlens.nn import UNet
from atomlens.simulate import Background, GaussianProbe, ImagingConditions, simulate_image

PS = 0.25  # the tiny model's own sampling [Å/px]
SIDE = 96  # [px]
# a probe twice as wide as in training: members that agree on training-like frames
# disagree ≈ 2.5× more here (measured: ratio 2.4–2.7 against 0.9–1.0 for good frames)
SHIFTED = ImagingConditions(probe=GaussianProbe(fwhm_A=1.6))


@pytest.fixture(scope="module")
def ens4(tiny_model):
    """Four members: the tiny model with 2 % multiplicative weight noise each."""
    g = torch.Generator().manual_seed(0)
    nets = []
    for _ in range(4):
        net = UNet(tiny_model.config.architecture)
        net.load_state_dict(tiny_model.network.state_dict())
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(1 + 0.02 * torch.randn(p.shape, generator=g))
        nets.append(net.eval())
    return Ensemble(nets, tiny_model.config, [{"member": k} for k in range(4)])


@pytest.fixture(scope="module")
def good():
    return [simulate_image("graphene", shape=SIDE, pixel_size=PS, rng=s) for s in range(4)]


@pytest.fixture(scope="module")
def shifted():
    return [
        simulate_image("graphene", shape=SIDE, pixel_size=PS, rng=20 + s, conditions=SHIFTED).image
        for s in range(4)
    ]


def events(st, name=None):
    return [d for d in st.decisions if name is None or d["event"] == name]


def f1(atoms: pd.DataFrame, truth: pd.DataFrame) -> float:
    a = atoms[["x_px", "y_px"]].to_numpy(float)
    t = truth[["x_px", "y_px"]].to_numpy(float)
    return 2 * len(match_points(a, t, radius=0.5 / PS).pred_index) / (len(a) + len(t))


def test_frames_in_memory_give_atoms_and_corrupt_ones_are_skipped(ens4, good, tmp_path, caplog):
    frames = [
        good[0].image,
        np.full((SIDE, SIDE), np.nan, np.float32),  # NaN image
        good[1].image,
        np.zeros(SIDE),  # wrong shape
        good[2].image,
    ]
    out = tmp_path / "run"
    cfg = StreamConfig(patience=2, window=3)
    with caplog.at_level(logging.WARNING, logger="atomlens.elit.stream"):
        st = stream(ens4, frames, pixel_size=PS, config=cfg, out=out)
        recs = list(st)
    assert [r.index for r in recs] == [0, 2, 4]
    for r, sim in zip(recs, [good[0], good[1], good[2]], strict=True):
        assert isinstance(r, FrameRecord)
        assert f1(r.atoms, sim.truth) > 0.95
        assert r.n_atoms == len(r.atoms) and abs(r.n_atoms - len(sim.truth)) <= 0.05 * len(
            sim.truth
        )
        assert r.latency_s > 0 and r.members == (0, 1, 2, 3) and r.generation == 0
        assert 0.5 < r.ratio < cfg.drift_ratio and not r.over  # in distribution
    skipped = events(st, "frame_skipped")
    assert [d["frame"] for d in skipped] == [1, 3]
    assert "NaN" in skipped[0]["reason"] and "2-D" in skipped[1]["reason"]
    assert "frame 1" in caplog.text and "frame 3" in caplog.text
    # in-distribution frames alone trigger nothing
    assert [d["event"] for d in st.decisions] == ["baseline", "frame_skipped", "frame_skipped"]
    base = events(st, "baseline")[0]
    assert base["source"] == "simulated" and len(base["scores"]) == 3
    # outputs: one row per atom and per frame, every decision
    atoms = pd.read_csv(out / "atoms.csv")
    assert atoms.columns[0] == "frame"
    assert atoms.groupby("frame").size().to_dict() == {r.index: r.n_atoms for r in recs}
    table = pd.read_csv(out / "frames.csv")
    assert table["frame"].tolist() == [0, 2, 4]
    assert np.allclose(table["score"], [r.score for r in recs], rtol=1e-5)
    lines = (out / "decisions.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["event"] for x in lines] == [d["event"] for d in st.decisions]


def test_drift_is_detected_and_the_best_members_take_over(ens4, good, shifted):
    frames = [g.image for g in good[:3]] + shifted
    cfg = StreamConfig(patience=2, window=3, drift_ratio=2.0, on_drift="select", n_best=2)
    st = stream(ens4, frames, pixel_size=PS, config=cfg)
    recs = list(st)
    assert len(recs) == 7
    assert not any(r.over for r in recs[:3]) and all(r.over for r in recs[3:5])
    drift = events(st, "drift")
    assert len(drift) == 1 and drift[0]["frame"] == 4  # 2nd shifted frame: patience 2
    assert drift[0]["ratio"] > cfg.drift_ratio and drift[0]["drift_ratio"] == cfg.drift_ratio
    assert drift[0]["recent_frames"] == [2, 3, 4]
    switch = events(st, "switch")
    assert len(switch) == 1 and switch[0]["cause"] == "select" and switch[0]["frame"] == 4
    assert switch[0]["frames"] == [3, 4]  # selected on the drifted frames of the window
    chosen = tuple(switch[0]["members"])
    assert len(chosen) == 2 and len(switch[0]["ranking"]) == 4
    # the switch is immediate: the next frame runs on the chosen members only
    assert all(r.members == (0, 1, 2, 3) for r in recs[:5])
    assert all(r.members == chosen for r in recs[5:])
    assert len(st.ensemble) == 2
    # and the baseline was measured again for them
    assert [d["reason"] for d in events(st, "baseline")] == ["start", "the active ensemble changed"]


def test_p_real_min_rejects_while_the_members_are_calibrated(ens4, good, shifted):
    """With ``p_real_min`` the stream rejects as ``find`` does while its ensemble is
    calibrated; selected members have no calibration of their own, and the stream says it
    stops rejecting instead of failing on every frame."""
    from dataclasses import replace

    from atomlens.pipeline import find
    from atomlens.train import fit_calibration

    # calibrated where it errs (a lower dose and a film), so that p_real tells something
    hard = ImagingConditions(dose_e_per_A2=5e3, background=Background(film_thickness_A=3.0))
    cal_sims = [
        simulate_image("graphene", shape=SIDE, pixel_size=PS, rng=40 + s, conditions=hard)
        for s in range(3)
    ]
    ens = Ensemble(ens4.networks, ens4.config, ens4.member_provenance)
    with pytest.raises(ValueError, match="needs a calibrated ensemble"):
        stream(ens, [good[0].image], pixel_size=PS, config=StreamConfig(p_real_min=0.5))
    ens.calibration = fit_calibration(
        ens, [c.image for c in cal_sims], [c.truth for c in cal_sims], [PS] * 3
    )
    cut = 0.9  # high enough to reject some candidates of these frames
    frames = [g.image for g in good[:3]] + shifted
    cfg = StreamConfig(patience=2, window=3, on_drift="select", n_best=2, p_real_min=cut)
    st = stream(ens, frames, pixel_size=PS, config=cfg)
    recs = list(st)
    for r, frame in zip(recs[:5], frames[:5], strict=True):  # all four members, calibrated
        want = find(frame, model=ens, pixel_size=PS, p_real_min=cut)
        assert r.n_atoms == len(want.atoms) and (r.atoms["p_real"] >= cut).all()
    plain = [find(f, model=ens, pixel_size=PS).atoms for f in frames[:5]]
    assert any((a["p_real"] < cut).any() for a in plain), "the test needs candidates below"
    off = events(st, "p_real_off")
    assert len(off) == 1 and off[0]["frame"] == events(st, "switch")[0]["frame"] == 4
    assert all(len(r.members) == 2 for r in recs[5:])  # and they ran without failing
    # "auto" needs the F1 per threshold, which an older calibration lacks
    ens.calibration = replace(ens.calibration, f1=None, p_real_thresholds=None)
    with pytest.raises(ValueError, match="F1 of each p_real threshold"):
        stream(ens, [good[0].image], pixel_size=PS, config=StreamConfig(p_real_min="auto"))
    with pytest.raises(ValueError, match="p_real_min"):
        StreamConfig(p_real_min=1.5)


def _fake_adapt(calls, go=None):
    def fn(ensemble, frames, *, pixel_size, config):
        calls.append(
            {"thread": threading.current_thread().name, "frames": len(frames), "ps": pixel_size}
        )
        if go is not None:
            assert go.wait(10), "the stream blocked on the adaptation"
        return Ensemble(ensemble.networks, ensemble.config, [{"adapted": True}] * len(ensemble))

    return fn


def test_adapt_runs_in_the_background_and_is_swapped_in(ens4, good, shifted):
    calls: list[dict] = []
    go = threading.Event()
    frames = [g.image for g in good[:2]] + shifted  # drift declared at frame 3
    cfg = StreamConfig(patience=2, window=3, on_drift="adapt")
    submitted = []

    class Counting(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            fut = super().submit(fn, *args, **kwargs)
            submitted.append(fut)
            return fut

    with Counting(1) as ex:
        st = stream(
            ens4,
            frames,
            pixel_size=PS,
            config=cfg,
            adapt_fn=_fake_adapt(calls, go),
            executor=ex,
        )
        recs = []
        for r in st:
            recs.append(r)
            if r.index == 4:
                # the adaptation launched at frame 3 is still waiting: the stream went on
                assert [d["event"] for d in events(st, "adapt_launched")] == ["adapt_launched"]
                assert not events(st, "adapt_finished")
                go.set()
                submitted[0].result(timeout=10)  # finished before frame 5 comes in
    assert len(submitted) >= 1
    launched = events(st, "adapt_launched")[0]
    assert launched["frame"] == 3 and launched["frames"] == [2, 3]
    assert calls[0]["thread"] != threading.current_thread().name
    assert calls[0]["frames"] == 2 and calls[0]["ps"] == PS
    finished = events(st, "adapt_finished")[0]
    assert finished["frame"] == 5 and finished["launched_at"] == 3
    # swapped in at the next frame, baseline measured again for it
    assert [r.generation for r in recs] == [0, 0, 0, 0, 0, 1]
    assert any(d["cause"] == "adapt" and d["frame"] == 5 for d in events(st, "switch"))
    assert events(st, "baseline")[-1]["generation"] >= 1
    assert st.ensemble.member_provenance[0] == {"adapted": True}
    # the new ensemble's baseline was scored in the adaptation's job, not by the loop at
    # frame 5, and it is what the loop would have measured (the same members here)
    first, swapped = events(st, "baseline")[0], events(st, "baseline")[-1]
    assert swapped["measured_in"] == "background" and "measured_in" not in first
    assert swapped["scores"] == pytest.approx(first["scores"], rel=1e-6)


def test_baseline_scores_made_elsewhere_are_refused_for_other_frames(ens4, good):
    """Scores an adaptation made on the baseline frames of its launch are taken only while
    those frames are the baseline's (a new pixel size makes new frames)."""
    from atomlens.elit.stream.scoring import Baseline

    b = Baseline(StreamConfig(), [])
    b.prepare(ens4, 0, (SIDE, SIDE), PS)
    v = b.version
    assert b.accept([0.1, 0.2, 0.3], version=v) == [0.1, 0.2, 0.3] and b.level == 0.2
    b.prepare(ens4, 5, (SIDE, SIDE), PS * 1.1)  # another sampling: frames made again
    assert b.version == v + 1
    with pytest.raises(ValueError, match="version"):
        b.accept([0.1, 0.2, 0.3], version=v)


def test_one_adaptation_at_a_time_and_the_last_is_waited_for(ens4, good, shifted):
    calls: list[dict] = []
    go = threading.Event()
    # drift (launch), recovery, drift again while the first is still running
    frames = [good[0].image, shifted[0], shifted[1], good[1].image, good[2].image]
    frames += [shifted[2], shifted[3]]
    cfg = StreamConfig(patience=2, window=2, on_drift="adapt")
    st = stream(ens4, frames, pixel_size=PS, config=cfg, adapt_fn=_fake_adapt(calls, go))
    for r in st:
        if r.index == 6:
            go.set()
    names = [d["event"] for d in st.decisions if d["event"] != "baseline"]
    assert names[:5] == ["drift", "adapt_launched", "recovered", "drift", "adapt_busy"]
    assert len(calls) == 1
    # the source ended with the adaptation running: waited for and swapped in
    end = events(st, "adapt_finished")[0]
    assert end["frame"] == 6 and end["at_end"] and end["swapped"]
    assert st.ensemble.member_provenance[0] == {"adapted": True}


def test_a_failing_adaptation_is_reported_and_the_stream_goes_on(ens4, good, shifted):
    def broken(ensemble, frames, *, pixel_size, config):
        raise RuntimeError("out of memory")

    frames = [good[0].image, *shifted[:3]]
    cfg = StreamConfig(patience=2, window=2, on_drift="adapt")
    st = stream(ens4, frames, pixel_size=PS, config=cfg, adapt_fn=broken)
    assert len(list(st)) == 4
    failed = events(st, "adapt_failed")
    assert len(failed) == 1 and "out of memory" in failed[0]["error"]
    assert st.ensemble is ens4


def _write_npy_slowly(path, a, pause):
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    raw = buf.getvalue()
    with open(path, "wb") as fh:  # half now, the rest later: must not be read half-way
        fh.write(raw[: len(raw) // 2])
        fh.flush()
        time.sleep(pause)
        fh.write(raw[len(raw) // 2 :])


def test_a_growing_directory_is_followed_until_idle(ens4, good, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="atomlens.elit.stream")
    d = tmp_path / "incoming"
    d.mkdir()
    np.save(d / "a.npy", good[0].image)  # there before the stream starts

    def writer():
        time.sleep(0.2)
        (d / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        (d / "notes.txt").write_text("ignored")
        time.sleep(0.1)
        _write_npy_slowly(d / "c.npy", good[1].image, pause=0.1)
        time.sleep(0.2)
        np.save(d / "d.npy", np.stack([good[2].image, good[3].image]))  # a stack

    cfg = StreamConfig(poll_s=0.05, settle_s=0.5, idle_timeout_s=0.6, on_drift="none")
    t = threading.Thread(target=writer)
    t.start()
    st = stream(ens4, d, pixel_size=PS, config=cfg)
    recs = list(st)
    t.join()
    assert [r.name for r in recs] == ["a.npy", "c.npy", "d.npy[0]", "d.npy[1]"]
    for r, sim in zip(recs, good, strict=True):
        assert f1(r.atoms, sim.truth) > 0.95
    skipped = events(st, "frame_skipped")
    assert len(skipped) == 1 and skipped[0]["name"] == "b.png"
    # stopped on the idle timeout (not on a fixed count); no wall-clock bound: a loaded
    # machine (12 test workers on one GPU) took 5.4 s where 2 CPU cores take 2
    assert any("the stream ends" in r.getMessage() for r in caplog.records)


def test_a_stack_file_is_read_frame_by_frame_and_baselines_from_the_stream(ens4, good, tmp_path):
    p = tmp_path / "stack.npy"
    np.save(p, np.stack([g.image for g in good]))
    cfg = StreamConfig(baseline="first", baseline_frames=2, on_drift="none")
    st = stream(ens4, p, pixel_size=PS, config=cfg)
    recs = list(st)
    assert [r.name for r in recs] == [f"stack.npy[{i}]" for i in range(4)]
    base = events(st, "baseline")
    assert len(base) == 1 and base[0]["frame"] == 1 and base[0]["source"] == "first"
    assert np.isnan(recs[0].ratio) and np.isfinite(recs[2].ratio)
    assert base[0]["baseline"] == pytest.approx(np.median([recs[0].score, recs[1].score]))
    ref = stream(
        ens4,
        [good[0].image],
        pixel_size=PS,
        config=StreamConfig(baseline="reference"),
        reference=[good[3].image],
    )
    rec = next(iter(ref))
    assert events(ref, "baseline")[0]["source"] == "reference"
    assert 0.5 < rec.ratio < 2.0


def test_ood_score_rises_off_distribution(ens4, good, shifted):
    from atomlens.pipeline import find

    s_good = ood_score(find(good[0].image, model=ens4, pixel_size=PS).prediction)
    s_bad = ood_score(find(shifted[0], model=ens4, pixel_size=PS).prediction)
    assert s_bad > 2 * s_good > 0


def test_config_and_arguments_are_checked(ens4, good, tmp_path):
    with pytest.raises(ValueError, match=r"drift_ratio.*window.*on_drift"):
        StreamConfig(drift_ratio=1.0, window=1, patience=2, on_drift="retrain")
    cfg = StreamConfig(drift_ratio=3.0, on_drift="both")
    assert StreamConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown StreamConfig keys"):
        StreamConfig.from_dict({"treshold": 2.0})
    with pytest.raises(ValueError, match="pixel_size"):
        stream(ens4, [good[0].image])
    with pytest.raises(ValueError, match="baseline='reference'"):
        stream(ens4, [good[0].image], pixel_size=PS, reference=[good[1].image])
    with pytest.raises(ValueError, match="n_best"):
        stream(ens4, [good[0].image], pixel_size=PS, config=StreamConfig(n_best=5))
    with pytest.raises(FileNotFoundError):
        stream(ens4, tmp_path / "missing", pixel_size=PS)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        stream(ens4, [good[0].image], pixel_size=PS, out=tmp_path / "full")


def test_cli_streams_a_folder(tiny_model_dir, good, tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    for i in range(2):
        np.save(d / f"f{i}.npy", good[i].image)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "stream",
            str(d),
            "--model",
            str(tiny_model_dir),
            "--pixel-size",
            str(PS),
            "--idle-timeout",
            "0.2",
            "--on-drift",
            "none",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [x for x in result.output.splitlines() if "atoms" in x and "ms" in x]
    assert len(lines) == 2 and "f0.npy" in lines[0] and "f1.npy" in lines[1]
    assert len(pd.read_csv(out / "frames.csv")) == 2
    bad = CliRunner().invoke(app, ["stream", str(d / "nope"), "--model", str(tiny_model_dir)])
    assert bad.exit_code == 2 and "no such file" in bad.output
    args = ["stream", str(d), "--model", str(tiny_model_dir), "--pixel-size", str(PS)]
    bad = CliRunner().invoke(app, [*args, "--p-real-min", "auto"])  # not calibrated
    assert bad.exit_code == 2 and "needs a calibrated ensemble" in bad.output, bad.output
    bad = CliRunner().invoke(app, [*args, "--p-real-min", "half"])
    assert bad.exit_code == 2 and "must be a number" in bad.output, bad.output
