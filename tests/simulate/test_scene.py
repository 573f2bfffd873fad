import numpy as np
import pytest
from ase.build import bulk
from hypothesis import given
from hypothesis import strategies as st

from atomlens.simulate import (
    AberratedProbe,
    Background,
    ClassMap,
    GaussianProbe,
    ImagingConditions,
    ScanDistortion,
    Substitution,
    Vacancy,
    load_material,
    simulate_image,
)
from tests.common import centroids, nearest_neighbour_distances

NOISELESS = ImagingConditions(probe=GaussianProbe(fwhm_A=0.8))


def test_graphene_truth_nearest_neighbour_distance():
    sim = simulate_image("graphene", shape=256, pixel_size=0.1, rng=0)
    xy = sim.truth[["x_A", "y_A"]].to_numpy()
    nn = nearest_neighbour_distances(xy)
    assert np.median(nn) == pytest.approx(1.42, abs=0.01)
    assert nn.min() == pytest.approx(1.42, abs=0.01)
    assert (sim.truth["class"] == "C").all()
    # Areal density of graphene: 2 atoms per 5.24 Å² cell.
    area = (256 * 0.1) ** 2
    assert len(sim.truth) / area == pytest.approx(2 / (2.46**2 * np.sqrt(3) / 2), rel=0.05)


def test_mos2_and_perovskite_column_spacings():
    mos2 = simulate_image("mos2", shape=200, pixel_size=0.1, rng=1)
    t = mos2.truth
    mo = t.loc[t["class"] == "Mo", ["x_A", "y_A"]].to_numpy()
    assert np.median(nearest_neighbour_distances(mo)) == pytest.approx(3.16, abs=0.01)
    assert np.median(nearest_neighbour_distances(t[["x_A", "y_A"]].to_numpy())) == pytest.approx(
        3.16 / np.sqrt(3), abs=0.01
    )
    assert set(t.loc[t["class"] == "S", "composition"]) == {"S2"}

    sto = simulate_image("srtio3", shape=200, pixel_size=0.1, rng=2)
    t = sto.truth
    sr = t.loc[t["class"] == "Sr", ["x_A", "y_A"]].to_numpy()
    assert np.median(nearest_neighbour_distances(sr)) == pytest.approx(3.905, abs=0.01)
    assert np.median(nearest_neighbour_distances(t[["x_A", "y_A"]].to_numpy())) == pytest.approx(
        3.905 / 2, abs=0.01
    )
    # Brightest columns are Sr (Z=38) then Ti+O; O columns are faint in HAADF.
    peak = {
        c: sto.expected[
            np.round(g.y_px).astype(int).clip(0, 199), np.round(g.x_px).astype(int).clip(0, 199)
        ].mean()
        for c, g in t.groupby("class")
    }
    assert peak["Sr"] > peak["TiO"] > peak["O"]

    sto110 = simulate_image("srtio3", zone_axis=(1, 1, 0), shape=200, pixel_size=0.1, rng=3)
    t = sto110.truth
    assert set(t["class"]) == {"SrO", "Ti", "O"}
    ti = t.loc[t["class"] == "Ti", ["x_A", "y_A"]].to_numpy()
    # Ti columns along [110]: a rectangle a/√2 × a → nearest Ti–Ti distance a/√2.
    assert np.median(nearest_neighbour_distances(ti)) == pytest.approx(3.905 / np.sqrt(2), abs=0.01)


def test_rotation_and_strain_move_truth_as_requested():
    # Zero rotation, 2 % strain along x: Mo–Mo vectors stretch accordingly.
    a = 3.16
    sim = simulate_image(
        "mos2", shape=200, pixel_size=0.1, rotation_deg=0.0, strain=(0.02, 0.0, 0.0), rng=4
    )
    mo = sim.truth.loc[sim.truth["class"] == "Mo", ["x_spec_A", "y_spec_A"]].to_numpy()
    d = mo[None] - mo[:, None]
    horizontal = np.abs(d[..., 1]) < 0.1
    dist = np.abs(d[..., 0][horizontal])
    shortest = dist[dist > 0.5].min()
    assert shortest == pytest.approx(a * 1.02, abs=0.005)


def test_a_displacement_field_moves_the_columns_it_names_in_truth_and_image():
    """A polarisation-like field: Ti–O columns move along x by 0.002·y Å (up to 0.1 Å),
    Sr and O stay; the noiseless image's column centroids follow the truth."""

    def field(xy, classes):
        d = np.zeros_like(xy)
        d[classes == "TiO", 0] = 0.002 * xy[classes == "TiO", 1]
        return d

    kw = dict(shape=200, pixel_size=0.25, rotation_deg=0.0, conditions=NOISELESS, rng=3)
    flat = simulate_image("srtio3", **kw)
    moved = simulate_image("srtio3", displacement=field, **kw)
    dx = moved.truth["x_A"].to_numpy() - flat.truth["x_A"].to_numpy()
    ti = (flat.truth["class"] == "TiO").to_numpy()
    np.testing.assert_allclose(dx[ti], 0.002 * flat.truth["y_spec_A"].to_numpy()[ti], atol=1e-9)
    assert np.all(dx[~ti] == 0) and np.all(moved.truth["y_A"] == flat.truth["y_A"])
    # over every rendered column, those in the margin beyond the image included
    assert moved.metadata["max_displacement_A"] >= dx.max() > 0.095
    inner = ti & ~moved.truth["near_edge"].to_numpy()
    xy = moved.truth.loc[inner, ["x_px", "y_px"]].to_numpy()
    seen = centroids(moved.expected, xy, 5.0)[:, 0] - centroids(flat.expected, xy, 5.0)[:, 0]
    # 5 px (1.25 Å) discs: the centroid sees 98 % of the shift (3 px discs: 74 %)
    np.testing.assert_allclose(seen * 0.25, dx[inner], atol=0.004)  # Å
    with pytest.raises(ValueError, match=r"displacement returned shape \(3,\)"):
        simulate_image("srtio3", displacement=lambda xy, c: np.zeros(3), **kw)


def test_poisson_counts_match_dose():
    cond = ImagingConditions(dose_e_per_A2=2e4, read_noise=0.0)
    sim = simulate_image("graphene", shape=256, pixel_size=0.1, conditions=cond, rng=5)
    lam = sim.expected
    lit = lam > 0.05  # hexagon centres get no signal without a film
    z = (sim.image[lit] - lam[lit]) / np.sqrt(lam[lit])
    assert abs(z.mean()) < 0.02
    assert z.var() == pytest.approx(1.0, abs=0.03)
    # Mean counts per pixel = dose × pixel area × σ_C × columns per Å².
    density = 2 / (2.46**2 * np.sqrt(3) / 2)
    inner = lam[40:-40, 40:-40].mean()
    assert inner == pytest.approx(2e4 * 0.01 * 0.01 * density, rel=0.03)
    # Twice the dose, twice the counts.
    sim2 = simulate_image(
        "graphene",
        shape=256,
        pixel_size=0.1,
        rng=5,
        conditions=ImagingConditions(dose_e_per_A2=4e4),
    )
    assert sim2.expected.sum() / lam.sum() == pytest.approx(2.0, rel=1e-9)


def test_read_noise_adds_gaussian_variance():
    cond = ImagingConditions(dose_e_per_A2=2e4, read_noise=3.0)
    sim = simulate_image("graphene", shape=256, pixel_size=0.1, conditions=cond, rng=6)
    resid = sim.image - sim.expected
    assert resid.var() / (sim.expected.mean() + 9.0) == pytest.approx(1.0, abs=0.04)


def test_column_counts_and_crlb_helper():
    sim = simulate_image(
        "graphene",
        shape=128,
        pixel_size=0.1,
        conditions=ImagingConditions(dose_e_per_A2=1e5),
        rng=7,
    )
    # Each C column scatters D·σ_C = 1e5 × 0.01 = 1000 counts.
    assert sim.truth["counts"].to_numpy() == pytest.approx(1000.0)
    crlb = sim.crlb_A()
    sigma = sim.metadata["profile_sigma_A"]
    # No film: the bound is close to σ/√N (plus the pixelation term).
    assert crlb == pytest.approx(np.sqrt(sigma**2 + 0.1**2 / 12) / np.sqrt(1000), rel=1e-6)


def test_substitutions_vacancies_and_classes():
    defects = (Substitution("C", "Si", density=0.05), Vacancy("C", density=0.05))
    sim = simulate_image("graphene", shape=256, pixel_size=0.1, defects=defects, rng=8)
    n_all = len(sim.truth) + len(sim.vacancies)
    assert sim.class_names == ("C", "Si")
    frac_si = (sim.truth["class"] == "Si").sum() / n_all
    frac_vac = len(sim.vacancies) / n_all
    assert frac_si == pytest.approx(0.05, abs=0.02)
    assert frac_vac == pytest.approx(0.05 * 0.95, abs=0.02)
    assert (sim.truth.loc[sim.truth["class"] == "Si", "is_defect"]).all()
    # Vacant sites lie on the lattice: 1.42 Å from their neighbours.
    from scipy.spatial import cKDTree

    d, _ = cKDTree(sim.truth[["x_A", "y_A"]].to_numpy()).query(
        sim.vacancies[["x_A", "y_A"]].to_numpy()
    )
    assert np.allclose(d, 1.42, atol=0.02)


def test_explicit_sites_and_content_classes():
    site = (12.8, 12.8)
    sub = Substitution("C", "Si", sites=(site,))
    sim = simulate_image("graphene", shape=256, pixel_size=0.1, defects=(sub,), rng=9)
    si = sim.truth[sim.truth["class"] == "Si"]
    assert len(si) == 1
    all_d = np.hypot(sim.truth.x_spec_A - site[0], sim.truth.y_spec_A - site[1])
    d_si = np.hypot(si.x_spec_A.iloc[0] - site[0], si.y_spec_A.iloc[0] - site[1])
    assert d_si == pytest.approx(all_d.min()) and d_si < 1.42  # the nearest column

    vac = Vacancy("S", density=0.2)
    sim = simulate_image(
        "mos2", shape=200, pixel_size=0.1, defects=(vac,), classes="content", rng=10
    )
    assert sim.class_names == ("Mo", "S2", "S")
    comp = sim.truth.set_index("class")["composition"]
    assert set(sim.truth["class"]) == {"Mo", "S2", "S"}
    assert (comp.loc["S"] == "S").all() and (comp.loc["S2"] == "S2").all()
    by_defect = simulate_image(
        "mos2", shape=200, pixel_size=0.1, defects=(vac,), classes=ClassMap(by="defect"), rng=10
    )
    assert (by_defect.truth["class"] == "defect").sum() == (sim.truth["class"] == "S").sum()


def _sparse_cell():
    # Simple cubic Au, a = 5 Å, two unit cells thick: isolated columns 5 Å apart.
    atoms = bulk("Au", "sc", a=5.0)
    return load_material(atoms, zone_axis=(0, 0, 1), thickness_A=10.0)


@given(
    rotation=st.floats(0, 360),
    exx=st.floats(-0.03, 0.03),
    exy=st.floats(-0.03, 0.03),
    jitter=st.floats(0, 0.5),
    drift=st.floats(-4, 4),
    flyback=st.floats(0, 2),
    pixel_size=st.floats(0.08, 0.2),
    seed=st.integers(0, 2**16),
)
def test_truth_and_image_stay_consistent(
    rotation, exx, exy, jitter, drift, flyback, pixel_size, seed
):
    """Noise-free images: each column's intensity centroid sits on its truth position.

    The truth is where the column's centre lands (the inverse of the scan map). A strongly
    curved scan map (flyback decaying over a few pixels) moves the centroid of a blurred
    column away from its centre by about (curvature × σ²), a property of centroids rather
    than of the truth: the tolerance adds that term, ½ (A/τ²) σ², to 0.05 px; flyback here
    decays over 16 px, as is typical.
    """
    cond = ImagingConditions(
        probe=GaussianProbe(fwhm_A=0.8),
        distortion=ScanDistortion(
            line_jitter_px=jitter,
            drift_x_px=drift,
            drift_y_px=-drift / 2,
            flyback_px=flyback,
            flyback_decay_px=16.0,
        ),
    )
    sim = simulate_image(
        _sparse_cell(),
        shape=128,
        pixel_size=pixel_size,
        conditions=cond,
        rotation_deg=rotation,
        strain=(exx, -exx, exy),
        rng=seed,
    )
    radius = 1.6 / pixel_size  # 1.6 Å: 4.7 σ of the profile, well short of the 5 Å spacing
    t = sim.truth
    inner = t[
        (t.x_px > radius + 1)
        & (t.x_px < 127 - radius - 1)
        & (t.y_px > radius + 1)
        & (t.y_px < 127 - radius - 1)
    ]
    assert len(inner) > 0
    xy = inner[["x_px", "y_px"]].to_numpy()
    c = centroids(sim.expected, xy, radius)
    err = np.abs(c - xy).max()
    sigma_px = sim.metadata["profile_sigma_A"] / pixel_size
    curvature_bias = 0.5 * flyback / 16.0**2 * sigma_px**2  # centroid bias bound, see docstring
    assert err < 0.05 + curvature_bias, f"centroid off its truth by {err:.3f} px"


def test_aberrated_probe_truth_consistency():
    cond = ImagingConditions(
        probe=AberratedProbe(defocus_A=10.0, cs_mm=0.002),
        distortion=ScanDistortion(line_jitter_px=0.3, drift_x_px=2.0),
    )
    sim = simulate_image(_sparse_cell(), shape=128, pixel_size=0.1, conditions=cond, rng=11)
    t = sim.truth
    inner = t[(t.x_px > 20) & (t.x_px < 107) & (t.y_px > 20) & (t.y_px < 107)]
    xy = inner[["x_px", "y_px"]].to_numpy()
    c = centroids(sim.expected, xy, 12.0)
    # Rings of the neighbours reach into the disc; on a symmetric lattice they cancel.
    assert np.abs(c - xy).max() < 0.1


def test_bright_field_inverts_contrast():
    cond = ImagingConditions(mode="bf", gamma=0.6)
    sim = simulate_image("srtio3", shape=128, pixel_size=0.1, conditions=cond, rng=12)
    sr = sim.truth[sim.truth["class"] == "Sr"]
    at_sr = sim.expected[
        np.round(sr.y_px).astype(int).clip(0, 127), np.round(sr.x_px).astype(int).clip(0, 127)
    ]
    assert at_sr.mean() < np.median(sim.expected)
    assert sim.expected.min() >= 0


def test_thick_heavy_crystal_stays_physical():
    sim = simulate_image(
        "srtio3",
        thickness_A=200.0,
        shape=96,
        pixel_size=0.1,
        conditions=ImagingConditions(dose_e_per_A2=1e5),
        rng=13,
    )
    fraction = sim.expected / (1e5 * 0.01)
    assert fraction.max() <= 0.5 + 1e-9
    assert sim.metadata["cross_section_scale"] < 1


def test_film_background_texture_and_level():
    cond = ImagingConditions(background=Background(film_thickness_A=20.0, gradient=0.5))
    sim = simulate_image("graphene", shape=192, pixel_size=0.1, conditions=cond, rng=14)
    bare = simulate_image("graphene", shape=192, pixel_size=0.1, rng=14)
    extra = (sim.expected - bare.expected)[20:-20, 20:-20].mean()
    # 20 Å of amorphous carbon: 2 atoms/Å² → 1e5 × 0.01 Å² × 2 × 0.01 Å² = 20 counts/px.
    assert extra == pytest.approx(20.0, rel=0.15)
    assert sim.background_per_px == pytest.approx(20.0, rel=1e-6)


def test_same_seed_same_image_other_seed_other_image():
    kw = {
        "shape": 64,
        "pixel_size": 0.1,
        "conditions": ImagingConditions(distortion=ScanDistortion(line_jitter_px=0.3)),
        "defects": (Substitution("C", "Si", 0.05),),
    }
    a = simulate_image("graphene", rng=42, **kw)
    b = simulate_image("graphene", rng=42, **kw)
    c = simulate_image("graphene", rng=43, **kw)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.truth.equals(b.truth)
    assert not np.array_equal(a.image, c.image)


def test_masks_follow_truth():
    sim = simulate_image(
        "graphene",
        shape=128,
        pixel_size=0.1,
        label_radius_A=0.4,
        defects=(Substitution("C", "Si", 0.05),),
        rng=15,
    )
    assert sim.masks.shape == (3, 128, 128)
    np.testing.assert_allclose(sim.masks.sum(0)[sim.masks[1:].sum(0) <= 1], 1.0)
    for k, name in enumerate(sim.class_names):
        t = sim.truth[(sim.truth["class"] == name) & ~sim.truth.near_edge]
        iy = np.round(t.y_px).astype(int)
        ix = np.round(t.x_px).astype(int)
        assert (sim.masks[k + 1][iy, ix] == 1).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pixel_size": 0}, "pixel_size"),
        ({"pixel_size": 100}, "pixel_size"),
        ({"shape": 4}, "shape"),
        ({"strain": (0.5, 0, 0)}, "strain"),
        ({"classes": "colour"}, "ClassMap.by"),
        ({"defects": ("vacancy",)}, "defects"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        simulate_image("graphene", **kwargs)


def test_unknown_material_lists_the_known_ones():
    with pytest.raises((ValueError, FileNotFoundError), match="graphene"):
        simulate_image("unobtainium")


def test_conditions_round_trip_and_reject_unknown_keys():
    cond = ImagingConditions(
        probe=AberratedProbe(defocus_A=5.0),
        background=Background(film_thickness_A=3.0),
        distortion=ScanDistortion(line_jitter_px=0.2),
    )
    assert ImagingConditions.from_dict(cond.to_dict()) == cond
    d = cond.to_dict()
    d["dose"] = 1e4
    with pytest.raises(ValueError, match="dose"):
        ImagingConditions.from_dict(d)
