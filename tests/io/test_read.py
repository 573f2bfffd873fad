"""Reading real files of every format, with their pixel size, lazily for stacks."""

from pathlib import Path

import numpy as np
import pytest

from atomlens.io import read, read_image

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
RNG = np.random.default_rng(0)
DATA = RNG.random((32, 48)).astype(np.float32)


def test_imagej_tiff_calibration_is_read(tmp_path):
    import tifffile

    tifffile.imwrite(
        tmp_path / "a.tif",
        DATA,
        imagej=True,
        resolution=(1 / 0.0123, 1 / 0.0123),
        metadata={"unit": "nm"},
    )
    im = read_image(tmp_path / "a.tif")
    assert im.pixel_size == pytest.approx(0.123, rel=1e-4)
    assert im.pixel_size_source == "metadata"
    np.testing.assert_array_equal(im.data, DATA)
    assert read_image(tmp_path / "a.tif", pixel_size=0.2).pixel_size_source == "user"


def test_ome_tiff_calibration_is_read(tmp_path):
    import tifffile

    tifffile.imwrite(
        tmp_path / "a.ome.tif",
        DATA,
        ome=True,
        metadata={"PhysicalSizeX": 0.0456, "PhysicalSizeXUnit": "nm", "axes": "YX"},
    )
    assert read(tmp_path / "a.ome.tif").pixel_size == pytest.approx(0.456)


def test_npy_has_no_calibration(tmp_path):
    np.save(tmp_path / "a.npy", DATA)
    im = read_image(tmp_path / "a.npy")
    assert im.pixel_size is None and im.pixel_size_source == "unknown"
    assert read(tmp_path / "a.npy", pixel_size=0.1).pixel_size == 0.1


@pytest.mark.skipif(not REAL.exists(), reason="../shared/data/real is not here")
def test_srtio3_hyperspy_file_gives_9_33_pm_per_px():
    im = read(REAL / "srtio3_atomap" / "SrTiO3_ADF.hspy")
    assert im.pixel_size == pytest.approx(0.0933, abs=5e-4)  # 9.33 pm/px
    assert im.pixel_size_source == "metadata"
    assert "nm" in im.metadata["pixel_size_assumption"]  # the file gives no unit
    assert im.data.shape == (400, 380) and im.data.dtype == np.float32
    assert np.isfinite(im.data).all() and im.data.std() > 0


@pytest.mark.skipif(not REAL.exists(), reason="../shared/data/real is not here")
def test_real_png_reads_as_grey():
    im = read(REAL / "atomsegnet" / "Grain_boundry_gold_512px.png")
    assert im.data.ndim == 2 and im.pixel_size is None


def _signal(data, scale, units, nav=0, title="HAADF"):
    axes = [
        {
            "name": f"n{i}",
            "size": data.shape[i],
            "scale": 1.0,
            "offset": 0.0,
            "units": "s",
            "navigate": True,
        }
        for i in range(nav)
    ]
    axes += [
        {
            "name": n,
            "size": data.shape[nav + i],
            "scale": scale,
            "offset": 0.0,
            "units": units,
            "navigate": False,
        }
        for i, n in enumerate("yx")
    ]
    return {
        "data": data,
        "axes": axes,
        "metadata": {"General": {"title": title}, "Signal": {"signal_type": ""}},
        "original_metadata": {"Microscope": {"Voltage": "300 kV"}},
        "tmp_parameters": {},
        "attributes": {"_lazy": False},
        "package_info": {"name": "atomlens-tests", "version": "0"},
        "learning_results": {},
        "models": {},
    }


def test_hyperspy_image_and_lazy_stack_written_by_rosettasciio(tmp_path, monkeypatch):
    from rsciio.hspy import file_writer

    file_writer(str(tmp_path / "a.hspy"), _signal(DATA, 0.0123, "nm"))
    im = read(tmp_path / "a.hspy")
    assert im.pixel_size == pytest.approx(0.123)
    assert im.signal_type == "HAADF"
    np.testing.assert_allclose(im.data, DATA)
    stack = RNG.random((5, 16, 20)).astype(np.float32)
    file_writer(str(tmp_path / "s.hspy"), _signal(stack, 12.3, "pm", nav=1))
    monkeypatch.setattr("atomlens.io.rsciio_files.LAZY_ABOVE_BYTES", 0)  # as if large
    st = read(tmp_path / "s.hspy")
    import dask.array as da

    assert isinstance(st.data, da.Array) and st.n_frames == 5 and st.shape == (16, 20)
    assert st.data.chunks[0] == (1,) * 5  # one frame per chunk
    assert st.pixel_size == pytest.approx(0.123)
    np.testing.assert_allclose(st.frame(3), stack[3])


def test_berkeley_emd_written_by_rosettasciio(tmp_path):
    from rsciio.emd import file_writer

    file_writer(str(tmp_path / "a.emd"), _signal(DATA, 0.5, "Å", title="BF"))
    im = read(tmp_path / "a.emd")
    assert im.pixel_size == pytest.approx(0.5)
    np.testing.assert_allclose(im.data, DATA)


def test_mrc(tmp_path):
    import mrcfile

    with mrcfile.new(tmp_path / "a.mrc") as m:
        m.set_data(DATA)
        m.voxel_size = 0.75  # MRC voxel sizes are in Å
    im = read(tmp_path / "a.mrc")
    np.testing.assert_allclose(im.data, DATA)
    assert im.pixel_size == pytest.approx(0.75, rel=1e-3)


def test_dm_and_ser_signals_become_images():
    """No DM/SER writer exists; their readers return the same signal dictionaries."""
    from atomlens.io.rsciio_files import _choose, signal_to_image_parts

    sigs = [
        _signal(DATA[:, :5, None] * np.ones(3), 1.0, "eV", title="EELS"),
        _signal(DATA, 0.02, "µm", title="DF4-A"),
        _signal(DATA * 2, 0.01, "nm", title="HAADF"),
    ]
    sigs[0]["axes"][-1]["navigate"] = True  # a spectrum: one signal axis only
    sigs[0]["axes"] = [
        *sigs[0]["axes"][:2],
        {"name": "E", "size": 3, "scale": 1.0, "offset": 0, "units": "eV", "navigate": False},
    ]
    chosen = _choose(sigs, Path("x.dm4"), None)
    parts = signal_to_image_parts(chosen, Path("x.dm4"))
    assert parts["signal_type"] == "HAADF" and parts["pixel_size"] == pytest.approx(0.1)
    df = signal_to_image_parts(_choose(sigs, Path("x.dm4"), "DF4"), Path("x.dm4"))
    assert df["pixel_size"] == pytest.approx(200.0)  # 0.02 µm


def test_tiff_and_npy_stacks_stay_lazy(tmp_path):
    import dask.array as da
    import tifffile

    stack = RNG.random((6, 24, 24)).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", stack, imagej=True, metadata={"axes": "TYX"})
    np.save(tmp_path / "s.npy", stack)
    for name in ("s.tif", "s.npy"):
        st = read(tmp_path / name)
        assert isinstance(st.data, da.Array) and st.n_frames == 6, name
        np.testing.assert_array_equal(st.frame(4), stack[4])
    with pytest.raises(ValueError, match="stack of 6 frames"):
        read_image(tmp_path / "s.npy")


def test_plain_hdf5_stack(tmp_path):
    import h5py

    stack = RNG.random((4, 16, 16)).astype(np.float32)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        ds = f.create_dataset("movie/frames", data=stack)
        ds.attrs["pixel_size"] = 0.0789
        ds.attrs["pixel_size_unit"] = "nm"
    st = read(tmp_path / "s.h5")
    assert st.n_frames == 4 and st.pixel_size == pytest.approx(0.789)
    np.testing.assert_array_equal(st.frame(1), stack[1])


def test_colour_png_is_converted_and_16_bit_png_kept(tmp_path):
    from PIL import Image as PILImage

    rgb = (RNG.random((20, 30, 3)) * 255).astype(np.uint8)
    PILImage.fromarray(rgb).save(tmp_path / "c.png")
    im = read(tmp_path / "c.png")
    assert im.data.shape == (20, 30) and "converted" in im.metadata
    grey16 = (RNG.random((20, 30)) * 60000).astype(np.uint16)
    PILImage.fromarray(grey16).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read(tmp_path / "g.png").data, grey16)
    grey = np.repeat(grey16[..., None] // 256, 3, axis=2).astype(np.uint8)
    PILImage.fromarray(grey).save(tmp_path / "g3.png")  # grey saved as RGB: no warning needed
    r = read(tmp_path / "g3.png")
    assert "converted" not in r.metadata
    np.testing.assert_array_equal(r.data, grey[..., 0])


def test_hyperspy_round_trip(tmp_path):
    from atomlens.io import from_hyperspy, to_hyperspy

    np.save(tmp_path / "s.npy", RNG.random((3, 16, 20)).astype(np.float32))
    for im in (read(tmp_path / "s.npy", pixel_size=0.123), read_image_data(tmp_path)):
        sig = to_hyperspy(im)
        assert sig.axes_manager.signal_axes[0].units == "nm"
        assert sig.axes_manager.signal_axes[0].scale == pytest.approx(0.0123)
        back = from_hyperspy(sig)
        assert back.pixel_size == pytest.approx(0.123) and back.n_frames == im.n_frames
        np.testing.assert_array_equal(back.frame(0), im.frame(0))


def read_image_data(tmp_path):
    np.save(tmp_path / "one.npy", DATA)
    return read(tmp_path / "one.npy", pixel_size=0.123)
