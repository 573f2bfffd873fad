import numpy as np
import pytest

from atomlens.io import read_image


def test_imagej_tiff_calibration_is_read(tmp_path):
    import tifffile

    data = np.random.default_rng(0).random((32, 48)).astype(np.float32)
    tifffile.imwrite(
        tmp_path / "a.tif",
        data,
        imagej=True,
        resolution=(1 / 0.0123, 1 / 0.0123),
        metadata={"unit": "nm"},
    )
    im = read_image(tmp_path / "a.tif")
    assert im.pixel_size == pytest.approx(0.123, rel=1e-4)
    assert im.pixel_size_source == "metadata"
    np.testing.assert_array_equal(im.data, data)
    assert read_image(tmp_path / "a.tif", pixel_size=0.2).pixel_size_source == "user"


def test_npy_has_no_calibration(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((8, 8)))
    im = read_image(tmp_path / "a.npy")
    assert im.pixel_size is None and im.pixel_size_source == "unknown"


def test_bad_files_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_image(tmp_path / "missing.npy")
    (tmp_path / "a.jpg2").write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported file type"):
        read_image(tmp_path / "a.jpg2")
    (tmp_path / "t.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=r"t\.npy could not be read"):
        read_image(tmp_path / "t.npy")
    np.save(tmp_path / "rgb.npy", np.ones((3, 8, 8)))
    with pytest.raises(ValueError, match="one 2-D image"):
        read_image(tmp_path / "rgb.npy")
