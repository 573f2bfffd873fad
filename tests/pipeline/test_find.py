"""The one find: arrays, stacks and files, with settings given at once or one by one; the
CLI and the Python API read a file without calibration the same way."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import atomlens
from atomlens.cli import app
from atomlens.pipeline import FindSettings, find, read_frame_list, read_frames
from atomlens.simulate import simulate_image


@pytest.fixture(scope="module")
def uncalibrated(tmp_path_factory):
    """A graphene image at 0.11 Å/px in a .npy (which holds no calibration)."""
    d = tmp_path_factory.mktemp("uncalibrated")
    sim = simulate_image("graphene", shape=256, pixel_size=0.11, rng=5)
    np.save(d / "a.npy", sim.image.astype(np.float32))
    return d / "a.npy", sim


def test_cli_and_python_read_a_file_without_calibration_alike(
    tiny_model_dir, uncalibrated, tmp_path
):
    path, sim = uncalibrated
    run = CliRunner().invoke(
        app, ["find", str(path), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o")]
    )
    assert run.exit_code == 0, run.output
    cli = pd.read_parquet(tmp_path / "o" / "atoms.parquet")  # full precision
    res = find(path, model=tiny_model_dir)
    assert res.pixel_size == pytest.approx(0.11, rel=0.02)  # estimated from the lattice
    assert len(res.atoms) == len(cli) > 0.9 * len(sim.truth)
    np.testing.assert_allclose(res.atoms[["x_px", "y_px"]], cli[["x_px", "y_px"]], atol=1e-9)
    np.testing.assert_allclose(res.atoms["x_A"], cli["x_A"], rtol=1e-9)
    table = atomlens.find(path, model=tiny_model_dir)
    pd.testing.assert_frame_equal(table, res.atoms)


def test_a_file_without_calibration_or_lattice_fails_alike(tiny_model_dir, tmp_path):
    noise = np.random.default_rng(0).poisson(50, (96, 96)).astype(np.float32)
    np.save(tmp_path / "noise.npy", noise)
    with pytest.raises(ValueError, match="does not say its pixel size and it could not be"):
        find(tmp_path / "noise.npy", model=tiny_model_dir)
    run = CliRunner().invoke(
        app, ["find", str(tmp_path / "noise.npy"), "--model", str(tiny_model_dir), "--out", "o"]
    )
    assert run.exit_code == 2 and "does not say its pixel size" in run.output


def test_settings_at_once_or_one_by_one_give_the_same_atoms(tiny_model):
    im = simulate_image("graphene", shape=96, pixel_size=0.12, rng=2).image
    one_by_one = find(im, model=tiny_model, pixel_size=0.12, threshold=0.4, positions="mean")
    at_once = find(
        im,
        model=tiny_model,
        pixel_size=0.12,
        settings=FindSettings(threshold=0.4, positions="mean"),
    )
    pd.testing.assert_frame_equal(one_by_one.atoms, at_once.atoms)
    default = find(im, model=tiny_model, pixel_size=0.12)
    assert not np.allclose(default.atoms["x_px"].to_numpy()[:5], at_once.atoms["x_px"][:5])
    with pytest.raises(ValueError, match="either settings or the separate keywords"):
        find(im, model=tiny_model, pixel_size=0.12, settings=FindSettings(), p_min=0.9)


def test_arrays_stacks_and_several_files(tiny_model, tmp_path):
    frames = np.stack(
        [simulate_image("graphene", shape=96, pixel_size=0.12, rng=s).image for s in (1, 2)]
    ).astype(np.float32)
    single = find(frames[:1], model=tiny_model, pixel_size=0.12)  # (1, H, W): one image
    assert single.prediction is not None and "frame" not in single.atoms
    stack = find(frames, model=tiny_model, pixel_size=0.12)
    assert stack.prediction is None and list(stack.atoms.columns[:1]) == ["frame"]
    assert list(stack.rejected.columns[:1]) == ["frame"]
    for i in range(2):
        np.save(tmp_path / f"f{i}.npy", frames[i])
    files = find(sorted(tmp_path.glob("f*.npy")), model=tiny_model, pixel_size=0.12)
    assert list(files.atoms.columns[:2]) == ["file", "frame"]
    for i in range(2):
        a = stack.atoms[stack.atoms["frame"] == i][["x_px", "y_px"]].to_numpy()
        b = files.atoms[files.atoms["file"].str.endswith(f"f{i}.npy")][["x_px", "y_px"]]
        np.testing.assert_array_equal(a, b.to_numpy())
    with pytest.raises(ValueError, match="pixel_size"):
        find(frames[0], model=tiny_model)  # an array says nothing about its sampling


def test_read_frames_expands_folders_and_keeps_stacks_lazy(tiny_model, tmp_path):
    frames = np.stack(
        [simulate_image("graphene", shape=96, pixel_size=0.12, rng=s).image for s in (1, 2)]
    ).astype(np.float32)
    np.save(tmp_path / "stack.npy", frames)
    np.save(tmp_path / "one.npy", frames[0])
    images = read_frames(tmp_path, model=tiny_model, pixel_size=0.12)
    assert [im.path.name for im in images] == ["one.npy", "stack.npy"]
    assert [im.n_frames for im in images] == [1, 2] and images[1].is_stack
    assert all(im.pixel_size == 0.12 and im.pixel_size_source == "user" for im in images)
    got, ps = read_frame_list([tmp_path / "stack.npy"], model=tiny_model, pixel_size=0.12)
    assert ps == 0.12 and len(got) == 2
    np.testing.assert_array_equal(got[1], frames[1])
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_frames([tmp_path / "missing.tif"], model=tiny_model)
    with pytest.raises(ValueError, match="smaller than the model can look at"):
        read_frames([tmp_path / "one.npy"], model=tiny_model, pixel_size=0.01)


def test_a_list_of_images_is_a_stack_and_a_stack_result_can_be_saved(tiny_model, tmp_path):
    from atomlens.pipeline import save_find_results

    frames = [simulate_image("graphene", shape=96, pixel_size=0.12, rng=s).image for s in (1, 2)]
    listed = find(frames, model=tiny_model, pixel_size=0.12)
    stacked = find(np.stack(frames), model=tiny_model, pixel_size=0.12)
    pd.testing.assert_frame_equal(listed.atoms, stacked.atoms)
    out = save_find_results(tmp_path / "o", frames[0], listed, pixel_size=0.12)
    assert sorted(p.name for p in out.iterdir()) == ["atoms.csv", "overlay.png", "rejected.csv"]
    assert len(pd.read_csv(out / "atoms.csv")) == len(listed.atoms)


@pytest.mark.parametrize(("pixel_size", "factor"), [(5, "25×"), (20, "100×")])
def test_cli_refuses_a_pixel_size_the_model_cannot_use_before_any_work(
    tmp_path, pixel_size, factor
):
    """A user's first hour: 5 Å/px on a 256² image hung for 12 min at 2.9 GB, 20 Å/px
    crashed allocating 31 GB; both are refused at once, naming the numbers and the fix."""
    np.save(tmp_path / "img.npy", np.random.default_rng(0).random((256, 256), np.float32))
    r = CliRunner().invoke(
        app,
        ["find", str(tmp_path / "img.npy"), "--pixel-size", str(pixel_size), "--out", "o"],
    )
    assert r.exit_code == 2, r.output
    msg = r.output.strip().splitlines()[-1]
    assert msg.startswith("atomlens: error: ") and "img.npy" in msg
    assert f"up-sampled {factor} to the model's 0.2 Å/px" in msg
    assert "more than the 4× it can use (up to 0.8 Å/px)" in msg
    assert "above about 1 Å/px no atoms are resolved" in msg
    assert "Check --pixel-size and its unit" in msg
    assert not (tmp_path / "o").exists()


def test_python_find_refuses_up_sampling_and_oversized_frames(tiny_model):
    from atomlens.elit.stream.source import Item, checked_frame
    from atomlens.ensemble import Ensemble

    img = simulate_image("graphene", shape=96, pixel_size=0.12, rng=1).image
    with pytest.raises(ValueError, match=r"up-sampled 80× to the model's 0.25 Å/px.*4×"):
        atomlens.find(img, pixel_size=20, model=tiny_model)
    with pytest.raises(ValueError, match=r"up-sampled 20×"):
        atomlens.find_atoms(img, pixel_size=5, model=tiny_model)
    ens = Ensemble.from_models([tiny_model, tiny_model])
    with pytest.raises(ValueError, match=r"up-sampled 20×"):  # adapt/select predict so
        ens.predict_members(img, pixel_size=5)
    item = Item(0, "frame 0", img.astype(np.float32), 5.0)
    with pytest.raises(ValueError, match=r"up-sampled 20×"):  # a stream skips the frame
        checked_frame(item, model_pixel_size=0.25, n_maps=ens.n_maps)
    # exactly 4× is allowed; the probability maps at the model's sampling are what is
    # bounded: 6000² px at 1 Å/px is 24000² px there
    big = np.zeros((6000, 6000), np.float32)  # untouched: never written
    with pytest.raises(ValueError, match=r"24000×24000 px .* 4 probability maps .* 8\.58 GiB"):
        ens.predict_members(big, pixel_size=1.0)


def test_sane_pixel_sizes_pass_the_resampling_check():
    from atomlens.bundled import BUNDLED_DIR, bundled_models
    from atomlens.ensemble import Ensemble
    from atomlens.pipeline import check_resampling

    for name in bundled_models():
        ens = Ensemble.load(BUNDLED_DIR / name)
        for ps in (0.05, 0.1, 0.2, 0.3):
            check_resampling((4096, 4096), ps, ens.config.pixel_size_A, n_maps=ens.n_maps)
        check_resampling((1024, 1024), 0.8, ens.config.pixel_size_A, n_maps=ens.n_maps)  # 4×
        with pytest.raises(ValueError, match="more than the 4×"):
            check_resampling((256, 256), 0.81, ens.config.pixel_size_A, n_maps=ens.n_maps)
        with pytest.raises(ValueError, match=r"Crop it into pieces of at most \d+×\d+ px"):
            check_resampling((8192, 8192), 0.6, ens.config.pixel_size_A, n_maps=ens.n_maps)


def test_adapt_and_select_inputs_are_checked_when_read(tiny_model, tmp_path):
    np.save(tmp_path / "one.npy", np.random.default_rng(0).random((96, 96), np.float32))
    with pytest.raises(ValueError, match=r"one\.npy: at 5 Å/px .* up-sampled 20×"):
        read_frame_list([tmp_path / "one.npy"], model=tiny_model, pixel_size=5)


def test_every_find_entry_point_refuses_an_unknown_precision():
    from atomlens.pipeline import find_atoms, find_frames

    im = np.zeros((64, 64), np.float32)
    for call in (
        lambda: find(im, model="graphene", pixel_size=0.2, precision="fp16"),
        lambda: find_atoms(im, model="graphene", pixel_size=0.2, precision="fp16"),
        lambda: find_frames(im[None], model="graphene", pixel_size=0.2, precision="fp16"),
    ):
        with pytest.raises(ValueError, match="`precision` must be 'auto', 'float32' or"):
            call()


def test_find_atoms_takes_the_models_own_sigma_model(tiny_model, tmp_path):
    """A single calibrated model's σ model makes find_atoms' σ, as it makes find's (it got
    the default one, with which positions="auto" took a biased network on clean
    high-dose frames: graphene at 1e6 e/Å², 1.81 pm against the fit's 0.50 pm in
    benchmarks/accuracy_vs_dose.py)."""
    from dataclasses import replace

    from atomlens.ensemble import Calibration, Model

    sim = simulate_image("graphene", shape=128, pixel_size=0.12, rng=2)
    kw = {"pixel_size": 0.12, "positions": "network"}
    plain = Model(tiny_model.network, tiny_model.config)
    plain.calibration = None
    before = atomlens.find_atoms(sim.image, model=plain, **kw)
    assert len(before) > 50
    cal = Calibration(
        p_detect=[1.0], p_real=[1.0], counts=[1], sigma_scale=1.0, ece_raw=0.0, n_images=1
    )
    flat = replace(cal, sigma_model={"fit": [1.0, 0.0, 0.0], "network": [0.0, 0.0, 0.25]})
    plain.calibration = flat
    ours = atomlens.find_atoms(sim.image, model=plain, **kw)
    net = ours["position_source"] == "network"
    assert net.mean() > 0.8
    np.testing.assert_allclose(ours.loc[net, "sigma_x_A"], 0.25)  # c alone: 0.25 Å
    assert not np.allclose(before.loc[net, "sigma_x_A"], 0.25)
    # and the same from its directory, through find_atoms' path for an ensemble of one
    plain.save(tmp_path / "m")
    again = atomlens.find_atoms(sim.image, model=tmp_path / "m", **kw)
    np.testing.assert_allclose(again.loc[net, "sigma_x_A"], 0.25)
