import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from atomlens import find_atoms
from atomlens.ensemble import (
    Ensemble,
    Model,
    ModelFileError,
    consensus_atoms,
    decompose,
    merge_detections,
)
from atomlens.nn import UNet
from atomlens.pipeline import find
from atomlens.simulate import simulate_image
from atomlens.simulate.labels import render_masks


def _members_of(model: Model, n: int, seed: int = 0) -> Ensemble:
    """``n`` copies of a model with slightly perturbed weights: distinct but all sensible."""
    g = torch.Generator().manual_seed(seed)
    nets = []
    for _ in range(n):
        net = UNet(model.config.architecture)
        net.load_state_dict(model.network.state_dict())
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(1 + 0.02 * torch.randn(p.shape, generator=g))
        nets.append(net.eval())
    return Ensemble(nets, model.config)


def test_an_ensemble_of_one_finds_what_the_model_finds(tiny_model):
    sim = simulate_image("graphene", shape=160, pixel_size=0.1, rng=11)
    plain = find_atoms(sim.image, model=tiny_model, pixel_size=0.1)
    res = find(sim.image, model=Ensemble([tiny_model.network], tiny_model.config), pixel_size=0.1)
    assert len(res.rejected) == 0
    cols = ["x_px", "y_px", "class", "score", "fit_sigma_x_A", "refined"]
    pd.testing.assert_frame_equal(res.atoms[cols], plain[cols])
    assert (res.atoms["p_detect"] == 1).all()
    np.testing.assert_allclose(res.atoms["epistemic"], 0, atol=1e-5)
    np.testing.assert_allclose(res.atoms["sigma_x_A"], plain["sigma_x_A"])
    assert np.isfinite(res.atoms["sigma_x_A"]).all()  # σ for every atom, fitted or not
    # uncalibrated, a fitted position's σ is the fit's own (one member: no spread)
    fit = res.atoms["position_source"] == "fit"
    assert fit.any()
    np.testing.assert_allclose(res.atoms["sigma_x_A"][fit], res.atoms["fit_sigma_x_A"][fit])


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_consensus_counts_the_members_that_found_each_atom(n):
    sim = simulate_image("graphene", shape=128, pixel_size=0.1, rng=2)
    t = sim.truth
    xy = t[["x_px", "y_px"]].to_numpy()
    rng = np.random.default_rng(n)
    found_by = rng.integers(1, n + 1, size=len(xy))  # how many members see atom j
    maps = []
    for m in range(n):
        sel = found_by > m
        jitter = rng.normal(0, 0.3, (sel.sum(), 2))
        maps.append(
            render_masks(
                xy[sel] + jitter,
                class_index=np.zeros(sel.sum(), int),
                n_classes=1,
                shape=sim.image.shape,
                radius_px=5,
            )
        )
    maps = np.stack(maps)
    pred = decompose(maps, class_names=("C",))
    atoms, rejected = consensus_atoms(pred, maps, sim.image, pixel_size=0.1, p_min=0.5)
    both = np.vstack([atoms[["x_px", "y_px"]].to_numpy(), rejected[["x_px", "y_px"]].to_numpy()])
    p = np.concatenate([atoms["p_detect"].to_numpy(), rejected["p_detect"].to_numpy()])
    from atomlens.metrics import match_points

    mt = match_points(both, xy, radius=3)
    inner = (xy.min(1) > 8) & (xy.max(1) < 119)
    ok = inner[mt.true_index]
    assert ok.sum() > 0.9 * inner.sum()
    np.testing.assert_allclose(p[mt.pred_index][ok], (found_by / n)[mt.true_index][ok])
    assert (atoms["p_detect"] >= 0.5).all() and (rejected["p_detect"] < 0.5).all()
    if n > 1:
        several = atoms["p_detect"] * n >= 2
        # (disks drawn from nearly the same point can cover the same pixels: spread 0)
        assert (atoms["member_spread_x_A"][several] > 0).mean() > 0.7
        assert (atoms["sigma_x_A"] >= atoms["fit_sigma_x_A"]).all()


def test_merge_keeps_one_point_per_member_per_atom():
    a = np.array([[0.0, 0.0], [0.3, 0.0]])  # two close points from one member
    b = np.array([[0.1, 0.0]])
    xy, count = merge_detections([a, b], radius=1.0)
    assert sorted(count.tolist()) == [1, 2]
    assert (np.isfinite(xy[:, 0, 0]).sum(), np.isfinite(xy[:, 1, 0]).sum()) == (2, 1)


def test_vectorized_and_sequential_agree(tiny_model):
    ens = _members_of(tiny_model, 3)
    im = simulate_image("graphene", shape=96, pixel_size=0.1, rng=4).image
    # float32: bfloat16 (precision="auto" on CPUs with AMX) rounds each path its own way
    a = ens.predict_members(im, pixel_size=0.1, mode="vectorized", precision="float32")
    b = ens.predict_members(im, pixel_size=0.1, mode="sequential", precision="float32")
    assert a.shape == (3, 2, 96, 96)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not np.allclose(a[0], a[1])  # the members differ


def test_ensemble_directory_round_trips_and_rejects_tampering(tiny_model, tmp_path):
    ens = _members_of(tiny_model, 3)
    ens.save(tmp_path / "e")
    again = Ensemble.load(tmp_path / "e")
    assert len(again) == 3
    im = simulate_image("graphene", shape=64, pixel_size=0.1, rng=0).image
    np.testing.assert_array_equal(
        ens.predict_members(im, pixel_size=0.1), again.predict_members(im, pixel_size=0.1)
    )
    with pytest.raises(ModelFileError, match="ensemble of 3 members"):
        Model.load(tmp_path / "e")
    # a single-model directory loads as an ensemble of one
    tiny_model.save(tmp_path / "single")
    assert len(Ensemble.load(tmp_path / "single")) == 1
    # tampering: a member dropped from the weights, a pickle instead of safetensors
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "e" / "weights.safetensors"))
    save_file(
        {k: v for k, v in state.items() if not k.startswith("members.2.")},
        str(tmp_path / "e" / "weights.safetensors"),
    )
    with pytest.raises(ModelFileError, match="member 2"):
        Ensemble.load(tmp_path / "e")
    import pickle

    (tmp_path / "e" / "weights.safetensors").write_bytes(pickle.dumps(state))
    with pytest.raises(ModelFileError, match="not a readable safetensors"):
        Ensemble.load(tmp_path / "e")
    cfg = json.loads((tmp_path / "e" / "config.json").read_text())
    cfg["members"] = "all of them"
    (tmp_path / "e" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="members"):
        Ensemble.load(tmp_path / "e")


@pytest.mark.parametrize("mode", ["sequential", "vectorized"])
def test_train_ensemble_writes_one_directory(tmp_path, mode):
    from atomlens.nn import UNetConfig
    from atomlens.train import TrainConfig, train_ensemble
    from tests.common import TINY_GRAPHENE

    ens = train_ensemble(
        members=2,
        out=tmp_path / "e",
        architecture=UNetConfig(width=4, depth=2),
        n_validation=1,
        config=TrainConfig(steps=2, val_every=1, device="cpu"),
        mode=mode,
        # the σ model's fit (~50 s here) is tested on its own below, after members that
        # have learnt something
        fit_sigma=False,
        **TINY_GRAPHENE,
    )
    assert len(ens) == 2
    again = Ensemble.load(tmp_path / "e")
    seeds = [p["seed"] for p in again.member_provenance]
    assert seeds == [0, 1000]
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == [
        "calibration.json",
        "config.json",
        "logs",
        "weights.safetensors",
    ]
    cal = again.calibration
    assert cal is not None and sum(cal.counts) > 0 and cal.sigma_scale > 0
    assert cal.sigma_model is None  # not asked for
    w0 = again.networks[0].state_dict()
    w1 = again.networks[1].state_dict()
    assert not all(torch.equal(w0[k], w1[k]) for k in w0)


def test_train_ensemble_fits_the_sigma_model_of_its_members(tiny_model_dir, tmp_path):
    """A trained ensemble carries its own σ model, fitted under shifted conditions, and
    validated leaving each out; on new images of those conditions its σ describes its
    errors better than the default model's."""
    import shutil

    from atomlens.metrics import match_points
    from atomlens.nn import UNetConfig
    from atomlens.train import TrainConfig, train_ensemble
    from atomlens.train.calibration import sigma_calibration_images
    from atomlens.train.recipe import make_ranges
    from tests.common import TINY_GRAPHENE, perturbed_ensemble

    # members already trained (the tests' model and a perturbed copy, so that they
    # disagree a little): train_ensemble resumes past them to the calibration
    shutil.copytree(tiny_model_dir, tmp_path / "e" / "members" / "0")
    tiny = Model.load(tiny_model_dir)
    Model(perturbed_ensemble(tiny, n=2).networks[1], tiny.config).save(
        tmp_path / "e" / "members" / "1"
    )
    ens = train_ensemble(
        members=2,
        out=tmp_path / "e",
        architecture=UNetConfig(width=8, depth=2),
        n_validation=2,
        config=TrainConfig(steps=120, device="cpu"),
        **TINY_GRAPHENE,
    )
    cal = Ensemble.load(tmp_path / "e").calibration
    assert cal is not None and cal.sigma_model is not None
    assert set(cal.sigma_validation) == {
        "clean", "film", "aberrated", "wide probe", "scan noise", "fine sampling", "all"
    }  # fmt: skip
    z = cal.sigma_validation["all"]["z_rms"]
    assert 0.7 < z < 1.4, z  # left out condition by condition
    # a logistic p_real from the same images is kept only where it ranks their false
    # atoms better than the one from the validation images
    if cal.p_real_validation is not None:
        a = cal.p_real_validation["all"]
        assert a["auroc"] > a["auroc_incumbent"], a
    # new images of the same shifted conditions (other seeds): the fitted model's z is
    # nearer 1 than the default model's, pooled over the conditions it claims to cover
    base = make_ranges(**TINY_GRAPHENE)
    images = sigma_calibration_images(["graphene"], 0.25, shape=128, seed=77_000, base=base)

    def z_rms(model):
        zs = []
        for _, sim in images:
            a = find(sim.image, model=model, pixel_size=sim.pixel_size).atoms
            t = sim.truth[["x_px", "y_px"]].to_numpy(float)
            m = match_points(a[["x_px", "y_px"]].to_numpy(float), t, radius=0.5 / sim.pixel_size)
            err = (
                a[["x_px", "y_px"]].to_numpy(float)[m.pred_index] - t[m.true_index]
            ) * sim.pixel_size
            sig = a[["sigma_x_A", "sigma_y_A"]].to_numpy(float)[m.pred_index]
            zs.append((err / sig).ravel())
        return float(np.sqrt(np.mean(np.concatenate(zs) ** 2)))

    fitted, default = z_rms(ens), z_rms(Ensemble(ens.networks, ens.config))
    assert abs(np.log(fitted)) < abs(np.log(default)), (fitted, default)


def test_calibration_maps_p_detect_to_the_share_of_real_atoms(tiny_model, tmp_path):
    from atomlens.train import fit_calibration

    ens = _members_of(tiny_model, 3, seed=1)
    sims = [simulate_image("graphene", shape=128, pixel_size=0.1, rng=s) for s in (21, 22)]
    cal = fit_calibration(ens, [s.image for s in sims], [s.truth for s in sims], [0.1, 0.1])
    assert cal.p_detect[-1] == 1.0 and cal.p_real[-1] > 0.95  # agreed atoms are real
    assert all(0 <= r <= 1 for r in cal.p_real)
    # a σ model round-trips through the model files and makes every atom's σ
    coef = {"fit": [1.2, 0.3, 0.0], "network": [0.3, 1.0, 0.012]}
    cal = replace(cal, sigma_model=coef, sigma_validation={"all": {"z_rms": 1.0, "n": 10}})
    ens.calibration = cal
    ens.save(tmp_path / "e")
    again = Ensemble.load(tmp_path / "e")
    assert again.calibration == cal and again.calibration.sigma.to_dict() == coef
    res = find(sims[0].image, model=again, pixel_size=0.1)
    a = res.atoms
    assert np.isfinite(a["sigma_x_A"]).all()
    for src, base in (("fit", "fit_sigma_x_A"), ("network", "crlb_x_A")):
        sel = a["position_source"] == src
        want = cal.sigma.sigma(src, a[base][sel], a["member_spread_x_A"][sel])
        np.testing.assert_allclose(a["sigma_x_A"][sel], want)
    assert "p_real" in res.atoms.columns
    raw = find(sims[0].image, model=again, pixel_size=0.1, calibrated=False)
    assert "p_real" not in raw.atoms.columns


def test_atoms_on_hidden_columns_count_neither_way_in_calibration_and_validation(tiny_model):
    """Columns a recipe does not label (``SimulatedImage.hidden``) are real: an atom found
    on one is no false atom, in the calibration of p_real as in the validation F1."""
    from atomlens.train import ValidationSet, fit_calibration

    ens = _members_of(tiny_model, 3, seed=1)
    sims = [simulate_image("graphene", shape=128, pixel_size=0.1, rng=s) for s in (21, 22)]
    images, ps = [s.image for s in sims], [0.1, 0.1]
    # every third column taken out of the truth, as label_min_share would
    truths = [s.truth.iloc[np.arange(len(s.truth)) % 3 != 0] for s in sims]
    hidden = [s.truth.iloc[np.arange(len(s.truth)) % 3 == 0] for s in sims]
    full = fit_calibration(ens, images, [s.truth for s in sims], ps)
    wrong = fit_calibration(ens, images, truths, ps)
    right = fit_calibration(ens, images, truths, ps, hidden=hidden)
    # counted false, a third of the candidates look false; left out, the real share is
    # that of the full truth, on two thirds of the candidates
    assert wrong.p_real[-1] < 0.75 < full.p_real[-1]
    assert right.p_real[-1] == pytest.approx(full.p_real[-1], abs=0.02)
    assert sum(right.counts) == pytest.approx(sum(full.counts) * 2 / 3, rel=0.05)
    cases = {"full": ([s.truth for s in sims], None), "wrong": (truths, None)}
    cases["right"] = (truths, hidden)
    f1 = {
        k: ValidationSet(images, t, ps, hidden=h).evaluate(tiny_model)["f1"]
        for k, (t, h) in cases.items()
    }
    assert f1["wrong"] < 0.85 < f1["full"] and f1["right"] == pytest.approx(f1["full"], abs=0.02)
    with pytest.raises(ValueError, match="one table per image"):
        fit_calibration(ens, images, truths, ps, hidden=hidden[:1])
    with pytest.raises(ValueError, match="hidden must hold one table per image"):
        ValidationSet(images, truths, ps, hidden=hidden[:1])


def test_p_real_uses_evidence_that_p_detect_lacks(monkeypatch, tiny_model):
    """Every member agrees on every candidate (p_detect = 1), but the false ones are
    broad, faint, poorly fitted and sit between true atoms: the logistic p_real, fitted on
    validation images, ranks them below the real atoms; the p_detect table cannot."""
    import pandas as pd

    from atomlens.pipeline import FindResult
    from atomlens.train import fit_calibration

    rng = np.random.default_rng(0)

    def fake_candidates(truth: pd.DataFrame, rng) -> pd.DataFrame:
        t = truth[["x_px", "y_px"]].to_numpy()
        n = len(t)
        real = pd.DataFrame(
            {
                "x_px": t[:, 0] + rng.normal(0, 0.2, n),
                "y_px": t[:, 1] + rng.normal(0, 0.2, n),
                "score": rng.uniform(0.8, 1.0, n),
                "width_A": rng.normal(0.4, 0.03, n),
                "intensity": rng.normal(100, 10, n),
                "fit_sigma_x_A": rng.uniform(0.01, 0.03, n),
                "refined": True,
            }
        )
        k = n // 10  # false candidates halfway between neighbours
        mid = (t[:k] + t[k : 2 * k]) / 2
        fake = pd.DataFrame(
            {
                "x_px": mid[:, 0],
                "y_px": mid[:, 1],
                "score": rng.uniform(0.5, 1.0, k),
                "width_A": rng.normal(0.7, 0.1, k),
                "intensity": rng.normal(60, 20, k),
                "fit_sigma_x_A": rng.uniform(0.03, 0.2, k),
                "refined": rng.random(k) < 0.5,
            }
        )
        c = pd.concat([real, fake], ignore_index=True)
        c["fit_sigma_y_A"] = c["fit_sigma_x_A"]
        c["x_A"], c["y_A"] = c["x_px"] * 0.1, c["y_px"] * 0.1
        c["class"], c["class_p"], c["p_detect"] = "C", 1.0, 1.0
        c["epistemic"] = rng.uniform(0, 0.05, len(c))
        c["sigma_x_A"] = c["sigma_y_A"] = c["fit_sigma_x_A"]
        return c, np.r_[np.ones(n, bool), np.zeros(k, bool)]

    sims = [simulate_image("graphene", shape=128, pixel_size=0.1, rng=s) for s in (1, 2, 3, 4)]
    tables = {id(s.image): fake_candidates(s.truth, rng)[0] for s in sims}

    def fake_find(image, **kwargs):
        return FindResult(tables[id(image)], tables[id(image)].iloc[:0], None, 0.1)

    monkeypatch.setattr("atomlens.train.calibration.find", fake_find)
    ens = _members_of(tiny_model, 1)
    cal = fit_calibration(ens, [s.image for s in sims], [s.truth for s in sims], [0.1] * 4)
    assert cal.coef is not None and cal.features is not None
    unseen = simulate_image("graphene", shape=128, pixel_size=0.1, rng=9)
    test, real = fake_candidates(unseen.truth, rng)
    p = cal.p_real_of(test)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(real, p) > 0.95
    table_only = np.interp(test["p_detect"], cal.p_detect, cal.p_real)
    assert np.ptp(table_only) == 0  # p_detect cannot tell them apart
    assert abs(p[real].mean() - 1) < 0.1 and p[~real].mean() < 0.5


def test_inference_copies_follow_the_members_weights_and_leave_them_as_they_are(tiny_model):
    """On a CPU the members run as channels-last copies (faster convolutions): their maps
    are the plain networks', a changed weight is picked up, and the members themselves stay
    contiguous (safetensors refuses anything else)."""
    ens = _members_of(tiny_model, 2)
    ps = tiny_model.config.pixel_size_A  # nothing resampled: the maps are the network's
    im = simulate_image("graphene", shape=96, pixel_size=ps, rng=5).image
    x, _ = ens.prepare(im, pixel_size=ps)
    with torch.no_grad():
        plain = torch.softmax(ens.networks[0](torch.from_numpy(x)[None]), dim=1)[0].numpy()
    maps = ens.predict_members(im, pixel_size=ps, mode="sequential", precision="float32")
    np.testing.assert_allclose(maps[0], plain, atol=1e-5)
    ens.networks[0].load_state_dict(ens.networks[1].state_dict())  # member 0 := member 1
    again = ens.predict_members(im, pixel_size=ps, mode="sequential", precision="float32")
    np.testing.assert_allclose(again[0], maps[1], atol=1e-6)
    assert all(p.is_contiguous() for net in ens.networks for p in net.parameters())


def test_decompose_in_threads_gives_the_same_maps():
    """Bands of rows computed at once (find passes torch's thread count): the same bits."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 3, 300, 1024)).astype(np.float32)  # 5 bands of 64 rows
    maps = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    one = decompose(maps, class_names=("C", "Si"))
    three = decompose(maps, class_names=("C", "Si"), threads=3)
    for name in ("mean", "predictive_entropy", "expected_entropy", "mutual_information"):
        np.testing.assert_array_equal(getattr(one, name), getattr(three, name))
    with pytest.raises(ValueError, match="threads"):
        decompose(maps, class_names=("C", "Si"), threads=0)
