"""Region maps from local periodicity: crystal, amorphous contamination, vacuum, saturated,
scored against simulated frames whose every pixel's region is known."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from atomlens.fourier.regions import REGIONS, region_map
from atomlens.simulate import Background, GaussianProbe, ImagingConditions, simulate_image
from atomlens.simulate.regions import REGION_NAMES, SceneLayout, simulate_regions

PS = 0.1  # Å/px
DOSE = ImagingConditions(dose_e_per_A2=1e5)


def test_the_simulator_and_the_map_share_the_region_codes():
    assert REGIONS == REGION_NAMES


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_contamination_vacuum_and_both_grains_are_told_apart(seed):
    s = simulate_regions("graphene", shape=256, pixel_size=PS, conditions=DOSE, rng=seed)
    r = region_map(s.image)
    # inside each true region, farther than the map's window from its edge (the map cannot
    # place an edge more finely than its window); measured 2026-12-05 on seeds 0, 1, 3:
    # crystal 0.997–0.998, amorphous 1.000, vacuum 0.873–1.000
    for k, name, least in ((0, "crystal", 0.98), (1, "amorphous", 0.95), (2, "vacuum", 0.8)):
        deep = ndi.binary_erosion(s.regions == k, iterations=int(r.window_px))
        assert deep.sum() > 100, f"the scene needs a {name} region"
        assert np.mean(r.labels[deep] == k) >= least, (name, np.mean(r.labels[deep] == k))
    # the crystal columns of both grains (measured 0.915–0.953, the rest within a window
    # of an edge)
    where = r.at(s.truth[["x_px", "y_px"]].to_numpy(float))
    crystal = (s.truth["region"] == "crystal").to_numpy()
    for g in (0, 1):
        sel = crystal & (s.truth["grain"] == g).to_numpy()
        assert np.mean(where[sel] == "crystal") >= 0.85, (g, np.mean(where[sel] == "crystal"))


@pytest.mark.parametrize("seed", [0, 2, 4])
def test_a_hole_under_a_thick_film_is_vacuum(seed):
    """Under an 8 Å film the local mean spreads so much over the crystal that the vacuum's
    margin once reached below the frame's floor: every hole pixel was crystal. Farther than
    a window from the hole's edge, measured 2026-12-06 on seeds 0, 2, 4: 0.966–1.000
    vacuum (it was 0)."""
    s = simulate_regions("graphene", shape=256, pixel_size=PS, conditions=FILM_8A, rng=seed)
    r = region_map(s.image)
    deep = ndi.binary_erosion(s.regions == 2, iterations=int(r.window_px))
    assert deep.sum() > 500, "the scene needs a hole"
    assert np.mean(r.labels[deep] == 2) >= 0.9, np.mean(r.labels[deep] == 2)


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_contamination_on_a_thick_film_is_not_crystal(seed):
    """Under an 8 Å film the film's speckle spreads the half-window mean so far that a
    contamination patch 1.2–2× as bright as the film-covered crystal passed as crystal.
    The window-wide test finds it. More than 1 Å inside the patch, called crystal
    (measured 2026-12-06 on seeds 0, 1, 4): 0.93 / 0.61 / 0.97 without it, 0.09 / 0.01 /
    0.09 with it; crystal a window from any edge kept: 0.998 / 1.000 / 0.999 and
    0.998 / 0.989 / 1.000."""
    film = ImagingConditions(
        dose_e_per_A2=5e4, background=Background(film_thickness_A=8.0, variation=0.2)
    )
    s = simulate_regions("graphene", shape=256, pixel_size=PS, conditions=film,
                         layout=SceneLayout(holes=0), rng=seed)  # fmt: skip
    r = region_map(s.image)
    without = region_map(s.image, window_margin=np.inf)
    patch = ndi.binary_erosion(s.regions == 1, iterations=int(1.0 / PS))
    crystal = ndi.binary_erosion(s.regions == 0, iterations=int(r.window_px))
    assert patch.sum() > 2000, "the scene needs a patch"
    assert np.mean(without.labels[patch] == 0) >= 0.5  # what this test is about
    assert np.mean(r.labels[patch] == 0) <= 0.15, np.mean(r.labels[patch] == 0)
    assert np.mean(r.labels[crystal] == 0) >= 0.98, np.mean(r.labels[crystal] == 0)


FILM_8A = ImagingConditions(
    dose_e_per_A2=5e4, background=Background(film_thickness_A=8.0, variation=0.2)
)


@pytest.mark.parametrize("seed", [1, 3])
@pytest.mark.parametrize("conditions", [DOSE, FILM_8A], ids=["1e5", "film 8 Å"])
def test_a_hole_smaller_than_the_window_is_vacuum(conditions, seed):
    """A hole of radius 2–3 Å has its edges' texture in every window over it, so the texture
    test called it crystal. More than 0.5 Å inside the hole, called vacuum (measured
    2026-12-07 on seeds 0–3): 0.51–0.84 at 10⁵ e⁻/Å² and 0.44–0.96 under the film before
    the small-hole test, 0.85–1.00 with it; the crystal a window from any edge kept as
    crystal (≥ 0.97) either way."""
    lay = SceneLayout(contamination=0, hole_radius_A=(2.0, 3.0))
    s = simulate_regions("graphene", shape=256, pixel_size=PS, conditions=conditions,
                         layout=lay, rng=seed)  # fmt: skip
    r = region_map(s.image)
    hole = ndi.binary_erosion(s.regions == 2, iterations=int(0.5 / PS))
    crystal = ndi.binary_erosion(s.regions == 0, iterations=int(r.window_px))
    assert hole.sum() > 500, "the scene needs a hole"
    assert np.mean(r.labels[hole] == 2) >= 0.8, np.mean(r.labels[hole] == 2)
    assert np.mean(r.labels[crystal] == 0) >= 0.97, np.mean(r.labels[crystal] == 0)


def test_a_lattices_dark_gaps_are_no_holes():
    """Clean graphene under a narrow probe at a high dose: each hexagon's centre is as
    dark as vacuum, but over a disc smaller than the small-hole test's, and it must fit
    inside the frame. Before 2026-12-07 the texture test called a 25 px sliver at a corner
    of one of these frames vacuum."""
    sharp = ImagingConditions(dose_e_per_A2=1e6, probe=GaussianProbe(fwhm_A=0.6))
    for seed in range(3):
        im = simulate_image("graphene", shape=256, pixel_size=PS, conditions=sharp,
                            rng=8000 + seed).image  # fmt: skip
        assert region_map(im).share()["vacuum"] == 0.0


def test_a_small_frame_of_a_sparse_lattice_is_no_vacuum():
    """64 px of a square lattice of 16 px period, rotated: its first order lies 4 periods
    across the frame, where reflections are not looked for, so the lowest found is a
    higher order of 10.5 px, and the gaps between columns are as wide as the small-hole
    test's discs: 21 % vacuum unless that test asks for 8 of the lowest period found across
    the frame (as it does)."""
    y, x = np.mgrid[:64, :64].astype(float)
    c, s = np.cos(0.6), np.sin(0.6)
    im = np.ones((64, 64))
    for i in range(-8, 10):
        for j in range(-8, 10):
            px, py = 16 * (c * i - s * j) + 0.3, 16 * (s * i + c * j) + 0.7
            im += 50 * np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * 1.5**2))
    im = np.random.default_rng(3).poisson(im).astype(float)
    assert region_map(im).share()["vacuum"] == 0.0


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_every_column_of_a_bright_sublattice_is_crystal(seed):
    """SrTiO3 [001] frames (two grains, a patch, a hole): the Sr columns stand out of the
    half-window mean when the window is set by (110) (the weak (100) reflections missing,
    or crowded out by stronger high orders), and were taken for little bright patches.
    Crystal columns called crystal, measured 2026-12-07 on seeds 0–5: Sr 0.01–0.80 (O and
    TiO 0.73–0.99), the crystal a window from any edge 0.65–0.98; now every species
    0.97–1.00 and the crystal 0.99–1.00."""
    s = simulate_regions("srtio3", shape=256, pixel_size=0.15,
                         conditions=ImagingConditions(dose_e_per_A2=1e6), rng=seed)  # fmt: skip
    r = region_map(s.image)
    t = s.crystal_truth()
    where = r.at(t[["x_px", "y_px"]].to_numpy(float))
    for species in ("Sr", "TiO", "O"):
        sel = (t["species"] == species).to_numpy()
        assert np.mean(where[sel] == "crystal") >= 0.95, (species, np.mean(where[sel] == "crystal"))
    crystal = ndi.binary_erosion(s.regions == 0, iterations=int(r.window_px))
    assert np.mean(r.labels[crystal] == 0) >= 0.98, np.mean(r.labels[crystal] == 0)


def test_a_crystal_is_crystal_and_noise_is_not():
    im = simulate_image("graphene", shape=192, pixel_size=PS, conditions=DOSE, rng=4).image
    assert region_map(im).share()["crystal"] >= 0.98
    noise = np.random.default_rng(0).poisson(50.0, (192, 192)).astype(np.float32)
    assert region_map(noise).share()["crystal"] == 0.0


def test_a_saturated_patch_is_saturated():
    s = simulate_regions(
        "graphene",
        shape=256,
        pixel_size=PS,
        conditions=DOSE,
        layout=SceneLayout(holes=0, grain_boundary=False, saturate=1.2),
        rng=1,
    )
    r = region_map(s.image)
    sat = s.regions == 3
    assert sat.sum() > 500
    assert np.mean(r.labels[sat] == 3) >= 0.9
    assert not (r.labels[sat] == 0).any()  # a clipped pixel is never crystal


@pytest.mark.parametrize("seed", [1, 3, 5])
def test_the_unclipped_pixels_of_a_saturated_patch_are_not_crystal(seed):
    """The map flattens clipped pixels for its spectrum; it once read the patch's
    brightness off that flattened frame too, so the patch's unclipped pixels between the
    clipped ones looked no brighter than the crystal. Under a 1.3 Å probe, farther than a
    window inside the patch, 7–18 % of its pixels were crystal on these seeds (measured
    2026-12-06; 0 now), and atoms found there passed ``find(regions="drop")``."""
    wide = ImagingConditions(dose_e_per_A2=3e4, probe=GaussianProbe(fwhm_A=1.3))
    lay = SceneLayout(holes=0, grain_boundary=False, saturate=1.5)
    s = simulate_regions("graphene", shape=256, pixel_size=PS, conditions=wide, layout=lay,
                         rng=seed)  # fmt: skip
    r = region_map(s.image)
    w = int(r.window_px)
    patch = ndi.binary_erosion(np.isin(s.regions, (1, 3)), iterations=w)
    crystal = ndi.binary_erosion(s.regions == 0, iterations=w)
    assert patch.sum() > 500, "the scene needs a patch"
    assert np.mean(r.labels[patch] == 0) <= 0.01, np.mean(r.labels[patch] == 0)
    assert np.mean(r.labels[crystal] == 0) >= 0.98, np.mean(r.labels[crystal] == 0)


def test_dark_atoms_are_read_inverted():
    s = simulate_regions("graphene", shape=256, pixel_size=PS, conditions=DOSE, rng=0)
    bright = region_map(s.image)
    dark = region_map(s.image.max() - s.image, contrast="dark")
    assert np.mean(bright.labels == dark.labels) > 0.99


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least 32 px"):
        region_map(np.zeros((16, 64)))
    with pytest.raises(ValueError, match="crystal_ratio"):
        region_map(np.zeros((64, 64)), crystal_ratio=1.5)
    with pytest.raises(ValueError, match="window_margin"):
        region_map(np.zeros((64, 64)), window_margin=0.0)
    with pytest.raises(ValueError, match="contrast"):
        region_map(np.zeros((64, 64)), contrast="grey")
    with pytest.raises(ValueError, match="finite"):
        region_map(np.full((64, 64), np.nan))
