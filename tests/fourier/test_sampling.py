"""The pixel size of a lattice image, estimated with its calibration withheld."""

import numpy as np
import pytest

from atomlens.fourier.sampling import estimate_pixel_size, reference_image
from atomlens.simulate import AberratedProbe, Background, ImagingConditions, simulate_image


@pytest.mark.parametrize("ps", [0.07, 0.1, 0.14, 0.19])
def test_graphene_sampling_is_recovered_within_2_percent(ps):
    ref = reference_image(["graphene"], 0.2)
    cond = ImagingConditions(
        dose_e_per_A2=2e4, probe=AberratedProbe(defocus_A=5.0), background=Background(2.0)
    )
    for seed in (11, 12):
        im = simulate_image("graphene", shape=384, pixel_size=ps, rng=seed, conditions=cond)
        est = estimate_pixel_size(im.image, reference=ref, reference_pixel_size=0.2)
        assert est.pixel_size == pytest.approx(ps, rel=0.02), (seed, est)


def test_noise_has_no_lattice_to_measure():
    noise = np.random.default_rng(0).poisson(50, (256, 256)).astype(float)
    with pytest.raises(ValueError, match="lattice"):
        estimate_pixel_size(
            noise, reference=reference_image(["graphene"], 0.2), reference_pixel_size=0.2
        )


def test_find_without_calibration_estimates_it(tiny_model_dir, tmp_path):
    from atomlens.metrics import score_atoms
    from atomlens.pipeline import find_files

    sim = simulate_image("graphene", shape=256, pixel_size=0.11, rng=5)
    np.save(tmp_path / "a.npy", sim.image)  # no calibration in a .npy
    res = find_files([tmp_path / "a.npy"], model=tiny_model_dir, out=tmp_path / "o")
    assert res.files[0]["pixel_size_source"] == "estimated"
    assert res.files[0]["pixel_size_A"] == pytest.approx(0.11, rel=0.02)
    s = score_atoms(res.atoms, sim.truth, shape=sim.image.shape, pixel_size=0.11)
    assert 2 * s["tp"] / (2 * s["tp"] + s["fp"] + s["fn"]) > 0.97
    assert "estimated from the lattice" in (tmp_path / "o" / "report.html").read_text()


def test_a_model_of_several_materials_does_not_guess_the_scale():
    from types import SimpleNamespace

    from atomlens.fourier.sampling import estimate_for_model

    cfg = SimpleNamespace(provenance={"materials": ["graphene", "srtio3"]}, pixel_size_A=0.2)
    with pytest.raises(ValueError, match="several materials"):
        estimate_for_model(np.zeros((64, 64)), cfg)
