"""p_real is bounded by what each column's own signal shows (an empty site holds none)."""

import numpy as np
import pandas as pd
from scipy.special import ndtr

from atomlens.ensemble import Calibration
from atomlens.ensemble.calibration import EMPTY_SITE_FRACTION, signal_cap


def _table(groups: list[tuple[str, int, np.ndarray]]) -> pd.DataFrame:
    """Atoms of (class, column_kind, signal_snr values), all found by every member."""
    rows = [
        {"class": c, "column_kind": k, "signal_snr": float(v), "p_detect": 1.0}
        for c, k, snr in groups
        for v in snr
    ]
    return pd.DataFrame(rows)


def test_an_empty_site_among_clear_columns_is_bounded_and_faint_kinds_are_not():
    rng = np.random.default_rng(0)
    carbon = rng.normal(17.0, 1.5, 200)  # graphene's columns at 10⁶ e⁻/Å² (abTEM's scale)
    empty = np.array([-0.7, 0.4, 0.8, 1.8])  # the network's atoms in vacancies
    t = _table([("C", 0, carbon), ("C", 0, empty)])
    cap = signal_cap(t)
    r = float(np.median(np.r_[carbon, empty]))
    # the empty sites: at most Φ(snr − q·r), near 0; every carbon column near 1
    assert np.allclose(cap[200:], ndtr(empty - EMPTY_SITE_FRACTION * r))
    assert cap[200:].max() < 0.1  # Φ(1.8 − 3.4) = 0.055 for the one with most signal
    assert cap[:200].min() > 0.999

    # a faint kind of real columns (SrTiO3's O at 10⁵: median snr 2.8, 72 of them) beside
    # bright ones is its own reference: only Φ(snr), as before
    oxygen = rng.normal(2.8, 1.0, 72)
    t = _table([("atom", 0, oxygen), ("atom", 1, rng.normal(14.0, 1.0, 36))])
    assert np.allclose(signal_cap(t)[:72], ndtr(oxygen))

    # the empty sites as a kind of their own (as in a tiled image with many vacancies)
    # are no reference: they show no signal together (median · √n < 5)
    t = _table([("C", 0, carbon), ("C", 1, empty)])
    assert signal_cap(t)[200:].max() < 0.1

    # where even the clearest kind does not stand out on its own (median snr < 5, low
    # dose), nothing but Φ(snr)
    low = rng.normal(3.0, 1.0, 200)
    t = _table([("C", 0, low), ("C", 0, empty)])
    assert np.allclose(signal_cap(t), ndtr(t["signal_snr"].to_numpy()))

    # each class has its own reference: a class of clear columns bounds none of another's
    t = _table([("C", 0, carbon), ("Si", 1, np.array([0.5, 1.0]))])
    assert np.allclose(signal_cap(t)[200:], ndtr([0.5, 1.0]))


def test_the_bound_reads_what_the_table_has_and_p_real_takes_it():
    t = pd.DataFrame({"p_detect": [1.0, 1.0], "signal_snr": [0.0, np.nan]})
    assert np.allclose(signal_cap(t), [0.5, 1.0])  # no kinds: Φ(snr); unknown: 1
    assert np.allclose(signal_cap(pd.DataFrame({"p_detect": [1.0]})), [1.0])
    assert signal_cap(pd.DataFrame()).shape == (0,)

    # rejected candidates are bounded by the kinds of the accepted atoms of their image
    rng = np.random.default_rng(1)
    atoms = _table([("C", 0, rng.normal(17.0, 1.5, 100))])
    rejected = pd.DataFrame({"class": ["C"], "signal_snr": [0.5], "p_detect": [0.3]})
    cal = Calibration(p_detect=[0.25, 1.0], p_real=[0.9, 0.99], counts=[10, 10],
                      sigma_scale=1.0, ece_raw=0.0, n_images=1)  # fmt: skip
    a, r = cal.apply_both(atoms, rejected)
    assert a["p_real"].min() > 0.95
    assert r["p_real"].iloc[0] < 0.01
    # alone, the same candidate has no kinds to be judged by
    assert cal.apply(rejected)["p_real"].iloc[0] > 0.6


def test_vacancies_the_generic_model_fills_get_a_low_p_real():
    """Known answer from the simulator: ``haadf-generic`` puts an atom in most vacancies of
    graphene (its lattice says one belongs there); their columns hold no signal, so their
    p_real falls below 0.1, while every real column's stays above 0.9."""
    import torch

    from atomlens.bundled import bundled_models
    from atomlens.ensemble import Ensemble
    from atomlens.metrics import match_points
    from atomlens.pipeline import find
    from atomlens.simulate import ImagingConditions, simulate_image
    from atomlens.simulate.defects import Vacancy

    torch.set_num_threads(1)
    ens = Ensemble.load(bundled_models()["haadf-generic"]["path"])
    sim = simulate_image(
        "graphene",
        shape=160,
        pixel_size=0.2,
        conditions=ImagingConditions(dose_e_per_A2=1e5),
        defects=[Vacancy(element="C", density=0.02)],
        rng=1,
    )
    atoms = find(sim.image, model=ens, pixel_size=0.2).atoms
    xy = atoms[["x_px", "y_px"]].to_numpy(float)
    m = match_points(xy, sim.truth[["x_px", "y_px"]].to_numpy(float), radius=2.5)
    false = np.setdiff1d(np.arange(len(atoms)), m.pred_index)
    inside = ((xy > 5) & (xy < 155)).all(axis=1)
    false = false[inside[false]]
    p_real = atoms["p_real"].to_numpy(float)
    assert len(false) >= 3, "the model should have filled some of the vacancies"
    assert p_real[false].max() < 0.1
    assert p_real[m.pred_index].min() > 0.9
