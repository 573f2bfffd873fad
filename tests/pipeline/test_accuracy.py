"""End-to-end accuracy of the default path: ``find`` with the bundled graphene ensemble
(4 members, calibrated) on simulated images with exact truth. The bars are set from what
was measured (stated beside each) with a margin, so that a broken finder fails here: a
shift of every position by 0.3 px, σ scaled the wrong way, a class lost.
"""

import numpy as np
import pytest

from atomlens.metrics import match_points, score_atoms
from atomlens.pipeline import find
from atomlens.simulate import ImagingConditions, Substitution, simulate_image

PS = 0.2  # [Å/px], the bundled model's own sampling


@pytest.fixture(scope="module")
def matched():
    """Per matched atom (seeds 21, 22; 192² px at 1e5 e⁻/Å², 2 % Si): the error [px], the
    reported σ [Å], the column's Cramér–Rao bound [Å], true and found class; and the
    border-aware scores."""
    rows, scores = [], []
    for seed in (21, 22):
        sim = simulate_image(
            "graphene",
            shape=192,
            pixel_size=PS,
            rng=seed,
            defects=[Substitution("C", "Si", 0.02)],
            conditions=ImagingConditions(dose_e_per_A2=1e5),
        )
        atoms = find(sim.image, model="graphene", pixel_size=PS).atoms
        scores.append(score_atoms(atoms, sim.truth, shape=sim.image.shape, pixel_size=PS))
        p = atoms[["x_px", "y_px"]].to_numpy(float)
        t = sim.truth[["x_px", "y_px"]].to_numpy(float)
        m = match_points(p, t, radius=0.5 / PS)
        rows.append(
            {
                "d": p[m.pred_index] - t[m.true_index],
                "sigma": atoms[["sigma_x_A", "sigma_y_A"]].to_numpy(float)[m.pred_index],
                "crlb": np.repeat(sim.crlb_A()[m.true_index, None], 2, axis=1),
                "true": sim.truth["class"].to_numpy()[m.true_index],
                "found": atoms["class"].to_numpy()[m.pred_index],
            }
        )
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}, scores


def test_every_atom_is_found_and_none_invented(matched):
    _, scores = matched
    tp, fp, fn = (sum(s[k] for s in scores) for k in ("tp", "fp", "fn"))
    assert fp == 0 and fn == 0 and tp > 900  # measured 0, 0, 1000 (500 per frame)


def test_positions_carry_no_bias_and_sit_near_the_bound(matched):
    m, scores = matched
    bias = np.abs(m["d"].mean(axis=0))
    # measured (+0.024, −0.025) px pooled on these frames, and (+0.02, −0.03) px on three
    # 256² frames at this sampling (+0.04, −0.06 px at 0.1 Å/px): about +0.4/−0.6 pm, a
    # systematic offset still to explain; a 0.3 px shift of every position reads 0.32
    assert bias.max() < 0.05, f"mean error per axis {bias} px"
    rmse = np.sqrt(np.mean(np.concatenate([s["sq_err_A2"] for s in scores])))
    bound = np.sqrt(np.mean(m["crlb"] ** 2))
    # measured RMSE/CRLB 1.07 (1.19 pm against 1.11 pm; 1.02–1.08 on three 256² frames);
    # a 0.3 px shift of every position gives ≈ 4.3
    assert rmse / bound < 1.3, f"RMSE {rmse * 100:.2f} pm, bound {bound * 100:.2f} pm"


def test_every_class_is_recalled(matched):
    m, _ = matched
    for cls in ("C", "Si"):
        sel = m["true"] == cls
        assert sel.sum() > 5
        recall = np.mean(m["found"][sel] == cls)
        assert recall > 0.95, f"{cls}: recall {recall:.3f}"  # measured 1.0 for both


def test_sigma_is_there_and_within_a_factor_two_of_the_error(matched):
    m, _ = matched
    z = m["d"] * PS / m["sigma"]
    ok = np.isfinite(z).all(axis=1)
    assert ok.mean() > 0.99  # measured: 0.999 of matched atoms have σ
    z_rms = float(np.sqrt(np.mean(z[ok] ** 2)))
    # measured 1.55 (1.35–1.61 on other frames): σ is over-confident by about 1.5× here
    # (the σ issue); σ scaled the wrong way (the calibration's 0.51 inverted) reads 0.40
    assert 0.67 < z_rms < 2.0, f"RMS of error/σ {z_rms:.2f}"


def test_an_image_at_another_sampling_is_read_at_the_model_s():
    """At 0.1 Å/px (half the model's 0.2 Å/px) the image is resampled for the network and
    the atoms placed back on its own pixels: as good as at the model's sampling."""
    sim = simulate_image(
        "graphene",
        shape=256,
        pixel_size=0.1,
        rng=21,
        defects=[Substitution("C", "Si", 0.02)],
        conditions=ImagingConditions(dose_e_per_A2=1e5),
    )
    atoms = find(sim.image, model="graphene", pixel_size=0.1).atoms
    s = score_atoms(atoms, sim.truth, shape=sim.image.shape, pixel_size=0.1)
    assert s["fp"] == 0 and s["fn"] == 0 and s["tp"] > 200  # measured 0, 0, 210
    rmse = np.sqrt(np.mean(s["sq_err_A2"]))
    bound = np.sqrt(np.mean(sim.crlb_A()[s["true_index"]] ** 2))
    assert rmse / bound < 1.3, f"RMSE {rmse * 100:.2f} pm"  # measured 1.00 pm, 0.91 × bound
