import numpy as np
import pytest

from atomlens.inference import normalize_percentile, resample


@pytest.fixture
def image():
    from atomlens.simulate import simulate_image

    return simulate_image("graphene", shape=128, pixel_size=0.1, rng=0).image


def test_one_hot_pixel_changes_nothing_else(image):
    hot = image.copy()
    hot[40, 50] = image.max() * 1000
    a, b = normalize_percentile(image), normalize_percentile(hot)
    mask = np.ones_like(a, bool)
    mask[40, 50] = False
    assert np.abs(a - b)[mask].max() < 0.01


def test_affine_change_of_intensities_is_invisible(image):
    a = normalize_percentile(image)
    b = normalize_percentile(3.7 * image - 120.0)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match="constant"):
        normalize_percentile(np.ones((8, 8)))
    bad = np.zeros((8, 8))
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        normalize_percentile(bad)


def test_resample_keeps_positions():
    # a bright pixel block centred at x = 20.5 stays there after 2× down-sampling
    im = np.zeros((64, 64), np.float32)
    im[30:32, 20:22] = 1
    small = resample(im, factor=0.5)
    assert small.shape == (32, 32)
    _yy, xx = np.mgrid[:32, :32]
    cx = (small * xx).sum() / small.sum()
    assert (cx + 0.5) / 0.5 - 0.5 == pytest.approx(20.5, abs=0.05)
