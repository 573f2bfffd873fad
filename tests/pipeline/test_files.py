"""find_files: folders, globs and stacks in, tables, maps, figures and a report out."""

import numpy as np
import pandas as pd
import pytest

from atomlens.io import expand_inputs
from atomlens.pipeline import find_files
from atomlens.simulate import simulate_image


@pytest.fixture(scope="module")
def frames():
    return np.stack(
        [simulate_image("graphene", shape=96, pixel_size=0.12, rng=s).image for s in (1, 2, 3)]
    ).astype(np.float32)


def test_a_stack_gives_the_atoms_of_its_frames_one_by_one(tiny_model, frames, tmp_path):
    np.save(tmp_path / "stack.npy", frames)
    res = find_files(
        [tmp_path / "stack.npy"], model=tiny_model, out=tmp_path / "o", pixel_size=0.12
    )
    assert res.frames == 3 and sorted(res.atoms["frame"].unique()) == [0, 1, 2]
    for i in range(3):
        np.save(tmp_path / f"f{i}.npy", frames[i])
    one = find_files([tmp_path / "f*.npy"], model=tiny_model, out=tmp_path / "o1", pixel_size=0.12)
    assert len(one.files) == 3
    for i in range(3):
        a = res.atoms[res.atoms["frame"] == i][["x_px", "y_px"]].to_numpy()
        b = one.atoms[one.atoms["file"].str.endswith(f"f{i}.npy")][["x_px", "y_px"]].to_numpy()
        np.testing.assert_array_equal(a, b)
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == [
        "atoms.csv",
        "atoms.parquet",
        "maps.h5",
        "overlay.png",
        "rejected.csv",
        "report.html",
        "uncertainty.png",
    ]
    assert "f0.npy.report.html" in {p.name for p in (tmp_path / "o1").iterdir()}
    csv = pd.read_csv(tmp_path / "o" / "atoms.csv")
    pq = pd.read_parquet(tmp_path / "o" / "atoms.parquet")
    assert len(csv) == len(pq) == len(res.atoms)
    np.testing.assert_allclose(pq["x_A"], csv["x_A"], rtol=1e-5)
    import h5py

    with h5py.File(tmp_path / "o" / "maps.h5") as f:
        fg = f["stack.npy/foreground"]
        assert fg.shape == (3, 96, 96) and fg.attrs["pixel_size_A"] == pytest.approx(0.12)
        assert 0 <= float(np.min(fg[1])) and float(np.max(fg[1])) <= 1.0


def test_report_is_one_self_contained_file(tiny_model, frames, tmp_path):
    np.save(tmp_path / "a.npy", frames[0])
    find_files([tmp_path], model=tiny_model, out=tmp_path / "o", pixel_size=0.12)
    html = (tmp_path / "o" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4  # class, confidence, uncertainty, nn
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "Counts per class" in html and "nearest-neighbour distance" in html
    assert "atomlens 0." in html


def test_bad_inputs_fail_before_any_output(tiny_model, frames, tmp_path):
    np.save(tmp_path / "good.npy", frames[0])
    bad = frames[1].copy()
    bad[5, 7] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match=r"bad\.npy.*NaN"):
        find_files(
            [tmp_path / "good.npy", tmp_path / "bad.npy"],
            model=tiny_model,
            out=tmp_path / "o",
            pixel_size=0.12,
        )
    assert not (tmp_path / "o").exists()
    with pytest.raises(FileNotFoundError, match="matches no file"):
        expand_inputs([tmp_path / "*.tif"])
    noise = np.random.default_rng(0).poisson(50, (96, 96)).astype(np.float32)
    np.save(tmp_path / "noise.npy", noise)
    with pytest.raises(ValueError, match="pixel size"):  # and no lattice to estimate it from
        find_files([tmp_path / "noise.npy"], model=tiny_model, out=tmp_path / "o")


def test_top_level_find_takes_arrays_stacks_and_files(tiny_model, frames, tmp_path):
    import atomlens

    one = atomlens.find(frames[0], model=tiny_model, pixel_size=0.12)
    stack = atomlens.find(frames, model=tiny_model, pixel_size=0.12)
    assert list(stack.columns[:1]) == ["frame"] and stack["frame"].nunique() == 3
    np.testing.assert_array_equal(
        stack[stack["frame"] == 0][["x_px", "y_px"]].to_numpy(), one[["x_px", "y_px"]].to_numpy()
    )
    import tifffile

    tifffile.imwrite(
        tmp_path / "a.tif",
        frames[0],
        imagej=True,
        resolution=(1 / 0.012, 1 / 0.012),
        metadata={"unit": "nm"},
    )
    from_file = atomlens.find(tmp_path / "a.tif", model=tiny_model)
    np.testing.assert_allclose(from_file["x_A"], one["x_A"], atol=1e-6)


def test_maps_without_h5py_are_said_to_be_missing(
    tiny_model, frames, tmp_path, monkeypatch, caplog
):
    import sys

    monkeypatch.setitem(sys.modules, "h5py", None)  # as on a plain install
    np.save(tmp_path / "a.npy", frames[0])
    with caplog.at_level("WARNING"):
        find_files([tmp_path / "a.npy"], model=tiny_model, out=tmp_path / "o", pixel_size=0.12)
    assert not (tmp_path / "o" / "maps.h5").exists()
    assert "maps.h5 is not written: it needs h5py" in caplog.text
    assert (tmp_path / "o" / "atoms.csv").exists()
