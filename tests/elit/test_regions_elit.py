"""ELIT with region maps: pseudo-labels only where they can be right, and a round that
learns atoms in the contamination is undone (issue #30 items 2 and 3)."""

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial import cKDTree

from atomlens.elit import AdaptConfig, adapt
from atomlens.elit import rounds as elit_rounds
from atomlens.elit.pseudo_labels import pseudo_labels
from atomlens.fourier.regions import region_map
from atomlens.pipeline import find
from atomlens.simulate import ImagingConditions
from atomlens.simulate.regions import SceneLayout, simulate_regions
from tests.common import perturbed_ensemble

PS = 0.12  # Å/px (the tiny model was trained at 0.25 Å/px)
COND = ImagingConditions(dose_e_per_A2=2e4)
LAYOUT = SceneLayout(grain_boundary=False, contamination_radius_A=(4.0, 5.0))
CFG = AdaptConfig(rounds=1, steps=30, crop=64, batch_size=4, calibration_images=0, seed=0)
REAL_PSEUDO_LABELS = elit_rounds.pseudo_labels


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def scenes():
    return [
        simulate_regions("graphene", shape=160, pixel_size=PS, conditions=COND, layout=LAYOUT,
                         rng=20 + i)
        for i in range(3)
    ]  # fmt: skip


def test_pseudo_labels_are_never_drawn_outside_the_crystal(tiny_model, scenes):
    ens = perturbed_ensemble(tiny_model, n=3, scale=0.05)
    s = scenes[0]
    r = find(s.image, model=ens, pixel_size=PS, p_min=1e-6, calibrated=False)
    crystal = region_map(s.image).labels == 0
    assert 0.3 < crystal.mean() < 0.97, "the frame needs crystal and other regions"
    kw = dict(n_classes=1, class_names=ens.config.class_names, config=AdaptConfig())
    masks, info = pseudo_labels(r, crystal=crystal, **kw)
    # nothing outside the crystal is taught: neither atoms nor background
    assert (masks[:, ~crystal] == 0).all()
    # the ensemble did find sure candidates there (in the contamination), and none of
    # them is a label
    allc = pd.concat([r.atoms, r.rejected])
    sure = allc[allc["p_detect"] >= 0.99 - 1e-9]
    xy = np.round(sure[["x_px", "y_px"]].to_numpy(float)).astype(int)
    inside = crystal[np.clip(xy[:, 1], 0, 159), np.clip(xy[:, 0], 0, 159)]
    assert info["outside_crystal"] == int((~inside).sum()) > 0
    assert info["pseudo"] == int(inside.sum())
    # without the map, the same candidates are labels
    plain, plain_info = pseudo_labels(r, **kw)
    assert plain_info["pseudo"] == len(sure) and (plain[1:, ~crystal] > 0).any()


def test_sure_atoms_at_implausible_distances_are_no_labels(tiny_model, scenes):
    ens = perturbed_ensemble(tiny_model, n=3, scale=0.05)
    r = find(scenes[1].image, model=ens, pixel_size=PS, p_min=1e-6, calibrated=False)
    kw = dict(n_classes=1, class_names=ens.config.class_names, config=AdaptConfig())
    # a material whose bonds are 1.0 Å: graphene's 1.42 Å are 42 % off, beyond the 35 %
    _, info = pseudo_labels(r, ref_nn=np.array([1.0]), **kw)
    _, ok = pseudo_labels(r, ref_nn=np.array([1.42, 2.46]), **kw)
    assert ok["implausible"] < 0.1 * ok["pseudo"]
    assert info["pseudo"] < 0.2 * ok["pseudo"] and info["implausible"] > 0


def _atoms_in_the_contamination(result, /, **kw):
    """A harmful round's labels: the ensemble's own, plus a lattice of atoms 1.42 Å apart
    (plausible to a nearest-neighbour check) wherever the frame is not
    crystal, with the region and plausibility filters switched off: the film taught as
    atoms."""
    crystal = kw.pop("crystal")
    kw.pop("ref_nn", None)
    h, w = crystal.shape
    a = 1.42 / result.pixel_size  # a triangular lattice with graphene's bond [px]
    yy, xx = np.mgrid[0 : h : a * np.sqrt(3) / 2, 0:w:a]
    pts = np.column_stack([xx.ravel() + (np.arange(yy.size) // xx.shape[1] % 2) * a / 2,
                           yy.ravel()])  # fmt: skip
    inside = (pts[:, 0] < w - 1) & (pts[:, 1] < h - 1)
    pts = pts[inside]
    out = ~crystal[pts[:, 1].astype(int), pts[:, 0].astype(int)]
    pts = pts[out]
    atoms = result.atoms
    if len(atoms) and len(pts):
        d, _ = cKDTree(atoms[["x_px", "y_px"]].to_numpy(float)).query(pts)
        pts = pts[d * result.pixel_size > 0.7]
    fake = atoms.iloc[np.zeros(len(pts), int)].assign(
        x_px=pts[:, 0], y_px=pts[:, 1], x_A=pts[:, 0] * result.pixel_size,
        y_A=pts[:, 1] * result.pixel_size, p_detect=1.0,
    )  # fmt: skip
    both = pd.concat([atoms, fake], ignore_index=True)
    return REAL_PSEUDO_LABELS(replace(result, atoms=both), **kw)


def _run(ens, frames, cfg, caplog):
    with caplog.at_level(logging.INFO, logger="atomlens.elit.adapt"):
        return adapt(ens, frames, pixel_size=PS, config=cfg)


def test_a_round_that_learns_atoms_in_the_contamination_is_undone(tiny_model, monkeypatch, caplog):
    big = replace(LAYOUT, contamination_radius_A=(5.0, 6.0))
    frames = [
        simulate_regions("graphene", shape=160, pixel_size=PS, conditions=COND, layout=big,
                         rng=40 + i).image
        for i in range(3)
    ]  # fmt: skip
    ens = perturbed_ensemble(tiny_model)
    monkeypatch.setattr(elit_rounds, "pseudo_labels", _atoms_in_the_contamination)
    res = _run(ens, frames, replace(CFG, steps=80, lr=3e-3), caplog)
    h = res.history
    assert list(h["kept"]) == [True, False], h
    # measured (2026-12-05): 114 → 259 consensus atoms on the training frames, F1 0.57
    # against the last consensus: the cap undoes it first. The held-out frame keeps too
    # few crystal atoms for the count outside the crystal to decide (its rule is tested
    # at its threshold below, and measured on larger frames by
    # benchmarks/elit_contamination.py)
    why = [r.getMessage() for r in caplog.records if "undone" in r.msg]
    assert len(why) == 1 and why[0].startswith("ELIT round 1 undone: "), why
    assert h["consensus_atoms"].iloc[1] > 1.5 * h["consensus_atoms"].iloc[0], h
    assert res.ensemble is ens or res.ensemble.config.provenance.get("elit") is None


def test_judge_round_undoes_a_rise_of_atoms_outside_the_crystal():
    """The rule at its threshold, without training: 1 per 1000 plus two Poisson standard
    errors of the previous count."""
    from atomlens.elit.guards import judge_round

    cfg = AdaptConfig(max_outside_rise=1.0)
    prev = {"holdout_implausible": 0.02, "holdout_outside_per_1000": 5.0}
    now = {"holdout_implausible": 0.02, "n_holdout": 2000, "n_inside": 2000}
    # 5 per 1000 of 2000: 10 atoms, σ = √10 = 3.16 atoms = 1.58 per 1000; allowed
    # 1 + 2 · 1.58 = 4.16 per 1000
    assert judge_round({**now, "holdout_outside_per_1000": 9.1}, 1.0, prev, cfg)[0]
    kept, why = judge_round({**now, "holdout_outside_per_1000": 9.3}, 1.0, prev, cfg)
    assert not kept and why.startswith(
        "atoms outside the crystal regions of the held-out frames rose from 5.0 to 9.3"
    ), why
    # off above any count, and absent without region maps (NaN)
    assert judge_round(
        {**now, "holdout_outside_per_1000": 900.0}, 1.0, prev, replace(cfg, max_outside_rise=1e9)
    )[0]
    assert judge_round({**now, "holdout_outside_per_1000": float("nan")}, 1.0, prev, cfg) == (
        True,
        "",
    )
