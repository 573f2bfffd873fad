"""HyperSpy signals in: their axes give the pixel size, in Python as on the command line."""

import hyperspy.api as hs  # the test extra installs it
import numpy as np
import pytest

from atomlens.io import from_hyperspy, read
from atomlens.io.units import axis_pixel_size
from atomlens.metrics import score_atoms
from atomlens.simulate import simulate_image


def _signal(image, scale, units):
    s = hs.signals.Signal2D(image)
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = scale, units
    return s


@pytest.mark.parametrize("units", ["nm", "<undefined>"])
def test_from_hyperspy_reads_the_pixel_size_as_io_read_does(tmp_path, units):
    """The shipped SrTiO3 files carry a scale without a unit: both readers take it as nm."""
    img = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    s = _signal(img, 0.0093, units)
    im = from_hyperspy(s)
    assert im.pixel_size == pytest.approx(0.093) and im.pixel_size_source == "metadata"
    assert ("pixel_size_assumption" in im.metadata) == (units != "nm")
    s.save(tmp_path / "a.hspy")
    assert read(tmp_path / "a.hspy").pixel_size == pytest.approx(im.pixel_size)
    assert axis_pixel_size(1.0, "<undefined>") == (None, None)  # not a plausible nm scale


def test_find_takes_a_hyperspy_signal_with_its_axes(tiny_model):
    import atomlens

    sim = simulate_image("graphene", shape=160, pixel_size=0.12, rng=5)
    found = atomlens.find(_signal(sim.image, 0.012, "nm"), model=tiny_model)
    s = score_atoms(found, sim.truth, shape=sim.image.shape, pixel_size=0.12)
    assert s["fn"] + s["fp"] <= 2 and s["tp"] > 100, s
    assert np.sqrt(np.mean(s["sq_err_A2"])) < 0.05  # placed in Å at the signal's sampling
    with pytest.raises(ValueError, match="pass `pixel_size`"):
        atomlens.find(_signal(sim.image, 1.0, "px"), model=tiny_model)
