import numpy as np
import pytest
import torch

from atomlens.elit.restyle import FrameStyledSource, bragg_split
from atomlens.simulate import Background, ImagingConditions, simulate_image
from atomlens.train.recipe import make_ranges

PS = 0.1  # Å/px


def _pair(film_A: float, dose: float = 1e5, seed: int = 5, shape: int = 256):
    """A frame with film and noise, and the same crystal without film (noise-free)."""
    kw = dict(shape=shape, pixel_size=PS, rng=seed)
    with_film = simulate_image(
        "graphene",
        conditions=ImagingConditions(
            dose_e_per_A2=dose, background=Background(film_thickness_A=film_A)
        ),
        **kw,
    )
    clean = simulate_image("graphene", conditions=ImagingConditions(dose_e_per_A2=dose), **kw)
    assert np.allclose(with_film.truth[["x_px", "y_px"]], clean.truth[["x_px", "y_px"]])
    return with_film, clean


@pytest.mark.parametrize(("film_A", "dose"), [(0.0, 1e5), (8.0, 1e5), (0.0, 1e3)])
def test_bragg_split_separates_film_and_noise_from_the_lattice(film_A, dose):
    frame, clean = _pair(film_A, dose)
    s = bragg_split(frame.image)
    assert s.basis is not None and 0.05 < s.masked_share < 0.3
    # the aperiodic part is what the crystal's noise-free image does not hold: film + noise
    truth = (frame.image - clean.expected)[s.region]
    truth = truth - truth.mean()
    assert np.corrcoef(s.aperiodic.ravel(), truth.ravel())[0, 1] > 0.9
    # the lattice signal's size, from its Fourier energy above the background's
    assert s.lattice_std == pytest.approx(clean.expected.std(), rel=0.2)
    # graphene's (10) reflections, 2.13 Å, are the lowest shell found; the shells found
    # hold part of the lattice signal
    assert s.shells[0] == pytest.approx(PS / 2.13, rel=0.03)
    assert 0 < s.lattice_std_at(s.shells) <= s.lattice_std * 1.01
    # both parts add up to the frame
    part = frame.image[s.region].astype(float)
    np.testing.assert_allclose(s.lattice + s.aperiodic, part - part.mean(), atol=0.05 * part.std())


def test_bragg_split_finds_no_lattice_in_noise_and_says_so():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="no crystal lattice"):
        bragg_split(rng.poisson(20.0, (256, 256)).astype(float))
    with pytest.raises(ValueError, match="32 px"):
        bragg_split(np.zeros((16, 16)))


def test_frame_styled_images_carry_the_frames_background_and_exact_labels():
    frame, clean = _pair(8.0, seed=1)
    ranges = make_ranges(materials=["graphene"], pixel_size=PS, crop=96)
    src = FrameStyledSource(ranges, [frame.image], seed=3)
    x, m = src.batch(0, batch_size=4)
    assert x.shape == (4, 1, 96, 96) and m.shape == (4, 2, 96, 96)
    torch.testing.assert_close(m.sum(1), torch.ones(4, 96, 96))
    # the labels are the simulation's own, unchanged by the borrowed background
    ds = src._sim.dataset
    for i in range(4):
        np.testing.assert_array_equal(m[i].numpy(), ds._tensors(ds.sample(i), i)["masks"].numpy())
        sim = ds.sample(i)
        added = x[i, 0].numpy() - sim.expected
        # the borrowed part is film + noise at the frame's ratio to its lattice signal
        want = np.std(frame.image - clean.expected) / clean.expected.std()
        assert added.std() / sim.expected.std() == pytest.approx(want, rel=0.35)
    assert src.describe()["frames"] == 1


def test_frame_styled_source_refuses_frames_without_a_lattice():
    noise = np.random.default_rng(1).poisson(20.0, (128, 128)).astype(float)
    ranges = make_ranges(materials=["graphene"], pixel_size=PS, crop=64)
    with pytest.raises(ValueError, match="frame 0: no crystal lattice"):
        FrameStyledSource(ranges, [noise], seed=0)


def test_a_reseeded_source_is_the_source_built_with_that_seed():
    frame, _ = _pair(8.0, seed=2, shape=160)
    ranges = make_ranges(materials=["graphene"], pixel_size=PS, crop=64)
    src = FrameStyledSource(ranges, [frame.image], seed=0)
    again, fresh = src.reseeded(7), FrameStyledSource(ranges, [frame.image], seed=7)
    for a, b in zip(again.batch(1, batch_size=2), fresh.batch(1, batch_size=2), strict=True):
        torch.testing.assert_close(a, b)
    assert src.reseeded(0) is src and src.seed == 0
