"""What the faster find changed, measured against what it did before, on the bundled
graphene ensemble (``benchmarks/speed.py`` times it)."""

from __future__ import annotations

import numpy as np
import pytest

from atomlens.ensemble import Ensemble
from atomlens.metrics import match_points, score_atoms
from atomlens.pipeline import find
from atomlens.simulate import ImagingConditions, Substitution, simulate_image

PS = 0.2  # the bundled graphene ensemble's sampling: nothing is resampled [Å/px]


@pytest.fixture(scope="module")
def graphene():
    return Ensemble.load("graphene")


@pytest.fixture(scope="module")
def frame():
    # 384 px: one pass now, 2 × 2 tiles of 256 px (overlap 96) before
    return simulate_image(
        "graphene",
        shape=384,
        pixel_size=PS,
        rng=36,
        conditions=ImagingConditions(dose_e_per_A2=1e4),
        defects=[Substitution("C", "Si", 0.02)],
    )


def _gaps(a, b) -> tuple[int, np.ndarray]:
    """Unmatched atoms of a and b together, and the distances of the matched ones [px]."""
    pa, pb = a[["x_px", "y_px"]].to_numpy(), b[["x_px", "y_px"]].to_numpy()
    m = match_points(pa, pb, radius=1.0)
    d = np.hypot(*(pa[m.pred_index] - pb[m.true_index]).T)
    return len(pa) + len(pb) - 2 * len(m.pred_index), d


def test_channels_last_members_find_what_the_plain_networks_find(graphene, frame):
    """The members' channels-last copies (mode="sequential") against the plain networks
    under vmap (mode="vectorized"), on the same tiles: the same atoms at the same places."""
    kw = {"model": graphene, "pixel_size": PS, "precision": "float32"}
    a = find(frame.image, mode="sequential", **kw).atoms
    b = find(frame.image, mode="vectorized", **kw).atoms
    unmatched, d = _gaps(a, b)
    assert unmatched == 0 and len(a) > 1000
    # measured: all within 5e-5 px (the convolutions sum in another order), but on an AMD
    # EPYC host (2026-12-07) one atom of 2,250 at 0.013 px, the same with the code of the
    # day before: its network position (the members' mean) moved, so one member's discrete
    # step (its peak pixel, most likely) went the other way on a tie
    assert np.quantile(d, 0.999) < 1e-3
    assert d.max() < 0.05


def test_whole_frame_passes_keep_the_atoms_of_256_px_tiles(graphene, frame):
    """Group normalisation sees a whole 384-px frame instead of 256-px tiles: the maps
    change a little, the atoms hardly. Here (measured): the same 2,250 atoms, 99 % within
    0.03 px, all within 0.07 px, F1 the same, RMSE 2.34 pm against 2.33. On 512² and
    1024² px frames (3e3–1e5 e⁻/Å²): counts within 2 per 4,000, 99 % of positions within
    0.17 px (0.035 Å), F1 unchanged, RMSE within 1 %."""
    new = find(frame.image, model=graphene, pixel_size=PS, precision="float32")
    old = find(frame.image, model=graphene, pixel_size=PS, precision="float32", tile=256)
    unmatched, d = _gaps(new.atoms, old.atoms)
    assert unmatched <= 2 and len(new.atoms) > 1000
    assert np.quantile(d, 0.99) < 0.2 and np.median(d) < 0.02
    scores = [
        score_atoms(r.atoms, frame.truth, shape=frame.image.shape, pixel_size=PS)
        for r in (new, old)
    ]
    f1 = [2 * s["tp"] / (2 * s["tp"] + s["fp"] + s["fn"]) for s in scores]
    rmse = [np.sqrt(np.mean(s["sq_err_A2"])) for s in scores]
    assert abs(f1[0] - f1[1]) <= 0.001 and f1[0] > 0.99
    assert abs(rmse[0] / rmse[1] - 1) < 0.03
    # and find says where its time went
    stages = {"normalise", "network", "peaks", "consensus", "refinement", "sigma"}
    assert stages <= set(new.seconds) and all(v >= 0 for v in new.seconds.values())


def _f1_rmse(result, frame) -> tuple[float, float]:
    s = score_atoms(result.atoms, frame.truth, shape=frame.image.shape, pixel_size=PS)
    return 2 * s["tp"] / (2 * s["tp"] + s["fp"] + s["fn"]), float(np.sqrt(np.mean(s["sq_err_A2"])))


def test_bfloat16_networks_find_the_float32_atoms(graphene, frame):
    """``precision="auto"`` runs the networks in bfloat16 on CPUs with AMX units (the network
    stage 2–3× faster there, ``benchmarks/speed.py``). Against float32 on this frame: the
    same 2,250 atoms, 99 % within 0.004 px (one at 0.2 px), F1 1.0 and RMSE 2.31 pm both;
    on the real images of ``../shared`` 0–2 % of the atoms differ (matched within 1 px),
    at columns the members disagree on (``haadf-generic`` on DyScO3: 26 of 1,204)."""
    b16 = find(frame.image, model=graphene, pixel_size=PS, precision="bfloat16")
    f32 = find(frame.image, model=graphene, pixel_size=PS, precision="float32")
    unmatched, d = _gaps(b16.atoms, f32.atoms)
    assert unmatched <= 2 and len(f32.atoms) > 1000
    assert np.quantile(d, 0.99) < 0.05 and np.median(d) < 0.005
    (f1_b, rmse_b), (f1_f, rmse_f) = _f1_rmse(b16, frame), _f1_rmse(f32, frame)
    assert abs(f1_b - f1_f) <= 0.001 and f1_f > 0.99
    assert abs(rmse_b / rmse_f - 1) < 0.02


def test_two_threads_find_the_atoms_of_one(graphene, frame):
    """With 2 torch threads, find also spreads the members' peaks and the Gaussian fit
    (two strips of atoms sharing one noise model) over them: the same atoms, at the same
    places to float rounding and the strips' own median widths. Measured at 10⁴ e⁻/Å²:
    99 % within 0.006 px, σ within 0.9 % (99 %); one atom of 2,250 switched between the
    fit's and the network's position (0.2 px)."""
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = find(frame.image, model=graphene, pixel_size=PS, precision="float32").atoms
        torch.set_num_threads(2)
        two = find(frame.image, model=graphene, pixel_size=PS, precision="float32").atoms
    finally:
        torch.set_num_threads(before)
    assert len(one) >= 2000  # two strips (of ≥ 1,000 atoms of 9² px patches)
    m = match_points(one[["x_px", "y_px"]].to_numpy(), two[["x_px", "y_px"]].to_numpy(), radius=1)
    assert len(m.pred_index) == len(one) == len(two)
    a, b = one.iloc[m.pred_index], two.iloc[m.true_index]
    d = np.hypot(
        a["x_px"].to_numpy() - b["x_px"].to_numpy(), a["y_px"].to_numpy() - b["y_px"].to_numpy()
    )
    assert np.quantile(d, 0.99) < 0.01 and np.mean(d > 0.05) < 0.002, (
        np.quantile(d, 0.99),
        d.max(),
    )
    rel = np.abs(b["sigma_x_A"].to_numpy() / a["sigma_x_A"].to_numpy() - 1)
    assert np.quantile(rel, 0.99) < 0.02 and np.median(rel) < 0.002
